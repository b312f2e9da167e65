// AVX2 + FMA kernels. Compiled with -mavx2 -mfma -mbmi2; only called after
// the dispatcher confirmed CPU support. Deliberately free of std:: templates
// (see internal::ThreadScratch).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/kernels.h"

namespace qvec::index::internal {
namespace {

inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// int8 x int8 on 32 bytes. vpmaddubsw needs an unsigned operand, so move the
// query's sign onto the code: |q| * sign(x, q) == q * x. With both in
// [-127, 127] a pair sums to at most 2 * 127 * 127 = 32258, so the int16
// saturation of vpmaddubsw never triggers: the result is exact.
inline __m256i DotS8Step(__m256i q_abs, __m256i q, __m256i x, __m256i ones16) {
  const __m256i pairs = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(x, q));
  return _mm256_madd_epi16(pairs, ones16);
}

int32_t ScalarTailS8(const int8_t* a, const int8_t* b, size_t from, size_t dim) {
  int32_t sum = 0;
  for (size_t i = from; i < dim; ++i) {
    sum += int32_t{a[i]} * int32_t{b[i]};
  }
  return sum;
}

int32_t ScalarTailU8S8(const uint8_t* code, const int8_t* q, size_t from, size_t dim) {
  int32_t sum = 0;
  for (size_t i = from; i < dim; ++i) {
    sum += int32_t{code[i]} * int32_t{q[i]};
  }
  return sum;
}

int32_t DotS8(const int8_t* a, const int8_t* b, size_t dim) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i acc = _mm256_setzero_si256();
  const size_t full = dim / 32 * 32;
  for (size_t i = 0; i < full; i += 32) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    acc = _mm256_add_epi32(acc, DotS8Step(_mm256_abs_epi8(q), q, x, ones16));
  }
  return HorizontalSum(acc) + ScalarTailS8(a, b, full, dim);
}

void DotS8Many(const int8_t* query, const int8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  const __m256i ones16 = _mm256_set1_epi16(1);
  const size_t full = dim / 32 * 32;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const int8_t* c0 = codes + j * code_stride;
    const int8_t* c1 = c0 + code_stride;
    const int8_t* c2 = c1 + code_stride;
    const int8_t* c3 = c2 + code_stride;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (size_t i = 0; i < full; i += 32) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(query + i));
      const __m256i qa = _mm256_abs_epi8(q);
      acc0 = _mm256_add_epi32(
          acc0,
          DotS8Step(qa, q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c0 + i)), ones16));
      acc1 = _mm256_add_epi32(
          acc1,
          DotS8Step(qa, q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c1 + i)), ones16));
      acc2 = _mm256_add_epi32(
          acc2,
          DotS8Step(qa, q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c2 + i)), ones16));
      acc3 = _mm256_add_epi32(
          acc3,
          DotS8Step(qa, q, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c3 + i)), ones16));
    }
    out[j] = HorizontalSum(acc0) + ScalarTailS8(query, c0, full, dim);
    out[j + 1] = HorizontalSum(acc1) + ScalarTailS8(query, c1, full, dim);
    out[j + 2] = HorizontalSum(acc2) + ScalarTailS8(query, c2, full, dim);
    out[j + 3] = HorizontalSum(acc3) + ScalarTailS8(query, c3, full, dim);
  }
  for (; j < n; ++j) {
    out[j] = DotS8(query, codes + j * code_stride, dim);
  }
}

// uint8 x int8 pairs can reach 2 * 255 * 127 > 32767, so vpmaddubsw would
// saturate; widen both to int16 and use vpmaddwd instead (exact).
inline __m256i DotU8S8Step16(const uint8_t* code, __m256i q16) {
  const __m256i x16 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(code)));
  return _mm256_madd_epi16(x16, q16);
}

inline __m256i LoadQ16(const int8_t* q) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
}

int32_t DotU8S8(const uint8_t* code, const int8_t* query, size_t dim) {
  __m256i acc = _mm256_setzero_si256();
  const size_t full = dim / 16 * 16;
  for (size_t i = 0; i < full; i += 16) {
    acc = _mm256_add_epi32(acc, DotU8S8Step16(code + i, LoadQ16(query + i)));
  }
  return HorizontalSum(acc) + ScalarTailU8S8(code, query, full, dim);
}

