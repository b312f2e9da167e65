#include "bench/http_bench.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/datasets.h"
#include "qvec/collection.h"
#include "qvec/database.h"

namespace qvec::bench {

namespace {

struct HttpFlags {
  std::string url = "http://127.0.0.1:6333";
  std::string api_key;
  size_t dim = 128;
  size_t n = 100000;
  size_t queries = 1000;
  std::string concurrency = "1,8,32";
  size_t batch = 1000;
  size_t upsert_connections = 1;
  double seconds = 5;
  size_t limit = 10;
  std::string collection;
  bool keep = false;
  bool skip_in_process = false;
  std::string out_dir;
  uint64_t seed = 7;
};

HttpFlags flags;
CLI::App* http_cmd = nullptr;

// A keep-alive HTTP/1.1 connection to 127.0.0.1:port over a plain socket.
// Not thread-safe: one per client thread.
class HttpConnection {
 public:
  HttpConnection(uint16_t port, std::string api_key) : port_(port), api_key_(std::move(api_key)) {}
  ~HttpConnection() { Close(); }
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request and reads the response. Returns the HTTP status, or
  // 0 on a transport error (then *error says why). Reconnects once if a
  // reused connection turns out closed.
  int Request(std::string_view method, std::string_view path, std::string_view body,
              std::string* response, std::string* error) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      const bool reused = fd_ >= 0;
      if (fd_ < 0 && !Connect(error)) return 0;
      std::string head = fmt::format(
          "{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n"
          "Content-Length: {}\r\n",
          method, path, port_, body.size());
      if (!api_key_.empty()) head += "api-key: " + api_key_ + "\r\n";
      head += "\r\n";
      if (SendAll(head) && SendAll(body)) {
        const int status = ReadResponse(response, error);
        if (status != 0 || !reused) return status;
      } else if (!reused) {
        *error = std::string("send: ") + std::strerror(errno);
        Close();
        return 0;
      }
      Close();  // stale keep-alive connection: retry on a fresh one
    }
    return 0;
  }

 private:
  bool Connect(std::string* error) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // never anything but 127.0.0.1
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      *error = fmt::format("connect 127.0.0.1:{}: {}", port_, std::strerror(errno));
      Close();
      return false;
    }
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    buffer_.clear();
    return true;
  }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool SendAll(std::string_view data) {
    while (!data.empty()) {
      const ssize_t sent = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  // Appends more bytes to buffer_; false on EOF or error.
  bool Fill() {
    char chunk[65536];
    for (;;) {
      const ssize_t got = recv(fd_, chunk, sizeof(chunk), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(got));
      return true;
    }
  }

  int ReadResponse(std::string* body, std::string* error) {
    size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) {
        *error = "connection closed before the response";
        return 0;
      }
    }
    const std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    int status = 0;
    if (std::sscanf(head.c_str(), "HTTP/1.%*d %d", &status) != 1) {
      *error = "bad status line";
      Close();
      return 0;
    }
    std::string lower(head);
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    const bool chunked = lower.find("transfer-encoding: chunked") != std::string::npos;
    const bool close_after = lower.find("connection: close") != std::string::npos;
    body->clear();
    if (chunked) {
      for (;;) {
        size_t line_end;
        while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
          if (!Fill()) return Fail("truncated chunk", error);
        }
        const size_t size = std::stoul(buffer_.substr(0, line_end), nullptr, 16);
        buffer_.erase(0, line_end + 2);
        while (buffer_.size() < size + 2) {
          if (!Fill()) return Fail("truncated chunk", error);
        }
        body->append(buffer_, 0, size);
        buffer_.erase(0, size + 2);
        if (size == 0) break;
      }
    } else {
      size_t length = 0;
      const size_t at = lower.find("content-length:");
      if (at != std::string::npos) length = std::stoul(lower.substr(at + 15));
      while (buffer_.size() < length) {
        if (!Fill()) return Fail("truncated body", error);
      }
      body->assign(buffer_, 0, length);
      buffer_.erase(0, length);
    }
    if (close_after) Close();
    return status;
  }

  int Fail(const char* what, std::string* error) {
    *error = what;
    Close();
    return 0;
  }

  uint16_t port_;
  std::string api_key_;
  int fd_ = -1;
  std::string buffer_;
};

