#include "server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <deque>
#include <exception>
#include <iterator>
#include <limits>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/mutex.h"
#include "engine/json_writer.h"

namespace qvec::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using BeastResponse = http::response<http::string_body>;

// A response whose body is a file, written in chunks (the serializer keeps a
// reference to the message, so both live together).
struct FileResponse {
  http::response<http::file_body> message;
  std::optional<http::response_serializer<http::file_body>> serializer;
  uint64_t size = 0;
};

// Opens `path` (no symbolic links) as the body of a response with the head
// of `head` (status, headers). nullptr if it cannot be opened.
std::shared_ptr<FileResponse> MakeFileResponse(const BeastResponse& head, const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return nullptr;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return nullptr;
  }
  auto out = std::make_shared<FileResponse>();
  out->message.base() = head.base();
  beast::file f;
  f.native_handle(fd);  // owns fd from here
  beast::error_code ec;
  out->message.body().reset(std::move(f), ec);
  if (ec) return nullptr;
  out->message.prepare_payload();
  out->size = static_cast<uint64_t>(st.st_size);
  out->serializer.emplace(out->message);
  return out;
}

constexpr std::string_view kUnauthenticatedMessage =
    "Must provide an API key or an Authorization bearer token";
constexpr std::string_view kReadOnlyMessage =
    "Forbidden: the read-only API key does not allow this operation";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
// Bytes read per call while waiting for the start of a request.
constexpr size_t kReadChunk = 16 * 1024;
// How long a connection closed after an error response keeps draining what
// the client still sends, so that the kernel does not reset the connection
// (and destroy the response) because of unread data.
constexpr std::chrono::seconds kLingerTime{1};

std::string ErrorBody(std::string_view message) {
  std::string body = "{\"status\":{\"error\":";
  engine::JsonWriter::AppendQuoted(body, message);
  body += "},\"time\":0.0}";
  return body;
}

