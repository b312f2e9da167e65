#include "index/pq4.h"

#include <faiss/impl/FaissException.h>
#include <faiss/impl/ProductQuantizer.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <new>

#include "common/coding.h"

namespace qvec::index {

namespace {

constexpr uint32_t kPq4Magic = 0x34515051;  // "QPQ4" little-endian
constexpr uint32_t kPq4Version = 1;
// Tables must let any row's sum fit in 16 bits with room for rounding (see
// BuildLut), which bounds the sub-quantizers.
constexpr uint32_t kMaxSubQuantizers = 8192;
// kSq4 clips each dimension at mean +- a * stddev, a from this list, the one
// with the least squared error on the training vectors (about 2.7 for
// Gaussian values, wider for heavy tails).
constexpr float kClipSigmas[] = {1.5f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 5.0f};

}  // namespace

std::string_view FirstPassKindName(FirstPassKind kind) {
  switch (kind) {
    case FirstPassKind::kNone:
      return "none";
    case FirstPassKind::kSq4:
      return "sq4";
    case FirstPassKind::kPq4:
      return "pq4";
  }
  return "unknown";
}

StatusOr<Pq4Codebook> Pq4Codebook::Train(FirstPassKind kind, uint32_t dim, uint32_t dsub,
                                         const float* x, size_t n, uint32_t seed) {
  if (kind == FirstPassKind::kNone) return InvalidArgumentError("4-bit codebook: no kind");
  if (kind == FirstPassKind::kSq4 && dsub != 1) {
    return InvalidArgumentError("4-bit codebook: sq4 codes one dimension per sub-code");
  }
  if (dsub != 1 && dsub != 2 && dsub != 4) {
    return InvalidArgumentError("4-bit codebook: dsub must be 1, 2 or 4");
  }
  if (dim == 0) return InvalidArgumentError("4-bit codebook: dim must be positive");
  const uint32_t m = (dim + dsub - 1) / dsub;
  if (m > kMaxSubQuantizers) {
    return InvalidArgumentError("4-bit codebook: at most " + std::to_string(kMaxSubQuantizers) +
                                " sub-codes (dim / dsub)");
  }
  if (n < 16) return InvalidArgumentError("4-bit codebook: needs at least 16 training vectors");
  for (size_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(x[i])) return InvalidArgumentError("4-bit codebook: non-finite value");
  }
  Pq4Codebook cb;
  cb.kind_ = kind;
  cb.dim_ = dim;
  cb.dsub_ = dsub;
  cb.m_ = m;
  cb.centroids_.assign(size_t{m} * 16 * dsub, 0.0f);
  if (kind == FirstPassKind::kSq4) {
    std::vector<float> column(n);
    for (uint32_t d = 0; d < dim; ++d) {
      double sum = 0, sum_sq = 0;
      for (size_t i = 0; i < n; ++i) {
        column[i] = x[i * dim + d];
        sum += column[i];
        sum_sq += double{column[i]} * column[i];
      }
      const double mean = sum / static_cast<double>(n);
      const double sigma = std::sqrt(std::max(0.0, sum_sq / static_cast<double>(n) - mean * mean));
      double best_err = std::numeric_limits<double>::infinity();
      double best_lo = mean, best_step = 0;
      for (float a : kClipSigmas) {
        const double lo = mean - a * sigma, step = 2.0 * a * sigma / 16.0;
        if (step <= 0) break;
        double err = 0;
        for (float v : column) {
          const double c = std::clamp(std::floor((v - lo) / step), 0.0, 15.0);
          const double diff = v - (lo + (c + 0.5) * step);
          err += diff * diff;
        }
        if (err < best_err) {
          best_err = err;
          best_lo = lo;
          best_step = step;
        }
      }
      for (int c = 0; c < 16; ++c) {
        cb.centroids_[size_t{d} * 16 + c] = static_cast<float>(best_lo + (c + 0.5) * best_step);
      }
    }
    return cb;
  }
  // PQ4: FAISS trains one 16-centroid k-means per sub-space.
  const size_t padded_dim = size_t{m} * dsub;
  std::vector<float> padded(n * padded_dim, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    std::copy(x + i * dim, x + (i + 1) * dim, padded.begin() + i * padded_dim);
  }
  try {
    faiss::ProductQuantizer pq(padded_dim, m, 4);
    pq.cp.seed = static_cast<int>(seed);
    pq.cp.niter = 25;
    pq.verbose = false;
    pq.train(n, padded.data());
    if (pq.centroids.size() != cb.centroids_.size()) {
      return InternalError("4-bit codebook: unexpected FAISS centroid count");
    }
    std::copy(pq.centroids.begin(), pq.centroids.end(), cb.centroids_.begin());
  } catch (const faiss::FaissException& e) {
    return InternalError(std::string("4-bit codebook: FAISS: ") + e.what());
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("4-bit codebook: out of memory");
  } catch (const std::exception& e) {
    return InternalError(std::string("4-bit codebook: ") + e.what());
  }
  // The last sub-space's padding coordinates stay zero (trained on zeros).
  for (size_t j = 0; j < m; ++j) {
    for (size_t c = 0; c < 16; ++c) {
      for (size_t t = 0; t < dsub; ++t) {
        if (j * dsub + t >= dim) cb.centroids_[(j * 16 + c) * dsub + t] = 0.0f;
      }
    }
  }
  return cb;
}

