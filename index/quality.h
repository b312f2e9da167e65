// Quantization quality measurement. The only place where codes are decoded
// back to floats.
#ifndef QVEC_INDEX_QUALITY_H_
#define QVEC_INDEX_QUALITY_H_

#include <cstddef>
#include <cstdint>

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

}  // namespace qvec::index

#endif  // QVEC_INDEX_QUALITY_H_
