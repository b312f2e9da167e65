#include "index/ivf_index.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "common/coding.h"
#include "index/kernels.h"
#include "index/kmeans.h"
#include "index/recall.h"
#include "index/search_finish.h"
#include "index/topk.h"
#include "index/training.h"

namespace qvec::index {

namespace {

// Keeps (unsorted) the best k of `all` when it holds more than 2k.
void Shrink(std::vector<Candidate>& all, size_t k) {
  if (all.size() > 2 * k) {
    std::nth_element(all.begin(), all.begin() + (k - 1), all.end(), Better);
    all.resize(k);
  }
}

// aligned_alloc needs a size that is a multiple of the alignment.
inline size_t AllocBytes(size_t bytes) { return (bytes + 63) / 64 * 64; }

constexpr size_t kScanBlock = 512;      // rows per "many" kernel call
constexpr size_t kBatchRowBlock = 256;  // rows per batch kernel call
constexpr size_t kMaxConsumeBlock = kScanBlock > kBatchRowBlock ? kScanBlock : kBatchRowBlock;
constexpr size_t kPrefetchHeadBytes = 4096;  // of the next list, while scanning one

// An unsigned key that orders floats from highest to lowest.
inline uint32_t DescendingKey(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  const uint32_t ascending = (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
  return ~ascending;
}
constexpr size_t kParallelRows = 32768;  // single query: smaller scans stay on the caller
constexpr size_t kMinRowsPerTask = 8192;
constexpr size_t kMaxQueryTile = 256;
constexpr size_t kMinBatchGroup = 3;  // queries per list before the batch kernel pays off

// Per-query state of a scan.
struct ScanCtx {
  const QueryCode* q;
  float min_rank;
};

struct ScanShared {
  Metric metric;
  bool use_norms;  // the rank needs ||x||^2 (Describe(metric).rank_uses_norms)
  CodeKernel kind;
  size_t dim;
  size_t stride;
  const std::function<bool(uint64_t)>* filter;
  const Kernels* kernels;
};

// Converts nb integer dots against rows [r0, r0 + nb) of `l` into rank
// values (same arithmetic as FlatIndex, so scores match it bit for bit) and
// offers them to `top`.
inline void Consume(const ScanShared& s, const ScanCtx& c, const IvfIndex::List& l, size_t r0,
                    size_t nb, const int32_t* dots, float* ranks, TopK& top) {
  alignas(64) uint32_t selected[kMaxConsumeBlock];
  const QueryCode& q = *c.q;
  const float bar = std::max(c.min_rank, top.threshold());
  const size_t count = s.kernels->rank_select(dots, l.scale.data() + r0, l.offset.data() + r0,
                                              s.use_norms ? l.norm_sq.data() + r0 : nullptr, nb,
                                              q.scale, q.sum, q.bias, bar, ranks, selected);
  const uint64_t* labels = l.labels.data() + r0;
  for (size_t i = 0; i < count; ++i) {
    const size_t j = selected[i];
    if (ranks[j] <= top.threshold()) continue;
    if (s.filter != nullptr && !(*s.filter)(labels[j])) continue;
    top.Push(ranks[j], labels[j]);
  }
}

inline void DotsMany(const ScanShared& s, const int8_t* qcodes, const uint8_t* codes, size_t nb,
                     int32_t* dots) {
  ScoreCodes(*s.kernels, s.kind, qcodes, codes, s.stride, nb, s.dim, dots);
}

void ScanList(const ScanShared& s, const ScanCtx& c, const IvfIndex::List& l, TopK& top) {
  alignas(64) int32_t dots[kScanBlock];
  alignas(64) float ranks[kScanBlock];
  const size_t n = l.size();
  const uint8_t* codes = l.codes.get();
  for (size_t r0 = 0; r0 < n; r0 += kScanBlock) {
    const size_t nb = std::min(kScanBlock, n - r0);
    DotsMany(s, c.q->codes.data(), codes + r0 * s.stride, nb, dots);
    Consume(s, c, l, r0, nb, dots, ranks, top);
  }
}

// ignore_quantization: scores a list with the float originals.
Status ScanListFloat(const ScanShared& s, const ScanCtx& c, const IvfIndex::List& l,
                     const OriginalsSource& originals, TopK& top) {
  const size_t n = l.size();
  if (n == 0) return Status::Ok();
  std::vector<float> vectors(n * s.dim), ranks(n);
  QVEC_RETURN_IF_ERROR(originals.Fetch(l.labels.data(), n, vectors.data()));
  const QueryCode& q = *c.q;
  for (size_t j = 0; j < n; ++j) {
    ranks[j] = ExactRank(s.metric, q.vector.data(), vectors.data() + j * s.dim, s.dim, q.norm_sq);
  }
  for (size_t j = 0; j < n; ++j) {
    if (ranks[j] <= top.threshold() || ranks[j] < c.min_rank) continue;
    if (s.filter != nullptr && !(*s.filter)(l.labels[j])) continue;
    top.Push(ranks[j], l.labels[j]);
  }
  return Status::Ok();
}

// The first pass of a search: the query's lookup table and what turns a
// 4-bit sum into a rank.
struct FirstPassScan {
  const Code4Lut* lut;
  const float* centroids;  // nlist * dim, the residuals' reference points
  size_t block_bytes;
  size_t m_padded;
};

// Scans the 4-bit codes of list `list_id`, offering approximate ranks to
// `top` under the id (list << 32 | row): q . x = q . c + q . residual, the
// second term from the table (bias + scale * sum); Euclid ranks 2 q . x -
// ||x||^2 with the int8 codes' norm.
void ScanListFirstPass(const ScanShared& s, const ScanCtx& c, const FirstPassScan& f,
                       uint32_t list_id, const IvfIndex::List& l, TopK& top) {
  constexpr size_t kChunkBlocks = 16;
  alignas(64) uint16_t acc[kChunkBlocks * kCode4BlockRows];
  const size_t n = l.size();
  if (n == 0) return;
  const float dot_c =
      s.kernels->dot_f32(c.q->vector.data(), f.centroids + size_t{list_id} * s.dim, s.dim);
  const float base = dot_c + f.lut->bias, scale = f.lut->scale;
  const size_t nblocks = (n + kCode4BlockRows - 1) / kCode4BlockRows;
  const uint64_t list_key = uint64_t{list_id} << 32;
  for (size_t b0 = 0; b0 < nblocks; b0 += kChunkBlocks) {
    const size_t nb = std::min(kChunkBlocks, nblocks - b0);
    s.kernels->scan_u4(f.lut->table.data(), l.codes4.data() + b0 * f.block_bytes, nb, f.m_padded,
                       acc);
    const size_t r0 = b0 * kCode4BlockRows;
    const size_t rows = std::min(nb * kCode4BlockRows, n - r0);
    const uint64_t* labels = l.labels.data() + r0;
    if (!s.use_norms) {
      // rank > threshold <=> sum > (threshold - base) / scale, and for an
      // integer sum that is sum > floor of it: the kernel preselects with
      // the threshold at the chunk's start (it only rises), each row is
      // checked against the current one.
      alignas(64) uint32_t selected[kChunkBlocks * kCode4BlockRows];
      const float bar0 = (top.threshold() - base) / scale;
      const int32_t above = bar0 < 0.0f       ? -1
                            : bar0 >= 65535.0f ? 65535
                                               : static_cast<int32_t>(bar0);
      const size_t count = s.kernels->select_u16(acc, rows, above, selected);
      float bar = bar0;
      for (size_t i = 0; i < count; ++i) {
        const size_t j = selected[i];
        if (static_cast<float>(acc[j]) <= bar) continue;
        if (s.filter != nullptr && !(*s.filter)(labels[j])) continue;
        top.Push(base + scale * static_cast<float>(acc[j]), list_key | (r0 + j));
        bar = (top.threshold() - base) / scale;
      }
    } else {
      const float* norms = l.norm_sq.data() + r0;
      for (size_t j = 0; j < rows; ++j) {
        const float rank = 2.0f * (base + scale * static_cast<float>(acc[j])) - norms[j];
        if (rank <= top.threshold()) continue;
        if (s.filter != nullptr && !(*s.filter)(labels[j])) continue;
        top.Push(rank, list_key | (r0 + j));
      }
    }
  }
}

}  // namespace

// Fortran BLAS (OpenBLAS here), as FAISS declares it.
extern "C" int sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                      const int* k, const float* alpha, const float* a, const int* lda,
                      const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

namespace {
namespace blas {
// out[i * m + j] = a_j . b_i for a: m rows, b: n rows, both row-major with
// `dim` floats per row.
void Gemm(const float* a, size_t m, const float* b, size_t n, size_t dim, float* out) {
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(dim);
  const float one = 1.0f, zero = 0.0f;
  sgemm_("T", "N", &mi, &ni, &ki, &one, a, &ki, b, &ki, &zero, out, &mi);
}
}  // namespace blas

// Exact float top-k rows of `base` (preprocessed) for each preprocessed query,
// as ExactTopK but with BLAS: blocks of base rows x all queries per sgemm
// (ExactTopK streams the whole base once per query).
std::vector<std::vector<uint64_t>> GemmTopK(Metric metric, const float* base, size_t n,
                                            const float* queries, size_t nq, size_t dim, size_t k) {
  if (Describe(metric).int_scoring != IntScoring::kInnerProduct) {
    // No GEMM form (L1): the exact ranks row by row.
    std::vector<std::vector<uint64_t>> out(nq);
    for (size_t i = 0; i < nq; ++i) {
      std::vector<std::pair<float, uint64_t>> all(n);
      for (size_t j = 0; j < n; ++j) {
        all[j] = {ExactRank(metric, queries + i * dim, base + j * dim, dim, 0.0f), j};
      }
      const size_t keep = std::min(k, n);
      std::partial_sort(all.begin(), all.begin() + keep, all.end(),
                        [](const auto& a, const auto& b) {
                          return a.first > b.first || (a.first == b.first && a.second < b.second);
                        });
      for (size_t j = 0; j < keep; ++j) out[i].push_back(all[j].second);
    }
    return out;
  }
  const bool use_norms = Describe(metric).rank_uses_norms;
  const size_t block = 8192;
  std::vector<float> scores(block * nq);
  std::vector<std::vector<std::pair<float, uint64_t>>> best(nq);
  auto better = [](const std::pair<float, uint64_t>& a, const std::pair<float, uint64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::vector<float> norms(block);
  for (size_t b0 = 0; b0 < n; b0 += block) {
    const size_t nb = std::min(block, n - b0);
    // scores[i * nb + j] = q_i . x_(b0 + j)
    blas::Gemm(base + b0 * dim, nb, queries, nq, dim, scores.data());
    if (use_norms) {
      for (size_t j = 0; j < nb; ++j) {
        const float* x = base + (b0 + j) * dim;
        float norm = 0;
        for (size_t d = 0; d < dim; ++d) norm += x[d] * x[d];
        norms[j] = norm;
      }
    }
    for (size_t i = 0; i < nq; ++i) {
      auto& heap = best[i];  // heap under `better`: front is the worst kept
      for (size_t j = 0; j < nb; ++j) {
        float v = scores[i * nb + j];
        if (use_norms) v = 2.0f * v - norms[j];
        const std::pair<float, uint64_t> c{v, b0 + j};
        if (heap.size() < k) {
          heap.push_back(c);
          std::push_heap(heap.begin(), heap.end(), better);
        } else if (better(c, heap.front())) {
          std::pop_heap(heap.begin(), heap.end(), better);
          heap.back() = c;
          std::push_heap(heap.begin(), heap.end(), better);
        }
      }
    }
  }
  std::vector<std::vector<uint64_t>> out(nq);
  for (size_t i = 0; i < nq; ++i) {
    std::sort(best[i].begin(), best[i].end(), better);
    for (const auto& c : best[i]) out[i].push_back(c.second);
  }
  return out;
}

// Little-endian writer for IvfModel (read back with coding::Reader).
class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { coding::PutFixed32(&out_, v); }
  void U64(uint64_t v) { coding::PutFixed64(&out_, v); }
  void F32(float v) { coding::PutFloat(&out_, v); }
  void F64(double v) { coding::PutDouble(&out_, v); }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};
using Reader = coding::Reader;

constexpr float kCurveMargin = 0.015f;
// First-pass oversampling factors TrainIvf measures.
constexpr float kFirstPassGrid[] = {1, 1.5f, 2, 3, 4, 6, 8, 12, 16, 24, 32};
constexpr size_t kFirstPassTrainingRows = 65536;
constexpr float kPlateau = 0.005f;
constexpr uint32_t kIvfMagic = 0x46495651;  // "QVIF" little-endian

}  // namespace

// ---------------------------------------------------------------------------
// IvfModel
// ---------------------------------------------------------------------------

Status IvfModel::Validate() const {
  if (version != 1 && version != kIvfModelVersion) {
    return InvalidArgumentError("IVF model: unknown version");
  }
  if (!first_pass.empty() && first_pass.dim() != dim) {
    return InvalidArgumentError("IVF model: first-pass codebook dim != dim");
  }
  float prev_factor = 0;
  for (const auto& [factor, retention] : first_pass_curve) {
    if (!(factor >= 1.0f && factor > prev_factor && std::isfinite(factor)) ||
        !(retention >= 0.0f && retention <= 1.0f)) {
      return InvalidArgumentError("IVF model: bad first-pass curve");
    }
    prev_factor = factor;
  }
  if (static_cast<size_t>(metric) >= kNumMetrics) {
    return InvalidArgumentError("IVF model: unknown metric");
  }
  if (dim == 0 || dim > kMaxDim) return InvalidArgumentError("IVF model: dim out of range");
  if (nlist == 0 || nlist > kMaxNlist) {
    return InvalidArgumentError("IVF model: nlist out of range");
  }
  if (centroids.size() != static_cast<size_t>(nlist) * dim) {
    return InvalidArgumentError("IVF model: centroids size != nlist * dim");
  }
  for (float v : centroids) {
    if (!std::isfinite(v)) return InvalidArgumentError("IVF model: non-finite centroid");
  }
  uint32_t prev = 0;
  for (const auto& [nprobe, recall] : recall_curve) {
    if (nprobe <= prev || nprobe > nlist) {
      return InvalidArgumentError("IVF model: recall curve nprobe not increasing in [1, nlist]");
    }
    if (!(recall >= 0.0f && recall <= 1.0f)) {
      return InvalidArgumentError("IVF model: recall outside [0, 1]");
    }
    prev = nprobe;
  }
  return Status::Ok();
}

std::string IvfModel::Serialize() const {
  Writer w;
  w.U32(kIvfMagic);
  w.U32(version);
  w.U8(static_cast<uint8_t>(metric));
  w.U32(dim);
  w.U32(nlist);
  w.F32(objective);
  w.F64(training_seconds);
  w.U64(trained_on_points);
  w.U32(static_cast<uint32_t>(recall_curve.size()));
  for (const auto& [nprobe, recall] : recall_curve) {
    w.U32(nprobe);
    w.F32(recall);
  }
  w.U64(centroids.size());
  for (float v : centroids) w.F32(v);
  // Version 2: the first pass (a codebook blob, empty for none) and its
  // curve.
  const std::string codebook = first_pass.empty() ? std::string() : first_pass.Serialize();
  w.U64(codebook.size());
  for (char c : codebook) w.U8(static_cast<uint8_t>(c));
  w.U32(static_cast<uint32_t>(first_pass_curve.size()));
  for (const auto& [factor, retention] : first_pass_curve) {
    w.F32(factor);
    w.F32(retention);
  }
  return w.Take();
}

StatusOr<IvfModel> IvfModel::Deserialize(std::string_view bytes) {
  Reader r(bytes);
  if (r.U32() != kIvfMagic || !r.ok()) return DataLossError("IVF model: bad magic");
  IvfModel m;
  m.version = r.U32();
  if (!r.ok()) return DataLossError("IVF model: truncated");
  if (m.version != 1 && m.version != kIvfModelVersion) {
    return InvalidArgumentError("IVF model: unknown version");
  }
  const uint8_t metric = r.U8();
  if (metric >= kNumMetrics) return InvalidArgumentError("IVF model: unknown metric");
  m.metric = static_cast<Metric>(metric);
  m.dim = r.U32();
  m.nlist = r.U32();
  m.objective = r.F32();
  m.training_seconds = r.F64();
  m.trained_on_points = r.U64();
  const uint32_t curve = r.U32();
  if (!r.ok()) return DataLossError("IVF model: truncated");
  if (curve > 64 || static_cast<size_t>(curve) * 8 > r.remaining()) {
    return DataLossError("IVF model: bad recall curve length");
  }
  for (uint32_t i = 0; i < curve; ++i) {
    const uint32_t nprobe = r.U32();
    const float recall = r.F32();
    m.recall_curve.emplace_back(nprobe, recall);
  }
  const uint64_t count = r.U64();
  if (!r.ok()) return DataLossError("IVF model: truncated");
  if (count != static_cast<uint64_t>(m.nlist) * m.dim) {
    return DataLossError("IVF model: centroid count != nlist * dim");
  }
  if (count > r.remaining() / 4 || (m.version == 1 && count * 4 != r.remaining())) {
    return DataLossError(count * 4 > r.remaining() ? "IVF model: truncated"
                                                   : "IVF model: trailing bytes");
  }
  m.centroids.resize(count);
  for (uint64_t i = 0; i < count; ++i) m.centroids[i] = r.F32();
  if (m.version >= 2) {
    const uint64_t codebook = r.U64();
    if (!r.ok() || codebook > r.remaining()) return DataLossError("IVF model: truncated");
    if (codebook > 0) {
      QVEC_ASSIGN_OR_RETURN(m.first_pass, Pq4Codebook::Deserialize(r.Bytes(codebook)));
    }
    const uint32_t points = r.U32();
    if (!r.ok() || points > 64 || size_t{points} * 8 != r.remaining()) {
      return DataLossError("IVF model: bad first-pass curve");
    }
    for (uint32_t i = 0; i < points; ++i) {
      const float factor = r.F32();
      const float retention = r.F32();
      m.first_pass_curve.emplace_back(factor, retention);
    }
  }
  m.version = kIvfModelVersion;
  QVEC_RETURN_IF_ERROR(m.Validate());
  return m;
}

size_t IvfHeldOut(size_t n, bool recall_curve) {
  return recall_curve && n >= 100 ? std::min<size_t>(200, n / 10) : 0;
}

uint32_t DefaultNlist(size_t n) {
  if (n == 0) return 1;
  const double target = 4.0 * std::sqrt(static_cast<double>(n));
  const int e = std::clamp(static_cast<int>(std::lround(std::log2(target))), 4, 16);
  uint32_t nlist = uint32_t{1} << e;
  const size_t cap = std::max<size_t>(1, n / 39);
  const uint32_t cap_pow2 = static_cast<uint32_t>(std::bit_floor(std::min<size_t>(cap, kMaxNlist)));
  return std::min(nlist, cap_pow2);
}

uint32_t NprobeForRecall(const IvfModel& model, float target, float quantization_recall) {
  const uint32_t nlist = std::max<uint32_t>(1, model.nlist);
  if (!(target > 0.0f)) return 1;
  const auto& curve = model.recall_curve;
  float best = 0.0f;
  for (const auto& point : curve) best = std::max(best, point.second);
  if (curve.empty()) return nlist;
  if (quantization_recall > 0.0f) {
    const float share = target / quantization_recall;
    if (share >= 1.0f) return nlist;
    target = share * best;
  }
  if (best < target) return nlist;
  // Aim a little above target (the curve comes from <= 200 held-out
  // queries), but not above what the curve reaches.
  // On a plateau (best < target + margin) aim slightly below the best so the
  // tiny last increments of the curve do not drive nprobe to its end.
  const double aim = std::max<double>(
      target, std::min<double>(static_cast<double>(target) + kCurveMargin, best - kPlateau));
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].second < aim) continue;
    if (i == 0) return std::clamp<uint32_t>(curve[0].first, 1, nlist);
    const auto [p0, r0] = curve[i - 1];
    const auto [p1, r1] = curve[i];
    const double t = (aim - r0) / (static_cast<double>(r1) - r0);
    const double lp = std::log2(static_cast<double>(p0)) +
                      t * (std::log2(static_cast<double>(p1)) - std::log2(static_cast<double>(p0)));
    const double p = std::ceil(std::exp2(lp) - 1e-9);
    return std::clamp<uint32_t>(static_cast<uint32_t>(p), p0 + 1, std::min(p1, nlist));
  }
  return nlist;
}

