#include "server/json_request.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/json_writer.h"

namespace qvec::server {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string TypeName(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::STRING:
      return "a string";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

Status WrongType(std::string_view field, std::string_view want, element e) {
  return InvalidArgumentError(std::string(field) + ": expected " + std::string(want) + ", got " +
                              TypeName(e.type()));
}

bool Lookup(element obj, std::string_view key, element* out) {
  return obj.type() == element_type::OBJECT &&
         simdjson::dom::object(obj).at_key(key).get(*out) == simdjson::SUCCESS &&
         out->type() != element_type::NULL_VALUE;
}

// A double as float: values beyond float range become +-infinity instead of
// the undefined behaviour of static_cast (UBSan's float-cast-overflow).
float ToFloat(double d) {
  constexpr double kMax = std::numeric_limits<float>::max();
  if (d > kMax) return std::numeric_limits<float>::infinity();
  if (d < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(d);
}

// InvalidArgument naming the first key that occurs twice in one object of
// `e` (at any depth). Qdrant rejects duplicate fields; taking either value
// silently would make a request (or a stored payload) ambiguous.
Status CheckDuplicateKeys(element e, size_t depth = 0) {
  if (depth > kMaxJsonDepth) return InvalidArgumentError("JSON nesting is too deep");
  if (e.type() == element_type::ARRAY) {
    for (element x : simdjson::dom::array(e)) {
      const auto t = x.type();
      if (t == element_type::ARRAY || t == element_type::OBJECT) {
        QVEC_RETURN_IF_ERROR(CheckDuplicateKeys(x, depth + 1));
      }
    }
    return Status::Ok();
  }
  if (e.type() != element_type::OBJECT) return Status::Ok();
  simdjson::dom::object obj(e);
  std::vector<std::string_view> keys;
  for (auto field : obj) {
    keys.push_back(field.key);
    const auto t = field.value.type();
    if (t == element_type::ARRAY || t == element_type::OBJECT) {
      QVEC_RETURN_IF_ERROR(CheckDuplicateKeys(field.value, depth + 1));
    }
  }
  if (keys.size() < 2) return Status::Ok();
  std::sort(keys.begin(), keys.end());
  for (size_t i = 1; i < keys.size(); ++i) {
    if (keys[i] == keys[i - 1]) {
      return InvalidArgumentError("duplicate key \"" + std::string(keys[i]) +
                                  "\" in a JSON object");
    }
  }
  return Status::Ok();
}

StatusOr<double> GetNumber(element e, std::string_view field) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(int64_t(e));
    case element_type::UINT64:
      return static_cast<double>(uint64_t(e));
    case element_type::DOUBLE:
      return double(e);
    default:
      return WrongType(field, "a number", e);
  }
}

StatusOr<uint64_t> GetUint(element e, std::string_view field) {
  if (e.type() == element_type::UINT64) return uint64_t(e);
  if (e.type() == element_type::INT64) {
    int64_t v = int64_t(e);
    if (v < 0) return OutOfRangeError(std::string(field) + " must not be negative");
    return static_cast<uint64_t>(v);
  }
  return WrongType(field, "a non-negative integer", e);
}

StatusOr<bool> GetBool(element e, std::string_view field) {
  if (e.type() != element_type::BOOL) return WrongType(field, "a boolean", e);
  return bool(e);
}

StatusOr<MatchValue> ParseMatchValue(element e, std::string_view field) {
  switch (e.type()) {
    case element_type::STRING:
      return MatchValue(std::string(std::string_view(e)));
    case element_type::INT64:
      return MatchValue(int64_t(e));
    case element_type::UINT64: {
      uint64_t u = uint64_t(e);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return OutOfRangeError(std::string(field) + ": integer out of range");
      }
      return MatchValue(static_cast<int64_t>(u));
    }
    case element_type::BOOL:
      return MatchValue(bool(e));
    default:
      return WrongType(field, "a string, integer or boolean", e);
  }
}