// Compares in time depending only on the lengths, not on where the strings
// differ.
bool ConstantTimeEquals(std::string_view provided, std::string_view expected) {
  const size_t n = std::max(provided.size(), expected.size());
  volatile unsigned char diff = provided.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < provided.size() ? static_cast<unsigned char>(provided[i]) : 0;
    const unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    diff = diff | static_cast<unsigned char>(a ^ b);
  }
  return diff == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string_view SV(beast::string_view s) { return {s.data(), s.size()}; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// The API key a request carries: "api-key: KEY" or "Authorization: Bearer KEY".
std::optional<std::string_view> ProvidedKey(const http::request_header<>& h) {
  if (auto it = h.find("api-key"); it != h.end()) return Trim(SV(it->value()));
  if (auto it = h.find(http::field::authorization); it != h.end()) {
    std::string_view v = Trim(SV(it->value()));
    constexpr std::string_view kBearer = "bearer";
    if (v.size() > kBearer.size() && IEquals(v.substr(0, kBearer.size()), kBearer) &&
        (v[kBearer.size()] == ' ' || v[kBearer.size()] == '\t')) {
      return Trim(v.substr(kBearer.size()));
    }
  }
  return std::nullopt;
}

bool SafeHeaderText(std::string_view s) {
  return s.find_first_of("\r\n") == std::string_view::npos &&
         s.find('\0') == std::string_view::npos;
}

// `head`: the response answers a HEAD request, so it keeps its Content-Length
// but carries no body.
// `cors_origin`: the Access-Control-Allow-Origin value ("" = none).
std::shared_ptr<BeastResponse> MakeResponse(HttpResponse in, unsigned version, bool head = false,
                                            const std::string& cors_origin = "") {
  auto res = std::make_shared<BeastResponse>();
  res->version(version == 10 ? 10 : 11);
  unsigned status = in.status;
  if (status < 200 || status > 999) {
    spdlog::error("request handler returned invalid HTTP status {}", status);
    status = 500;
    in.content_type = "application/json";
    in.body = ErrorBody("Internal error: invalid response status");
    in.headers.clear();
  }
  res->result(status);
  res->set(http::field::server, "qvec");
  if (!in.content_type.empty() && SafeHeaderText(in.content_type)) {
    res->set(http::field::content_type, in.content_type);
  }
  for (auto& [name, value] : in.headers) {
    if (name.empty() || !SafeHeaderText(name) || !SafeHeaderText(value) ||
        name.find_first_of(" :\t") != std::string::npos) {
      continue;
    }
    res->insert(name, value);
  }
  if (!cors_origin.empty()) {
    res->set(http::field::access_control_allow_origin, cors_origin);
    if (cors_origin != "*") res->set(http::field::vary, "Origin");
  }
  if (status == 204 || status == 304) {
    in.body.clear();
  }
  res->body() = std::move(in.body);
  res->prepare_payload();
  if (head) res->body().clear();
  return res;
}

HttpResponse ErrorResponse(unsigned status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = ErrorBody(message);
  return r;
}

HttpRequest ToHttpRequest(http::request<http::string_body>&& msg) {
  HttpRequest r;
  r.method = std::string(SV(msg.method_string()));
  r.target = std::string(SV(msg.target()));
  r.headers.reserve(std::distance(msg.begin(), msg.end()));
  for (const auto& f : msg) {
    std::string name(SV(f.name_string()));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    r.headers.emplace_back(std::move(name), std::string(SV(f.value())));
  }
  r.body = std::move(msg.body());
  return r;
}

// Errors of the HTTP parser that mean the request is malformed (and deserve
// a 400), as opposed to the client going away or being too slow.
bool IsMalformedRequest(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message &&
         ec != http::error::need_more && ec != http::error::need_buffer;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Why a request's framing is refused (RFC 9112, sections 6.1 and 6.3), or
// nullopt. Only "chunked" is supported as a transfer coding: any other
// (identity, gzip, ...) or a final coding other than chunked makes the body
// length unknowable, and a body read as the next request is request
// smuggling.
std::optional<std::string> FramingError(const http::request_header<>& h) {
  std::vector<std::string> codings;
  size_t te_fields = 0;
  std::vector<std::string> lengths;
  for (const auto& f : h) {
    if (f.name() == http::field::transfer_encoding) {
      ++te_fields;
      std::string_view v = SV(f.value());
      size_t pos = 0;
      while (pos <= v.size()) {
        const size_t comma = v.find(',', pos);
        std::string_view token = Trim(
            v.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        if (!token.empty()) codings.push_back(Lower(token));
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
      }
    } else if (f.name() == http::field::content_length) {
      std::string_view v = SV(f.value());
      size_t pos = 0;
      while (pos <= v.size()) {
        const size_t comma = v.find(',', pos);
        lengths.emplace_back(Trim(
            v.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos)));
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
      }
    }
  }
  if (te_fields > 0) {
    if (!lengths.empty()) {
      return std::string("Bad request: Content-Length and Transfer-Encoding together");
    }
    if (h.version() < 11) {
      return std::string("Bad request: Transfer-Encoding in an HTTP/1.0 request");
    }
    if (codings.size() != 1 || codings[0] != "chunked") {
      std::string all;
      for (const auto& c : codings) all += (all.empty() ? "" : ", ") + c;
      return "Bad request: Transfer-Encoding \"" + all +
             "\" is not supported; the only accepted transfer coding is \"chunked\"";
    }
  }
  for (const auto& l : lengths) {
    if (l.empty() || l.find_first_not_of("0123456789") != std::string::npos) {
      return std::string("Bad request: malformed Content-Length");
    }
    if (l != lengths.front()) return std::string("Bad request: differing Content-Length values");
  }
  return std::nullopt;
}

class Session;

// State shared by the server and its sessions. Sessions hold it by shared_ptr
// so that a session destroyed late (e.g. while the io_context is torn down)
// still finds it.
struct Shared {
  ServerOptions options;
  std::shared_ptr<RequestHandler> handler;
  net::thread_pool* workers = nullptr;
  net::thread_pool* slow = nullptr;  // HandlerPool::kSlow
  bool auth_enabled = false;
  // Bytes of request bodies being read or handled and of responses not yet
  // written, over all connections (ServerOptions::max_buffered_bytes).
  std::atomic<size_t> buffered{0};
  std::atomic<int64_t> last_stall_scan_ns{0};
  std::atomic<size_t> evicting{0};  // sessions being closed to make room

  std::atomic<bool> stopping{false};
  std::atomic<size_t> rejecting{0};

  Mutex mu;
  CondVar cv;  // signalled when a session is unregistered
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions QVEC_GUARDED_BY(mu);
  uint64_t next_id QVEC_GUARDED_BY(mu) = 0;
};

// One connection. All members are touched only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)),
        shared_(std::move(shared)),
        idle_timer_(stream_.get_executor()),
        retry_timer_(stream_.get_executor()) {}

  // Since when (steady clock, ns) the connection has been waiting for a
  // request with nothing in flight; 0 when busy. Read by the acceptor.
  int64_t idle_since() const { return idle_since_ns_.load(std::memory_order_relaxed); }
  // Since when a response write has been in progress; 0 when none.
  int64_t write_started() const { return write_started_ns_.load(std::memory_order_relaxed); }
  size_t unsent() const { return unsent_atomic_.load(std::memory_order_relaxed); }
  // Claims the session for closing by the acceptor or the memory guard;
  // false if another already did.
  bool ClaimForEviction() { return !evicted_.exchange(true); }
  bool evicted() const { return evicted_.load(); }
  // The acceptor closes this session to make room: it no longer counts
  // towards max_connections (until it is gone, Shared::evicting holds it).
  void CountEviction() {
    counted_eviction_ = true;
    shared_->evicting.fetch_add(1);
  }

  ~Session() {
    size_t held = body_reserved_;
    for (const Item& item : items_) held += item.reserved + item.bytes;
    if (held > 0) shared_->buffered.fetch_sub(held);
    if (rejecting_) shared_->rejecting.fetch_sub(1);
    if (counted_eviction_) shared_->evicting.fetch_sub(1);
    if (registered_) {
      MutexLock lock(&shared_->mu);
      shared_->sessions.erase(id_);
      shared_->cv.SignalAll();
    }
  }

  // Counts the session towards max_connections and makes Stop() see it.
  void Register() {
    MutexLock lock(&shared_->mu);
    id_ = shared_->next_id++;
    shared_->sessions.emplace(id_, weak_from_this());
    registered_ = true;
  }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->ReadNext(); });
  }

  // Answers 503 without reading anything and closes.
  void RunReject() {
    rejecting_ = true;
    shared_->rejecting.fetch_add(1);
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->stop_reading_ = true;
      self->PushError(503, "Service unavailable: too many open connections", 11);
    });
  }

  // Graceful: answer what is in flight, then close.
  void Shutdown() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->closing_ = true;
      if (self->items_.empty() && !self->writing_ && !self->lingering_) self->CloseNow();
    });
  }

  void ForceClose() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->CloseNow(); });
  }

 private:
  // A request read and not yet answered, in arrival order.
  struct Item {
    std::optional<HttpRequest> request;       // until handed to the worker pool
    std::shared_ptr<BeastResponse> response;  // once known
    std::shared_ptr<FileResponse> file;       // a file body written instead of `response`
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;    // a HEAD request
    size_t reserved = 0;  // body bytes counted in Shared::buffered until handled
    size_t bytes = 0;     // response bytes counted in Shared::buffered until written
    HandlerPool pool = HandlerPool::kWorkers;
    std::string cors_origin;  // Access-Control-Allow-Origin of its answer, "" = none
    std::string method, target;  // for the access log
    int64_t start_ns = 0;
  };

  // The Access-Control-Allow-Origin value for a request from `origin`
  // ("" when CORS is off, the request names no origin, or it is not allowed).
  std::string CorsOriginFor(std::string_view origin) const {
    if (origin.empty()) return "";
    for (const std::string& allowed : opts().cors_origins) {
      if (allowed == "*") return "*";
      if (allowed == origin) return std::string(origin);
    }
    return "";
  }

  // Gives `item` what its answer and the access log need of the request
  // whose header was read last.
  void Stamp(Item* item) const {
    item->cors_origin = current_cors_;
    item->method = current_method_;
    item->target = current_target_;
    item->start_ns = current_start_ns_ ? current_start_ns_ : NowNs();
  }

  // One line per answered request: at info level with ServerOptions::access_log.
  void LogRequest(const Item& item, unsigned status, size_t body_bytes) const {
    const auto level = opts().access_log ? spdlog::level::info : spdlog::level::debug;
    if (!spdlog::should_log(level)) return;
    std::string_view path = std::string_view(item.target).substr(0, item.target.find('?'));
    std::string_view collection;
    if (path.substr(0, 13) == "/collections/") {
      collection = path.substr(13);
      collection = collection.substr(0, collection.find('/'));
    }
    std::string target = item.target.substr(0, 256);
    for (char& c : target) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';  // no forged log lines
    }
    spdlog::log(level, "http {} {} {} {} bytes {:.3f} ms collection={}", item.method, target,
                status, body_bytes, static_cast<double>(NowNs() - item.start_ns) / 1e6,
                collection.empty() ? "-" : std::string(collection).substr(0, 255));
  }

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // Counts `bytes` in Shared::buffered unless that would pass the bound
  // (one reservation always fits when nothing else is held).
  bool TryReserve(size_t bytes) {
    const size_t before = shared_->buffered.fetch_add(bytes);
    if (before == 0 || before + bytes <= opts().max_buffered_bytes) return true;
    shared_->buffered.fetch_sub(bytes);
    return false;
  }
  void Release(size_t bytes) {
    if (bytes > 0) shared_->buffered.fetch_sub(bytes);
  }
  bool OverBudget() const { return shared_->buffered.load() > opts().max_buffered_bytes; }
  // Closes the connections whose response writes have stalled longest
  // (largest unsent output first), at most one scan per 100 ms.
  void EvictStalledWriters();
  // Runs `fn` on the strand after a short wait (memory budget back-off).
  template <typename Fn>
  void RetrySoon(Fn&& fn) {
    EvictStalledWriters();
    retry_timer_.expires_after(std::chrono::milliseconds(20));
    retry_timer_.async_wait(
        [self = shared_from_this(), fn = std::forward<Fn>(fn)](beast::error_code ec) mutable {
          if (ec || self->closed_) return;
          fn();
        });
  }

  const ServerOptions& opts() const { return shared_->options; }

  // ---- reading ----

  void ReadNext() {
    if (shared_->stopping.load()) closing_ = true;
    if (closing_) {
      if (items_.empty() && !writing_ && !lingering_) CloseNow();
      return;
    }
    if (reading_ || stop_reading_ || closed_ || lingering_) return;
    if (items_.size() >= opts().max_pipelined) return;
    // Reading resumes once the client reads what it was sent (OnWrite).
    if (unsent_bytes_ > opts().max_unsent_per_connection) return;
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(opts().max_header_bytes));
    // The body limit is checked explicitly after the auth check. (Not
    // boost::none: Boost 1.74's parser then rejects every body.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (buffer_.size() == 0) {
      // Wait for the first byte of the next request; request_start_timeout
      // (first request) or idle_timeout applies, armed only while nothing
      // is in flight.
      waiting_first_byte_ = true;
      stream_.expires_never();
      MaybeArmIdleTimer();
      MarkIdle();
      stream_.async_read_some(buffer_.prepare(kReadChunk),
                              [self = shared_from_this()](beast::error_code ec, size_t n) {
                                self->OnFirstBytes(ec, n);
                              });
    } else {
      ReadHeader();
    }
  }

  void OnFirstBytes(beast::error_code ec, size_t n) {
    waiting_first_byte_ = false;
    idle_since_ns_.store(0);
    DisarmIdleTimer();
    if (ec) return OnReadError(ec);
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    stream_.expires_after(opts().header_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    const unsigned version = header.version();
    ++requests_seen_;

    // Message framing first (RFC 9112, section 6): a request whose length is
    // ambiguous is refused and the connection closed, so that no byte of its
    // body is ever read as a request of its own.
    if (std::optional<std::string> why = FramingError(header)) {
      return FailRequest(400, *why, version);
    }

    current_method_ = std::string(SV(header.method_string()));
    current_target_ = std::string(SV(header.target()));
    current_start_ns_ = NowNs();
    current_cors_.clear();
    if (!opts().cors_origins.empty()) {
      current_cors_ = CorsOriginFor(SV(header[http::field::origin]));
      // A CORS preflight: answered here, before authentication (browsers
      // send no credentials with it) and without reaching the handler.
      if (header.method() == http::verb::options &&
          header.find(http::field::access_control_request_method) != header.end()) {
        const bool reusable = parser_->is_done() && header.keep_alive();
        reading_ = false;
        if (!reusable) stop_reading_ = true;
        if (current_cors_.empty()) {
          PushError(403, "CORS: this origin is not allowed (see --cors-origin)", version, reusable);
        } else {
          HttpResponse r;
          r.status = 204;
          r.content_type.clear();
          r.headers.emplace_back("Access-Control-Allow-Methods",
                                 "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
          std::string_view asked = SV(header[http::field::access_control_request_headers]);
          r.headers.emplace_back("Access-Control-Allow-Headers",
                                 asked.empty() || !SafeHeaderText(asked)
                                     ? std::string("content-type, api-key, authorization")
                                     : std::string(asked));
          r.headers.emplace_back("Access-Control-Max-Age", "86400");
          Item item;
          item.version = version;
          item.keep_alive = reusable;
          Stamp(&item);
          item.response = MakeResponse(std::move(r), version, false, current_cors_);
          LogRequest(item, 204, 0);
          items_.push_back(std::move(item));
          TryWrite();
        }
        ReadNext();
        return;
      }
    }

    // Authentication, before any body byte is read.
    if (unsigned status = CheckAuth(header); status != 0) {
      // Without reading the body the connection cannot be reused, unless
      // there is none.
      const bool reusable = parser_->is_done() && header.keep_alive();
      reading_ = false;
      if (!reusable) stop_reading_ = true;
      PushError(status, status == 401 ? kUnauthenticatedMessage : kReadOnlyMessage, version,
                reusable, header.method() == http::verb::head);
      ReadNext();
      return;
    }

    if (auto length = parser_->content_length(); length && *length > opts().max_body_bytes) {
      return FailRequest(413,
                         fmt::format("Payload too large: the request body has {} bytes, the "
                                     "limit is {} bytes",
                                     *length, opts().max_body_bytes),
                         version);
    }
    parser_->body_limit(static_cast<std::uint64_t>(opts().max_body_bytes));

    if (parser_->is_done()) return OnRequestComplete();
    // The body counts against the memory budget from now until it is
    // handled: its declared length, or the body limit when chunked.
    ReserveBodyThenRead(parser_->content_length().value_or(opts().max_body_bytes));
  }

  void ReserveBodyThenRead(size_t bytes) {
    if (!TryReserve(bytes)) {
      // Too much is buffered for all connections: wait (TCP pushes back on
      // this client meanwhile) while stalled writers are closed.
      return RetrySoon([this, bytes] { ReserveBodyThenRead(bytes); });
    }
    body_reserved_ = bytes;
    const auto& header = parser_->get();
    const unsigned version = header.version();

    if (auto it = header.find(http::field::expect);
        it != header.end() && IEquals(Trim(SV(it->value())), "100-continue") && version == 11 &&
        !writing_ && items_.empty()) {
      writing_ = true;
      stream_.expires_after(opts().idle_timeout);
      net::async_write(stream_, net::buffer(kContinue.data(), kContinue.size()),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->writing_ = false;
                         if (ec) return self->CloseNow();
                         self->TryWrite();
                       });
    }
    stream_.expires_after(opts().read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequestComplete();
                     });
  }

  // 0 when allowed, else 401 or 403.
  unsigned CheckAuth(const http::request_header<>& header) {
    if (!shared_->auth_enabled) return 0;
    Access access = Access::kWrite;
    try {
      access = shared_->handler->RequiredAccess(SV(header.method_string()), SV(header.target()));
    } catch (...) {
      access = Access::kWrite;
    }
    if (access == Access::kNone) return 0;
    const auto key = ProvidedKey(header);
    if (!key || key->empty()) return 401;
    const bool full = !opts().api_key.empty() && ConstantTimeEquals(*key, opts().api_key);
    const bool read_only =
        !opts().read_only_api_key.empty() && ConstantTimeEquals(*key, opts().read_only_api_key);
    if (full) return 0;
    if (read_only) return access == Access::kWrite ? 403 : 0;
    return 401;
  }

  void OnReadError(beast::error_code ec) {
    reading_ = false;
    Release(body_reserved_);
    body_reserved_ = 0;
    if (ec == http::error::header_limit) {
      return FailRequest(431, fmt::format("Request header fields too large (limit {} bytes)",
                                          opts().max_header_bytes));
    }
    if (ec == http::error::body_limit) {
      return FailRequest(
          413, fmt::format("Payload too large: the limit is {} bytes", opts().max_body_bytes));
    }
    if (IsMalformedRequest(ec) && !closed_) {
      return FailRequest(400, fmt::format("Bad request: {}", ec.message()));
    }
    {
      // Client went away or was too slow (the timeout closed the socket), or
      // we closed it. Answer what is already in flight if we still can.
      stop_reading_ = true;
      if (ec == beast::error::timeout || ec == net::error::operation_aborted) {
        CloseNow();
        return;
      }
      if (items_.empty() && !writing_) CloseNow();
    }
  }

  // Answers an unreadable request and closes the connection afterwards.
  void FailRequest(unsigned status, std::string_view message, unsigned version = 11) {
    spdlog::debug("http: answering {} and closing the connection: {}", status, message);
    reading_ = false;
    stop_reading_ = true;
    PushError(status, message, version);
  }

  void PushError(unsigned status, std::string_view message, unsigned version,
                 bool keep_alive = false, bool head = false) {
    Item item;
    item.version = version;
    item.keep_alive = keep_alive;
    item.head = head;
    Stamp(&item);
    item.response = MakeResponse(ErrorResponse(status, message), version, head, current_cors_);
    LogRequest(item, status, item.response->body().size());
    items_.push_back(std::move(item));
    TryWrite();
  }

  void OnRequestComplete() {
    reading_ = false;
    if (closing_ || closed_) {
      if (items_.empty() && !writing_) CloseNow();
      return;
    }
    auto msg = parser_->release();
    parser_.reset();
    Item item;
    item.version = msg.version();
    item.keep_alive = msg.keep_alive();
    item.head = msg.method() == http::verb::head;
    item.reserved = body_reserved_;
    body_reserved_ = 0;
    Stamp(&item);
    try {
      item.pool = shared_->handler->PoolFor(SV(msg.method_string()), SV(msg.target()));
    } catch (...) {
      item.pool = HandlerPool::kWorkers;
    }
    if (!item.keep_alive) stop_reading_ = true;
    item.request = ToHttpRequest(std::move(msg));
    items_.push_back(std::move(item));
    Dispatch();
    ReadNext();
  }

  // ---- handling (one request at a time, in order) ----

  void Dispatch() {
    if (handler_running_ || closed_) return;
    for (auto& item : items_) {
      if (item.response) continue;
      if (!item.request) return;  // should not happen: running item has no request
      // Pipelined requests wait while this connection's answers go unread,
      // and every connection waits while too much is buffered in all.
      if (unsent_bytes_ > opts().max_unsent_per_connection) return;  // OnWrite resumes
      if (item.pool != HandlerPool::kInline && OverBudget()) {
        return RetrySoon([this] { Dispatch(); });
      }
      handler_running_ = true;
      auto run = [self = shared_from_this(), req = std::move(*item.request)]() {
        HttpResponse res;
        try {
          res = self->shared_->handler->Handle(req);
        } catch (const std::exception& e) {
          spdlog::error("request handler threw on {} {}: {}", req.method, req.target, e.what());
          res = ErrorResponse(500, fmt::format("Internal server error: {}", e.what()));
        } catch (...) {
          spdlog::error("request handler threw on {} {}", req.method, req.target);
          res = ErrorResponse(500, "Internal server error");
        }
        net::post(self->stream_.get_executor(),
                  [self, res = std::move(res)]() mutable { self->OnHandled(std::move(res)); });
      };
      item.request.reset();
      switch (item.pool) {
        case HandlerPool::kInline:
          run();  // answers through OnHandled, posted to this strand
          break;
        case HandlerPool::kSlow:
          net::post(*shared_->slow, std::move(run));
          break;
        case HandlerPool::kWorkers:
          net::post(*shared_->workers, std::move(run));
          break;
      }
      return;
    }
  }

  void OnHandled(HttpResponse res) {
    handler_running_ = false;
    for (auto& item : items_) {
      if (item.response) continue;
      unsigned status = res.status;
      const std::string file_path = std::move(res.file_path);
      try {
        item.response = MakeResponse(std::move(res), item.version, item.head, item.cors_origin);
        if (!file_path.empty()) {
          item.file = MakeFileResponse(*item.response, file_path);
          if (item.file == nullptr) {
            status = 404;
            item.response = MakeResponse(ErrorResponse(404, "Not found: the file is gone"),
                                         item.version, item.head, item.cors_origin);
          } else if (item.head) {
            // HEAD: the head of the file response, no body.
            item.response->content_length(item.file->size);
            item.file.reset();
          }
        }
      } catch (const std::exception& e) {
        item.file.reset();
        item.response =
            MakeResponse(ErrorResponse(500, fmt::format("Internal server error: {}", e.what())),
                         item.version, item.head, item.cors_origin);
      }
      LogRequest(item, status, item.file ? item.file->size : item.response->body().size());
      // The request is gone; its answer is held until written.
      Release(item.reserved);
      item.reserved = 0;
      item.bytes = item.response->body().size() + 256;
      shared_->buffered.fetch_add(item.bytes);
      unsent_bytes_ += item.bytes;
      unsent_atomic_.store(unsent_bytes_, std::memory_order_relaxed);
      break;
    }
    Dispatch();
    TryWrite();
  }

  // ---- writing ----

  void TryWrite() {
    if (writing_ || closed_ || items_.empty() || !items_.front().response) return;
    Item& item = items_.front();
    const bool keep_alive = item.keep_alive && !closing_;
    item.response->keep_alive(keep_alive);
    writing_ = true;
    write_started_ns_.store(NowNs(), std::memory_order_relaxed);
    stream_.expires_after(opts().idle_timeout);
    if (item.file) {
      item.file->message.keep_alive(keep_alive);
      return WriteFileSome(keep_alive);
    }
    http::async_write(stream_, *item.response,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->OnWrite(ec, keep_alive);
                      });
  }

  // Writes a file body a piece at a time, re-arming the timeout for each
  // (a large download to a slow reader is fine; a stalled one is closed).
  void WriteFileSome(bool keep_alive) {
    stream_.expires_after(opts().idle_timeout);
    http::async_write_some(
        stream_, *items_.front().file->serializer,
        [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
          if (ec || self->items_.front().file->serializer->is_done()) {
            return self->OnWrite(ec, keep_alive);
          }
          self->WriteFileSome(keep_alive);
        });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    writing_ = false;
    write_started_ns_.store(0, std::memory_order_relaxed);
    {
      Item& done = items_.front();
      Release(done.bytes);
      unsent_bytes_ -= std::min(unsent_bytes_, done.bytes);
      unsent_atomic_.store(unsent_bytes_, std::memory_order_relaxed);
      done.bytes = 0;
    }
    if (ec) return CloseNow();
    items_.pop_front();
    Dispatch();
    if (!keep_alive) return LingeringClose();
    if (items_.empty() && (stop_reading_ || closing_)) return LingeringClose();
    TryWrite();
    ReadNext();
    MaybeArmIdleTimer();
    MarkIdle();
  }

  // ---- idle timeout between requests ----

  // Marks the connection idle (for the acceptor's eviction) when it waits
  // for a request with nothing in flight.
  void MarkIdle() {
    if (waiting_first_byte_ && items_.empty() && !writing_ && !handler_running_ && !closed_) {
      idle_since_ns_.store(NowNs(), std::memory_order_relaxed);
    }
  }

  void MaybeArmIdleTimer() {
    if (!waiting_first_byte_ || !items_.empty() || writing_ || closed_) return;
    const uint64_t gen = ++idle_gen_;
    // A connection that never sent a request gets the short timeout.
    idle_timer_.expires_after(requests_seen_ == 0 ? opts().request_start_timeout
                                                  : opts().idle_timeout);
    idle_timer_.async_wait([self = shared_from_this(), gen](beast::error_code ec) {
      if (ec || gen != self->idle_gen_) return;
      if (self->waiting_first_byte_ && self->items_.empty() && !self->writing_) self->CloseNow();
    });
  }

  void DisarmIdleTimer() {
    ++idle_gen_;
    idle_timer_.cancel();
  }

  // ---- closing ----

  // Half-closes, then discards what the client still sends for a moment, so
  // the last response is not lost to a TCP reset caused by unread data.
  void LingeringClose() {
    if (closed_ || lingering_) return;
    if (reading_) return CloseNow();  // a read is pending; cannot drain concurrently
    lingering_ = true;
    DisarmIdleTimer();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return CloseNow();
    stream_.expires_after(kLingerTime);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(net::buffer(drain_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->CloseNow();
                              self->Drain();
                            });
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    idle_since_ns_.store(0);
    retry_timer_.cancel();
    DisarmIdleTimer();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  net::steady_timer idle_timer_;
  net::steady_timer retry_timer_;  // memory-budget back-off
  size_t unsent_bytes_ = 0;        // response bytes queued or being written
  size_t body_reserved_ = 0;       // body bytes reserved for the request being read
  uint64_t requests_seen_ = 0;
  std::atomic<size_t> unsent_atomic_{0};
  std::atomic<int64_t> idle_since_ns_{0};
  std::atomic<int64_t> write_started_ns_{0};
  std::atomic<bool> evicted_{false};
  bool counted_eviction_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Item> items_;
  std::array<char, 4096> drain_{};
  uint64_t id_ = 0;
  uint64_t idle_gen_ = 0;
  bool registered_ = false;
  bool rejecting_ = false;
  bool reading_ = false;
  bool waiting_first_byte_ = false;
  bool writing_ = false;
  bool handler_running_ = false;
  bool stop_reading_ = false;  // no further requests are read on this connection
  // The request whose header was read last (for its answer's CORS header and
  // the access log).
  std::string current_cors_, current_method_, current_target_;
  int64_t current_start_ns_ = 0;
  bool closing_ = false;       // server is stopping: close once in-flight work is answered
  bool lingering_ = false;
  bool closed_ = false;
};

