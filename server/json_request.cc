#include "server/json_request.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <tuple>

#include "common/datetime.h"
#include "engine/json_writer.h"
#include "server/request_fields.h"

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

// Reads an object of the request at `path` into `var`, or returns its error.
#define QVEC_FIELDS(var, e, path) \
  QVEC_ASSIGN_OR_RETURN(RequestFields var, RequestFields::Of((e), (path)))

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// The array at `key` of a body that holds only it ({"searches": [...]},
// {"operations": [...]}, {"actions": [...]}).
StatusOr<simdjson::dom::array> OnlyArray(element e, std::string_view key, std::string_view of) {
  QVEC_FIELDS(f, e, "");
  element x;
  if (!f.Take(key, &x) || x.type() != element_type::ARRAY) {
    return InvalidArgumentError(std::string(key) + " must be an array of " + std::string(of));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return simdjson::dom::array(x);
}

// shard_key is part of Qdrant's custom sharding; qvec has one shard.
Status RefuseShardKey(const RequestFields& f) {
  return f.Refuse("shard_key", "not supported (qvec has one shard; shard keys need custom sharding)");
}

// A section that only tunes Qdrant internals (HNSW, WAL, optimizers,
// replication): accepted without effect once its type is right. README.md
// lists these fields.
enum class Tuning { kObject, kUint, kBool };
Status AcceptTuning(RequestFields& f, std::string_view key, Tuning kind) {
  element v;
  if (!f.Take(key, &v)) return Status::Ok();
  const std::string where = f.PathOf(key);
  switch (kind) {
    case Tuning::kObject:
      if (v.type() != element_type::OBJECT) return WrongType(where, "an object", v);
      break;
    case Tuning::kUint:
      QVEC_RETURN_IF_ERROR(GetUint(v, where).status());
      break;
    case Tuning::kBool:
      QVEC_RETURN_IF_ERROR(GetBool(v, where).status());
      break;
  }
  return Status::Ok();
}

StatusOr<std::string> GetString(element e, const std::string& field) {
  if (e.type() != element_type::STRING) return WrongType(field, "a string", e);
  return std::string(std::string_view(e));
}

StatusOr<std::vector<PointId>> ParseIdList(element e, const std::string& field) {
  if (e.type() != element_type::ARRAY) return WrongType(field, "an array of point ids", e);
  std::vector<PointId> ids;
  for (element id : simdjson::dom::array(e)) {
    QVEC_ASSIGN_OR_RETURN(PointId pid, ParsePointId(id));
    ids.push_back(pid);
  }
  return ids;
}

// gt / gte / lt / lte of a range or values_count object. A range whose
// bounds are strings is Qdrant's DatetimeRange (RFC 3339 date-times).
Status ParseBounds(element e, const std::string& path, bool integers, Condition* c) {
  QVEC_FIELDS(f, e, path);
  element x;
  int numbers = 0, times = 0;
  using Bound = std::tuple<std::string_view, std::optional<double>*, std::optional<int64_t>*>;
  for (auto [name, out, time_out] : {Bound{"gt", &c->gt, &c->time_gt},
                                     Bound{"gte", &c->gte, &c->time_gte},
                                     Bound{"lt", &c->lt, &c->time_lt},
                                     Bound{"lte", &c->lte, &c->time_lte}}) {
    if (!f.Take(name, &x)) continue;
    const std::string where = f.PathOf(name);
    if (integers) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, where));
      *out = static_cast<double>(n);
    } else if (x.type() == element_type::STRING) {
      const std::optional<int64_t> t = datetime::ParseMicros(std::string_view(x));
      if (!t) {
        return InvalidArgumentError(where + ": '" + std::string(std::string_view(x)) +
                                    "' is not an RFC 3339 date-time (e.g. 2023-02-08T10:49:00Z)");
      }
      *time_out = *t;
      ++times;
    } else {
      QVEC_ASSIGN_OR_RETURN(*out, GetNumber(x, where));
      ++numbers;
    }
  }
  if (numbers > 0 && times > 0) {
    return InvalidArgumentError(path + ": bounds are either all numbers or all date-times");
  }
  if (times > 0) c->kind = Condition::Kind::kDatetimeRange;
  return f.Finish();
}

