#include "index/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace qvec::index {
namespace {

// Round half to even (what nearbyint does in the default rounding mode)
// without a libm call: generic x86-64 has no SSE4.1 roundsd, and nearbyint
// dominated Encode. Adding and subtracting 1.5 * 2^52 leaves the rounded
// value for |v| < 2^51; larger doubles are integers (or half-integers just
// below 2^52, irrelevant once clamped) and are returned unchanged.
inline double RoundHalfEven(double v) {
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
  return std::fabs(v) < 2251799813685248.0 ? (v + kMagic) - kMagic : v;
}

// Quantization arithmetic runs in double so huge zero points or tiny scales
// cannot lose the rounding decision to float precision. Clamping before
// rounding gives the same code as rounding first, since the bounds are
// integers.
inline int8_t QuantizeSymmetric(double x, double scale) {
  if (!(scale > 0)) {
    return 0;
  }
  return static_cast<int8_t>(RoundHalfEven(std::clamp(x / scale, -127.0, 127.0)));
}

inline uint8_t QuantizeAsymmetric(double x, double scale, double zero_point) {
  if (!(scale > 0)) {
    return 0;
  }
  const double v = std::clamp(x / scale, -zero_point, 255.0 - zero_point);
  return static_cast<uint8_t>(std::clamp(RoundHalfEven(v) + zero_point, 0.0, 255.0));
}

// Zero points up to this magnitude keep every intermediate of FastQuantize
// exactly representable in float (|v| < 2^22 for the rounding trick).
constexpr float kFastPathMaxZeroPoint = 1048576.0f;  // 2^20

// out[i] = clamp(round_half_even(x[i] * inv + z), lo, hi) in float, written
// branch-free so GCC vectorizes it (the double path costs ~10 ns/value).
// Clamping to [lo - z, hi - z] before rounding gives the same code as
// clamping after, since z and the bounds are integers. inv = 0 (scale 0)
// yields code z.
template <typename Code>
inline Code FastQuantizeOne(float x, float inv, float zp, float lo, float hi) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  float v = x * inv;
  const float low = lo - zp, high = hi - zp;
  v = v < low ? low : v;
  v = v > high ? high : v;
  v = (v + kMagic) - kMagic;
  return static_cast<Code>(static_cast<int32_t>(v + zp));
}

// One scale and zero point for all values. Kept out of line: inlined into
// Encode, GCC turned the clamps into branches and did not vectorize.
template <typename Code>
__attribute__((noinline)) void FastQuantize(const float* __restrict x, size_t n, float inv,
                                            float zp, float lo, float hi, Code* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = FastQuantizeOne<Code>(x[i], inv, zp, lo, hi);
}

// Per-dimension scales and zero points.
template <typename Code>
__attribute__((noinline)) void FastQuantizePerDim(const float* __restrict x, size_t n,
                                                  const float* __restrict inv,
                                                  const float* __restrict zp, float lo, float hi,
                                                  Code* __restrict out) {
  for (size_t i = 0; i < n; ++i) out[i] = FastQuantizeOne<Code>(x[i], inv[i], zp[i], lo, hi);
}

// Reductions with independent accumulators: one running max/sum is a
// latency-bound dependency chain (and GCC does not vectorize float max/sum
// reductions without -ffast-math); these dominated Encode before.
bool AllFinite(const float* x, size_t n) {
  bool finite = true;
  for (size_t i = 0; i < n; ++i) finite &= std::fabs(x[i]) <= std::numeric_limits<float>::max();
  return finite;  // NaN fails the comparison
}

double SumSquares(const float* x, size_t n) {
  double acc[4] = {0, 0, 0, 0};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (size_t j = 0; j < 4; ++j) acc[j] += static_cast<double>(x[i + j]) * x[i + j];
  }
  double sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

float AbsMax(const float* x, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) {
      const float a = std::fabs(x[i + j]);
      acc[j] = a > acc[j] ? a : acc[j];
    }
  }
  float m = 0;
  for (float a : acc) m = std::max(m, a);
  for (; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  return m;
}

void MinMax(const float* x, size_t n, float* min_out, float* max_out) {
  float lo[8], hi[8];
  for (size_t j = 0; j < 8; ++j) lo[j] = hi[j] = x[0];
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) {
      lo[j] = x[i + j] < lo[j] ? x[i + j] : lo[j];
      hi[j] = x[i + j] > hi[j] ? x[i + j] : hi[j];
    }
  }
  float mn = x[0], mx = x[0];
  for (size_t j = 0; j < 8; ++j) {
    mn = std::min(mn, lo[j]);
    mx = std::max(mx, hi[j]);
  }
  for (; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  *min_out = mn;
  *max_out = mx;
}