void Session::EvictStalledWriters() {
  const int64_t now = NowNs();
  int64_t last = shared_->last_stall_scan_ns.load();
  if (now - last < 100'000'000 || !shared_->last_stall_scan_ns.compare_exchange_strong(last, now)) {
    return;
  }
  const size_t budget = opts().max_buffered_bytes;
  const size_t held = shared_->buffered.load();
  if (held <= budget) return;
  std::vector<std::shared_ptr<Session>> stalled;
  {
    MutexLock lock(&shared_->mu);
    for (auto& [id, weak] : shared_->sessions) {
      auto s = weak.lock();
      if (!s || s.get() == this) continue;
      const int64_t started = s->write_started();
      if (started > 0 && now - started > 1'000'000'000) stalled.push_back(std::move(s));
    }
  }
  std::sort(stalled.begin(), stalled.end(),
            [](const auto& a, const auto& b) { return a->unsent() > b->unsent(); });
  size_t excess = held - budget;
  for (auto& s : stalled) {
    if (excess == 0) break;
    if (!s->ClaimForEviction()) continue;
    const size_t freed = s->unsent();
    spdlog::warn(
        "http: closing a connection whose client has not read {} bytes of answers for "
        "over a second (memory for buffered answers is full)",
        freed);
    s->ForceClose();
    excess -= std::min(excess, freed);
  }
}

}  // namespace