void DotU8S8Many(const int8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                 size_t dim, int32_t* out) {
  const size_t full = dim / 16 * 16;
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* c0 = codes + j * code_stride;
    const uint8_t* c1 = c0 + code_stride;
    const uint8_t* c2 = c1 + code_stride;
    const uint8_t* c3 = c2 + code_stride;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (size_t i = 0; i < full; i += 16) {
      const __m256i q16 = LoadQ16(query + i);
      acc0 = _mm256_add_epi32(acc0, DotU8S8Step16(c0 + i, q16));
      acc1 = _mm256_add_epi32(acc1, DotU8S8Step16(c1 + i, q16));
      acc2 = _mm256_add_epi32(acc2, DotU8S8Step16(c2 + i, q16));
      acc3 = _mm256_add_epi32(acc3, DotU8S8Step16(c3 + i, q16));
    }
    out[j] = HorizontalSum(acc0) + ScalarTailU8S8(c0, query, full, dim);
    out[j + 1] = HorizontalSum(acc1) + ScalarTailU8S8(c1, query, full, dim);
    out[j + 2] = HorizontalSum(acc2) + ScalarTailU8S8(c2, query, full, dim);
    out[j + 3] = HorizontalSum(acc3) + ScalarTailU8S8(c3, query, full, dim);
  }
  for (; j < n; ++j) {
    out[j] = DotU8S8(codes + j * code_stride, query, dim);
  }
}

// ---- Batch kernels ------------------------------------------------------
//
// A small GEMM on int16: AVX2 has no int8 dot product with two signed
// operands that cannot saturate (vpmaddubsw wants one unsigned side and
// saturates int16 pairs of |255 * 127| * 2), so codes and queries are
// widened to int16 once per block and multiplied with vpmaddwd, whose int32
// pair sums are exact. Codes are packed 16 at a time as int16 pairs: dword
// [p][c] holds dimensions 2p and 2p+1 of code c, so one broadcast dword of a
// query times two registers of packed codes gives 16 partial dot products,
// accumulated in registers across the whole dimension (no horizontal sums).
// A micro-kernel tile is 6 queries x 16 codes (12 accumulators).
// Against the previous per-pair vpsignb + vpmaddubsw + vpmaddwd loop: one
// ALU uop per 16 multiply-adds instead of three per 32, and 7 loads per 192.

inline size_t MinSize(size_t a, size_t b) { return a < b ? a : b; }

constexpr size_t kBatchCodes = 16;    // codes per packed block
constexpr size_t kBatchQueries = 6;   // queries per micro-kernel tile
constexpr size_t kSmallBatch = 4;     // fewer queries: the per-query kernels

// Packs nb (<= 16) code rows into pairs x 16 dwords; missing codes and the
// odd last dimension are zero. 16 dimensions of a row at a time are widened
// in a register and written out as 8 dwords of its column.
template <bool kSigned>
void PackCodes16(const uint8_t* codes, size_t code_stride, size_t nb, size_t dim, size_t pairs,
                 uint32_t* packed) {
  alignas(32) uint32_t lanes[8];
  const size_t full = dim / 16 * 16;
  for (size_t c = 0; c < kBatchCodes; ++c) {
    if (c >= nb) {
      for (size_t p = 0; p < pairs; ++p) packed[p * kBatchCodes + c] = 0;
      continue;
    }
    const uint8_t* row = codes + c * code_stride;
    for (size_t d = 0; d < full; d += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d));
      const __m256i wide = kSigned ? _mm256_cvtepi8_epi16(bytes) : _mm256_cvtepu8_epi16(bytes);
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), wide);
      uint32_t* dst = packed + (d / 2) * kBatchCodes + c;
      for (size_t j = 0; j < 8; ++j) dst[j * kBatchCodes] = lanes[j];
    }
    for (size_t d = full; d < dim; d += 2) {
      const int32_t lo = kSigned ? int32_t{static_cast<int8_t>(row[d])} : int32_t{row[d]};
      int32_t hi = 0;
      if (d + 1 < dim) {
        hi = kSigned ? int32_t{static_cast<int8_t>(row[d + 1])} : int32_t{row[d + 1]};
      }
      packed[(d / 2) * kBatchCodes + c] =
          (static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16);
    }
  }
}

inline void MicroKernel16(const uint32_t* const q[kBatchQueries], const uint32_t* packed,
                          size_t pairs, int32_t* tile) {
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
          a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  const int* q0 = reinterpret_cast<const int*>(q[0]);
  const int* q1 = reinterpret_cast<const int*>(q[1]);
  const int* q2 = reinterpret_cast<const int*>(q[2]);
  const int* q3 = reinterpret_cast<const int*>(q[3]);
  const int* q4 = reinterpret_cast<const int*>(q[4]);
  const int* q5 = reinterpret_cast<const int*>(q[5]);
  for (size_t p = 0; p < pairs; ++p) {
    const __m256i x0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(packed + p * 16));
    const __m256i x1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(packed + p * 16 + 8));
