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
};

// Opens the database under options.data_dir and returns the request handler.
// Errors are those of Database::Open.
[[nodiscard]] StatusOr<std::shared_ptr<RequestHandler>> MakeRouter(const RouterOptions& options);

// A handler over an already open database (tests use this).
std::shared_ptr<RequestHandler> MakeRouterFor(std::shared_ptr<Database> db,
                                              std::string snapshots_dir);

}  // namespace qvec::server

#endif  // QVEC_SERVER_ROUTER_H_
