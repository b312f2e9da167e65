// Tests of server/http_server over real sockets, with a fake RequestHandler.
#include "qvec/version.h"
#include "server/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace qvec::server {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr char kUnauthenticatedBody[] =
    R"({"status":{"error":"Must provide an API key or an Authorization bearer token"},"time":0.0})";

// Echoes the request. Targets: /healthz (Access::kNone), /slow (sleeps
// 300 ms), /sleep/N (sleeps N ms), /throw (throws). GET needs kRead, other
// methods kWrite.
class FakeHandler : public RequestHandler {
 public:
  Access RequiredAccess(std::string_view method, std::string_view target) const override {
    if (target.rfind("/healthz", 0) == 0) return Access::kNone;
    return method == "GET" ? Access::kRead : Access::kWrite;
  }

  HttpResponse Handle(const HttpRequest& req) override {
    calls++;
    if (req.target == "/slow") {
      slow_started = true;
      std::this_thread::sleep_for(300ms);
    } else if (req.target.rfind("/sleep/", 0) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(req.target.substr(7))));
    } else if (req.target == "/throw") {
      throw std::runtime_error("boom");
    } else if (req.target.rfind("/file/", 0) == 0) {
      HttpResponse res;
      res.content_type = "application/octet-stream";
      res.file_path = req.target.substr(5);  // "/file/tmp/x" -> "/tmp/x"
      return res;
    }
    HttpResponse res;
    res.body = "{\"method\":\"" + req.method + "\",\"target\":\"" + req.target +
               "\",\"body_size\":" + std::to_string(req.body.size()) + "}";
    res.headers.emplace_back("x-echo-target", req.target);
    res.headers.emplace_back("x-echo-host", std::string(req.Header("host")));
    return res;
  }

  std::atomic<int> calls{0};
  std::atomic<bool> slow_started{false};
};

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string content_type;
  std::string echo_target;
  bool keep_alive = false;
  std::string content_length;
  std::string allow_origin;   // Access-Control-Allow-Origin
  std::string allow_methods;  // Access-Control-Allow-Methods
};

// A blocking HTTP/1.1 test client over one connection; every operation has a
// timeout (tcp_stream closes the socket when it expires).
class Client {
 public:
  explicit Client(uint16_t port) {
    stream_.expires_after(5s);
    beast::error_code ec;
    stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                          [&](beast::error_code e) { ec = e; });
    Run();
    connected_ = !ec;
  }

  bool connected() const { return connected_; }

  bool Send(const std::string& raw) {
    stream_.expires_after(5s);
    beast::error_code ec;
    net::async_write(stream_, net::buffer(raw), [&](beast::error_code e, size_t) { ec = e; });
    Run();
    return !ec;
  }

  // `head`: the reply answers a HEAD request (has no body).
  std::optional<Reply> Read(std::chrono::milliseconds timeout = 5000ms, bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream_.expires_after(timeout);
    beast::error_code ec;
    http::async_read(stream_, buffer_, parser, [&](beast::error_code e, size_t) { ec = e; });
    Run();
    if (ec) {
      last_error = ec;
      return std::nullopt;
    }
    auto& msg = parser.get();
    Reply r;
    r.status = msg.result_int();
    r.body = msg.body();
    r.content_type = std::string(msg[http::field::content_type]);
    r.echo_target = std::string(msg["x-echo-target"]);
    r.keep_alive = msg.keep_alive();
    r.content_length = std::string(msg[http::field::content_length]);
    r.allow_origin = std::string(msg[http::field::access_control_allow_origin]);
    r.allow_methods = std::string(msg[http::field::access_control_allow_methods]);
    return r;
  }

  std::optional<Reply> Request(const std::string& raw) {
    if (!Send(raw)) return std::nullopt;
    return Read();
  }

  // True if the server closes the connection within `timeout` (data the
  // server still sends is discarded).
  bool WaitClosed(std::chrono::milliseconds timeout) {
    stream_.expires_after(timeout);
    beast::error_code ec;
    std::function<void(beast::error_code, size_t)> on_read = [&](beast::error_code e, size_t) {
      if (e) {
        ec = e;
        return;
      }
      stream_.async_read_some(net::buffer(scratch_), on_read);
    };
    if (buffer_.size() > 0) buffer_.consume(buffer_.size());
    stream_.async_read_some(net::buffer(scratch_), on_read);
    Run();
    return ec && ec != beast::error::timeout;
  }

  beast::error_code last_error;

 private:
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  net::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  std::array<char, 4096> scratch_{};
  bool connected_ = false;
};