void Pq4Codebook::Encode(const float* x, uint8_t* codes) const {
  if (kind_ == FirstPassKind::kSq4) {
    for (uint32_t d = 0; d < dim_; ++d) {
      const float* levels = centroids_.data() + size_t{d} * 16;
      const float step = levels[1] - levels[0];
      if (!(step > 0.0f)) {
        codes[d] = 0;
        continue;
      }
      const float c = std::floor((x[d] - (levels[0] - 0.5f * step)) / step);
      codes[d] = static_cast<uint8_t>(std::clamp(c, 0.0f, 15.0f));
    }
    return;
  }
  for (uint32_t j = 0; j < m_; ++j) {
    const uint32_t d0 = j * dsub_;
    const uint32_t width = std::min(dsub_, dim_ - d0);
    float best = std::numeric_limits<float>::infinity();
    uint8_t arg = 0;
    for (uint32_t c = 0; c < 16; ++c) {
      const float* cent = centroids_.data() + (size_t{j} * 16 + c) * dsub_;
      float dist = 0;
      for (uint32_t t = 0; t < width; ++t) {
        const float diff = x[d0 + t] - cent[t];
        dist += diff * diff;
      }
      if (dist < best) {
        best = dist;
        arg = static_cast<uint8_t>(c);
      }
    }
    codes[j] = arg;
  }
}

void Pq4Codebook::Decode(const uint8_t* codes, float* out) const {
  for (uint32_t j = 0; j < m_; ++j) {
    const float* cent = centroids_.data() + (size_t{j} * 16 + codes[j]) * dsub_;
    for (uint32_t t = 0; t < dsub_ && j * dsub_ + t < dim_; ++t) out[j * dsub_ + t] = cent[t];
  }
}

void Pq4Codebook::BuildLut(const float* q, Code4Lut* lut) const {
  const uint32_t mp = m_padded();
  // Per-thread scratch: a search builds one table per query.
  thread_local std::vector<float> values, low;
  values.resize(size_t{m_} * 16);
  low.resize(m_);
  float max_range = 0;
  double sum_range = 0, bias = 0;
  for (uint32_t j = 0; j < m_; ++j) {
    const uint32_t d0 = j * dsub_;
    const uint32_t width = std::min(dsub_, dim_ - d0);
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (uint32_t c = 0; c < 16; ++c) {
      const float* cent = centroids_.data() + (size_t{j} * 16 + c) * dsub_;
      float v = 0;
      for (uint32_t t = 0; t < width; ++t) v += q[d0 + t] * cent[t];
      values[size_t{j} * 16 + c] = v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    low[j] = lo;
    bias += lo;
    max_range = std::max(max_range, hi - lo);
    sum_range += hi - lo;
  }
  // Entries of at most 255, and any row's sum below 2^16 even after each of
  // the m entries rounded up by half a unit.
  double scale = std::max(double{max_range} / 255.0, sum_range / (65535.0 - m_));
  if (!(scale > 0.0)) scale = 1.0;
  lut->table.assign(size_t{mp} * 16, 0);
  const double inv = 1.0 / scale;
  for (uint32_t j = 0; j < m_; ++j) {
    for (uint32_t c = 0; c < 16; ++c) {
      // Round half up (entries are >= 0).
      const double e = (values[size_t{j} * 16 + c] - low[j]) * inv + 0.5;
      lut->table[size_t{j} * 16 + c] = static_cast<uint8_t>(std::clamp(e, 0.0, 255.0));
    }
  }
  lut->scale = static_cast<float>(scale);
  lut->bias = static_cast<float>(bias);
}

Status Pq4Codebook::Validate() const {
  if (kind_ != FirstPassKind::kSq4 && kind_ != FirstPassKind::kPq4) {
    return InvalidArgumentError("4-bit codebook: unknown kind");
  }
  if (dsub_ != 1 && dsub_ != 2 && dsub_ != 4) {
    return InvalidArgumentError("4-bit codebook: bad dsub");
  }
  if (dim_ == 0 || m_ != (dim_ + dsub_ - 1) / dsub_ || m_ > kMaxSubQuantizers) {
    return InvalidArgumentError("4-bit codebook: bad shape");
  }
  if (centroids_.size() != size_t{m_} * 16 * dsub_) {
    return InvalidArgumentError("4-bit codebook: centroid count");
  }
  for (float v : centroids_) {
    if (!std::isfinite(v)) return InvalidArgumentError("4-bit codebook: non-finite centroid");
  }
  return Status::Ok();
}

std::string Pq4Codebook::Serialize() const {
  std::string out;
  coding::PutFixed32(&out, kPq4Magic);
  coding::PutFixed32(&out, kPq4Version);
  out.push_back(static_cast<char>(kind_));
  coding::PutFixed32(&out, dim_);
  coding::PutFixed32(&out, dsub_);
  coding::PutFixed64(&out, centroids_.size());
  for (float v : centroids_) coding::PutFloat(&out, v);
  return out;
}

StatusOr<Pq4Codebook> Pq4Codebook::Deserialize(std::string_view bytes) {
  coding::Reader r(bytes);
  if (r.U32() != kPq4Magic || !r.ok()) return DataLossError("4-bit codebook: bad magic");
  if (r.U32() != kPq4Version) return InvalidArgumentError("4-bit codebook: unknown version");
  Pq4Codebook cb;
  cb.kind_ = static_cast<FirstPassKind>(r.U8());
  cb.dim_ = r.U32();
  cb.dsub_ = r.U32();
  const uint64_t count = r.U64();
  if (!r.ok()) return DataLossError("4-bit codebook: truncated");
  if (count * 4 != r.remaining()) return DataLossError("4-bit codebook: size mismatch");
  cb.centroids_.resize(count);
  for (uint64_t i = 0; i < count; ++i) cb.centroids_[i] = r.F32();
  cb.m_ = cb.dsub_ == 0 ? 0 : (cb.dim_ + cb.dsub_ - 1) / cb.dsub_;
  QVEC_RETURN_IF_ERROR(cb.Validate());
  return cb;
}

}  // namespace qvec::index
