// Exact (brute-force) search over quantized vectors held in memory.
#ifndef QVEC_INDEX_FLAT_INDEX_H_
#define QVEC_INDEX_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "index/label_map.h"
#include "index/quantizer.h"
#include "index/thread_pool.h"
#include "index/topk.h"
#include "index/vector_index.h"
#include "qvec/options.h"
#include "qvec/status.h"

namespace qvec::index {

// Maximum k of one search: the engine asks for offset + limit hits.
inline constexpr size_t kMaxSearchK = kMaxSearchLimit + kMaxSearchOffset;

struct SearchParams {
  // Number of hits, in [1, kMaxSearchK]. Default: 10.
  size_t k = 10;
  // Re-rank the best k * oversampling int8 candidates by exact float score
  // (needs an OriginalsSource). Default: false.
  bool rescore = false;
  // Candidate multiplier for rescoring, >= 1; ignored without rescore.
  // Default: 1.0.
  float oversampling = 1.0f;
  // Score every vector with its float original (exact; needs an
  // OriginalsSource). Default: false.
  bool ignore_quantization = false;
  // Keep only hits whose score is >= threshold (Cosine/Dot) or whose
  // distance is <= threshold (Euclid). Default: none.
  std::optional<float> score_threshold;
  // Only labels for which (*filter)(label) is true are returned; k hits are
  // still returned if k allowed labels exist. Default: none.
  const std::function<bool(uint64_t)>* filter = nullptr;
};

// Source of the preprocessed float originals (what Quantizer::Preprocess
// produced), used for rescoring. In production they live on disk.
class OriginalsSource {
 public:
  virtual ~OriginalsSource() = default;
  // Writes the originals of labels[0..n) to out (size n * dim). NotFound if a
  // label is unknown. Must be safe to call concurrently.
  [[nodiscard]] virtual Status Fetch(const uint64_t* labels, size_t n, float* out) const = 0;
};

// OriginalsSource backed by a hash map (tests, benchmarks). Thread safety:
// Fetch is safe concurrently; Put/Erase need exclusive access.
class InMemoryOriginals : public OriginalsSource {
 public:
  explicit InMemoryOriginals(size_t dim) : dim_(dim) {}
  // Stores x (size dim) as given: pass preprocessed vectors.
  void Put(uint64_t label, const float* x);
  void Erase(uint64_t label) { vectors_.erase(label); }
  Status Fetch(const uint64_t* labels, size_t n, float* out) const override;

 private:
  size_t dim_;
  std::unordered_map<uint64_t, std::vector<float>> vectors_;
};

// Flat index: one 64-byte aligned row of codes per vector (row stride =
// dim rounded up to 64), per-row metadata and label, and a label -> row map.
//
// Thread safety: const methods (Search, SearchBatch, size, ...) may run
// concurrently with each other; Add/Remove need external exclusive locking
// (no search may run during a mutation).
class FlatIndex final : public VectorIndex {
 public:
  // Searches use `pool` (nullptr = ThreadPool::Default()), which must outlive
  // the index.
  explicit FlatIndex(Quantizer quantizer, ThreadPool* pool = nullptr);
  ~FlatIndex() override;
  FlatIndex(FlatIndex&&) noexcept;
  FlatIndex& operator=(FlatIndex&&) noexcept;

  const Quantizer& quantizer() const override { return quantizer_; }
  size_t dim() const { return quantizer_.dim(); }

  // Inserts the encoded vector `blob` (from quantizer().Encode, blob_size ==
  // EncodedSize()) under `label`, replacing any vector with that label.
  // InvalidArgument on a wrong size or non-finite metadata.
  [[nodiscard]] Status Add(uint64_t label, const uint8_t* blob, size_t blob_size);
  // Encodes x (size dim) and adds it; errors as Quantizer::Encode and Add.
  [[nodiscard]] Status AddVector(uint64_t label, const float* x);
  // Removes `label` (the last row moves into its slot). Returns false if
  // absent.
  bool Remove(uint64_t label) override;
  bool Contains(uint64_t label) const { return row_of_.Contains(label); }

  size_t size() const override { return labels_.size(); }
  // Bytes held by codes, metadata, labels and the label map.
  size_t MemoryBytes() const;
  // Bytes of one stored row of codes (dim rounded up to 64).
  size_t row_stride() const { return stride_; }

  // Best hits first, at most params.k. Errors: InvalidArgument for a bad
  // query (see Quantizer::PrepareQuery) or params (k outside [1, kMaxSearchK],
  // oversampling < 1); FailedPrecondition if rescore / ignore_quantization
  // is requested without `originals`; errors of originals->Fetch.
  [[nodiscard]] StatusOr<std::vector<Hit>> Search(const float* query, const SearchParams& params,
                                                  const OriginalsSource* originals = nullptr) const;
  // Searches nq queries (size nq * dim) with the cache-blocked batch kernel;
  // result i belongs to query i. Errors as Search.
  [[nodiscard]] StatusOr<std::vector<std::vector<Hit>>> SearchBatch(
      const float* queries, size_t nq, const SearchParams& params,
      const OriginalsSource* originals = nullptr) const;

  // VectorIndex: one slot; every search is exhaustive.
  IndexKind kind() const override { return IndexKind::kFlat; }
  void AssignSlots(const float* preprocessed, size_t n, uint32_t* slots) const override;
  uint32_t num_slots() const override { return 1; }
  [[nodiscard]] Status AddCode(uint64_t label, uint32_t slot, const uint8_t* blob,
                               size_t size) override;
  void ShrinkToFit() override {}
  bool exhaustive() const override { return true; }
  [[nodiscard]] StatusOr<std::vector<Hit>> Search(const float* query,
                                                  const IndexSearchParams& params) const override;
  [[nodiscard]] StatusOr<std::vector<std::vector<Hit>>> SearchBatch(
      const float* queries, size_t nq, const IndexSearchParams& params) const override;
  [[nodiscard]] StatusOr<std::vector<Hit>> SearchSubset(
      const float* query, const IndexSearchParams& params,
      const std::vector<uint64_t>& labels) const override;
  IndexStats Stats() const override;

 private:
  Status CheckParams(const SearchParams& params, const OriginalsSource* originals) const;
  size_t CandidateCount(const SearchParams& params) const;
  // Turns the best candidates (rank values, rows) into hits: rescoring,
  // threshold and conversion to user scores.
  StatusOr<std::vector<Hit>> Finish(const QueryCode& q, std::vector<Candidate> candidates,
                                    const SearchParams& params,
                                    const OriginalsSource* originals) const;
  StatusOr<std::vector<Hit>> SearchFloat(const QueryCode& q, const SearchParams& params,
                                         const OriginalsSource& originals) const;
  void Reserve(size_t rows);

  Quantizer quantizer_;
  ThreadPool* pool_;
  size_t stride_;
  size_t capacity_ = 0;
  uint8_t* codes_ = nullptr;  // capacity_ * stride_ bytes, 64-byte aligned
  std::vector<uint64_t> labels_;
  std::vector<float> scale_, offset_, norm_sq_;
  LabelMap row_of_;  // label -> row
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_FLAT_INDEX_H_
