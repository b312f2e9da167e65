// Nearest-centroid assignment on int8 copies of points and centroids, scored
// by the batch kernels (AMX or AVX-512 VNNI) instead of a float GEMM. Used by
// IVF assignment and by k-means training. Results differ from float
// assignment only where two centroids score within the int8 rounding error.
#ifndef QVEC_INDEX_CENTROID_ASSIGN_H_
#define QVEC_INDEX_CENTROID_ASSIGN_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/thread_pool.h"

namespace qvec::index {

// Symmetric int8 code of x (scale = max|x| / 127, round to nearest); writes
// dim bytes to out and returns the scale (0 for an all-zero x).
float QuantizeSymmetricRow(const float* x, size_t dim, int8_t* out);

// Borrowed view of k quantized centroids: codes (k rows of `dim` bytes, one
// every `stride` bytes), their scales, and their squared norms (null: score
// by inner product; set: by L2 distance).
struct Int8CentroidView {
  const int8_t* codes = nullptr;
  size_t stride = 0;
  const float* scale = nullptr;
  const float* norm_sq = nullptr;
  size_t k = 0;
  size_t dim = 0;
};

// For each of the n points (n * dim floats), labels[i] = the centroid with the
// highest estimated inner product (or lowest estimated L2 distance when
// view.norm_sq is set; ties to the lower index). If scores is non-null,
// scores[i] = that estimated inner product (or squared L2 distance, using
// the point's exact norm). Runs on `pool` (null: on the calling thread).
void AssignNearest(const Int8CentroidView& view, const float* x, size_t n, uint32_t* labels,
                   float* scores, ThreadPool* pool);

// Owning int8 copy of k float centroids (k * dim floats), rows padded to
// 16 bytes with zeros. Not thread-safe to modify; const methods are.
class Int8Centroids {
 public:
  Int8Centroids() = default;
  Int8Centroids(const float* centroids, size_t k, size_t dim, bool l2);

  Int8CentroidView view() const;
  size_t MemoryBytes() const;
  // The centroids back as floats (k * dim; code * scale, so within half a
  // quantization step of the originals).
  std::vector<float> Dequantized() const;

 private:
  size_t k_ = 0;
  size_t dim_ = 0;
  size_t stride_ = 0;
  std::vector<int8_t> codes_;
  std::vector<float> scale_;
  std::vector<float> norm_sq_;  // empty unless l2 (assignment by L2 distance)
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_CENTROID_ASSIGN_H_
