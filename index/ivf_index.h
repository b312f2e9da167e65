// Inverted-file (IVF) index over int8 codes: k-means centroids partition the
// vectors into `nlist` lists; a search scores the query against the
// centroids, scans the codes of the `nprobe` best lists with the integer
// kernels and merges the top k. See docs/IVF_NOTES.md.
#ifndef QVEC_INDEX_IVF_INDEX_H_
#define QVEC_INDEX_IVF_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "index/centroid_assign.h"
#include "index/flat_index.h"
#include "index/label_map.h"
#include "index/pq4.h"
#include "index/quantizer.h"
#include "index/thread_pool.h"
#include "index/types.h"
#include "qvec/status.h"

namespace qvec::index {

// Current IvfModel serialization version (2 added the 4-bit first pass; 1
// still reads).
inline constexpr uint32_t kIvfModelVersion = 2;
// Largest supported nlist.
inline constexpr uint32_t kMaxNlist = qvec::kMaxNlist;

// The trained coarse quantizer plus its training statistics. Persisted by the
// engine (Serialize / Deserialize).
struct IvfModel {
  Metric metric = Metric::kCosine;
  uint32_t dim = 0;
  uint32_t nlist = 0;
  // nlist * dim floats, row-major. Unit length under Cosine (spherical
  // k-means).
  std::vector<float> centroids;
  // Final k-means objective as reported by FAISS (sum of squared L2
  // distances, or sum of inner products for spherical k-means).
  float objective = 0;
  double training_seconds = 0;
  uint64_t trained_on_points = 0;
  // (nprobe, recall@10 of the int8 IVF scan without rescoring on held-out
  // sample queries), nprobe strictly increasing: 1, 2, 4, ..., nlist.
  std::vector<std::pair<uint32_t, float>> recall_curve;
  // The 4-bit first pass (empty: none): codes of each vector's residual
  // from its list's centroid, scanned before the int8 codes.
  Pq4Codebook first_pass;
  // (oversampling f, retention) of the first pass, f strictly increasing:
  // the share of the int8 scan's top 10 that re-ranking the first pass's
  // top 10 * f with int8 codes still finds, on held-out sample queries at
  // the nprobe the recall curve gives for 0.95.
  std::vector<std::pair<float, float>> first_pass_curve;
  uint32_t version = kIvfModelVersion;