StatusOr<Condition> ParseCondition(element e, size_t depth) {
  if (e.type() != element_type::OBJECT) return WrongType("filter condition", "an object", e);
  Condition c;
  element v;
  // A nested filter is itself a condition.
  if (Lookup(e, "must", &v) || Lookup(e, "should", &v) || Lookup(e, "must_not", &v)) {
    QVEC_ASSIGN_OR_RETURN(Filter f, ParseFilter(e, depth + 1));
    c.kind = Condition::Kind::kNested;
    c.filter = std::make_shared<Filter>(std::move(f));
    return c;
  }
  if (Lookup(e, "has_id", &v)) {
    if (v.type() != element_type::ARRAY) return WrongType("has_id", "an array of ids", v);
    c.kind = Condition::Kind::kHasId;
    for (element id : simdjson::dom::array(v)) {
      QVEC_ASSIGN_OR_RETURN(PointId pid, ParsePointId(id));
      c.ids.push_back(pid);
    }
    return c;
  }
  if (Lookup(e, "is_empty", &v) || Lookup(e, "is_null", &v)) {
    element unused;
    c.kind = Lookup(e, "is_empty", &unused) ? Condition::Kind::kIsEmpty : Condition::Kind::kIsNull;
    element key;
    if (!Lookup(v, "key", &key) || key.type() != element_type::STRING) {
      return InvalidArgumentError("is_empty / is_null needs {\"key\": \"...\"}");
    }
    c.key = std::string(std::string_view(key));
    return c;
  }
  element key;
  if (!Lookup(e, "key", &key)) {
    return InvalidArgumentError(
        "unsupported filter condition: expected key with match or range, has_id, is_empty, "
        "is_null or a nested filter");
  }
  if (key.type() != element_type::STRING) return WrongType("condition key", "a string", key);
  c.key = std::string(std::string_view(key));
  if (c.key.empty()) return InvalidArgumentError("condition key must not be empty");
  element match, range;
  if (Lookup(e, "match", &match)) {
    if (match.type() != element_type::OBJECT) return WrongType("match", "an object", match);
    element x;
    if (Lookup(match, "value", &x)) {
      c.kind = Condition::Kind::kMatchValue;
      QVEC_ASSIGN_OR_RETURN(c.value, ParseMatchValue(x, "match.value"));
    } else if (Lookup(match, "any", &x) || Lookup(match, "except", &x)) {
      element unused;
      c.kind = Lookup(match, "any", &unused) ? Condition::Kind::kMatchAny
                                             : Condition::Kind::kMatchExcept;
      if (x.type() != element_type::ARRAY) return WrongType("match.any", "an array", x);
      for (element m : simdjson::dom::array(x)) {
        QVEC_ASSIGN_OR_RETURN(MatchValue mv, ParseMatchValue(m, "match.any"));
        c.any.push_back(std::move(mv));
      }
    } else if (Lookup(match, "text", &x)) {
      c.kind = Condition::Kind::kMatchValue;
      QVEC_ASSIGN_OR_RETURN(c.value, ParseMatchValue(x, "match.text"));
    } else {
      return InvalidArgumentError("match needs value, any or except");
    }
    return c;
  }
  if (Lookup(e, "range", &range)) {
    if (range.type() != element_type::OBJECT) return WrongType("range", "an object", range);
    c.kind = Condition::Kind::kRange;
    element x;
    auto bound = [&](std::string_view name, std::optional<double>* out) -> Status {
      if (!Lookup(range, name, &x)) return Status::Ok();
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, "range." + std::string(name)));
      *out = d;
      return Status::Ok();
    };
    QVEC_RETURN_IF_ERROR(bound("gt", &c.gt));
    QVEC_RETURN_IF_ERROR(bound("gte", &c.gte));
    QVEC_RETURN_IF_ERROR(bound("lt", &c.lt));
    QVEC_RETURN_IF_ERROR(bound("lte", &c.lte));
    return c;
  }
  return InvalidArgumentError("condition on key '" + c.key + "' needs match or range");
}

StatusOr<std::vector<Condition>> ParseConditions(element e, std::string_view name, size_t depth) {
  std::vector<Condition> out;
  if (e.type() == element_type::OBJECT) {  // Qdrant accepts a single condition too
    QVEC_ASSIGN_OR_RETURN(Condition c, ParseCondition(e, depth));
    out.push_back(std::move(c));
    return out;
  }
  if (e.type() != element_type::ARRAY) return WrongType(name, "an array of conditions", e);
  for (element c : simdjson::dom::array(e)) {
    QVEC_ASSIGN_OR_RETURN(Condition cond, ParseCondition(c, depth));
    out.push_back(std::move(cond));
  }
  return out;
}

