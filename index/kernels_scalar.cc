// Scalar reference kernels: the definition of correct results for all ISAs.
#include <cstddef>
#include <cstdint>

#include "index/kernels.h"

namespace qvec::index::internal {
namespace {

int32_t DotS8(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t sum = 0;
  for (size_t i = 0; i < dim; ++i) {
    sum += int32_t{a[i]} * int32_t{b[i]};
  }
  return sum;
}

void DotS8Many(const int8_t* query, const int8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = DotS8(query, codes + j * code_stride, dim);
  }
}

int32_t DotU8S8(const uint8_t* code, const int8_t* query, size_t dim) {
  int32_t sum = 0;
  for (size_t i = 0; i < dim; ++i) {
    sum += int32_t{code[i]} * int32_t{query[i]};
  }
  return sum;
}

void DotU8S8Many(const int8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                 size_t dim, int32_t* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = DotU8S8(codes + j * code_stride, query, dim);
  }
}

// Codes in blocks of 64 so a block stays in L1 while every query passes.
constexpr size_t kBatchCodeBlock = 64;

void DotS8Batch(const int8_t* queries, size_t query_stride, size_t nq, const int8_t* codes,
                size_t code_stride, size_t n, size_t dim, int32_t* out) {
  for (size_t c0 = 0; c0 < n; c0 += kBatchCodeBlock) {
    const size_t nb = n - c0 < kBatchCodeBlock ? n - c0 : kBatchCodeBlock;
    for (size_t i = 0; i < nq; ++i) {
      DotS8Many(queries + i * query_stride, codes + c0 * code_stride, code_stride, nb, dim,
                out + i * n + c0);
    }
  }
}

void DotU8S8Batch(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                  size_t code_stride, size_t n, size_t dim, int32_t* out) {
  for (size_t c0 = 0; c0 < n; c0 += kBatchCodeBlock) {
    const size_t nb = n - c0 < kBatchCodeBlock ? n - c0 : kBatchCodeBlock;
    for (size_t i = 0; i < nq; ++i) {
      DotU8S8Many(queries + i * query_stride, codes + c0 * code_stride, code_stride, nb, dim,
                  out + i * n + c0);
    }
  }
}

float DotF32(const float* a, const float* b, size_t dim) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    sum += a[i] * b[i];
  }
  return sum;
}

float L2SqF32(const float* a, const float* b, size_t dim) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

int32_t SadU8(const uint8_t* a, const uint8_t* b, size_t dim) {
  int32_t sum = 0;
  for (size_t i = 0; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    sum += d < 0 ? -d : d;
  }
  return sum;
}

void SadU8Many(const uint8_t* query, const uint8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = SadU8(query, codes + j * code_stride, dim);
  }
}

float L1F32(const float* a, const float* b, size_t dim) {
  float sum = 0.0f;
  for (size_t i = 0; i < dim; ++i) {
    const float d = a[i] - b[i];
    sum += d < 0 ? -d : d;
  }
  return sum;
}

void DotF32Many(const float* query, const float* x, size_t stride, size_t n, size_t dim,
                float* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = DotF32(query, x + j * stride, dim);
  }
}

void L2SqF32Many(const float* query, const float* x, size_t stride, size_t n, size_t dim,
                 float* out) {
  for (size_t j = 0; j < n; ++j) {
    out[j] = L2SqF32(query, x + j * stride, dim);
  }
}

size_t RankSelect(const int32_t* dots, const float* scale, const float* offset,
                  const float* norm_sq, size_t n, float qs, float qsum, float qbias, float bar,
                  float* ranks, uint32_t* selected) {
  size_t count = 0;
  for (size_t j = 0; j < n; ++j) {
    float r = qs * scale[j] * static_cast<float>(dots[j]) + offset[j] * qsum + qbias;
    if (norm_sq != nullptr) {
      r = 2.0f * r - norm_sq[j];
    }
    ranks[j] = r;
    if (r >= bar) {
      selected[count++] = static_cast<uint32_t>(j);
    }
  }
  return count;
}

float QuantizeS8(const float* x, size_t dim, int8_t* out) {
  float max_abs = 0;
  for (size_t i = 0; i < dim; ++i) {
    const float a = x[i] < 0 ? -x[i] : x[i];
    max_abs = a > max_abs ? a : max_abs;
  }
  if (!(max_abs > 0)) {
    for (size_t i = 0; i < dim; ++i) out[i] = 0;
    return 0.0f;
  }
  const float inv = 127.0f / max_abs;
  // Adding and subtracting 1.5 * 2^23 rounds half to even for |v| < 2^22
  // (|v| <= 127 here), like nearbyint in the default mode, without libm.
  constexpr float kMagic = 12582912.0f;
  for (size_t i = 0; i < dim; ++i) {
    float v = (x[i] * inv + kMagic) - kMagic;
    v = v < -127.0f ? -127.0f : v;
    v = v > 127.0f ? 127.0f : v;
    out[i] = static_cast<int8_t>(v);
  }
  return max_abs / 127.0f;
}

// The reference of Kernels::scan_u4: one lookup per (row, sub-code).
void ScanU4(const uint8_t* lut, const uint8_t* blocks, size_t nblocks, size_t m, uint16_t* out) {
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * m * 16;
    for (size_t r = 0; r < 32; ++r) {
      uint32_t sum = 0;
      for (size_t j = 0; j < m; ++j) {
        const uint8_t byte = block[j * 16 + (r & 15)];
        const uint8_t code = r < 16 ? (byte & 15) : (byte >> 4);
        sum += lut[j * 16 + code];
      }
      out[b * 32 + r] = static_cast<uint16_t>(sum);
    }
  }
}

size_t SelectU16(const uint16_t* values, size_t n, int32_t above, uint32_t* selected) {
  size_t count = 0;
  for (size_t j = 0; j < n; ++j) {
    if (int32_t{values[j]} > above) selected[count++] = static_cast<uint32_t>(j);
  }
  return count;
}

}  // namespace

size_t ScalarArgmaxScaled(const int32_t* dots, const float* scale, const float* bias, size_t n,
                          float mul, float* best) {
  size_t arg = 0;
  float top = 0;
  for (size_t j = 0; j < n; ++j) {
    float v = (mul * scale[j]) * static_cast<float>(dots[j]);
    if (bias != nullptr) v -= bias[j];
    if (j == 0 || v > top) {
      top = v;
      arg = j;
    }
  }
  *best = top;
  return arg;
}

namespace {

constexpr Kernels kScalarKernels = {
    .level = SimdLevel::kScalar,
    .dot_s8 = DotS8,
    .dot_s8_many = DotS8Many,
    .dot_u8s8 = DotU8S8,
    .dot_u8s8_many = DotU8S8Many,
    .dot_s8_batch = DotS8Batch,
    .dot_u8s8_batch = DotU8S8Batch,
    .sad_u8 = SadU8,
    .sad_u8_many = SadU8Many,
    .rank_select = RankSelect,
    .quantize_s8 = QuantizeS8,
    .argmax_scaled = ScalarArgmaxScaled,
    .scan_u4 = ScanU4,
    .select_u16 = SelectU16,
    .dot_f32 = DotF32,
    .l2sq_f32 = L2SqF32,
    .l1_f32 = L1F32,
    .dot_f32_many = DotF32Many,
    .l2sq_f32_many = L2SqF32Many,
};

}  // namespace

const Kernels& ScalarKernels() { return kScalarKernels; }

}  // namespace qvec::index::internal