#define QVEC_STEP(qp, lo, hi)                                  \
  do {                                                         \
    const __m256i b = _mm256_set1_epi32((qp)[p]);              \
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(b, x0));       \
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(b, x1));       \
  } while (0)
    QVEC_STEP(q0, a00, a01);
    QVEC_STEP(q1, a10, a11);
    QVEC_STEP(q2, a20, a21);
    QVEC_STEP(q3, a30, a31);
    QVEC_STEP(q4, a40, a41);
    QVEC_STEP(q5, a50, a51);
#undef QVEC_STEP
  }
  const __m256i results[12] = {a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51};
  for (int i = 0; i < 12; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(tile + i * 8), results[i]);
  }
}

template <bool kSigned>
void DotBatchImpl(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                  size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq == 0 || n == 0) {
    return;
  }
  const size_t pairs = (dim + 1) / 2;
  // Queries as int16 pairs, one dword per pair (the odd last one zero-padded).
  uint32_t* qpad = reinterpret_cast<uint32_t*>(ThreadScratch(nq * pairs * 4, 0));
  uint32_t* packed = reinterpret_cast<uint32_t*>(ThreadScratch(pairs * kBatchCodes * 4 + 64, 1));
  for (size_t i = 0; i < nq; ++i) {
    const int8_t* src = queries + i * query_stride;
    for (size_t p = 0; p < pairs; ++p) {
      const int32_t lo = src[2 * p];
      const int32_t hi = 2 * p + 1 < dim ? int32_t{src[2 * p + 1]} : 0;
      qpad[i * pairs + p] = (static_cast<uint32_t>(lo) & 0xFFFFu) | (static_cast<uint32_t>(hi) << 16);
    }
  }
  alignas(32) int32_t tile[kBatchQueries * kBatchCodes];
  for (size_t c0 = 0; c0 < n; c0 += kBatchCodes) {
    const size_t nb = MinSize(kBatchCodes, n - c0);
    PackCodes16<kSigned>(codes + c0 * code_stride, code_stride, nb, dim, pairs, packed);
    for (size_t q0 = 0; q0 < nq; q0 += kBatchQueries) {
      const size_t qn = MinSize(kBatchQueries, nq - q0);
      const uint32_t* qrows[kBatchQueries];
      for (size_t qi = 0; qi < kBatchQueries; ++qi) {
        qrows[qi] = qpad + (q0 + MinSize(qi, qn - 1)) * pairs;
      }
      MicroKernel16(qrows, packed, pairs, tile);
      for (size_t qi = 0; qi < qn; ++qi) {
        int32_t* dst = out + (q0 + qi) * n + c0;
        const int32_t* src = tile + qi * kBatchCodes;
        if (nb == kBatchCodes) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst),
                              _mm256_load_si256(reinterpret_cast<const __m256i*>(src)));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8),
                              _mm256_load_si256(reinterpret_cast<const __m256i*>(src + 8)));
        } else {
          for (size_t c = 0; c < nb; ++c) dst[c] = src[c];
        }
      }
    }
  }
}

void DotS8Batch(const int8_t* queries, size_t query_stride, size_t nq, const int8_t* codes,
                size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq < kSmallBatch) {
    for (size_t i = 0; i < nq; ++i) {
      DotS8Many(queries + i * query_stride, codes, code_stride, n, dim, out + i * n);
    }
    return;
  }
  DotBatchImpl<true>(queries, query_stride, nq, reinterpret_cast<const uint8_t*>(codes),
                     code_stride, n, dim, out);
}

void DotU8S8Batch(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                  size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq < kSmallBatch) {
    for (size_t i = 0; i < nq; ++i) {
      DotU8S8Many(queries + i * query_stride, codes, code_stride, n, dim, out + i * n);
    }
    return;
  }
  DotBatchImpl<false>(queries, query_stride, nq, codes, code_stride, n, dim, out);
}

float DotF32(const float* a, const float* b, size_t dim) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= dim; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < dim; ++i) {
    sum += a[i] * b[i];
  }
  return sum;
}

float L2SqF32(const float* a, const float* b, size_t dim) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 8 <= dim; i += 8) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  float sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < dim; ++i) {
    const float d = a[i] - b[i];
    sum += d * d;
  }
  return sum;
}

