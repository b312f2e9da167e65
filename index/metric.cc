#include "index/metric.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "index/kernels.h"

namespace qvec::index {
namespace {

constexpr std::array<MetricInfo, kNumMetrics> kMetrics = {{
    {Metric::kCosine, "Cosine", /*normalize=*/true, /*lower_is_better=*/false,
     /*bounded_norm=*/false, IntScoring::kInnerProduct, /*rank_uses_norms=*/false,
     /*shared_scale=*/false, KmeansKind::kSphericalIp, /*l2_centroids=*/false},
    {Metric::kDot, "Dot", false, false, true, IntScoring::kInnerProduct, false, false,
     KmeansKind::kL2, false},
    {Metric::kEuclid, "Euclid", false, true, true, IntScoring::kInnerProduct, true, false,
     KmeansKind::kL2, true},
    {Metric::kManhattan, "Manhattan", false, true, true, IntScoring::kL1, false, true,
     KmeansKind::kL2, true},
}};

}  // namespace

const MetricInfo& Describe(Metric m) {
  const size_t i = static_cast<size_t>(m);
  return kMetrics[i < kNumMetrics ? i : 0];
}

float RankToScore(Metric m, float rank, float q_norm_sq) {
  switch (m) {
    case Metric::kEuclid:
      return std::sqrt(std::max(0.0f, q_norm_sq - rank));
    case Metric::kManhattan:
      return -rank;
    default:
      return rank;
  }
}

float ScoreToRank(Metric m, float score, float q_norm_sq) {
  switch (m) {
    case Metric::kEuclid:
      return q_norm_sq - score * score;
    case Metric::kManhattan:
      return -score;
    default:
      return score;
  }
}

bool ScorePasses(Metric m, float a, float threshold) {
  return Describe(m).lower_is_better ? a <= threshold : a >= threshold;
}

float ExactScore(Metric m, const float* q, const float* x, size_t dim) {
  const Kernels& k = ActiveKernels();
  switch (m) {
    case Metric::kEuclid:
      return std::sqrt(k.l2sq_f32(q, x, dim));
    case Metric::kManhattan:
      return k.l1_f32(q, x, dim);
    default:
      return k.dot_f32(q, x, dim);
  }
}

void ExactScores(Metric m, const float* q, const float* x, size_t stride, size_t n, size_t dim,
                 float* out) {
  const Kernels& k = ActiveKernels();
  switch (m) {
    case Metric::kEuclid:
      k.l2sq_f32_many(q, x, stride, n, dim, out);
      for (size_t j = 0; j < n; ++j) out[j] = std::sqrt(out[j]);
      return;
    case Metric::kManhattan:
      for (size_t j = 0; j < n; ++j) out[j] = k.l1_f32(q, x + j * stride, dim);
      return;
    default:
      k.dot_f32_many(q, x, stride, n, dim, out);
      return;
  }
}

float ExactRank(Metric m, const float* q, const float* x, size_t dim, float q_norm_sq) {
  const Kernels& k = ActiveKernels();
  switch (m) {
    case Metric::kEuclid:
      return q_norm_sq - k.l2sq_f32(q, x, dim);
    case Metric::kManhattan:
      return -k.l1_f32(q, x, dim);
    default:
      return k.dot_f32(q, x, dim);
  }
}

}  // namespace qvec::index