inline float Inverse(double scale) {
  return scale > 0 && std::isfinite(1.0 / scale) ? static_cast<float>(1.0 / scale) : 0.0f;
}

// Scale, zero point and float offset for the range [lo, hi] so that
// x ~= scale * (u - z) = scale * u + offset.
void AsymmetricParams(double lo, double hi, float* scale, float* zero_point, float* offset) {
  const double s = (hi - lo) / 255.0;
  if (s > 0 && std::isfinite(s)) {
    const double z = std::nearbyint(-lo / s);
    *scale = static_cast<float>(s);
    *zero_point = static_cast<float>(z);
    *offset = static_cast<float>(-s * z);
  } else {
    // Constant range: every value decodes to lo; the scale stays 0 and is
    // never divided by.
    *scale = 0.0f;
    *zero_point = 0.0f;
    *offset = static_cast<float>(lo);
  }
}

void WriteMeta(const VectorMeta& m, uint8_t* out) {
  std::memcpy(out, &m.scale, 4);
  std::memcpy(out + 4, &m.offset, 4);
  std::memcpy(out + 8, &m.norm_sq, 4);
}

}  // namespace

Status QuantizationConfig::Validate() const {
  if (type != QuantizationType::kSymmetricInt8 && type != QuantizationType::kAsymmetricUint8) {
    return InvalidArgumentError("unknown quantization type");
  }
  if (granularity != Granularity::kPerVector && granularity != Granularity::kPerCollection &&
      granularity != Granularity::kPerDimension) {
    return InvalidArgumentError("unknown quantization granularity");
  }
  if (!(quantile > 0.5f && quantile <= 1.0f)) {
    return InvalidArgumentError("quantile must be in (0.5, 1]");
  }
  if (recall_tuned && granularity == Granularity::kPerVector) {
    return InvalidArgumentError("recall_tuned needs per-collection or per-dimension granularity");
  }
  return Status::Ok();
}

StatusOr<Quantizer> Quantizer::Create(size_t dim, Metric metric, const QuantizationConfig& config,
                                      const CalibrationParams* calibration) {
  if (dim == 0 || dim > kMaxDim) {
    return InvalidArgumentError("dim must be in [1, " + std::to_string(kMaxDim) + "]");
  }
  if (static_cast<size_t>(metric) >= kNumMetrics) return InvalidArgumentError("unknown metric");
  QVEC_RETURN_IF_ERROR(config.Validate());
  if (Describe(metric).shared_scale && config.granularity != Granularity::kPerCollection) {
    return InvalidArgumentError(std::string(Describe(metric).name) +
                                " scores codes that share one scale: it needs per-collection "
                                "granularity");
  }
  Quantizer q;
  q.dim_ = dim;
  q.metric_ = metric;
  q.config_ = config;
  if (!config.NeedsCalibration()) {
    return q;
  }
  if (calibration == nullptr) {
    return InvalidArgumentError("calibrated granularity needs CalibrationParams");
  }
  QVEC_RETURN_IF_ERROR(calibration->Validate());
  if (calibration->granularity != config.granularity || calibration->dim != dim) {
    return InvalidArgumentError("calibration params do not match granularity or dim");
  }
  q.calibration_ = *calibration;
  const size_t n = calibration->lo.size();
  q.dim_scale_.resize(n);
  q.dim_offset_.assign(n, 0.0f);
  q.dim_zero_point_.assign(n, 0.0f);
  q.dim_inv_scale_.resize(n);
  q.fast_path_ = true;
  for (size_t i = 0; i < n; ++i) {
    const double lo = calibration->lo[i], hi = calibration->hi[i];
    if (config.type == QuantizationType::kSymmetricInt8) {
      q.dim_scale_[i] = static_cast<float>(std::max(std::fabs(lo), std::fabs(hi)) / 127.0);
    } else {
      AsymmetricParams(lo, hi, &q.dim_scale_[i], &q.dim_zero_point_[i], &q.dim_offset_[i]);
    }
    q.dim_inv_scale_[i] = Inverse(q.dim_scale_[i]);
    q.fast_path_ = q.fast_path_ && std::fabs(q.dim_zero_point_[i]) <= kFastPathMaxZeroPoint;
  }
  return q;
}