StatusOr<QuantizationOptions> ParseQuantization(element e, QuantizationOptions q) {
  if (e.type() != element_type::OBJECT) return WrongType("quantization_config", "an object", e);
  element scalar, x;
  if (Lookup(e, "scalar", &scalar)) {
    if (scalar.type() != element_type::OBJECT) return WrongType("scalar", "an object", scalar);
    if (Lookup(scalar, "type", &x)) {
      if (x.type() != element_type::STRING || std::string_view(x) != "int8") {
        return InvalidArgumentError("quantization_config.scalar.type must be \"int8\"");
      }
    }
    if (Lookup(scalar, "quantile", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, "quantile"));
      if (!(d >= 0.5 && d <= 1.0)) return OutOfRangeError("quantile must be in [0.5, 1]");
      q.quantile = static_cast<float>(d <= 0.5 ? 0.5000001 : d);
      if (q.quantile < 1.0f && q.granularity == QuantizationOptions::Granularity::kPerVector) {
        // Clipping needs calibrated ranges.
        q.granularity = QuantizationOptions::Granularity::kPerDimension;
      }
    }
    if (Lookup(scalar, "always_ram", &x)) {
      QVEC_ASSIGN_OR_RETURN(q.always_ram, GetBool(x, "always_ram"));
    }
    return q;
  }
  if (Lookup(e, "product", &x) || Lookup(e, "binary", &x)) {
    return InvalidArgumentError("qvec supports only scalar int8 quantization");
  }
  return InvalidArgumentError("quantization_config needs \"scalar\"");
}

}  // namespace

StatusOr<element> ParseBody(simdjson::dom::parser& parser, std::string_view body) {
  size_t start = body.find_first_not_of(" \t\r\n");
  std::string_view trimmed = start == std::string_view::npos ? std::string_view() : body;
  if (trimmed.empty()) trimmed = "{}";
  element doc;
  auto err = parser.parse(trimmed.data(), trimmed.size()).get(doc);
  if (err == simdjson::DEPTH_ERROR) {
    return InvalidArgumentError("JSON nesting is deeper than " + std::to_string(kMaxJsonDepth));
  }
  if (err != simdjson::SUCCESS) {
    return InvalidArgumentError(std::string("malformed JSON body: ") +
                                simdjson::error_message(err));
  }
  if (doc.type() != element_type::OBJECT) {
    return InvalidArgumentError("request body must be a JSON object");
  }
  QVEC_RETURN_IF_ERROR(CheckDuplicateKeys(doc));
  return doc;
}

StatusOr<PointId> ParsePointIdText(std::string_view text) {
  if (!text.empty() && text.size() <= 20 &&
      text.find_first_not_of("0123456789") == std::string_view::npos) {
    uint64_t v = 0;
    for (char c : text) {
      uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
      if (next / 10 != v) return InvalidArgumentError("point id out of range");
      v = next;
    }
    return PointId::Num(v);
  }
  return PointId::ParseUuid(text);
}

StatusOr<PointId> ParsePointId(element e) {
  switch (e.type()) {
    case element_type::UINT64:
      return PointId::Num(uint64_t(e));
    case element_type::INT64: {
      int64_t v = int64_t(e);
      if (v < 0) return InvalidArgumentError("point id must be an unsigned integer or a UUID");
      return PointId::Num(static_cast<uint64_t>(v));
    }
    case element_type::STRING:
      return PointId::ParseUuid(std::string_view(e));
    default:
      return InvalidArgumentError("point id must be an unsigned integer or a UUID");
  }
}

Status ParseVector(element e, std::vector<float>* out) {
  if (e.type() != element_type::ARRAY) return WrongType("vector", "an array of numbers", e);
  simdjson::dom::array arr(e);
  out->clear();
  out->reserve(arr.size());
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  for (element x : arr) {
    double d;
    switch (x.type()) {
      case element_type::DOUBLE:
        d = double(x);
        break;
      case element_type::INT64:
        d = static_cast<double>(int64_t(x));
        break;
      case element_type::UINT64:
        d = static_cast<double>(uint64_t(x));
        break;
      default:
        return WrongType("vector element", "a number", x);
    }
    if (!(std::fabs(d) <= kFloatMax)) {
      return InvalidArgumentError("vector element is NaN, Inf or beyond float32 range");
    }
    out->push_back(static_cast<float>(d));
  }
  if (out->empty()) return InvalidArgumentError("vector must not be empty");
  return Status::Ok();
}