std::string Req(const std::string& method, const std::string& target, const std::string& body = "",
                const std::string& extra_headers = "") {
  std::string r = method + " " + target + " HTTP/1.1\r\nHost: test\r\n" + extra_headers;
  if (!body.empty() || method == "POST" || method == "PUT") {
    r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions o = {}) {
    o.host = "127.0.0.1";
    o.port = 0;
    if (o.worker_threads == 0) o.worker_threads = 2;
    server_ = std::make_unique<HttpServer>(o, handler_);
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }

  void TearDown() override {
    if (server_) server_->Stop();
  }

  std::shared_ptr<FakeHandler> handler_ = std::make_shared<FakeHandler>();
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, GetAndKeepAlive) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 3; ++i) {
    auto r = c.Request(Req("GET", "/collections?x=" + std::to_string(i)));
    ASSERT_TRUE(r) << c.last_error.message();
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->content_type, "application/json");
    EXPECT_EQ(r->echo_target, "/collections?x=" + std::to_string(i));
    EXPECT_THAT(r->body, HasSubstr("\"method\":\"GET\""));
    EXPECT_TRUE(r->keep_alive);
  }
  // A body arrives intact; header names reach the handler lower-cased.
  auto r = c.Request(Req("PUT", "/collections/a", std::string(5000, 'x')));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_THAT(r->body, HasSubstr("\"body_size\":5000"));
  EXPECT_EQ(handler_->calls.load(), 4);
}

TEST_F(HttpServerTest, PipelinedRequestsAnsweredInOrder) {
  StartServer();
  Client c(port_);
  // The first request is the slowest; responses must still come in order.
  ASSERT_TRUE(c.Send(Req("GET", "/sleep/150") + Req("POST", "/b", "{\"k\":1}") +
                     Req("GET", "/sleep/10") + Req("GET", "/d")));
  for (const char* target : {"/sleep/150", "/b", "/sleep/10", "/d"}) {
    auto r = c.Read();
    ASSERT_TRUE(r) << target << ": " << c.last_error.message();
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->echo_target, target);
  }
}

TEST_F(HttpServerTest, HeadHasLengthButNoBody) {
  StartServer();
  Client c(port_);
  // Pipelined: a body wrongly sent after the HEAD response would be read as
  // the start of the next response.
  ASSERT_TRUE(c.Send(Req("HEAD", "/h") + Req("GET", "/h")));
  auto head = c.Read(5000ms, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200u);
  EXPECT_TRUE(head->body.empty());
  auto get = c.Read();
  ASSERT_TRUE(get) << c.last_error.message();
  EXPECT_EQ(get->status, 200u);
  EXPECT_EQ(get->echo_target, "/h");
  EXPECT_EQ(head->content_length, std::to_string(get->body.size() + 1));  // "HEAD" vs "GET"
}

