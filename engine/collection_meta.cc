#include "engine/collection_meta.h"

#include <simdjson.h>

#include "engine/json_writer.h"

namespace qvec::engine {
namespace {
constexpr int64_t kMetaVersion = 1;
}  // namespace

std::string EncodeCollectionConfig(const CollectionConfig& c) {
  JsonWriter w;
  w.BeginObject();
  w.Key("version").Int(kMetaVersion);
  w.Key("dimension").Uint(c.dimension);
  w.Key("distance").String(DistanceName(c.distance));
  w.Key("quantization").BeginObject();
  w.Key("type").Int(static_cast<int>(c.quantization.type));
  w.Key("granularity").Int(static_cast<int>(c.quantization.granularity));
  w.Key("quantile").Double(c.quantization.quantile);
  w.Key("recall_tuned").Bool(c.quantization.recall_tuned);
  w.Key("always_ram").Bool(c.quantization.always_ram);
  w.EndObject();
  w.Key("index").BeginObject();
  w.Key("nlist").Uint(c.index.nlist);
  w.Key("ivf_threshold").Uint(c.index.ivf_threshold);
  w.Key("default_nprobe").Uint(c.index.default_nprobe);
  w.Key("default_target_recall").Double(c.index.default_target_recall);
  w.EndObject();
  w.EndObject();
  return w.Take();
}

StatusOr<CollectionConfig> DecodeCollectionConfig(std::string_view meta) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(meta.data(), meta.size()).get(doc) != simdjson::SUCCESS) {
    return DataLossError("collection metadata is not valid JSON");
  }
  int64_t version = 0;
  if (doc["version"].get(version) != simdjson::SUCCESS) {
    return DataLossError("collection metadata has no version");
  }
  if (version != kMetaVersion) {
    return FailedPreconditionError("collection metadata has unknown version " +
                                   std::to_string(version));
  }
  CollectionConfig c;
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  std::string_view s;
  auto bad = [] { return DataLossError("collection metadata is malformed"); };
  if (doc["dimension"].get(u) != simdjson::SUCCESS) return bad();
  c.dimension = static_cast<uint32_t>(u);
  if (doc["distance"].get(s) != simdjson::SUCCESS) return bad();
  auto dist = ParseDistance(s);
  if (!dist.ok()) return bad();
  c.distance = *dist;
  auto q = doc["quantization"];
  if (q["type"].get(i) != simdjson::SUCCESS) return bad();
  c.quantization.type = static_cast<QuantizationOptions::Type>(i);
  if (q["granularity"].get(i) != simdjson::SUCCESS) return bad();
  c.quantization.granularity = static_cast<QuantizationOptions::Granularity>(i);
  if (q["quantile"].get(d) != simdjson::SUCCESS) return bad();
  c.quantization.quantile = static_cast<float>(d);
  if (q["recall_tuned"].get(b) != simdjson::SUCCESS) return bad();
  c.quantization.recall_tuned = b;
  if (q["always_ram"].get(b) != simdjson::SUCCESS) return bad();
  c.quantization.always_ram = b;
  auto x = doc["index"];
  if (x["nlist"].get(u) != simdjson::SUCCESS) return bad();
  c.index.nlist = static_cast<uint32_t>(u);
  if (x["ivf_threshold"].get(u) != simdjson::SUCCESS) return bad();
  c.index.ivf_threshold = static_cast<uint32_t>(u);
  if (x["default_nprobe"].get(u) != simdjson::SUCCESS) return bad();
  c.index.default_nprobe = static_cast<uint32_t>(u);
  if (x["default_target_recall"].get(d) != simdjson::SUCCESS) return bad();
  c.index.default_target_recall = static_cast<float>(d);
  Status valid = c.Validate();
  if (!valid.ok()) return DataLossError("collection metadata is invalid: " + valid.message());
  return c;
}

}  // namespace qvec::engine
