// `qvec serve --config qvec.yaml`: the flags of `qvec serve` from a YAML
// file, in qvec's own shape or in Qdrant's config.yaml shape.
//
//   serve:                      # qvec's shape: one key per flag of `serve`
//     port: 6334
//     data: /var/lib/qvec
//     cors-origin: ["*"]
//
//   service:                    # Qdrant's shape, for the settings that mean
//     host: 0.0.0.0             # the same: service.host, http_port, api_key,
//     http_port: 6333           # read_only_api_key, enable_cors,
//     api_key: secret           # max_request_size_mb, max_workers;
//   storage:                    # storage.storage_path, snapshots_path;
//     storage_path: ./storage   # log_level
//   log_level: INFO
//
// Flags may also sit at the top level (`port: 6334`). Qdrant settings qvec
// has no equivalent for (grpc_port, storage.performance, cluster, ...) are
// reported in `ignored` so that the caller can log them; an unknown qvec flag
// is an error of the command-line parser, as on the command line.
#ifndef QVEC_SERVER_YAML_CONFIG_H_
#define QVEC_SERVER_YAML_CONFIG_H_

#include <istream>
#include <string>
#include <vector>

#include "qvec/status.h"

namespace qvec::server {

struct ConfigEntry {
  std::vector<std::string> parents;  // {"serve"}
  std::string name;                  // the flag's long name without "--"
  std::vector<std::string> values;   // one, or a list's items
};

// InvalidArgument naming the problem for YAML that does not parse or has the
// wrong shape (not a mapping at the top, a nested mapping as a flag value).
[[nodiscard]] StatusOr<std::vector<ConfigEntry>> ReadYamlConfig(std::istream& in,
                                                                std::vector<std::string>* ignored);

// True for a file name ending in .yaml or .yml (any case).
bool IsYamlFileName(const std::string& path);

}  // namespace qvec::server

#endif  // QVEC_SERVER_YAML_CONFIG_H_
