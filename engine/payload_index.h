// Filter evaluation over payloads, without making writers pay for what
// readers filter on.
//
// A filter condition on payload key K is answered from a FieldIndex of K:
// the values at K of every point that has them. Field indexes live in a
// bounded FieldCache, built from stored payloads the first time a filter
// names K (by the reader, from a storage snapshot, without holding a
// collection lock). Writers never update them: every write appends its
// payload changes to the collection's PayloadChangeLog (O(1) per point,
// whatever the number of keys filters have used), and a reader brings the
// field indexes it needs up to the version it reads by replaying the log.
// Entries the log no longer covers are rebuilt; the least recently used are
// evicted beyond the cache's bounds.
#ifndef QVEC_ENGINE_PAYLOAD_INDEX_H_
#define QVEC_ENGINE_PAYLOAD_INDEX_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "common/mutex.h"
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
  // Qdrant's count of values at the key: the length of an array (nulls and
  // objects in it included), 1 for a scalar or an object, 0 for null; summed
  // over the arrays along the path. is_empty holds when it is 0 and
  // values_count compares it.
  size_t items = 0;
  // Geo points at the key: objects with numeric "lon" and "lat" (alone or
  // in an array).
  std::vector<GeoPoint> geo;
  // The objects at the key (alone or in an array), as JSON text, for
  // nested conditions.
  std::vector<std::string> objects;
};
FieldValues ExtractField(std::string_view json, std::string_view key);

// Haversine distance in meters (mean Earth radius, as Qdrant's geo crate).
double GeoDistanceMeters(const GeoPoint& a, const GeoPoint& b);

// Merges the keys of object `patch` into object `base` (both JSON object
// text); returns the merged object text.
[[nodiscard]] StatusOr<std::string> MergePayloads(std::string_view base, std::string_view patch);

// The payload `stored` (JSON object text; empty = none) after `update`
// (validated by the caller).
[[nodiscard]] StatusOr<std::string> ApplyPayloadUpdate(std::string_view stored,
                                                       const PayloadUpdate& update);

// Qdrant's word tokenizer (as qvec approximates it): maximal runs of ASCII
// letters and digits and non-ASCII bytes (UTF-8 letters), ASCII lowercased.
std::vector<std::string> TextWords(std::string_view text);

// Every payload key that `filter` names (recursively).
void CollectFilterKeys(const Filter& filter, std::set<std::string>* keys);

// The values of one payload key, by point id, for the points that have it.
// Not thread-safe (FieldCache serializes its mutations).
class FieldIndex {
 public:
  // `schema`: the type of a declared payload index on the key, whose
  // inverted index is kept as well (value -> points and numbers in order;
  // words -> points for text; date-times in order for datetime), so that
  // Candidates() answers conditions on the key without looking at every
  // point. nullopt: values only.
  explicit FieldIndex(std::string key, std::optional<PayloadSchemaType> schema = std::nullopt)
      : key_(std::move(key)), schema_(schema), indexed_(schema.has_value()) {}
  const std::string& key() const { return key_; }
  bool indexed() const { return indexed_; }
  const std::optional<PayloadSchemaType>& schema() const { return schema_; }
  bool text() const { return schema_ == PayloadSchemaType::kText; }
  // Records the payload of `id` (nullptr or empty = none).
  void Set(const PointId& id, const std::string* payload);
  void Erase(const PointId& id);
  // nullptr when the point has no value at the key (or does not exist).
  const FieldValues* Find(const PointId& id) const;
  size_t MemoryBytes() const { return bytes_; }
  // Appends to `out` every point that may pass condition `c` on this key (a
  // superset of those that do) and returns true, when the inverted indexes
  // answer `c` (match value / any, range); false otherwise (not indexed, or
  // another kind of condition). `*exact` tells whether `out` holds exactly
  // the points that pass `c` (integers beyond 2^53 share postings).
  bool Candidates(const Condition& c, std::vector<PointId>* out, bool* exact) const;
  // Calls fn(value, points) for every value of a keyword, integer, uuid or
  // bool index (points: those holding it).
  void ForEachValue(
      const std::function<void(const MatchValue&, const std::unordered_set<PointId, PointIdHash>&)>&
          fn) const;
  // Points holding at least one value of `type` (payload_schema's count).
  size_t CountPoints(PayloadSchemaType type) const;
  // Calls fn(value, id) for every number at the key (indexed fields only;
  // for a datetime index the date-times as microseconds since the epoch),
  // ascending or descending from `start` (inclusive), equal values by id,
  // until fn returns false.
  void ForEachNumber(bool descending, std::optional<double> start,
                     const std::function<bool(double, const PointId&)>& fn) const;

 private:
  size_t EntryBytes(const FieldValues& fv) const;
  void Unindex(const PointId& id, const FieldValues& fv);
  std::string key_;
  std::optional<PayloadSchemaType> schema_;
  bool indexed_;
  // Text index: word -> points. Datetime index: microseconds -> points.
  std::unordered_map<std::string, std::unordered_set<PointId, PointIdHash>> by_word_;
  std::multimap<int64_t, PointId> by_time_;
  // Geo index: latitude -> (longitude, point), one entry per geo point.
  std::multimap<double, std::pair<double, PointId>> by_lat_;
  std::unordered_map<PointId, FieldValues, PointIdHash> values_;
  // When indexed_: canonical value ("s" + string, "n" + number, "b0"/"b1")
  // -> points, and number -> points.
  std::unordered_map<std::string, std::unordered_set<PointId, PointIdHash>> by_value_;
  std::multimap<double, PointId> by_number_;
  size_t bytes_ = 0;
};


