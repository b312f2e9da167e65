#include "index/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/coding.h"

namespace qvec::index {
namespace {

constexpr char kMagic[4] = {'Q', 'V', 'C', 'P'};

// Value at rank floor(q*(N-1)) (upper) or ceil((1-q)*(N-1)) (lower).
void QuantileRange(std::vector<float>& values, double q, float* lo, float* hi) {
  const size_t n = values.size();
  const size_t hi_rank = static_cast<size_t>(std::floor(q * static_cast<double>(n - 1)));
  const size_t lo_rank = static_cast<size_t>(std::ceil((1.0 - q) * static_cast<double>(n - 1)));
  if (q >= 1.0) {
    const auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    *lo = *mn;
    *hi = *mx;
    return;
  }
  std::nth_element(values.begin(), values.begin() + hi_rank, values.end());
  *hi = values[hi_rank];
  std::nth_element(values.begin(), values.begin() + lo_rank, values.begin() + hi_rank + 1);
  *lo = values[lo_rank];
}

// QuantileRange for several quantiles: partitions off the tails needed by the
// smallest quantile once, sorts only those tails and reads every quantile's
// ranks from them. Writes lo[i], hi[i] for quantiles[i].
void QuantileRanges(std::vector<float>& values, const std::vector<float>& quantiles, float* lo,
                    float* hi) {
  const size_t n = values.size();
  double q_min = 1.0;
  for (float q : quantiles) q_min = std::min(q_min, static_cast<double>(q));
  const size_t top = static_cast<size_t>(std::floor(q_min * static_cast<double>(n - 1)));
  const size_t bottom = static_cast<size_t>(std::ceil((1.0 - q_min) * static_cast<double>(n - 1)));
  if (bottom + 1 >= top) {
    std::sort(values.begin(), values.end());
  } else {
    std::nth_element(values.begin(), values.begin() + top, values.end());
    std::sort(values.begin() + top, values.end());
    std::nth_element(values.begin(), values.begin() + bottom, values.begin() + top);
    std::sort(values.begin(), values.begin() + bottom + 1);
  }
  for (size_t i = 0; i < quantiles.size(); ++i) {
    const double q = quantiles[i];
    hi[i] = values[static_cast<size_t>(std::floor(q * static_cast<double>(n - 1)))];
    lo[i] = values[static_cast<size_t>(std::ceil((1.0 - q) * static_cast<double>(n - 1)))];
  }
}

}  // namespace

Status CalibrationParams::Validate() const {
  if (dim == 0 || dim > kMaxDim) {
    return InvalidArgumentError("calibration dim out of range");
  }
  size_t want;
  if (granularity == Granularity::kPerCollection) {
    want = 1;
  } else if (granularity == Granularity::kPerDimension) {
    want = dim;
  } else {
    return InvalidArgumentError("calibration granularity must be per-collection or per-dimension");
  }
  if (lo.size() != want || hi.size() != want) {
    return InvalidArgumentError("calibration range count does not match granularity");
  }
  if (!(quantile > 0.5f && quantile <= 1.0f)) {
    return InvalidArgumentError("calibration quantile must be in (0.5, 1]");
  }
  for (size_t i = 0; i < want; ++i) {
    if (!std::isfinite(lo[i]) || !std::isfinite(hi[i]) || lo[i] > hi[i]) {
      return InvalidArgumentError("calibration range must be finite with lo <= hi");
    }
  }
  return Status::Ok();
}

std::string CalibrationParams::Serialize() const {
  std::string out(kMagic, 4);
  coding::PutFixed32(&out, kVersion);
  coding::PutFixed32(&out, static_cast<uint32_t>(granularity));
  coding::PutFixed32(&out, dim);
  coding::PutFloat(&out, quantile);
  coding::PutFixed32(&out, static_cast<uint32_t>(lo.size()));
  for (size_t i = 0; i < lo.size(); ++i) {
    coding::PutFloat(&out, lo[i]);
    coding::PutFloat(&out, hi[i]);
  }
  return out;
}

StatusOr<CalibrationParams> CalibrationParams::Deserialize(std::string_view bytes) {
  if (bytes.size() < 4 || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return DataLossError("calibration params: bad magic or truncated");
  }
  coding::Reader r(bytes.substr(4));
  CalibrationParams p;
  const uint32_t version = r.U32();
  if (!r.ok()) {
    return DataLossError("calibration params: truncated");
  }
  if (version != kVersion) {
    return UnimplementedError("calibration params: unknown version " + std::to_string(version));
  }
  const uint32_t granularity = r.U32();
  const uint32_t dim = r.U32();
  p.quantile = r.F32();
  const uint32_t count = r.U32();
  if (!r.ok()) {
    return DataLossError("calibration params: truncated header");
  }
  if (count > kMaxDim || r.remaining() != size_t{count} * 8) {
    return DataLossError("calibration params: truncated or trailing range data");
  }
  if (granularity > static_cast<uint32_t>(Granularity::kPerDimension)) {
    return InvalidArgumentError("calibration params: bad granularity");
  }
  p.granularity = static_cast<Granularity>(granularity);
  p.dim = dim;
  p.lo.resize(count);
  p.hi.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    p.lo[i] = r.F32();
    p.hi[i] = r.F32();
  }
  if (!r.ok()) return DataLossError("calibration: truncated");
  QVEC_RETURN_IF_ERROR(p.Validate());
  return p;
}

