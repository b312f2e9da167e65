#include "index/flat_index.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "index/kernels.h"
#include "index/search_finish.h"

namespace qvec::index {

namespace {

constexpr size_t kScanBlock = 1024;     // rows per kernel call, single-query scan
constexpr size_t kBatchRowBlock = 256;  // rows per batch-kernel call (output stays in L2)
constexpr size_t kBatchQueryTile = 256;
constexpr size_t kMinRowsPerTask = 4096;
constexpr size_t kMaxConsumeBlock = kScanBlock > kBatchRowBlock ? kScanBlock : kBatchRowBlock;

// Per-row arrays the scan reads; shared by single and batch search.
struct RowView {
  const uint8_t* codes;
  size_t stride;
  const float* scale;
  const float* offset;
  const float* norm_sq;
  const uint64_t* labels;
};

// Converts nb integer scores of one query into rank values and offers them
// to `top`: Quantizer::RankOf, with ||x||^2 when the metric's rank uses it.
inline void ConsumeBlock(const Kernels& kernels, const QueryCode& q, bool use_norms,
                         const RowView& rows, size_t r0, size_t nb, const int32_t* dots,
                         float* ranks, float min_rank, const std::function<bool(uint64_t)>* filter,
                         TopK& top) {
  alignas(64) uint32_t selected[kMaxConsumeBlock];
  const float bar = std::max(min_rank, top.threshold());
  const size_t count = kernels.rank_select(dots, rows.scale + r0, rows.offset + r0,
                                           use_norms ? rows.norm_sq + r0 : nullptr, nb, q.scale,
                                           q.sum, q.bias, bar, ranks, selected);
  for (size_t i = 0; i < count; ++i) {
    const size_t j = selected[i];
    if (ranks[j] <= top.threshold()) {
      continue;
    }
    if (filter != nullptr && !(*filter)(rows.labels[r0 + j])) {
      continue;
    }
    top.Push(ranks[j], r0 + j);
  }
}

}  // namespace

void InMemoryOriginals::Put(uint64_t label, const float* x) { vectors_[label].assign(x, x + dim_); }

Status InMemoryOriginals::Fetch(const uint64_t* labels, size_t n, float* out) const {
  for (size_t i = 0; i < n; ++i) {
    auto it = vectors_.find(labels[i]);
    if (it == vectors_.end()) {
      return NotFoundError("no original for label");
    }
    std::copy(it->second.begin(), it->second.end(), out + i * dim_);
  }
  return Status::Ok();
}

FlatIndex::FlatIndex(Quantizer quantizer, ThreadPool* pool)
    : quantizer_(std::move(quantizer)),
      pool_(pool != nullptr ? pool : &ThreadPool::Default()),
      stride_((quantizer_.dim() + 63) / 64 * 64) {}

FlatIndex::~FlatIndex() { std::free(codes_); }

FlatIndex::FlatIndex(FlatIndex&& other) noexcept
    : quantizer_(std::move(other.quantizer_)),
      pool_(other.pool_),
      stride_(other.stride_),
      capacity_(std::exchange(other.capacity_, 0)),
      codes_(std::exchange(other.codes_, nullptr)),
      labels_(std::move(other.labels_)),
      scale_(std::move(other.scale_)),
      offset_(std::move(other.offset_)),
      norm_sq_(std::move(other.norm_sq_)),
      row_of_(std::move(other.row_of_)) {}

FlatIndex& FlatIndex::operator=(FlatIndex&& other) noexcept {
  if (this != &other) {
    std::free(codes_);
    quantizer_ = std::move(other.quantizer_);
    pool_ = other.pool_;
    stride_ = other.stride_;
    capacity_ = std::exchange(other.capacity_, 0);
    codes_ = std::exchange(other.codes_, nullptr);
    labels_ = std::move(other.labels_);
    scale_ = std::move(other.scale_);
    offset_ = std::move(other.offset_);
    norm_sq_ = std::move(other.norm_sq_);
    row_of_ = std::move(other.row_of_);
  }
  return *this;
}

void FlatIndex::Reserve(size_t rows) {
  if (rows <= capacity_) {
    return;
  }
  const size_t new_capacity = std::max({rows, capacity_ * 2, size_t{64}});
  auto* fresh = static_cast<uint8_t*>(std::aligned_alloc(64, new_capacity * stride_));
  if (fresh == nullptr) {
    std::abort();  // out of memory: nothing sensible to do
  }
  if (codes_ != nullptr) {
    std::memcpy(fresh, codes_, labels_.size() * stride_);
  }
  std::free(codes_);
  codes_ = fresh;
  capacity_ = new_capacity;
}

Status FlatIndex::Add(uint64_t label, const uint8_t* blob, size_t blob_size) {
  const size_t dim = quantizer_.dim();
  if (blob_size != quantizer_.EncodedSize()) {
    return InvalidArgumentError("encoded vector has the wrong size");
  }
  const VectorMeta meta = Quantizer::ReadMeta(blob, dim);
  if (!std::isfinite(meta.scale) || !std::isfinite(meta.offset) || !std::isfinite(meta.norm_sq)) {
    return InvalidArgumentError("encoded vector has non-finite metadata");
  }
  size_t row;
  if (const uint64_t* found = row_of_.Find(label)) {
    row = *found;
  } else {
    Reserve(labels_.size() + 1);
    row = labels_.size();
    labels_.push_back(label);
    scale_.push_back(0);
    offset_.push_back(0);
    norm_sq_.push_back(0);
    row_of_.Set(label, row);
  }
  uint8_t* dst = codes_ + row * stride_;
  std::memcpy(dst, blob, dim);
  std::memset(dst + dim, 0, stride_ - dim);
  scale_[row] = meta.scale;
  offset_[row] = meta.offset;
  norm_sq_[row] = meta.norm_sq;
  return Status::Ok();
}

Status FlatIndex::AddVector(uint64_t label, const float* x) {
  std::vector<uint8_t> blob(quantizer_.EncodedSize());
  QVEC_RETURN_IF_ERROR(quantizer_.Encode(x, blob.data()));
  return Add(label, blob.data(), blob.size());
}

bool FlatIndex::Remove(uint64_t label) {
  const uint64_t* found = row_of_.Find(label);
  if (found == nullptr) {
    return false;
  }
  const size_t row = *found;
  const size_t last = labels_.size() - 1;
  row_of_.Erase(label);
  if (row != last) {
    std::memcpy(codes_ + row * stride_, codes_ + last * stride_, stride_);
    labels_[row] = labels_[last];
    scale_[row] = scale_[last];
    offset_[row] = offset_[last];
    norm_sq_[row] = norm_sq_[last];
    row_of_.Set(labels_[row], row);
  }
  labels_.pop_back();
  scale_.pop_back();
  offset_.pop_back();
  norm_sq_.pop_back();
  return true;
}

size_t FlatIndex::MemoryBytes() const {
  return capacity_ * stride_ + labels_.capacity() * sizeof(uint64_t) +
         (scale_.capacity() + offset_.capacity() + norm_sq_.capacity()) * sizeof(float) +
         row_of_.MemoryBytes();
}

Status FlatIndex::CheckParams(const SearchParams& params, const OriginalsSource* originals) const {
  if (params.k == 0 || params.k > kMaxSearchK) {
    return InvalidArgumentError("k must be in [1, " + std::to_string(kMaxSearchK) + "]");
  }
  if (!(params.oversampling >= 1.0f) || !std::isfinite(params.oversampling)) {
    return InvalidArgumentError("oversampling must be a finite value >= 1");
  }
  if (params.score_threshold && !std::isfinite(*params.score_threshold)) {
    return InvalidArgumentError("score_threshold must be finite");
  }
  if ((params.rescore || params.ignore_quantization) && originals == nullptr) {
    return FailedPreconditionError("rescoring needs the float originals");
  }
  return Status::Ok();
}

size_t FlatIndex::CandidateCount(const SearchParams& params) const {
  if (!params.rescore) {
    return params.k;
  }
  const double want = std::ceil(static_cast<double>(params.k) * params.oversampling);
  return static_cast<size_t>(std::min(want, 1e9));
}

StatusOr<std::vector<Hit>> FlatIndex::Finish(const QueryCode& q, std::vector<Candidate> candidates,
                                             const SearchParams& params,
                                             const OriginalsSource* originals) const {
  for (Candidate& c : candidates) c.id = labels_[c.id];  // rows -> labels
  return FinishSearch(quantizer_, q, std::move(candidates), params, originals);
}

StatusOr<std::vector<Hit>> FlatIndex::SearchFloat(const QueryCode& q, const SearchParams& params,
                                                  const OriginalsSource& originals) const {
  const size_t n = size(), dim = quantizer_.dim();
  const size_t chunk = 1024;
  const size_t num_chunks = (n + chunk - 1) / chunk;
  std::vector<std::vector<Candidate>> parts(num_chunks);
  std::vector<Status> errors(num_chunks);
  const Metric metric = quantizer_.metric();
  pool_->ParallelFor(num_chunks, [&](size_t t) {
    const size_t r0 = t * chunk, nb = std::min(chunk, n - r0);
    std::vector<float> vectors(nb * dim), ranks(nb);
    errors[t] = originals.Fetch(labels_.data() + r0, nb, vectors.data());
    if (!errors[t].ok()) {
      return;
    }
    for (size_t j = 0; j < nb; ++j) {
      ranks[j] = ExactRank(metric, q.vector.data(), vectors.data() + j * dim, dim, q.norm_sq);
    }
    TopK top(params.k);
    for (size_t j = 0; j < nb; ++j) {
      if (ranks[j] <= top.threshold()) {
        continue;
      }
      if (params.filter != nullptr && !(*params.filter)(labels_[r0 + j])) {
        continue;
      }
      top.Push(ranks[j], r0 + j);
    }
    parts[t] = top.Take();
  });
  for (const Status& s : errors) {
    QVEC_RETURN_IF_ERROR(s);
  }
  std::vector<Candidate> all;
  for (auto& p : parts) {
    all.insert(all.end(), p.begin(), p.end());
  }
  SearchParams exact = params;
  exact.rescore = false;
  return Finish(q, std::move(all), exact, nullptr);
}

StatusOr<std::vector<Hit>> FlatIndex::Search(const float* query, const SearchParams& params,
                                             const OriginalsSource* originals) const {
  QVEC_RETURN_IF_ERROR(CheckParams(params, originals));
  QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(query));
  if (params.ignore_quantization) {
    return SearchFloat(q, params, *originals);
  }
  const size_t n = size(), dim = quantizer_.dim();
  const size_t kk = CandidateCount(params);
  // Enough tasks for dynamic balancing on shared cores, each >= 4096 rows.
  const size_t num_tasks =
      std::max<size_t>(1, std::min(pool_->num_threads() * 4, n / kMinRowsPerTask));
  const size_t rows_per_task = (n + num_tasks - 1) / num_tasks;
  const float min_rank = params.score_threshold && !params.rescore
                             ? quantizer_.ScoreToRank(*params.score_threshold, q)
                             : -std::numeric_limits<float>::infinity();
  const RowView rows{codes_,         stride_,         scale_.data(),
                     offset_.data(), norm_sq_.data(), labels_.data()};
  const bool use_norms = Describe(quantizer_.metric()).rank_uses_norms;
  const CodeKernel kind = quantizer_.code_kernel();
  std::vector<std::vector<Candidate>> parts(num_tasks);
  pool_->ParallelFor(num_tasks, [&](size_t t) {
    const size_t begin = t * rows_per_task, end = std::min(n, begin + rows_per_task);
    const Kernels& kernels = ActiveKernels();
    TopK top(kk);
    alignas(64) int32_t dots[kScanBlock];
    alignas(64) float ranks[kScanBlock];
    for (size_t r0 = begin; r0 < end; r0 += kScanBlock) {
      const size_t nb = std::min(kScanBlock, end - r0);
      ScoreCodes(kernels, kind, q.codes.data(), codes_ + r0 * stride_, stride_, nb, dim, dots);
      ConsumeBlock(kernels, q, use_norms, rows, r0, nb, dots, ranks, min_rank, params.filter, top);
    }
    parts[t] = top.Take();
  });
  std::vector<Candidate> all;
  for (auto& p : parts) {
    all.insert(all.end(), p.begin(), p.end());
  }
  KeepBest(all, kk);
  return Finish(q, std::move(all), params, originals);
}

