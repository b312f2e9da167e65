#include "index/quality.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "index/kernels.h"

namespace qvec::index {

StatusOr<QualityReport> Measure(const Quantizer& quantizer, const float* vectors, size_t n,
                                size_t max_pairs, uint64_t seed) {
  if (n == 0) {
    return InvalidArgumentError("quality: empty sample");
  }
  const size_t dim = quantizer.dim();
  const size_t blob_size = quantizer.EncodedSize();
  std::vector<float> pre(vectors, vectors + n * dim);
  std::vector<uint8_t> blobs(n * blob_size);
  std::vector<float> decoded(dim);
  QualityReport r;
  r.vectors = n;
  double err_sum = 0, signal_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    float* x = pre.data() + i * dim;
    QVEC_RETURN_IF_ERROR(quantizer.Preprocess(x));
    QVEC_RETURN_IF_ERROR(quantizer.Encode(x, blobs.data() + i * blob_size));
    quantizer.Decode(blobs.data() + i * blob_size, decoded.data());
    for (size_t d = 0; d < dim; ++d) {
      const double e = static_cast<double>(x[d]) - decoded[d];
      err_sum += e * e;
      signal_sum += static_cast<double>(x[d]) * x[d];
      r.max_abs_error = std::max(r.max_abs_error, std::fabs(e));
    }
  }
  r.mse = err_sum / static_cast<double>(n * dim);
  r.sqnr_db = err_sum > 0 ? 10.0 * std::log10(signal_sum / err_sum)
                          : std::numeric_limits<double>::infinity();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, n - 1);
  const size_t pairs = std::min(max_pairs, n * n);
  double score_err_sum = 0;
  for (size_t p = 0; p < pairs; ++p) {
    const size_t qi = pick(rng), xi = pick(rng);
    QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer.PrepareQuery(vectors + qi * dim));
    const uint8_t* blob = blobs.data() + xi * blob_size;
    const float approx = quantizer.ToScore(quantizer.ApproxRank(q, blob), q);
    const float* x = pre.data() + xi * dim;
    const float exact = ExactScore(quantizer.metric(), q.vector.data(), x, dim);
    const double e = std::fabs(static_cast<double>(approx) - exact);
    score_err_sum += e;
    r.score_max_abs_error = std::max(r.score_max_abs_error, e);
  }
  r.pairs = pairs;
  r.score_mean_abs_error = pairs ? score_err_sum / static_cast<double>(pairs) : 0;
  return r;
}

StatusOr<std::vector<RescorePoint>> MeasureRescoreCurve(const Quantizer& quantizer,
                                                        const float* base, size_t n,
                                                        const float* queries, size_t nq,
                                                        size_t k) {
  if (n == 0 || nq == 0 || k == 0) {
    return InvalidArgumentError("rescore curve: empty base or query sample");
  }
  const size_t dim = quantizer.dim();
  const size_t blob_size = quantizer.EncodedSize();
  const Metric metric = quantizer.metric();
  k = std::min(k, n);
  std::vector<float> pre(base, base + n * dim);
  std::vector<uint8_t> blobs(n * blob_size);
  for (size_t i = 0; i < n; ++i) {
    float* x = pre.data() + i * dim;
    QVEC_RETURN_IF_ERROR(quantizer.Preprocess(x));
    QVEC_RETURN_IF_ERROR(quantizer.Encode(x, blobs.data() + i * blob_size));
  }
  std::vector<size_t> widths;
  for (const float factor : kRescoreGrid) {
    const auto width = static_cast<size_t>(std::ceil(static_cast<double>(k) * factor - 1e-9));
    if (width > n) break;
    widths.push_back(width);
  }
  if (widths.empty()) widths.push_back(n);
  std::vector<double> found(widths.size(), 0);
  std::vector<float> exact(n), approx(n);
  std::vector<uint32_t> order(n), truth(n);
  std::vector<uint32_t> rank_of(n);
  for (size_t qi = 0; qi < nq; ++qi) {
    QVEC_ASSIGN_OR_RETURN(QueryCode q, quantizer.PrepareQuery(queries + qi * dim));
    for (size_t i = 0; i < n; ++i) {
      exact[i] = ExactScore(metric, q.vector.data(), pre.data() + i * dim, dim);
      approx[i] = quantizer.ApproxRank(q, blobs.data() + i * blob_size);
    }
    for (size_t i = 0; i < n; ++i) truth[i] = order[i] = static_cast<uint32_t>(i);
    // Ties broken by label on both sides, as the scans do.
    std::partial_sort(truth.begin(), truth.begin() + static_cast<std::ptrdiff_t>(k), truth.end(),
                      [&](uint32_t a, uint32_t b) {
                        if (exact[a] != exact[b]) return ScoreBetter(metric, exact[a], exact[b]);
                        return a < b;
                      });
    const size_t widest = widths.back();
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(widest),
                      order.end(), [&](uint32_t a, uint32_t b) {
                        if (approx[a] != approx[b]) return approx[a] > approx[b];
                        return a < b;
                      });
    for (size_t r = 0; r < widest; ++r) rank_of[order[r]] = static_cast<uint32_t>(r) + 1;
    for (size_t t = 0; t < k; ++t) {
      const uint32_t rank = rank_of[truth[t]];  // 0 = beyond the widest
      for (size_t w = 0; w < widths.size(); ++w) {
        if (rank != 0 && rank <= widths[w]) found[w] += 1;
      }
    }
    for (size_t r = 0; r < widest; ++r) rank_of[order[r]] = 0;
  }
  std::vector<RescorePoint> curve;
  for (size_t w = 0; w < widths.size(); ++w) {
    RescorePoint point;
    point.oversampling = static_cast<float>(static_cast<double>(widths[w]) / k);
    point.recall = static_cast<float>(found[w] / static_cast<double>(nq * k));
    curve.push_back(point);
  }
  return curve;
}

float OversamplingForRecall(const std::vector<RescorePoint>& curve, float target) {
  if (curve.empty() || !(target > 0)) return 1.0f;
  float best = 0;
  for (const RescorePoint& p : curve) best = std::max(best, p.recall);
  if (best < target) return curve.back().oversampling;
  const float aim = std::max(target, std::min(target + 0.01f, best - 0.002f));
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].recall < aim) continue;
    if (i == 0) return std::max(1.0f, curve[0].oversampling);
    const RescorePoint& a = curve[i - 1];
    const RescorePoint& b = curve[i];
    const float t = (aim - a.recall) / (b.recall - a.recall);
    const float os = a.oversampling + t * (b.oversampling - a.oversampling);
    return std::min(b.oversampling, std::ceil(os * 4.0f - 1e-4f) / 4.0f);
  }
  return curve.back().oversampling;
}

float RecallAtOversampling(const std::vector<RescorePoint>& curve, float oversampling) {
  if (curve.empty()) return 1.0f;
  if (oversampling <= curve.front().oversampling) return curve.front().recall;
  for (size_t i = 1; i < curve.size(); ++i) {
    if (oversampling > curve[i].oversampling) continue;
    const RescorePoint& a = curve[i - 1];
    const RescorePoint& b = curve[i];
    const float t = (oversampling - a.oversampling) / (b.oversampling - a.oversampling);
    return a.recall + t * (b.recall - a.recall);
  }
  return curve.back().recall;
}

}  // namespace qvec::index
