// The engine's implementation of qvec::Collection.
#ifndef QVEC_ENGINE_COLLECTION_IMPL_H_
#define QVEC_ENGINE_COLLECTION_IMPL_H_

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/build_pool.h"
#include "engine/engine_log.h"
#include "engine/payload_index.h"
#include "engine/rw_lock.h"
#include "index/calibration.h"
#include "index/flat_index.h"
#include "index/ivf_index.h"
#include "index/quantizer.h"
#include "qvec/collection.h"
#include "storage/store.h"

namespace qvec::engine {

// Concurrency and consistency
// ---------------------------
// `write_mu_` is the collection's serialization point: every mutation
// (upsert, delete by ids or by filter, payload update, the index build's
// steps) runs under it, decides what it changes from the state it sees there,
// writes one RocksDB batch, takes a storage snapshot and then, under the
// exclusive `state_mu_`, applies the batch to memory and publishes
// (version_ + 1, that snapshot). Since no other write of the collection can
// commit between its batch and its snapshot, snapshot and in-memory state
// describe the same committed sequence of writes.
//
// Readers take `state_mu_` shared only for in-memory work (id lookups,
// filters, the int8 scan) and leave with the snapshot of the state they saw;
// every RocksDB read they then make (originals for rescoring, payloads,
// vectors) reads that snapshot, without any lock. So one answer reflects one
// committed state: a record's payload and vector come from the same write,
// scores match the returned vectors, hits pass the filter.
//
// Filters read payload field indexes from `field_cache_` (see
// payload_index.h); writers only append to `payload_log_`.
//
// Index lifecycle: a collection starts with an exact flat index; once it
// holds `ivf_threshold` points a background build (on the database's
// BuildPool) trains IVF and builds the new index while searches go on against
// the old one; writes made meanwhile are tracked and replayed before the new
// index is swapped in. Growth by 4x or badly imbalanced lists trigger a
// retrain the same way. Every stored code carries the generation of the index
// it was encoded for; on open, codes of another generation (left by a crash
// during a rebuild) are re-encoded from their originals.
class CollectionImpl final : public Collection,
                             public std::enable_shared_from_this<CollectionImpl> {
 public:
  // Creates the in-memory collection; Load() fills it from storage. `builds`
  // (nullptr: no background builds) must outlive the collection's Close().
  static StatusOr<std::shared_ptr<CollectionImpl>> Create(storage::Store* store, uint32_t cid,
                                                          std::string name, CollectionConfig config,
                                                          BuildPool* builds,
                                                          std::shared_ptr<Logger> logger);
  ~CollectionImpl() override;

  // Rebuilds the in-memory state from stored calibration, IVF model and
  // codes. Derived data that is damaged (codes, calibration, IVF model) is
  // rebuilt from the originals; a point whose original is damaged is moved
  // to quarantine (see docs/ARCHITECTURE.md). Fails only on storage errors.
  [[nodiscard]] Status Load();
  // Queues a background (re)training when the collection needs one. Called
  // after writes and, by the database, after Load(): a build that a crash
  // interrupted (or that never started) resumes then.
  void MaybeStartTraining();
  // After a drop every call answers NotFound and background work stops.
  void MarkDropped();
  // The database is closing: background work stops, the storage snapshot is
  // released, and every later call answers FailedPrecondition.
  void Close();
  uint32_t id() const { return cid_; }

  const std::string& name() const override { return name_; }
  const CollectionConfig& config() const override { return config_; }
  Status Upsert(std::span<const Point> points) override;
  StatusOr<size_t> Delete(std::span<const PointId> ids) override;
  StatusOr<size_t> DeleteByFilter(const Filter& filter) override;
  Status SetPayload(std::span<const PointId> ids, std::string_view payload,
                    bool overwrite) override;
  StatusOr<std::vector<Record>> Get(std::span<const PointId> ids, bool with_payload,
                                    bool with_vector, size_t max_result_bytes) override;
  StatusOr<size_t> Count(const Filter* filter) override;
  StatusOr<ScrollPage> Scroll(const ScrollRequest& request) override;
  StatusOr<std::vector<ScoredPoint>> Search(const SearchRequest& request) override;
  StatusOr<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      std::span<const SearchRequest> requests) override;
  Status Optimize() override;
  StatusOr<CollectionInfo> Info() override;
  IndexInfo::State index_state() const override { return state_.load(); }