// Sum of |a - b| over uint8: vpsadbw adds eight absolute byte differences
// into each 64-bit lane; the lanes of 32-byte steps accumulate without
// overflow (at most 255 * 65536 per lane).
int32_t SadU8(const uint8_t* a, const uint8_t* b, size_t dim) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(x, y));
  }
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
  int32_t sum = static_cast<int32_t>(_mm_cvtsi128_si64(s));
  for (; i < dim; ++i) {
    const int32_t d = int32_t{a[i]} - int32_t{b[i]};
    sum += d < 0 ? -d : d;
  }
  return sum;
}

void SadU8Many(const uint8_t* query, const uint8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  for (size_t j = 0; j < n; ++j) out[j] = SadU8(query, codes + j * code_stride, dim);
}

float L1F32(const float* a, const float* b, size_t dim) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i),
                                                                    _mm256_loadu_ps(b + i))));
    acc1 = _mm256_add_ps(acc1, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
                                                                    _mm256_loadu_ps(b + i + 8))));
  }
  for (; i + 8 <= dim; i += 8) {
    acc0 = _mm256_add_ps(acc0, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(a + i),
                                                                    _mm256_loadu_ps(b + i))));
  }
  float sum = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < dim; ++i) {
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

// Lanes [0, rem) set (all 8 when rem >= 8): the mask of the masked loads
// that handle the last partial block of 8.
inline __m256i LaneMask(size_t rem) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem < 8 ? rem : 8)), lanes);
}

// Same operation order as the scalar reference (mul, mul, mul, add, add),
// and this file is compiled with -ffp-contract=off, so ranks are identical.
size_t RankSelect(const int32_t* dots, const float* scale, const float* offset,
                  const float* norm_sq, size_t n, float qs, float qsum, float qbias, float bar,
                  float* ranks, uint32_t* selected) {
  const __m256 vqs = _mm256_set1_ps(qs), vqsum = _mm256_set1_ps(qsum),
               vqbias = _mm256_set1_ps(qbias), vbar = _mm256_set1_ps(bar),
               two = _mm256_set1_ps(2.0f);
  size_t count = 0;
  for (size_t j = 0; j < n; j += 8) {
    const __m256i m = LaneMask(n - j);
    const __m256 d = _mm256_cvtepi32_ps(_mm256_maskload_epi32(dots + j, m));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(vqs, _mm256_maskload_ps(scale + j, m)), d);
    r = _mm256_add_ps(_mm256_add_ps(r, _mm256_mul_ps(_mm256_maskload_ps(offset + j, m), vqsum)),
                      vqbias);
    if (norm_sq != nullptr) {
      r = _mm256_sub_ps(_mm256_mul_ps(two, r), _mm256_maskload_ps(norm_sq + j, m));
    }
    _mm256_maskstore_ps(ranks + j, m, r);
    const __m256 keep = _mm256_and_ps(_mm256_cmp_ps(r, vbar, _CMP_GE_OQ), _mm256_castsi256_ps(m));
    unsigned mask = static_cast<unsigned>(_mm256_movemask_ps(keep));
    while (mask != 0) {
      selected[count++] = static_cast<uint32_t>(j + static_cast<unsigned>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  return count;
}

float QuantizeS8(const float* x, size_t dim, int8_t* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  for (size_t i = 0; i < dim; i += 8) {
    const __m256 v = _mm256_maskload_ps(x + i, LaneMask(dim - i));  // masked lanes read 0
    vmax = _mm256_max_ps(vmax, _mm256_and_ps(v, abs_mask));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float max_abs = 0;
  for (float v : lanes) max_abs = v > max_abs ? v : max_abs;
  if (!(max_abs > 0)) {
    for (size_t i = 0; i < dim; ++i) out[i] = 0;
    return 0.0f;
  }
  const __m256 vinv = _mm256_set1_ps(127.0f / max_abs);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  for (size_t i = 0; i < dim; i += 8) {
    // cvtps rounds half to even in the default MXCSR mode, like nearbyint.
    const __m256 v = _mm256_maskload_ps(x + i, LaneMask(dim - i));
    __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(v, vinv));
    q = _mm256_min_epi32(_mm256_max_epi32(q, lo), hi);
    alignas(32) int32_t w[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(w), q);
    const size_t valid = dim - i < 8 ? dim - i : 8;
    for (size_t k = 0; k < valid; ++k) out[i + k] = static_cast<int8_t>(w[k]);
  }
  return max_abs / 127.0f;
}

// 4-bit fast scan: one 32-byte load covers sub-codes j and j + 1 of the 32
// rows (a 128-bit lane each), vpshufb looks both up in their 16-entry tables
// at once. Byte sums are kept in 16-bit lanes without widening: `all` adds
// whole words (even byte + 256 * odd byte) and `odd` the odd bytes alone, so
// the even bytes' sum is all - 256 * odd, exact modulo 2^16.
void ScanU4(const uint8_t* lut, const uint8_t* blocks, size_t nblocks, size_t m, uint16_t* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * m * 16;
    __m256i all_lo = _mm256_setzero_si256(), odd_lo = _mm256_setzero_si256();
    __m256i all_hi = _mm256_setzero_si256(), odd_hi = _mm256_setzero_si256();
    for (size_t j = 0; j < m; j += 2) {
      const __m256i codes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + j * 16));
      const __m256i table = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + j * 16));
      const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(codes, low4));
      const __m256i hi =
          _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(codes, 4), low4));
      all_lo = _mm256_add_epi16(all_lo, lo);
      odd_lo = _mm256_add_epi16(odd_lo, _mm256_srli_epi16(lo, 8));
      all_hi = _mm256_add_epi16(all_hi, hi);
      odd_hi = _mm256_add_epi16(odd_hi, _mm256_srli_epi16(hi, 8));
    }
    const __m256i even_lo = _mm256_sub_epi16(all_lo, _mm256_slli_epi16(odd_lo, 8));
    const __m256i even_hi = _mm256_sub_epi16(all_hi, _mm256_slli_epi16(odd_hi, 8));
    // Lane 0 holds the even sub-codes' sums, lane 1 the odd ones'.
    const __m128i e0 = _mm_add_epi16(_mm256_castsi256_si128(even_lo),
                                     _mm256_extracti128_si256(even_lo, 1));
    const __m128i o0 =
        _mm_add_epi16(_mm256_castsi256_si128(odd_lo), _mm256_extracti128_si256(odd_lo, 1));
    const __m128i e1 = _mm_add_epi16(_mm256_castsi256_si128(even_hi),
                                     _mm256_extracti128_si256(even_hi, 1));
    const __m128i o1 =
        _mm_add_epi16(_mm256_castsi256_si128(odd_hi), _mm256_extracti128_si256(odd_hi, 1));
    __m128i* dst = reinterpret_cast<__m128i*>(out + b * 32);
    _mm_storeu_si128(dst + 0, _mm_unpacklo_epi16(e0, o0));
    _mm_storeu_si128(dst + 1, _mm_unpackhi_epi16(e0, o0));
    _mm_storeu_si128(dst + 2, _mm_unpacklo_epi16(e1, o1));
    _mm_storeu_si128(dst + 3, _mm_unpackhi_epi16(e1, o1));
  }
}