Status ParseMatch(element e, const std::string& path, Condition* c) {
  QVEC_FIELDS(f, e, path);
  element x;
  int forms = 0;
  if (f.Take("value", &x)) {
    ++forms;
    c->kind = Condition::Kind::kMatchValue;
    QVEC_ASSIGN_OR_RETURN(c->value, ParseMatchValue(x, f.PathOf("value")));
  }
  // Without a full-text index (qvec has none yet) Qdrant matches text and
  // phrase as a substring and text_any as any word being a substring.
  for (auto [name, kind] :
       {std::pair<std::string_view, Condition::Kind>{"text", Condition::Kind::kMatchText},
        {"phrase", Condition::Kind::kMatchPhrase},
        {"text_any", Condition::Kind::kMatchTextAny}}) {
    if (!f.Take(name, &x)) continue;
    ++forms;
    c->kind = kind;
    QVEC_ASSIGN_OR_RETURN(std::string text, GetString(x, f.PathOf(name)));
    c->value = std::move(text);
  }
  for (auto [name, kind] :
       {std::pair<std::string_view, Condition::Kind>{"any", Condition::Kind::kMatchAny},
        {"except", Condition::Kind::kMatchExcept}}) {
    if (!f.Take(name, &x)) continue;
    ++forms;
    c->kind = kind;
    const std::string where = f.PathOf(name);
    if (x.type() != element_type::ARRAY) return WrongType(where, "an array", x);
    for (element m : simdjson::dom::array(x)) {
      QVEC_ASSIGN_OR_RETURN(MatchValue mv, ParseMatchValue(m, where));
      c->any.push_back(std::move(mv));
    }
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (forms != 1) {
    return InvalidArgumentError(path +
                                ": expected exactly one of value, text, phrase, text_any, any, "
                                "except");
  }
  return Status::Ok();
}

StatusOr<GeoPoint> ParseGeoPoint(element e, const std::string& path) {
  QVEC_FIELDS(f, e, path);
  GeoPoint p;
  element x;
  if (!f.Take("lon", &x)) return InvalidArgumentError(f.PathOf("lon") + " is required");
  QVEC_ASSIGN_OR_RETURN(p.lon, GetNumber(x, f.PathOf("lon")));
  if (!f.Take("lat", &x)) return InvalidArgumentError(f.PathOf("lat") + " is required");
  QVEC_ASSIGN_OR_RETURN(p.lat, GetNumber(x, f.PathOf("lat")));
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (!(p.lon >= -180 && p.lon <= 180)) {
    return OutOfRangeError(f.PathOf("lon") + " must be in [-180, 180]");
  }
  if (!(p.lat >= -90 && p.lat <= 90)) return OutOfRangeError(f.PathOf("lat") + " must be in [-90, 90]");
  return p;
}

// {"points": [{lon, lat}, ...]}: a closed ring of at least 4 points.
StatusOr<std::vector<GeoPoint>> ParseGeoRing(element e, const std::string& path) {
  QVEC_FIELDS(f, e, path);
  element pts;
  if (!f.Take("points", &pts) || pts.type() != element_type::ARRAY) {
    return InvalidArgumentError(f.PathOf("points") + " must be an array of {lon, lat}");
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  std::vector<GeoPoint> ring;
  size_t i = 0;
  for (element p : simdjson::dom::array(pts)) {
    QVEC_ASSIGN_OR_RETURN(GeoPoint g, ParseGeoPoint(p, Index(f.PathOf("points"), i++)));
    ring.push_back(g);
  }
  if (ring.size() < 4 || ring.front().lon != ring.back().lon ||
      ring.front().lat != ring.back().lat) {
    return InvalidArgumentError(path +
                                ": a polygon ring needs at least 4 points, the last equal to the "
                                "first");
  }
  return ring;
}

// geo_radius, geo_bounding_box, geo_polygon of a field condition.
Status ParseGeo(RequestFields& f, Condition* c, int* forms) {
  element v, x;
  if (f.Take("geo_radius", &v)) {
    ++*forms;
    QVEC_FIELDS(g, v, f.PathOf("geo_radius"));
    c->kind = Condition::Kind::kGeoRadius;
    if (!g.Take("center", &x)) return InvalidArgumentError(g.PathOf("center") + " is required");
    QVEC_ASSIGN_OR_RETURN(GeoPoint center, ParseGeoPoint(x, g.PathOf("center")));
    c->geo = {center};
    if (!g.Take("radius", &x)) return InvalidArgumentError(g.PathOf("radius") + " is required");
    QVEC_ASSIGN_OR_RETURN(c->geo_radius, GetNumber(x, g.PathOf("radius")));
    if (!(c->geo_radius >= 0)) return OutOfRangeError(g.PathOf("radius") + " must be >= 0 (meters)");
    QVEC_RETURN_IF_ERROR(g.Finish());
  }
  if (f.Take("geo_bounding_box", &v)) {
    ++*forms;
    QVEC_FIELDS(g, v, f.PathOf("geo_bounding_box"));
    c->kind = Condition::Kind::kGeoBoundingBox;
    c->geo.clear();
    for (std::string_view corner : {"top_left", "bottom_right"}) {
      if (!g.Take(corner, &x)) return InvalidArgumentError(g.PathOf(corner) + " is required");
      QVEC_ASSIGN_OR_RETURN(GeoPoint p, ParseGeoPoint(x, g.PathOf(corner)));
      c->geo.push_back(p);
    }
    QVEC_RETURN_IF_ERROR(g.Finish());
    if (c->geo[0].lat < c->geo[1].lat) {
      return InvalidArgumentError(g.path() + ": top_left.lat must be >= bottom_right.lat");
    }
  }
  if (f.Take("geo_polygon", &v)) {
    ++*forms;
    QVEC_FIELDS(g, v, f.PathOf("geo_polygon"));
    c->kind = Condition::Kind::kGeoPolygon;
    if (!g.Take("exterior", &x)) return InvalidArgumentError(g.PathOf("exterior") + " is required");
    QVEC_ASSIGN_OR_RETURN(c->geo, ParseGeoRing(x, g.PathOf("exterior")));
    if (g.Take("interiors", &x)) {
      if (x.type() != element_type::ARRAY) return WrongType(g.PathOf("interiors"), "an array", x);
      size_t i = 0;
      for (element ring : simdjson::dom::array(x)) {
        QVEC_ASSIGN_OR_RETURN(auto hole, ParseGeoRing(ring, Index(g.PathOf("interiors"), i++)));
        c->geo_holes.push_back(std::move(hole));
      }
    }
    QVEC_RETURN_IF_ERROR(g.Finish());
  }
  return Status::Ok();
}

StatusOr<Condition> NotCondition(Condition c) {
  Condition outer;
  outer.kind = Condition::Kind::kNested;
  auto f = std::make_shared<Filter>();
  f->must_not.push_back(std::move(c));
  outer.filter = std::move(f);
  return outer;
}

StatusOr<Condition> ParseCondition(element e, const std::string& path, size_t depth) {
  QVEC_FIELDS(f, e, path);
  Condition c;
  element v;
  // A nested filter is itself a condition.
  if (f.Has("must") || f.Has("should") || f.Has("must_not") || f.Has("min_should")) {
    QVEC_ASSIGN_OR_RETURN(Filter sub, ParseFilter(e, path, depth + 1));
    c.kind = Condition::Kind::kNested;
    c.filter = std::make_shared<Filter>(std::move(sub));
    return c;
  }
  if (f.Take("has_id", &v)) {
    c.kind = Condition::Kind::kHasId;
    QVEC_ASSIGN_OR_RETURN(c.ids, ParseIdList(v, f.PathOf("has_id")));
    QVEC_RETURN_IF_ERROR(f.Finish());
    return c;
  }
  if (f.Take("has_vector", &v)) {
    c.kind = Condition::Kind::kHasVector;
    QVEC_ASSIGN_OR_RETURN(c.key, GetString(v, f.PathOf("has_vector")));
    QVEC_RETURN_IF_ERROR(f.Finish());
    return c;
  }
  if (f.Take("nested", &v)) {
    // {"nested": {"key": "items", "filter": {...}}}: the inner filter holds
    // for one object of the array on its own.
    QVEC_FIELDS(n, v, f.PathOf("nested"));
    element key, inner;
    if (!n.Take("key", &key)) return InvalidArgumentError(n.PathOf("key") + " is required");
    QVEC_ASSIGN_OR_RETURN(c.key, GetString(key, n.PathOf("key")));
    // Qdrant writes "items[]" for the array; the objects are read either way.
    if (c.key.size() >= 2 && c.key.compare(c.key.size() - 2, 2, "[]") == 0) c.key.resize(c.key.size() - 2);
    if (c.key.empty()) return InvalidArgumentError(n.PathOf("key") + " must not be empty");
    if (!n.Take("filter", &inner)) return InvalidArgumentError(n.PathOf("filter") + " is required");
    QVEC_ASSIGN_OR_RETURN(Filter sub, ParseFilter(inner, n.PathOf("filter"), depth + 1));
    QVEC_RETURN_IF_ERROR(n.Finish());
    QVEC_RETURN_IF_ERROR(f.Finish());
    // Point ids are not part of the objects.
    std::function<bool(const Filter&)> has_id = [&](const Filter& fl) {
      for (const auto* list : {&fl.must, &fl.should, &fl.must_not}) {
        for (const Condition& x : *list) {
          if (x.kind == Condition::Kind::kHasId || x.kind == Condition::Kind::kHasVector) {
            return true;
          }
          if ((x.kind == Condition::Kind::kNested || x.kind == Condition::Kind::kNestedObjects) &&
              x.filter && has_id(*x.filter)) {
            return true;
          }
        }
      }
      return false;
    };
    if (has_id(sub)) {
      return InvalidArgumentError(n.PathOf("filter") +
                                  ": has_id and has_vector are not allowed inside nested");
    }
    c.kind = Condition::Kind::kNestedObjects;
    c.filter = std::make_shared<Filter>(std::move(sub));
    return c;
  }
  if (!f.Has("key")) {
    // {"is_empty": {"key": ...}} and {"is_null": {"key": ...}}.
    for (auto [name, kind] :
         {std::pair<std::string_view, Condition::Kind>{"is_empty", Condition::Kind::kIsEmpty},
          {"is_null", Condition::Kind::kIsNull}}) {
      if (!f.Take(name, &v)) continue;
      QVEC_FIELDS(g, v, f.PathOf(name));
      element key;
      if (!g.Take("key", &key)) return InvalidArgumentError(g.PathOf("key") + " is required");
      QVEC_ASSIGN_OR_RETURN(c.key, GetString(key, g.PathOf("key")));
      QVEC_RETURN_IF_ERROR(g.Finish());
      QVEC_RETURN_IF_ERROR(f.Finish());
      c.kind = kind;
      return c;
    }
    QVEC_RETURN_IF_ERROR(f.Finish());
    return InvalidArgumentError(path +
                                ": expected a field condition {key, match | range | "
                                "values_count | is_empty | is_null}, has_id, is_empty, is_null "
                                "or a nested filter");
  }
  f.Take("key", &v);
  QVEC_ASSIGN_OR_RETURN(c.key, GetString(v, f.PathOf("key")));
  if (c.key.empty()) return InvalidArgumentError(f.PathOf("key") + " must not be empty");
  int forms = 0;
  bool negate = false;
  if (f.Take("match", &v)) {
    ++forms;
    QVEC_RETURN_IF_ERROR(ParseMatch(v, f.PathOf("match"), &c));
  }
  if (f.Take("range", &v)) {
    ++forms;
    c.kind = Condition::Kind::kRange;
    QVEC_RETURN_IF_ERROR(ParseBounds(v, f.PathOf("range"), false, &c));
  }
  if (f.Take("values_count", &v)) {
    ++forms;
    c.kind = Condition::Kind::kValuesCount;
    QVEC_RETURN_IF_ERROR(ParseBounds(v, f.PathOf("values_count"), true, &c));
  }
  // FieldCondition's boolean forms: {"key": k, "is_empty": true|false}.
  for (auto [name, kind] :
       {std::pair<std::string_view, Condition::Kind>{"is_empty", Condition::Kind::kIsEmpty},
        {"is_null", Condition::Kind::kIsNull}}) {
    if (!f.Take(name, &v)) continue;
    ++forms;
    QVEC_ASSIGN_OR_RETURN(bool b, GetBool(v, f.PathOf(name)));
    c.kind = kind;
    negate = !b;
  }
  QVEC_RETURN_IF_ERROR(ParseGeo(f, &c, &forms));
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (forms != 1) {
    return InvalidArgumentError(path + ": a condition on key '" + c.key +
                                "' takes exactly one of match, range, values_count, is_empty, "
                                "is_null, geo_radius, geo_bounding_box, geo_polygon");
  }
  if (negate) return NotCondition(std::move(c));
  return c;
}

StatusOr<std::vector<Condition>> ParseConditions(element e, const std::string& path,
                                                 size_t depth) {
  std::vector<Condition> out;
  if (e.type() == element_type::OBJECT) {  // Qdrant accepts a single condition too
    QVEC_ASSIGN_OR_RETURN(Condition c, ParseCondition(e, path, depth));
    out.push_back(std::move(c));
    return out;
  }
  if (e.type() != element_type::ARRAY) return WrongType(path, "an array of conditions", e);
  size_t i = 0;
  for (element c : simdjson::dom::array(e)) {
    QVEC_ASSIGN_OR_RETURN(Condition cond, ParseCondition(c, Index(path, i++), depth));
    out.push_back(std::move(cond));
  }
  return out;
}

StatusOr<QuantizationOptions> ParseQuantization(element e, const std::string& path,
                                                QuantizationOptions q) {
  QVEC_FIELDS(f, e, path);
  for (std::string_view other : {"product", "binary", "turbo"}) {
    QVEC_RETURN_IF_ERROR(f.Refuse(other, "qvec supports only scalar int8 quantization"));
  }
  element scalar, x;
  if (!f.Take("scalar", &scalar)) {
    QVEC_RETURN_IF_ERROR(f.Finish());
    return InvalidArgumentError(path + " needs \"scalar\"");
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  QVEC_FIELDS(s, scalar, f.PathOf("scalar"));
  if (s.Take("type", &x)) {
    if (x.type() != element_type::STRING || std::string_view(x) != "int8") {
      return InvalidArgumentError(s.PathOf("type") + " must be \"int8\"");
    }
  }
  if (s.Take("quantile", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, s.PathOf("quantile")));
    if (!(d >= 0.5 && d <= 1.0)) return OutOfRangeError(s.PathOf("quantile") + " must be in [0.5, 1]");
    q.quantile = static_cast<float>(d <= 0.5 ? 0.5000001 : d);
    if (q.quantile < 1.0f && q.granularity == QuantizationOptions::Granularity::kPerVector) {
      // Clipping needs calibrated ranges.
      q.granularity = QuantizationOptions::Granularity::kPerDimension;
    }
  }
  if (s.Take("always_ram", &x)) {
    QVEC_ASSIGN_OR_RETURN(q.always_ram, GetBool(x, s.PathOf("always_ram")));
  }
  QVEC_RETURN_IF_ERROR(s.Finish());
  return q;
}

// qvec's own options of a field: {"quantization": {...}, "index": {...}}
// (`where` names the object in errors, e.g. "qvec" or "vectors.text.qvec").
Status ParseQvecOptions(element own, const std::string& where, QuantizationOptions* quant,
                        IndexOptions* index) {
  QVEC_FIELDS(f, own, where);
  element q, idx, x;
  if (f.Take("quantization", &q)) {
    QVEC_FIELDS(g, q, f.PathOf("quantization"));
    if (g.Take("type", &x)) {
      std::string_view t = x.type() == element_type::STRING ? std::string_view(x) : "";
      if (t == "int8") {
        quant->type = QuantizationOptions::Type::kInt8;
      } else if (t == "uint8") {
        quant->type = QuantizationOptions::Type::kUint8;
      } else {
        return InvalidArgumentError(g.PathOf("type") + " must be \"int8\" or \"uint8\"");
      }
    }
    if (g.Take("granularity", &x)) {
      std::string_view gr = x.type() == element_type::STRING ? std::string_view(x) : "";
      if (gr == "per_vector") {
        quant->granularity = QuantizationOptions::Granularity::kPerVector;
      } else if (gr == "per_collection") {
        quant->granularity = QuantizationOptions::Granularity::kPerCollection;
      } else if (gr == "per_dimension") {
        quant->granularity = QuantizationOptions::Granularity::kPerDimension;
      } else {
        return InvalidArgumentError(g.PathOf("granularity") +
                                    " must be per_vector, per_collection or per_dimension");
      }
    }
    if (g.Take("quantile", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, g.PathOf("quantile")));
      quant->quantile = ToFloat(d);
    }
    if (g.Take("recall_tuned", &x)) {
      QVEC_ASSIGN_OR_RETURN(quant->recall_tuned, GetBool(x, g.PathOf("recall_tuned")));
    }
    QVEC_RETURN_IF_ERROR(g.Finish());
  }
  if (f.Take("index", &idx)) {
    QVEC_FIELDS(g, idx, f.PathOf("index"));
    auto uint32_field = [&](std::string_view name, uint32_t* out) -> Status {
      if (!g.Take(name, &x)) return Status::Ok();
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, g.PathOf(name)));
      // The engine checks the range; beyond uint32 the value cannot be passed on.
      if (n > UINT32_MAX) return OutOfRangeError(g.PathOf(name) + " out of range");
      *out = static_cast<uint32_t>(n);
      return Status::Ok();
    };
    QVEC_RETURN_IF_ERROR(uint32_field("nlist", &index->nlist));
    QVEC_RETURN_IF_ERROR(uint32_field("ivf_threshold", &index->ivf_threshold));
    QVEC_RETURN_IF_ERROR(uint32_field("default_nprobe", &index->default_nprobe));
    if (g.Take("default_target_recall", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, g.PathOf("default_target_recall")));
      index->default_target_recall = ToFloat(d);
    }
    if (g.Take("first_pass", &x)) {
      QVEC_ASSIGN_OR_RETURN(std::string v, GetString(x, g.PathOf("first_pass")));
      if (v == "none") {
        index->first_pass = IndexOptions::FirstPass::kNone;
      } else if (v == "sq4") {
        index->first_pass = IndexOptions::FirstPass::kSq4;
      } else if (v == "pq4") {
        index->first_pass = IndexOptions::FirstPass::kPq4;
      } else {
        return InvalidArgumentError(g.PathOf("first_pass") + " must be \"none\", \"sq4\" or \"pq4\"");
      }
    }
    QVEC_RETURN_IF_ERROR(g.Finish());
  }
  return f.Finish();
}

// Qdrant's VectorParams ({size, distance, quantization_config, ...} plus
// qvec's "qvec" options), starting from the collection-wide `defaults`.
// Qdrant's SparseVectorParams: {"index": {full_scan_threshold, on_disk,
// datatype}, "modifier": "none" | "idf"}, over `base`.
StatusOr<SparseVectorConfig> ParseSparseVectorParams(element e, const std::string& where,
                                                     SparseVectorConfig base) {
  if (e.type() == element_type::NULL_VALUE) return base;
  QVEC_FIELDS(f, e, where);
  element x;
  if (f.Take("modifier", &x) && x.type() != element_type::NULL_VALUE) {
    QVEC_ASSIGN_OR_RETURN(std::string m, GetString(x, f.PathOf("modifier")));
    if (m == "idf") {
      base.modifier = SparseVectorConfig::Modifier::kIdf;
    } else if (m == "none") {
      base.modifier = SparseVectorConfig::Modifier::kNone;
    } else {
      return InvalidArgumentError(f.PathOf("modifier") + ": expected \"none\" or \"idf\"");
    }
  }
  if (f.Take("index", &x) && x.type() != element_type::NULL_VALUE) {
    QVEC_FIELDS(ix, x, f.PathOf("index"));
    element y;
    if (ix.Take("full_scan_threshold", &y) && y.type() != element_type::NULL_VALUE) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(y, ix.PathOf("full_scan_threshold")));
      base.full_scan_threshold = static_cast<uint32_t>(std::min<uint64_t>(n, UINT32_MAX));
    }
    if (ix.Take("datatype", &y) && y.type() != element_type::NULL_VALUE) {
      QVEC_ASSIGN_OR_RETURN(std::string d, GetString(y, ix.PathOf("datatype")));
      if (d != "float32") {
        return InvalidArgumentError(ix.PathOf("datatype") +
                                    ": qvec keeps sparse weights as float32; \"" + d +
                                    "\" is not supported");
      }
    }
    // The inverted index lives in RAM; its vectors are on disk either way.
    QVEC_RETURN_IF_ERROR(AcceptTuning(ix, "on_disk", Tuning::kBool));
    QVEC_RETURN_IF_ERROR(ix.Finish());
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return base;
}