  // Versioned little-endian encoding.
  std::string Serialize() const;
  // InvalidArgument/DataLoss for a bad magic, unknown version, truncation,
  // trailing bytes or inconsistent sizes.
  [[nodiscard]] static StatusOr<IvfModel> Deserialize(std::string_view bytes);
  // InvalidArgument if sizes, metric, dim or nlist are inconsistent.
  [[nodiscard]] Status Validate() const;
};

// nlist for a collection of n vectors: 4 * sqrt(n) rounded to the nearest
// power of two, clamped to [16, 65536], then lowered to the largest power of
// two <= n / 39 (FAISS's minimum of 39 training points per centroid) and at
// least 1. E.g. 20k -> 512, 50k -> 1024, 200k -> 2048, 1M -> 4096.
uint32_t DefaultNlist(size_t n);
// Sample vectors TrainIvf holds out of n to measure its recall curve.
size_t IvfHeldOut(size_t n, bool recall_curve);

struct IvfTrainOptions {
  // Number of lists; 0 = DefaultNlist(n). Must be <= n (minus the held-out
  // queries). Default: 0.
  uint32_t nlist = 0;
  // k-means iterations. Default: 10 (as FAISS's IndexIVF).
  int niter = 10;
  // k-means subsamples to at most this many points per centroid. k-means
  // cost is proportional to the points used; 64 keeps well above FAISS's
  // 39-point minimum and makes training cheaper than FAISS's IndexIVF
  // (which uses up to 256). Default: 64.
  int max_points_per_centroid = 64;
  uint32_t seed = 1234;
  // Two-level k-means from this nlist on (KmeansOptions::hierarchical_from;
  // 0 = never). Default: 8192.
  uint32_t hierarchical_from = 8192;
  // Measure the recall curve (needs n >= 100). Default: true.
  bool recall_curve = true;
  // 4-bit first-pass codes (see IvfModel::first_pass); trained on the
  // residuals of at most 65536 sample vectors. Default: kNone.
  FirstPassKind first_pass = FirstPassKind::kNone;
  // Dimensions per 4-bit sub-code; 0 = 1 for kSq4, and for kPq4 2 below
  // 512 dimensions, 4 from 512 on (measured on 500k x 768: 4 is 1.5x faster
  // at equal recall and half the bytes). Default: 0.
  uint32_t first_pass_dsub = 0;
  // Checked during training; once true, TrainIvf returns Aborted.
  // Default: none.
  const std::atomic<bool>* cancel = nullptr;
};

// Trains the coarse quantizer on `sample` (n raw vectors, size n * dim,
// preprocessed here with `quantizer`). k-means is FAISS Clustering: spherical
// with inner-product assignment for Cosine; plain (L2) k-means for Euclid and
// Dot (inner-product assignment with unnormalized centroids degenerates for
// Dot: large-norm centroids absorb everything; lists are Voronoi cells and
// probing ranks them by q . c). With options.recall_curve, the last
// min(200, n / 10) sample vectors are held out as queries, k-means runs on
// the rest, and recall@10 of an int8 IVF over the rest (built with
// `quantizer`, no rescoring) against the exact float scan is measured for
// nprobe = 1, 2, 4, ..., nlist.
// Errors: InvalidArgument for invalid vectors / options, FailedPrecondition
// if the sample is too small for nlist, Internal if FAISS throws.
[[nodiscard]] StatusOr<IvfModel> TrainIvf(const Quantizer& quantizer, const float* sample, size_t n,
                                          const IvfTrainOptions& options = {},
                                          ThreadPool* pool = nullptr);

// Adds `kind` 4-bit first-pass codes (dsub as IvfTrainOptions::
// first_pass_dsub) to a model trained without them, on `sample` (n raw
// vectors): the codebook on the first n - IvfHeldOut(n, true) of them, the
// first-pass curve with the rest as queries (when the model has a recall
// curve). kNone removes the first pass. Errors as TrainIvf.
[[nodiscard]] Status AddFirstPass(const Quantizer& quantizer, IvfModel* model, const float* sample,
                                  size_t n, FirstPassKind kind, uint32_t dsub = 0,
                                  ThreadPool* pool = nullptr);

// Smallest nprobe expected to reach recall@10 >= target on the model's curve.
// The curve comes from <= 200 held-out queries (noise ~ +-0.01), so it aims
// at aim = max(target, min(target + 0.015, best - 0.005)) where best is the
// curve's highest recall (the plateau rule keeps the curve's tiny last
// increments from driving nprobe to nlist): the first measured point p1
// with recall >= aim, interpolated linearly in log2(nprobe) from
// the previous point p0, rounded up (conservative: the curve is concave in
// log nprobe). nlist if the curve is empty or never reaches target; 1 if
// target <= 0.
//
// With quantization_recall > 0 (the recall the rescoring stage is expected to
// keep, from the field's rescore curve) the target is end to end: the curve's
// best point is the int8 scan of every list, so probing must keep the share
// target / quantization_recall of it, i.e. reach target * best /
// quantization_recall on the curve (nlist when that exceeds best).
uint32_t NprobeForRecall(const IvfModel& model, float target, float quantization_recall = 0);

// First-pass oversampling for an end-to-end target: the smallest measured f
// whose retention reaches 1 - (1 - target) / 4 (a quarter of the loss
// budget: the first pass is cheap, so it gets the smallest share), else the
// largest measured f. *retention receives the retention at that f. Without
// a first-pass curve: 8 with retention 1.
float FirstPassOversampling(const IvfModel& model, float target, float* retention);

struct IvfSearchParams : SearchParams {
  // Lists to probe; 0 = NprobeForRecall(model, target_recall). Values above
  // nlist are clamped. Default: 0.
  uint32_t nprobe = 0;
  // Recall@10 the automatic nprobe aims at, in (0, 1]. Default: 0.95.
  float target_recall = 0.95f;
  // See NprobeForRecall; 0 = target_recall is the int8 curve's own.
  // Default: 0.
  float quantization_recall = 0;
  // Scan the 4-bit first-pass codes (when the model has them) and re-rank
  // their best candidates with the int8 codes. Default: true.
  bool first_pass = true;
  // Candidates the first pass hands to the int8 re-ranking, as a multiple
  // of the int8 stage's candidates (>= 1); 0 = FirstPassOversampling for
  // target_recall, and an automatic nprobe then also makes up for the
  // first pass's expected loss. Default: 0.
  float first_pass_oversampling = 0;
};

struct IvfHealth {
  uint32_t nlist = 0;
  size_t size = 0;
  size_t min_list = 0, median_list = 0, max_list = 0;
  size_t empty_lists = 0;
  double imbalance = 0;  // max list size / mean list size (0 when empty)
  float objective = 0;
  double training_seconds = 0;
  uint64_t trained_on_points = 0;
  std::vector<std::pair<uint32_t, float>> recall_curve;
};

// Thread safety: const methods (Search, SearchBatch, SearchAllowed, Assign,
// Health, ...) may run concurrently; Add/Remove need external exclusive
// locking (no search may run during a mutation).
class IvfIndex final : public VectorIndex {
 public:
  // InvalidArgument if the model is invalid or does not match the
  // quantizer's dim / metric. Searches use `pool` (nullptr =
  // ThreadPool::Default()), which must outlive the index.
  [[nodiscard]] static StatusOr<IvfIndex> Create(Quantizer quantizer, IvfModel model,
                                                 ThreadPool* pool = nullptr);
  ~IvfIndex() override;
  IvfIndex(IvfIndex&&) noexcept;
  IvfIndex& operator=(IvfIndex&&) noexcept;

