#include "index/centroid_assign.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "index/kernels.h"

namespace qvec::index {
namespace {

constexpr size_t kPointsPerTask = 256;
// Centroids per batch-kernel call: the int32 output of one task (256 points
// x 1024 centroids = 1 MiB) stays in L2.
constexpr size_t kCentroidBlock = 1024;
// Fewer points than this are scored row by row: the batch kernels repack
// the centroid block on every call, which only pays off over many points
// (single inserts assign one point at a time).
constexpr size_t kMinBatchPoints = 8;

void AssignRange(const Int8CentroidView& v, const float* x, size_t begin, size_t end,
                 uint32_t* labels, float* scores) {
  const size_t dim = v.dim, np = end - begin;
  const Kernels& kernels = ActiveKernels();
  std::vector<int8_t> qcodes(np * dim);
  std::vector<float> qscale(np), best_value(np, -std::numeric_limits<float>::infinity());
  std::vector<uint32_t> best(np, 0);
  std::vector<int32_t> best_dot(np, 0);
  for (size_t i = 0; i < np; ++i) {
    qscale[i] = kernels.quantize_s8(x + (begin + i) * dim, dim, qcodes.data() + i * dim);
  }
  const size_t block = std::min(kCentroidBlock, v.k);
  std::vector<int32_t> dots(np * block);
  for (size_t c0 = 0; c0 < v.k; c0 += block) {
    const size_t nb = std::min(block, v.k - c0);
    if (np < kMinBatchPoints) {
      for (size_t i = 0; i < np; ++i) {
        kernels.dot_s8_many(qcodes.data() + i * dim, v.codes + c0 * v.stride, v.stride, nb, dim,
                            dots.data() + i * nb);
      }
    } else {
      kernels.dot_s8_batch(qcodes.data(), dim, np, v.codes + c0 * v.stride, v.stride, nb, dim,
                           dots.data());
    }
    for (size_t i = 0; i < np; ++i) {
      const int32_t* row = dots.data() + i * nb;
      // Inner product: the point's positive scale is a common factor, so
      // s_c * dot ranks the centroids; L2: 2 s_x s_c dot - |c|^2.
      const float mul = v.norm_sq == nullptr ? 1.0f : 2.0f * qscale[i];
      const float* bias = v.norm_sq == nullptr ? nullptr : v.norm_sq + c0;
      float value = 0;
      const size_t arg = kernels.argmax_scaled(row, v.scale + c0, bias, nb, mul, &value);
      if (value > best_value[i]) {
        best_value[i] = value;
        best[i] = static_cast<uint32_t>(c0 + arg);
        best_dot[i] = row[arg];
      }
    }
  }
  for (size_t i = 0; i < np; ++i) {
    labels[begin + i] = best[i];
    if (scores == nullptr) continue;
    const float dot = qscale[i] * v.scale[best[i]] * static_cast<float>(best_dot[i]);
    if (v.norm_sq == nullptr) {
      scores[begin + i] = dot;
    } else {
      const float* p = x + (begin + i) * dim;
      float norm = 0;
      for (size_t d = 0; d < dim; ++d) norm += p[d] * p[d];
      scores[begin + i] = std::max(0.0f, norm - 2.0f * dot + v.norm_sq[best[i]]);
    }
  }
}

}  // namespace

float QuantizeSymmetricRow(const float* x, size_t dim, int8_t* out) {
  return ActiveKernels().quantize_s8(x, dim, out);
}

void AssignNearest(const Int8CentroidView& view, const float* x, size_t n, uint32_t* labels,
                   float* scores, ThreadPool* pool) {
  if (n == 0 || view.k == 0) return;
  const size_t tasks = (n + kPointsPerTask - 1) / kPointsPerTask;
  auto run = [&](size_t t) {
    const size_t begin = t * kPointsPerTask;
    AssignRange(view, x, begin, std::min(n, begin + kPointsPerTask), labels, scores);
  };
  if (pool == nullptr || tasks == 1) {
    for (size_t t = 0; t < tasks; ++t) run(t);
  } else {
    pool->ParallelFor(tasks, run);
  }
}

Int8Centroids::Int8Centroids(const float* centroids, size_t k, size_t dim, bool l2)
    : k_(k), dim_(dim), stride_((dim + 15) / 16 * 16), codes_(k * stride_, 0), scale_(k) {
  for (size_t c = 0; c < k; ++c) {
    scale_[c] = QuantizeSymmetricRow(centroids + c * dim, dim, codes_.data() + c * stride_);
  }
  if (l2) {
    norm_sq_.resize(k);
    for (size_t c = 0; c < k; ++c) {
      double s = 0;
      for (size_t d = 0; d < dim; ++d) {
        const double v = centroids[c * dim + d];
        s += v * v;
      }
      norm_sq_[c] = static_cast<float>(s);
    }
  }
}

Int8CentroidView Int8Centroids::view() const {
  Int8CentroidView v;
  v.codes = codes_.data();
  v.stride = stride_;
  v.scale = scale_.data();
  v.norm_sq = norm_sq_.empty() ? nullptr : norm_sq_.data();
  v.k = k_;
  v.dim = dim_;
  return v;
}

std::vector<float> Int8Centroids::Dequantized() const {
  std::vector<float> out(k_ * dim_);
  for (size_t c = 0; c < k_; ++c) {
    for (size_t d = 0; d < dim_; ++d) {
      out[c * dim_ + d] = static_cast<float>(codes_[c * stride_ + d]) * scale_[c];
    }
  }
  return out;
}

size_t Int8Centroids::MemoryBytes() const {
  return codes_.capacity() + (scale_.capacity() + norm_sq_.capacity()) * sizeof(float);
}

}  // namespace qvec::index