Status ServerOptions::Validate() const {
  if (host.empty()) return InvalidArgumentError("ServerOptions.host must not be empty");
  if (io_threads == 0) return InvalidArgumentError("ServerOptions.io_threads must be at least 1");
  if (io_threads > 1024) return InvalidArgumentError("ServerOptions.io_threads is too large");
  if (worker_threads > 4096) {
    return InvalidArgumentError("ServerOptions.worker_threads is too large");
  }
  if (max_body_bytes == 0) return InvalidArgumentError("ServerOptions.max_body_bytes must be > 0");
  if (max_header_bytes < 256 || max_header_bytes > std::numeric_limits<std::uint32_t>::max()) {
    return InvalidArgumentError("ServerOptions.max_header_bytes must be in [256, 2^32)");
  }
  if (read_timeout.count() <= 0 || header_timeout.count() <= 0 ||
      request_start_timeout.count() <= 0) {
    return InvalidArgumentError(
        "ServerOptions.read_timeout, header_timeout and request_start_timeout must be positive");
  }
  if (max_buffered_bytes < max_body_bytes) {
    return InvalidArgumentError("ServerOptions.max_buffered_bytes must be >= max_body_bytes");
  }
  if (idle_timeout.count() <= 0) {
    return InvalidArgumentError("ServerOptions.idle_timeout must be positive");
  }
  if (max_connections == 0) {
    return InvalidArgumentError("ServerOptions.max_connections must be at least 1");
  }
  if (max_pipelined == 0) {
    return InvalidArgumentError("ServerOptions.max_pipelined must be at least 1");
  }
  if (shutdown_grace.count() < 0) {
    return InvalidArgumentError("ServerOptions.shutdown_grace must not be negative");
  }
  for (const std::string* key : {&api_key, &read_only_api_key}) {
    for (char c : *key) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
        return InvalidArgumentError("API keys must not contain spaces or control characters");
      }
    }
  }
  return Status::Ok();
}