  const Quantizer& quantizer() const override { return quantizer_; }
  // The training model without its float centroids (released after the
  // index quantized them; persist the model before creating the index).
  const IvfModel& model() const { return model_; }
  size_t dim() const { return quantizer_.dim(); }
  uint32_t nlist() const { return model_.nlist; }

  // The list a preprocessed vector (size dim) belongs to: highest x . c for
  // Cosine, nearest by L2 for Euclid and Dot.
  uint32_t Assign(const float* preprocessed) const;
  // Assign for n preprocessed vectors (size n * dim), in parallel.
  void AssignBatch(const float* preprocessed, size_t n, uint32_t* lists) const;

  // Inserts the encoded vector `blob` (blob_size == EncodedSize()) into
  // `list` under `label`, replacing any vector with that label (moving it if
  // the list differs). InvalidArgument on a wrong size, list >= nlist or
  // non-finite metadata.
  [[nodiscard]] Status Add(uint64_t label, uint32_t list, const uint8_t* blob, size_t blob_size);
  // Preprocesses + encodes x (size dim, raw), assigns and adds it.
  [[nodiscard]] Status AddVector(uint64_t label, const float* x);
  // Removes `label` (swap-remove within its list). False if absent.
  bool Remove(uint64_t label) override;
  // Releases the spare capacity of every list (after a bulk build).
  void ShrinkToFit() override;
  bool Contains(uint64_t label) const { return where_.Contains(label); }
  size_t size() const override { return where_.size(); }
  size_t list_size(uint32_t list) const { return lists_[list].size(); }
  // Bytes of codes, metadata, labels, label map and centroids.
  size_t MemoryBytes() const;

  // Best hits first, at most params.k. Probes params.nprobe lists (see
  // IvfSearchParams); with a filter, keeps probing lists in centroid order
  // until k matching candidates are found or every list was scanned.
  // ignore_quantization scans the probed lists with float originals.
  // Errors as FlatIndex::Search.
  [[nodiscard]] StatusOr<std::vector<Hit>> Search(const float* query, const IvfSearchParams& params,
                                                  const OriginalsSource* originals = nullptr) const;
  // nq queries (size nq * dim); result i belongs to query i. Parallel over
  // queries; queries probing the same list share one pass over its codes
  // (batch kernel). Errors as Search.
  [[nodiscard]] StatusOr<std::vector<std::vector<Hit>>> SearchBatch(
      const float* queries, size_t nq, const IvfSearchParams& params,
      const OriginalsSource* originals = nullptr) const;
  // Exact (int8, or float with ignore_quantization; rescored if asked)
  // search over the given labels only; labels not in the index are
  // skipped, params.filter still applies, nprobe is ignored.
  [[nodiscard]] StatusOr<std::vector<Hit>> SearchAllowed(
      const float* query, const IvfSearchParams& params,
      const std::vector<uint64_t>& allowed_labels,
      const OriginalsSource* originals = nullptr) const;

