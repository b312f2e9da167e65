#include "engine/payload_index.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <span>

#include "common/datetime.h"
#include "engine/json_writer.h"

namespace qvec::engine {
namespace {

simdjson::dom::parser& ThreadParser() {
  // simdjson parsers are not thread-safe but are reusable; one per thread
  // keeps their buffers warm.
  thread_local simdjson::dom::parser parser;
  return parser;
}

void Flatten(simdjson::dom::element e, std::vector<PayloadScalar>* out) {
  using T = simdjson::dom::element_type;
  switch (e.type()) {
    case T::ARRAY:
      for (simdjson::dom::element child : simdjson::dom::array(e)) Flatten(child, out);
      break;
    case T::OBJECT:
      break;  // objects are not scalars; nested keys address them
    case T::INT64:
      out->emplace_back(int64_t(e));
      break;
    case T::UINT64: {
      uint64_t u = uint64_t(e);
      out->emplace_back(static_cast<double>(u));
      break;
    }
    case T::DOUBLE:
      out->emplace_back(double(e));
      break;
    case T::STRING:
      out->emplace_back(std::string(std::string_view(e)));
      break;
    case T::BOOL:
      out->emplace_back(bool(e));
      break;
    case T::NULL_VALUE:
      out->emplace_back(std::monostate{});
      break;
  }
}

void Walk(simdjson::dom::element e, std::string_view path, FieldValues* fv) {
  using T = simdjson::dom::element_type;
  if (path.empty()) {
    fv->present = true;
    auto geo = [fv](simdjson::dom::element o) {
      if (o.type() != T::OBJECT) return;
      fv->objects.push_back(simdjson::to_string(o));
      double lon, lat;
      if (o["lon"].get(lon) == simdjson::SUCCESS && o["lat"].get(lat) == simdjson::SUCCESS) {
        fv->geo.push_back(GeoPoint{lon, lat});
      }
    };
    if (e.type() == T::ARRAY) {
      fv->items += simdjson::dom::array(e).size();
      for (simdjson::dom::element x : simdjson::dom::array(e)) geo(x);
    } else if (e.type() != T::NULL_VALUE) {
      fv->items += 1;
      geo(e);
    }
    Flatten(e, &fv->values);
    return;
  }
  if (e.type() == T::ARRAY) {
    for (simdjson::dom::element child : simdjson::dom::array(e)) Walk(child, path, fv);
    return;
  }
  if (e.type() != T::OBJECT) return;
  size_t dot = path.find('.');
  std::string_view head = path.substr(0, dot);
  std::string_view rest = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  // Qdrant writes "a[].b" for arrays along a path; arrays are flattened anyway.
  if (head.size() >= 2 && head.substr(head.size() - 2) == "[]") head.remove_suffix(2);
  simdjson::dom::element child;
  if (simdjson::dom::object(e).at_key(head).get(child) != simdjson::SUCCESS) return;
  Walk(child, rest, fv);
}

bool ScalarEqualsMatch(const PayloadScalar& s, const MatchValue& m) {
  if (const auto* str = std::get_if<std::string>(&m)) {
    const auto* v = std::get_if<std::string>(&s);
    return v != nullptr && *v == *str;
  }
  if (const auto* i = std::get_if<int64_t>(&m)) {
    if (const auto* v = std::get_if<int64_t>(&s)) return *v == *i;
    if (const auto* d = std::get_if<double>(&s)) return *d == static_cast<double>(*i);
    return false;
  }
  const bool b = std::get<bool>(m);
  const auto* v = std::get_if<bool>(&s);
  return v != nullptr && *v == b;
}

bool NumberOf(const PayloadScalar& s, double* out) {
  if (const auto* i = std::get_if<int64_t>(&s)) {
    *out = static_cast<double>(*i);
    return true;
  }
  if (const auto* d = std::get_if<double>(&s)) {
    *out = *d;
    return true;
  }
  return false;
}

}  // namespace

Status ValidatePayload(std::string_view json) {
  simdjson::dom::element doc;
  auto err = ThreadParser().parse(json.data(), json.size()).get(doc);
  if (err != simdjson::SUCCESS) {
    return InvalidArgumentError(std::string("payload is not valid JSON: ") +
                                simdjson::error_message(err));
  }
  if (doc.type() != simdjson::dom::element_type::OBJECT) {
    return InvalidArgumentError("payload must be a JSON object");
  }
  return Status::Ok();
}

FieldValues ExtractField(std::string_view json, std::string_view key) {
  FieldValues fv;
  if (json.empty()) return fv;
  simdjson::dom::element doc;
  if (ThreadParser().parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return fv;
  Walk(doc, key, &fv);
  return fv;
}

StatusOr<std::string> MergePayloads(std::string_view base, std::string_view patch) {
  if (base.empty()) return std::string(patch);
  // Two documents are alive at once, so a second parser is needed.
  simdjson::dom::parser base_parser;
  simdjson::dom::element base_doc, patch_doc;
  if (base_parser.parse(base.data(), base.size()).get(base_doc) != simdjson::SUCCESS ||
      base_doc.type() != simdjson::dom::element_type::OBJECT) {
    return DataLossError("stored payload is not a JSON object");
  }
  if (ThreadParser().parse(patch.data(), patch.size()).get(patch_doc) != simdjson::SUCCESS ||
      patch_doc.type() != simdjson::dom::element_type::OBJECT) {
    return InvalidArgumentError("payload must be a JSON object");
  }
  simdjson::dom::object patch_obj(patch_doc);
  JsonWriter w;
  w.BeginObject();
  for (auto field : simdjson::dom::object(base_doc)) {
    simdjson::dom::element unused;
    if (patch_obj.at_key(field.key).get(unused) == simdjson::SUCCESS) continue;
    w.Key(field.key).Raw(simdjson::to_string(field.value));
  }
  for (auto field : patch_obj) w.Key(field.key).Raw(simdjson::to_string(field.value));
  w.EndObject();
  return w.Take();
}

namespace {

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t dot = path.find('.', pos);
    if (dot == std::string_view::npos) dot = path.size();
    out.push_back(path.substr(pos, dot - pos));
    pos = dot + 1;
  }
  return out;
}

// Writes object `base` (nullptr = none) with `patch`'s keys merged into the
// object at `path` below it.
// With `replace`, the object at `path` becomes `patch` itself instead.
void WriteMergedAt(JsonWriter& w, const simdjson::dom::element* base,
                   std::span<const std::string_view> path, simdjson::dom::object patch,
                   bool replace) {
  using T = simdjson::dom::element_type;
  w.BeginObject();
  if (path.empty()) {
    if (base != nullptr && !replace) {
      for (auto field : simdjson::dom::object(*base)) {
        simdjson::dom::element unused;
        if (patch.at_key(field.key).get(unused) == simdjson::SUCCESS) continue;
        w.Key(field.key).Raw(simdjson::to_string(field.value));
      }
    }
    for (auto field : patch) w.Key(field.key).Raw(simdjson::to_string(field.value));
  } else {
    bool found = false;
    if (base != nullptr) {
      for (auto field : simdjson::dom::object(*base)) {
        if (field.key != path[0]) {
          w.Key(field.key).Raw(simdjson::to_string(field.value));
          continue;
        }
        found = true;
        w.Key(field.key);
        const simdjson::dom::element child = field.value;
        WriteMergedAt(w, child.type() == T::OBJECT ? &child : nullptr, path.subspan(1), patch,
                      replace);
      }
    }
    if (!found) {
      w.Key(path[0]);
      WriteMergedAt(w, nullptr, path.subspan(1), patch, replace);
    }
  }
  w.EndObject();
}

// Writes object `obj` without the value at `path` (a non-empty path).
void WriteWithout(JsonWriter& w, simdjson::dom::object obj, std::span<const std::string_view> path) {
  using T = simdjson::dom::element_type;
  w.BeginObject();
  for (auto field : obj) {
    if (field.key == path[0]) {
      if (path.size() == 1) continue;
      if (field.value.type() == T::OBJECT) {
        w.Key(field.key);
        WriteWithout(w, simdjson::dom::object(field.value), path.subspan(1));
        continue;
      }
    }
    w.Key(field.key).Raw(simdjson::to_string(field.value));
  }
  w.EndObject();
}

}  // namespace

