// The one interface every vector index implements, and the two functions that
// make them: CreateIndex (an empty index from its persisted state) and
// TrainIndex (a new index trained on a sample). The engine holds each vector
// field's index through VectorIndex only and never asks which concrete type
// it has; docs/ARCHITECTURE.md "Adding an index type" lists what a new one
// touches.
#ifndef QVEC_INDEX_VECTOR_INDEX_H_
#define QVEC_INDEX_VECTOR_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "index/pq4.h"
#include "index/quantizer.h"
#include "qvec/status.h"

namespace qvec::index {

struct Hit {
  uint64_t label;
  float score;  // Qdrant convention, see Metric
  bool operator==(const Hit&) const = default;
};

enum class IndexKind : uint8_t {
  kFlat = 0,  // exact scan of every code
  kIvf = 1,   // k-means inverted lists, nprobe lists scanned
};
std::string_view IndexKindName(IndexKind kind);  // "flat", "ivf"
// The kind stored as `byte`; nullopt for an unknown one.
std::optional<IndexKind> IndexKindFromByte(uint8_t byte);

// What a search asks of an index. Scores are the int8 estimates; rescoring
// with the float originals, thresholds and offsets are the caller's.
struct IndexSearchParams {
  // Hits to return, in [1, kMaxSearchK]. Default: 10.
  size_t k = 10;
  // Only labels for which (*filter)(label) is true are returned; k hits are
  // still returned if k allowed labels exist (an index that scans part of
  // its codes scans further). Default: none.
  const std::function<bool(uint64_t)>* filter = nullptr;
  // For indexes that scan part of their codes (IVF): lists to probe; 0 =
  // from target_recall. Ignored by exhaustive indexes. Default: 0.
  uint32_t nprobe = 0;
  // Recall@10 the automatic nprobe aims at, in (0, 1]. Default: 0.95.
  float target_recall = 0.95f;
  // Recall the caller's rescoring keeps of an exhaustive int8 scan (from the
  // field's rescore curve): with it target_recall is end to end (see
  // NprobeForRecall). 0 = target_recall applies to the int8 scan. Default: 0.
  float quantization_recall = 0;
  // Scan every code (exact int8 answer). Default: false.
  bool exhaustive = false;
};

// Size and health of an index.
struct IndexStats {
  IndexKind kind = IndexKind::kFlat;
  size_t size = 0;
  size_t memory_bytes = 0;
  // Partitioned indexes (IVF); zero for flat.
  uint32_t nlist = 0;
  size_t min_list = 0, median_list = 0, max_list = 0, empty_lists = 0;
  double imbalance = 0;  // largest list / mean list
  float objective = 0;   // k-means
  double training_seconds = 0;
  uint64_t trained_on_points = 0;  // collection size when trained (0 = untrained kind)
  // (nprobe, recall@10) measured at training.
  std::vector<std::pair<uint32_t, float>> recall_curve;
  // IVF 4-bit first pass ("none" without) and its (oversampling,
  // retention) curve (IvfModel::first_pass_curve).
  std::string first_pass = "none";
  std::vector<std::pair<float, float>> first_pass_curve;
  // Vectors per list (IVF); empty for flat.
  std::vector<uint32_t> list_sizes;
};

// Thread safety: const methods may run concurrently with each other;
// mutations (AddCode, Remove, ShrinkToFit) need external exclusive locking.
class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  // For persistence and reports; callers never branch on it (the policy
  // functions below do).
  virtual IndexKind kind() const = 0;
  virtual const Quantizer& quantizer() const = 0;
  // The slot each of n preprocessed vectors (n * dim floats) belongs to (an
  // IVF list; 0 for indexes without slots), written to slots[0..n).
  virtual void AssignSlots(const float* preprocessed, size_t n, uint32_t* slots) const = 0;
  // Slots are in [0, num_slots()).
  virtual uint32_t num_slots() const = 0;
  // Inserts the encoded vector `blob` (quantizer().Encode output, `size` ==
  // EncodedSize()) in `slot` under `label`, replacing any vector with that
  // label. InvalidArgument on a wrong size, slot or non-finite metadata.
  [[nodiscard]] virtual Status AddCode(uint64_t label, uint32_t slot, const uint8_t* blob,
                                       size_t size) = 0;
  // False if absent.
  virtual bool Remove(uint64_t label) = 0;
  virtual size_t size() const = 0;
  // Releases spare capacity (after a bulk build).
  virtual void ShrinkToFit() = 0;
  // True when Search reads every code (a selective filter is then no better
  // served by SearchSubset).
  virtual bool exhaustive() const = 0;

