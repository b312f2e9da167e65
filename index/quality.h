// Quantization quality measurement. The only place where codes are decoded
// back to floats.
#ifndef QVEC_INDEX_QUALITY_H_
#define QVEC_INDEX_QUALITY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/quantizer.h"
#include "qvec/status.h"

namespace qvec::index {

struct QualityReport {
  size_t vectors = 0;
  size_t pairs = 0;
  double mse = 0;            // mean squared error of decoded components
  double sqnr_db = 0;        // 10*log10(signal power / mse); +inf when mse == 0
  double max_abs_error = 0;  // largest |x_i - decoded_i|
  // |integer-domain score - float score| over random (query, vector) pairs
  // drawn from the sample; score = metric's user-facing score.
  double score_mean_abs_error = 0;
  double score_max_abs_error = 0;
};

// Measures `quantizer` on n raw vectors (size n * dim) and up to `max_pairs`
// random pairs (fixed `seed`). Errors: those of Encode/PrepareQuery,
// InvalidArgument if n == 0.
[[nodiscard]] StatusOr<QualityReport> Measure(const Quantizer& quantizer, const float* vectors,
                                              size_t n, size_t max_pairs = 10000,
                                              uint64_t seed = 1);

// One point of a rescore curve: recall@k when the ceil(k * oversampling)
// best int8-ranked vectors are re-ranked by their exact float scores (the
// int8 scan itself exhaustive: this is the quantization's share of the loss).
struct RescorePoint {
  float oversampling = 1;
  float recall = 0;
};

// The oversampling factors a rescore curve is measured at.
inline constexpr float kRescoreGrid[] = {1, 1.5f, 2, 3, 4, 6, 8, 12, 16};

// Measures the rescore curve of `quantizer` on its own data: `base` (n * dim
// raw vectors, as stored before preprocessing) is the collection (or a
// sample of it), `queries` (nq * dim) are held out of it. For each factor of
// kRescoreGrid with ceil(k * factor) <= n: the mean over queries of |exact
// top-k ∩ int8 top-ceil(k * factor)| / k (a truth vector among the
// candidates is always in the rescored top k). Errors: InvalidArgument if n
// or nq is 0; those of Encode/PrepareQuery.
[[nodiscard]] StatusOr<std::vector<RescorePoint>> MeasureRescoreCurve(
    const Quantizer& quantizer, const float* base, size_t n, const float* queries, size_t nq,
    size_t k = 10);

// Smallest oversampling expected to reach recall >= target on `curve`,
// aiming 0.01 above target (the curve comes from about a hundred queries),
// but no higher than its best point less 0.002 (so a plateau does not ask
// for the grid's end), interpolated linearly between measured points and
// rounded up to a multiple of 0.25. The curve's last factor if it never
// reaches target; 1 for an empty curve or target <= 0.
float OversamplingForRecall(const std::vector<RescorePoint>& curve, float target);

// Recall expected at `oversampling` (linear between the curve's points,
// flat past its ends); 1 for an empty curve.
float RecallAtOversampling(const std::vector<RescorePoint>& curve, float oversampling);

}  // namespace qvec::index

#endif  // QVEC_INDEX_QUALITY_H_
