// Helpers for the reliability tests that drive the real `qvec serve` process:
// a keep-alive HTTP/1.1 client, JSON building and reading (simdjson), a full
// scroll of a collection, and the server's resident memory.
#ifndef QVEC_TESTS_UTIL_QVEC_CLIENT_H_
#define QVEC_TESTS_UTIL_QVEC_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tests/util/server_process.h"

namespace qvec::testing_util {

// Shortest round-trip text of a float (the server parses it back exactly).
inline std::string FloatText(float v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

inline std::string VectorJson(const std::vector<float>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += FloatText(v[i]);
  }
  return out + "]";
}

// A random vector of unit length, so that under Dot a point is its own
// nearest neighbour.
inline std::vector<float> UnitVector(std::mt19937_64& rng, size_t dim) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(dim);
  double norm = 0;
  for (auto& x : v) {
    x = normal(rng);
    norm += double(x) * x;
  }
  norm = std::sqrt(norm);
  for (auto& x : v) x = static_cast<float>(x / norm);
  return v;
}

// A point as read back from the server.
struct PointState {
  std::string payload;  // minified JSON, "" when none
  std::vector<float> vector;
  bool operator==(const PointState& o) const {
    if (payload != o.payload || vector.size() != o.vector.size()) return false;
    for (size_t i = 0; i < vector.size(); ++i) {
      if (std::fabs(vector[i] - o.vector[i]) > 1e-6f) return false;
    }
    return true;
  }
};

// Minified JSON of a JSON text (payloads compare in this form).
inline std::string Minified(const std::string& json) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (parser.parse(json).get(e) != simdjson::SUCCESS) return "<invalid json>";
  return simdjson::to_string(e);
}

// Scrolls the whole collection (integer ids only) with payloads and vectors.
// nullopt on any error; `error` then says why.
inline std::optional<std::map<uint64_t, PointState>> ScrollAll(int port, const std::string& coll,
                                                               std::string* error = nullptr) {
  std::map<uint64_t, PointState> out;
  simdjson::dom::parser parser;
  std::string offset = "null";
  for (int page = 0; page < 100000; ++page) {
    auto r = HttpCall(
        port, "POST", "/collections/" + coll + "/points/scroll",
        R"({"limit":1000,"with_payload":true,"with_vector":true,"offset":)" + offset + "}");
    if (r.status != 200) {
      if (error) *error = "scroll: HTTP " + std::to_string(r.status) + " " + r.body;
      return std::nullopt;
    }
    simdjson::dom::element doc;
    if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) {
      if (error) *error = "scroll: bad JSON " + r.body.substr(0, 200);
      return std::nullopt;
    }
    for (simdjson::dom::element p : doc["result"]["points"].get_array()) {
      uint64_t id = 0;
      if (p["id"].get(id) != simdjson::SUCCESS) {
        if (error) *error = "scroll: non-integer id";
        return std::nullopt;
      }
      PointState st;
      simdjson::dom::element payload = p["payload"];
      if (!payload.is_null()) st.payload = simdjson::to_string(payload);
      simdjson::dom::array vec;
      if (p["vector"].get_array().get(vec) == simdjson::SUCCESS) {
        for (double x : vec) st.vector.push_back(static_cast<float>(x));
      }
      out[id] = std::move(st);
    }
    simdjson::dom::element next = doc["result"]["next_page_offset"];
    if (next.is_null()) return out;
    offset = simdjson::to_string(next);
  }
  if (error) *error = "scroll: too many pages";
  return std::nullopt;
}

// points_count via POST .../points/count; -1 on error.
inline int64_t CountPoints(int port, const std::string& coll) {
  auto r = HttpCall(port, "POST", "/collections/" + coll + "/points/count", "{}");
  if (r.status != 200) return -1;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r.body).get(doc) != simdjson::SUCCESS) return -1;
  uint64_t n = 0;
  if (doc["result"]["count"].get(n) != simdjson::SUCCESS) return -1;
  return static_cast<int64_t>(n);
}