StatusOr<VectorFieldConfig> ParseVectorParams(element e, const std::string& where,
                                              const VectorFieldConfig& defaults) {
  QVEC_FIELDS(f, e, where);
  VectorFieldConfig out = defaults;
  element size, distance, x;
  if (!f.Take("size", &size)) return InvalidArgumentError(f.PathOf("size") + " is required");
  QVEC_ASSIGN_OR_RETURN(uint64_t dim, GetUint(size, f.PathOf("size")));
  // The engine checks the range; beyond uint32 the value cannot be passed on.
  if (dim > UINT32_MAX) return OutOfRangeError(f.PathOf("size") + " out of range");
  out.dimension = static_cast<uint32_t>(dim);
  if (!f.Take("distance", &distance) || distance.type() != element_type::STRING) {
    return InvalidArgumentError(f.PathOf("distance") + " is required: " + DistanceNames());
  }
  QVEC_ASSIGN_OR_RETURN(out.distance, ParseDistance(std::string_view(distance)));
  if (f.Take("quantization_config", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.quantization, ParseQuantization(x, f.PathOf("quantization_config"),
                                                              out.quantization));
  }
  QVEC_RETURN_IF_ERROR(f.Refuse("multivector_config", "multivectors are not supported"));
  if (f.Take("datatype", &x)) {
    // Vectors are kept as float32 originals plus int8 codes; another stored
    // type would change what is returned and scored.
    if (x.type() != element_type::STRING || std::string_view(x) != "float32") {
      return InvalidArgumentError(f.PathOf("datatype") + ": only \"float32\" is supported");
    }
  }
  if (f.Take("qvec", &x)) {
    QVEC_RETURN_IF_ERROR(
        ParseQvecOptions(x, f.PathOf("qvec"), &out.quantization, &out.index));
  }
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "hnsw_config", Tuning::kObject));
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "on_disk", Tuning::kBool));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

Status ParsePayloadSelectorField(RequestFields& f, bool default_enabled, PayloadSelector* sel) {
  sel->enabled = default_enabled;
  element x;
  if (!f.Take("with_payload", &x)) return Status::Ok();
  const std::string where = f.PathOf("with_payload");
  auto strings = [](element list, const std::string& field,
                    std::vector<std::string>* out) -> Status {
    if (list.type() != element_type::ARRAY) return WrongType(field, "an array of keys", list);
    for (element k : simdjson::dom::array(list)) {
      if (k.type() != element_type::STRING) return WrongType(field, "an array of keys", k);
      out->emplace_back(std::string_view(k));
    }
    return Status::Ok();
  };
  switch (x.type()) {
    case element_type::BOOL:
      sel->enabled = bool(x);
      return Status::Ok();
    case element_type::ARRAY:
      sel->enabled = true;
      return strings(x, where, &sel->include);
    case element_type::OBJECT: {
      sel->enabled = true;
      QVEC_FIELDS(g, x, where);
      element list;
      if (g.Take("include", &list)) {
        QVEC_RETURN_IF_ERROR(strings(list, g.PathOf("include"), &sel->include));
      }
      if (g.Take("exclude", &list)) {
        QVEC_RETURN_IF_ERROR(strings(list, g.PathOf("exclude"), &sel->exclude));
      }
      return g.Finish();
    }
    default:
      return WrongType(where, "a boolean, a list of keys or a selector", x);
  }
}

StatusOr<VectorSelector> ParseVectorSelectorField(RequestFields& f, bool default_value) {
  element x;
  if (!f.Take("with_vector", &x)) return VectorSelector(default_value);
  const std::string where = f.PathOf("with_vector");
  switch (x.type()) {
    case element_type::BOOL:
      return VectorSelector(bool(x));
    case element_type::ARRAY: {
      std::vector<std::string> names;
      for (element n : simdjson::dom::array(x)) {
        if (n.type() != element_type::STRING) return WrongType(where, "a list of vector names", n);
        names.emplace_back(std::string_view(n));
      }
      return VectorSelector(std::move(names));
    }
    default:
      return WrongType(where, "a boolean or a list of vector names", x);
  }
}

Status ParseSearchParams(element e, const std::string& path, SearchParams* p) {
  QVEC_FIELDS(f, e, path);
  element y;
  if (f.Take("exact", &y)) {
    QVEC_ASSIGN_OR_RETURN(p->exact, GetBool(y, f.PathOf("exact")));
  }
  if (f.Take("nprobe", &y)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(y, f.PathOf("nprobe")));
    if (n < 1 || n > UINT32_MAX) return OutOfRangeError(f.PathOf("nprobe") + " must be at least 1");
    p->nprobe = static_cast<uint32_t>(n);
  }
  if (f.Take("target_recall", &y)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(y, f.PathOf("target_recall")));
    p->target_recall = ToFloat(d);  // the engine checks the range
  }
  // Every point is always in qvec's index (flat or IVF), so a search limited
  // to indexed points is every search: the field has its effect.
  if (f.Take("indexed_only", &y)) {
    QVEC_RETURN_IF_ERROR(GetBool(y, f.PathOf("indexed_only")).status());
  }
  // HNSW and ACORN search knobs: qvec has no graph; its recall knobs are
  // nprobe and target_recall.
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "hnsw_ef", Tuning::kUint));
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "acorn", Tuning::kObject));
  element quant;
  if (f.Take("quantization", &quant)) {
    QVEC_FIELDS(q, quant, f.PathOf("quantization"));
    if (q.Take("ignore", &y)) {
      QVEC_ASSIGN_OR_RETURN(p->ignore_quantization, GetBool(y, q.PathOf("ignore")));
    }
    if (q.Take("rescore", &y)) {
      QVEC_ASSIGN_OR_RETURN(bool b, GetBool(y, q.PathOf("rescore")));
      p->rescore = b;
    }
    if (q.Take("oversampling", &y)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(y, q.PathOf("oversampling")));
      p->oversampling = ToFloat(d);  // the engine checks the range
    }
    QVEC_RETURN_IF_ERROR(q.Finish());
  }
  return f.Finish();
}

// Qdrant's SparseVector: {"indices": [u32, ...], "values": [number, ...]}
// (the engine checks distinct indices and finite values).
Status ParseSparseVector(element e, const std::string& path, SparseVector* out) {
  if (e.type() != element_type::OBJECT) {
    return WrongType(path, "a sparse vector {\"indices\": [...], \"values\": [...]}", e);
  }
  QVEC_FIELDS(f, e, path);
  element x;
  if (!f.Take("indices", &x)) return InvalidArgumentError(f.PathOf("indices") + " is required");
  if (x.type() != element_type::ARRAY) return WrongType(f.PathOf("indices"), "an array", x);
  out->indices.clear();
  for (element i : simdjson::dom::array(x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(i, f.PathOf("indices")));
    if (n > UINT32_MAX) return OutOfRangeError(f.PathOf("indices") + ": an index exceeds 2^32 - 1");
    out->indices.push_back(static_cast<uint32_t>(n));
  }
  if (!f.Take("values", &x)) return InvalidArgumentError(f.PathOf("values") + " is required");
  QVEC_RETURN_IF_ERROR(ParseVector(x, &out->values).Annotate(f.PathOf("values")));
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (out->indices.size() != out->values.size()) {
    return InvalidArgumentError(path + ": indices and values must have the same length (" +
                                std::to_string(out->indices.size()) + " and " +
                                std::to_string(out->values.size()) + ")");
  }
  return Status::Ok();
}

// True for an object that looks like a sparse vector.
bool IsSparseElement(element v) {
  if (v.type() != element_type::OBJECT) return false;
  element unused;
  simdjson::dom::object obj(v);
  return obj.at_key("indices").get(unused) == simdjson::SUCCESS ||
         obj.at_key("values").get(unused) == simdjson::SUCCESS;
}

