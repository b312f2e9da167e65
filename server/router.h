// The REST API of qvec, in Qdrant's shape: routes requests to handlers that
// turn JSON into engine calls and engine results into JSON.
#ifndef QVEC_SERVER_ROUTER_H_
#define QVEC_SERVER_ROUTER_H_

#include <memory>
#include <string>

#include "qvec/database.h"
#include "qvec/status.h"
#include "server/http_types.h"

namespace qvec::server {

struct RouterOptions {
  // Directory of the database. Default: "./data".
  std::string data_dir = "./data";
  // Directory where POST .../snapshots writes checkpoints. Default: "" =
  // data_dir + "/../snapshots" resolved next to the data ("<data_dir>-snapshots").
  std::string snapshots_dir;
  DatabaseOptions database;
  // Largest answer the router builds: searches, batches, scrolls and
  // retrieves that would answer more are refused with 422 naming the limit
  // (see SearchRequest::max_result_bytes). Default: 32 MiB.
  size_t max_response_bytes = size_t{32} << 20;
};

// Opens the database under options.data_dir and returns the request handler.
// Errors are those of Database::Open.
[[nodiscard]] StatusOr<std::shared_ptr<RequestHandler>> MakeRouter(const RouterOptions& options);

// A handler over an already open database (tests use this).
std::shared_ptr<RequestHandler> MakeRouterFor(std::shared_ptr<Database> db,
                                              std::string snapshots_dir,
                                              size_t max_response_bytes = size_t{32} << 20);

}  // namespace qvec::server

#endif  // QVEC_SERVER_ROUTER_H_