// A file body is streamed as it is on disk (larger than any socket buffer),
// HEAD gets its length only, and a missing file or a symbolic link is a 404;
// the connection stays usable after each.
TEST_F(HttpServerTest, FileBodiesAreStreamed) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/qvec_http_file_body.bin";
  std::string content(5 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>((i * 131) >> 3);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  const std::string link = dir + "/qvec_http_file_link.bin";
  std::filesystem::remove(link);
  std::filesystem::create_symlink(path, link);
  StartServer();
  Client c(port_);
  auto r = c.Request(Req("GET", "/file" + path));
  ASSERT_TRUE(r) << c.last_error.message();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->content_type, "application/octet-stream");
  EXPECT_TRUE(r->body == content) << "body of " << r->body.size() << " bytes differs";
  ASSERT_TRUE(c.Send(Req("HEAD", "/file" + path)));
  auto head = c.Read(5000ms, /*head=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->content_length, std::to_string(content.size()));
  EXPECT_TRUE(head->body.empty());
  r = c.Request(Req("GET", "/file" + dir + "/qvec_no_such_file"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404u);
  r = c.Request(Req("GET", "/file" + link));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404u);
  r = c.Request(Req("GET", "/after"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->echo_target, "/after");
  std::filesystem::remove(link);
  std::filesystem::remove(path);
}

TEST_F(HttpServerTest, ConcurrentClients) {
  ServerOptions o;
  o.io_threads = 2;
  o.worker_threads = 3;
  o.max_pipelined = 2;  // pipelining deeper than the bound still works
  StartServer(o);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      Client c(port_);
      std::string batch;
      for (int i = 0; i < 5; ++i) batch += Req("POST", "/c" + std::to_string(t), "{}");
      if (!c.Send(batch)) return;
      for (int i = 0; i < 5; ++i) {
        auto r = c.Read();
        if (r && r->status == 200 && r->echo_target == "/c" + std::to_string(t)) ok++;
      }
      for (int i = 0; i < 10; ++i) {
        auto r = c.Request(Req("GET", "/g" + std::to_string(i)));
        if (r && r->status == 200 && r->echo_target == "/g" + std::to_string(i)) ok++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 6 * 15);
  EXPECT_EQ(handler_->calls.load(), 6 * 15);
}

TEST_F(HttpServerTest, ConnectionCloseAndHttp10) {
  StartServer();
  {
    Client c(port_);
    auto r = c.Request(Req("GET", "/a", "", "Connection: close\r\n"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_FALSE(r->keep_alive);
    EXPECT_TRUE(c.WaitClosed(2000ms));
  }
  {
    Client c(port_);
    auto r = c.Request("GET /a HTTP/1.0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_TRUE(c.WaitClosed(2000ms));
  }
}

TEST_F(HttpServerTest, BodyOverLimitGets413) {
  ServerOptions o;
  o.max_body_bytes = 1024;
  StartServer(o);
  {
    Client c(port_);
    auto ok = c.Request(Req("POST", "/small", std::string(1024, 'a')));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200u);
    auto r = c.Request(Req("POST", "/big", std::string(5000, 'a')));
    ASSERT_TRUE(r) << c.last_error.message();
    EXPECT_EQ(r->status, 413u);
    EXPECT_EQ(r->content_type, "application/json");
    EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":\"Payload too large"));
    EXPECT_FALSE(r->keep_alive);
    EXPECT_TRUE(c.WaitClosed(3000ms));
  }
  {
    // Answered from the header alone: the 100 MB body is never sent.
    Client c(port_);
    auto start = Clock::now();
    auto r = c.Request("POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 100000000\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413u);
    EXPECT_LT(SecondsSince(start), 1.0);
  }
  {
    // Chunked bodies are limited as they arrive.
    Client c(port_);
    std::string chunk = std::string(800, 'z');
    auto r = c.Request("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       std::string("320\r\n") + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413u);
  }
  EXPECT_EQ(handler_->calls.load(), 1);
  // The server still serves.
  Client c(port_);
  auto r = c.Request(Req("GET", "/after"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
}

TEST_F(HttpServerTest, ExpectContinue) {
  StartServer();
  Client c(port_);
  ASSERT_TRUE(
      c.Send("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100u);
  auto r = c.Request("abc");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_THAT(r->body, HasSubstr("\"body_size\":3"));
}

TEST_F(HttpServerTest, OversizedHeaderGets431) {
  ServerOptions o;
  o.max_header_bytes = 1024;
  StartServer(o);
  Client c(port_);
  auto r = c.Request(Req("GET", "/", "", "X-Big: " + std::string(2000, 'h') + "\r\n"));
  ASSERT_TRUE(r) << c.last_error.message();
  EXPECT_EQ(r->status, 431u);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":"));
  EXPECT_EQ(handler_->calls.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestGets400) {
  StartServer();
  for (const char* raw : {"NOT A VALID REQUEST\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                          "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"}) {
    Client c(port_);
    auto r = c.Request(raw);
    ASSERT_TRUE(r) << raw;
    EXPECT_EQ(r->status, 400u) << raw;
    EXPECT_EQ(r->content_type, "application/json");
    EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":\"Bad request"));
    EXPECT_TRUE(c.WaitClosed(3000ms));
  }
  EXPECT_EQ(handler_->calls.load(), 0);
}

TEST_F(HttpServerTest, HandlerExceptionGets500) {
  StartServer();
  Client c(port_);
  auto r = c.Request(Req("GET", "/throw"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500u);
  EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":\"Internal server error"));
  // The connection survives.
  r = c.Request(Req("GET", "/ok"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
}

TEST_F(HttpServerTest, ApiKeys) {
  ServerOptions o;
  o.api_key = "secret-key";
  o.read_only_api_key = "reader-key";
  StartServer(o);
  Client c(port_);

  auto r = c.Request(Req("GET", "/collections"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);
  EXPECT_EQ(r->body, kUnauthenticatedBody);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_TRUE(r->keep_alive);  // no body was left unread

  r = c.Request(Req("GET", "/collections", "", "api-key: wrong-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);
  r = c.Request(Req("GET", "/collections", "", "api-key: secret-ke\r\n"));  // prefix
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);
  r = c.Request(Req("GET", "/collections", "", "Authorization: Bearer wrong\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);

  r = c.Request(Req("GET", "/collections", "", "api-key: secret-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  r = c.Request(Req("POST", "/collections", "{}", "Authorization: Bearer secret-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  r = c.Request(Req("DELETE", "/collections/x", "", "API-Key: secret-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);

  // Read-only key: reads pass, writes are forbidden.
  r = c.Request(Req("GET", "/collections", "", "api-key: reader-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  r = c.Request(Req("GET", "/collections", "", "authorization: bearer reader-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  r = c.Request(Req("DELETE", "/collections/x", "", "api-key: reader-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403u);
  EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":"));

  // Unauthenticated routes.
  r = c.Request(Req("GET", "/healthz"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);

  // A rejected request's body is never read: the connection closes.
  r = c.Request(Req("POST", "/collections", std::string(100, 'b'), "api-key: reader-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403u);
  EXPECT_FALSE(r->keep_alive);
  EXPECT_TRUE(c.WaitClosed(3000ms));
  EXPECT_EQ(handler_->calls.load(), 6);
}

TEST_F(HttpServerTest, SlowClientDropped) {
  ServerOptions o;
  o.header_timeout = 1s;
  o.idle_timeout = 10s;
  StartServer(o);
  Client c(port_);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: slow\r\n"));  // half a header
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed(4000ms));
  EXPECT_GT(SecondsSince(start), 0.8);
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_EQ(handler_->calls.load(), 0);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionClosed) {
  ServerOptions o;
  o.read_timeout = 1s;
  o.idle_timeout = 1s;
  StartServer(o);
  Client c(port_);
  // A handler slower than both timeouts is not cut off by them.
  auto r = c.Request(Req("GET", "/sleep/1500"));
  ASSERT_TRUE(r) << c.last_error.message();
  EXPECT_EQ(r->status, 200u);
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed(4000ms));
  EXPECT_GT(SecondsSince(start), 0.8);
}

TEST_F(HttpServerTest, StopLetsInFlightRequestFinish) {
  StartServer();
  Client idle(port_);
  auto r0 = idle.Request(Req("GET", "/warmup"));
  ASSERT_TRUE(r0);
  Client c(port_);
  ASSERT_TRUE(c.Send(Req("GET", "/slow")));
  for (int i = 0; i < 200 && !handler_->slow_started; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_TRUE(handler_->slow_started);

  auto start = Clock::now();
  std::thread stopper([&] { server_->Stop(); });
  auto r = c.Read();
  ASSERT_TRUE(r) << c.last_error.message();
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->echo_target, "/slow");
  EXPECT_FALSE(r->keep_alive);
  EXPECT_TRUE(idle.WaitClosed(2000ms));
  stopper.join();
  EXPECT_LT(SecondsSince(start), 3.0);

  Client late(port_);
  EXPECT_TRUE(!late.connected() || !late.Request(Req("GET", "/late")));
  server_->Wait();  // returns at once: stopped
}

TEST_F(HttpServerTest, ConnectionCapClosesIdleConnectionsFirst) {
  ServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  auto c1 = std::make_unique<Client>(port_);
  Client c2(port_);
  ASSERT_TRUE(c1->Request(Req("GET", "/1")));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(c2.Request(Req("GET", "/2")));
  // At the cap, a new connection closes the one idle longest (c1) and is
  // served.
  {
    Client c3(port_);
    auto r = c3.Request(Req("GET", "/3"));
    ASSERT_TRUE(r) << c3.last_error.message();
    EXPECT_EQ(r->status, 200u);
    EXPECT_TRUE(c1->WaitClosed(3000ms));
  }
  // With every connection busy there is nothing to close: 503.
  Client busy1(port_), busy2(port_);
  ASSERT_TRUE(busy1.Send(Req("GET", "/sleep/1500")));
  ASSERT_TRUE(busy2.Send(Req("GET", "/sleep/1500")));
  std::this_thread::sleep_for(300ms);
  Client c4(port_);
  ASSERT_TRUE(c4.connected());
  auto r = c4.Read();
  ASSERT_TRUE(r) << c4.last_error.message();
  EXPECT_EQ(r->status, 503u);
  EXPECT_THAT(r->body, HasSubstr("{\"status\":{\"error\":"));
  EXPECT_TRUE(c4.WaitClosed(3000ms));
  EXPECT_TRUE(busy1.Read());
}

TEST_F(HttpServerTest, SilentConnectionClosedQuickly) {
  ServerOptions o;
  o.request_start_timeout = 1s;
  o.idle_timeout = 30s;
  StartServer(o);
  Client c(port_);
  ASSERT_TRUE(c.connected());
  auto start = Clock::now();
  EXPECT_TRUE(c.WaitClosed(4000ms));
  EXPECT_GT(SecondsSince(start), 0.8);
  EXPECT_LT(SecondsSince(start), 3.0);
}

// Request smuggling (RFC 9112, 6.1 and 6.3): a request whose body length is
// ambiguous is answered 400 and the connection closed; its body never runs
// as a request of its own.
TEST_F(HttpServerTest, AmbiguousFramingRefusedAndNothingSmuggled) {
  StartServer();
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::vector<std::string> headers = {
      "Transfer-Encoding: identity\r\n",
      "Transfer-Encoding: gzip\r\n",
      "Transfer-Encoding: chunked, identity\r\n",
      "Transfer-Encoding: xchunked\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
      "Content-Length: " + std::to_string(smuggled.size()) + "\r\nTransfer-Encoding: chunked\r\n",
      "Content-Length: " + std::to_string(smuggled.size()) + "\r\nContent-Length: 0\r\n",
      "Content-Length: " + std::to_string(smuggled.size()) + ", 0\r\n",
  };
  for (const std::string& h : headers) {
    SCOPED_TRACE(h);
    const int before = handler_->calls.load();
    Client c(port_);
    ASSERT_TRUE(c.Send("POST /outer HTTP/1.1\r\nHost: x\r\n" + h + "\r\n" + smuggled));
    auto r = c.Read();
    ASSERT_TRUE(r) << c.last_error.message();
    EXPECT_EQ(r->status, 400u) << r->body;
    EXPECT_TRUE(c.WaitClosed(3000ms));
    EXPECT_EQ(handler_->calls.load(), before) << "a request ran";
  }
  // Chunked alone is fine.
  Client ok(port_);
  ASSERT_TRUE(
      ok.Send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
              "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
  auto r = ok.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_THAT(r->body, HasSubstr("\"body_size\":3"));
}

TEST_F(HttpServerTest, StartErrors) {
  StartServer();
  ServerOptions o;
  o.port = port_;
  HttpServer second(o, handler_);
  Status st = second.Start();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_THAT(st.message(), HasSubstr("address already in use"));

  EXPECT_EQ(server_->Start().code(), StatusCode::kFailedPrecondition);

  ServerOptions bad;
  bad.io_threads = 0;
  EXPECT_EQ(bad.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpServer(bad, handler_).Start().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ServerOptions().Validate().ok());
}

TEST_F(HttpServerTest, CorsPreflightAndHeaders) {
  ServerOptions o;
  o.api_key = "secret-key";
  o.cors_origins = {"http://localhost:3000", "https://app.example"};
  StartServer(o);
  Client c(port_);
  const std::string origin = "Origin: http://localhost:3000\r\n";
  // Preflight: answered before authentication, with what may be sent.
  auto r = c.Request(Req("OPTIONS", "/collections/x/points/search", "",
                         origin + "Access-Control-Request-Method: POST\r\n"
                                  "Access-Control-Request-Headers: content-type, api-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 204u);
  EXPECT_EQ(r->allow_origin, "http://localhost:3000");
  EXPECT_THAT(r->allow_methods, HasSubstr("POST"));
  EXPECT_TRUE(r->keep_alive);
  // Answers to an allowed origin carry the header, errors included.
  r = c.Request(Req("GET", "/collections", "", origin));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);
  EXPECT_EQ(r->allow_origin, "http://localhost:3000");
  r = c.Request(Req("GET", "/collections", "", origin + "api-key: secret-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->allow_origin, "http://localhost:3000");
  // Another origin: no header, and its preflight is refused.
  r = c.Request(Req("GET", "/collections", "", "Origin: http://evil.test\r\napi-key: secret-key\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->allow_origin, "");
  r = c.Request(Req("OPTIONS", "/collections", "",
                    "Origin: http://evil.test\r\nAccess-Control-Request-Method: GET\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403u);
  EXPECT_EQ(r->allow_origin, "");
}

TEST_F(HttpServerTest, CorsOffByDefaultAndStar) {
  StartServer();
  Client c(port_);
  auto r = c.Request(Req("GET", "/collections", "", "Origin: http://localhost:3000\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->allow_origin, "");
  server_->Stop();
  ServerOptions o;
  o.cors_origins = {"*"};
  StartServer(o);
  Client c2(port_);
  r = c2.Request(Req("GET", "/collections", "", "Origin: http://anything.test\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->allow_origin, "*");
}

TEST(HttpServerLifecycleTest, StopWithoutStartAndTwice) {
  auto handler = std::make_shared<FakeHandler>();
  {
    HttpServer s(ServerOptions{}, handler);
    s.Stop();
    s.Wait();
  }
  ServerOptions o;
  o.port = 0;
  HttpServer s(o, handler);
  ASSERT_TRUE(s.Start().ok());
  s.Stop();
  s.Stop();
  s.Wait();
}

#ifdef QVEC_BINARY
std::string RunCommand(const std::string& cmd, int* exit_code) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST(QvecBinaryTest, VersionAndHelp) {
  int code = -1;
  EXPECT_EQ(RunCommand(std::string(QVEC_BINARY) + " --version", &code), "qvec " QVEC_VERSION_STRING "\n");
  EXPECT_EQ(code, 0);
  std::string help = RunCommand(std::string(QVEC_BINARY) + " serve --help", &code);
  EXPECT_EQ(code, 0);
  for (const char* flag :
       {"--data", "--host", "--port", "--api-key", "--read-only-api-key", "--max-body-mib",
        "--worker-threads", "--log-level", "6333", "127.0.0.1", "./data"}) {
    EXPECT_THAT(help, HasSubstr(flag));
  }
}

uint16_t FreePort() {
  net::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

TEST(QvecBinaryTest, ServesAndStopsOnSigterm) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("qvec_http_test_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  const std::string port = std::to_string(FreePort());
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string data = dir.string();
    execl(QVEC_BINARY, QVEC_BINARY, "serve", "--data", data.c_str(), "--port", port.c_str(),
          "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  bool answered = false;
  for (int i = 0; i < 100 && !answered; ++i) {
    Client c(static_cast<uint16_t>(std::stoi(port)));
    answered = c.connected() && c.Request(Req("GET", "/healthz")).has_value();
    if (!answered) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(answered);
  kill(pid, SIGTERM);
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 200 && done == 0; ++i) {
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(25ms);
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    ADD_FAILURE() << "qvec did not exit within 5 s of SIGTERM";
  } else {
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  std::filesystem::remove_all(dir);
}
#endif  // QVEC_BINARY

}  // namespace
}  // namespace qvec::server