// Refuses the vector shapes that are not a dense vector where one is
// needed, naming them: sparse ({indices, values}: a dense field cannot take
// one), multivectors (arrays of arrays) and documents for server-side
// inference.
Status CheckDenseVector(element v, const std::string& where) {
  if (v.type() == element_type::OBJECT) {
    if (IsSparseElement(v)) {
      return InvalidArgumentError(where +
                                  ": a sparse vector {indices, values} is given where a dense "
                                  "vector (an array of numbers) is expected");
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
// for named ones (the names are the user's: not fields of the API).
Status ParseVectorStruct(element v, const std::string& where, Point* pt) {
  if (v.type() == element_type::OBJECT) {
    simdjson::dom::object named(v);
    if (IsSparseElement(v)) {
      return InvalidArgumentError(where +
                                  ": a sparse vector belongs to a named sparse field: "
                                  "{\"<name>\": {\"indices\": [...], \"values\": [...]}}");
    }
    for (auto field : named) {
      const std::string fname(field.key);
      const std::string at = where + " '" + fname + "'";
      if (IsSparseElement(field.value)) {
        QVEC_RETURN_IF_ERROR(ParseSparseVector(field.value, at, &pt->sparse_vectors[fname]));
        continue;
      }
      QVEC_RETURN_IF_ERROR(CheckDenseVector(field.value, at));
      QVEC_RETURN_IF_ERROR(ParseVector(field.value, &pt->vectors[fname]).Annotate(at));
    }
    return Status::Ok();
  }
  QVEC_RETURN_IF_ERROR(CheckDenseVector(v, where));
  return ParseVector(v, &pt->vector);
}

// [{id, vector, payload?}, ...] of an upsert (`with_payload`) or of a
// vectors update ({id, vector} only).
StatusOr<std::vector<Point>> ParsePointList(element x, bool with_payload) {
  if (x.type() != element_type::ARRAY) return WrongType("points", "an array of points", x);
  simdjson::dom::array arr(x);
  std::vector<Point> points;
  points.reserve(arr.size());
  size_t i = 0;
  for (element p : arr) {
    QVEC_FIELDS(pf, p, Index("points", i++));
    Point pt;
    element y;
    if (!pf.Take("id", &y)) return InvalidArgumentError(pf.PathOf("id") + " is required");
    QVEC_ASSIGN_OR_RETURN(pt.id, ParsePointId(y));
    const std::string where = "point " + pt.id.ToString();
    if (!pf.Take("vector", &y)) return InvalidArgumentError(where + ": vector is required");
    QVEC_RETURN_IF_ERROR(ParseVectorStruct(y, "vector", &pt).Annotate(where));
    if (with_payload && pf.Take("payload", &y) && y.type() != element_type::NULL_VALUE) {
      if (y.type() != element_type::OBJECT) return WrongType(where + ": payload", "an object", y);
      pt.payload = simdjson::to_string(y);
    }
    QVEC_RETURN_IF_ERROR(pf.Finish());
    points.push_back(std::move(pt));
  }
  return points;
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

StatusOr<Filter> ParseFilter(element e, const std::string& path, size_t depth) {
  if (depth > 16) return InvalidArgumentError(path + ": filter nesting is deeper than 16");
  QVEC_FIELDS(f, e, path);
  Filter out;
  element x;
  if (f.Take("must", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.must, ParseConditions(x, f.PathOf("must"), depth));
  }
  if (f.Take("should", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.should, ParseConditions(x, f.PathOf("should"), depth));
  }
  if (f.Take("must_not", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.must_not, ParseConditions(x, f.PathOf("must_not"), depth));
  }
  if (f.Take("min_should", &x)) {
    // A clause of its own (it holds beside `should`, not merged into it):
    // at least min_count of its conditions.
    QVEC_FIELDS(m, x, f.PathOf("min_should"));
    element conds, min_count;
    if (!m.Take("conditions", &conds) || !m.Take("min_count", &min_count)) {
      return InvalidArgumentError(m.path() + " needs conditions and min_count");
    }
    QVEC_ASSIGN_OR_RETURN(auto list, ParseConditions(conds, m.PathOf("conditions"), depth));
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(min_count, m.PathOf("min_count")));
    QVEC_RETURN_IF_ERROR(m.Finish());
    if (n > 0) {  // at least 0 of them always holds
      Condition c;
      c.kind = Condition::Kind::kNested;
      auto sub = std::make_shared<Filter>();
      sub->should = std::move(list);
      sub->min_should = static_cast<size_t>(n);
      c.filter = std::move(sub);
      out.must.push_back(std::move(c));
    }
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
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

StatusOr<CollectionConfig> ParseCollectionConfig(element e) {
  QVEC_FIELDS(f, e, "");
  CollectionConfig c;
  element vectors, x;
  if (f.Take("sparse_vectors", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("sparse_vectors", "an object", x);
    for (auto entry : simdjson::dom::object(x)) {
      const std::string name(entry.key);
      QVEC_ASSIGN_OR_RETURN(c.sparse_vectors[name],
                            ParseSparseVectorParams(entry.value, "sparse_vectors." + name,
                                                    SparseVectorConfig()));
    }
  }
  bool dense = f.Take("vectors", &vectors);
  if (dense && vectors.type() != element_type::OBJECT) {
    return WrongType("vectors", "an object", vectors);
  }
  if (dense && simdjson::dom::object(vectors).size() == 0 && !c.sparse_vectors.empty()) {
    dense = false;  // sparse fields only
  }
  if (!dense && c.sparse_vectors.empty()) {
    return InvalidArgumentError(
        "collection config needs vectors: {size, distance} or {\"name\": {size, distance}, "
        "...}, or sparse_vectors");
  }
  // Collection-wide defaults: quantization_config and qvec options apply to
  // every field that does not set its own.
  VectorFieldConfig defaults;
  if (f.Take("quantization_config", &x)) {
    QVEC_ASSIGN_OR_RETURN(defaults.quantization,
                          ParseQuantization(x, "quantization_config", defaults.quantization));
  }
  if (f.Take("qvec", &x)) {
    QVEC_RETURN_IF_ERROR(ParseQvecOptions(x, "qvec", &defaults.quantization, &defaults.index));
  }
  if (f.Take("sharding_method", &x)) {
    if (x.type() != element_type::STRING || std::string_view(x) != "auto") {
      return InvalidArgumentError(
          "sharding_method: only \"auto\" is supported (custom sharding is not)");
    }
  }
  QVEC_RETURN_IF_ERROR(f.Refuse("strict_mode_config", "strict mode is not supported"));
  QVEC_RETURN_IF_ERROR(f.Refuse("metadata", "collection metadata is not supported yet"));
  QVEC_RETURN_IF_ERROR(f.Refuse("init_from", "creating a collection from another is not supported"));
  for (std::string_view section : {"hnsw_config", "wal_config", "optimizers_config"}) {
    QVEC_RETURN_IF_ERROR(AcceptTuning(f, section, Tuning::kObject));
  }
  for (std::string_view count : {"shard_number", "replication_factor", "write_consistency_factor"}) {
    QVEC_RETURN_IF_ERROR(AcceptTuning(f, count, Tuning::kUint));
  }
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "on_disk_payload", Tuning::kBool));
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (!dense) {
    Status valid = c.Validate();
    if (!valid.ok()) return OutOfRangeError(valid.message());
    return c;
  }
  simdjson::dom::object vobj(vectors);
  element unused;
  if (vobj.at_key("size").get(unused) == simdjson::SUCCESS ||
      vobj.at_key("distance").get(unused) == simdjson::SUCCESS) {
    QVEC_ASSIGN_OR_RETURN(VectorFieldConfig v, ParseVectorParams(vectors, "vectors", defaults));
    c.dimension = v.dimension;
    c.distance = v.distance;
    c.quantization = v.quantization;
    c.index = v.index;
  } else {
    if (vobj.size() == 0) {
      return InvalidArgumentError("vectors: name at least one vector field");
    }
    if (vobj.size() > kMaxVectorFields) {
      return OutOfRangeError("vectors: at most " + std::to_string(kMaxVectorFields) +
                             " vector fields");
    }
    for (auto field : vobj) {
      const std::string fname(field.key);
      if (fname.empty()) return InvalidArgumentError("vectors: a vector name must not be empty");
      if (fname.size() > kMaxVectorFieldName) {
        return InvalidArgumentError("vectors: a vector name is longer than " +
                                    std::to_string(kMaxVectorFieldName) + " bytes");
      }
      QVEC_ASSIGN_OR_RETURN(VectorFieldConfig v,
                            ParseVectorParams(field.value, "vectors." + fname, defaults));
      c.vectors[fname] = v;
    }
  }
  Status valid = c.Validate();
  if (!valid.ok()) return OutOfRangeError(valid.message());
  return c;
}

StatusOr<CollectionConfig> ParseCollectionUpdate(element e, const CollectionConfig& config) {
  QVEC_FIELDS(f, e, "");
  CollectionConfig next = config;
  const auto fields = config.Fields();
  // The quantization and index options of field `fname` in `next`.
  auto field_of = [&](const std::string& fname) -> std::pair<QuantizationOptions*, IndexOptions*> {
    if (next.single_vector()) return {&next.quantization, &next.index};
    VectorFieldConfig& v = next.vectors.at(fname);
    return {&v.quantization, &v.index};
  };
  auto quantization = [&](element x, const std::string& where,
                          QuantizationOptions* q) -> Status {
    if (x.type() == element_type::STRING) {
      return InvalidArgumentError(where +
                                  ": \"Disabled\" is not supported (qvec always scores int8 "
                                  "codes, rescored with the float originals)");
    }
    QVEC_ASSIGN_OR_RETURN(*q, ParseQuantization(x, where, *q));
    return Status::Ok();
  };
  element x;
  // Collection-wide settings first, then each field's own.
  if (f.Take("quantization_config", &x)) {
    for (const auto& [fname, unused] : fields) {
      QVEC_RETURN_IF_ERROR(quantization(x, "quantization_config", field_of(fname).first));
    }
  }
  if (f.Take("qvec", &x)) {
    for (const auto& [fname, unused] : fields) {
      auto [q, idx] = field_of(fname);
      QVEC_RETURN_IF_ERROR(ParseQvecOptions(x, "qvec", q, idx));
    }
  }
  if (f.Take("vectors", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("vectors", "an object", x);
    for (auto field : simdjson::dom::object(x)) {
      const std::string fname(field.key);
      const std::string where = "vectors." + fname;
      if (fields.count(fname) == 0) {
        return InvalidArgumentError(
            where + ": the collection has no such vector field" +
            (config.single_vector() ? " (its one unnamed field is \"\")" : ""));
      }
      QVEC_FIELDS(v, field.value, where);
      element y;
      auto [q, idx] = field_of(fname);
      if (v.Take("quantization_config", &y)) {
        QVEC_RETURN_IF_ERROR(quantization(y, v.PathOf("quantization_config"), q));
      }
      if (v.Take("qvec", &y)) {
        QVEC_RETURN_IF_ERROR(ParseQvecOptions(y, v.PathOf("qvec"), q, idx));
      }
      QVEC_RETURN_IF_ERROR(AcceptTuning(v, "hnsw_config", Tuning::kObject));
      QVEC_RETURN_IF_ERROR(AcceptTuning(v, "on_disk", Tuning::kBool));
      QVEC_RETURN_IF_ERROR(v.Finish());
    }
  }
  if (f.Take("params", &x)) {
    QVEC_FIELDS(p, x, "params");
    for (std::string_view count : {"replication_factor", "write_consistency_factor",
                                   "read_fan_out_factor", "read_fan_out_delay_ms"}) {
      QVEC_RETURN_IF_ERROR(AcceptTuning(p, count, Tuning::kUint));
    }
    QVEC_RETURN_IF_ERROR(AcceptTuning(p, "on_disk_payload", Tuning::kBool));
    QVEC_RETURN_IF_ERROR(p.Finish());
  }
  if (f.Take("sparse_vectors", &x)) {
    if (x.type() != element_type::OBJECT) return WrongType("sparse_vectors", "an object", x);
    for (auto entry : simdjson::dom::object(x)) {
      const std::string name(entry.key);
      auto it = next.sparse_vectors.find(name);
      if (it == next.sparse_vectors.end()) {
        return InvalidArgumentError("sparse_vectors." + name +
                                    ": the collection has no such sparse vector field (fields "
                                    "cannot be added)");
      }
      QVEC_ASSIGN_OR_RETURN(it->second,
                            ParseSparseVectorParams(entry.value, "sparse_vectors." + name, it->second));
    }
  }
  QVEC_RETURN_IF_ERROR(f.Refuse("strict_mode_config", "strict mode is not supported"));
  QVEC_RETURN_IF_ERROR(f.Refuse("metadata", "collection metadata is not supported yet"));
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "hnsw_config", Tuning::kObject));
  QVEC_RETURN_IF_ERROR(AcceptTuning(f, "optimizers_config", Tuning::kObject));
  QVEC_RETURN_IF_ERROR(f.Finish());
  Status valid = next.Validate();
  if (!valid.ok()) return OutOfRangeError(valid.message());
  return next;
}

StatusOr<ParsedSearch> ParseSearchRequest(element e, const std::string& path) {
  QVEC_FIELDS(f, e, path);
  ParsedSearch out;
  SearchRequest& r = out.request;
  element x;
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  {
    if (!f.Take("vector", &x)) return InvalidArgumentError(f.PathOf("vector") + " is required");
    const std::string where = f.PathOf("vector");
    bool sparse = false;
    if (x.type() == element_type::OBJECT) {  // {"name":..., "vector": [...] or {indices, values}}
      QVEC_FIELDS(nv, x, where);
      if (IsSparseElement(x)) {
        return InvalidArgumentError(where + ": a sparse query names its field: {\"name\": "
                                            "\"...\", \"vector\": {\"indices\": [...], "
                                            "\"values\": [...]}}");
      }
      element name, inner;
      if (!nv.Take("name", &name) || name.type() != element_type::STRING) {
        return InvalidArgumentError(where +
                                    ": a named vector is {\"name\": \"...\", \"vector\": [...]}");
      }
      r.vector_name = std::string(std::string_view(name));
      if (!nv.Take("vector", &inner)) return InvalidArgumentError(nv.PathOf("vector") + " is required");
      if (IsSparseElement(inner)) {
        r.sparse_vector.emplace();
        QVEC_RETURN_IF_ERROR(ParseSparseVector(inner, nv.PathOf("vector"), &*r.sparse_vector));
        sparse = true;
      }
      QVEC_RETURN_IF_ERROR(nv.Finish());
      x = inner;
    }
    if (!sparse) {
      QVEC_RETURN_IF_ERROR(CheckDenseVector(x, where));
      QVEC_RETURN_IF_ERROR(ParseVector(x, &r.vector).Annotate(where));
    }
  }
  // `top` is the old name of `limit` in Qdrant's search API.
  for (std::string_view name : {"limit", "top"}) {
    if (!f.Take(name, &x)) continue;
    // Ranges are checked by the engine (qvec/options.h).
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, f.PathOf(name)));
    r.limit = static_cast<size_t>(n);
  }
  if (f.Take("offset", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, f.PathOf("offset")));
    r.offset = static_cast<size_t>(n);
  }
  if (f.Take("score_threshold", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, f.PathOf("score_threshold")));
    r.score_threshold = ToFloat(d);
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, f.PathOf("filter")));
    r.filter = std::move(flt);
  }
  QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, false, &out.selector));
  r.with_payload = out.selector.enabled;
  QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelectorField(f, false));
  if (f.Take("params", &x)) {
    QVEC_RETURN_IF_ERROR(ParseSearchParams(x, f.PathOf("params"), &r.params));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<std::vector<ParsedSearch>> ParseSearchBatch(element e) {
  QVEC_ASSIGN_OR_RETURN(simdjson::dom::array searches, OnlyArray(e, "searches", "searches"));
  std::vector<ParsedSearch> out;
  size_t i = 0;
  for (element s : searches) {
    QVEC_ASSIGN_OR_RETURN(ParsedSearch one, ParseSearchRequest(s, Index("searches", i++)));
    out.push_back(std::move(one));
  }
  return out;
}

StatusOr<std::vector<Point>> ParsePoints(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  QVEC_RETURN_IF_ERROR(f.Refuse(
      "update_filter", "conditional updates (update_filter) are not supported yet"));
  element x;
  if (f.Take("update_mode", &x)) {
    if (x.type() != element_type::STRING || std::string_view(x) != "upsert") {
      return InvalidArgumentError(
          "update_mode: only \"upsert\" is supported (insert_only and update_only are not yet)");
    }
  }
  if (f.Has("points") && f.Has("batch")) {
    return InvalidArgumentError("body takes \"points\" or \"batch\", not both");
  }
  std::vector<Point> points;
  auto payload_of = [](element p, const std::string& where, std::string* out) -> Status {
    if (p.type() == element_type::NULL_VALUE) return Status::Ok();
    if (p.type() != element_type::OBJECT) return WrongType(where, "an object", p);
    *out = simdjson::to_string(p);
    return Status::Ok();
  };
  if (f.Take("points", &x)) {
    QVEC_RETURN_IF_ERROR(f.Finish());
    return ParsePointList(x, /*with_payload=*/true);
  }
  if (f.Take("batch", &x)) {
    QVEC_RETURN_IF_ERROR(f.Finish());
    QVEC_FIELDS(b, x, "batch");
    element ids, vectors, payloads;
    if (!b.Take("ids", &ids) || ids.type() != element_type::ARRAY) {
      return InvalidArgumentError("batch.ids must be an array");
    }
    if (!b.Take("vectors", &vectors) ||
        (vectors.type() != element_type::ARRAY && vectors.type() != element_type::OBJECT)) {
      return InvalidArgumentError(
          "batch.vectors must be an array of vectors or {\"name\": [vectors...]}");
    }
    const bool has_payloads = b.Take("payloads", &payloads);
    QVEC_RETURN_IF_ERROR(b.Finish());
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
    if (has_payloads) {
      if (payloads.type() != element_type::ARRAY) {
        return WrongType("batch.payloads", "an array", payloads);
      }
      simdjson::dom::array parr(payloads);
      if (parr.size() != id_arr.size()) {
        return InvalidArgumentError("batch.payloads and batch.ids differ in length");
      }
      i = 0;
      for (element p : parr) {
        QVEC_RETURN_IF_ERROR(payload_of(p, Index("batch.payloads", i), &points[i].payload));
        ++i;
      }
    }
    return points;
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return InvalidArgumentError("body needs \"points\" or \"batch\"");
}

StatusOr<RetrieveBody> ParseRetrieve(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  RetrieveBody out;
  element x;
  if (!f.Take("ids", &x)) return InvalidArgumentError("ids must be an array of point ids");
  QVEC_ASSIGN_OR_RETURN(out.ids, ParseIdList(x, "ids"));
  QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, true, &out.with_payload));
  QVEC_ASSIGN_OR_RETURN(out.with_vector, ParseVectorSelectorField(f, false));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<PointsSelection> ParseDeletePoints(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  if (f.Has("points") && f.Has("filter")) {
    return InvalidArgumentError("body takes \"points\" or \"filter\", not both");
  }
  PointsSelection out;
  element x;
  if (f.Take("points", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.ids, ParseIdList(x, "points"));
  } else if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out.filter = std::move(flt);
  } else {
    QVEC_RETURN_IF_ERROR(f.Finish());
    return InvalidArgumentError("body needs \"points\" or \"filter\"");
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

namespace {

// {points: [...]} or {filter: {...}} of the payload endpoints (exactly one).
Status ParseSelection(RequestFields& f, PayloadBody* out) {
  if (f.Has("points") && f.Has("filter")) {
    return InvalidArgumentError("body takes \"points\" or \"filter\", not both");
  }
  element x;
  if (f.Take("points", &x)) {
    QVEC_ASSIGN_OR_RETURN(out->ids, ParseIdList(x, "points"));
    return Status::Ok();
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out->filter = std::move(flt);
    return Status::Ok();
  }
  return InvalidArgumentError("body needs \"points\" (point ids) or \"filter\"");
}

}  // namespace

namespace {

// What the payload endpoints share: shard_key refused, points | filter, and
// `own` reading the operation's own fields.
StatusOr<PayloadBody> ParsePayloadBody(element e, PayloadUpdate::Op op,
                                       const std::function<Status(RequestFields&, PayloadBody*)>& own) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  PayloadBody out;
  out.update.op = op;
  QVEC_RETURN_IF_ERROR(own(f, &out));
  QVEC_RETURN_IF_ERROR(ParseSelection(f, &out));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

}  // namespace

StatusOr<PayloadBody> ParseSetPayload(element e, bool overwrite) {
  return ParsePayloadBody(
      e, overwrite ? PayloadUpdate::Op::kOverwrite : PayloadUpdate::Op::kMerge,
      [](RequestFields& f, PayloadBody* out) -> Status {
        element x;
        if (!f.Take("payload", &x) || x.type() != element_type::OBJECT) {
          return InvalidArgumentError("payload must be an object");
        }
        out->update.payload = simdjson::to_string(x);
        // POST merges under `key`; PUT replaces the object at `key`.
        if (f.Take("key", &x)) {
          QVEC_ASSIGN_OR_RETURN(out->update.key, GetString(x, "key"));
        }
        return Status::Ok();
      });
}

StatusOr<PayloadBody> ParseDeletePayload(element e) {
  return ParsePayloadBody(e, PayloadUpdate::Op::kDeleteKeys,
                          [](RequestFields& f, PayloadBody* out) -> Status {
                            element x;
                            if (!f.Take("keys", &x) || x.type() != element_type::ARRAY) {
                              return InvalidArgumentError("keys must be an array of payload keys");
                            }
                            for (element k : simdjson::dom::array(x)) {
                              QVEC_ASSIGN_OR_RETURN(std::string key, GetString(k, "keys"));
                              out->update.keys.push_back(std::move(key));
                            }
                            return Status::Ok();
                          });
}

StatusOr<PayloadBody> ParseClearPayload(element e) {
  return ParsePayloadBody(e, PayloadUpdate::Op::kClear,
                          [](RequestFields&, PayloadBody*) { return Status::Ok(); });
}

StatusOr<std::vector<Point>> ParseUpdateVectors(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  QVEC_RETURN_IF_ERROR(f.Refuse(
      "update_filter", "conditional updates (update_filter) are not supported yet"));
  element x;
  if (!f.Take("points", &x)) return InvalidArgumentError("points must be an array of {id, vector}");
  QVEC_RETURN_IF_ERROR(f.Finish());
  return ParsePointList(x, /*with_payload=*/false);
}

StatusOr<DeleteVectorsBody> ParseDeleteVectors(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  DeleteVectorsBody out;
  element x;
  const bool has_points = f.Take("points", &x);
  if (has_points) {
    QVEC_ASSIGN_OR_RETURN(out.ids, ParseIdList(x, "points"));
  }
  if (f.Take("filter", &x)) {
    if (has_points) return InvalidArgumentError("give points or filter, not both");
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out.filter = std::move(flt);
  } else if (!has_points) {
    return InvalidArgumentError("points (an array of point ids) or filter is required");
  }
  if (!f.Take("vector", &x) || x.type() != element_type::ARRAY) {
    return InvalidArgumentError("vector must be an array of vector names");
  }
  for (element n : simdjson::dom::array(x)) {
    QVEC_ASSIGN_OR_RETURN(std::string name, GetString(n, "vector"));
    out.names.push_back(std::move(name));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<std::optional<Filter>> ParseCount(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  std::optional<Filter> out;
  element x;
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out = std::move(flt);
  }
  // qvec's counts are always exact, which is what either value asks for
  // (false only allows an estimate).
  if (f.Take("exact", &x)) QVEC_RETURN_IF_ERROR(GetBool(x, "exact").status());
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

// Qdrant's OrderBy: "key" or {key, direction, start_from}.
StatusOr<OrderBy> ParseOrderBy(element x, const std::string& path) {
  OrderBy o;
  if (x.type() == element_type::STRING) {
    o.key = std::string(std::string_view(x));
  } else {
    QVEC_FIELDS(ob, x, path);
    element y;
    if (!ob.Take("key", &y)) return InvalidArgumentError(path + ".key is required");
    QVEC_ASSIGN_OR_RETURN(o.key, GetString(y, path + ".key"));
    if (ob.Take("direction", &y)) {
      std::string_view d = y.type() == element_type::STRING ? std::string_view(y) : "";
      if (d != "asc" && d != "desc") {
        return InvalidArgumentError(path + ".direction must be \"asc\" or \"desc\"");
      }
      o.descending = d == "desc";
    }
    if (ob.Take("start_from", &y)) {
      if (y.type() == element_type::STRING) {
        // A date-time (RFC 3339, Qdrant's formats): microseconds since the
        // epoch, the values a datetime index orders by.
        auto t = datetime::ParseMicros(std::string_view(y));
        if (!t) {
          return InvalidArgumentError(path + ".start_from: '" + std::string(std::string_view(y)) +
                                      "' is not an RFC 3339 date-time");
        }
        o.start_from = static_cast<double>(*t);
        o.start_from_datetime = true;
      } else {
        QVEC_ASSIGN_OR_RETURN(double d, GetNumber(y, path + ".start_from"));
        o.start_from = d;
      }
    }
    QVEC_RETURN_IF_ERROR(ob.Finish());
  }
  if (o.key.empty()) return InvalidArgumentError(path + ".key must not be empty");
  return o;
}

StatusOr<ScrollBody> ParseScroll(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  ScrollBody out;
  ScrollRequest& r = out.request;
  element x;
  if (f.Take("order_by", &x)) {
    QVEC_ASSIGN_OR_RETURN(r.order_by, ParseOrderBy(x, "order_by"));
  }
  if (f.Take("offset", &x)) {
    QVEC_ASSIGN_OR_RETURN(PointId id, ParsePointId(x));
    r.offset = id;
  }
  if (f.Take("limit", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "limit"));
    if (n < 1) return OutOfRangeError("limit must be at least 1");
    r.limit = static_cast<size_t>(n);  // the engine checks the upper bound
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    r.filter = std::move(flt);
  }
  QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, true, &out.with_payload));
  r.with_payload = out.with_payload.enabled;
  QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelectorField(f, false));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

Status CheckSnapshotPriority(std::string_view priority, std::string_view where) {
  if (priority == "replica" || priority == "snapshot" || priority == "no_sync") {
    return Status::Ok();
  }
  return InvalidArgumentError(std::string(where) +
                              ": expected replica, snapshot or no_sync, got '" +
                              std::string(priority) + "'");
}

StatusOr<SnapshotRecoverBody> ParseSnapshotRecover(element e) {
  QVEC_FIELDS(f, e, "");
  SnapshotRecoverBody out;
  element x;
  if (!f.Take("location", &x)) return InvalidArgumentError("location is required");
  QVEC_ASSIGN_OR_RETURN(out.location, GetString(x, "location"));
  if (f.Take("checksum", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.checksum, GetString(x, "checksum"));
    if (out.checksum.size() != 64 ||
        out.checksum.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return InvalidArgumentError("checksum: expected a SHA-256 in hex (64 digits)");
    }
  }
  if (f.Take("api_key", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.api_key, GetString(x, "api_key"));
  }
  if (f.Take("priority", &x)) {
    QVEC_ASSIGN_OR_RETURN(std::string priority, GetString(x, "priority"));
    QVEC_RETURN_IF_ERROR(CheckSnapshotPriority(priority, "priority"));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<CreateFieldIndexBody> ParseCreateFieldIndex(element e) {
  QVEC_FIELDS(f, e, "");
  CreateFieldIndexBody out;
  element x;
  if (!f.Take("field_name", &x)) return InvalidArgumentError("field_name is required");
  QVEC_ASSIGN_OR_RETURN(out.key, GetString(x, "field_name"));
  const bool has_schema = f.Take("field_schema", &x);
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (!has_schema) {
    // Qdrant infers the type from stored values; qvec asks for it.
    return InvalidArgumentError("field_schema is required (keyword, integer, float, bool, uuid, datetime, text or geo)");
  }
  std::string type_name;
  if (x.type() == element_type::STRING) {
    type_name = std::string(std::string_view(x));
  } else {
    QVEC_FIELDS(params, x, "field_schema");
    element t;
    if (!params.Take("type", &t)) return InvalidArgumentError("field_schema.type is required");
    QVEC_ASSIGN_OR_RETURN(type_name, GetString(t, "field_schema.type"));
    // Storage and HNSW knobs of Qdrant's payload indexes: no effect on
    // which points a filter selects.
    for (std::string_view knob :
         {"is_tenant", "on_disk", "enable_hnsw", "is_principal", "lookup", "range"}) {
      QVEC_RETURN_IF_ERROR(AcceptTuning(params, knob, Tuning::kBool));
    }
    if (type_name == "text") {
      // qvec's text index is Qdrant's default one: the word tokenizer,
      // lowercased, every token kept. Other settings would change which
      // points match, so they are refused.
      element y;
      if (params.Take("tokenizer", &y) &&
          (y.type() != element_type::STRING || std::string_view(y) != "word")) {
        return InvalidArgumentError(
            "field_schema.tokenizer: only \"word\" is supported (whitespace, prefix and "
            "multilingual are not yet)");
      }
      if (params.Take("lowercase", &y)) {
        QVEC_ASSIGN_OR_RETURN(bool lower, GetBool(y, "field_schema.lowercase"));
        if (!lower) return InvalidArgumentError("field_schema.lowercase: false is not supported yet");
      }
      // Phrases are matched with or without this flag.
      QVEC_RETURN_IF_ERROR(AcceptTuning(params, "phrase_matching", Tuning::kBool));
      for (std::string_view other :
           {"min_token_len", "max_token_len", "stopwords", "stemmer", "ascii_folding"}) {
        QVEC_RETURN_IF_ERROR(params.Refuse(other, "not supported yet in text indexes"));
      }
    }
    QVEC_RETURN_IF_ERROR(params.Finish());  // names geo-only and unknown params
  }
  auto type = ParsePayloadSchemaType(type_name);
  if (!type.ok()) return InvalidArgumentError("field_schema: " + type.status().message());
  out.type = *type;
  return out;
}

StatusOr<std::vector<BatchOperation>> ParseUpdateBatch(element e) {
  QVEC_ASSIGN_OR_RETURN(simdjson::dom::array ops, OnlyArray(e, "operations", "update operations"));
  std::vector<BatchOperation> out;
  size_t i = 0;
  for (element op : ops) {
    const std::string path = Index("operations", i++);
    QVEC_FIELDS(of, op, path);
    BatchOperation b;
    element body;
    int forms = 0;
    using K = BatchOperation::Kind;
    for (std::string_view name : {"upsert", "delete", "set_payload", "overwrite_payload",
                                  "delete_payload", "clear_payload", "update_vectors",
                                  "delete_vectors"}) {
      if (!of.Take(name, &body)) continue;
      ++forms;
      b.name = std::string(name);
      const std::string where = of.PathOf(name);
      // The parsed body into `out`, or the error.
      auto into = [](auto parsed, auto* out) -> Status {
        if (!parsed.ok()) return parsed.status();
        *out = std::move(*parsed);
        return Status::Ok();
      };
      Status st;
      if (name == "upsert") {
        b.kind = K::kUpsert;
        st = into(ParsePoints(body), &b.points);
      } else if (name == "delete") {
        b.kind = K::kDelete;
        st = into(ParseDeletePoints(body), &b.selection);
      } else if (name == "update_vectors") {
        b.kind = K::kUpdateVectors;
        st = into(ParseUpdateVectors(body), &b.points);
      } else if (name == "delete_vectors") {
        b.kind = K::kDeleteVectors;
        st = into(ParseDeleteVectors(body), &b.vectors);
      } else {
        b.kind = K::kPayload;
        st = into(name == "set_payload"         ? ParseSetPayload(body, false)
                  : name == "overwrite_payload" ? ParseSetPayload(body, true)
                  : name == "delete_payload"    ? ParseDeletePayload(body)
                                                : ParseClearPayload(body),
                  &b.payload);
      }
      QVEC_RETURN_IF_ERROR(st.Annotate(where));
    }
    QVEC_RETURN_IF_ERROR(of.Finish());
    if (forms != 1) {
      return InvalidArgumentError(path +
                                  ": expected exactly one of upsert, delete, set_payload, "
                                  "overwrite_payload, delete_payload, clear_payload, "
                                  "update_vectors, delete_vectors");
    }
    out.push_back(std::move(b));
  }
  return out;
}

StatusOr<std::vector<AliasOperation>> ParseAliasActions(element e) {
  QVEC_ASSIGN_OR_RETURN(simdjson::dom::array actions,
                        OnlyArray(e, "actions", "alias operations"));
  std::vector<AliasOperation> out;
  size_t i = 0;
  for (element a : actions) {
    const std::string path = Index("actions", i++);
    QVEC_FIELDS(op, a, path);
    element x;
    AliasOperation o;
    auto name = [&](RequestFields& g, std::string_view key, std::string* into) -> Status {
      element v;
      if (!g.Take(key, &v)) return InvalidArgumentError(g.PathOf(key) + " is required");
      QVEC_ASSIGN_OR_RETURN(*into, GetString(v, g.PathOf(key)));
      return Status::Ok();
    };
    int forms = 0;
    if (op.Take("create_alias", &x)) {
      ++forms;
      QVEC_FIELDS(g, x, op.PathOf("create_alias"));
      o.kind = AliasOperation::Kind::kCreate;
      QVEC_RETURN_IF_ERROR(name(g, "collection_name", &o.collection));
      QVEC_RETURN_IF_ERROR(name(g, "alias_name", &o.alias));
      QVEC_RETURN_IF_ERROR(g.Finish());
    }
    if (op.Take("delete_alias", &x)) {
      ++forms;
      QVEC_FIELDS(g, x, op.PathOf("delete_alias"));
      o.kind = AliasOperation::Kind::kDelete;
      QVEC_RETURN_IF_ERROR(name(g, "alias_name", &o.alias));
      QVEC_RETURN_IF_ERROR(g.Finish());
    }
    if (op.Take("rename_alias", &x)) {
      ++forms;
      QVEC_FIELDS(g, x, op.PathOf("rename_alias"));
      o.kind = AliasOperation::Kind::kRename;
      QVEC_RETURN_IF_ERROR(name(g, "old_alias_name", &o.alias));
      QVEC_RETURN_IF_ERROR(name(g, "new_alias_name", &o.new_alias));
      QVEC_RETURN_IF_ERROR(g.Finish());
    }
    QVEC_RETURN_IF_ERROR(op.Finish());
    if (forms != 1) {
      return InvalidArgumentError(path +
                                  ": expected exactly one of create_alias, delete_alias, "
                                  "rename_alias");
    }
    out.push_back(std::move(o));
  }
  return out;
}


// ---- the Query API ----

namespace {

bool IsIdElement(element e) {
  return e.type() == element_type::INT64 || e.type() == element_type::UINT64 ||
         e.type() == element_type::STRING;
}

// A recommend strategy name.
StatusOr<QuerySpec::Strategy> ParseStrategy(element e, const std::string& path) {
  std::string_view st = e.type() == element_type::STRING ? std::string_view(e) : "";
  if (st == "average_vector") return QuerySpec::Strategy::kAverageVector;
  if (st == "best_score") return QuerySpec::Strategy::kBestScore;
  if (st == "sum_scores") return QuerySpec::Strategy::kSumScores;
  return InvalidArgumentError(path + " must be average_vector, best_score or sum_scores");
}

// Qdrant's LookupLocation: {collection, vector}.
StatusOr<std::optional<LookupFrom>> ParseLookupFrom(element x, const std::string& path) {
  QVEC_FIELDS(l, x, path);
  element y;
  LookupFrom lf;
  if (!l.Take("collection", &y)) return InvalidArgumentError(l.PathOf("collection") + " is required");
  QVEC_ASSIGN_OR_RETURN(lf.collection, GetString(y, l.PathOf("collection")));
  if (l.Take("vector", &y)) {
    QVEC_ASSIGN_OR_RETURN(lf.vector, GetString(y, l.PathOf("vector")));
  }
  QVEC_RETURN_IF_ERROR(RefuseShardKey(l));
  QVEC_RETURN_IF_ERROR(l.Finish());
  return std::optional<LookupFrom>(std::move(lf));
}

// Qdrant's VectorInput: a dense vector or a point id (whose vector is used).
Status ParseVectorInput(element e, const std::string& path, VectorInput* out) {
  if (IsIdElement(e)) {
    auto id = ParsePointId(e);
    if (!id.ok()) return InvalidArgumentError(path + ": " + std::string(id.status().message()));
    out->point = *id;
    return Status::Ok();
  }
  if (IsSparseElement(e)) {
    out->sparse.emplace();
    return ParseSparseVector(e, path, &*out->sparse);
  }
  if (e.type() == element_type::OBJECT) {
    QVEC_FIELDS(f, e, path);
    for (std::string_view doc : {"text", "image", "object", "model"}) {
      QVEC_RETURN_IF_ERROR(
          f.Refuse(doc, "documents and images for server-side inference are not supported"));
    }
    QVEC_RETURN_IF_ERROR(f.Finish());
    return InvalidArgumentError(path + ": expected a vector or a point id");
  }
  if (e.type() == element_type::ARRAY) {
    simdjson::dom::array arr(e);
    if (arr.size() > 0 && (*arr.begin()).type() == element_type::ARRAY) {
      return InvalidArgumentError(path + ": multivectors are not supported");
    }
  }
  QVEC_RETURN_IF_ERROR(CheckDenseVector(e, path));
  return ParseVector(e, &out->vector).Annotate(path);
}

Status ParseExamples(element e, const std::string& path, std::vector<VectorInput>* out) {
  if (e.type() != element_type::ARRAY) return WrongType(path, "an array of vectors or point ids", e);
  size_t i = 0;
  for (element x : simdjson::dom::array(e)) {
    VectorInput in;
    QVEC_RETURN_IF_ERROR(ParseVectorInput(x, Index(path, i++), &in));
    out->push_back(std::move(in));
  }
  return Status::Ok();
}

// ContextInput: one {positive, negative} pair or an array of them.
Status ParseContext(element e, const std::string& path,
                    std::vector<std::pair<VectorInput, VectorInput>>* out) {
  auto pair = [&](element p, const std::string& where) -> Status {
    QVEC_FIELDS(f, p, where);
    element pos, neg;
    if (!f.Take("positive", &pos) || !f.Take("negative", &neg)) {
      return InvalidArgumentError(where + ": a context pair is {\"positive\": ..., \"negative\": ...}");
    }
    std::pair<VectorInput, VectorInput> pr;
    QVEC_RETURN_IF_ERROR(ParseVectorInput(pos, f.PathOf("positive"), &pr.first));
    QVEC_RETURN_IF_ERROR(ParseVectorInput(neg, f.PathOf("negative"), &pr.second));
    QVEC_RETURN_IF_ERROR(f.Finish());
    out->push_back(std::move(pr));
    return Status::Ok();
  };
  if (e.type() == element_type::OBJECT) return pair(e, path);
  if (e.type() != element_type::ARRAY) return WrongType(path, "context pairs", e);
  size_t i = 0;
  for (element p : simdjson::dom::array(e)) QVEC_RETURN_IF_ERROR(pair(p, Index(path, i++)));
  return Status::Ok();
}

Status ParseMmr(element m, const std::string& path, Mmr* out) {
  QVEC_FIELDS(mf, m, path);
  element x;
  if (mf.Take("diversity", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, mf.PathOf("diversity")));
    out->diversity = ToFloat(d);  // the engine checks the range
  }
  if (mf.Take("candidates_limit", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, mf.PathOf("candidates_limit")));
    out->candidates_limit = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 2));
  }
  return mf.Finish();
}