// Port of a http://127.0.0.1:PORT (or localhost) URL; dies for other hosts.
uint16_t LoopbackPort(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  if (rest.rfind("https://", 0) == 0) Die("https is not supported; use http://127.0.0.1:PORT");
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (host != "127.0.0.1" && host != "localhost") {
    Die("qvec-bench http only targets 127.0.0.1 (got host '" + host + "')");
  }
  if (colon == std::string::npos) return 80;
  const int port = std::atoi(rest.substr(colon + 1).c_str());
  if (port <= 0 || port > 65535) Die("bad port in " + url);
  return static_cast<uint16_t>(port);
}

std::string VectorJson(const float* x, size_t dim) {
  std::string out = "[";
  for (size_t j = 0; j < dim; ++j) {
    if (j) out += ',';
    fmt::format_to(std::back_inserter(out), "{:.7g}", x[j]);
  }
  return out + "]";
}

struct LoadResult {
  size_t concurrency = 0;
  double qps = 0, p50_us = 0, p99_us = 0;
  size_t errors = 0;
};

// Runs `one(thread, i)` (one search, true on success) from `concurrency`
// threads for flags.seconds after a short warm-up.
template <typename OneSearch>
LoadResult RunLoad(size_t concurrency, OneSearch one) {
  LoadResult r;
  r.concurrency = concurrency;
  std::atomic<bool> measuring{false}, stop{false};
  std::atomic<size_t> next{0}, errors{0};
  std::vector<std::vector<double>> latencies(concurrency);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t i = next.fetch_add(1, std::memory_order_relaxed);
        const auto start = Clock::now();
        const bool ok = one(t, i);
        const double us = SecondsSince(start) * 1e6;
        if (measuring.load(std::memory_order_relaxed)) {
          if (ok) {
            latencies[t].push_back(us);
          } else {
            errors.fetch_add(1);
          }
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  measuring = true;
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(flags.seconds));
  measuring = false;
  const double elapsed = SecondsSince(start);
  stop = true;
  for (std::thread& t : threads) t.join();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  r.qps = static_cast<double>(all.size()) / elapsed;
  r.p50_us = Percentile(all, 0.50);
  r.p99_us = Percentile(all, 0.99);
  r.errors = errors;
  return r;
}

std::vector<size_t> ParseList(const std::string& text) {
  std::vector<size_t> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const long v = std::atol(item.c_str());
    if (v <= 0) Die("bad --concurrency list: " + text);
    out.push_back(static_cast<size_t>(v));
  }
  return out;
}

