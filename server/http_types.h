// Socket-free HTTP request and response types. Request handlers are plain
// functions from HttpRequest to HttpResponse, so they are tested without a
// network; server/http_server.cc converts to and from Beast's types.
#ifndef QVEC_SERVER_HTTP_TYPES_H_
#define QVEC_SERVER_HTTP_TYPES_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qvec::server {

struct HttpRequest {
  std::string method;  // upper case, e.g. "GET"
  std::string target;  // as sent: path plus optional "?query"
  // Header fields in arrival order; names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The value of header `name` (lower case), or "" when absent.
  std::string_view Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return {};
  }
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
  // When not empty, the body is the content of this regular file, streamed
  // from disk (`body` is ignored); the server answers 404 if it cannot be
  // opened. Symbolic links are not followed.
  std::string file_path;
};

// What a request needs from the API keys (see ServerOptions).
enum class Access { kNone, kRead, kWrite };

// Where the server runs a request's handler.
enum class HandlerPool {
  kWorkers,  // the worker pool (most requests)
  // On the connection's I/O strand, at once: cheap requests that must answer
  // even when every worker is busy (health checks, metrics).
  kInline,
  // A separate single thread, in arrival order: long requests that must not
  // occupy the workers (snapshots).
  kSlow,
};

// The application behind the HTTP server: the router of server/router.h in
// production, a fake in the server's own tests. Must be thread-safe: the
// server calls it from several worker threads at once.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The access level a request needs, judged from its method and target alone
  // (before any body is read).
  virtual Access RequiredAccess(std::string_view method, std::string_view target) const = 0;
  // Where the server runs Handle for this request (judged like
  // RequiredAccess). Default: the worker pool.
  virtual HandlerPool PoolFor(std::string_view method, std::string_view target) const {
    return HandlerPool::kWorkers;
  }
  // Serves one request. Never throws.
  virtual HttpResponse Handle(const HttpRequest& request) = 0;
};

}  // namespace qvec::server

#endif  // QVEC_SERVER_HTTP_TYPES_H_