 private:
  CollectionImpl(storage::Store* store, uint32_t cid, std::string name, CollectionConfig config,
                 BuildPool* builds, std::shared_ptr<Logger> logger);

  // What a reader leaves the state lock with: the storage snapshot of the
  // state it saw.
  struct ReadView {
    std::shared_ptr<const storage::Snapshot> snapshot;
    uint64_t version = 0;
  };
  // The raw result of one search's in-memory part.
  struct Candidates {
    std::vector<index::Hit> hits;  // approximate scores unless `exact`
    std::vector<PointId> ids;      // of hits, in order
    bool exact = false;            // scores final (no rescoring needed)
    // ignore_quantization: the float scan runs outside the lock over these.
    bool float_scan = false;
    std::optional<std::unordered_set<PointId, PointIdHash>> allowed;
  };

  Status CheckAlive() const;
  Status ValidateSearch(const SearchRequest& r) const;
  // Field indexes for every payload key `filter` names, built at a snapshot
  // where missing (no lock held; reads storage). They are brought up to the
  // reader's version by ResolveFilterLocked.
  StatusOr<FilterFields> PrepareFilter(const Filter& filter);
  // Brings `prepared` up to version_ (from the cache when it holds fresher
  // fields). False when the change log no longer covers a field: the caller
  // prepares again. Requires state_mu_ (shared) or write_mu_.
  bool ResolveFilterLocked(const Filter& filter, const FilterFields& prepared, FilterFields* out);
  // PrepareFilter + ResolveFilterLocked under write_mu_ (held by the caller),
  // building in place as a last resort.
  StatusOr<FilterFields> FilterUnderWriteLock(const Filter& filter);
  // Runs fn(fields) under the shared state lock, fields[i] being the
  // resolved field indexes of filters[i] (nullptr for no filter).
  template <typename Fn>
  Status WithReadLock(const std::vector<const Filter*>& filters, Fn&& fn);
  bool Passes(const Filter& filter, const FilterFields& fields, uint64_t label) const {
    return MatchesFilter(filter, fields, label_to_id_[label]);
  }
  // Requires state_mu_.
  ReadView ViewLocked() const { return ReadView{snapshot_, version_}; }
  // The index's parameters for request `r`; requires state_mu_.
  index::IvfSearchParams IndexParams(const SearchRequest& r) const;
  // Hits the index returns for `r`: k * oversampling when rescoring.
  size_t CandidateCount(const SearchRequest& r) const;
  // The in-memory part of a search; requires state_mu_ held shared.
  StatusOr<Candidates> SearchLocked(const SearchRequest& r, const float* query,
                                    const FilterFields* fields);
  // Rescoring, offset, threshold, payloads and vectors, from `view`.
  StatusOr<std::vector<ScoredPoint>> FinishSearch(const SearchRequest& r, const float* query,
                                                  Candidates c, const ReadView& view,
                                                  size_t* budget);
  StatusOr<std::vector<std::pair<PointId, float>>> ExactFloatSearch(const SearchRequest& r,
                                                                    const float* query, size_t k,
                                                                    const Candidates& c,
                                                                    const ReadView& view);
  // Fills payloads / vectors of results from `view`; a point absent there
  // (which a consistent view cannot have) leaves found[i] false. `budget`
  // (nullptr = none) is the answer size still allowed (see
  // SearchRequest::max_result_bytes); it is reduced by what is read, and
  // OutOfRange is returned beyond it.
  Status FillRecords(const std::vector<PointId>& ids, bool with_payload, bool with_vector,
                     const ReadView& view, size_t* budget,
                     std::vector<std::optional<std::string>>* payloads,
                     std::vector<std::optional<std::vector<float>>>* vectors,
                     std::vector<bool>* found);
  // Commits `batch` and applies it: `apply(version)` runs under the
  // exclusive state lock; then (version, snapshot) is published. Requires
  // write_mu_.
  Status Commit(storage::WriteBatch* batch, const std::function<void(uint64_t)>& apply);
  // Deletes the points with `labels` (write + apply). Requires write_mu_.
  StatusOr<size_t> DeleteLabelsLocked(const std::vector<uint64_t>& labels);
  // Applies a committed deletion of `labels` to the in-memory state.
  void ApplyDelete(const std::vector<uint64_t>& labels, uint64_t version);
  uint64_t AllocateLabel(std::vector<uint64_t>* reserved);
  // The quantization report, re-measured on a sample of stored originals
  // when the collection size moved by more than 10%.
  QualityReport Quality(size_t points);