StatusOr<std::string> ApplyPayloadUpdate(std::string_view stored, const PayloadUpdate& update) {
  using Op = PayloadUpdate::Op;
  switch (update.op) {
    case Op::kOverwrite:
      if (update.key.empty()) return update.payload;
      break;  // the object at `key` is replaced: below
    case Op::kClear:
      return std::string("{}");
    case Op::kMerge:
    case Op::kDeleteKeys:
      break;
  }
  // Two documents are alive at once, so a second parser is needed.
  simdjson::dom::parser base_parser;
  simdjson::dom::element base;
  const std::string_view base_text = stored.empty() ? std::string_view("{}") : stored;
  if (base_parser.parse(base_text.data(), base_text.size()).get(base) != simdjson::SUCCESS ||
      base.type() != simdjson::dom::element_type::OBJECT) {
    return DataLossError("stored payload is not a JSON object");
  }
  if (update.op == Op::kMerge || update.op == Op::kOverwrite) {
    simdjson::dom::element patch;
    if (ThreadParser().parse(update.payload.data(), update.payload.size()).get(patch) !=
            simdjson::SUCCESS ||
        patch.type() != simdjson::dom::element_type::OBJECT) {
      return InvalidArgumentError("payload must be a JSON object");
    }
    const std::vector<std::string_view> path =
        update.key.empty() ? std::vector<std::string_view>() : SplitPath(update.key);
    JsonWriter w;
    WriteMergedAt(w, &base, path, simdjson::dom::object(patch), update.op == Op::kOverwrite);
    return w.Take();
  }
  std::string current(base_text);
  for (const std::string& key : update.keys) {
    simdjson::dom::element doc;
    if (ThreadParser().parse(current.data(), current.size()).get(doc) != simdjson::SUCCESS) {
      return InternalError("payload rewrite produced invalid JSON");
    }
    const std::vector<std::string_view> path = SplitPath(key);
    JsonWriter w;
    WriteWithout(w, simdjson::dom::object(doc), path);
    current = w.Take();
  }
  return current;
}