struct HttpServer::Impl {
  enum class State { kNew, kRunning, kStopping, kStopped };

  Impl(ServerOptions options, std::shared_ptr<RequestHandler> handler)
      : shared(std::make_shared<Shared>()),
        acceptor(net::make_strand(ioc)),
        accept_retry(acceptor.get_executor()) {
    shared->options = std::move(options);
    shared->handler = std::move(handler);
    shared->auth_enabled =
        !shared->options.api_key.empty() || !shared->options.read_only_api_key.empty();
  }

  void DoAccept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || shared->stopping.load() || !acceptor.is_open()) {
      return;
    }
    if (ec) {
      // E.g. out of file descriptors: back off instead of spinning.
      spdlog::warn("http server: accept failed: {}", ec.message());
      accept_retry.expires_after(std::chrono::milliseconds(100));
      accept_retry.async_wait([this](beast::error_code ec2) {
        if (!ec2 && !shared->stopping.load()) DoAccept();
      });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const size_t max = shared->options.max_connections;
    size_t active;
    std::shared_ptr<Session> victim;
    {
      MutexLock lock(&shared->mu);
      active = shared->sessions.size() - shared->evicting.load();
      if (active >= max) {
        // Make room by closing the connection idle longest.
        int64_t oldest = std::numeric_limits<int64_t>::max();
        for (auto& [id, weak] : shared->sessions) {
          auto s = weak.lock();
          if (!s) continue;
          const int64_t since = s->idle_since();
          if (since > 0 && since < oldest && !s->evicted()) {
            oldest = since;
            victim = std::move(s);
          }
        }
      }
    }
    if (victim && victim->ClaimForEviction()) {
      victim->CountEviction();
      victim->ForceClose();
      --active;
    }
    if (active >= max) {
      if (shared->rejecting.load() < max) {
        std::make_shared<Session>(std::move(socket), shared)->RunReject();
      } else {
        socket.close(ignored);
      }
    } else {
      auto session = std::make_shared<Session>(std::move(socket), shared);
      session->Register();
      session->Run();
    }
    DoAccept();
  }

  std::vector<std::shared_ptr<Session>> LiveSessions() {
    std::vector<std::shared_ptr<Session>> out;
    MutexLock lock(&shared->mu);
    out.reserve(shared->sessions.size());
    for (auto& [id, weak] : shared->sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  std::shared_ptr<Shared> shared;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::steady_timer accept_retry;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_guard;
  // Declared after ioc: destroyed first, so that tasks it drops (which own
  // sessions, whose sockets belong to ioc) are destroyed while ioc lives.
  std::unique_ptr<net::thread_pool> workers;
  std::unique_ptr<net::thread_pool> slow;
  std::vector<std::thread> io_threads;
  std::atomic<uint16_t> port{0};

  Mutex state_mu;
  CondVar state_cv;  // signalled when `state` changes
  State state QVEC_GUARDED_BY(state_mu) = State::kNew;
};

HttpServer::HttpServer(ServerOptions options, std::shared_ptr<RequestHandler> handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port.load(); }

Status HttpServer::Start() {
  Impl& s = *impl_;
  {
    MutexLock lock(&s.state_mu);
    if (s.state != Impl::State::kNew) {
      return FailedPreconditionError("HttpServer::Start called twice or after Stop");
    }
  }
  if (!s.shared->handler) return InvalidArgumentError("HttpServer needs a request handler");
  ServerOptions& o = s.shared->options;
  if (Status st = o.Validate(); !st.ok()) return st;
  // Every connection is a file descriptor; beyond the process's limit
  // accept() fails for everyone. Keep 64 for the database and logs.
  if (struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                        rl.rlim_cur > 128 && o.max_connections > rl.rlim_cur - 64) {
    spdlog::warn("http server: max_connections lowered from {} to {} (open-file limit {})",
                 o.max_connections, rl.rlim_cur - 64, rl.rlim_cur);
    o.max_connections = rl.rlim_cur - 64;
  }

  beast::error_code ec;
  tcp::resolver resolver(s.ioc);
  auto results = resolver.resolve(o.host, std::to_string(o.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return InvalidArgumentError(fmt::format("cannot resolve listen address \"{}\": {}", o.host,
                                            ec ? ec.message() : "no address"));
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  const std::string where = fmt::format("{}:{}", o.host, o.port);

  s.acceptor.open(endpoint.protocol(), ec);
  if (ec) return UnavailableError(fmt::format("cannot listen on {}: {}", where, ec.message()));
  s.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  s.acceptor.bind(endpoint, ec);
  if (ec) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    if (ec == net::error::address_in_use) {
      return UnavailableError(fmt::format(
          "cannot listen on {}: address already in use (is another server running?)", where));
    }
    return UnavailableError(fmt::format("cannot listen on {}: {}", where, ec.message()));
  }
  s.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    s.acceptor.close(ignored);
    return UnavailableError(fmt::format("cannot listen on {}: {}", where, ec.message()));
  }
  s.port = s.acceptor.local_endpoint(ec).port();

  size_t workers = o.worker_threads;
  if (workers == 0) workers = std::max(1u, std::thread::hardware_concurrency());
  s.workers = std::make_unique<net::thread_pool>(workers);
  s.shared->workers = s.workers.get();
  s.slow = std::make_unique<net::thread_pool>(1);
  s.shared->slow = s.slow.get();
  s.work_guard.emplace(net::make_work_guard(s.ioc));
  net::dispatch(s.acceptor.get_executor(), [&s] { s.DoAccept(); });

  s.io_threads.reserve(o.io_threads);
  for (size_t i = 0; i < o.io_threads; ++i) {
    s.io_threads.emplace_back([&s] {
      for (;;) {
        try {
          s.ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http server: exception on I/O thread: {}", e.what());
        }
      }
    });
  }
  {
    MutexLock lock(&s.state_mu);
    s.state = Impl::State::kRunning;
  }
  spdlog::info("http server started on {}:{} ({} I/O thread(s), {} worker thread(s){})", o.host,
               s.port.load(), o.io_threads, workers,
               s.shared->auth_enabled ? ", API key required" : "");
  return Status::Ok();
}

void HttpServer::Stop() {
  Impl& s = *impl_;
  {
    MutexLock lock(&s.state_mu);
    if (s.state == Impl::State::kNew) {
      s.state = Impl::State::kStopped;
      s.state_cv.SignalAll();
      return;
    }
    if (s.state == Impl::State::kStopping) {
      while (s.state != Impl::State::kStopped) s.state_cv.Wait(&s.state_mu);
      return;
    }
    if (s.state == Impl::State::kStopped) return;
    s.state = Impl::State::kStopping;
  }
  const auto begin = std::chrono::steady_clock::now();
  Shared& sh = *s.shared;
  sh.stopping = true;
  net::post(s.acceptor.get_executor(), [&s] {
    beast::error_code ec;
    s.acceptor.close(ec);
    s.accept_retry.cancel();
  });

  // Ask every connection to finish its in-flight requests and close; repeat
  // for connections accepted meanwhile.
  const auto deadline = begin + sh.options.shutdown_grace;
  for (;;) {
    for (auto& session : s.LiveSessions()) session->Shutdown();
    MutexLock lock(&sh.mu);
    if (sh.sessions.empty()) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    sh.cv.WaitUntil(&sh.mu, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  size_t forced = 0;
  {
    auto remaining = s.LiveSessions();
    forced = remaining.size();
    for (auto& session : remaining) session->ForceClose();
  }
  if (forced > 0) {
    MutexLock lock(&sh.mu);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (!sh.sessions.empty() && std::chrono::steady_clock::now() < until) {
      sh.cv.WaitUntil(&sh.mu, until);
    }
  }

  s.work_guard.reset();
  s.ioc.stop();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
  for (auto* pool : {s.workers.get(), s.slow.get()}) {
    if (pool != nullptr) {
      pool->stop();
      pool->join();
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  if (forced > 0) {
    spdlog::warn(
        "http server stopped after {:.2f} s; closed {} connection(s) still busy after "
        "the {} s grace period",
        secs, forced, sh.options.shutdown_grace.count());
  } else {
    spdlog::info("http server stopped ({:.2f} s)", secs);
  }
  {
    MutexLock lock(&s.state_mu);
    s.state = Impl::State::kStopped;
  }
  s.state_cv.SignalAll();
}

void HttpServer::Wait() {
  Impl& s = *impl_;
  MutexLock lock(&s.state_mu);
  while (s.state != Impl::State::kStopped && s.state != Impl::State::kNew) {
    s.state_cv.Wait(&s.state_mu);
  }
}

}  // namespace qvec::server