float FirstPassOversampling(const IvfModel& model, float target, float* retention) {
  const auto& curve = model.first_pass_curve;
  if (curve.empty()) {
    *retention = 1.0f;
    return 8.0f;
  }
  const float aim = 1.0f - (1.0f - std::clamp(target, 0.0f, 1.0f)) / 4.0f;
  for (const auto& [factor, kept] : curve) {
    if (kept >= aim) {
      *retention = kept;
      return factor;
    }
  }
  *retention = curve.back().second;
  return curve.back().first;
}

// ---------------------------------------------------------------------------
// IvfIndex
// ---------------------------------------------------------------------------

struct IvfIndex::Impl {
  static ScanShared Shared(const IvfIndex& ix, const std::function<bool(uint64_t)>* filter) {
    const Metric m = ix.quantizer_.metric();
    return ScanShared{m,
                      Describe(m).rank_uses_norms,
                      ix.quantizer_.code_kernel(),
                      ix.quantizer_.dim(),
                      ix.stride_,
                      filter,
                      &ActiveKernels()};
  }

  static size_t CandidateCount(const IvfSearchParams& p) {
    if (!p.rescore || p.ignore_quantization) return p.k;
    const double want = std::ceil(static_cast<double>(p.k) * p.oversampling);
    return static_cast<size_t>(std::min(want, 1e9));
  }