CalibrationObserver::CalibrationObserver(size_t dim, size_t max_vectors)
    : dim_(dim), max_vectors_(std::max<size_t>(1, max_vectors)) {}

Status CalibrationObserver::Observe(const float* vectors, size_t n) {
  for (size_t i = 0; i < n * dim_; ++i) {
    if (!std::isfinite(vectors[i])) {
      return InvalidArgumentError("calibration sample has NaN/Inf");
    }
  }
  for (size_t v = 0; v < n; ++v) {
    const float* x = vectors + v * dim_;
    ++observed_;
    if (sample_.size() < max_vectors_ * dim_) {
      sample_.insert(sample_.end(), x, x + dim_);
      continue;
    }
    // Reservoir sampling (Algorithm R) with a fixed-seed xorshift generator.
    rng_state_ ^= rng_state_ << 13;
    rng_state_ ^= rng_state_ >> 7;
    rng_state_ ^= rng_state_ << 17;
    const size_t slot = rng_state_ % observed_;
    if (slot < max_vectors_) {
      std::copy(x, x + dim_, sample_.begin() + slot * dim_);
    }
  }
  return Status::Ok();
}

CalibrationStats CalibrationObserver::Stats(size_t histogram_bins) const {
  CalibrationStats s;
  const size_t kept = sample_.size() / std::max<size_t>(dim_, 1);
  s.vectors = kept;
  s.dim_min.assign(dim_, 0.0f);
  s.dim_max.assign(dim_, 0.0f);
  s.dim_abs_max.assign(dim_, 0.0f);
  if (kept == 0) {
    return s;
  }
  for (size_t d = 0; d < dim_; ++d) {
    s.dim_min[d] = s.dim_max[d] = sample_[d];
  }
  for (size_t v = 0; v < kept; ++v) {
    const float* x = sample_.data() + v * dim_;
    for (size_t d = 0; d < dim_; ++d) {
      s.dim_min[d] = std::min(s.dim_min[d], x[d]);
      s.dim_max[d] = std::max(s.dim_max[d], x[d]);
    }
  }
  s.min = *std::min_element(s.dim_min.begin(), s.dim_min.end());
  s.max = *std::max_element(s.dim_max.begin(), s.dim_max.end());
  for (size_t d = 0; d < dim_; ++d) {
    s.dim_abs_max[d] = std::max(std::fabs(s.dim_min[d]), std::fabs(s.dim_max[d]));
  }
  s.abs_max = std::max(std::fabs(s.min), std::fabs(s.max));
  s.histogram.assign(std::max<size_t>(1, histogram_bins), 0);
  const double width = (static_cast<double>(s.max) - s.min) / s.histogram.size();
  for (float v : sample_) {
    size_t bin = width > 0 ? static_cast<size_t>((v - s.min) / width) : 0;
    s.histogram[std::min(bin, s.histogram.size() - 1)]++;
  }
  return s;
}

