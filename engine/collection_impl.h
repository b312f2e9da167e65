// The engine's implementation of qvec::Collection.
#ifndef QVEC_ENGINE_COLLECTION_IMPL_H_
#define QVEC_ENGINE_COLLECTION_IMPL_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "engine/payload_index.h"
#include "engine/rw_lock.h"
#include "index/calibration.h"
#include "index/flat_index.h"
#include "index/quantizer.h"
#include "qvec/collection.h"
#include "storage/store.h"

namespace qvec::engine {

// Locking: `write_mu_` serializes all mutations (storage write, then apply);
// `state_mu_` guards the in-memory state (id map, vector index, payload
// index): writers hold it exclusively only while applying a committed batch,
// searches hold it shared. Every mutation of in-memory state holds both, so a
// writer may read the state under `write_mu_` alone.
class CollectionImpl final : public Collection {
 public:
  // Creates the in-memory collection; Load() fills it from storage.
  static StatusOr<std::shared_ptr<CollectionImpl>> Create(storage::Store* store, uint32_t cid,
                                                          std::string name,
                                                          CollectionConfig config);
  // Rebuilds the in-memory state from the stored calibration and codes (no
  // re-encoding).
  [[nodiscard]] Status Load();
  // After a drop every call answers NotFound.
  void MarkDropped() { dropped_.store(true); }
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
                 index::Quantizer preprocessor);

  // Installs `quantizer` and an empty index using it; requires both locks.
  void InstallQuantizer(index::Quantizer quantizer);
  // For calibrated granularities: a quantizer calibrated on `vectors`
  // (preprocessed, size n * dim).
  StatusOr<index::Quantizer> CalibratedQuantizer(const float* vectors, size_t n) const;

  Status CheckAlive() const;
  Status ValidateSearch(const SearchRequest& r) const;
  // Indexes every payload key that `filter` names and is not indexed yet.
  Status EnsureFilterFields(const Filter& filter);
  // Labels of points that pass `filter`; requires state_mu_ held.
  bool Passes(const Filter& filter, uint64_t label) const;
  // Runs one search; requires state_mu_ held shared and filter fields indexed.
  StatusOr<std::vector<ScoredPoint>> SearchLocked(const SearchRequest& r);
  StatusOr<std::vector<std::pair<uint64_t, float>>> ExactFloatSearch(const SearchRequest& r,
                                                                     const float* query,
                                                                     size_t k);
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

  storage::Store* const store_;
  const uint32_t cid_;
  const std::string name_;
  const CollectionConfig config_;
  // Validates and normalizes vectors (per-vector config, same metric); needs
  // no calibration, so it exists from the start.
  const index::Quantizer preprocessor_;
  index::QuantizationConfig quant_config_;
  std::atomic<bool> dropped_{false};

  std::mutex write_mu_;
  mutable RwLock state_mu_;
  std::map<PointId, uint64_t> id_to_label_;  // ordered: Scroll walks it
  std::vector<PointId> label_to_id_;         // index = label
  std::vector<bool> label_used_;
  std::vector<uint64_t> free_labels_;
  // Null until a calibrated collection receives its first batch.
  std::unique_ptr<index::FlatIndex> index_;
  PayloadIndex payload_index_;

  std::mutex quality_mu_;
  QualityReport quality_;
  size_t quality_points_ = 0;
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_IMPL_H_