  static float MinRank(const IvfIndex& ix, const IvfSearchParams& p, const QueryCode& q) {
    if (p.score_threshold && (!p.rescore || p.ignore_quantization)) {
      return ix.quantizer_.ScoreToRank(*p.score_threshold, q);
    }
    return -std::numeric_limits<float>::infinity();
  }

  // Scans lists ids[0..nl) for one query, appending up to kk candidates per
  // task to *out and adding the push counts to *pushed.
  // Lists are short (hundreds of rows) and scattered, so the hardware
  // prefetcher restarts at each one; fetching the head of the next list while
  // the current one is scanned hides that DRAM latency.
  static void PrefetchListHead(const List& l, size_t stride) {
    const size_t bytes = std::min(l.size() * stride, kPrefetchHeadBytes);
    const char* codes = reinterpret_cast<const char*>(l.codes.get());
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(codes + off);
    if (!l.labels.empty()) {
      __builtin_prefetch(l.scale.data());
      __builtin_prefetch(l.offset.data());
    }
  }

  static void PrefetchFirstPassHead(const List& l) {
    const size_t bytes = std::min(l.codes4.size(), kPrefetchHeadBytes);
    const char* codes = reinterpret_cast<const char*>(l.codes4.data());
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(codes + off);
    if (!l.labels.empty()) __builtin_prefetch(l.labels.data());
  }