StatusOr<Filter> ParseFilter(element e, size_t depth) {
  if (depth > 16) return InvalidArgumentError("filter nesting is deeper than 16");
  if (e.type() != element_type::OBJECT) return WrongType("filter", "an object", e);
  Filter f;
  element x;
  if (Lookup(e, "must", &x)) {
    QVEC_ASSIGN_OR_RETURN(f.must, ParseConditions(x, "must", depth));
  }
  if (Lookup(e, "should", &x)) {
    QVEC_ASSIGN_OR_RETURN(f.should, ParseConditions(x, "should", depth));
  }
  if (Lookup(e, "must_not", &x)) {
    QVEC_ASSIGN_OR_RETURN(f.must_not, ParseConditions(x, "must_not", depth));
  }
  if (Lookup(e, "min_should", &x)) {
    element conds, min_count;
    if (Lookup(x, "conditions", &conds)) {
      QVEC_ASSIGN_OR_RETURN(auto more, ParseConditions(conds, "min_should.conditions", depth));
      for (auto& c : more) f.should.push_back(std::move(c));
    }
    if (Lookup(x, "min_count", &min_count)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(min_count, "min_should.min_count"));
      f.min_should = static_cast<size_t>(n);
    }
  }
  return f;
}

namespace {

// qvec's own options of a field: {"quantization": {...}, "index": {...}}
// (`where` names the object in errors, e.g. "qvec" or "vectors.text.qvec").
Status ParseQvecOptions(element own, const std::string& where, QuantizationOptions* quant,
                        IndexOptions* index) {
  if (own.type() != element_type::OBJECT) return WrongType(where, "an object", own);
  element q, idx, x;
  if (Lookup(own, "quantization", &q)) {
    if (q.type() != element_type::OBJECT) return WrongType(where + ".quantization", "an object", q);
    if (Lookup(q, "type", &x)) {
      std::string_view t = x.type() == element_type::STRING ? std::string_view(x) : "";
      if (t == "int8") {
        quant->type = QuantizationOptions::Type::kInt8;
      } else if (t == "uint8") {
        quant->type = QuantizationOptions::Type::kUint8;
      } else {
        return InvalidArgumentError(where + ".quantization.type must be \"int8\" or \"uint8\"");
      }
    }
    if (Lookup(q, "granularity", &x)) {
      std::string_view g = x.type() == element_type::STRING ? std::string_view(x) : "";
      if (g == "per_vector") {
        quant->granularity = QuantizationOptions::Granularity::kPerVector;
      } else if (g == "per_collection") {
        quant->granularity = QuantizationOptions::Granularity::kPerCollection;
      } else if (g == "per_dimension") {
        quant->granularity = QuantizationOptions::Granularity::kPerDimension;
      } else {
        return InvalidArgumentError(where +
                                    ".quantization.granularity must be per_vector, "
                                    "per_collection or per_dimension");
      }
    }
    if (Lookup(q, "quantile", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, where + ".quantization.quantile"));
      quant->quantile = ToFloat(d);
    }
    if (Lookup(q, "recall_tuned", &x)) {
      QVEC_ASSIGN_OR_RETURN(quant->recall_tuned, GetBool(x, where + ".quantization.recall_tuned"));
    }
  }
  if (Lookup(own, "index", &idx)) {
    if (idx.type() != element_type::OBJECT) return WrongType(where + ".index", "an object", idx);
    if (Lookup(idx, "nlist", &x)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, where + ".index.nlist"));
      if (n > UINT32_MAX) return OutOfRangeError(where + ".index.nlist out of range");
      index->nlist = static_cast<uint32_t>(n);  // the engine checks the range
    }
    if (Lookup(idx, "ivf_threshold", &x)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, where + ".index.ivf_threshold"));
      if (n > UINT32_MAX) return OutOfRangeError(where + ".index.ivf_threshold out of range");
      index->ivf_threshold = static_cast<uint32_t>(n);
    }
    if (Lookup(idx, "default_nprobe", &x)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, where + ".index.default_nprobe"));
      if (n > UINT32_MAX) return OutOfRangeError(where + ".index.default_nprobe out of range");
      index->default_nprobe = static_cast<uint32_t>(n);  // the engine checks the range
    }
    if (Lookup(idx, "default_target_recall", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, where + ".index.default_target_recall"));
      index->default_target_recall = ToFloat(d);
    }
  }
  return Status::Ok();
}

