#include "server/http_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
#include <condition_variable>
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

#include "engine/json_writer.h"

namespace qvec::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using BeastResponse = http::response<http::string_body>;

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
std::shared_ptr<BeastResponse> MakeResponse(HttpResponse in, unsigned version, bool head = false) {
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

class Session;

// State shared by the server and its sessions. Sessions hold it by shared_ptr
// so that a session destroyed late (e.g. while the io_context is torn down)
// still finds it.
struct Shared {
  ServerOptions options;
  std::shared_ptr<RequestHandler> handler;
  net::thread_pool* workers = nullptr;
  bool auth_enabled = false;

  std::atomic<bool> stopping{false};
  std::atomic<size_t> rejecting{0};

  std::mutex mu;
  std::condition_variable cv;  // notified when a session is unregistered
  std::unordered_map<uint64_t, std::weak_ptr<Session>> sessions;
  uint64_t next_id = 0;
};

// One connection. All members are touched only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<Shared> shared)
      : stream_(std::move(socket)),
        shared_(std::move(shared)),
        idle_timer_(stream_.get_executor()) {}

  ~Session() {
    if (rejecting_) shared_->rejecting.fetch_sub(1);
    if (registered_) {
      std::lock_guard<std::mutex> lock(shared_->mu);
      shared_->sessions.erase(id_);
      shared_->cv.notify_all();
    }
  }

  // Counts the session towards max_connections and makes Stop() see it.
  void Register() {
    std::lock_guard<std::mutex> lock(shared_->mu);
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
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;  // a HEAD request
  };

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
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(opts().max_header_bytes));
    // The body limit is checked explicitly after the auth check. (Not
    // boost::none: Boost 1.74's parser then rejects every body.)
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (buffer_.size() == 0) {
      // Wait for the first byte of the next request; idle_timeout applies
      // (armed only while nothing is in flight), not read_timeout.
      waiting_first_byte_ = true;
      stream_.expires_never();
      MaybeArmIdleTimer();
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
    DisarmIdleTimer();
    if (ec) return OnReadError(ec);
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    stream_.expires_after(opts().read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    const unsigned version = header.version();

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
    item.response = MakeResponse(ErrorResponse(status, message), version, head);
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
    if (!item.keep_alive) stop_reading_ = true;
    item.request = ToHttpRequest(std::move(msg));
    items_.push_back(std::move(item));
    Dispatch();
    ReadNext();
  }

  // ---- handling (one request at a time, in order) ----

  void Dispatch() {
    if (handler_running_) return;
    for (auto& item : items_) {
      if (item.response) continue;
      if (!item.request) return;  // should not happen: running item has no request
      handler_running_ = true;
      net::post(*shared_->workers, [self = shared_from_this(), req = std::move(*item.request)]() {
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
      });
      item.request.reset();
      return;
    }
  }

  void OnHandled(HttpResponse res) {
    handler_running_ = false;
    for (auto& item : items_) {
      if (item.response) continue;
      try {
        item.response = MakeResponse(std::move(res), item.version, item.head);
      } catch (const std::exception& e) {
        item.response =
            MakeResponse(ErrorResponse(500, fmt::format("Internal server error: {}", e.what())),
                         item.version, item.head);
      }
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
    stream_.expires_after(opts().idle_timeout);
    http::async_write(stream_, *item.response,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                        self->OnWrite(ec, keep_alive);
                      });
  }

  void OnWrite(beast::error_code ec, bool keep_alive) {
    writing_ = false;
    if (ec) return CloseNow();
    items_.pop_front();
    if (!keep_alive) return LingeringClose();
    if (items_.empty() && (stop_reading_ || closing_)) return LingeringClose();
    TryWrite();
    ReadNext();
    MaybeArmIdleTimer();
  }

  // ---- idle timeout between requests ----

  void MaybeArmIdleTimer() {
    if (!waiting_first_byte_ || !items_.empty() || writing_ || closed_) return;
    const uint64_t gen = ++idle_gen_;
    idle_timer_.expires_after(opts().idle_timeout);
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
    DisarmIdleTimer();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<Shared> shared_;
  net::steady_timer idle_timer_;
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
  bool closing_ = false;       // server is stopping: close once in-flight work is answered
  bool lingering_ = false;
  bool closed_ = false;
};

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
  if (read_timeout.count() <= 0) {
    return InvalidArgumentError("ServerOptions.read_timeout must be positive");
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
    size_t active;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      active = shared->sessions.size();
    }
    const size_t max = shared->options.max_connections;
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
    std::lock_guard<std::mutex> lock(shared->mu);
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
  std::vector<std::thread> io_threads;
  std::atomic<uint16_t> port{0};

  std::mutex state_mu;
  std::condition_variable state_cv;
  State state = State::kNew;
};

HttpServer::HttpServer(ServerOptions options, std::shared_ptr<RequestHandler> handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

uint16_t HttpServer::port() const { return impl_->port.load(); }

Status HttpServer::Start() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.state_mu);
    if (s.state != Impl::State::kNew) {
      return FailedPreconditionError("HttpServer::Start called twice or after Stop");
    }
  }
  if (!s.shared->handler) return InvalidArgumentError("HttpServer needs a request handler");
  const ServerOptions& o = s.shared->options;
  if (Status st = o.Validate(); !st.ok()) return st;

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
    std::lock_guard<std::mutex> lock(s.state_mu);
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
    std::unique_lock<std::mutex> lock(s.state_mu);
    if (s.state == Impl::State::kNew) {
      s.state = Impl::State::kStopped;
      s.state_cv.notify_all();
      return;
    }
    if (s.state == Impl::State::kStopping) {
      s.state_cv.wait(lock, [&] { return s.state == Impl::State::kStopped; });
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
    std::unique_lock<std::mutex> lock(sh.mu);
    if (sh.sessions.empty()) break;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    sh.cv.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)),
                     [&] { return sh.sessions.empty(); });
  }
  size_t forced = 0;
  {
    auto remaining = s.LiveSessions();
    forced = remaining.size();
    for (auto& session : remaining) session->ForceClose();
  }
  if (forced > 0) {
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return sh.sessions.empty(); });
  }

  s.work_guard.reset();
  s.ioc.stop();
  for (auto& t : s.io_threads) t.join();
  s.io_threads.clear();
  if (s.workers) {
    s.workers->stop();
    s.workers->join();
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
    std::lock_guard<std::mutex> lock(s.state_mu);
    s.state = Impl::State::kStopped;
  }
  s.state_cv.notify_all();
}

void HttpServer::Wait() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.state_mu);
  s.state_cv.wait(lock,
                  [&] { return s.state == Impl::State::kStopped || s.state == Impl::State::kNew; });
}

}  // namespace qvec::server