StatusOr<CalibrationParams> CalibrationObserver::Compute(Granularity granularity,
                                                         float quantile) const {
  if (sample_.empty()) {
    return FailedPreconditionError("calibration: no vectors observed");
  }
  if (!(quantile > 0.5f && quantile <= 1.0f)) {
    return InvalidArgumentError("calibration quantile must be in (0.5, 1]");
  }
  CalibrationParams p;
  p.granularity = granularity;
  p.dim = static_cast<uint32_t>(dim_);
  p.quantile = quantile;
  const size_t kept = sample_.size() / dim_;
  if (granularity == Granularity::kPerCollection) {
    std::vector<float> all = sample_;
    p.lo.resize(1);
    p.hi.resize(1);
    QuantileRange(all, quantile, &p.lo[0], &p.hi[0]);
  } else if (granularity == Granularity::kPerDimension) {
    p.lo.resize(dim_);
    p.hi.resize(dim_);
    std::vector<float> column(kept);
    for (size_t d = 0; d < dim_; ++d) {
      for (size_t v = 0; v < kept; ++v) {
        column[v] = sample_[v * dim_ + d];
      }
      QuantileRange(column, quantile, &p.lo[d], &p.hi[d]);
    }
  } else {
    return InvalidArgumentError("calibration: per-vector granularity needs no calibration");
  }
  return p;
}

StatusOr<std::vector<CalibrationParams>> CalibrationObserver::ComputeMany(
    Granularity granularity, const std::vector<float>& quantiles) const {
  if (sample_.empty()) {
    return FailedPreconditionError("calibration: no vectors observed");
  }
  if (granularity != Granularity::kPerCollection && granularity != Granularity::kPerDimension) {
    return InvalidArgumentError("calibration: per-vector granularity needs no calibration");
  }
  for (float q : quantiles) {
    if (!(q > 0.5f && q <= 1.0f)) {
      return InvalidArgumentError("calibration quantile must be in (0.5, 1]");
    }
  }
  const size_t ranges = granularity == Granularity::kPerCollection ? 1 : dim_;
  std::vector<CalibrationParams> out(quantiles.size());
  for (size_t i = 0; i < quantiles.size(); ++i) {
    out[i].granularity = granularity;
    out[i].dim = static_cast<uint32_t>(dim_);
    out[i].quantile = quantiles[i];
    out[i].lo.resize(ranges);
    out[i].hi.resize(ranges);
  }
  std::vector<float> lo(quantiles.size()), hi(quantiles.size());
  auto store = [&](size_t range) {
    for (size_t i = 0; i < quantiles.size(); ++i) {
      out[i].lo[range] = lo[i];
      out[i].hi[range] = hi[i];
    }
  };
  if (granularity == Granularity::kPerCollection) {
    std::vector<float> all = sample_;
    QuantileRanges(all, quantiles, lo.data(), hi.data());
    store(0);
    return out;
  }
  // One transposing pass instead of a strided walk over the sample per column.
  const size_t kept = sample_.size() / dim_;
  std::vector<float> columns(sample_.size());
  for (size_t v = 0; v < kept; ++v) {
    for (size_t d = 0; d < dim_; ++d) columns[d * kept + v] = sample_[v * dim_ + d];
  }
  std::vector<float> column(kept);
  for (size_t d = 0; d < dim_; ++d) {
    std::copy_n(columns.begin() + d * kept, kept, column.begin());
    QuantileRanges(column, quantiles, lo.data(), hi.data());
    store(d);
  }
  return out;
}

}  // namespace qvec::index
