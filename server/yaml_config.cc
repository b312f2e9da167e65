#include "server/yaml_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

namespace qvec::server {
namespace {

// Qdrant's settings with a qvec flag of the same meaning.
const std::map<std::string, std::string>& QdrantFlags() {
  static const std::map<std::string, std::string> kFlags = {
      {"service.host", "host"},
      {"service.http_port", "port"},
      {"service.api_key", "api-key"},
      {"service.read_only_api_key", "read-only-api-key"},
      {"service.max_request_size_mb", "max-body-mib"},
      {"service.max_workers", "worker-threads"},
      {"storage.storage_path", "data"},
      {"storage.snapshots_path", "snapshots-dir"},
  };
  return kFlags;
}

// Top-level sections of Qdrant's config.yaml (a file with any of them is in
// Qdrant's shape for those keys).
const std::set<std::string>& QdrantSections() {
  static const std::set<std::string> kSections = {
      "service",   "storage", "cluster", "telemetry_disabled", "tls",   "debug",
      "log_level", "logger",  "gpu",     "inference",          "audit", "feature_flags"};
  return kSections;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Status Values(const YAML::Node& node, const std::string& where, std::vector<std::string>* out) {
  if (node.IsScalar()) {
    out->push_back(node.Scalar());
    return Status::Ok();
  }
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      if (!item.IsScalar()) return InvalidArgumentError(where + ": list items must be values");
      out->push_back(item.Scalar());
    }
    return Status::Ok();
  }
  if (node.IsNull()) return Status::Ok();
  return InvalidArgumentError(where + ": expected a value or a list of values");
}

}  // namespace

bool IsYamlFileName(const std::string& path) {
  const std::string p = Lower(path);
  auto ends = [&](std::string_view s) {
    return p.size() >= s.size() && p.compare(p.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".yaml") || ends(".yml");
}

StatusOr<std::vector<ConfigEntry>> ReadYamlConfig(std::istream& in,
                                                  std::vector<std::string>* ignored) {
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("config file: ") + e.what());
  }
  std::vector<ConfigEntry> out;
  if (root.IsNull()) return out;
  if (!root.IsMap()) return InvalidArgumentError("config file: expected a mapping at the top");
  auto flag = [&](const std::string& name, const YAML::Node& value,
                  const std::string& where) -> Status {
    ConfigEntry e;
    e.parents = {"serve"};
    e.name = name;
    QVEC_RETURN_IF_ERROR(Values(value, "config file: " + where, &e.values));
    if (!e.values.empty()) out.push_back(std::move(e));
    return Status::Ok();
  };
  try {
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      const YAML::Node& value = kv.second;
      if (key == "serve") {
        if (!value.IsMap()) return InvalidArgumentError("config file: serve: expected a mapping");
        for (const auto& f : value) {
          const std::string name = f.first.as<std::string>();
          QVEC_RETURN_IF_ERROR(flag(name, f.second, "serve." + name));
        }
      } else if (key == "log_level") {
        // Qdrant's level may carry per-module filters ("INFO,actix=warn").
        std::string level = Lower(value.as<std::string>());
        level = level.substr(0, level.find(','));
        if (level == "warning") level = "warn";
        QVEC_RETURN_IF_ERROR(flag("log-level", YAML::Node(level), key));
      } else if (key == "service" || key == "storage") {
        if (!value.IsMap())
          return InvalidArgumentError("config file: " + key + ": expected a mapping");
        for (const auto& f : value) {
          const std::string path = key + "." + f.first.as<std::string>();
          if (path == "service.enable_cors") {
            if (f.second.as<bool>())
              QVEC_RETURN_IF_ERROR(flag("cors-origin", YAML::Node("*"), path));
            continue;
          }
          auto it = QdrantFlags().find(path);
          if (it == QdrantFlags().end()) {
            ignored->push_back(path);
            continue;
          }
          QVEC_RETURN_IF_ERROR(flag(it->second, f.second, path));
        }
      } else if (QdrantSections().count(key)) {
        ignored->push_back(key);
      } else {
        QVEC_RETURN_IF_ERROR(flag(key, value, key));  // a flag at the top level
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(std::string("config file: ") + e.what());
  }
  return out;
}

}  // namespace qvec::server
