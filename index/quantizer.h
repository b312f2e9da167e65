// Scalar quantization of float vectors into 8-bit codes plus a few floats of
// per-vector metadata, and dynamic quantization of queries so stored vectors
// are scored in the integer domain (never decoded to float for search).
//
// Encoded blob (EncodedSize() = dim + 12 bytes, little-endian):
//   [dim code bytes][f32 scale][f32 offset][f32 norm_sq]
// int8 codes for kSymmetricInt8, uint8 for kAsymmetricUint8. A stored vector
// is estimated as x_i ~= scale * c_i + offset (per-dimension granularity
// folds the per-dimension scales/offsets from CalibrationParams instead);
// norm_sq is ||x||^2 of the preprocessed float vector (used by Euclid).
#ifndef QVEC_INDEX_QUANTIZER_H_
#define QVEC_INDEX_QUANTIZER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "index/calibration.h"
#include "index/kernels.h"
#include "index/types.h"
#include "qvec/status.h"

namespace qvec::index {

struct QuantizationConfig {
  // Default: kSymmetricInt8.
  QuantizationType type = QuantizationType::kSymmetricInt8;
  // Default: kPerVector (no calibration needed).
  Granularity granularity = Granularity::kPerVector;
  // Clipping quantile in (0.5, 1] for calibrated ranges; 1.0 = min-max.
  // Ignored for kPerVector. Default: 1.0.
  float quantile = 1.0f;
  // Pick the clipping quantile that maximizes recall@10 of the quantized scan
  // on held-out sample queries (see TrainQuantizer); needs a calibrated
  // granularity. Default: false.
  bool recall_tuned = false;

  // InvalidArgument if quantile is outside (0.5, 1] or recall_tuned is set
  // with kPerVector granularity.
  [[nodiscard]] Status Validate() const;
  // True for per-collection / per-dimension granularity.
  bool NeedsCalibration() const { return granularity != Granularity::kPerVector; }
};

// Per-vector metadata stored after the codes.
struct VectorMeta {
  float scale = 0;
  float offset = 0;
  float norm_sq = 0;
};

// A query prepared for integer scoring. The estimated inner product with a
// stored vector whose blob has `dot` = integer dot(codes, query codes) and
// metadata m is: scale * m.scale * dot + m.offset * sum + bias.
struct QueryCode {
  std::vector<int8_t> codes;  // size dim (per-dimension scales folded in)
  std::vector<float> vector;  // preprocessed float query (for rescoring)
  float scale = 0;            // query quantization scale
  float sum = 0;              // sum of the dequantized query (asymmetric) or vector
  float bias = 0;             // per-dimension asymmetric offsets . dequantized query
  float norm_sq = 0;          // ||vector||^2
};

// Validation and normalization of float vectors for a metric, without any
// quantization: what the engine stores as a vector's original. Immutable;
// thread-safe.
class Preprocessor {
 public:
  Preprocessor(size_t dim, Metric metric) : dim_(dim), metric_(metric) {}
  size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  // Turns x (size dim) in place into the stored form: InvalidArgument on
  // NaN/Inf, on a zero vector under a normalized metric (Cosine), and on a
  // squared norm above kMaxSquaredNorm under metrics with bounded_norm;
  // L2-normalizes under normalized metrics.
  [[nodiscard]] Status Apply(float* x) const;

 private:
  size_t dim_;
  Metric metric_;
};

// Thread safety: immutable after Create(); all methods are const and safe to
// call concurrently.
class Quantizer {
 public:
  static constexpr size_t kMetaBytes = 12;

  // Errors: InvalidArgument for dim outside [1, kMaxDim], an invalid config,
  // a calibrated granularity without `calibration`, calibration params whose
  // granularity/dim do not match, or a metric whose codes must share one
  // scale (Manhattan) with another granularity than per-collection.
  [[nodiscard]] static StatusOr<Quantizer> Create(size_t dim, Metric metric,
                                                  const QuantizationConfig& config,
                                                  const CalibrationParams* calibration = nullptr);

