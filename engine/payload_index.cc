#include "engine/payload_index.h"

#include <simdjson.h>

#include <cmath>

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

void PayloadIndex::CollectKeys(const Filter& filter, std::set<std::string>* keys) {
  for (const auto* list : {&filter.must, &filter.should, &filter.must_not}) {
    for (const Condition& c : *list) {
      if (c.kind == Condition::Kind::kNested) {
        if (c.filter) CollectKeys(*c.filter, keys);
      } else if (c.kind != Condition::Kind::kHasId) {
        keys->insert(c.key);
      }
    }
  }
}

void PayloadIndex::AddField(
    const std::string& key,
    const std::function<void(const std::function<void(uint64_t, std::string_view)>&)>&
        for_each_payload) {
  Field field;
  for_each_payload([&](uint64_t label, std::string_view payload) {
    FieldValues fv = ExtractField(payload, key);
    if (fv.present) field.by_label.emplace(label, std::move(fv));
  });
  fields_[key] = std::move(field);
}

void PayloadIndex::Update(uint64_t label, std::string_view payload) {
  if (fields_.empty()) return;
  simdjson::dom::element doc;
  bool parsed = !payload.empty() &&
                ThreadParser().parse(payload.data(), payload.size()).get(doc) == simdjson::SUCCESS;
  for (auto& [key, field] : fields_) {
    field.by_label.erase(label);
    if (!parsed) continue;
    FieldValues fv;
    Walk(doc, key, &fv);
    if (fv.present) field.by_label.emplace(label, std::move(fv));
  }
}

void PayloadIndex::Remove(uint64_t label) {
  for (auto& [key, field] : fields_) field.by_label.erase(label);
}

const FieldValues* PayloadIndex::Lookup(const std::string& key, uint64_t label) const {
  auto f = fields_.find(key);
  if (f == fields_.end()) return nullptr;
  auto it = f->second.by_label.find(label);
  return it == f->second.by_label.end() ? nullptr : &it->second;
}

bool PayloadIndex::ConditionHolds(const Condition& c, uint64_t label, const PointId& id) const {
  using K = Condition::Kind;
  switch (c.kind) {
    case K::kHasId:
      for (const PointId& x : c.ids) {
        if (x == id) return true;
      }
      return false;
    case K::kNested:
      return c.filter == nullptr || Matches(*c.filter, label, id);
    default:
      break;
  }
  const FieldValues* fv = Lookup(c.key, label);
  switch (c.kind) {
    case K::kIsEmpty: {
      if (fv == nullptr) return true;
      for (const auto& v : fv->values) {
        if (!std::holds_alternative<std::monostate>(v)) return false;
      }
      return true;
    }
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

bool PayloadIndex::Matches(const Filter& filter, uint64_t label, const PointId& id) const {
  for (const Condition& c : filter.must) {
    if (!ConditionHolds(c, label, id)) return false;
  }
  for (const Condition& c : filter.must_not) {
    if (ConditionHolds(c, label, id)) return false;
  }
  if (!filter.should.empty()) {
    size_t need = filter.min_should == 0 ? 1 : filter.min_should;
    size_t held = 0;
    for (const Condition& c : filter.should) {
      if (ConditionHolds(c, label, id) && ++held >= need) break;
    }
    if (held < need) return false;
  }
  return true;
}

size_t PayloadIndex::MemoryBytes() const {
  size_t bytes = 0;
  for (const auto& [key, field] : fields_) {
    bytes += field.by_label.size() * (sizeof(uint64_t) + sizeof(FieldValues) + 32);
    for (const auto& [label, fv] : field.by_label)
      bytes += fv.values.capacity() * sizeof(PayloadScalar);
  }
  return bytes;
}

}  // namespace qvec::engine