  // ---- the vector index (collection_index.cc) ----
  // For calibrated granularities: a quantizer calibrated on `vectors`
  // (preprocessed, size n * dim).
  StatusOr<index::Quantizer> CalibratedQuantizer(const float* vectors, size_t n) const;
  // The quantizer of the active index; nullptr before a calibrated collection
  // sees its first batch. Requires write_mu_ or state_mu_.
  const index::Quantizer* ActiveQuantizer() const;
  // Encodes preprocessed `vector` for `ivf` (or the flat index when null) as a
  // stored codes value: header (label, generation, list) + blob. `list`, if
  // given, is the vector's IVF list already assigned by the caller (batch
  // assignment); otherwise `ivf` assigns it.
  Status EncodeValue(uint64_t label, const float* vector, const index::Quantizer& quantizer,
                     const index::IvfIndex* ivf, uint32_t generation, std::string* value,
                     std::optional<uint32_t> list = std::nullopt) const;
  // Adds a stored codes value to the active index; requires both locks.
  Status AddValueToIndex(std::string_view value);
  void RemoveFromIndex(uint64_t label);
  // True when the collection should (re)train: flat past ivf_threshold, grown
  // 4x since training, or lists badly imbalanced. Takes state_mu_ shared.
  bool NeedsTraining();
  // Trains IVF on the current points and swaps it in; the body of the
  // background build and of Optimize().
  Status TrainAndSwap();
  // The background build task: trains while needed, records failures and
  // backs off before the next attempt.
  void RunBackgroundBuild();
  // Load(): re-encodes `repair` (point key, label) from their originals,
  // quarantining points whose original is unusable.
  Status RepairPoints(const std::vector<std::pair<std::string, uint64_t>>& repair);
  // Moves a damaged point's stored data to quarantine (best effort).
  void Quarantine(std::string_view key, const std::string& reason);

  storage::Store* const store_;
  const uint32_t cid_;
  const std::string name_;
  const CollectionConfig config_;
  // Validates and normalizes vectors; needs no calibration, so it exists
  // from the start.
  const index::Preprocessor preprocessor_;
  const index::QuantizationConfig quant_config_;
  BuildPool* const builds_;
  const EngineLog log_;
  std::atomic<bool> dropped_{false};
  std::atomic<bool> closed_{false};

  // The serialization point of all writes (see the comment at the top).
  std::mutex write_mu_;
  // Guards the in-memory state below; mutated only while write_mu_ is held
  // too, so a writer may read it under write_mu_ alone.
  mutable RwLock state_mu_;
  std::map<PointId, uint64_t> id_to_label_;  // ordered: Scroll walks it
  std::vector<PointId> label_to_id_;         // index = label
  std::vector<bool> label_used_;
  std::vector<uint64_t> free_labels_;
  // Exactly one of flat_ / ivf_ is set once a quantizer exists; neither
  // before a calibrated collection receives its first batch.
  std::unique_ptr<index::FlatIndex> flat_;
  std::unique_ptr<index::IvfIndex> ivf_;
  uint32_t generation_ = 0;                            // of the active index
  uint64_t version_ = 0;                               // committed writes applied
  std::shared_ptr<const storage::Snapshot> snapshot_;  // storage at version_
  PayloadChangeLog payload_log_;
  size_t quarantined_ = 0;

  // Thread-safe on its own.
  FieldCache field_cache_;

  // ---- guarded by write_mu_ ----
  uint32_t next_generation_ = 1;  // never reused, also across failed builds
  // While an index build runs, labels written meanwhile.
  bool tracking_ = false;
  std::unordered_set<uint64_t> changed_during_build_;

  std::atomic<IndexInfo::State> state_{IndexInfo::State::kFlat};
  std::atomic<size_t> writes_since_health_check_{0};
  // One build at a time (background or Optimize).
  std::atomic<bool> training_{false};
  std::atomic<bool> stop_{false};

  std::mutex build_status_mu_;  // guards the build status below
  std::string last_build_error_;
  size_t build_failures_ = 0;
  std::chrono::steady_clock::time_point next_build_attempt_{};

  std::mutex quality_mu_;  // guards quality_ and quality_points_
  QualityReport quality_;
  size_t quality_points_ = 0;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_IMPL_H_