size_t SelectU16(const uint16_t* values, size_t n, int32_t above, uint32_t* selected) {
  size_t count = 0, j = 0;
  if (above < 0) {
    for (; j < n; ++j) selected[count++] = static_cast<uint32_t>(j);
    return count;
  }
  if (above >= 65535) return 0;
  // Unsigned 16-bit compare as signed after flipping the sign bits.
  const __m256i flip = _mm256_set1_epi16(static_cast<short>(0x8000));
  const __m256i bar = _mm256_set1_epi16(static_cast<short>(above ^ 0x8000));
  for (; j + 16 <= n; j += 16) {
    const __m256i v = _mm256_xor_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(values + j)), flip);
    // Two mask bits per 16-bit lane; keep the even ones.
    uint32_t mask = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpgt_epi16(v, bar)));
    mask = _pext_u32(mask, 0x55555555u);
    while (mask != 0) {
      selected[count++] = static_cast<uint32_t>(j + static_cast<size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  for (; j < n; ++j) {
    if (int32_t{values[j]} > above) selected[count++] = static_cast<uint32_t>(j);
  }
  return count;
}

constexpr Kernels kAvx2Kernels = {
    .level = SimdLevel::kAvx2,
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
    .argmax_scaled = ScalarArgmaxScaled,  // the reference; AVX2 is the fallback level
    .scan_u4 = ScanU4,
    .select_u16 = SelectU16,
    .dot_f32 = DotF32,
    .l2sq_f32 = L2SqF32,
    .l1_f32 = L1F32,
    .dot_f32_many = DotF32Many,
    .l2sq_f32_many = L2SqF32Many,
};

}  // namespace

const Kernels& Avx2Kernels() { return kAvx2Kernels; }

}  // namespace qvec::index::internal
