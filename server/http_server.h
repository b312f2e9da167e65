// HTTP/1.1 server (Boost.Asio + Beast) in front of a RequestHandler.
//
// Design after Beast's advanced async server: one Listener accepting
// connections, one Session per connection running on its own strand. I/O
// threads only parse and write HTTP; RequestHandler::Handle runs on a separate
// worker pool, so slow engine work never stalls other connections.
//
// Per connection: HTTP/1.1 keep-alive and bounded pipelining (requests are
// handled one at a time, in order; at most `max_pipelined` requests are read
// ahead of their responses). Per request: the header is read first; API-key
// checks and the body-size limit are applied before any body byte is read.
//
// Every error this layer produces (400, 401, 403, 413, 431, 500, 503) has a
// JSON body in Qdrant's envelope: {"status":{"error":"..."},"time":0.0}.
#ifndef QVEC_SERVER_HTTP_SERVER_H_
#define QVEC_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "qvec/status.h"
#include "server/http_types.h"

namespace qvec::server {

struct ServerOptions {
  // Address to listen on: an IP address or a host name.
  // Default: "127.0.0.1" (local only; use "0.0.0.0" to listen on all interfaces).
  std::string host = "127.0.0.1";

  // TCP port; 0 picks a free ephemeral port (see HttpServer::port()).
  // Default: 6333 (Qdrant's REST port).
  uint16_t port = 6333;

  // Threads running the event loop (accepting, parsing, writing).
  // Default: 1.
  size_t io_threads = 1;

  // Threads running RequestHandler::Handle; 0 means one per hardware thread.
  // Default: 0.
  size_t worker_threads = 0;

  // Largest accepted request body; larger bodies get 413 before being read.
  // Default: 32 MiB.
  size_t max_body_bytes = size_t{32} << 20;

  // Largest accepted request line plus header fields; larger gets 431.
  // Default: 16 KiB.
  size_t max_header_bytes = size_t{16} << 10;

  // Time a new connection may take to send the first byte of its first
  // request; silent connections are closed, so that they cannot hold
  // connection slots. Default: 5 s.
  std::chrono::seconds request_start_timeout{5};

  // Time allowed to receive a request's header once its first byte arrived.
  // Default: 10 s.
  std::chrono::seconds header_timeout{10};

  // Time allowed to receive a request's body once its header arrived.
  // Default: 30 s.
  std::chrono::seconds read_timeout{30};

  // Time a keep-alive connection may sit idle between requests; also the time
  // allowed to write one response to a client that does not read.
  // Default: 60 s.
  std::chrono::seconds idle_timeout{60};

  // Open connections at most. At the bound, a new connection closes the one
  // idle longest (a connection waiting for its next request, none in flight);
  // when none is idle it is answered 503 and closed. Default: 1024 (and at
  // most the process's open-file limit minus 64).
  size_t max_connections = 1024;

  // Requests per connection read but not yet answered at most (HTTP
  // pipelining); the server stops reading from the connection at this bound.
  // Default: 16.
  size_t max_pipelined = 16;

  // Response bytes a connection may have waiting to be written before the
  // server stops handling its further pipelined requests (until the client
  // reads). Default: 1 MiB.
  size_t max_unsent_per_connection = size_t{1} << 20;

  // Memory held for all connections at once: request bodies being read and
  // responses not yet written. Beyond it, connections wait before reading a
  // body or handling a request, and the connections whose response writes
  // have stalled longest are closed first. Default: 128 MiB.
  size_t max_buffered_bytes = size_t{128} << 20;

  // Key granting full access. When this or read_only_api_key is non-empty,
  // requests (except kNone routes such as /healthz) must carry a key, as
  // "api-key: KEY" or "Authorization: Bearer KEY".
  // Default: "" (no authentication).
  std::string api_key;

  // Key granting read access only: requests needing Access::kWrite get 403.
  // Default: "" (none).
  std::string read_only_api_key;

  // Origins allowed to call the API from a browser (CORS): "*" for any, or
  // exact origins such as "http://localhost:3000". Preflight requests
  // (OPTIONS with Access-Control-Request-Method) are answered 204 with the
  // allowed methods and headers, before authentication (browsers send no
  // key with them); every answer to an allowed origin carries
  // Access-Control-Allow-Origin. A preflight from another origin gets 403.
  // Default: none (CORS off; OPTIONS goes to the handler).
  std::vector<std::string> cors_origins;

  // One line per answered request (method, target, status, body bytes,
  // milliseconds, collection) at info level; at debug level when false.
  // Default: false.
  bool access_log = false;

  // How long Stop() waits for in-flight requests before closing their
  // connections anyway.
  // Default: 10 s.
  std::chrono::seconds shutdown_grace{10};

  // InvalidArgument naming the first bad field, if any.
  Status Validate() const;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, std::shared_ptr<RequestHandler> handler);
  // Stops the server if it is running (as Stop()).
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Validates the options, binds, listens and starts the I/O threads and the
  // worker pool; returns once the port accepts connections. Errors:
  // InvalidArgument (bad options, unresolvable host), Unavailable (address in
  // use, permission denied, ...), FailedPrecondition (called twice).
  Status Start();

  // The port listened on (the actual one when options.port was 0); 0 before
  // a successful Start().
  uint16_t port() const;

  // Graceful shutdown: stops accepting, closes idle connections, lets
  // in-flight requests finish and their responses be written (for up to
  // shutdown_grace), then closes what remains and joins all threads.
  // Thread-safe and idempotent; safe to call from a signal-handling thread,
  // but not from inside RequestHandler::Handle.
  void Stop();

  // Blocks until Stop() has completed (returns at once if never started).
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qvec::server

#endif  // QVEC_SERVER_HTTP_SERVER_H_