  // Best hits first (int8-estimated scores), at most params.k. Errors:
  // InvalidArgument for a bad query or params.
  [[nodiscard]] virtual StatusOr<std::vector<Hit>> Search(
      const float* query, const IndexSearchParams& params) const = 0;
  // nq queries (nq * dim floats); result i belongs to query i. Shares work
  // between queries where it can.
  [[nodiscard]] virtual StatusOr<std::vector<std::vector<Hit>>> SearchBatch(
      const float* queries, size_t nq, const IndexSearchParams& params) const = 0;
  // Exact int8 scan of the given labels only (unknown labels skipped;
  // params.filter still applies).
  [[nodiscard]] virtual StatusOr<std::vector<Hit>> SearchSubset(
      const float* query, const IndexSearchParams& params,
      const std::vector<uint64_t>& labels) const = 0;

  virtual IndexStats Stats() const = 0;
  // The slots' centroids (num_slots() * dim floats, preprocessed space), or
  // empty for an index without centroids (flat).
  virtual std::vector<float> SlotCentroids() const { return {}; }
};

// An empty index of `kind` for `quantizer`, from the state its TrainIndex
// produced (flat: no state). InvalidArgument/DataLoss for a bad state.
[[nodiscard]] StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(IndexKind kind,
                                                                 Quantizer quantizer,
                                                                 std::string_view state);

struct IndexTrainOptions {
  // IVF: lists; 0 = DefaultNlist(collection_size). Default: 0.
  uint32_t nlist = 0;
  // IVF: 4-bit first-pass codes (dimensions per sub-code as
  // IvfTrainOptions::first_pass_dsub = 0). Default: kNone.
  FirstPassKind first_pass = FirstPassKind::kNone;
  // Points the index is trained for (recorded for retraining decisions).
  uint64_t collection_size = 0;
  // Checked during training; once true, TrainIndex returns Aborted.
  const std::atomic<bool>* cancel = nullptr;
};

// Raw vectors TrainIndex wants in its sample for a collection of
// `collection_size` points (IVF: 256 per list, at least 20000; flat: only
// what calibration needs, 20000), never more than collection_size or
// kMaxTrainingSample.
inline constexpr size_t kMaxTrainingSample = 200000;
size_t TrainingSampleSize(IndexKind kind, size_t collection_size, const IndexTrainOptions& options);

// When and as what a field's index is (re)built: the policy of every index
// kind in one place, so that the engine's builder stays generic.
struct IndexPolicy {
  // Vectors from which a partitioned index replaces the exhaustive one
  // (IndexOptions::ivf_threshold).
  uint64_t partition_threshold = 20000;
};
// The kind a field starts with (an exhaustive scan, needs no training).
inline constexpr IndexKind kInitialIndexKind = IndexKind::kFlat;
// The kind Collection::Optimize() builds, whatever the field's size.
inline constexpr IndexKind kOptimizedIndexKind = IndexKind::kIvf;
// The kind to build for a field whose index is `current`, or nullopt.
// `health_check`: also rebuild an index whose shape has degraded (IVF lists
// badly imbalanced); the caller asks that every so many writes.
std::optional<IndexKind> IndexKindToBuild(const VectorIndex& current, const IndexPolicy& policy,
                                          bool health_check);

struct TrainedIndex {
  std::unique_ptr<VectorIndex> index;  // empty, ready for AddCode
  std::string state;                   // what CreateIndex restores it from
};

// Trains an index of `kind` on `sample` (n raw vectors, n * dim floats) for
// `quantizer`: k-means for IVF, nothing for flat. Errors: those of training
// (FailedPrecondition for a sample too small, Aborted when cancelled).
[[nodiscard]] StatusOr<TrainedIndex> TrainIndex(IndexKind kind, const Quantizer& quantizer,
                                                const float* sample, size_t n,
                                                const IndexTrainOptions& options);

}  // namespace qvec::index

#endif  // QVEC_INDEX_VECTOR_INDEX_H_