// The payload changes of a collection in version order, bounded in entries
// and bytes (the oldest are dropped first). Version v is the collection's
// state after its v-th committed write. Not thread-safe: the collection
// appends under its exclusive state lock and readers replay under the
// shared one.
class PayloadChangeLog {
 public:
  struct Change {
    uint64_t version;
    PointId id;
    std::shared_ptr<const std::string> payload;  // nullptr: deleted or no payload
  };
  // Bounds. Default: 65536 changes, 32 MiB of payload text.
  explicit PayloadChangeLog(size_t max_changes = 65536, size_t max_bytes = size_t{32} << 20)
      : max_changes_(max_changes), max_bytes_(max_bytes) {}

  void Append(uint64_t version, const PointId& id, std::shared_ptr<const std::string> payload);
  // Calls fn for every change with version in (from, to], in order. False
  // (and no call) when changes after `from` were already dropped.
  bool Replay(uint64_t from, uint64_t to, const std::function<void(const Change&)>& fn) const;
  size_t MemoryBytes() const { return bytes_ + changes_.size() * sizeof(Change); }

 private:
  const size_t max_changes_;
  const size_t max_bytes_;
  std::deque<Change> changes_;
  size_t bytes_ = 0;
  // Every change with version > covered_from_ is in changes_.
  uint64_t covered_from_ = 0;
};

// A FieldIndex and the version it is valid at. Mutated only by FieldCache,
// under its mutex.
struct CachedField {
  explicit CachedField(std::string key, std::optional<PayloadSchemaType> schema = std::nullopt)
      : index(std::move(key), schema) {}
  FieldIndex index;
  uint64_t version = 0;
};

// Field indexes by key, each valid at a version. Thread-safe.
//
// Every reader of a field holds the collection lock that fixes the version
// it reads, and all holders at one moment read the same version (writers
// change it only under the exclusive lock). So bringing a field up to that
// version in place, under the cache's mutex, never changes a field that
// another thread is evaluating.
class FieldCache {
 public:
  // Bounds. Default: 64 keys, 64 MiB of field indexes.
  explicit FieldCache(size_t max_fields = 64, size_t max_bytes = size_t{64} << 20)
      : max_fields_(max_fields), max_bytes_(max_bytes) {}

  // The field of `key` brought up to `version` with `log`, or nullptr when
  // the cache has none the log can bring there (build one, Insert it).
  std::shared_ptr<CachedField> Get(const std::string& key, uint64_t version,
                                   const PayloadChangeLog& log);
  // Brings `field` (which may have been evicted meanwhile) up to `version`;
  // false when the log no longer reaches back to the field's version.
  bool CatchUp(CachedField* field, uint64_t version, const PayloadChangeLog& log);
  // Offers a field built at field->version; kept unless the cache holds a
  // newer one of the same kind (indexed or not) for the key. Evicts the
  // least recently used beyond the bounds, never a pinned key.
  void Insert(std::shared_ptr<CachedField> field);
  // Keeps `key` from eviction (a declared payload index) or releases it.
  void Pin(const std::string& key, bool pinned);
  // Forgets the field of `key` (its index was created or dropped: the next
  // reader builds the right kind).
  void Erase(const std::string& key);
  size_t MemoryBytes() const;
  size_t size() const;

 private:
  struct Entry {
    std::shared_ptr<CachedField> field;
    size_t bytes = 0;  // as last accounted in bytes_
    std::list<std::string>::iterator lru;
  };
  bool CatchUpLocked(CachedField* field, uint64_t version, const PayloadChangeLog& log)
      QVEC_REQUIRES(mu_);
  void TouchLocked(const std::string& key, Entry& e) QVEC_REQUIRES(mu_);
  void EvictLocked() QVEC_REQUIRES(mu_);

  const size_t max_fields_;
  const size_t max_bytes_;
  // Guards everything below and every CachedField's catching up (fields are
  // read without it once a reader holds them at its version).
  mutable Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ QVEC_GUARDED_BY(mu_);
  std::list<std::string> lru_ QVEC_GUARDED_BY(mu_);  // front = most recently used
  std::set<std::string> pinned_ QVEC_GUARDED_BY(mu_);
  size_t bytes_ QVEC_GUARDED_BY(mu_) = 0;
};

// The field indexes one filter evaluation uses, by key.
class FilterFields {
 public:
  void Add(std::shared_ptr<CachedField> field) {
    const std::string k = field->index.key();
    fields_[k] = std::move(field);
  }
  const FieldIndex* Get(const std::string& key) const {
    auto it = fields_.find(key);
    return it == fields_.end() ? nullptr : &it->second->index;
  }
  const std::map<std::string, std::shared_ptr<CachedField>>& all() const { return fields_; }

  // Whether a point carries a vector field (has_vector conditions); set by
  // the collection, valid while its state lock is held. Unset: false.
  std::function<bool(const PointId&, const std::string&)> has_vector;

 private:
  std::map<std::string, std::shared_ptr<CachedField>> fields_;
};

// Every point that may pass `filter` (sorted, distinct; a superset of those
// that do), when a condition of its `must` list is answered by an indexed
// field of `fields` or is has_id: the smallest such set. nullopt when no
// condition narrows it.
struct FilterCandidates {
  std::vector<PointId> ids;
  // Every id is a point of the version the fields are at (postings hold
  // only those); false when has_id named them.
  bool all_exist = false;
  // `ids` are exactly the points that pass `filter` (its only condition was
  // answered exactly by an index): no need to evaluate it again.
  bool exact = false;
};
std::optional<FilterCandidates> IndexedCandidates(const Filter& filter,
                                                  const FilterFields& fields);

// True when point `id` passes `filter`. Every key the filter names must be
// in `fields`.
bool MatchesFilter(const Filter& filter, const FilterFields& fields, const PointId& id);

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_PAYLOAD_INDEX_H_
