// Definitions of the small value types and option checks of include/qvec/.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <string>

#include "engine/codes_value.h"
#include "engine/payload_index.h"
#include "index/metric.h"
#include "qvec/blas.h"
#include "qvec/database.h"
#include "qvec/options.h"
#include "qvec/types.h"
#include "qvec/version.h"

namespace qvec {

std::string_view Version() { return QVEC_VERSION_STRING; }

const char* RecommendedBlasCoreType() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    return "SkylakeX";
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

void UseBestBlasKernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const char* core = RecommendedBlasCoreType();
  if (core == nullptr || argv == nullptr) return;
  setenv("OPENBLAS_CORETYPE", core, 1);
  execv("/proc/self/exe", argv);  // only returns on failure: carry on
}

// Names come from the metric descriptors (index/metric.cc): Qdrant's spelling.
std::string_view DistanceName(Distance d) { return index::Describe(engine::ToMetric(d)).name; }

std::string DistanceNames() {
  std::string out;
  for (size_t m = 0; m < index::kNumMetrics; ++m) {
    if (m > 0) out += m + 1 == index::kNumMetrics ? " or " : ", ";
    out += index::Describe(static_cast<index::Metric>(m)).name;
  }
  return out;
}

StatusOr<Distance> ParseDistance(std::string_view name) {
  for (size_t m = 0; m < index::kNumMetrics; ++m) {
    const auto metric = static_cast<index::Metric>(m);
    if (index::Describe(metric).name == name) return engine::ToDistance(metric);
  }
  return InvalidArgumentError("unknown distance '" + std::string(name) + "'; expected " +
                              DistanceNames());
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

StatusOr<PointId> PointId::ParseUuid(std::string_view text) {
  std::array<uint8_t, 16> bytes{};
  const bool hyphenated = text.size() == 36;
  if (!hyphenated && text.size() != 32) {
    return InvalidArgumentError("invalid point id: expected an unsigned integer or a UUID");
  }
  size_t nibble = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') {
        return InvalidArgumentError("invalid point id: expected an unsigned integer or a UUID");
      }
      continue;
    }
    int v = HexValue(text[i]);
    if (v < 0) {
      return InvalidArgumentError("invalid point id: expected an unsigned integer or a UUID");
    }
    bytes[nibble / 2] = static_cast<uint8_t>(bytes[nibble / 2] | (nibble % 2 == 0 ? v << 4 : v));
    ++nibble;
  }
  return Uuid(bytes);
}

std::string PointId::ToString() const {
  if (!is_uuid_) return std::to_string(num_);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[uuid_[i] >> 4]);
    out.push_back(kHex[uuid_[i] & 15]);
  }
  return out;
}