// Qdrant's Expression of a formula query: a number, a variable name, a
// condition, or one operation object.
StatusOr<Expression> ParseExpression(element e, const std::string& path, size_t depth) {
  using K = Expression::Kind;
  if (depth > 64) return InvalidArgumentError(path + ": nested more than 64 levels deep");
  Expression out;
  switch (e.type()) {
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: {
      QVEC_ASSIGN_OR_RETURN(out.constant, GetNumber(e, path));
      out.kind = K::kConstant;
      return out;
    }
    case element_type::STRING:
      out.kind = K::kVariable;
      out.name = std::string(std::string_view(e));
      if (out.name.empty()) return InvalidArgumentError(path + ": a variable name is not empty");
      return out;
    case element_type::OBJECT:
      break;
    default:
      return WrongType(path, "a number, a variable name, a condition or an expression object", e);
  }
  QVEC_FIELDS(f, e, path);
  element x;
  auto sub = [&](std::string_view key) -> Status {
    QVEC_ASSIGN_OR_RETURN(Expression a, ParseExpression(x, f.PathOf(key), depth + 1));
    out.args.push_back(std::move(a));
    return Status::Ok();
  };
  struct Unary {
    const char* key;
    K kind;
  };
  for (const Unary& u : {Unary{"neg", K::kNeg}, Unary{"abs", K::kAbs}, Unary{"sqrt", K::kSqrt},
                         Unary{"exp", K::kExp}, Unary{"log10", K::kLog10}, Unary{"ln", K::kLn}}) {
    if (f.Take(u.key, &x)) {
      out.kind = u.kind;
      QVEC_RETURN_IF_ERROR(sub(u.key));
      QVEC_RETURN_IF_ERROR(f.Finish());
      return out;
    }
  }
  for (const Unary& u : {Unary{"mult", K::kMult}, Unary{"sum", K::kSum}}) {
    if (!f.Take(u.key, &x)) continue;
    if (x.type() != element_type::ARRAY) return WrongType(f.PathOf(u.key), "an array", x);
    out.kind = u.kind;
    size_t i = 0;
    for (element a : simdjson::dom::array(x)) {
      QVEC_ASSIGN_OR_RETURN(Expression arg, ParseExpression(a, Index(f.PathOf(u.key), i++), depth + 1));
      out.args.push_back(std::move(arg));
    }
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  if (f.Take("div", &x)) {
    out.kind = K::kDiv;
    QVEC_FIELDS(d, x, f.PathOf("div"));
    element y;
    for (const char* key : {"left", "right"}) {
      if (!d.Take(key, &y)) return InvalidArgumentError(d.PathOf(key) + " is required");
      QVEC_ASSIGN_OR_RETURN(Expression a, ParseExpression(y, d.PathOf(key), depth + 1));
      out.args.push_back(std::move(a));
    }
    if (d.Take("by_zero_default", &y) && y.type() != element_type::NULL_VALUE) {
      QVEC_ASSIGN_OR_RETURN(double v, GetNumber(y, d.PathOf("by_zero_default")));
      out.by_zero_default = v;
    }
    QVEC_RETURN_IF_ERROR(d.Finish());
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  if (f.Take("pow", &x)) {
    out.kind = K::kPow;
    QVEC_FIELDS(d, x, f.PathOf("pow"));
    element y;
    for (const char* key : {"base", "exponent"}) {
      if (!d.Take(key, &y)) return InvalidArgumentError(d.PathOf(key) + " is required");
      QVEC_ASSIGN_OR_RETURN(Expression a, ParseExpression(y, d.PathOf(key), depth + 1));
      out.args.push_back(std::move(a));
    }
    QVEC_RETURN_IF_ERROR(d.Finish());
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  if (f.Take("geo_distance", &x)) {
    out.kind = K::kGeoDistance;
    QVEC_FIELDS(g, x, f.PathOf("geo_distance"));
    element y;
    if (!g.Take("origin", &y)) return InvalidArgumentError(g.PathOf("origin") + " is required");
    QVEC_ASSIGN_OR_RETURN(out.origin, ParseGeoPoint(y, g.PathOf("origin")));
    if (!g.Take("to", &y)) return InvalidArgumentError(g.PathOf("to") + " is required");
    QVEC_ASSIGN_OR_RETURN(out.name, GetString(y, g.PathOf("to")));
    QVEC_RETURN_IF_ERROR(g.Finish());
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  for (const Unary& u : {Unary{"datetime", K::kDatetime}, Unary{"datetime_key", K::kDatetimeKey}}) {
    if (!f.Take(u.key, &x)) continue;
    out.kind = u.kind;
    QVEC_ASSIGN_OR_RETURN(out.name, GetString(x, f.PathOf(u.key)));
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  for (const Unary& u : {Unary{"lin_decay", K::kLinDecay}, Unary{"exp_decay", K::kExpDecay},
                         Unary{"gauss_decay", K::kGaussDecay}}) {
    if (!f.Take(u.key, &x)) continue;
    out.kind = u.kind;
    QVEC_FIELDS(d, x, f.PathOf(u.key));
    element y;
    if (!d.Take("x", &y)) return InvalidArgumentError(d.PathOf("x") + " is required");
    QVEC_ASSIGN_OR_RETURN(Expression xe, ParseExpression(y, d.PathOf("x"), depth + 1));
    out.args.push_back(std::move(xe));
    if (d.Take("target", &y) && y.type() != element_type::NULL_VALUE) {
      QVEC_ASSIGN_OR_RETURN(Expression t, ParseExpression(y, d.PathOf("target"), depth + 1));
      out.args.push_back(std::move(t));
    }
    for (const char* key : {"scale", "midpoint"}) {
      if (d.Take(key, &y) && y.type() != element_type::NULL_VALUE) {
        QVEC_ASSIGN_OR_RETURN(double v, GetNumber(y, d.PathOf(key)));
        (std::string_view(key) == "scale" ? out.scale : out.midpoint) = v;
      }
    }
    QVEC_RETURN_IF_ERROR(d.Finish());
    QVEC_RETURN_IF_ERROR(f.Finish());
    return out;
  }
  // Otherwise a condition, as in filters.
  QVEC_ASSIGN_OR_RETURN(Condition c, ParseCondition(e, path, depth));
  auto filter = std::make_shared<Filter>();
  filter->must.push_back(std::move(c));
  out.kind = K::kCondition;
  out.condition = std::move(filter);
  return out;
}

// Qdrant's QueryInterface: a VectorInput (nearest) or one query form.
StatusOr<QuerySpec> ParseQuerySpec(element q, const std::string& path) {
  QuerySpec out;
  if (q.type() != element_type::OBJECT || IsSparseElement(q)) {
    QVEC_RETURN_IF_ERROR(ParseVectorInput(q, path, &out.nearest));
    return out;
  }
  QVEC_FIELDS(f, q, path);
  int forms = 0;
  element x;
  if (f.Take("nearest", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kNearest;
    QVEC_RETURN_IF_ERROR(ParseVectorInput(x, f.PathOf("nearest"), &out.nearest));
    if (f.Take("mmr", &x)) {
      Mmr m;
      QVEC_RETURN_IF_ERROR(ParseMmr(x, f.PathOf("mmr"), &m));
      out.mmr = m;
    }
  }
  if (f.Take("recommend", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kRecommend;
    QVEC_FIELDS(r, x, f.PathOf("recommend"));
    element y;
    if (r.Take("positive", &y)) {
      QVEC_RETURN_IF_ERROR(ParseExamples(y, r.PathOf("positive"), &out.positive));
    }
    if (r.Take("negative", &y)) {
      QVEC_RETURN_IF_ERROR(ParseExamples(y, r.PathOf("negative"), &out.negative));
    }
    if (r.Take("strategy", &y)) {
      QVEC_ASSIGN_OR_RETURN(out.strategy, ParseStrategy(y, r.PathOf("strategy")));
    }
    QVEC_RETURN_IF_ERROR(r.Finish());
  }
  if (f.Take("discover", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kDiscover;
    QVEC_FIELDS(d, x, f.PathOf("discover"));
    element y;
    if (!d.Take("target", &y)) return InvalidArgumentError(d.PathOf("target") + " is required");
    QVEC_RETURN_IF_ERROR(ParseVectorInput(y, d.PathOf("target"), &out.target));
    if (!d.Take("context", &y)) return InvalidArgumentError(d.PathOf("context") + " is required");
    QVEC_RETURN_IF_ERROR(ParseContext(y, d.PathOf("context"), &out.context));
    QVEC_RETURN_IF_ERROR(d.Finish());
  }
  if (f.Take("context", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kContext;
    QVEC_RETURN_IF_ERROR(ParseContext(x, f.PathOf("context"), &out.context));
  }
  if (f.Take("order_by", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kOrderBy;
    QVEC_ASSIGN_OR_RETURN(out.order_by, ParseOrderBy(x, f.PathOf("order_by")));
  }
  if (f.Take("fusion", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kFusion;
    std::string_view fu = x.type() == element_type::STRING ? std::string_view(x) : "";
    if (fu == "rrf") {
      out.fusion = QuerySpec::Fusion::kRrf;
    } else if (fu == "dbsf") {
      out.fusion = QuerySpec::Fusion::kDbsf;
    } else {
      return InvalidArgumentError(f.PathOf("fusion") + " must be \"rrf\" or \"dbsf\"");
    }
  }
  if (f.Take("rrf", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kFusion;
    out.fusion = QuerySpec::Fusion::kRrf;
    QVEC_FIELDS(r, x, f.PathOf("rrf"));
    element y;
    if (r.Take("k", &y)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t k, GetUint(y, r.PathOf("k")));
      if (k < 1 || k > 1000000) return OutOfRangeError(r.PathOf("k") + " must be in [1, 1000000]");
      out.rrf_k = static_cast<uint32_t>(k);
    }
    if (r.Take("weights", &y)) {
      if (y.type() != element_type::ARRAY) return WrongType(r.PathOf("weights"), "an array of numbers", y);
      for (element w : simdjson::dom::array(y)) {
        QVEC_ASSIGN_OR_RETURN(double d, GetNumber(w, r.PathOf("weights")));
        if (!(d >= 0) || !std::isfinite(d)) {
          return InvalidArgumentError(r.PathOf("weights") + ": weights must be finite and >= 0");
        }
        out.rrf_weights.push_back(static_cast<float>(d));
      }
    }
    QVEC_RETURN_IF_ERROR(r.Finish());
  }
  if (f.Take("sample", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kSample;
    if (x.type() != element_type::STRING || std::string_view(x) != "random") {
      return InvalidArgumentError(f.PathOf("sample") + " must be \"random\"");
    }
  }
  if (f.Take("formula", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kFormula;
    QVEC_ASSIGN_OR_RETURN(out.formula, ParseExpression(x, f.PathOf("formula"), 0));
    if (f.Take("defaults", &x) && x.type() != element_type::NULL_VALUE) {
      if (x.type() != element_type::OBJECT) return WrongType(f.PathOf("defaults"), "an object", x);
      for (auto entry : simdjson::dom::object(x)) {
        out.formula_defaults[std::string(entry.key)] = simdjson::minify(entry.value);
      }
    }
  }
  if (f.Take("relevance_feedback", &x)) {
    ++forms;
    out.kind = QuerySpec::Kind::kRelevanceFeedback;
    QVEC_FIELDS(rf, x, f.PathOf("relevance_feedback"));
    element y;
    if (!rf.Take("target", &y)) return InvalidArgumentError(rf.PathOf("target") + " is required");
    QVEC_RETURN_IF_ERROR(ParseVectorInput(y, rf.PathOf("target"), &out.target));
    if (!rf.Take("feedback", &y)) return InvalidArgumentError(rf.PathOf("feedback") + " is required");
    if (y.type() != element_type::ARRAY) return WrongType(rf.PathOf("feedback"), "an array", y);
    size_t i = 0;
    for (element item : simdjson::dom::array(y)) {
      const std::string at = Index(rf.PathOf("feedback"), i++);
      QVEC_FIELDS(fi, item, at);
      element z;
      QuerySpec::Feedback fb;
      if (!fi.Take("example", &z)) return InvalidArgumentError(fi.PathOf("example") + " is required");
      QVEC_RETURN_IF_ERROR(ParseVectorInput(z, fi.PathOf("example"), &fb.example));
      if (!fi.Take("score", &z)) return InvalidArgumentError(fi.PathOf("score") + " is required");
      QVEC_ASSIGN_OR_RETURN(double score, GetNumber(z, fi.PathOf("score")));
      fb.score = ToFloat(score);
      QVEC_RETURN_IF_ERROR(fi.Finish());
      out.feedback.push_back(std::move(fb));
    }
    if (!rf.Take("strategy", &y)) return InvalidArgumentError(rf.PathOf("strategy") + " is required");
    QVEC_FIELDS(st, y, rf.PathOf("strategy"));
    element naive;
    if (!st.Take("naive", &naive)) {
      QVEC_RETURN_IF_ERROR(st.Finish());
      return InvalidArgumentError(st.PathOf("naive") + " is required (the only strategy)");
    }
    QVEC_FIELDS(nv, naive, st.PathOf("naive"));
    for (const char* key : {"a", "b", "c"}) {
      element z;
      if (!nv.Take(key, &z)) return InvalidArgumentError(nv.PathOf(key) + " is required");
      QVEC_ASSIGN_OR_RETURN(double v, GetNumber(z, nv.PathOf(key)));
      const float fv = ToFloat(v);
      switch (key[0]) {
        case 'a': out.feedback_a = fv; break;
        case 'b': out.feedback_b = fv; break;
        default: out.feedback_c = fv; break;
      }
    }
    QVEC_RETURN_IF_ERROR(nv.Finish());
    QVEC_RETURN_IF_ERROR(st.Finish());
    QVEC_RETURN_IF_ERROR(rf.Finish());
  }
  for (std::string_view doc : {"text", "image", "object"}) {
    QVEC_RETURN_IF_ERROR(
        f.Refuse(doc, "documents and images for server-side inference are not supported"));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  if (forms != 1) {
    return InvalidArgumentError(path + ": expected exactly one of nearest, recommend, discover, "
                                "context, order_by, fusion, rrf, sample, formula or "
                                "relevance_feedback");
  }
  return out;
}

// One stage (`top`: the request itself, which also takes offset and the
// output selectors).
StatusOr<QueryRequest> ParseQueryStage(
    element e, const std::string& path, bool top, std::vector<std::optional<LookupFrom>>* lookups,
    PayloadSelector* selector, const std::function<Status(RequestFields&)>* extra = nullptr) {
  QVEC_FIELDS(f, e, path);
  QueryRequest r;
  if (extra != nullptr) {
    QVEC_RETURN_IF_ERROR((*extra)(f));
  }
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  element x;
  const size_t my_lookup = lookups->size();
  lookups->emplace_back();
  if (f.Take("lookup_from", &x)) {
    QVEC_ASSIGN_OR_RETURN((*lookups)[my_lookup], ParseLookupFrom(x, f.PathOf("lookup_from")));
  }
  if (f.Take("prefetch", &x)) {
    auto one = [&](element p, const std::string& where) -> Status {
      QVEC_ASSIGN_OR_RETURN(QueryRequest pr, ParseQueryStage(p, where, false, lookups, nullptr));
      r.prefetch.push_back(std::move(pr));
      return Status::Ok();
    };
    if (x.type() == element_type::ARRAY) {
      size_t i = 0;
      for (element p : simdjson::dom::array(x)) {
        QVEC_RETURN_IF_ERROR(one(p, Index(f.PathOf("prefetch"), i++)));
      }
    } else {
      QVEC_RETURN_IF_ERROR(one(x, f.PathOf("prefetch")));
    }
  }
  if (f.Take("query", &x)) {
    QVEC_ASSIGN_OR_RETURN(QuerySpec q, ParseQuerySpec(x, f.PathOf("query")));
    r.query = std::move(q);
  }
  if (f.Take("using", &x)) {
    QVEC_ASSIGN_OR_RETURN(r.vector_name, GetString(x, f.PathOf("using")));
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, f.PathOf("filter")));
    r.filter = std::move(flt);
  }
  if (f.Take("params", &x)) {
    QVEC_RETURN_IF_ERROR(ParseSearchParams(x, f.PathOf("params"), &r.params));
  }
  if (f.Take("score_threshold", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, f.PathOf("score_threshold")));
    r.score_threshold = ToFloat(d);
  }
  if (f.Take("limit", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, f.PathOf("limit")));
    r.limit = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
  }
  if (top) {
    if (f.Take("offset", &x)) {
      QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, f.PathOf("offset")));
      r.offset = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
    }
    QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, false, selector));
    r.with_payload = selector->enabled;
    QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelectorField(f, false));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return r;
}

}  // namespace

StatusOr<ParsedQuery> ParseQueryRequest(element e, const std::string& path) {
  ParsedQuery out;
  QVEC_ASSIGN_OR_RETURN(out.request, ParseQueryStage(e, path, true, &out.lookups, &out.selector));
  return out;
}

namespace {

// group_by, group_size and with_lookup of the *groups requests (`limit`
// counts groups there).
Status TakeGroupFields(RequestFields& f, ParsedGroups* out) {
  element x;
  if (!f.Take("group_by", &x)) return InvalidArgumentError("group_by is required");
  QVEC_ASSIGN_OR_RETURN(out->group.key, GetString(x, "group_by"));
  if (f.Take("group_size", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "group_size"));
    out->group.group_size = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
  }
  if (f.Take("with_lookup", &x)) {
    LookupFrom lk;
    if (x.type() == element_type::STRING) {
      lk.collection = std::string(std::string_view(x));
      out->lookup_payload.enabled = true;
    } else {
      QVEC_FIELDS(l, x, "with_lookup");
      element y;
      if (!l.Take("collection", &y)) return InvalidArgumentError("with_lookup.collection is required");
      QVEC_ASSIGN_OR_RETURN(lk.collection, GetString(y, "with_lookup.collection"));
      QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(l, true, &out->lookup_payload));
      // Qdrant names it with_vectors here.
      if (l.Take("with_vectors", &y)) {
        if (y.type() == element_type::BOOL) {
          out->lookup_vectors = VectorSelector(bool(y));
        } else {
          std::vector<std::string> names;
          if (y.type() != element_type::ARRAY) {
            return WrongType("with_lookup.with_vectors", "a bool or an array of names", y);
          }
          for (element n : simdjson::dom::array(y)) {
            QVEC_ASSIGN_OR_RETURN(std::string name, GetString(n, "with_lookup.with_vectors"));
            names.push_back(std::move(name));
          }
          out->lookup_vectors = VectorSelector(std::move(names));
        }
      }
      QVEC_RETURN_IF_ERROR(l.Finish());
    }
    out->with_lookup = std::move(lk);
  }
  return Status::Ok();
}

}  // namespace

StatusOr<ParsedGroups> ParseQueryGroupsRequest(element e) {
  ParsedGroups out;
  const std::function<Status(RequestFields&)> extra = [&](RequestFields& f) -> Status {
    QVEC_RETURN_IF_ERROR(TakeGroupFields(f, &out));
    return f.Refuse("offset", "not with groups (limit counts groups)");
  };
  QVEC_ASSIGN_OR_RETURN(out.query.request, ParseQueryStage(e, "", true, &out.query.lookups,
                                                           &out.query.selector, &extra));
  out.group.limit = out.query.request.limit;
  return out;
}

namespace {

// The body of the older recommend and discover endpoints as one query stage.
StatusOr<ParsedQuery> ParseLegacyQuery(element e, const std::string& path, bool discover,
                                       ParsedGroups* groups) {
  QVEC_FIELDS(f, e, path);
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  ParsedQuery out;
  QueryRequest& r = out.request;
  out.lookups.emplace_back();
  r.query = QuerySpec();
  QuerySpec& q = *r.query;
  element x;
  if (groups != nullptr) {
    QVEC_RETURN_IF_ERROR(TakeGroupFields(f, groups));
  }
  if (discover) {
    q.kind = QuerySpec::Kind::kDiscover;
    if (f.Take("target", &x)) {
      QVEC_RETURN_IF_ERROR(ParseVectorInput(x, f.PathOf("target"), &q.target));
    } else {
      q.kind = QuerySpec::Kind::kContext;  // no target: a context search, as in Qdrant
    }
    if (f.Take("context", &x)) {
      QVEC_RETURN_IF_ERROR(ParseContext(x, f.PathOf("context"), &q.context));
    }
    if (q.kind == QuerySpec::Kind::kContext && q.context.empty()) {
      return InvalidArgumentError(path + ": give a target, context pairs, or both");
    }
  } else {
    q.kind = QuerySpec::Kind::kRecommend;
    if (f.Take("positive", &x)) {
      QVEC_RETURN_IF_ERROR(ParseExamples(x, f.PathOf("positive"), &q.positive));
    }
    if (f.Take("negative", &x)) {
      QVEC_RETURN_IF_ERROR(ParseExamples(x, f.PathOf("negative"), &q.negative));
    }
    if (f.Take("strategy", &x)) {
      QVEC_ASSIGN_OR_RETURN(q.strategy, ParseStrategy(x, f.PathOf("strategy")));
    }
    if (f.Take("score_threshold", &x)) {
      QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, f.PathOf("score_threshold")));
      r.score_threshold = ToFloat(d);
    }
  }
  if (f.Take("using", &x)) {
    QVEC_ASSIGN_OR_RETURN(r.vector_name, GetString(x, f.PathOf("using")));
  }
  if (f.Take("lookup_from", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.lookups[0], ParseLookupFrom(x, f.PathOf("lookup_from")));
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, f.PathOf("filter")));
    r.filter = std::move(flt);
  }
  if (f.Take("params", &x)) {
    QVEC_RETURN_IF_ERROR(ParseSearchParams(x, f.PathOf("params"), &r.params));
  }
  if (!f.Take("limit", &x)) return InvalidArgumentError(f.PathOf("limit") + " is required");
  QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, f.PathOf("limit")));
  r.limit = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
  if (groups == nullptr && f.Take("offset", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t o, GetUint(x, f.PathOf("offset")));
    r.offset = static_cast<size_t>(std::min<uint64_t>(o, SIZE_MAX / 4));
  }
  QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, false, &out.selector));
  r.with_payload = out.selector.enabled;
  QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelectorField(f, false));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

}  // namespace