  IvfHealth Health() const;
  // The list centroids, dequantized from their int8 copies (nlist * dim).
  std::vector<float> SlotCentroids() const override { return centroids_.Dequantized(); }

  // VectorIndex: slots are lists; searches probe part of them.
  IndexKind kind() const override { return IndexKind::kIvf; }
  void AssignSlots(const float* preprocessed, size_t n, uint32_t* slots) const override {
    AssignBatch(preprocessed, n, slots);
  }
  uint32_t num_slots() const override { return nlist(); }
  [[nodiscard]] Status AddCode(uint64_t label, uint32_t slot, const uint8_t* blob,
                               size_t size) override {
    return Add(label, slot, blob, size);
  }
  bool exhaustive() const override { return false; }
  [[nodiscard]] StatusOr<std::vector<Hit>> Search(const float* query,
                                                  const IndexSearchParams& params) const override;
  [[nodiscard]] StatusOr<std::vector<std::vector<Hit>>> SearchBatch(
      const float* queries, size_t nq, const IndexSearchParams& params) const override;
  [[nodiscard]] StatusOr<std::vector<Hit>> SearchSubset(
      const float* query, const IndexSearchParams& params,
      const std::vector<uint64_t>& labels) const override;
  IndexStats Stats() const override;

  // One inverted list: 64-byte aligned code rows (stride = dim rounded up to
  // 64) with per-row metadata and labels. Public for the implementation
  // only.
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  struct List {
    std::unique_ptr<uint8_t, FreeDeleter> codes;  // capacity * stride bytes
    size_t capacity = 0;
    std::vector<uint64_t> labels;
    std::vector<float> scale, offset, norm_sq;
    // 4-bit first-pass codes in blocks of kCode4BlockRows rows (see
    // Pq4Codebook); empty without a first pass.
    std::vector<uint8_t> codes4;
    size_t size() const { return labels.size(); }
  };

 private:
  IvfIndex(Quantizer quantizer, IvfModel model, ThreadPool* pool);
  struct Slot {
    uint32_t list;
    uint32_t row;
  };
  void Reserve(List& list, size_t rows);
  void RemoveAt(Slot slot);
  // Centroid ranking values of a preprocessed query (higher = probe first),
  // from int8 copies of the query and the centroids (4x less memory traffic
  // than floats).
  void ProbeScores(const float* q, float* out) const;
  uint32_t ResolveNprobe(const IvfSearchParams& params) const;
  bool UsesFirstPass(const IvfSearchParams& params) const {
    return !model_.first_pass.empty() && params.first_pass && !params.ignore_quantization;
  }
  // The first-pass oversampling of a search and the retention expected of it.
  float FirstPassFactor(const IvfSearchParams& params, float* retention) const;
  // Writes the 4-bit code of the int8 `blob` into row `row` of list `list`.
  void EncodeFirstPass(uint32_t list, size_t row, const uint8_t* blob);
  Status CheckParams(const IvfSearchParams& params, const OriginalsSource* originals) const;
  struct Impl;

  Quantizer quantizer_;
  IvfModel model_;
  ThreadPool* pool_;
  size_t stride_;
  // Centroids as symmetric per-centroid int8 codes, for probing and list
  // assignment; the float centroids are released after quantization.
  Int8Centroids centroids_;
  // With a first pass: the dequantized int8 centroids (nlist * dim), the
  // reference point of each list's 4-bit residual codes.
  std::vector<float> centroid_floats_;
  std::vector<List> lists_;
  static uint64_t Pack(Slot s) { return (uint64_t{s.list} << 32) | s.row; }
  static Slot Unpack(uint64_t v) {
    return Slot{static_cast<uint32_t>(v >> 32), static_cast<uint32_t>(v)};
  }
  LabelMap where_;  // label -> Pack(slot)
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_IVF_INDEX_H_
