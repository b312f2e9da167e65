// Building a quantizer from a sample of vectors: calibration when the config
// needs it, and the recall-tuned choice of the clipping quantile.
#ifndef QVEC_INDEX_TRAINING_H_
#define QVEC_INDEX_TRAINING_H_

#include <cstddef>
#include <vector>

#include "index/quantizer.h"
#include "index/thread_pool.h"
#include "qvec/status.h"

namespace qvec::index {

// Quantiles tried by recall-tuned calibration, from no clipping downwards.
inline constexpr float kRecallTunedQuantiles[] = {1.0f,   0.99999f, 0.9999f, 0.9995f,
                                                  0.999f, 0.998f,   0.995f,  0.99f};

// Returns a quantizer for `config`. `sample` holds n raw vectors (size
// n * dim, preprocessed here like stored vectors). Per-vector granularity
// ignores the sample. Calibrated granularity observes the sample with
// config.quantile; with recall_tuned, the last min(200, n/10) sample vectors
// serve as held-out queries against the others, and the quantile in
// kRecallTunedQuantiles with the best recall@10 of the quantized scan wins
// (ties go to the larger quantile).
// Errors: InvalidArgument for a bad config/dim or invalid sample vectors,
// FailedPrecondition if a calibrated config gets n == 0 (or n < 50 with
// recall_tuned).
[[nodiscard]] StatusOr<Quantizer> TrainQuantizer(size_t dim, Metric metric,
                                                 const QuantizationConfig& config,
                                                 const float* sample, size_t n,
                                                 ThreadPool* pool = nullptr);

// Mean recall@k of the quantized flat scan (no rescoring) of `queries`
// (size nq * dim, raw) against `base` (size n * dim, raw), relative to the
// exact float ranking.
[[nodiscard]] StatusOr<double> QuantizedRecall(const Quantizer& quantizer, const float* base,
                                               size_t n, const float* queries, size_t nq,
                                               size_t k = 10, ThreadPool* pool = nullptr);

// Exact float top-k labels (row numbers in `base`) for each query, by the
// quantizer's metric on preprocessed vectors; result is nq lists.
[[nodiscard]] StatusOr<std::vector<std::vector<uint64_t>>> ExactTopK(const Quantizer& quantizer,
                                                                     const float* base, size_t n,
                                                                     const float* queries,
                                                                     size_t nq, size_t k,
                                                                     ThreadPool* pool = nullptr);
// The same with only the preprocessing (any metric, no quantization).
[[nodiscard]] StatusOr<std::vector<std::vector<uint64_t>>> ExactTopK(const Preprocessor& prep,
                                                                     const float* base, size_t n,
                                                                     const float* queries,
                                                                     size_t nq, size_t k,
                                                                     ThreadPool* pool = nullptr);

}  // namespace qvec::index

#endif  // QVEC_INDEX_TRAINING_H_
