#include "engine/collection_meta.h"

#include <simdjson.h>

#include <set>

#include "engine/json_writer.h"

namespace qvec::engine {
namespace {

constexpr int64_t kMetaVersion = 2;

void WriteField(JsonWriter& w, const VectorFieldConfig& f) {
  w.Key("dimension").Uint(f.dimension);
  w.Key("distance").String(DistanceName(f.distance));
  w.Key("quantization").BeginObject();
  w.Key("type").Int(static_cast<int>(f.quantization.type));
  w.Key("granularity").Int(static_cast<int>(f.quantization.granularity));
  w.Key("quantile").Double(f.quantization.quantile);
  w.Key("recall_tuned").Bool(f.quantization.recall_tuned);
  w.Key("always_ram").Bool(f.quantization.always_ram);
  w.EndObject();
  w.Key("index").BeginObject();
  w.Key("nlist").Uint(f.index.nlist);
  w.Key("ivf_threshold").Uint(f.index.ivf_threshold);
  w.Key("default_nprobe").Uint(f.index.default_nprobe);
  w.Key("default_target_recall").Double(f.index.default_target_recall);
  w.Key("first_pass").Uint(static_cast<uint8_t>(f.index.first_pass));
  w.EndObject();
}

Status Bad() { return DataLossError("collection metadata is malformed"); }

// The field parts shared by versions 1 and 2.
Status ReadField(simdjson::dom::element doc, VectorFieldConfig* f) {
  uint64_t u = 0;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  std::string_view s;
  if (doc["dimension"].get(u) != simdjson::SUCCESS) return Bad();
  f->dimension = static_cast<uint32_t>(u);
  if (doc["distance"].get(s) != simdjson::SUCCESS) return Bad();
  auto dist = ParseDistance(s);
  if (!dist.ok()) return Bad();
  f->distance = *dist;
  auto q = doc["quantization"];
  if (q["type"].get(i) != simdjson::SUCCESS) return Bad();
  f->quantization.type = static_cast<QuantizationOptions::Type>(i);
  if (q["granularity"].get(i) != simdjson::SUCCESS) return Bad();
  f->quantization.granularity = static_cast<QuantizationOptions::Granularity>(i);
  if (q["quantile"].get(d) != simdjson::SUCCESS) return Bad();
  f->quantization.quantile = static_cast<float>(d);
  if (q["recall_tuned"].get(b) != simdjson::SUCCESS) return Bad();
  f->quantization.recall_tuned = b;
  if (q["always_ram"].get(b) != simdjson::SUCCESS) return Bad();
  f->quantization.always_ram = b;
  auto x = doc["index"];
  if (x["nlist"].get(u) != simdjson::SUCCESS) return Bad();
  f->index.nlist = static_cast<uint32_t>(u);
  if (x["ivf_threshold"].get(u) != simdjson::SUCCESS) return Bad();
  f->index.ivf_threshold = static_cast<uint32_t>(u);
  if (x["default_nprobe"].get(u) != simdjson::SUCCESS) return Bad();
  f->index.default_nprobe = static_cast<uint32_t>(u);
  if (x["default_target_recall"].get(d) != simdjson::SUCCESS) return Bad();
  f->index.default_target_recall = static_cast<float>(d);
  // Absent in metadata written before the 4-bit first pass existed.
  if (x["first_pass"].get(u) == simdjson::SUCCESS) {
    if (u > static_cast<uint8_t>(IndexOptions::FirstPass::kPq4)) return Bad();
    f->index.first_pass = static_cast<IndexOptions::FirstPass>(u);
  }
  return Status::Ok();
}

}  // namespace

std::map<std::string, uint16_t> AssignFieldIds(const CollectionConfig& config) {
  std::map<std::string, uint16_t> ids;
  uint16_t next = 0;
  for (const auto& [name, field] : config.Fields()) ids[name] = next++;
  for (const auto& [name, field] : config.sparse_vectors) ids[name] = next++;
  return ids;
}

std::string EncodeCollectionConfig(const CollectionConfig& c,
                                   const std::map<std::string, uint16_t>& field_ids) {
  JsonWriter w;
  w.BeginObject();
  w.Key("version").Int(kMetaVersion);
  w.Key("single_vector").Bool(c.single_vector());
  w.Key("vectors").BeginObject();
  for (const auto& [name, field] : c.Fields()) {
    w.Key(name).BeginObject();
    auto id = field_ids.find(name);
    w.Key("id").Uint(id == field_ids.end() ? 0 : id->second);
    WriteField(w, field);
    w.EndObject();
  }
  w.EndObject();
  if (!c.sparse_vectors.empty()) {
    w.Key("sparse_vectors").BeginObject();
    for (const auto& [name, field] : c.sparse_vectors) {
      w.Key(name).BeginObject();
      auto id = field_ids.find(name);
      w.Key("id").Uint(id == field_ids.end() ? 0 : id->second);
      w.Key("modifier").String(field.modifier == SparseVectorConfig::Modifier::kIdf ? "idf"
                                                                                    : "none");
      w.Key("full_scan_threshold").Uint(field.full_scan_threshold);
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  return w.Take();
}

StatusOr<StoredCollectionConfig> DecodeCollectionConfig(std::string_view meta) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(meta.data(), meta.size()).get(doc) != simdjson::SUCCESS) {
    return DataLossError("collection metadata is not valid JSON");
  }
  int64_t version = 0;
  if (doc["version"].get(version) != simdjson::SUCCESS) {
    return DataLossError("collection metadata has no version");
  }
  StoredCollectionConfig out;
  if (version == 1) {
    VectorFieldConfig f;
    QVEC_RETURN_IF_ERROR(ReadField(doc, &f));
    out.config.dimension = f.dimension;
    out.config.distance = f.distance;
    out.config.quantization = f.quantization;
    out.config.index = f.index;
    out.field_ids[""] = 0;
    out.legacy = true;
  } else if (version == kMetaVersion) {
    bool single = false;
    simdjson::dom::object vectors;
    if (doc["single_vector"].get(single) != simdjson::SUCCESS ||
        doc["vectors"].get(vectors) != simdjson::SUCCESS) {
      return Bad();
    }
    std::set<uint64_t> used;
    for (auto entry : vectors) {
      VectorFieldConfig f;
      QVEC_RETURN_IF_ERROR(ReadField(entry.value, &f));
      uint64_t id = 0;
      if (entry.value["id"].get(id) != simdjson::SUCCESS || id > 0xffff ||
          !used.insert(id).second) {
        return Bad();
      }
      const std::string name(entry.key);
      out.field_ids[name] = static_cast<uint16_t>(id);
      if (single) {
        if (!name.empty() || vectors.size() != 1) return Bad();
        out.config.dimension = f.dimension;
        out.config.distance = f.distance;
        out.config.quantization = f.quantization;
        out.config.index = f.index;
      } else {
        out.config.vectors[name] = f;
      }
    }
    simdjson::dom::object sparse;
    if (doc["sparse_vectors"].get(sparse) == simdjson::SUCCESS) {
      for (auto entry : sparse) {
        SparseVectorConfig f;
        uint64_t id = 0, threshold = 0;
        std::string_view modifier;
        if (entry.value["id"].get(id) != simdjson::SUCCESS || id > 0xffff ||
            !used.insert(id).second || entry.value["modifier"].get(modifier) != simdjson::SUCCESS ||
            entry.value["full_scan_threshold"].get(threshold) != simdjson::SUCCESS ||
            threshold > UINT32_MAX || (modifier != "idf" && modifier != "none")) {
          return Bad();
        }
        f.modifier = modifier == "idf" ? SparseVectorConfig::Modifier::kIdf
                                       : SparseVectorConfig::Modifier::kNone;
        f.full_scan_threshold = static_cast<uint32_t>(threshold);
        const std::string name(entry.key);
        out.field_ids[name] = static_cast<uint16_t>(id);
        out.config.sparse_vectors[name] = f;
      }
    }
  } else {
    return FailedPreconditionError("collection metadata has unknown version " +
                                   std::to_string(version));
  }
  Status valid = out.config.Validate();
  if (!valid.ok()) return DataLossError("collection metadata is invalid: " + valid.message());
  return out;
}

std::string EncodePayloadIndexes(const std::map<std::string, PayloadSchemaType>& indexes) {
  JsonWriter w;
  w.BeginObject();
  for (const auto& [key, type] : indexes) w.Key(key).String(PayloadSchemaTypeName(type));
  w.EndObject();
  return w.Take();
}

StatusOr<std::map<std::string, PayloadSchemaType>> DecodePayloadIndexes(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(text.data(), text.size()).get(doc) != simdjson::SUCCESS ||
      doc.type() != simdjson::dom::element_type::OBJECT) {
    return DataLossError("payload index declarations are not a JSON object");
  }
  std::map<std::string, PayloadSchemaType> out;
  for (auto field : simdjson::dom::object(doc)) {
    if (field.value.type() != simdjson::dom::element_type::STRING) {
      return DataLossError("payload index declaration is not a type name");
    }
    auto type = ParsePayloadSchemaType(std::string_view(field.value));
    if (!type.ok()) return DataLossError(type.status().message());
    out[std::string(field.key)] = *type;
  }
  return out;
}

}  // namespace qvec::engine