  size_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  const QuantizationConfig& config() const { return config_; }
  // Calibration in use; nullptr for per-vector granularity.
  const CalibrationParams* calibration() const { return calibration_ ? &*calibration_ : nullptr; }
  // True if codes are uint8 (asymmetric, or offset codes of an L1 metric),
  // false for int8.
  bool unsigned_codes() const {
    return config_.type == QuantizationType::kAsymmetricUint8 ||
           Describe(metric_).int_scoring == IntScoring::kL1;
  }
  // The integer kernel that scores this quantizer's codes.
  CodeKernel code_kernel() const {
    if (Describe(metric_).int_scoring == IntScoring::kL1) return CodeKernel::kSadU8;
    return unsigned_codes() ? CodeKernel::kDotU8S8 : CodeKernel::kDotS8;
  }

  size_t EncodedSize() const { return dim_ + kMetaBytes; }

  // Preprocessor(dim, metric).Apply(x): the float vector the engine stores.
  [[nodiscard]] Status Preprocess(float* x) const { return Preprocessor(dim_, metric_).Apply(x); }

  // Preprocesses a copy of x (size dim) and writes EncodedSize() bytes to
  // out. Errors as Preprocess.
  [[nodiscard]] Status Encode(const float* x, uint8_t* out) const;

  // Preprocesses and quantizes a query (size dim): dynamically, with its own
  // scale, for inner-product metrics; with the collection's shared scale
  // (as uint8 offset codes, in `codes` reinterpreted) for L1. Errors as
  // Preprocess.
  [[nodiscard]] StatusOr<QueryCode> PrepareQuery(const float* q) const;

  // Reconstructs the float vector of a blob (for quality measurement only).
  void Decode(const uint8_t* blob, float* out) const;

  static VectorMeta ReadMeta(const uint8_t* blob, size_t dim);

  // Estimated inner product of the query with a stored vector.
  static float EstimateDot(const QueryCode& q, int32_t dot, const VectorMeta& m) {
    return q.scale * m.scale * static_cast<float>(dot) + m.offset * q.sum + q.bias;
  }
  // Higher-is-better rank of a stored vector from its integer score (dot or
  // L1 sum, from the kernel of code_kernel()) and metadata: what the scan
  // kernels compute (see Kernels::rank_select).
  float RankOf(const QueryCode& q, int32_t integer_score, const VectorMeta& m) const {
    const float est = EstimateDot(q, integer_score, m);
    return Describe(metric_).rank_uses_norms ? 2.0f * est - m.norm_sq : est;
  }
  // The approximate rank of one stored blob for q (quality reports, tests).
  float ApproxRank(const QueryCode& q, const uint8_t* blob) const;
  // Converts a ranking value into the user-facing score (a distance for
  // Euclid and Manhattan, unchanged otherwise).
  float ToScore(float rank_value, const QueryCode& q) const {
    return RankToScore(metric_, rank_value, q.norm_sq);
  }
  // Inverse of ToScore for thresholds: rank value of a user-facing score.
  float ScoreToRank(float score, const QueryCode& q) const {
    return index::ScoreToRank(metric_, score, q.norm_sq);
  }
  // True if user-facing score `a` is at least as good as threshold `t`.
  bool PassesThreshold(float score, float threshold) const {
    return ScorePasses(metric_, score, threshold);
  }

 private:
  Quantizer() = default;

  size_t dim_ = 0;
  Metric metric_ = Metric::kCosine;
  QuantizationConfig config_;
  std::optional<CalibrationParams> calibration_;
  // Per-dimension (or single) derived parameters: x_i ~= scale * c + offset.
  std::vector<float> dim_scale_;
  std::vector<float> dim_offset_;
  std::vector<float> dim_zero_point_;  // asymmetric only
  std::vector<float> dim_inv_scale_;   // 1 / dim_scale_ (0 where the scale is 0)
  bool fast_path_ = false;             // all zero points small enough for float math
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_QUANTIZER_H_