void CollectFilterKeys(const Filter& filter, std::set<std::string>* keys) {
  for (const auto* list : {&filter.must, &filter.should, &filter.must_not}) {
    for (const Condition& c : *list) {
      if (c.kind == Condition::Kind::kNested) {
        if (c.filter) CollectFilterKeys(*c.filter, keys);
      } else if (c.kind != Condition::Kind::kHasId && c.kind != Condition::Kind::kHasVector) {
        // kNestedObjects: its inner filter reads the objects at the key.
        keys->insert(c.key);
      }
    }
  }
}

// ---- FieldIndex ----

namespace {

// Equal canonical values for every pair ScalarEqualsMatch calls equal (and
// maybe a few more: integers beyond 2^53 share a double), so postings are a
// superset of the matches.
std::string CanonicalNumber(double d) {
  if (d == 0) d = 0;  // -0 equals 0
  char buf[40];
  std::snprintf(buf, sizeof(buf), "n%.17g", d);
  return buf;
}

std::optional<std::string> Canonical(const PayloadScalar& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return "s" + *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return CanonicalNumber(static_cast<double>(*i));
  if (const auto* d = std::get_if<double>(&v)) return CanonicalNumber(*d);
  if (const auto* b = std::get_if<bool>(&v)) return std::string(*b ? "b1" : "b0");
  return std::nullopt;
}

std::string Canonical(const MatchValue& m) {
  if (const auto* s = std::get_if<std::string>(&m)) return "s" + *s;
  if (const auto* i = std::get_if<int64_t>(&m)) return CanonicalNumber(static_cast<double>(*i));
  return std::get<bool>(m) ? "b1" : "b0";
}

bool IsNumber(const PayloadScalar& v, double* out) {
  if (const auto* i = std::get_if<int64_t>(&v)) {
    *out = static_cast<double>(*i);
    return true;
  }
  if (const auto* d = std::get_if<double>(&v)) {
    *out = *d;
    return true;
  }
  return false;
}

}  // namespace

