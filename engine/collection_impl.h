// The engine's implementation of qvec::Collection.
#ifndef QVEC_ENGINE_COLLECTION_IMPL_H_
#define QVEC_ENGINE_COLLECTION_IMPL_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "engine/payload_index.h"
#include "engine/rw_lock.h"
#include "index/calibration.h"
#include "index/flat_index.h"
#include "index/ivf_index.h"
#include "index/quantizer.h"
#include "qvec/collection.h"
#include "storage/store.h"

namespace qvec::engine {

// Locking: `write_mu_` serializes all mutations (storage write, then apply);
// `state_mu_` guards the in-memory state (id map, vector index, payload
// index): writers hold it exclusively only while applying a committed batch,
// searches hold it shared. Every mutation of in-memory state holds both, so a
// writer may read the state under `write_mu_` alone.
//
// Index lifecycle: a collection starts with an exact flat index; once it
// holds `ivf_threshold` points a background thread trains IVF (k-means on a
// sample of the float originals) and builds the new index while searches go
// on against the old one; writes made meanwhile are tracked and replayed
// before the new index is swapped in atomically. Growth by 4x or badly
// imbalanced lists trigger a retrain the same way.
//
// Every stored code carries the generation of the index it was encoded for;
// generation 0 is the flat index. On open, codes of another generation (left
// by a crash during a rebuild) are re-encoded from their originals.
class CollectionImpl final : public Collection {
 public:
  // Creates the in-memory collection; Load() fills it from storage.
  static StatusOr<std::shared_ptr<CollectionImpl>> Create(storage::Store* store, uint32_t cid,
                                                          std::string name, CollectionConfig config,
                                                          bool background_indexing);
  ~CollectionImpl() override;

  // Rebuilds the in-memory state from stored calibration, IVF model and codes.
  [[nodiscard]] Status Load();
  // Starts a background (re)training when the collection needs one. Called
  // after writes and, by the database, after Load(): a build that a crash
  // interrupted (or that never started) resumes then. Takes the locks itself.
  void MaybeStartTraining();
  // After a drop every call answers NotFound and background work stops.
  void MarkDropped();
  uint32_t id() const { return cid_; }

  const std::string& name() const override { return name_; }
  const CollectionConfig& config() const override { return config_; }
  Status Upsert(std::span<const Point> points) override;
  StatusOr<size_t> Delete(std::span<const PointId> ids) override;
  StatusOr<size_t> DeleteByFilter(const Filter& filter) override;
  Status SetPayload(std::span<const PointId> ids, std::string_view payload,
                    bool overwrite) override;
  StatusOr<std::vector<Record>> Get(std::span<const PointId> ids, bool with_payload,
                                    bool with_vector) override;
  StatusOr<size_t> Count(const Filter* filter) override;
  StatusOr<ScrollPage> Scroll(const ScrollRequest& request) override;
  StatusOr<std::vector<ScoredPoint>> Search(const SearchRequest& request) override;
  StatusOr<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      std::span<const SearchRequest> requests) override;
  Status Optimize() override;
  StatusOr<CollectionInfo> Info() override;

 private:
  CollectionImpl(storage::Store* store, uint32_t cid, std::string name, CollectionConfig config,
                 index::Quantizer preprocessor, bool background_indexing);

  Status CheckAlive() const;
  Status ValidateSearch(const SearchRequest& r) const;
  // Indexes every payload key that `filter` names and is not indexed yet.
  Status EnsureFilterFields(const Filter& filter);
  // True when the point with `label` passes `filter`; requires state_mu_.
  bool Passes(const Filter& filter, uint64_t label) const;
  // The index's parameters for request `r`; requires state_mu_.
  index::IvfSearchParams IndexParams(const SearchRequest& r) const;
  // Turns raw (label, score) hits into results: offset, score threshold,
  // payloads and vectors. Requires state_mu_ held shared.
  StatusOr<std::vector<ScoredPoint>> Finalize(const SearchRequest& r,
                                              const std::vector<std::pair<uint64_t, float>>& hits);
  // Runs one search; requires state_mu_ held shared and filter fields indexed.
  StatusOr<std::vector<ScoredPoint>> SearchLocked(const SearchRequest& r);
  StatusOr<std::vector<std::pair<uint64_t, float>>> ExactFloatSearch(const SearchRequest& r,
                                                                     const float* query, size_t k);
  // Fills payloads / vectors of results from storage.
  Status FillRecords(const std::vector<PointId>& ids, bool with_payload, bool with_vector,
                     std::vector<std::optional<std::string>>* payloads,
                     std::vector<std::optional<std::vector<float>>>* vectors);
  // Applies a committed deletion of `labels` to the in-memory state.
  void ApplyDelete(const std::vector<uint64_t>& labels);
  uint64_t AllocateLabel(std::vector<uint64_t>* reserved);
  // The quantization report, re-measured on a sample of stored originals
  // when the collection size moved by more than 10%; requires state_mu_.
  QualityReport QualityLocked(size_t points);

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
  // background thread and of Optimize().
  Status TrainAndSwap();

  storage::Store* const store_;
  const uint32_t cid_;
  const std::string name_;
  const CollectionConfig config_;
  // Validates and normalizes vectors (per-vector config, same metric); needs
  // no calibration, so it exists from the start.
  const index::Quantizer preprocessor_;
  const index::QuantizationConfig quant_config_;
  const bool background_indexing_;
  std::atomic<bool> dropped_{false};

  std::mutex write_mu_;
  mutable RwLock state_mu_;
  std::map<PointId, uint64_t> id_to_label_;  // ordered: Scroll walks it
  std::vector<PointId> label_to_id_;         // index = label
  std::vector<bool> label_used_;
  std::vector<uint64_t> free_labels_;
  PayloadIndex payload_index_;

  // Exactly one of flat_ / ivf_ is set once a quantizer exists; neither
  // before a calibrated collection receives its first batch.
  std::unique_ptr<index::FlatIndex> flat_;
  std::unique_ptr<index::IvfIndex> ivf_;
  uint32_t generation_ = 0;       // of the active index
  uint32_t next_generation_ = 1;  // never reused, also across failed builds
  std::atomic<IndexInfo::State> state_{IndexInfo::State::kFlat};
  // While an index build runs, labels written meanwhile (guarded by write_mu_).
  bool tracking_ = false;
  std::unordered_set<uint64_t> changed_during_build_;
  std::atomic<size_t> writes_since_health_check_{0};

  std::mutex trainer_mu_;  // guards trainer_
  std::thread trainer_;
  std::atomic<bool> training_{false};
  std::atomic<bool> stop_{false};

  std::mutex quality_mu_;
  QualityReport quality_;
  size_t quality_points_ = 0;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_IMPL_H_