  // With `first_pass`, scans the lists' 4-bit codes instead (candidate ids
  // are then packed slots, see ScanListFirstPass).
  static Status ScanLists(const IvfIndex& ix, const ScanShared& s, const ScanCtx& c,
                          const uint32_t* ids, size_t nl, size_t kk, bool parallel,
                          const OriginalsSource* float_src, const FirstPassScan* first_pass,
                          std::vector<Candidate>* out, size_t* pushed) {
    size_t total = 0;
    for (size_t i = 0; i < nl; ++i) total += ix.lists_[ids[i]].size();
    size_t num_tasks = 1;
    if (parallel && ix.pool_->num_threads() > 1 && total >= kParallelRows) {
      num_tasks = std::min({ix.pool_->num_threads() * 4, total / kMinRowsPerTask, nl});
    }
    auto scan_range = [&](size_t b, size_t e, TopK& top) -> Status {
      for (size_t i = b; i < e; ++i) {
        const List& l = ix.lists_[ids[i]];
        if (first_pass != nullptr) {
          if (i + 1 < e) PrefetchFirstPassHead(ix.lists_[ids[i + 1]]);
          ScanListFirstPass(s, c, *first_pass, ids[i], l, top);
          continue;
        }
        if (i + 1 < e) PrefetchListHead(ix.lists_[ids[i + 1]], ix.stride_);
        if (float_src != nullptr) {
          QVEC_RETURN_IF_ERROR(ScanListFloat(s, c, l, *float_src, top));
        } else {
          ScanList(s, c, l, top);
        }
      }
      return Status::Ok();
    };
    if (num_tasks <= 1) {
      TopK top(kk);
      QVEC_RETURN_IF_ERROR(scan_range(0, nl, top));
      *pushed += top.pushed();
      std::vector<Candidate> best = top.Take();
      out->insert(out->end(), best.begin(), best.end());
      return Status::Ok();
    }
    // Contiguous runs of lists with about total / num_tasks rows each.
    std::vector<size_t> bounds(num_tasks + 1, nl);
    bounds[0] = 0;
    size_t acc = 0, t = 1;
    for (size_t i = 0; i < nl && t < num_tasks; ++i) {
      acc += ix.lists_[ids[i]].size();
      while (t < num_tasks && acc * num_tasks >= total * t) bounds[t++] = i + 1;
    }
    std::vector<std::vector<Candidate>> parts(num_tasks);
    std::vector<size_t> pushes(num_tasks, 0);
    std::vector<Status> errors(num_tasks);
    ix.pool_->ParallelFor(num_tasks, [&](size_t task) {
      TopK top(kk);
      errors[task] = scan_range(bounds[task], bounds[task + 1], top);
      pushes[task] = top.pushed();
      parts[task] = top.Take();
    });
    for (size_t task = 0; task < num_tasks; ++task) {
      QVEC_RETURN_IF_ERROR(errors[task]);
      *pushed += pushes[task];
      out->insert(out->end(), parts[task].begin(), parts[task].end());
    }
    return Status::Ok();
  }

  // Rescoring, threshold and conversion to hits (candidate ids are labels).
  static StatusOr<std::vector<Hit>> Finish(const IvfIndex& ix, const QueryCode& q,
                                           std::vector<Candidate> cands, const IvfSearchParams& p,
                                           const OriginalsSource* originals) {
    return FinishSearch(ix.quantizer_, q, std::move(cands), p, originals);
  }

  // Probe order: the best nprobe lists sorted first (higher score first,
  // ties to the lower list), the rest after them in no particular order.
  // Each list gets one integer key (score bits ordered descending, then the
  // list number); a bounded max-heap keeps the nprobe smallest keys, so
  // most lists cost one well-predicted comparison (nth_element over all
  // nlist keys was a tenth of a Fashion-MNIST query).
  static void ProbeOrder(const IvfIndex& ix, const QueryCode& q, uint32_t nprobe,
                         std::vector<float>& scores, std::vector<uint32_t>& order) {
    const uint32_t nlist = ix.model_.nlist;
    scores.resize(nlist);
    ix.ProbeScores(q.vector.data(), scores.data());
    order.resize(nlist);
    auto key = [&](uint32_t c) { return (uint64_t{DescendingKey(scores[c])} << 32) | c; };
    if (nprobe >= nlist) {
      std::vector<uint64_t> keys(nlist);
      for (uint32_t c = 0; c < nlist; ++c) keys[c] = key(c);
      std::sort(keys.begin(), keys.end());
      for (uint32_t i = 0; i < nlist; ++i) order[i] = static_cast<uint32_t>(keys[i]);
      return;
    }
    std::vector<uint64_t> heap;
    heap.reserve(nprobe);
    for (uint32_t c = 0; c < nlist; ++c) {
      const uint64_t k = key(c);
      if (heap.size() < nprobe) {
        heap.push_back(k);
        std::push_heap(heap.begin(), heap.end());
      } else if (k < heap.front()) {
        std::pop_heap(heap.begin(), heap.end());
        heap.back() = k;
        std::push_heap(heap.begin(), heap.end());
      }
    }
    std::sort(heap.begin(), heap.end());
    std::vector<bool> chosen(nlist, false);
    for (uint32_t i = 0; i < nprobe; ++i) {
      order[i] = static_cast<uint32_t>(heap[i]);
      chosen[order[i]] = true;
    }
    uint32_t next = nprobe;
    for (uint32_t c = 0; c < nlist; ++c) {
      if (!chosen[c]) order[next++] = c;
    }
  }

  // The first pass's candidates (ids = packed slots) re-ranked with their
  // int8 codes: the best kk, ids = labels, as a scan without a first pass
  // would have ranked them.
  static std::vector<Candidate> ReRank(const IvfIndex& ix, const ScanShared& s, const ScanCtx& c,
                                       const std::vector<Candidate>& first, size_t kk) {
    TopK top(kk);
    const QueryCode& q = *c.q;
    constexpr size_t kAhead = 8;
    auto code_of = [&](const Candidate& cand) {
      const Slot slot = Unpack(cand.id);
      return ix.lists_[slot.list].codes.get() + size_t{slot.row} * ix.stride_;
    };
    for (size_t i = 0; i < first.size(); ++i) {
      if (i + kAhead < first.size()) {
        const uint8_t* ahead = code_of(first[i + kAhead]);
        for (size_t off = 0; off < s.dim; off += 64) __builtin_prefetch(ahead + off);
      }
      const Slot slot = Unpack(first[i].id);
      const List& l = ix.lists_[slot.list];
      const int32_t dot = ScoreCode(*s.kernels, s.kind, q.codes.data(), code_of(first[i]), s.dim);
      float rank = q.scale * l.scale[slot.row] * static_cast<float>(dot) +
                   l.offset[slot.row] * q.sum + q.bias;
      if (s.use_norms) rank = 2.0f * rank - l.norm_sq[slot.row];
      if (rank > top.threshold() && rank >= c.min_rank) top.Push(rank, l.labels[slot.row]);
    }
    std::vector<Candidate> best = top.Take();
    KeepBest(best, kk);
    return best;
  }

  static StatusOr<std::vector<Hit>> SearchOne(const IvfIndex& ix, const QueryCode& q,
                                              const IvfSearchParams& p,
                                              const OriginalsSource* originals, bool parallel) {
    const uint32_t nlist = ix.model_.nlist;
    const uint32_t nprobe = ix.ResolveNprobe(p);
    std::vector<float> scores;
    std::vector<uint32_t> order;
    ProbeOrder(ix, q, nprobe, scores, order);
    const ScanShared s = Shared(ix, p.filter);
    const ScanCtx c{&q, MinRank(ix, p, q)};
    const size_t kk = CandidateCount(p);
    const OriginalsSource* float_src = p.ignore_quantization ? originals : nullptr;
    // With a first pass, the scan keeps k_scan = kk * factor candidates by
    // their 4-bit ranks; ReRank brings them down to kk by int8 ranks.
    size_t k_scan = kk;
    Code4Lut lut;
    FirstPassScan fp{};
    const FirstPassScan* first_pass = nullptr;
    if (ix.UsesFirstPass(p)) {
      float retention = 1;
      const double factor = ix.FirstPassFactor(p, &retention);
      k_scan = static_cast<size_t>(std::min(std::ceil(static_cast<double>(kk) * factor), 1e9));
      ix.model_.first_pass.BuildLut(q.vector.data(), &lut);
      fp = FirstPassScan{&lut, ix.centroid_floats_.data(), ix.model_.first_pass.block_bytes(),
                         ix.model_.first_pass.m_padded()};
      first_pass = &fp;
    }
    std::vector<Candidate> all;
    size_t pushed = 0;
    QVEC_RETURN_IF_ERROR(ScanLists(ix, s, c, order.data(), nprobe, k_scan, parallel, float_src,
                                   first_pass, &all, &pushed));
    if (p.filter != nullptr && pushed < p.k && nprobe < nlist) {
      // Keep probing in centroid order, doubling the probed lists per round.
      auto by = [&](uint32_t a, uint32_t b) {
        return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
      };
      std::sort(order.begin() + nprobe, order.end(), by);
      size_t done = nprobe;
      while (pushed < p.k && done < nlist) {
        const size_t step = std::min<size_t>(nlist - done, std::max<size_t>(done, 1));
        QVEC_RETURN_IF_ERROR(ScanLists(ix, s, c, order.data() + done, step, k_scan, parallel,
                                       float_src, first_pass, &all, &pushed));
        done += step;
        Shrink(all, k_scan);
      }
    }
    KeepBest(all, k_scan);
    if (first_pass != nullptr) all = ReRank(ix, s, c, all, kk);
    return Finish(ix, q, std::move(all), p, p.ignore_quantization ? nullptr : originals);
  }
};