StatusOr<ParsedQuery> ParseRecommendRequest(element e, const std::string& path) {
  return ParseLegacyQuery(e, path, false, nullptr);
}

StatusOr<ParsedQuery> ParseDiscoverRequest(element e, const std::string& path) {
  return ParseLegacyQuery(e, path, true, nullptr);
}

StatusOr<ParsedGroups> ParseRecommendGroupsRequest(element e) {
  ParsedGroups out;
  QVEC_ASSIGN_OR_RETURN(out.query, ParseLegacyQuery(e, "", false, &out));
  out.group.limit = out.query.request.limit;
  return out;
}

StatusOr<ParsedGroups> ParseSearchGroupsRequest(element e) {
  // The search body plus the group fields: read as a search, with the group
  // fields taken first.
  ParsedGroups out;
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(TakeGroupFields(f, &out));
  element x;
  if (!f.Take("vector", &x)) return InvalidArgumentError("vector is required");
  QueryRequest& r = out.query.request;
  out.query.lookups.emplace_back();
  r.query = QuerySpec();
  if (x.type() == element_type::OBJECT) {  // {"name": ..., "vector": [...]}
    if (IsSparseElement(x)) {
      return InvalidArgumentError(
          "vector: a sparse query names its field: {\"name\": \"...\", \"vector\": "
          "{\"indices\": [...], \"values\": [...]}}");
    }
    QVEC_FIELDS(nv, x, "vector");
    element name, inner;
    if (!nv.Take("name", &name) || name.type() != element_type::STRING) {
      return InvalidArgumentError("vector: a named vector is {\"name\": \"...\", \"vector\": [...]}");
    }
    r.vector_name = std::string(std::string_view(name));
    if (!nv.Take("vector", &inner)) return InvalidArgumentError("vector.vector is required");
    QVEC_RETURN_IF_ERROR(nv.Finish());
    x = inner;
  }
  if (IsSparseElement(x)) {
    r.query->nearest.sparse.emplace();
    QVEC_RETURN_IF_ERROR(ParseSparseVector(x, "vector.vector", &*r.query->nearest.sparse));
  } else {
    QVEC_RETURN_IF_ERROR(CheckDenseVector(x, "vector"));
    QVEC_RETURN_IF_ERROR(ParseVector(x, &r.query->nearest.vector).Annotate("vector"));
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    r.filter = std::move(flt);
  }
  if (f.Take("params", &x)) {
    QVEC_RETURN_IF_ERROR(ParseSearchParams(x, "params", &r.params));
  }
  if (f.Take("score_threshold", &x)) {
    QVEC_ASSIGN_OR_RETURN(double d, GetNumber(x, "score_threshold"));
    r.score_threshold = ToFloat(d);
  }
  if (!f.Take("limit", &x)) return InvalidArgumentError("limit is required");
  QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "limit"));
  out.group.limit = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
  QVEC_RETURN_IF_ERROR(ParsePayloadSelectorField(f, false, &out.query.selector));
  r.with_payload = out.query.selector.enabled;
  QVEC_ASSIGN_OR_RETURN(r.with_vector, ParseVectorSelectorField(f, false));
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<std::vector<ParsedQuery>> ParseLegacyBatch(element e, bool discover) {
  QVEC_ASSIGN_OR_RETURN(simdjson::dom::array searches, OnlyArray(e, "searches", "searches"));
  std::vector<ParsedQuery> out;
  size_t i = 0;
  for (element s : searches) {
    QVEC_ASSIGN_OR_RETURN(ParsedQuery one,
                          ParseLegacyQuery(s, Index("searches", i++), discover, nullptr));
    out.push_back(std::move(one));
  }
  return out;
}