Status Preprocessor::Apply(float* x) const {
  if (!AllFinite(x, dim_)) {
    return InvalidArgumentError("vector contains NaN or Inf");
  }
  const double norm_sq = SumSquares(x, dim_);
  if (!Describe(metric_).normalize) {
    if (Describe(metric_).bounded_norm && norm_sq > kMaxSquaredNorm) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "vector is too large: its squared length %.3g exceeds %.3g, beyond what "
                    "float32 scores and distances can hold",
                    norm_sq, kMaxSquaredNorm);
      return InvalidArgumentError(buf);
    }
    return Status::Ok();
  }
  if (!(norm_sq > 0)) {
    return InvalidArgumentError("zero vector has no direction under Cosine");
  }
  const double inv = 1.0 / std::sqrt(norm_sq);
  for (size_t i = 0; i < dim_; ++i) {
    x[i] = static_cast<float>(x[i] * inv);
  }
  return Status::Ok();
}

Status Quantizer::Encode(const float* x, uint8_t* out) const {
  std::vector<float> v(x, x + dim_);
  QVEC_RETURN_IF_ERROR(Preprocess(v.data()));
  VectorMeta meta;
  meta.norm_sq = static_cast<float>(SumSquares(v.data(), dim_));
  const bool symmetric = config_.type == QuantizationType::kSymmetricInt8;
  int8_t* out_s8 = reinterpret_cast<int8_t*>(out);
  switch (config_.granularity) {
    case Granularity::kPerVector: {
      if (symmetric) {
        const double s = AbsMax(v.data(), dim_) / 127.0;
        FastQuantize(v.data(), dim_, Inverse(s), 0.0f, -127.0f, 127.0f, out_s8);
        meta.scale = static_cast<float>(s);
      } else {
        float mn, mx;
        MinMax(v.data(), dim_, &mn, &mx);
        float zp;
        AsymmetricParams(mn, mx, &meta.scale, &zp, &meta.offset);
        if (std::fabs(zp) <= kFastPathMaxZeroPoint) {
          FastQuantize(v.data(), dim_, Inverse(meta.scale), zp, 0.0f, 255.0f, out);
        } else {
          for (size_t i = 0; i < dim_; ++i) {
            out[i] = QuantizeAsymmetric(v[i], meta.scale, zp);
          }
        }
      }
      break;
    }
    case Granularity::kPerCollection:
    case Granularity::kPerDimension: {
      const bool per_dim = config_.granularity == Granularity::kPerDimension;
      if (fast_path_) {
        const float lo = symmetric ? -127.0f : 0.0f, hi = symmetric ? 127.0f : 255.0f;
        const float* inv = dim_inv_scale_.data();
        const float* zp = dim_zero_point_.data();
        if (per_dim && symmetric) {
          FastQuantizePerDim(v.data(), dim_, inv, zp, lo, hi, out_s8);
        } else if (per_dim) {
          FastQuantizePerDim(v.data(), dim_, inv, zp, lo, hi, out);
        } else if (symmetric) {
          FastQuantize(v.data(), dim_, inv[0], zp[0], lo, hi, out_s8);
        } else {
          FastQuantize(v.data(), dim_, inv[0], zp[0], lo, hi, out);
        }
      } else {
        for (size_t i = 0; i < dim_; ++i) {
          const size_t r = per_dim ? i : 0;
          out[i] = symmetric ? static_cast<uint8_t>(QuantizeSymmetric(v[i], dim_scale_[r]))
                             : QuantizeAsymmetric(v[i], dim_scale_[r], dim_zero_point_[r]);
        }
      }
      if (per_dim) {
        // The per-dimension scales and offsets are folded into the query.
        meta.scale = 1.0f;
        meta.offset = 0.0f;
      } else {
        meta.scale = dim_scale_[0];
        meta.offset = dim_offset_[0];
      }
      if (symmetric && Describe(metric_).int_scoring == IntScoring::kL1) {
        // The L1 kernel sums |differences| of uint8 bytes: store q + 128.
        for (size_t i = 0; i < dim_; ++i) out[i] = static_cast<uint8_t>(out_s8[i] + 128);
      }
      break;
    }
  }
  if (!std::isfinite(meta.scale) || !std::isfinite(meta.offset) || !std::isfinite(meta.norm_sq)) {
    // Unreachable for vectors Preprocess accepts; kept so that nothing
    // unsearchable is ever handed to an index or stored.
    return InvalidArgumentError("vector cannot be encoded: its code metadata is not finite");
  }
  WriteMeta(meta, out + dim_);
  return Status::Ok();
}