void IvfIndex::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

IvfIndex::IvfIndex(Quantizer quantizer, IvfModel model, ThreadPool* pool)
    : quantizer_(std::move(quantizer)),
      model_(std::move(model)),
      pool_(pool != nullptr ? pool : &ThreadPool::Default()),
      // Rows are padded to 16 bytes, not 64: the scan kernels load rows
      // unaligned and stream them sequentially, and at 784 dimensions 64-byte
      // padding would cost 6% more memory for no speed.
      stride_((quantizer_.dim() + 15) / 16 * 16) {
  centroids_ = Int8Centroids(model_.centroids.data(), model_.nlist, model_.dim,
                             Describe(model_.metric).kmeans == KmeansKind::kL2);
  // Probing and assignment only read the int8 copy; the float centroids
  // (4x its size) live on in the caller's persisted model.
  model_.centroids.clear();
  model_.centroids.shrink_to_fit();
  if (!model_.first_pass.empty()) centroid_floats_ = centroids_.Dequantized();
  lists_.resize(model_.nlist);
}

IvfIndex::~IvfIndex() = default;
IvfIndex::IvfIndex(IvfIndex&&) noexcept = default;
IvfIndex& IvfIndex::operator=(IvfIndex&&) noexcept = default;

StatusOr<IvfIndex> IvfIndex::Create(Quantizer quantizer, IvfModel model, ThreadPool* pool) {
  QVEC_RETURN_IF_ERROR(model.Validate());
  if (model.dim != quantizer.dim()) return InvalidArgumentError("IVF model dim != quantizer dim");
  if (model.metric != quantizer.metric()) {
    return InvalidArgumentError("IVF model metric != quantizer metric");
  }
  if (!model.first_pass.empty() &&
      Describe(model.metric).int_scoring != IntScoring::kInnerProduct) {
    return InvalidArgumentError("4-bit first pass needs an inner-product or Euclid metric");
  }
  return IvfIndex(std::move(quantizer), std::move(model), pool);
}

void IvfIndex::ProbeScores(const float* q, float* out) const {
  const size_t dim = model_.dim;
  const uint32_t nlist = model_.nlist;
  const Int8CentroidView c = centroids_.view();
  std::vector<int8_t> qcodes(dim);
  std::vector<int32_t> dots(nlist);
  const float qs = QuantizeSymmetricRow(q, dim, qcodes.data());
  ActiveKernels().dot_s8_many(qcodes.data(), c.codes, c.stride, nlist, dim, dots.data());
  for (uint32_t i = 0; i < nlist; ++i) out[i] = qs * c.scale[i] * static_cast<float>(dots[i]);
  if (Describe(model_.metric).l2_centroids) {
    for (uint32_t i = 0; i < nlist; ++i) out[i] = 2.0f * out[i] - c.norm_sq[i];
  }
}

uint32_t IvfIndex::Assign(const float* preprocessed) const {
  uint32_t list = 0;
  AssignNearest(centroids_.view(), preprocessed, 1, &list, nullptr, nullptr);
  return list;
}

void IvfIndex::AssignBatch(const float* preprocessed, size_t n, uint32_t* lists) const {
  AssignNearest(centroids_.view(), preprocessed, n, lists, nullptr, pool_);
}

void IvfIndex::Reserve(List& list, size_t rows) {
  if (rows <= list.capacity) return;
  // Growing by a quarter (not doubling) keeps the slack of many small lists
  // near 12% of the codes instead of up to 50%; copies stay amortized O(1).
  const size_t cap = std::max({rows, list.capacity + list.capacity / 4, size_t{16}});
  auto* fresh = static_cast<uint8_t*>(std::aligned_alloc(64, AllocBytes(cap * stride_)));
  if (fresh == nullptr) std::abort();  // out of memory
  if (list.codes) std::memcpy(fresh, list.codes.get(), list.size() * stride_);
  list.codes.reset(fresh);
  list.capacity = cap;
}

void IvfIndex::ShrinkToFit() {
  for (List& list : lists_) {
    const size_t rows = list.size();
    if (rows == list.capacity) continue;
    uint8_t* fresh = nullptr;
    if (rows > 0) {
      fresh = static_cast<uint8_t*>(std::aligned_alloc(64, AllocBytes(rows * stride_)));
      if (fresh == nullptr) std::abort();  // out of memory
      std::memcpy(fresh, list.codes.get(), rows * stride_);
    }
    list.codes.reset(fresh);
    list.capacity = rows;
    list.labels.shrink_to_fit();
    list.scale.shrink_to_fit();
    list.offset.shrink_to_fit();
    list.norm_sq.shrink_to_fit();
    if (!model_.first_pass.empty()) {
      list.codes4.resize((rows + kCode4BlockRows - 1) / kCode4BlockRows *
                         model_.first_pass.block_bytes());
      list.codes4.shrink_to_fit();
    }
  }
}

void IvfIndex::RemoveAt(Slot slot) {
  List& l = lists_[slot.list];
  const size_t row = slot.row, last = l.size() - 1;
  if (row != last) {
    std::memcpy(l.codes.get() + row * stride_, l.codes.get() + last * stride_, stride_);
    l.labels[row] = l.labels[last];
    l.scale[row] = l.scale[last];
    l.offset[row] = l.offset[last];
    l.norm_sq[row] = l.norm_sq[last];
    const Pq4Codebook& cb = model_.first_pass;
    for (size_t j = 0; j < cb.m(); ++j) {
      SetCode4(l.codes4.data(), cb.block_bytes(), row, j,
               GetCode4(l.codes4.data(), cb.block_bytes(), last, j));
    }
    where_.Set(l.labels[row], Pack(Slot{slot.list, static_cast<uint32_t>(row)}));
  }
  l.labels.pop_back();
  l.scale.pop_back();
  l.offset.pop_back();
  l.norm_sq.pop_back();
}

Status IvfIndex::Add(uint64_t label, uint32_t list, const uint8_t* blob, size_t blob_size) {
  const size_t dim = quantizer_.dim();
  if (blob_size != quantizer_.EncodedSize()) {
    return InvalidArgumentError("encoded vector has the wrong size");
  }
  if (list >= model_.nlist) return InvalidArgumentError("IVF list out of range");
  const VectorMeta meta = Quantizer::ReadMeta(blob, dim);
  if (!std::isfinite(meta.scale) || !std::isfinite(meta.offset) || !std::isfinite(meta.norm_sq)) {
    return InvalidArgumentError("encoded vector has non-finite metadata");
  }
  Slot slot;
  const uint64_t* found = where_.Find(label);
  if (found != nullptr && Unpack(*found).list == list) {
    slot = Unpack(*found);
  } else {
    if (found != nullptr) RemoveAt(Unpack(*found));
    List& l = lists_[list];
    if (l.size() >= std::numeric_limits<uint32_t>::max()) {
      return ResourceExhaustedError("IVF list is full");
    }
    Reserve(l, l.size() + 1);
    slot = Slot{list, static_cast<uint32_t>(l.size())};
    l.labels.push_back(label);
    l.scale.push_back(0);
    l.offset.push_back(0);
    l.norm_sq.push_back(0);
    where_.Set(label, Pack(slot));
  }
  List& l = lists_[slot.list];
  uint8_t* dst = l.codes.get() + size_t{slot.row} * stride_;
  std::memcpy(dst, blob, dim);
  std::memset(dst + dim, 0, stride_ - dim);
  l.scale[slot.row] = meta.scale;
  l.offset[slot.row] = meta.offset;
  l.norm_sq[slot.row] = meta.norm_sq;
  if (!model_.first_pass.empty()) EncodeFirstPass(slot.list, slot.row, blob);
  return Status::Ok();
}