// Qdrant's VectorParams ({size, distance, quantization_config, ...} plus
// qvec's "qvec" options), starting from the collection-wide `defaults`.
StatusOr<VectorFieldConfig> ParseVectorParams(element e, const std::string& where,
                                              const VectorFieldConfig& defaults) {
  if (e.type() != element_type::OBJECT) return WrongType(where, "an object", e);
  VectorFieldConfig f = defaults;
  element size, distance, x;
  if (!Lookup(e, "size", &size)) return InvalidArgumentError(where + ".size is required");
  QVEC_ASSIGN_OR_RETURN(uint64_t dim, GetUint(size, where + ".size"));
  // The engine checks the range; beyond uint32 the value cannot be passed on.
  if (dim > UINT32_MAX) return OutOfRangeError(where + ".size out of range");
  f.dimension = static_cast<uint32_t>(dim);
  if (!Lookup(e, "distance", &distance) || distance.type() != element_type::STRING) {
    return InvalidArgumentError(where + ".distance is required: " + DistanceNames());
  }
  QVEC_ASSIGN_OR_RETURN(f.distance, ParseDistance(std::string_view(distance)));
  if (Lookup(e, "quantization_config", &x)) {
    QVEC_ASSIGN_OR_RETURN(f.quantization, ParseQuantization(x, f.quantization));
  }
  if (Lookup(e, "multivector_config", &x)) {
    return InvalidArgumentError(where + ".multivector_config: multivectors are not supported");
  }
  if (Lookup(e, "datatype", &x)) {
    // Vectors are kept as float32 originals plus int8 codes; another stored
    // type would change what is returned and scored.
    if (x.type() != element_type::STRING || std::string_view(x) != "float32") {
      return InvalidArgumentError(where + ".datatype: only \"float32\" is supported");
    }
  }
  if (Lookup(e, "qvec", &x)) {
    QVEC_RETURN_IF_ERROR(ParseQvecOptions(x, where + ".qvec", &f.quantization, &f.index));
  }
  return f;
}

}  // namespace