StatusOr<std::vector<std::vector<Hit>>> FlatIndex::SearchBatch(
    const float* queries, size_t nq, const SearchParams& params,
    const OriginalsSource* originals) const {
  QVEC_RETURN_IF_ERROR(CheckParams(params, originals));
  const size_t n = size(), dim = quantizer_.dim();
  std::vector<QueryCode> prepared;
  prepared.reserve(nq);
  for (size_t i = 0; i < nq; ++i) {
    QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(queries + i * dim));
    prepared.push_back(std::move(q));
  }
  std::vector<std::vector<Hit>> results(nq);
  if (params.ignore_quantization) {
    for (size_t i = 0; i < nq; ++i) {
      QVEC_ASSIGN_OR_RETURN(results[i], SearchFloat(prepared[i], params, *originals));
    }
    return results;
  }
  const size_t kk = CandidateCount(params);
  const size_t tile = std::clamp<size_t>((nq + pool_->num_threads() - 1) / pool_->num_threads(), 1,
                                         kBatchQueryTile);
  const size_t num_tasks = (nq + tile - 1) / tile;
  const RowView rows{codes_,         stride_,         scale_.data(),
                     offset_.data(), norm_sq_.data(), labels_.data()};
  const bool use_norms = Describe(quantizer_.metric()).rank_uses_norms;
  const CodeKernel kind = quantizer_.code_kernel();
  std::vector<Status> errors(num_tasks);
  pool_->ParallelFor(num_tasks, [&](size_t t) {
    const size_t q0 = t * tile, tq = std::min(tile, nq - q0);
    const Kernels& kernels = ActiveKernels();
    std::vector<int8_t> qcodes(tq * dim);
    std::vector<TopK> tops;
    tops.reserve(tq);
    std::vector<float> min_rank(tq, -std::numeric_limits<float>::infinity());
    for (size_t i = 0; i < tq; ++i) {
      std::copy(prepared[q0 + i].codes.begin(), prepared[q0 + i].codes.end(),
                qcodes.begin() + i * dim);
      tops.emplace_back(kk);
      if (params.score_threshold && !params.rescore) {
        min_rank[i] = quantizer_.ScoreToRank(*params.score_threshold, prepared[q0 + i]);
      }
    }
    std::vector<int32_t> dots(tq * kBatchRowBlock);
    alignas(64) float ranks[kBatchRowBlock];
    for (size_t r0 = 0; r0 < n; r0 += kBatchRowBlock) {
      const size_t nb = std::min(kBatchRowBlock, n - r0);
      ScoreCodesBatch(kernels, kind, qcodes.data(), dim, tq, codes_ + r0 * stride_, stride_, nb,
                      dim, dots.data());
      for (size_t i = 0; i < tq; ++i) {
        ConsumeBlock(kernels, prepared[q0 + i], use_norms, rows, r0, nb, dots.data() + i * nb,
                     ranks, min_rank[i], params.filter, tops[i]);
      }
    }
    for (size_t i = 0; i < tq; ++i) {
      std::vector<Candidate> best = tops[i].Take();
      KeepBest(best, kk);
      auto hits = Finish(prepared[q0 + i], std::move(best), params, originals);
      if (!hits.ok()) {
        errors[t] = hits.status();
        return;
      }
      results[q0 + i] = std::move(hits).value();
    }
  });
  for (const Status& s : errors) {
    QVEC_RETURN_IF_ERROR(s);
  }
  return results;
}