void IvfIndex::EncodeFirstPass(uint32_t list, size_t row, const uint8_t* blob) {
  const Pq4Codebook& cb = model_.first_pass;
  const size_t dim = quantizer_.dim();
  List& l = lists_[list];
  const size_t need = (row / kCode4BlockRows + 1) * cb.block_bytes();
  if (l.codes4.size() < need) {
    // Grow by a quarter, as the int8 rows do; new blocks are zero.
    l.codes4.reserve(std::max(need, l.codes4.size() + l.codes4.size() / 4));
    l.codes4.resize(need, 0);
  }
  // The code of the int8 reconstruction's residual: the int8 codes are what
  // the index is rebuilt from, and their error is far below 4-bit's.
  std::vector<float> residual(dim);
  std::vector<uint8_t> codes(cb.m());
  quantizer_.Decode(blob, residual.data());
  const float* centroid = centroid_floats_.data() + size_t{list} * dim;
  for (size_t i = 0; i < dim; ++i) residual[i] -= centroid[i];
  cb.Encode(residual.data(), codes.data());
  for (size_t j = 0; j < codes.size(); ++j) {
    SetCode4(l.codes4.data(), cb.block_bytes(), row, j, codes[j]);
  }
}

Status IvfIndex::AddVector(uint64_t label, const float* x) {
  const size_t dim = quantizer_.dim();
  std::vector<float> pre(x, x + dim);
  QVEC_RETURN_IF_ERROR(quantizer_.Preprocess(pre.data()));
  std::vector<uint8_t> blob(quantizer_.EncodedSize());
  QVEC_RETURN_IF_ERROR(quantizer_.Encode(pre.data(), blob.data()));
  return Add(label, Assign(pre.data()), blob.data(), blob.size());
}

bool IvfIndex::Remove(uint64_t label) {
  const uint64_t* found = where_.Find(label);
  if (found == nullptr) return false;
  const Slot slot = Unpack(*found);
  where_.Erase(label);
  RemoveAt(slot);
  return true;
}

size_t IvfIndex::MemoryBytes() const {
  size_t bytes = model_.centroids.capacity() * sizeof(float) + centroids_.MemoryBytes() +
                 lists_.capacity() * sizeof(List);
  for (const List& l : lists_) {
    bytes += l.capacity * stride_ + l.labels.capacity() * sizeof(uint64_t) +
             (l.scale.capacity() + l.offset.capacity() + l.norm_sq.capacity()) * sizeof(float) +
             l.codes4.capacity();
  }
  bytes += centroid_floats_.capacity() * sizeof(float) + model_.first_pass.MemoryBytes();
  bytes += where_.MemoryBytes();
  return bytes;
}

float IvfIndex::FirstPassFactor(const IvfSearchParams& p, float* retention) const {
  if (p.first_pass_oversampling > 0.0f) {
    // An explicit factor: the retention the curve measured at or below it.
    *retention = model_.first_pass_curve.empty() ? 1.0f : model_.first_pass_curve.front().second;
    for (const auto& [factor, kept] : model_.first_pass_curve) {
      if (factor <= p.first_pass_oversampling) *retention = kept;
    }
    return p.first_pass_oversampling;
  }
  return FirstPassOversampling(model_, p.target_recall, retention);
}

uint32_t IvfIndex::ResolveNprobe(const IvfSearchParams& p) const {
  if (p.nprobe != 0) return std::clamp<uint32_t>(p.nprobe, 1, model_.nlist);
  float target = p.target_recall, quantization_recall = p.quantization_recall;
  if (UsesFirstPass(p)) {
    // The probed lists must also make up for what the first pass loses.
    float retention = 1;
    (void)FirstPassFactor(p, &retention);
    if (retention > 0.0f) {
      if (quantization_recall > 0.0f) {
        quantization_recall *= retention;
      } else {
        target = std::min(1.0f, target / retention);
      }
    }
  }
  return std::clamp<uint32_t>(NprobeForRecall(model_, target, quantization_recall), 1,
                              model_.nlist);
}

Status IvfIndex::CheckParams(const IvfSearchParams& p, const OriginalsSource* originals) const {
  if (p.k == 0 || p.k > kMaxSearchK)
    return InvalidArgumentError("k must be in [1, " + std::to_string(kMaxSearchK) + "]");
  if (!(p.oversampling >= 1.0f) || !std::isfinite(p.oversampling)) {
    return InvalidArgumentError("oversampling must be a finite value >= 1");
  }
  if (p.score_threshold && !std::isfinite(*p.score_threshold)) {
    return InvalidArgumentError("score_threshold must be finite");
  }
  if (p.first_pass_oversampling != 0.0f &&
      !(p.first_pass_oversampling >= 1.0f && std::isfinite(p.first_pass_oversampling))) {
    return InvalidArgumentError("first_pass_oversampling must be 0 (auto) or a finite value >= 1");
  }
  if (p.nprobe == 0 && !(p.target_recall > 0.0f && p.target_recall <= 1.0f)) {
    return InvalidArgumentError("target_recall must be in (0, 1]");
  }
  if ((p.rescore || p.ignore_quantization) && originals == nullptr) {
    return FailedPreconditionError("rescoring needs the float originals");
  }
  return Status::Ok();
}

StatusOr<std::vector<Hit>> IvfIndex::Search(const float* query, const IvfSearchParams& params,
                                            const OriginalsSource* originals) const {
  QVEC_RETURN_IF_ERROR(CheckParams(params, originals));
  QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(query));
  return Impl::SearchOne(*this, q, params, originals, /*parallel=*/true);
}

StatusOr<std::vector<std::vector<Hit>>> IvfIndex::SearchBatch(
    const float* queries, size_t nq, const IvfSearchParams& params,
    const OriginalsSource* originals) const {
  QVEC_RETURN_IF_ERROR(CheckParams(params, originals));
  const size_t dim = quantizer_.dim();
  std::vector<QueryCode> prepared;
  prepared.reserve(nq);
  for (size_t i = 0; i < nq; ++i) {
    QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(queries + i * dim));
    prepared.push_back(std::move(q));
  }
  std::vector<std::vector<Hit>> results(nq);
  if (nq == 0) return results;
  const size_t threads = pool_->num_threads();
  if (params.filter != nullptr || params.ignore_quantization || nq < threads ||
      UsesFirstPass(params)) {
    // Per query; a query may probe further lists (filter) or fetch originals.
    std::vector<Status> errors(nq);
    const bool inner_parallel = nq < threads;
    pool_->ParallelFor(nq, [&](size_t i) {
      auto hits = Impl::SearchOne(*this, prepared[i], params, originals, inner_parallel);
      if (hits.ok()) {
        results[i] = std::move(hits).value();
      } else {
        errors[i] = hits.status();
      }
    });
    for (const Status& s : errors) QVEC_RETURN_IF_ERROR(s);
    return results;
  }
  // Tiles of queries; inside a tile, queries are grouped by probed list so
  // each list's codes are read once for all of them (batch kernel).
  const uint32_t nprobe = ResolveNprobe(params);
  const size_t kk = Impl::CandidateCount(params);
  const size_t tile = std::clamp<size_t>((nq + 2 * threads - 1) / (2 * threads), 1, kMaxQueryTile);
  const size_t num_tasks = (nq + tile - 1) / tile;
  const ScanShared s = Impl::Shared(*this, nullptr);
  std::vector<Status> errors(num_tasks);
  pool_->ParallelFor(num_tasks, [&](size_t task) {
    const size_t q0 = task * tile, tq = std::min(tile, nq - q0);
    std::vector<float> scores;
    std::vector<uint32_t> order;
    // (list, query in tile) pairs, sorted by list.
    std::vector<uint64_t> pairs;
    pairs.reserve(tq * nprobe);
    std::vector<ScanCtx> ctx;
    std::vector<TopK> tops;
    ctx.reserve(tq);
    tops.reserve(tq);
    for (size_t i = 0; i < tq; ++i) {
      const QueryCode& q = prepared[q0 + i];
      Impl::ProbeOrder(*this, q, nprobe, scores, order);
      for (uint32_t j = 0; j < nprobe; ++j) pairs.push_back((uint64_t{order[j]} << 32) | i);
      ctx.push_back({&q, Impl::MinRank(*this, params, q)});
      tops.emplace_back(kk);
    }
    std::sort(pairs.begin(), pairs.end());
    std::vector<int8_t> qcodes;
    std::vector<int32_t> dots(std::max(kScanBlock, tq * kBatchRowBlock));
    alignas(64) float ranks[kScanBlock];
    std::vector<uint32_t> group;
    for (size_t g0 = 0; g0 < pairs.size();) {
      const uint32_t list = static_cast<uint32_t>(pairs[g0] >> 32);
      size_t g1 = g0;
      group.clear();
      while (g1 < pairs.size() && static_cast<uint32_t>(pairs[g1] >> 32) == list) {
        group.push_back(static_cast<uint32_t>(pairs[g1] & 0xffffffffu));
        ++g1;
      }
      g0 = g1;
      const List& l = lists_[list];
      const size_t n = l.size();
      if (n == 0) continue;
      if (group.size() < kMinBatchGroup) {
        for (uint32_t qi : group) ScanList(s, ctx[qi], l, tops[qi]);
        continue;
      }
      const size_t ng = group.size();
      qcodes.resize(ng * dim);
      for (size_t gi = 0; gi < ng; ++gi) {
        const auto& codes = ctx[group[gi]].q->codes;
        std::copy(codes.begin(), codes.end(), qcodes.begin() + gi * dim);
      }
      for (size_t r0 = 0; r0 < n; r0 += kBatchRowBlock) {
        const size_t nb = std::min(kBatchRowBlock, n - r0);
        const uint8_t* codes = l.codes.get() + r0 * stride_;
        ScoreCodesBatch(*s.kernels, s.kind, qcodes.data(), dim, ng, codes, stride_, nb, dim,
                        dots.data());
        for (size_t gi = 0; gi < ng; ++gi) {
          Consume(s, ctx[group[gi]], l, r0, nb, dots.data() + gi * nb, ranks, tops[group[gi]]);
        }
      }
    }
    for (size_t i = 0; i < tq; ++i) {
      std::vector<Candidate> best = tops[i].Take();
      KeepBest(best, kk);
      auto hits = Impl::Finish(*this, prepared[q0 + i], std::move(best), params, originals);
      if (!hits.ok()) {
        errors[task] = hits.status();
        return;
      }
      results[q0 + i] = std::move(hits).value();
    }
  });
  for (const Status& st : errors) QVEC_RETURN_IF_ERROR(st);
  return results;
}