StatusOr<SearchMatrixBody> ParseSearchMatrix(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  SearchMatrixBody out;
  element x;
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out.filter = std::move(flt);
  }
  if (f.Take("sample", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "sample"));
    if (n < 2 || n > 10000) return OutOfRangeError("sample must be in [2, 10000]");
    out.sample = static_cast<size_t>(n);
  }
  if (f.Take("limit", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "limit"));
    if (n < 1 || n > 10000) return OutOfRangeError("limit must be in [1, 10000]");
    out.limit = static_cast<size_t>(n);
  }
  if (f.Take("using", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.vector_name, GetString(x, "using"));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<ListsBody> ParseListsBody(element e) {
  QVEC_FIELDS(f, e, "");
  ListsBody out;
  element x;
  if (f.Take("using", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.vector_name, GetString(x, "using"));
  }
  if (f.Take("ids", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.ids, ParseIdList(x, "ids"));
  }
  if (f.Take("with_centroids", &x)) {
    QVEC_ASSIGN_OR_RETURN(out.with_centroids, GetBool(x, "with_centroids"));
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<FacetBody> ParseFacet(element e) {
  QVEC_FIELDS(f, e, "");
  QVEC_RETURN_IF_ERROR(RefuseShardKey(f));
  FacetBody out;
  element x;
  if (!f.Take("key", &x)) return InvalidArgumentError("key is required");
  QVEC_ASSIGN_OR_RETURN(out.key, GetString(x, "key"));
  if (f.Take("limit", &x)) {
    QVEC_ASSIGN_OR_RETURN(uint64_t n, GetUint(x, "limit"));
    if (n == 0) return InvalidArgumentError("limit must be at least 1");
    out.limit = static_cast<size_t>(std::min<uint64_t>(n, SIZE_MAX / 4));
  }
  if (f.Take("filter", &x)) {
    QVEC_ASSIGN_OR_RETURN(Filter flt, ParseFilter(x, "filter"));
    out.filter = std::move(flt);
  }
  // qvec's counts are always exact, which is what either value asks for.
  if (f.Take("exact", &x)) {
    QVEC_RETURN_IF_ERROR(GetBool(x, "exact").status());
  }
  QVEC_RETURN_IF_ERROR(f.Finish());
  return out;
}

StatusOr<std::vector<ParsedQuery>> ParseQueryBatch(element e) {
  QVEC_ASSIGN_OR_RETURN(simdjson::dom::array searches, OnlyArray(e, "searches", "searches"));
  std::vector<ParsedQuery> out;
  size_t i = 0;
  for (element s : searches) {
    QVEC_ASSIGN_OR_RETURN(ParsedQuery one, ParseQueryRequest(s, Index("searches", i++)));
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace qvec::server
