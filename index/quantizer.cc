#include "index/quantizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace qvec::index {
namespace {

// Quantization arithmetic runs in double so huge zero points or tiny scales
// cannot lose the rounding decision to float precision.
inline int8_t QuantizeSymmetric(double x, double scale) {
  if (!(scale > 0)) return 0;
  const double q = std::nearbyint(x / scale);
  return static_cast<int8_t>(std::clamp(q, -127.0, 127.0));
}

inline uint8_t QuantizeAsymmetric(double x, double scale, double zero_point) {
  if (!(scale > 0)) return 0;
  const double q = std::nearbyint(x / scale) + zero_point;
  return static_cast<uint8_t>(std::clamp(q, 0.0, 255.0));
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
  if (metric != Metric::kCosine && metric != Metric::kDot && metric != Metric::kEuclid) {
    return InvalidArgumentError("unknown metric");
  }
  QVEC_RETURN_IF_ERROR(config.Validate());
  Quantizer q;
  q.dim_ = dim;
  q.metric_ = metric;
  q.config_ = config;
  if (!config.NeedsCalibration()) return q;
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
  for (size_t i = 0; i < n; ++i) {
    const double lo = calibration->lo[i], hi = calibration->hi[i];
    if (config.type == QuantizationType::kSymmetricInt8) {
      q.dim_scale_[i] = static_cast<float>(std::max(std::fabs(lo), std::fabs(hi)) / 127.0);
    } else {
      AsymmetricParams(lo, hi, &q.dim_scale_[i], &q.dim_zero_point_[i], &q.dim_offset_[i]);
    }
  }
  return q;
}

Status Quantizer::Preprocess(float* x) const {
  double norm_sq = 0;
  for (size_t i = 0; i < dim_; ++i) {
    if (!std::isfinite(x[i])) return InvalidArgumentError("vector contains NaN or Inf");
    norm_sq += static_cast<double>(x[i]) * x[i];
  }
  if (metric_ != Metric::kCosine) return Status::Ok();
  if (!(norm_sq > 0)) return InvalidArgumentError("zero vector has no direction under Cosine");
  const double inv = 1.0 / std::sqrt(norm_sq);
  for (size_t i = 0; i < dim_; ++i) x[i] = static_cast<float>(x[i] * inv);
  return Status::Ok();
}

Status Quantizer::Encode(const float* x, uint8_t* out) const {
  std::vector<float> v(x, x + dim_);
  QVEC_RETURN_IF_ERROR(Preprocess(v.data()));
  VectorMeta meta;
  double norm_sq = 0;
  for (float f : v) norm_sq += static_cast<double>(f) * f;
  meta.norm_sq = static_cast<float>(norm_sq);
  const bool symmetric = config_.type == QuantizationType::kSymmetricInt8;
  switch (config_.granularity) {
    case Granularity::kPerVector: {
      if (symmetric) {
        float amax = 0;
        for (float f : v) amax = std::max(amax, std::fabs(f));
        const double s = amax / 127.0;
        for (size_t i = 0; i < dim_; ++i) {
          out[i] = static_cast<uint8_t>(QuantizeSymmetric(v[i], s));
        }
        meta.scale = static_cast<float>(s);
      } else {
        const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
        float zp;
        AsymmetricParams(*mn, *mx, &meta.scale, &zp, &meta.offset);
        for (size_t i = 0; i < dim_; ++i) out[i] = QuantizeAsymmetric(v[i], meta.scale, zp);
      }
      break;
    }
    case Granularity::kPerCollection: {
      const float s = dim_scale_[0];
      for (size_t i = 0; i < dim_; ++i) {
        out[i] = symmetric ? static_cast<uint8_t>(QuantizeSymmetric(v[i], s))
                           : QuantizeAsymmetric(v[i], s, dim_zero_point_[0]);
      }
      meta.scale = s;
      meta.offset = dim_offset_[0];
      break;
    }
    case Granularity::kPerDimension: {
      for (size_t i = 0; i < dim_; ++i) {
        out[i] = symmetric ? static_cast<uint8_t>(QuantizeSymmetric(v[i], dim_scale_[i]))
                           : QuantizeAsymmetric(v[i], dim_scale_[i], dim_zero_point_[i]);
      }
      // The per-dimension scales and offsets are folded into the query.
      meta.scale = 1.0f;
      meta.offset = 0.0f;
      break;
    }
  }
  WriteMeta(meta, out + dim_);
  return Status::Ok();
}

StatusOr<QueryCode> Quantizer::PrepareQuery(const float* q) const {
  QueryCode code;
  code.vector.assign(q, q + dim_);
  QVEC_RETURN_IF_ERROR(Preprocess(code.vector.data()));
  const bool per_dim = config_.granularity == Granularity::kPerDimension;
  std::vector<double> folded(dim_);
  double sum = 0, norm_sq = 0, bias = 0, amax = 0;
  for (size_t i = 0; i < dim_; ++i) {
    const double y = code.vector[i];
    sum += y;
    norm_sq += y * y;
    folded[i] = per_dim ? y * dim_scale_[i] : y;
    if (per_dim) bias += y * dim_offset_[i];
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
  for (size_t i = 0; i < dim_; ++i) {
    const float c = unsigned_codes() ? static_cast<float>(blob[i])
                                     : static_cast<float>(static_cast<int8_t>(blob[i]));
    out[i] = per_dim ? dim_scale_[i] * c + dim_offset_[i] : m.scale * c + m.offset;
  }
}

float Quantizer::ToScore(float rank_value, const QueryCode& q) const {
  if (metric_ != Metric::kEuclid) return rank_value;
  return std::sqrt(std::max(0.0f, q.norm_sq - rank_value));
}

float Quantizer::ScoreToRank(float score, const QueryCode& q) const {
  if (metric_ != Metric::kEuclid) return score;
  return q.norm_sq - score * score;
}

}  // namespace qvec::index