StatusOr<std::vector<Hit>> IvfIndex::SearchAllowed(const float* query,
                                                   const IvfSearchParams& params,
                                                   const std::vector<uint64_t>& allowed_labels,
                                                   const OriginalsSource* originals) const {
  QVEC_RETURN_IF_ERROR(CheckParams(params, originals));
  QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer_.PrepareQuery(query));
  const ScanShared s = Impl::Shared(*this, params.filter);
  const float min_rank = Impl::MinRank(*this, params, q);
  const size_t kk = Impl::CandidateCount(params);
  // Rows of the allowed labels (duplicates and unknown labels dropped).
  std::vector<Slot> slots;
  slots.reserve(allowed_labels.size());
  {
    std::unordered_set<uint64_t> seen;
    seen.reserve(allowed_labels.size());
    for (uint64_t label : allowed_labels) {
      const uint64_t* found = where_.Find(label);
      if (found == nullptr || !seen.insert(label).second) continue;
      if (s.filter != nullptr && !(*s.filter)(label)) continue;
      slots.push_back(Unpack(*found));
    }
  }
  TopK top(kk);
  if (params.ignore_quantization) {
    const size_t chunk = 1024;
    std::vector<uint64_t> labels;
    std::vector<float> vectors, ranks;
    for (size_t b = 0; b < slots.size(); b += chunk) {
      const size_t nb = std::min(chunk, slots.size() - b);
      labels.resize(nb);
      for (size_t j = 0; j < nb; ++j)
        labels[j] = lists_[slots[b + j].list].labels[slots[b + j].row];
      vectors.resize(nb * s.dim);
      ranks.resize(nb);
      QVEC_RETURN_IF_ERROR(originals->Fetch(labels.data(), nb, vectors.data()));
      for (size_t j = 0; j < nb; ++j) {
        ranks[j] =
            ExactRank(s.metric, q.vector.data(), vectors.data() + j * s.dim, s.dim, q.norm_sq);
      }
      for (size_t j = 0; j < nb; ++j) {
        if (ranks[j] > top.threshold() && ranks[j] >= min_rank) top.Push(ranks[j], labels[j]);
      }
    }
  } else {
    for (const Slot& slot : slots) {
      const List& l = lists_[slot.list];
      const uint8_t* code = l.codes.get() + size_t{slot.row} * stride_;
      const int32_t dot = ScoreCode(*s.kernels, s.kind, q.codes.data(), code, s.dim);
      float rank = q.scale * l.scale[slot.row] * static_cast<float>(dot) +
                   l.offset[slot.row] * q.sum + q.bias;
      if (s.use_norms) rank = 2.0f * rank - l.norm_sq[slot.row];
      if (rank > top.threshold() && rank >= min_rank) top.Push(rank, l.labels[slot.row]);
    }
  }
  std::vector<Candidate> best = top.Take();
  KeepBest(best, kk);
  return Impl::Finish(*this, q, std::move(best), params,
                      params.ignore_quantization ? nullptr : originals);
}

IvfHealth IvfIndex::Health() const {
  IvfHealth h;
  h.nlist = model_.nlist;
  h.size = size();
  std::vector<size_t> sizes(lists_.size());
  for (size_t i = 0; i < lists_.size(); ++i) sizes[i] = lists_[i].size();
  std::sort(sizes.begin(), sizes.end());
  if (!sizes.empty()) {
    h.min_list = sizes.front();
    h.max_list = sizes.back();
    h.median_list = sizes[sizes.size() / 2];
    h.empty_lists = static_cast<size_t>(std::count(sizes.begin(), sizes.end(), size_t{0}));
    const double mean = static_cast<double>(h.size) / sizes.size();
    h.imbalance = mean > 0 ? static_cast<double>(h.max_list) / mean : 0.0;
  }
  h.objective = model_.objective;
  h.training_seconds = model_.training_seconds;
  h.trained_on_points = model_.trained_on_points;
  h.recall_curve = model_.recall_curve;
  return h;
}

// ---------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------

namespace {
IvfSearchParams ToIvfParams(const IndexSearchParams& p, uint32_t nlist) {
  IvfSearchParams ip;
  ip.k = p.k;
  ip.filter = p.filter;
  ip.nprobe = p.exhaustive ? nlist : p.nprobe;
  ip.target_recall = p.target_recall;
  ip.quantization_recall = p.quantization_recall;
  ip.first_pass = !p.exhaustive;  // exhaustive = the exact int8 answer
  return ip;
}
}  // namespace

StatusOr<std::vector<Hit>> IvfIndex::Search(const float* query,
                                            const IndexSearchParams& params) const {
  return Search(query, ToIvfParams(params, nlist()), nullptr);
}

StatusOr<std::vector<std::vector<Hit>>> IvfIndex::SearchBatch(
    const float* queries, size_t nq, const IndexSearchParams& params) const {
  return SearchBatch(queries, nq, ToIvfParams(params, nlist()), nullptr);
}

StatusOr<std::vector<Hit>> IvfIndex::SearchSubset(const float* query,
                                                  const IndexSearchParams& params,
                                                  const std::vector<uint64_t>& labels) const {
  return SearchAllowed(query, ToIvfParams(params, nlist()), labels, nullptr);
}

IndexStats IvfIndex::Stats() const {
  const IvfHealth h = Health();
  IndexStats s;
  s.kind = IndexKind::kIvf;
  s.size = h.size;
  s.memory_bytes = MemoryBytes();
  s.nlist = h.nlist;
  s.min_list = h.min_list;
  s.median_list = h.median_list;
  s.max_list = h.max_list;
  s.empty_lists = h.empty_lists;
  s.imbalance = h.imbalance;
  s.objective = h.objective;
  s.training_seconds = h.training_seconds;
  s.trained_on_points = h.trained_on_points;
  s.recall_curve = h.recall_curve;
  s.first_pass = std::string(FirstPassKindName(model_.first_pass.kind()));
  s.first_pass_curve = model_.first_pass_curve;
  s.list_sizes.reserve(lists_.size());
  for (const List& l : lists_) s.list_sizes.push_back(static_cast<uint32_t>(l.size()));
  return s;
}

