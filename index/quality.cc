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

}  // namespace qvec::index