StatusOr<CollectionConfig> ParseCollectionConfig(element e) {
  CollectionConfig c;
  element vectors, x;
  if (!Lookup(e, "vectors", &vectors)) {
    return InvalidArgumentError(
        "collection config needs vectors: {size, distance} or {\"name\": {size, distance}, ...}");
  }
  if (vectors.type() != element_type::OBJECT) return WrongType("vectors", "an object", vectors);
  if (Lookup(e, "sparse_vectors", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("sparse_vectors", "an object", x);
    if (simdjson::dom::object(x).size() > 0) {
      return InvalidArgumentError("sparse_vectors: sparse vectors are not supported yet");
    }
  }
  // Collection-wide defaults: quantization_config and qvec options apply to
  // every field that does not set its own.
  VectorFieldConfig defaults;
  if (Lookup(e, "quantization_config", &x)) {
    QVEC_ASSIGN_OR_RETURN(defaults.quantization, ParseQuantization(x, defaults.quantization));
  }
  if (Lookup(e, "qvec", &x)) {
    QVEC_RETURN_IF_ERROR(ParseQvecOptions(x, "qvec", &defaults.quantization, &defaults.index));
  }
  element unused;
  if (Lookup(vectors, "size", &unused) || Lookup(vectors, "distance", &unused)) {
    QVEC_ASSIGN_OR_RETURN(VectorFieldConfig f, ParseVectorParams(vectors, "vectors", defaults));
    c.dimension = f.dimension;
    c.distance = f.distance;
    c.quantization = f.quantization;
    c.index = f.index;
  } else {
    simdjson::dom::object named(vectors);
    if (named.size() == 0) {
      return InvalidArgumentError("vectors: name at least one vector field");
    }
    if (named.size() > kMaxVectorFields) {
      return OutOfRangeError("vectors: at most " + std::to_string(kMaxVectorFields) +
                             " vector fields");
    }
    for (auto field : named) {
      const std::string fname(field.key);
      if (fname.empty()) return InvalidArgumentError("vectors: a vector name must not be empty");
      if (fname.size() > kMaxVectorFieldName) {
        return InvalidArgumentError("vectors: a vector name is longer than " +
                                    std::to_string(kMaxVectorFieldName) + " bytes");
      }
      QVEC_ASSIGN_OR_RETURN(VectorFieldConfig f,
                            ParseVectorParams(field.value, "vectors." + fname, defaults));
      c.vectors[fname] = f;
    }
  }
  Status valid = c.Validate();
  if (!valid.ok()) return OutOfRangeError(valid.message());
  return c;
}

StatusOr<VectorSelector> ParseVectorSelector(element obj, std::string_view key,
                                             bool default_value) {
  element x;
  if (!Lookup(obj, key, &x)) return VectorSelector(default_value);
  switch (x.type()) {
    case element_type::BOOL:
      return VectorSelector(bool(x));
    case element_type::ARRAY: {
      std::vector<std::string> names;
      for (element n : simdjson::dom::array(x)) {
        if (n.type() != element_type::STRING) return WrongType(key, "a list of vector names", n);
        names.emplace_back(std::string_view(n));
      }
      return VectorSelector(std::move(names));
    }
    default:
      return WrongType(key, "a boolean or a list of vector names", x);
  }
}

StatusOr<PayloadSelector> ParsePayloadSelector(element obj, bool default_enabled) {
  PayloadSelector sel;
  sel.enabled = default_enabled;
  element x;
  if (!Lookup(obj, "with_payload", &x)) return sel;
  auto strings = [](element list, std::string_view field, std::vector<std::string>* out) -> Status {
    if (list.type() != element_type::ARRAY) return WrongType(field, "an array of keys", list);
    for (element k : simdjson::dom::array(list)) {
      if (k.type() != element_type::STRING) return WrongType(field, "an array of keys", k);
      out->emplace_back(std::string_view(k));
    }
    return Status::Ok();
  };
  switch (x.type()) {
    case element_type::BOOL:
      sel.enabled = bool(x);
      return sel;
    case element_type::ARRAY:
      sel.enabled = true;
      QVEC_RETURN_IF_ERROR(strings(x, "with_payload", &sel.include));
      return sel;
    case element_type::OBJECT: {
      sel.enabled = true;
      element list;
      if (Lookup(x, "include", &list)) {
        QVEC_RETURN_IF_ERROR(strings(list, "with_payload.include", &sel.include));
      }
      if (Lookup(x, "exclude", &list)) {
        QVEC_RETURN_IF_ERROR(strings(list, "with_payload.exclude", &sel.exclude));
      }
      return sel;
    }
    default:
      return WrongType("with_payload", "a boolean, a list of keys or a selector", x);
  }
}

std::string PayloadSelector::Apply(std::string_view payload) const {
  if (include.empty() && exclude.empty()) return std::string(payload);
  auto names = [](const std::vector<std::string>& keys, std::string_view field) {
    for (const auto& k : keys) {
      std::string_view head = std::string_view(k).substr(0, k.find('.'));
      if (head == field) return true;
    }
    return false;
  };
  simdjson::dom::parser parser;
  element doc;
  if (parser.parse(payload.data(), payload.size()).get(doc) != simdjson::SUCCESS ||
      doc.type() != element_type::OBJECT) {
    return std::string(payload);
  }
  std::string out = "{";
  bool first = true;
  for (auto field : simdjson::dom::object(doc)) {
    if (!include.empty() && !names(include, field.key)) continue;
    if (names(exclude, field.key)) continue;
    if (!first) out += ',';
    first = false;
    engine::JsonWriter::AppendQuoted(out, field.key);
    out += ':';
    out += simdjson::to_string(field.value);
  }
  out += '}';
  return out;
}

StatusOr<SearchRequest> ParseSearchRequest(element e, bool query_api) {
  SearchRequest r;
  element x;
  if (query_api) {
    element q;
    if (!Lookup(e, "query", &q)) return InvalidArgumentError("query is required");
    if (q.type() == element_type::OBJECT) {
      element nearest;
      if (!Lookup(q, "nearest", &nearest)) {
        return InvalidArgumentError("only nearest-vector queries are supported");
      }
      q = nearest;
    }
    if (q.type() == element_type::OBJECT) {
      element unused;
      if (Lookup(q, "indices", &unused) || Lookup(q, "values", &unused)) {
        return InvalidArgumentError("query: sparse vectors are not supported yet");
      }
    }
    if (q.type() != element_type::ARRAY) {
      return InvalidArgumentError("query must be a vector (queries by point id are not supported)");
    }
    QVEC_RETURN_IF_ERROR(ParseVector(q, &r.vector));
    if (Lookup(e, "using", &x)) {
      if (x.type() != element_type::STRING) return WrongType("using", "a vector name", x);
      r.vector_name = std::string(std::string_view(x));
    }
  } else {
    if (!Lookup(e, "vector", &x)) return InvalidArgumentError("vector is required");
    if (x.type() == element_type::OBJECT) {  // named vector {"name":..., "vector": [...]}
      element name, inner;
      if (!Lookup(x, "name", &name) || name.type() != element_type::STRING) {
        return InvalidArgumentError(
            "vector: a named vector is {\"name\": \"...\", \"vector\": [...]}");
      }
      r.vector_name = std::string(std::string_view(name));
      if (!Lookup(x, "vector", &inner)) return InvalidArgumentError("vector.vector is required");
      if (inner.type() == element_type::OBJECT) {
        return InvalidArgumentError("vector.vector: sparse vectors are not supported yet");
      }
      x = inner;
    }
    QVEC_RETURN_IF_ERROR(ParseVector(x, &r.vector));
  }
  if (Lookup(e, "limit", &x) || Lookup(e, "top", &x)) {
    // Ranges are checked by the engine (qvec/options.h).
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "limit"));
    r.limit = static_cast<size_t>(n);
  }
  if (Lookup(e, "offset", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "offset"));
    r.offset = static_cast<size_t>(n);
  }
  if (Lookup(e, "score_threshold", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, "score_threshold"));
    r.score_threshold = ToFloat(d);
  }
  if (Lookup(e, "filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter f, ParseFilter(x));
    r.filter = std::move(f);
  }
  QVEC_ASSIGN_OR_RETURN(PayloadSelector selector, ParsePayloadSelector(e, false));
  r.with_payload = selector.enabled;
  QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelector(e, "with_vector", false));
  if (Lookup(e, "params", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("params", "an object", x);
    element y;
    if (Lookup(x, "exact", &y)) {
      QVEC_ASSIGN_OR_RETURN(r.params.exact, GetBool(y, "params.exact"));
    }
    if (Lookup(x, "nprobe", &y)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(y, "params.nprobe"));
      if (n < 1 || n > UINT32_MAX) return OutOfRangeError("params.nprobe must be at least 1");
      r.params.nprobe = static_cast<uint32_t>(n);
    }
    if (Lookup(x, "target_recall", &y)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(y, "params.target_recall"));
      r.params.target_recall = ToFloat(d);  // the engine checks the range
    }
    element quant;
    if (Lookup(x, "quantization", &quant)) {
      if (quant.type() != element_type::OBJECT)
        return WrongType("quantization", "an object", quant);
      if (Lookup(quant, "ignore", &y)) {
        QVEC_ASSIGN_OR_RETURN(r.params.ignore_quantization, GetBool(y, "quantization.ignore"));
      }
      if (Lookup(quant, "rescore", &y)) {
        QVEC_ASSIGN_OR_RETURN(bool b, GetBool(y, "quantization.rescore"));
        r.params.rescore = b;
      }
      if (Lookup(quant, "oversampling", &y)) {
        QVEC_ASSIGN_OR_RETURN(double d, GetNumber(y, "quantization.oversampling"));
        r.params.oversampling = ToFloat(d);  // the engine checks the range
      }
    }
  }
  return r;
}