namespace {

// Trains model->first_pass on the residuals of evenly spaced rows of `pre`
// (n preprocessed vectors) from their lists' (int8) centroids, the
// reference points the index codes against.
Status TrainFirstPassCodebook(const Quantizer& quantizer, IvfModel* model, const float* pre,
                              size_t n, FirstPassKind kind, uint32_t dsub, uint32_t seed,
                              ThreadPool* pool) {
  if (Describe(quantizer.metric()).int_scoring != IntScoring::kInnerProduct) {
    return InvalidArgumentError("4-bit first pass needs an inner-product or Euclid metric");
  }
  const size_t dim = quantizer.dim();
  if (dsub == 0) dsub = kind == FirstPassKind::kSq4 ? 1u : (dim >= 512 ? 4u : 2u);
  IvfModel plain = *model;
  plain.first_pass = {};
  plain.first_pass_curve.clear();
  QVEC_ASSIGN_OR_RETURN(IvfIndex coarse, IvfIndex::Create(quantizer, std::move(plain), pool));
  const std::vector<float> centroids = coarse.SlotCentroids();
  const size_t ns = std::min<size_t>(n, kFirstPassTrainingRows);
  std::vector<float> residuals(ns * dim);
  for (size_t i = 0; i < ns; ++i) {
    const size_t row = i * n / ns;
    std::copy(pre + row * dim, pre + (row + 1) * dim, residuals.begin() + i * dim);
  }
  std::vector<uint32_t> lists(ns);
  coarse.AssignBatch(residuals.data(), ns, lists.data());
  for (size_t i = 0; i < ns; ++i) {
    const float* c = centroids.data() + size_t{lists[i]} * dim;
    for (size_t d = 0; d < dim; ++d) residuals[i * dim + d] -= c[d];
  }
  QVEC_ASSIGN_OR_RETURN(model->first_pass,
                        Pq4Codebook::Train(kind, static_cast<uint32_t>(dim), dsub,
                                           residuals.data(), ns, seed));
  model->first_pass_curve.clear();
  return Status::Ok();
}

// Fills model->first_pass_curve: the retention of the int8 scan's top 10
// at the nprobe a 0.95 target probes, for each first-pass oversampling.
// `index` holds the sample with the model's first pass.
Status MeasureFirstPassCurve(const IvfIndex& index, const float* queries, size_t nq,
                             IvfModel* model) {
  IvfSearchParams params;
  params.k = 10;
  params.nprobe = NprobeForRecall(*model, 0.95f);
  params.first_pass = false;
  QVEC_ASSIGN_OR_RETURN(auto int8, index.SearchBatch(queries, nq, params));
  std::vector<std::vector<uint64_t>> int8_labels(nq);
  for (size_t i = 0; i < nq; ++i) {
    for (const Hit& h : int8[i]) int8_labels[i].push_back(h.label);
  }
  params.first_pass = true;
  model->first_pass_curve.clear();
  for (float factor : kFirstPassGrid) {
    params.first_pass_oversampling = factor;
    QVEC_ASSIGN_OR_RETURN(auto got, index.SearchBatch(queries, nq, params));
    model->first_pass_curve.emplace_back(factor, static_cast<float>(RecallAtK(int8_labels, got)));
  }
  return Status::Ok();
}

// The sample's int8 IVF (preprocessed rows [0, n) of `pre`).
StatusOr<IvfIndex> SampleIndex(const Quantizer& quantizer, const IvfModel& model,
                               const float* pre, size_t n, ThreadPool* pool) {
  const size_t dim = quantizer.dim();
  QVEC_ASSIGN_OR_RETURN(IvfIndex index, IvfIndex::Create(quantizer, model, pool));
  std::vector<uint32_t> lists(n);
  index.AssignBatch(pre, n, lists.data());
  std::vector<uint8_t> blob(quantizer.EncodedSize());
  for (size_t i = 0; i < n; ++i) {
    QVEC_RETURN_IF_ERROR(quantizer.Encode(pre + i * dim, blob.data()));
    QVEC_RETURN_IF_ERROR(index.Add(i, lists[i], blob.data(), blob.size()));
  }
  return index;
}

}  // namespace

Status AddFirstPass(const Quantizer& quantizer, IvfModel* model, const float* sample, size_t n,
                    FirstPassKind kind, uint32_t dsub, ThreadPool* pool) {
  if (kind == FirstPassKind::kNone) {
    model->first_pass = {};
    model->first_pass_curve.clear();
    return Status::Ok();
  }
  const size_t dim = quantizer.dim();
  if (model->dim != dim) return InvalidArgumentError("IVF model dim != quantizer dim");
  std::vector<float> pre(sample, sample + n * dim);
  for (size_t i = 0; i < n; ++i) QVEC_RETURN_IF_ERROR(quantizer.Preprocess(pre.data() + i * dim));
  const size_t held_out = IvfHeldOut(n, true);
  const size_t nb = n - held_out;
  if (nb < 16) return FailedPreconditionError("4-bit first pass needs at least 16 sample vectors");
  QVEC_RETURN_IF_ERROR(
      TrainFirstPassCodebook(quantizer, model, pre.data(), nb, kind, dsub, 1234, pool));
  if (held_out > 0 && !model->recall_curve.empty()) {
    QVEC_ASSIGN_OR_RETURN(IvfIndex index, SampleIndex(quantizer, *model, pre.data(), nb, pool));
    QVEC_RETURN_IF_ERROR(MeasureFirstPassCurve(index, pre.data() + nb * dim, held_out, model));
  }
  return Status::Ok();
}

StatusOr<IvfModel> TrainIvf(const Quantizer& quantizer, const float* sample, size_t n,
                            const IvfTrainOptions& options, ThreadPool* pool) {
  const auto start = std::chrono::steady_clock::now();
  const size_t dim = quantizer.dim();
  if (n == 0) return FailedPreconditionError("IVF training needs a non-empty sample");
  std::vector<float> pre(sample, sample + n * dim);
  for (size_t i = 0; i < n; ++i) QVEC_RETURN_IF_ERROR(quantizer.Preprocess(pre.data() + i * dim));
  const size_t held_out = IvfHeldOut(n, options.recall_curve);
  const size_t nb = n - held_out;
  const uint32_t nlist = options.nlist != 0 ? options.nlist : DefaultNlist(nb);
  if (nlist > kMaxNlist) {
    return InvalidArgumentError("nlist must be <= " + std::to_string(kMaxNlist));
  }
  if (nb < nlist) {
    return FailedPreconditionError("IVF training needs at least nlist sample vectors");
  }
  KmeansOptions ko;
  ko.k = nlist;
  ko.niter = options.niter;
  ko.seed = options.seed;
  ko.max_points_per_centroid = options.max_points_per_centroid;
  ko.spherical = Describe(quantizer.metric()).kmeans == KmeansKind::kSphericalIp;
  ko.inner_product = ko.spherical;
  ko.cancel = options.cancel;
  ko.hierarchical_from = options.hierarchical_from;
  QVEC_ASSIGN_OR_RETURN(KmeansResult km, Kmeans(pre.data(), nb, dim, ko, pool));
  IvfModel model;
  model.metric = quantizer.metric();
  model.dim = static_cast<uint32_t>(dim);
  model.nlist = nlist;
  model.centroids = std::move(km.centroids);
  model.objective = km.objective;
  model.trained_on_points = km.points_used;
  if (options.first_pass != FirstPassKind::kNone) {
    QVEC_RETURN_IF_ERROR(TrainFirstPassCodebook(quantizer, &model, pre.data(), nb,
                                                options.first_pass, options.first_pass_dsub,
                                                options.seed, pool));
  }
  if (held_out > 0) {
    const float* queries = pre.data() + nb * dim;
    QVEC_ASSIGN_OR_RETURN(IvfIndex index, SampleIndex(quantizer, model, pre.data(), nb, pool));
    const std::vector<std::vector<uint64_t>> truth =
        GemmTopK(quantizer.metric(), pre.data(), nb, queries, held_out, dim, 10);
    for (uint32_t nprobe = 1;; nprobe = std::min(nlist, nprobe * 2)) {
      if (options.cancel != nullptr && options.cancel->load()) {
        return AbortedError("IVF training cancelled");
      }
      IvfSearchParams params;
      params.k = 10;
      params.nprobe = nprobe;
      QVEC_ASSIGN_OR_RETURN(auto got, index.SearchBatch(queries, held_out, params));
      model.recall_curve.emplace_back(nprobe, static_cast<float>(RecallAtK(truth, got)));
      if (nprobe == nlist) break;
    }
    if (!model.first_pass.empty()) {
      QVEC_RETURN_IF_ERROR(MeasureFirstPassCurve(index, queries, held_out, &model));
    }
  }
  model.training_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return model;
}

}  // namespace qvec::index