std::vector<std::string> TextWords(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char ch : text) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || std::isalnum(c)) {
      word += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

namespace {

// Tokenized matching of one stored string (a text payload index is on the
// key): every word, any word, or the words in a row.
bool TextMatches(Condition::Kind kind, const std::vector<std::string>& query,
                 const std::string& stored) {
  if (query.empty()) return false;
  const std::vector<std::string> doc = TextWords(stored);
  auto has = [&](const std::string& w) { return std::find(doc.begin(), doc.end(), w) != doc.end(); };
  switch (kind) {
    case Condition::Kind::kMatchText:
      return std::all_of(query.begin(), query.end(), has);
    case Condition::Kind::kMatchTextAny:
      return std::any_of(query.begin(), query.end(), has);
    case Condition::Kind::kMatchPhrase:
      return std::search(doc.begin(), doc.end(), query.begin(), query.end()) != doc.end();
    default:
      return false;
  }
}

}  // namespace

size_t FieldIndex::EntryBytes(const FieldValues& fv) const {
  size_t bytes = sizeof(PointId) + sizeof(FieldValues) + 32 +  // hash node
                 fv.geo.capacity() * sizeof(GeoPoint);
  if (schema_ == PayloadSchemaType::kGeo) bytes += fv.geo.size() * 64;  // by_lat_ nodes
  for (const std::string& o : fv.objects) bytes += sizeof(std::string) + o.capacity();
  for (const auto& v : fv.values) {
    bytes += sizeof(PayloadScalar);
    if (const auto* str = std::get_if<std::string>(&v)) bytes += str->capacity();
    // A posting (hash-set node) and, for numbers, an ordered-map node.
    if (schema_ == PayloadSchemaType::kText) {
      if (const auto* str = std::get_if<std::string>(&v)) bytes += 48 * (str->size() / 6 + 1);
    } else if (indexed_) {
      bytes += 48 + (std::holds_alternative<std::monostate>(v) ? 0 : 48);
    }
  }
  return bytes;
}

void FieldIndex::Set(const PointId& id, const std::string* payload) {
  Erase(id);
  if (payload == nullptr || payload->empty()) return;
  FieldValues fv = ExtractField(*payload, key_);
  if (!fv.present) return;
  bytes_ += EntryBytes(fv);
  if (schema_ == PayloadSchemaType::kText) {
    for (const auto& v : fv.values) {
      if (const auto* str = std::get_if<std::string>(&v)) {
        for (std::string& w : TextWords(*str)) by_word_[std::move(w)].insert(id);
      }
    }
  } else if (schema_ == PayloadSchemaType::kDatetime) {
    for (const auto& v : fv.values) {
      if (const auto* str = std::get_if<std::string>(&v)) {
        if (auto t = datetime::ParseMicros(*str)) by_time_.emplace(*t, id);
      }
    }
  } else if (schema_ == PayloadSchemaType::kGeo) {
    for (const GeoPoint& g : fv.geo) by_lat_.emplace(g.lat, std::make_pair(g.lon, id));
  } else if (indexed_) {
    for (const auto& v : fv.values) {
      if (auto c = Canonical(v)) by_value_[*c].insert(id);
      double d;
      if (IsNumber(v, &d)) by_number_.emplace(d, id);
    }
  }
  values_.emplace(id, std::move(fv));
}

void FieldIndex::Unindex(const PointId& id, const FieldValues& fv) {
  if (schema_ == PayloadSchemaType::kText) {
    for (const auto& v : fv.values) {
      const auto* str = std::get_if<std::string>(&v);
      if (str == nullptr) continue;
      for (const std::string& w : TextWords(*str)) {
        auto it = by_word_.find(w);
        if (it == by_word_.end()) continue;
        it->second.erase(id);
        if (it->second.empty()) by_word_.erase(it);
      }
    }
    return;
  }
  if (schema_ == PayloadSchemaType::kGeo) {
    for (const GeoPoint& g : fv.geo) {
      auto [lo, hi] = by_lat_.equal_range(g.lat);
      for (auto it = lo; it != hi; ++it) {
        if (it->second.second == id && it->second.first == g.lon) {
          by_lat_.erase(it);
          break;
        }
      }
    }
    return;
  }
  if (schema_ == PayloadSchemaType::kDatetime) {
    for (const auto& v : fv.values) {
      const auto* str = std::get_if<std::string>(&v);
      if (str == nullptr) continue;
      auto t = datetime::ParseMicros(*str);
      if (!t) continue;
      auto [lo, hi] = by_time_.equal_range(*t);
      for (auto it = lo; it != hi; ++it) {
        if (it->second == id) {
          by_time_.erase(it);
          break;
        }
      }
    }
    return;
  }
  for (const auto& v : fv.values) {
    if (auto c = Canonical(v)) {
      auto it = by_value_.find(*c);
      if (it != by_value_.end()) {
        it->second.erase(id);
        if (it->second.empty()) by_value_.erase(it);
      }
    }
    double d;
    if (IsNumber(v, &d)) {
      auto [lo, hi] = by_number_.equal_range(d);
      for (auto it = lo; it != hi; ++it) {
        if (it->second == id) {
          by_number_.erase(it);
          break;
        }
      }
    }
  }
}

void FieldIndex::Erase(const PointId& id) {
  auto it = values_.find(id);
  if (it == values_.end()) return;
  bytes_ -= EntryBytes(it->second);
  if (indexed_) Unindex(id, it->second);
  values_.erase(it);
}

const FieldValues* FieldIndex::Find(const PointId& id) const {
  auto it = values_.find(id);
  return it == values_.end() ? nullptr : &it->second;
}

namespace {
bool GeoHolds(const Condition& c, const GeoPoint& p);
}  // namespace

bool FieldIndex::Candidates(const Condition& c, std::vector<PointId>* out, bool* exact) const {
  if (!indexed_) return false;
  if (schema_ == PayloadSchemaType::kGeo) {
    using K = Condition::Kind;
    if ((c.kind != K::kGeoRadius && c.kind != K::kGeoBoundingBox && c.kind != K::kGeoPolygon) ||
        c.geo.empty()) {
      return false;
    }
    // A latitude band holding every point that can pass, each checked
    // exactly (a point with several geo values may be listed more than once).
    double lo = 90, hi = -90;
    if (c.kind == K::kGeoRadius) {
      // 1 degree of latitude is at least 110574 m; 1e-9 keeps rounding out.
      const double band = c.geo_radius / 110574.0 + 1e-9;
      lo = c.geo[0].lat - band;
      hi = c.geo[0].lat + band;
    } else if (c.kind == K::kGeoBoundingBox) {
      if (c.geo.size() < 2) return false;
      lo = c.geo[1].lat;
      hi = c.geo[0].lat;
    } else {
      for (const GeoPoint& p : c.geo) {
        lo = std::min(lo, p.lat);
        hi = std::max(hi, p.lat);
      }
    }
    *exact = true;
    for (auto it = by_lat_.lower_bound(lo); it != by_lat_.end() && it->first <= hi; ++it) {
      if (GeoHolds(c, GeoPoint{it->second.first, it->first})) out->push_back(it->second.second);
    }
    return true;
  }
  if (schema_ == PayloadSchemaType::kText) {
    if (c.kind != Condition::Kind::kMatchText && c.kind != Condition::Kind::kMatchTextAny &&
        c.kind != Condition::Kind::kMatchPhrase) {
      return false;
    }
    const auto* text = std::get_if<std::string>(&c.value);
    if (text == nullptr) return false;
    const std::vector<std::string> words = TextWords(*text);
    // Every word (text, phrase) or any word (text_any). A phrase also needs
    // the order, checked by evaluating the condition on the candidates.
    *exact = c.kind != Condition::Kind::kMatchPhrase;
    if (words.empty()) return true;
    if (c.kind == Condition::Kind::kMatchTextAny) {
      for (const std::string& w : words) {
        auto it = by_word_.find(w);
        if (it != by_word_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
      }
      return true;
    }
    const std::unordered_set<PointId, PointIdHash>* smallest = nullptr;
    for (const std::string& w : words) {
      auto it = by_word_.find(w);
      if (it == by_word_.end()) return true;  // a word nobody has: no point
      if (smallest == nullptr || it->second.size() < smallest->size()) smallest = &it->second;
    }
    for (const PointId& id : *smallest) {
      bool all = true;
      for (const std::string& w : words) all = all && by_word_.at(w).count(id) > 0;
      if (all) out->push_back(id);
    }
    return true;
  }
  if (schema_ == PayloadSchemaType::kDatetime) {
    if (c.kind != Condition::Kind::kDatetimeRange) return false;
    *exact = true;
    auto lo = c.time_gte ? by_time_.lower_bound(*c.time_gte) : by_time_.begin();
    for (auto it = lo; it != by_time_.end(); ++it) {
      if ((c.time_lt && !(it->first < *c.time_lt)) || (c.time_lte && !(it->first <= *c.time_lte))) {
        break;
      }
      if (c.time_gt && !(it->first > *c.time_gt)) continue;
      out->push_back(it->second);
    }
    return true;
  }
  // Integers whose double is exact have postings of their own.
  auto exact_value = [](const MatchValue& m) {
    const auto* i = std::get_if<int64_t>(&m);
    return i == nullptr || (*i <= (int64_t{1} << 53) && *i >= -(int64_t{1} << 53));
  };
  *exact = true;
  auto add_value = [&](const std::string& canonical) {
    auto it = by_value_.find(canonical);
    if (it != by_value_.end()) out->insert(out->end(), it->second.begin(), it->second.end());
  };
  switch (c.kind) {
    case Condition::Kind::kMatchValue:
      add_value(Canonical(c.value));
      *exact = exact_value(c.value);
      return true;
    case Condition::Kind::kMatchAny:
      for (const MatchValue& m : c.any) {
        add_value(Canonical(m));
        *exact = *exact && exact_value(m);
      }
      return true;
    case Condition::Kind::kRange: {
      auto lo = by_number_.begin();
      if (c.gte) lo = by_number_.lower_bound(*c.gte);
      if (c.gt) {
        auto above = by_number_.upper_bound(*c.gt);
        if (lo != by_number_.end() && (above == by_number_.end() || above->first > lo->first)) {
          lo = above;
        }
      }
      for (auto it = lo; it != by_number_.end(); ++it) {
        if ((c.lt && !(it->first < *c.lt)) || (c.lte && !(it->first <= *c.lte))) break;
        if ((c.gt && !(it->first > *c.gt)) || (c.gte && !(it->first >= *c.gte))) continue;
        out->push_back(it->second);
      }
      return true;
    }
    default:
      return false;
  }
}

namespace {

// Walks `map` (value -> point, a multimap) in value order from `start`
// (inclusive), the points of one value by id, calling fn(value, id) until it
// returns false.
template <typename Map, typename Key>
void WalkOrdered(const Map& map, bool descending, std::optional<Key> start,
                 const std::function<bool(double, const PointId&)>& fn) {
  std::vector<PointId> group;
  auto emit = [&](auto first, auto last) {
    group.clear();
    for (auto it = first; it != last; ++it) group.push_back(it->second);
    std::sort(group.begin(), group.end());
    for (const PointId& id : group) {
      if (!fn(static_cast<double>(first->first), id)) return false;
    }
    return true;
  };
  if (!descending) {
    auto it = start ? map.lower_bound(*start) : map.begin();
    while (it != map.end()) {
      auto next = map.upper_bound(it->first);
      if (!emit(it, next)) return;
      it = next;
    }
    return;
  }
  auto end = start ? map.upper_bound(*start) : map.end();
  while (end != map.begin()) {
    auto first = map.lower_bound(std::prev(end)->first);
    if (!emit(first, end)) return;
    end = first;
  }
}

}  // namespace

void FieldIndex::ForEachNumber(bool descending, std::optional<double> start,
                               const std::function<bool(double, const PointId&)>& fn) const {
  if (schema_ == PayloadSchemaType::kDatetime) {
    // Microseconds since the epoch; start_from rounds to the microsecond
    // towards the walk (ascending: up, descending: down).
    std::optional<int64_t> from;
    if (start) {
      const double s = descending ? std::floor(*start) : std::ceil(*start);
      if (s > 9.2e18) {
        if (!descending) return;
      } else if (s < -9.2e18) {
        if (descending) return;
      } else {
        from = static_cast<int64_t>(s);
      }
    }
    WalkOrdered(by_time_, descending, from, fn);
    return;
  }
  WalkOrdered(by_number_, descending, start, fn);
}

void FieldIndex::ForEachValue(
    const std::function<void(const MatchValue&, const std::unordered_set<PointId, PointIdHash>&)>&
        fn) const {
  for (const auto& [canonical, ids] : by_value_) {
    if (canonical.empty()) continue;
    MatchValue v;
    if (canonical[0] == 's') {
      v = canonical.substr(1);
    } else if (canonical[0] == 'b') {
      v = canonical == "b1";
    } else {
      const double d = std::strtod(canonical.c_str() + 1, nullptr);
      if (d != std::floor(d) || std::fabs(d) > 9.2e18) continue;  // facets count integers
      v = static_cast<int64_t>(d);
    }
    fn(v, ids);
  }
}

size_t FieldIndex::CountPoints(PayloadSchemaType type) const {
  size_t n = 0;
  if (type == PayloadSchemaType::kGeo) {
    for (const auto& [id, fv] : values_) n += fv.geo.empty() ? 0 : 1;
    return n;
  }
  for (const auto& [id, fv] : values_) {
    for (const auto& v : fv.values) {
      bool match = false;
      switch (type) {
        case PayloadSchemaType::kKeyword:
        case PayloadSchemaType::kUuid:
        case PayloadSchemaType::kText:
          match = std::holds_alternative<std::string>(v);
          break;
        case PayloadSchemaType::kDatetime: {
          const auto* str = std::get_if<std::string>(&v);
          match = str != nullptr && datetime::ParseMicros(*str).has_value();
          break;
        }
        case PayloadSchemaType::kInteger:
          match = std::holds_alternative<int64_t>(v);
          break;
        case PayloadSchemaType::kFloat: {
          double d;
          match = IsNumber(v, &d);
          break;
        }
        case PayloadSchemaType::kBool:
          match = std::holds_alternative<bool>(v);
          break;
        case PayloadSchemaType::kGeo:
          break;  // counted above
      }
      if (match) {
        ++n;
        break;
      }
    }
  }
  return n;
}

std::optional<FilterCandidates> IndexedCandidates(const Filter& filter,
                                                  const FilterFields& fields) {
  std::optional<FilterCandidates> best;
  bool best_exact_condition = false;
  for (const Condition& c : filter.must) {
    FilterCandidates cand;
    bool narrowed = false, exact_condition = false;
    if (c.kind == Condition::Kind::kHasId) {
      cand.ids = c.ids;
      narrowed = true;
    } else if (c.kind == Condition::Kind::kNested) {
      if (c.filter != nullptr) {
        if (auto sub = IndexedCandidates(*c.filter, fields)) {
          cand = std::move(*sub);
          narrowed = true;
          exact_condition = cand.exact;
        }
      }
    } else if (const FieldIndex* f = fields.Get(c.key)) {
      narrowed = f->Candidates(c, &cand.ids, &exact_condition);
      cand.all_exist = narrowed;
    }
    if (narrowed && (!best || cand.ids.size() < best->ids.size())) {
      best = std::move(cand);
      best_exact_condition = exact_condition;
    }
  }
  if (best) {
    std::sort(best->ids.begin(), best->ids.end());
    best->ids.erase(std::unique(best->ids.begin(), best->ids.end()), best->ids.end());
    best->exact = best_exact_condition && filter.must.size() == 1 && filter.should.empty() &&
                  filter.must_not.empty();
  }
  return best;
}

// ---- PayloadChangeLog ----

void PayloadChangeLog::Append(uint64_t version, const PointId& id,
                              std::shared_ptr<const std::string> payload) {
  bytes_ += payload ? payload->size() : 0;
  changes_.push_back(Change{version, id, std::move(payload)});
  while (!changes_.empty() && (changes_.size() > max_changes_ || bytes_ > max_bytes_)) {
    // Drop whole versions, so that covered_from_ stays exact.
    const uint64_t v = changes_.front().version;
    while (!changes_.empty() && changes_.front().version == v) {
      bytes_ -= changes_.front().payload ? changes_.front().payload->size() : 0;
      changes_.pop_front();
    }
    covered_from_ = v;
  }
}

bool PayloadChangeLog::Replay(uint64_t from, uint64_t to,
                              const std::function<void(const Change&)>& fn) const {
  if (from >= to) return true;
  if (from < covered_from_) return false;
  // Versions increase along the deque: binary search the first one > from.
  auto it = std::upper_bound(changes_.begin(), changes_.end(), from,
                             [](uint64_t v, const Change& c) { return v < c.version; });
  for (; it != changes_.end() && it->version <= to; ++it) fn(*it);
  return true;
}

// ---- FieldCache ----

bool FieldCache::CatchUpLocked(CachedField* field, uint64_t version, const PayloadChangeLog& log) {
  if (field->version >= version) return true;
  const bool ok = log.Replay(field->version, version, [&](const PayloadChangeLog::Change& c) {
    field->index.Set(c.id, c.payload.get());
  });
  if (!ok) return false;
  field->version = version;
  return true;
}

void FieldCache::TouchLocked(const std::string& key, Entry& e) {
  lru_.splice(lru_.begin(), lru_, e.lru);
  const size_t now = e.field->index.MemoryBytes();
  bytes_ = bytes_ - e.bytes + now;
  e.bytes = now;
  (void)key;
}

std::shared_ptr<CachedField> FieldCache::Get(const std::string& key, uint64_t version,
                                             const PayloadChangeLog& log) {
  MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return nullptr;
  Entry& e = it->second;
  if (e.field->version > version || !CatchUpLocked(e.field.get(), version, log)) {
    // Built from a newer snapshot than this reader's state (a reader raced
    // a writer), or too old for the log: this reader builds its own.
    if (e.field->version < version) {
      bytes_ -= e.bytes;
      lru_.erase(e.lru);
      entries_.erase(it);
    }
    return nullptr;
  }
  TouchLocked(key, e);
  std::shared_ptr<CachedField> out = e.field;
  EvictLocked();
  return out;
}

bool FieldCache::CatchUp(CachedField* field, uint64_t version, const PayloadChangeLog& log) {
  MutexLock lock(&mu_);
  return CatchUpLocked(field, version, log);
}

void FieldCache::Insert(std::shared_ptr<CachedField> field) {
  MutexLock lock(&mu_);
  const std::string key = field->index.key();
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    if (it->second.field->index.schema() == field->index.schema() &&
        it->second.field->version >= field->version) {
      return;
    }
    bytes_ -= it->second.bytes;
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  lru_.push_front(key);
  Entry e;
  e.field = std::move(field);
  e.bytes = e.field->index.MemoryBytes();
  e.lru = lru_.begin();
  bytes_ += e.bytes;
  entries_.emplace(key, std::move(e));
  EvictLocked();
}

void FieldCache::EvictLocked() {
  // Evicts the least recently used key that is not pinned (declared payload
  // indexes stay), never the most recently used one even if it alone
  // exceeds the bytes.
  while (entries_.size() > 1 && (entries_.size() > max_fields_ || bytes_ > max_bytes_)) {
    auto victim = lru_.end();
    for (auto it = std::prev(lru_.end()); it != lru_.begin(); --it) {
      if (pinned_.count(*it) == 0) {
        victim = it;
        break;
      }
    }
    if (victim == lru_.end()) return;
    auto e = entries_.find(*victim);
    bytes_ -= e->second.bytes;
    entries_.erase(e);
    lru_.erase(victim);
  }
}

void FieldCache::Pin(const std::string& key, bool pinned) {
  MutexLock lock(&mu_);
  if (pinned) {
    pinned_.insert(key);
  } else {
    pinned_.erase(key);
  }
}

void FieldCache::Erase(const std::string& key) {
  MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

size_t FieldCache::MemoryBytes() const {
  MutexLock lock(&mu_);
  return bytes_;
}

size_t FieldCache::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

// ---- evaluation ----

namespace {

const FieldValues* Lookup(const FilterFields& fields, const std::string& key, const PointId& id) {
  const FieldIndex* f = fields.Get(key);
  return f == nullptr ? nullptr : f->Find(id);
}

bool ConditionHolds(const Condition& c, const FilterFields& fields, const PointId& id);

}  // namespace

bool MatchesFilter(const Filter& filter, const FilterFields& fields, const PointId& id) {
  for (const Condition& c : filter.must) {
    if (!ConditionHolds(c, fields, id)) return false;
  }
  for (const Condition& c : filter.must_not) {
    if (ConditionHolds(c, fields, id)) return false;
  }
  if (!filter.should.empty()) {
    size_t need = filter.min_should == 0 ? 1 : filter.min_should;
    size_t held = 0;
    for (const Condition& c : filter.should) {
      if (ConditionHolds(c, fields, id) && ++held >= need) break;
    }
    if (held < need) return false;
  }
  return true;
}

double GeoDistanceMeters(const GeoPoint& a, const GeoPoint& b) {
  constexpr double kEarthRadius = 6371008.8;
  constexpr double kRad = 3.14159265358979323846 / 180.0;
  const double dlat = (b.lat - a.lat) * kRad, dlon = (b.lon - a.lon) * kRad;
  const double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
                   std::cos(a.lat * kRad) * std::cos(b.lat * kRad) * std::sin(dlon / 2) *
                       std::sin(dlon / 2);
  return 2 * kEarthRadius * std::asin(std::min(1.0, std::sqrt(h)));
}

namespace {

// Ray casting on the (lon, lat) plane; a closed ring (first == last).
bool InRing(const std::vector<GeoPoint>& ring, const GeoPoint& p) {
  bool inside = false;
  for (size_t i = 0, j = ring.size() - 1; i < ring.size(); j = i++) {
    const GeoPoint& a = ring[i];
    const GeoPoint& b = ring[j];
    if ((a.lat > p.lat) != (b.lat > p.lat) &&
        p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon) {
      inside = !inside;
    }
  }
  return inside;
}

bool GeoHolds(const Condition& c, const GeoPoint& p) {
  switch (c.kind) {
    case Condition::Kind::kGeoRadius:
      return !c.geo.empty() && GeoDistanceMeters(c.geo[0], p) <= c.geo_radius;
    case Condition::Kind::kGeoBoundingBox: {
      if (c.geo.size() < 2) return false;
      const GeoPoint& tl = c.geo[0];
      const GeoPoint& br = c.geo[1];
      const bool lon_ok = tl.lon <= br.lon ? (p.lon >= tl.lon && p.lon <= br.lon)
                                           : (p.lon >= tl.lon || p.lon <= br.lon);  // antimeridian
      return lon_ok && p.lat <= tl.lat && p.lat >= br.lat;
    }
    case Condition::Kind::kGeoPolygon: {
      if (c.geo.size() < 4 || !InRing(c.geo, p)) return false;
      for (const auto& hole : c.geo_holes) {
        if (hole.size() >= 4 && InRing(hole, p)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

bool ConditionHolds(const Condition& c, const FilterFields& fields, const PointId& id) {
  using K = Condition::Kind;
  switch (c.kind) {
    case K::kHasId:
      for (const PointId& x : c.ids) {
        if (x == id) return true;
      }
      return false;
    case K::kNested:
      return c.filter == nullptr || MatchesFilter(*c.filter, fields, id);
    case K::kHasVector:
      return fields.has_vector && fields.has_vector(id, c.key);
    default:
      break;
  }
  const FieldValues* fv = Lookup(fields, c.key, id);
  switch (c.kind) {
    case K::kIsEmpty:
      // As Qdrant: missing, null or [] (but not [null], {} or "").
      return fv == nullptr || fv->items == 0;
    case K::kIsNull:
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        if (std::holds_alternative<std::monostate>(v)) return true;
      }
      return false;
    case K::kMatchValue:
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        if (ScalarEqualsMatch(v, c.value)) return true;
      }
      return false;
    case K::kMatchAny:
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        for (const auto& m : c.any) {
          if (ScalarEqualsMatch(v, m)) return true;
        }
      }
      return false;
    case K::kMatchExcept:
      // As Qdrant: true when the field holds some value outside the list
      // (a missing field does not match).
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        bool listed = false;
        for (const auto& m : c.any) listed = listed || ScalarEqualsMatch(v, m);
        if (!listed) return true;
      }
      return false;
    case K::kMatchText:
    case K::kMatchPhrase:
    case K::kMatchTextAny: {
      if (fv == nullptr) return false;
      const auto* text = std::get_if<std::string>(&c.value);
      if (text == nullptr) return false;
      if (const FieldIndex* f = fields.Get(c.key); f != nullptr && f->text()) {
        const std::vector<std::string> words = TextWords(*text);
        for (const auto& v : fv->values) {
          const auto* stored = std::get_if<std::string>(&v);
          if (stored != nullptr && TextMatches(c.kind, words, *stored)) return true;
        }
        return false;
      }
      for (const auto& v : fv->values) {
        const auto* stored = std::get_if<std::string>(&v);
        if (stored == nullptr) continue;
        if (c.kind != K::kMatchTextAny) {
          if (stored->find(*text) != std::string::npos) return true;
          continue;
        }
        // Any word of the query (split on ASCII whitespace) as a substring.
        size_t pos = 0;
        while (pos < text->size()) {
          size_t start = text->find_first_not_of(" \t\n\r\f\v", pos);
          if (start == std::string::npos) break;
          size_t end = text->find_first_of(" \t\n\r\f\v", start);
          if (end == std::string::npos) end = text->size();
          if (stored->find(std::string_view(*text).substr(start, end - start)) !=
              std::string::npos) {
            return true;
          }
          pos = end;
        }
      }
      return false;
    }
    case K::kValuesCount: {
      const double n = fv == nullptr ? 0 : static_cast<double>(fv->items);
      if (c.gt && !(n > *c.gt)) return false;
      if (c.gte && !(n >= *c.gte)) return false;
      if (c.lt && !(n < *c.lt)) return false;
      if (c.lte && !(n <= *c.lte)) return false;
      return true;
    }
    case K::kNestedObjects: {
      if (fv == nullptr || c.filter == nullptr) return false;
      // Each object is filtered on its own: the inner keys are relative to
      // it. Field indexes of one entry each, built per object (nested
      // arrays are small; nothing is cached).
      std::set<std::string> inner_keys;
      CollectFilterKeys(*c.filter, &inner_keys);
      const PointId self = PointId::Num(0);
      for (const std::string& object : fv->objects) {
        FilterFields inner;
        for (const std::string& k : inner_keys) {
          auto f = std::make_shared<CachedField>(k);
          f->index.Set(self, &object);
          inner.Add(std::move(f));
        }
        if (MatchesFilter(*c.filter, inner, self)) return true;
      }
      return false;
    }
    case K::kGeoRadius:
    case K::kGeoBoundingBox:
    case K::kGeoPolygon:
      if (fv == nullptr) return false;
      for (const GeoPoint& p : fv->geo) {
        if (GeoHolds(c, p)) return true;
      }
      return false;
    case K::kDatetimeRange:
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        const auto* text = std::get_if<std::string>(&v);
        if (text == nullptr) continue;
        const std::optional<int64_t> t = datetime::ParseMicros(*text);
        if (!t) continue;
        if (c.time_gt && !(*t > *c.time_gt)) continue;
        if (c.time_gte && !(*t >= *c.time_gte)) continue;
        if (c.time_lt && !(*t < *c.time_lt)) continue;
        if (c.time_lte && !(*t <= *c.time_lte)) continue;
        return true;
      }
      return false;
    case K::kRange:
      if (fv == nullptr) return false;
      for (const auto& v : fv->values) {
        double x;
        if (!NumberOf(v, &x)) continue;
        if (c.gt && !(x > *c.gt)) continue;
        if (c.gte && !(x >= *c.gte)) continue;
        if (c.lt && !(x < *c.lt)) continue;
        if (c.lte && !(x <= *c.lte)) continue;
        return true;
      }
      return false;
    default:
      return false;
  }
}

}  // namespace

}  // namespace qvec::engine
