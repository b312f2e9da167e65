// In-memory index of the payload fields that filters use, and filter
// evaluation against it. A field is indexed the first time a filter names it
// (built from stored payloads) and kept current by every write after that.
#ifndef QVEC_ENGINE_PAYLOAD_INDEX_H_
#define QVEC_ENGINE_PAYLOAD_INDEX_H_

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::engine {

// A scalar found in a payload: null, bool, integer, floating number, string.
using PayloadScalar = std::variant<std::monostate, bool, int64_t, double, std::string>;

// InvalidArgument unless `json` is one JSON object (as a payload must be).
[[nodiscard]] Status ValidatePayload(std::string_view json);

// The scalars at dotted path `key` of payload `json`; arrays along the path
// and at its end are flattened. `present` tells whether the key exists at all.
struct FieldValues {
  bool present = false;
  std::vector<PayloadScalar> values;
};
FieldValues ExtractField(std::string_view json, std::string_view key);

// Merges the keys of object `patch` into object `base` (both JSON object
// text); returns the merged object text.
[[nodiscard]] StatusOr<std::string> MergePayloads(std::string_view base, std::string_view patch);

// Not thread-safe: the collection guards it with its own lock.
class PayloadIndex {
 public:
  // Every payload key that `filter` names (recursively).
  static void CollectKeys(const Filter& filter, std::set<std::string>* keys);

  bool HasField(const std::string& key) const { return fields_.count(key) != 0; }
  // Starts indexing `key`; `for_each_payload` must call its argument with the
  // (label, payload) of every point that has a payload.
  void AddField(const std::string& key,
                const std::function<void(const std::function<void(uint64_t, std::string_view)>&)>&
                    for_each_payload);
  // Records the payload of `label` (empty = none) in every indexed field.
  void Update(uint64_t label, std::string_view payload);
  void Remove(uint64_t label);

  // True when the point (`label`, `id`) passes `filter`. Every key that the
  // filter names must be indexed (see AddField).
  bool Matches(const Filter& filter, uint64_t label, const PointId& id) const;

  size_t MemoryBytes() const;

 private:
  struct Field {
    std::unordered_map<uint64_t, FieldValues> by_label;
  };
  bool ConditionHolds(const Condition& c, uint64_t label, const PointId& id) const;
  const FieldValues* Lookup(const std::string& key, uint64_t label) const;

  std::unordered_map<std::string, Field> fields_;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_PAYLOAD_INDEX_H_