size_t PointIdHash::operator()(const PointId& id) const {
  uint64_t h = id.is_uuid() ? 0x9e3779b97f4a7c15ULL : id.num();
  if (id.is_uuid()) {
    for (uint8_t b : id.uuid()) h = (h ^ b) * 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return static_cast<size_t>(h);
}

std::string_view PayloadSchemaTypeName(PayloadSchemaType type) {
  switch (type) {
    case PayloadSchemaType::kKeyword:
      return "keyword";
    case PayloadSchemaType::kInteger:
      return "integer";
    case PayloadSchemaType::kFloat:
      return "float";
    case PayloadSchemaType::kBool:
      return "bool";
    case PayloadSchemaType::kUuid:
      return "uuid";
    case PayloadSchemaType::kDatetime:
      return "datetime";
    case PayloadSchemaType::kText:
      return "text";
    case PayloadSchemaType::kGeo:
      return "geo";
  }
  return "keyword";
}

StatusOr<PayloadSchemaType> ParsePayloadSchemaType(std::string_view name) {
  for (PayloadSchemaType t :
       {PayloadSchemaType::kKeyword, PayloadSchemaType::kInteger, PayloadSchemaType::kFloat,
        PayloadSchemaType::kBool, PayloadSchemaType::kUuid, PayloadSchemaType::kDatetime,
        PayloadSchemaType::kText, PayloadSchemaType::kGeo}) {
    if (PayloadSchemaTypeName(t) == name) return t;
  }
  return InvalidArgumentError(
      "payload index type must be keyword, integer, float, bool, uuid, datetime, text or geo, "
      "got '" +
      std::string(name) + "'");
}

Status PayloadUpdate::Validate() const {
  auto check_path = [](std::string_view path, std::string_view what) -> Status {
    if (path.find('[') != std::string_view::npos) {
      return InvalidArgumentError(std::string(what) + " '" + std::string(path) +
                                  "': array indexes in paths are not supported yet");
    }
    size_t pos = 0;
    while (pos <= path.size()) {
      size_t dot = path.find('.', pos);
      if (dot == std::string_view::npos) dot = path.size();
      if (dot == pos) {
        return InvalidArgumentError(std::string(what) + " '" + std::string(path) +
                                    "' has an empty segment");
      }
      pos = dot + 1;
    }
    return Status::Ok();
  };
  switch (op) {
    case Op::kMerge:
      if (!key.empty()) QVEC_RETURN_IF_ERROR(check_path(key, "key"));
      return engine::ValidatePayload(payload);
    case Op::kOverwrite:
      if (!key.empty()) QVEC_RETURN_IF_ERROR(check_path(key, "key"));
      return engine::ValidatePayload(payload);
    case Op::kDeleteKeys:
      for (const std::string& k : keys) QVEC_RETURN_IF_ERROR(check_path(k, "keys:"));
      return Status::Ok();
    case Op::kClear:
      return Status::Ok();
  }
  return InvalidArgumentError("unknown payload operation");
}

Status DatabaseOptions::Validate() const {
  if (block_cache_bytes < (size_t{1} << 20)) {
    return InvalidArgumentError("block_cache_bytes must be at least 1 MiB");
  }
  if (build_threads < 1 || build_threads > 64) {
    return InvalidArgumentError("build_threads must be in [1, 64]");
  }
  return Status::Ok();
}

Status QuantizationOptions::Validate() const {
  if (type != Type::kInt8 && type != Type::kUint8) {
    return InvalidArgumentError("quantization type must be int8 or uint8");
  }
  if (granularity != Granularity::kPerVector && granularity != Granularity::kPerCollection &&
      granularity != Granularity::kPerDimension) {
    return InvalidArgumentError("unknown quantization granularity");
  }
  if (!(quantile > 0.5f && quantile <= 1.0f)) {
    return InvalidArgumentError("quantile must be in (0.5, 1]");
  }
  return Status::Ok();
}

Status IndexOptions::Validate() const {
  if (nlist > kMaxNlist) {
    return InvalidArgumentError("nlist must be 0 (automatic) or in [1, " +
                                std::to_string(kMaxNlist) + "]");
  }
  if (default_nprobe > kMaxNlist) {
    return InvalidArgumentError("default_nprobe must be at most " + std::to_string(kMaxNlist));
  }
  if (!(default_target_recall > 0.0f && default_target_recall <= 1.0f)) {
    return InvalidArgumentError("default_target_recall must be in (0, 1]");
  }
  if (ivf_threshold < 1) return InvalidArgumentError("ivf_threshold must be at least 1");
  if (static_cast<uint8_t>(first_pass) > static_cast<uint8_t>(FirstPass::kPq4)) {
    return InvalidArgumentError("first_pass must be none, sq4 or pq4");
  }
  return Status::Ok();
}

Status VectorFieldConfig::Validate() const {
  if (dimension < 1 || dimension > kMaxDimension) {
    return InvalidArgumentError("vector size must be in [1, " + std::to_string(kMaxDimension) +
                                "]");
  }
  if (static_cast<size_t>(distance) >= index::kNumMetrics) {
    return InvalidArgumentError("unknown distance");
  }
  QVEC_RETURN_IF_ERROR(quantization.Validate());
  const index::MetricInfo& metric = index::Describe(engine::ToMetric(distance));
  if (metric.shared_scale &&
      quantization.granularity == QuantizationOptions::Granularity::kPerDimension) {
    return InvalidArgumentError(
        std::string(metric.name) +
        " needs codes that share one scale: per_dimension granularity is not supported "
        "(per_vector and per_collection both use one calibrated scale)");
  }
  if (index.first_pass != IndexOptions::FirstPass::kNone) {
    if (metric.int_scoring != index::IntScoring::kInnerProduct) {
      return InvalidArgumentError(std::string(metric.name) +
                                  " has no 4-bit first pass: first_pass must be none");
    }
    const bool sq4 = index.first_pass == IndexOptions::FirstPass::kSq4;
    const uint32_t max_dim = sq4 ? 8192 : 32768;
    if (dimension > max_dim) {
      return InvalidArgumentError(std::string("first_pass ") + (sq4 ? "sq4" : "pq4") +
                                  " supports at most " + std::to_string(max_dim) + " dimensions");
    }
  }
  return index.Validate();
}

std::map<std::string, VectorFieldConfig> CollectionConfig::Fields() const {
  if (!vectors.empty()) return vectors;
  if (dimension == 0 && !sparse_vectors.empty()) return {};
  VectorFieldConfig f;
  f.dimension = dimension;
  f.distance = distance;
  f.quantization = quantization;
  f.index = index;
  return {{"", f}};
}

Status SparseVectorConfig::Validate() const {
  if (modifier != Modifier::kNone && modifier != Modifier::kIdf) {
    return InvalidArgumentError("unknown sparse vector modifier");
  }
  return Status::Ok();
}

Status CollectionConfig::Validate() const {
  if (vectors.size() + sparse_vectors.size() + (single_vector() ? 1 : 0) > kMaxVectorFields) {
    return InvalidArgumentError("a collection has at most " + std::to_string(kMaxVectorFields) +
                                " vector fields, dense and sparse together");
  }
  for (const auto& [name, field] : sparse_vectors) {
    if (name.empty()) return InvalidArgumentError("a sparse vector needs a non-empty name");
    if (name.size() > kMaxVectorFieldName) {
      return InvalidArgumentError("sparse vector name is longer than " +
                                  std::to_string(kMaxVectorFieldName) + " bytes");
    }
    if (vectors.count(name)) {
      return InvalidArgumentError("'" + name + "' names both a dense and a sparse vector");
    }
    Status s = field.Validate();
    if (!s.ok()) return s.Annotate("sparse vector '" + name + "'");
  }
  if (vectors.empty() && dimension == 0 && !sparse_vectors.empty()) return Status::Ok();
  if (vectors.empty()) {
    VectorFieldConfig f = Fields().begin()->second;
    return f.Validate();
  }
  if (dimension != 0) {
    return InvalidArgumentError(
        "a collection has one unnamed vector (dimension) or named vectors (vectors), not both");
  }
  if (vectors.size() > kMaxVectorFields) {
    return InvalidArgumentError("a collection has at most " + std::to_string(kMaxVectorFields) +
                                " named vectors");
  }
  for (const auto& [name, field] : vectors) {
    if (name.empty()) return InvalidArgumentError("a named vector needs a non-empty name");
    if (name.size() > kMaxVectorFieldName) {
      return InvalidArgumentError("vector name is longer than " +
                                  std::to_string(kMaxVectorFieldName) + " bytes");
    }
    Status s = field.Validate();
    if (!s.ok()) return s.Annotate("vector '" + name + "'");
  }
  return Status::Ok();
}

Status ValidateCollectionName(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("collection name must not be empty");
  if (name.size() > kMaxCollectionName) {
    return InvalidArgumentError("collection name is longer than " +
                                std::to_string(kMaxCollectionName) + " bytes");
  }
  if (name == "." || name == "..") {
    return InvalidArgumentError("collection name must not be '.' or '..'");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgumentError("collection name must not contain control characters");
    }
    if (c == '/' || c == '\\') {
      return InvalidArgumentError("collection name must not contain '/' or '\\'");
    }
  }
  if (name.find("..") != std::string_view::npos) {
    return InvalidArgumentError("collection name must not contain '..'");
  }
  // Names must be valid UTF-8 so that they round-trip through JSON.
  size_t i = 0;
  while (i < name.size()) {
    unsigned char c = name[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > name.size()) {
      return InvalidArgumentError("collection name must be valid UTF-8");
    }
    for (size_t j = 1; j < len; ++j) {
      if ((static_cast<unsigned char>(name[i + j]) >> 6) != 2) {
        return InvalidArgumentError("collection name must be valid UTF-8");
      }
    }
    i += len;
  }
  return Status::Ok();
}

}  // namespace qvec
