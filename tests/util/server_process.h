// Starts the real `qvec serve` binary on a free loopback port for integration
// tests, and talks to it with a minimal blocking HTTP/1.1 client.
#ifndef QVEC_TESTS_UTIL_SERVER_PROCESS_H_
#define QVEC_TESTS_UTIL_SERVER_PROCESS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace qvec::testing_util {

// A port that was free a moment ago (bind to 0, read it back, close).
inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

struct HttpResult {
  int status = 0;  // 0 = no answer (connection failed or closed)
  std::string body;
  std::string headers;  // the status line and header fields as received
};

// A TCP connection to 127.0.0.1:`port` whose reads time out after
// `timeout_ms`; -1 if the connection fails.
inline int ConnectLoopback(int port, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One request on a fresh connection; `Connection: close`.
inline HttpResult HttpCall(int port, const std::string& method, const std::string& target,
                           const std::string& body = "",
                           const std::vector<std::string>& extra_headers = {},
                           int timeout_ms = 30000) {
  HttpResult result;
  const int fd = ConnectLoopback(port, timeout_ms);
  if (fd < 0) return result;
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : extra_headers) req += h + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  size_t sent = 0;
  while (sent < req.size()) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (raw.compare(0, 9, "HTTP/1.1 ") != 0 || raw.size() < 12) return result;
  result.status = std::stoi(raw.substr(9, 3));
  size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return result;
  std::string headers = raw.substr(0, header_end);
  result.headers = headers;
  std::string rest = raw.substr(header_end + 4);
  if (headers.find("Transfer-Encoding: chunked") != std::string::npos ||
      headers.find("transfer-encoding: chunked") != std::string::npos) {
    size_t pos = 0;
    while (pos < rest.size()) {
      size_t eol = rest.find("\r\n", pos);
      if (eol == std::string::npos) break;
      size_t len = std::stoul(rest.substr(pos, eol - pos), nullptr, 16);
      if (len == 0) break;
      result.body += rest.substr(eol + 2, len);
      pos = eol + 2 + len + 2;
    }
  } else {
    result.body = rest;
  }
  return result;
}

// A `qvec serve` child process. The destructor kills it (SIGKILL) if it is
// still running.
class ServerProcess {
 public:
  ServerProcess(std::string binary, std::string data_dir, std::vector<std::string> extra = {})
      : binary_(std::move(binary)), data_dir_(std::move(data_dir)), extra_(std::move(extra)) {}
  ~ServerProcess() { Kill(SIGKILL); }

  // Starts the server on a free port and waits until GET /healthz answers.
  bool Start(int timeout_ms = 20000) {
    port_ = FreePort();
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<std::string> args = {binary_,       "serve",  "--data",
                                       data_dir_,     "--port", std::to_string(port_),
                                       "--log-level", "warn"};
      args.insert(args.end(), extra_.begin(), extra_.end());
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary_.c_str(), argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (HttpCall(port_, "GET", "/healthz", "", {}, 1000).status == 200) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Sends `sig`; for SIGKILL also reaps the process. Returns the exit status
  // from waitpid when reaped, -1 otherwise.
  int Kill(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    if (sig != SIGKILL) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // Waits up to `timeout_ms` for the process to exit; returns its wait
  // status, or -1 on timeout.
  int WaitExit(int timeout_ms) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  std::string binary_;
  std::string data_dir_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace qvec::testing_util

#endif  // QVEC_TESTS_UTIL_SERVER_PROCESS_H_