StatusOr<QueryCode> Quantizer::PrepareQuery(const float* q) const {
  QueryCode code;
  code.vector.assign(q, q + dim_);
  QVEC_RETURN_IF_ERROR(Preprocess(code.vector.data()));
  if (Describe(metric_).int_scoring == IntScoring::kL1) {
    // Quantized with the collection's scale (and zero point), like the
    // stored codes, so that |code differences| * scale estimates L1; the
    // scan's rank is then -scale * sum (qs = -1, nothing else).
    double norm_sq = 0;
    for (float y : code.vector) norm_sq += static_cast<double>(y) * y;
    code.codes.resize(dim_);
    uint8_t* u = reinterpret_cast<uint8_t*>(code.codes.data());
    const bool symmetric = config_.type == QuantizationType::kSymmetricInt8;
    for (size_t i = 0; i < dim_; ++i) {
      u[i] = symmetric
                 ? static_cast<uint8_t>(QuantizeSymmetric(code.vector[i], dim_scale_[0]) + 128)
                 : QuantizeAsymmetric(code.vector[i], dim_scale_[0], dim_zero_point_[0]);
    }
    code.scale = -1.0f;
    code.sum = 0.0f;
    code.bias = 0.0f;
    code.norm_sq = static_cast<float>(norm_sq);
    return code;
  }
  const bool per_dim = config_.granularity == Granularity::kPerDimension;
  std::vector<double> folded(dim_);
  double sum = 0, norm_sq = 0, bias = 0, amax = 0;
  for (size_t i = 0; i < dim_; ++i) {
    const double y = code.vector[i];
    sum += y;
    norm_sq += y * y;
    folded[i] = per_dim ? y * dim_scale_[i] : y;
    if (per_dim) {
      bias += y * dim_offset_[i];
    }
    amax = std::max(amax, std::fabs(folded[i]));
  }
  const double s = amax / 127.0;
  code.codes.resize(dim_);
  int64_t code_sum = 0;
  for (size_t i = 0; i < dim_; ++i) {
    code.codes[i] = QuantizeSymmetric(folded[i], s);
    code_sum += code.codes[i];
  }
  // Offset terms use the dequantized query, so the estimate is exactly
  // <dequantized query, dequantized x>: the query's rounding error then
  // multiplies centered values x_i instead of raw codes u_i (which sit
  // around the zero point and would amplify it).
  if (config_.type == QuantizationType::kAsymmetricUint8) {
    sum = s * static_cast<double>(code_sum);
    if (per_dim) {
      bias = 0;
      for (size_t i = 0; i < dim_; ++i) {
        bias += dim_scale_[i] > 0 ? -s * code.codes[i] * dim_zero_point_[i]
                                  : static_cast<double>(code.vector[i]) * dim_offset_[i];
      }
    }
  }
  code.scale = static_cast<float>(s);
  code.sum = static_cast<float>(sum);
  code.bias = static_cast<float>(bias);
  code.norm_sq = static_cast<float>(norm_sq);
  return code;
}

VectorMeta Quantizer::ReadMeta(const uint8_t* blob, size_t dim) {
  VectorMeta m;
  std::memcpy(&m.scale, blob + dim, 4);
  std::memcpy(&m.offset, blob + dim + 4, 4);
  std::memcpy(&m.norm_sq, blob + dim + 8, 4);
  return m;
}

void Quantizer::Decode(const uint8_t* blob, float* out) const {
  const VectorMeta m = ReadMeta(blob, dim_);
  const bool per_dim = config_.granularity == Granularity::kPerDimension;
  // Offset codes of a symmetric L1 quantizer are q + 128.
  const bool offset_codes = Describe(metric_).int_scoring == IntScoring::kL1 &&
                            config_.type == QuantizationType::kSymmetricInt8;
  for (size_t i = 0; i < dim_; ++i) {
    const float c = offset_codes       ? static_cast<float>(int{blob[i]} - 128)
                    : unsigned_codes() ? static_cast<float>(blob[i])
                                       : static_cast<float>(static_cast<int8_t>(blob[i]));
    out[i] = per_dim ? dim_scale_[i] * c + dim_offset_[i] : m.scale * c + m.offset;
  }
}

float Quantizer::ApproxRank(const QueryCode& q, const uint8_t* blob) const {
  const int32_t integer = ScoreCode(ActiveKernels(), code_kernel(), q.codes.data(), blob, dim_);
  return RankOf(q, integer, ReadMeta(blob, dim_));
}

}  // namespace qvec::index