// Waits until GET /collections/{name} reports n points, status green and
// (for collections past the IVF threshold) the IVF index built.
void WaitForServerIndex(HttpConnection& http, const std::string& name, size_t n) {
  const auto start = Clock::now();
  std::string body, error;
  for (;;) {
    const int status = http.Request("GET", "/collections/" + name, "", &body, &error);
    if (status != 200) Die(fmt::format("GET /collections/{}: {} {}{}", name, status, error, body));
    const bool green = body.find("\"status\":\"green\"") != std::string::npos;
    const bool ivf = body.find("\"state\":\"ivf\"") != std::string::npos;
    const bool counted = body.find(fmt::format("\"points_count\":{}", n)) != std::string::npos;
    if (green && counted && (ivf || n < 20000)) return;
    const double waited = SecondsSince(start);
    if (waited > 300) {
      Progress::Get().Break();
      std::fprintf(stderr, "qvec-bench: server index not ready after 300 s; measuring anyway\n");
      return;
    }
    Progress::Get().Show(fmt::format("http: waiting for the server's index ({:.0f} s)", waited));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

int RunHttp() {
  const uint16_t port = LoopbackPort(flags.url);
  const std::vector<size_t> levels = ParseList(flags.concurrency);
  const std::string name =
      flags.collection.empty() ? fmt::format("qvec_bench_{}", getpid()) : flags.collection;
  Progress& progress = Progress::Get();
  progress.Show(fmt::format("http: generating {} x {} synthetic vectors", flags.n, flags.dim));
  const Dataset data = MakeSynthetic(flags.n, flags.queries, flags.dim, flags.seed);
  const size_t dim = data.dim, n = data.n(), nq = data.nq();

  // Request bodies are serialized up front so the client's JSON work is not
  // timed as server time.
  progress.Show("http: serializing request bodies");
  std::vector<std::string> upsert_bodies;
  for (size_t b = 0; b < n; b += flags.batch) {
    std::string body = "{\"points\":[";
    for (size_t i = b; i < std::min(n, b + flags.batch); ++i) {
      if (i > b) body += ',';
      body += fmt::format("{{\"id\":{},\"vector\":{}}}", i,
                          VectorJson(data.base.data() + i * dim, dim));
    }
    upsert_bodies.push_back(body + "]}");
  }
  std::vector<std::string> search_bodies(nq);
  for (size_t i = 0; i < nq; ++i) {
    search_bodies[i] = fmt::format("{{\"vector\":{},\"limit\":{}}}",
                                   VectorJson(data.queries.data() + i * dim, dim), flags.limit);
  }

  HttpConnection http(port, flags.api_key);
  std::string body, error;
  int status = http.Request(
      "PUT", "/collections/" + name,
      fmt::format("{{\"vectors\":{{\"size\":{},\"distance\":\"Cosine\"}}}}", dim), &body, &error);
  if (status != 200) {
    Die(fmt::format("cannot create collection {} at 127.0.0.1:{}: {} {}{}", name, port, status,
                    error, body));
  }
  // Upsert: batches over `upsert_connections` keep-alive connections.
  progress.Show(fmt::format("http: upserting {} points in batches of {}", n, flags.batch));
  std::atomic<size_t> next_batch{0};
  std::atomic<bool> upsert_failed{false};
  std::string upsert_error;
  const auto upsert_start = Clock::now();
  {
    std::vector<std::thread> threads;
    for (size_t c = 0; c < flags.upsert_connections; ++c) {
      threads.emplace_back([&] {
        HttpConnection conn(port, flags.api_key);
        std::string response, err;
        for (size_t b; (b = next_batch.fetch_add(1)) < upsert_bodies.size() && !upsert_failed;) {
          const int s = conn.Request("PUT", "/collections/" + name + "/points?wait=true",
                                     upsert_bodies[b], &response, &err);
          if (s != 200) {
            upsert_failed = true;
            upsert_error = fmt::format("{} {}{}", s, err, response.substr(0, 300));
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  const double upsert_s = SecondsSince(upsert_start);
  if (upsert_failed) Die("upsert failed: " + upsert_error);
  const double http_upsert_rate = static_cast<double>(n) / upsert_s;
  WaitForServerIndex(http, name, n);
  // VectorDBBench's "load duration": from the first upsert until the
  // collection is green with its index built, i.e. searchable at full speed.
  const double searchable_s = SecondsSince(upsert_start);

  std::vector<LoadResult> http_results;
  for (size_t c : levels) {
    progress.Show(
        fmt::format("http: searching with concurrency {} for {:.0f} s", c, flags.seconds));
    std::vector<std::unique_ptr<HttpConnection>> conns;
    for (size_t t = 0; t < c; ++t)
      conns.push_back(std::make_unique<HttpConnection>(port, flags.api_key));
    http_results.push_back(RunLoad(c, [&](size_t t, size_t i) {
      std::string response, err;
      return conns[t]->Request("POST", "/collections/" + name + "/points/search",
                               search_bodies[i % nq], &response, &err) == 200;
    }));
  }
  if (!flags.keep) {
    status = http.Request("DELETE", "/collections/" + name, "", &body, &error);
    if (status != 200)
      std::fprintf(stderr, "qvec-bench: DELETE %s: %d %s\n", name.c_str(), status, error.c_str());
  }

  // The same work in-process through the engine API.
  double local_upsert_rate = 0;
  std::vector<LoadResult> local_results;
  if (!flags.skip_in_process) {
    char dir_template[] = "/tmp/qvec-bench-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) Die("mkdtemp failed");
    const std::string dir = dir_template;
    {
      auto db = Database::Open(DatabaseOptions{}, dir + "/db");
      if (!db.ok()) Die("Database::Open: " + db.status().ToString());
      CollectionConfig config;
      config.dimension = static_cast<uint32_t>(dim);
      config.distance = Distance::kCosine;
      if (Status s = (*db)->CreateCollection(name, config); !s.ok()) Die(s.ToString());
      std::shared_ptr<Collection> collection = *(*db)->GetCollection(name);
      progress.Show("in-process: upserting");
      const auto start = Clock::now();
      std::vector<Point> points;
      for (size_t b = 0; b < n; b += flags.batch) {
        points.clear();
        for (size_t i = b; i < std::min(n, b + flags.batch); ++i) {
          Point p;
          p.id = PointId::Num(i);
          p.vector.assign(data.base.begin() + static_cast<ptrdiff_t>(i * dim),
                          data.base.begin() + static_cast<ptrdiff_t>((i + 1) * dim));
          points.push_back(std::move(p));
        }
        if (Status s = collection->Upsert(points); !s.ok()) Die("Upsert: " + s.ToString());
      }
      local_upsert_rate = static_cast<double>(n) / SecondsSince(start);
      // Same index state as the server: wait for the background build.
      const auto wait_start = Clock::now();
      for (;;) {
        auto info = collection->Info();
        if (!info.ok()) Die(info.status().ToString());
        if (info->index.state == IndexInfo::State::kIvf || n < config.index.ivf_threshold) break;
        if (SecondsSince(wait_start) > 300) break;
        progress.Show("in-process: waiting for the background IVF build");
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      std::vector<SearchRequest> requests(nq);
      for (size_t i = 0; i < nq; ++i) {
        requests[i].vector.assign(data.queries.begin() + static_cast<ptrdiff_t>(i * dim),
                                  data.queries.begin() + static_cast<ptrdiff_t>((i + 1) * dim));
        requests[i].limit = flags.limit;
      }
      for (size_t c : levels) {
        progress.Show(fmt::format("in-process: searching with concurrency {}", c));
        local_results.push_back(RunLoad(
            c, [&](size_t, size_t i) { return collection->Search(requests[i % nq]).ok(); }));
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  progress.Break();

  // Report.
  std::string md;
  md += fmt::format(
      "qvec-bench http — server 127.0.0.1:{} — {} points x {} dims (synthetic, cosine), "
      "limit {}, {} s per level, load average at end {:.2f}\n\n",
      port, n, dim, flags.limit, flags.seconds, [] {
        double l = 0;
        std::ifstream("/proc/loadavg") >> l;
        return l;
      }());
  md +=
      fmt::format("upsert (batches of {}, {} connection(s), wait=true): {:.0f} vectors/s over HTTP",
                  flags.batch, flags.upsert_connections, http_upsert_rate);
  if (local_upsert_rate > 0) md += fmt::format(", {:.0f} vectors/s in-process", local_upsert_rate);
  md += fmt::format(" (target >= 100000 over HTTP: {})\n\n",
                    http_upsert_rate >= 100000 ? "met" : "missed");
  md += fmt::format(
      "time to searchable (first upsert until status green with the index built): {:.1f} s "
      "({:.1f} s of upserts, then {:.1f} s for the index)\n\n",
      searchable_s, upsert_s, searchable_s - upsert_s);
  md +=
      "| concurrency | HTTP QPS | HTTP p50 µs | HTTP p99 µs | errors | in-process QPS | in-process "
      "p50 µs | in-process p99 µs | HTTP / in-process |\n";
  md += "|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
  std::string json = "{\n";
  json += fmt::format(
      "  \"n\": {}, \"dim\": {}, \"limit\": {}, \"batch\": {}, \"upsert_connections\": {},\n"
      "  \"upsert_vectors_per_s_http\": {:.1f}, \"upsert_vectors_per_s_in_process\": {:.1f},\n"
      "  \"time_to_searchable_s\": {:.2f},\n"
      "  \"levels\": [\n",
      n, dim, flags.limit, flags.batch, flags.upsert_connections, http_upsert_rate,
      local_upsert_rate, searchable_s);
  for (size_t i = 0; i < levels.size(); ++i) {
    const LoadResult& h = http_results[i];
    const LoadResult* l = i < local_results.size() ? &local_results[i] : nullptr;
    const double ratio = l && l->qps > 0 ? h.qps / l->qps : 0;
    md += fmt::format("| {} | {:.0f} | {:.0f} | {:.0f} | {} | {} | {} | {} | {} |\n", h.concurrency,
                      h.qps, h.p50_us, h.p99_us, h.errors, l ? fmt::format("{:.0f}", l->qps) : "-",
                      l ? fmt::format("{:.0f}", l->p50_us) : "-",
                      l ? fmt::format("{:.0f}", l->p99_us) : "-",
                      l ? fmt::format("{:.2f}", ratio) : "-");
    json += fmt::format(
        "    {{\"concurrency\": {}, \"http_qps\": {:.1f}, \"http_p50_us\": {:.1f}, "
        "\"http_p99_us\": {:.1f}, \"http_errors\": {}, \"in_process_qps\": {:.1f}, "
        "\"in_process_p50_us\": {:.1f}, \"in_process_p99_us\": {:.1f}}}{}\n",
        h.concurrency, h.qps, h.p50_us, h.p99_us, h.errors, l ? l->qps : 0, l ? l->p50_us : 0,
        l ? l->p99_us : 0, i + 1 < levels.size() ? "," : "");
  }
  json += "  ]\n}\n";
  for (size_t i = 0; i < levels.size() && i < local_results.size(); ++i) {
    if (levels[i] != 8) continue;
    const double cost = 1 - http_results[i].qps / local_results[i].qps;
    md += fmt::format(
        "\nHTTP overhead at concurrency 8: {:.0f}% of in-process throughput (target <= 25%: {})\n",
        100 * cost, cost <= 0.25 ? "met" : "missed");
  }
  std::fwrite(md.data(), 1, md.size(), stdout);
  {
    std::string out = flags.out_dir;
    if (out.empty()) {
      std::error_code ec;
      const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
      const auto root = exe.parent_path().parent_path().parent_path();
      out = std::filesystem::exists(root / "bench" / "qvec_bench.cc", ec)
                ? (root / "bench" / "results").string()
                : "qvec-bench-results";
    }
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    std::ofstream(out + "/http.md") << md;
    std::ofstream(out + "/http.json") << json;
    std::fprintf(stderr, "wrote %s/http.md, %s/http.json\n", out.c_str(), out.c_str());
  }
  return 0;
}

}  // namespace

void AddHttpCommand(CLI::App* app) {
  http_cmd =
      app->add_subcommand("http",
                          "end-to-end: upsert and search a running server on 127.0.0.1 over HTTP, "
                          "and the same in-process");
  http_cmd->add_option("--url", flags.url, "server URL; host must be 127.0.0.1 or localhost");
  http_cmd->add_option("--api-key", flags.api_key, "api-key header, if the server wants one");
  http_cmd->add_option("--dim", flags.dim, "vector dimension");
  http_cmd->add_option("--n", flags.n, "points to insert");
  http_cmd->add_option("--queries-count", flags.queries, "distinct query vectors");
  http_cmd->add_option("--concurrency", flags.concurrency, "comma-separated client counts");
  http_cmd->add_option("--batch", flags.batch, "points per upsert request");
  http_cmd->add_option("--upsert-connections", flags.upsert_connections,
                       "parallel upsert connections");
  http_cmd->add_option("--seconds", flags.seconds, "measured seconds per concurrency level");
  http_cmd->add_option("--limit", flags.limit, "k of each search");
  http_cmd->add_option("--collection", flags.collection,
                       "collection name (default qvec_bench_<pid>; it is created and dropped)");
  http_cmd->add_flag("--keep", flags.keep, "keep the collection afterwards");
  http_cmd->add_flag("--skip-in-process", flags.skip_in_process, "skip the in-process comparison");
  http_cmd->add_option("--out", flags.out_dir, "directory for http.md / http.json");
  http_cmd->add_option("--seed", flags.seed, "seed of the synthetic vectors");
}

int RunParsedHttpCommand() {
  if (http_cmd == nullptr || !http_cmd->parsed()) return -1;
  return RunHttp();
}

}  // namespace qvec::bench