void FlatIndex::AssignSlots(const float* /*preprocessed*/, size_t n, uint32_t* slots) const {
  std::fill(slots, slots + n, 0u);
}

Status FlatIndex::AddCode(uint64_t label, uint32_t slot, const uint8_t* blob, size_t size) {
  if (slot != 0) return InvalidArgumentError("a flat index has one slot");
  return Add(label, blob, size);
}

namespace {
SearchParams ToFlatParams(const IndexSearchParams& p) {
  SearchParams sp;
  sp.k = p.k;
  sp.filter = p.filter;
  return sp;
}
}  // namespace

StatusOr<std::vector<Hit>> FlatIndex::Search(const float* query,
                                             const IndexSearchParams& params) const {
  return Search(query, ToFlatParams(params), nullptr);
}

StatusOr<std::vector<std::vector<Hit>>> FlatIndex::SearchBatch(
    const float* queries, size_t nq, const IndexSearchParams& params) const {
  return SearchBatch(queries, nq, ToFlatParams(params), nullptr);
}

StatusOr<std::vector<Hit>> FlatIndex::SearchSubset(const float* query,
                                                   const IndexSearchParams& params,
                                                   const std::vector<uint64_t>& labels) const {
  const SearchParams sp = ToFlatParams(params);
  QVEC_RETURN_IF_ERROR(CheckParams(sp, nullptr));
  QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(query));
  const Kernels& kernels = ActiveKernels();
  const CodeKernel kind = quantizer_.code_kernel();
  const size_t dim = quantizer_.dim();
  TopK top(sp.k);
  std::unordered_set<uint64_t> seen;
  seen.reserve(labels.size());
  for (uint64_t label : labels) {
    const uint64_t* row = row_of_.Find(label);
    if (row == nullptr || !seen.insert(label).second) continue;
    if (sp.filter != nullptr && !(*sp.filter)(label)) continue;
    const uint8_t* code = codes_ + *row * stride_;
    const int32_t integer = ScoreCode(kernels, kind, q.codes.data(), code, dim);
    const VectorMeta m{scale_[*row], offset_[*row], norm_sq_[*row]};
    const float rank = quantizer_.RankOf(q, integer, m);
    if (rank > top.threshold()) top.Push(rank, *row);
  }
  std::vector<Candidate> best = top.Take();
  KeepBest(best, sp.k);
  return Finish(q, std::move(best), sp, nullptr);
}

IndexStats FlatIndex::Stats() const {
  IndexStats s;
  s.kind = IndexKind::kFlat;
  s.size = size();
  s.memory_bytes = MemoryBytes();
  return s;
}

}  // namespace qvec::index