namespace {

// Refuses the vector shapes qvec does not store yet, naming them: sparse
// ({indices, values}), multivectors (arrays of arrays) and documents for
// server-side inference.
Status CheckDenseVector(element v, const std::string& where) {
  if (v.type() == element_type::OBJECT) {
    element unused;
    if (Lookup(v, "indices", &unused) || Lookup(v, "values", &unused)) {
      return InvalidArgumentError(where + ": sparse vectors are not supported yet");
    }
    return InvalidArgumentError(where +
                                ": expected an array of numbers (documents and images for "
                                "server-side inference are not supported)");
  }
  if (v.type() == element_type::ARRAY) {
    simdjson::dom::array arr(v);
    if (arr.size() > 0 && (*arr.begin()).type() == element_type::ARRAY) {
      return InvalidArgumentError(where + ": multivectors are not supported");
    }
  }
  return Status::Ok();
}

// Qdrant's VectorStruct: [..] for the unnamed field, {"name": [..], ...}
// for named ones.
Status ParseVectorStruct(element v, Point* pt) {
  if (v.type() == element_type::OBJECT) {
    element unused;
    if (Lookup(v, "indices", &unused) || Lookup(v, "values", &unused)) {
      return InvalidArgumentError("vector: sparse vectors are not supported yet");
    }
    for (auto field : simdjson::dom::object(v)) {
      const std::string fname(field.key);
      const std::string where = "vector '" + fname + "'";
      QVEC_RETURN_IF_ERROR(CheckDenseVector(field.value, where));
      QVEC_RETURN_IF_ERROR(ParseVector(field.value, &pt->vectors[fname]).Annotate(where));
    }
    return Status::Ok();
  }
  QVEC_RETURN_IF_ERROR(CheckDenseVector(v, "vector"));
  return ParseVector(v, &pt->vector);
}

}  // namespace