// The ids of a search answer, best first (empty on error).
inline std::vector<uint64_t> HitIds(const std::string& body) {
  std::vector<uint64_t> ids;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) return ids;
  simdjson::dom::array arr;
  if (doc["result"].get_array().get(arr) != simdjson::SUCCESS) return ids;
  for (simdjson::dom::element h : arr) {
    uint64_t id = 0;
    if (h["id"].get(id) == simdjson::SUCCESS) ids.push_back(id);
  }
  return ids;
}

// VmRSS of a process in KiB (0 if unreadable).
inline size_t RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

// A blocking HTTP/1.1 client keeping one connection alive across requests
// (reconnects when the server closed it). Responses need Content-Length or
// chunked encoding.
class KeepAliveClient {
 public:
  explicit KeepAliveClient(int port, int timeout_ms = 30000)
      : port_(port), timeout_ms_(timeout_ms) {}
  ~KeepAliveClient() { Close(); }
  KeepAliveClient(const KeepAliveClient&) = delete;
  KeepAliveClient& operator=(const KeepAliveClient&) = delete;

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "") {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool fresh = fd_ < 0;
      if (fd_ < 0 && !Connect()) return {};
      HttpResult r = Once(method, target, body);
      if (r.status != 0) return r;
      Close();
      if (fresh) return r;  // a new connection failed: do not retry
    }
    return {};
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    buf_.clear();
  }

 private:
  bool Connect() {
    fd_ = ConnectLoopback(port_, timeout_ms_);
    if (fd_ < 0) {
      Close();
      return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return true;
  }

  // Reads until `buf_` holds at least n bytes; false on EOF or error.
  bool Fill(size_t n) {
    char tmp[65536];
    while (buf_.size() < n) {
      ssize_t got = recv(fd_, tmp, sizeof(tmp), 0);
      if (got <= 0) return false;
      buf_.append(tmp, static_cast<size_t>(got));
    }
    return true;
  }
  bool FillUntil(const std::string& delim, size_t* pos) {
    for (int i = 0; i < 1000000; ++i) {
      *pos = buf_.find(delim);
      if (*pos != std::string::npos) return true;
      if (!Fill(buf_.size() + 1)) return false;
    }
    return false;
  }

  HttpResult Once(const std::string& method, const std::string& target, const std::string& body) {
    HttpResult result;
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    if (!body.empty() || method == "POST" || method == "PUT") {
      req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n";
    }
    req += "\r\n" + body;
    size_t sent = 0;
    while (sent < req.size()) {
      ssize_t n = send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return result;
      sent += static_cast<size_t>(n);
    }
    size_t header_end;
    if (!FillUntil("\r\n\r\n", &header_end)) return result;
    std::string headers = buf_.substr(0, header_end);
    buf_.erase(0, header_end + 4);
    if (headers.compare(0, 9, "HTTP/1.1 ") != 0 || headers.size() < 12) return result;
    std::string lower = headers;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t cl = lower.find("\r\ncontent-length:");
    if (cl != std::string::npos) {
      size_t len = std::stoul(lower.substr(cl + 17));
      if (!Fill(len)) return result;
      result.body = buf_.substr(0, len);
      buf_.erase(0, len);
    } else if (lower.find("transfer-encoding: chunked") != std::string::npos) {
      for (;;) {
        size_t eol;
        if (!FillUntil("\r\n", &eol)) return result;
        size_t len = std::stoul(buf_.substr(0, eol), nullptr, 16);
        buf_.erase(0, eol + 2);
        if (!Fill(len + 2)) return result;
        result.body += buf_.substr(0, len);
        buf_.erase(0, len + 2);
        if (len == 0) break;
      }
    } else {
      return result;
    }
    result.status = std::stoi(headers.substr(9, 3));
    if (lower.find("\r\nconnection: close") != std::string::npos) Close();
    return result;
  }

  int port_;
  int timeout_ms_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace qvec::testing_util

#endif  // QVEC_TESTS_UTIL_QVEC_CLIENT_H_