StatusOr<std::vector<Point>> ParsePoints(element e) {
  std::vector<Point> points;
  element x;
  auto payload_of = [](element p, std::string* out) -> Status {
    if (p.type() == element_type::NULL_VALUE) return Status::Ok();
    if (p.type() != element_type::OBJECT) return WrongType("payload", "an object", p);
    *out = simdjson::to_string(p);
    return Status::Ok();
  };
  if (Lookup(e, "points", &x)) {
    if (x.type() != element_type::ARRAY) return WrongType("points", "an array", x);
    simdjson::dom::array arr(x);
    points.reserve(arr.size());
    for (element p : arr) {
      if (p.type() != element_type::OBJECT) return WrongType("point", "an object", p);
      Point pt;
      element y;
      if (!Lookup(p, "id", &y)) return InvalidArgumentError("point id is required");
      QVEC_ASSIGN_OR_RETURN(pt.id, ParsePointId(y));
      if (!Lookup(p, "vector", &y)) {
        return InvalidArgumentError("point " + pt.id.ToString() + ": vector is required");
      }
      Status s = ParseVectorStruct(y, &pt);
      if (!s.ok()) return s.Annotate("point " + pt.id.ToString());
      if (Lookup(p, "payload", &y)) QVEC_RETURN_IF_ERROR(payload_of(y, &pt.payload));
      points.push_back(std::move(pt));
    }
    return points;
  }
  if (Lookup(e, "batch", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("batch", "an object", x);
    element ids, vectors, payloads;
    if (!Lookup(x, "ids", &ids) || ids.type() != element_type::ARRAY) {
      return InvalidArgumentError("batch.ids must be an array");
    }
    if (!Lookup(x, "vectors", &vectors) ||
        (vectors.type() != element_type::ARRAY && vectors.type() != element_type::OBJECT)) {
      return InvalidArgumentError(
          "batch.vectors must be an array of vectors or {\"name\": [vectors...]}");
    }
    simdjson::dom::array id_arr(ids);
    points.resize(id_arr.size());
    size_t i = 0;
    for (element id : id_arr) {
      QVEC_ASSIGN_OR_RETURN(points[i].id, ParsePointId(id));
      ++i;
    }
    // One list of vectors for the unnamed field, or one per named field.
    auto column = [&](element list, const std::string* field) -> Status {
      const std::string where = field ? "batch.vectors." + *field : "batch.vectors";
      if (list.type() != element_type::ARRAY) return WrongType(where, "an array of vectors", list);
      simdjson::dom::array arr(list);
      if (arr.size() != id_arr.size()) {
        return InvalidArgumentError("batch.ids and " + where + " differ in length");
      }
      size_t j = 0;
      for (element v : arr) {
        Status st = CheckDenseVector(v, where);
        if (st.ok()) {
          st = ParseVector(v, field ? &points[j].vectors[*field] : &points[j].vector);
        }
        if (!st.ok()) return st.Annotate("point " + points[j].id.ToString());
        ++j;
      }
      return Status::Ok();
    };
    if (vectors.type() == element_type::OBJECT) {
      for (auto field : simdjson::dom::object(vectors)) {
        const std::string fname(field.key);
        QVEC_RETURN_IF_ERROR(column(field.value, &fname));
      }
    } else {
      QVEC_RETURN_IF_ERROR(column(vectors, nullptr));
    }
    if (Lookup(x, "payloads", &payloads)) {
      if (payloads.type() != element_type::ARRAY)
        return WrongType("batch.payloads", "an array", payloads);
      simdjson::dom::array parr(payloads);
      if (parr.size() != id_arr.size()) {
        return InvalidArgumentError("batch.payloads and batch.ids differ in length");
      }
      i = 0;
      for (element p : parr) {
        QVEC_RETURN_IF_ERROR(payload_of(p, &points[i].payload));
        ++i;
      }
    }
    return points;
  }
  return InvalidArgumentError("body needs \"points\" or \"batch\"");
}

}  // namespace qvec::server
