// AVX-512 (F/BW/VL/DQ/VNNI) kernels. Compiled with AVX-512 flags; only called
// after the dispatcher confirmed CPU support. Deliberately free of std::
// templates (see internal::ThreadScratch).
//
// vpdpbusd multiplies an unsigned byte by a signed byte. For int8 codes we
// flip the code's sign bit (x ^ 0x80 == x + 128 as uint8) and subtract
// 128 * sum(q) once per query: sum q*(x+128) - 128*sum q == sum q*x. Every
// partial sum stays below 65536 * 255 * 127 < 2^31, so the result is exact.
// Tails use masked loads; masked-off query bytes are zero, so whatever the
// code lane holds (0 ^ 0x80 = 128) contributes nothing.
// GCC 12 reports a false -Wuninitialized inside _mm512_reduce_add_* (it
// builds from _mm512_undefined_*); silence it for this file only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/kernels.h"

namespace qvec::index::internal {
namespace {

inline size_t MinSize(size_t a, size_t b) { return a < b ? a : b; }

inline __mmask64 TailMask(size_t rem) {
  return rem == 0 ? ~__mmask64{0} : (__mmask64{1} << rem) - 1;
}

int32_t QuerySum(const int8_t* q, size_t dim) {
  // Sum of int8 via vpsadbw on q ^ 0x80 (unsigned), then remove the bias.
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512i acc = _mm512_setzero_si512();
  size_t i = 0;
  int64_t count = 0;
  for (; i + 64 <= dim; i += 64) {
    const __m512i v = _mm512_xor_si512(_mm512_loadu_si512(q + i), flip);
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
    count += 64;
  }
  int64_t sum = _mm512_reduce_add_epi64(acc) - 128 * count;
  for (; i < dim; ++i) {
    sum += q[i];
  }
  return static_cast<int32_t>(sum);
}

// Scores codes against one query, 4 codes per iteration so each query chunk
// is loaded once for 4 codes; the next codes are prefetched.
template <bool kSignedCodes>
void DotManyImpl(const int8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                 size_t dim, int32_t* out) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int32_t correction = kSignedCodes ? 128 * QuerySum(query, dim) : 0;
  const size_t full = dim / 64;
  const size_t rem = dim % 64;
  const __mmask64 tail = TailMask(rem);
  const __m512i q_tail =
      rem ? _mm512_maskz_loadu_epi8(tail, query + full * 64) : _mm512_setzero_si512();
  // Prefetch distance: at least 8 rows and at least kPrefetchBytes ahead, so
  // that short rows (128 bytes) still keep enough DRAM requests in flight;
  // into L2 (T1), whose queue holds more misses than L1's fill buffers. On
  // 1M x 128 rows from DRAM this took one core from ~13 to ~17-19 GB/s
  // (2 KB or 8 KB ahead measured ~12-13).
  constexpr size_t kPrefetchBytes = 4096;
  const size_t ahead_rows = kPrefetchBytes / code_stride > 8 ? kPrefetchBytes / code_stride : 8;
  const size_t ahead = ahead_rows * code_stride;
  auto load = [&](const uint8_t* p) {
    const __m512i v = _mm512_loadu_si512(p);
    return kSignedCodes ? _mm512_xor_si512(v, flip) : v;
  };
  auto load_tail = [&](const uint8_t* p) {
    const __m512i v = _mm512_maskz_loadu_epi8(tail, p);
    return kSignedCodes ? _mm512_xor_si512(v, flip) : v;
  };
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const uint8_t* c0 = codes + j * code_stride;
    const uint8_t* c1 = c0 + code_stride;
    const uint8_t* c2 = c1 + code_stride;
    const uint8_t* c3 = c2 + code_stride;
    __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (size_t i = 0; i < full; ++i) {
      const size_t off = i * 64;
      // Prefetch unconditionally: prefetches never fault, and running past
      // the end of this call's rows warms the next call's (the caller scans
      // consecutive blocks).
      const uint8_t* p = c0 + ahead + off;
      _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(p + code_stride), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(p + 2 * code_stride), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(p + 3 * code_stride), _MM_HINT_T1);
      const __m512i q = _mm512_loadu_si512(query + off);
      acc0 = _mm512_dpbusd_epi32(acc0, load(c0 + off), q);
      acc1 = _mm512_dpbusd_epi32(acc1, load(c1 + off), q);
      acc2 = _mm512_dpbusd_epi32(acc2, load(c2 + off), q);
      acc3 = _mm512_dpbusd_epi32(acc3, load(c3 + off), q);
    }
    if (rem) {
      const size_t off = full * 64;
      acc0 = _mm512_dpbusd_epi32(acc0, load_tail(c0 + off), q_tail);
      acc1 = _mm512_dpbusd_epi32(acc1, load_tail(c1 + off), q_tail);
      acc2 = _mm512_dpbusd_epi32(acc2, load_tail(c2 + off), q_tail);
      acc3 = _mm512_dpbusd_epi32(acc3, load_tail(c3 + off), q_tail);
    }
    out[j] = _mm512_reduce_add_epi32(acc0) - correction;
    out[j + 1] = _mm512_reduce_add_epi32(acc1) - correction;
    out[j + 2] = _mm512_reduce_add_epi32(acc2) - correction;
    out[j + 3] = _mm512_reduce_add_epi32(acc3) - correction;
  }
  for (; j < n; ++j) {
    const uint8_t* c = codes + j * code_stride;
    __m512i acc = _mm512_setzero_si512();
    for (size_t i = 0; i < full; ++i) {
      acc = _mm512_dpbusd_epi32(acc, load(c + i * 64), _mm512_loadu_si512(query + i * 64));
    }
    if (rem) {
      acc = _mm512_dpbusd_epi32(acc, load_tail(c + full * 64), q_tail);
    }
    out[j] = _mm512_reduce_add_epi32(acc) - correction;
  }
}

int32_t DotS8(const int8_t* a, const int8_t* b, size_t dim) {
  int32_t out;
  DotManyImpl<true>(a, reinterpret_cast<const uint8_t*>(b), dim, 1, dim, &out);
  return out;
}

void DotS8Many(const int8_t* query, const int8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  DotManyImpl<true>(query, reinterpret_cast<const uint8_t*>(codes), code_stride, n, dim, out);
}

int32_t DotU8S8(const uint8_t* code, const int8_t* query, size_t dim) {
  int32_t out;
  DotManyImpl<false>(query, code, dim, 1, dim, &out);
  return out;
}

void DotU8S8Many(const int8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                 size_t dim, int32_t* out) {
  DotManyImpl<false>(query, codes, code_stride, n, dim, out);
}

// ---- Batched kernel -------------------------------------------------------
//
// GEMM-style: a block of codes is repacked so that one zmm holds 4 consecutive
// bytes of 16 different codes ([sub-block of 16 codes][dim/4][16][4]). A
// vpdpbusd against a broadcast 4-byte slice of one query then advances 16
// code scores at once with no horizontal reductions. The micro-kernel keeps an
// 8 queries x 32 codes tile in 16 accumulators. Each packed block (<= 256
// codes) is packed once per call, so packing is amortized over all queries.

constexpr size_t kBlockCodes = 256;
constexpr size_t kSubBlock = 16;
constexpr size_t kQueryTile = 8;
constexpr size_t kSubTile = 2;  // sub-blocks per micro-kernel tile (32 codes)

inline uint32_t Load4(const uint8_t* p) {
  uint32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}

// Packs codes [0, nb) of the block into `packed`; missing codes and bytes past
// dim are zero (their query bytes are zero or the results are discarded).
template <bool kSignedCodes>
void PackBlock(const uint8_t* codes, size_t code_stride, size_t nb, size_t dim, size_t dim4,
               uint32_t* packed) {
  const uint32_t flip = kSignedCodes ? 0x80808080u : 0u;
  const size_t nsb = (nb + kSubBlock - 1) / kSubBlock;
  const size_t full4 = dim / 4;
  for (size_t sb = 0; sb < nsb; ++sb) {
    uint32_t* dst = packed + sb * dim4 * kSubBlock;
    for (size_t c = 0; c < kSubBlock; ++c) {
      const size_t code = sb * kSubBlock + c;
      if (code >= nb) {
        for (size_t k = 0; k < dim4; ++k) {
          dst[k * kSubBlock + c] = 0;
        }
        continue;
      }
      const uint8_t* src = codes + code * code_stride;
      for (size_t k = 0; k < full4; ++k) {
        dst[k * kSubBlock + c] = Load4(src + 4 * k) ^ flip;
      }
      if (full4 < dim4) {
        uint8_t last[4] = {0, 0, 0, 0};
        for (size_t b = 0; b < dim - full4 * 4; ++b) {
          last[b] = src[full4 * 4 + b];
        }
        dst[full4 * kSubBlock + c] = Load4(last) ^ flip;
      }
    }
  }
}

// One tile: 8 queries (padded rows of dim4 dwords) x 2 sub-blocks (32
// codes). Per 4-byte step: 2 code loads + 8 query broadcasts feed 16
// vpdpbusd. The accumulators are named locals (an array of __m512i made GCC
// shuffle and spill registers); they are stored to `tile` as
// [8 queries][2 sub-blocks][16 codes] at the end.
inline void MicroKernel(const uint32_t* const q[kQueryTile], const uint32_t* const b[kSubTile],
                        size_t dim4, int32_t* tile) {
  __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00;
  __m512i a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  __m512i a40 = a00, a41 = a00, a50 = a00, a51 = a00;
  __m512i a60 = a00, a61 = a00, a70 = a00, a71 = a00;
  const uint32_t* b0p = b[0];
  const uint32_t* b1p = b[1];
  const uint32_t *q0p = q[0], *q1p = q[1], *q2p = q[2], *q3p = q[3];
  const uint32_t *q4p = q[4], *q5p = q[5], *q6p = q[6], *q7p = q[7];
#define QVEC_STEP(row, acc0, acc1)                                    \
  do {                                                                \
    const __m512i qv = _mm512_set1_epi32(static_cast<int>((row)[k])); \
    (acc0) = _mm512_dpbusd_epi32((acc0), b0, qv);                     \
    (acc1) = _mm512_dpbusd_epi32((acc1), b1, qv);                     \
  } while (0)
  for (size_t k = 0; k < dim4; ++k) {
    const __m512i b0 = _mm512_load_si512(b0p + k * kSubBlock);
    const __m512i b1 = _mm512_load_si512(b1p + k * kSubBlock);
    QVEC_STEP(q0p, a00, a01);
    QVEC_STEP(q1p, a10, a11);
    QVEC_STEP(q2p, a20, a21);
    QVEC_STEP(q3p, a30, a31);
    QVEC_STEP(q4p, a40, a41);
    QVEC_STEP(q5p, a50, a51);
    QVEC_STEP(q6p, a60, a61);
    QVEC_STEP(q7p, a70, a71);
  }
#undef QVEC_STEP
  const __m512i results[16] = {a00, a01, a10, a11, a20, a21, a30, a31,
                               a40, a41, a50, a51, a60, a61, a70, a71};
  for (int i = 0; i < 16; ++i) {
    _mm512_store_si512(tile + i * 16, results[i]);
  }
}

template <bool kSignedCodes>
void DotBatchImpl(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                  size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq == 0 || n == 0) {
    return;
  }
  const size_t dim4 = (dim + 3) / 4;
  // Queries copied into zero-padded rows of dim4 dwords, plus corrections.
  uint32_t* qpad = reinterpret_cast<uint32_t*>(ThreadScratch(nq * dim4 * 4, 0));
  int32_t* corrections = reinterpret_cast<int32_t*>(ThreadScratch(nq * sizeof(int32_t), 1));
  uint32_t* packed = reinterpret_cast<uint32_t*>(ThreadScratch(kBlockCodes * dim4 * 4 + 64, 2));
  for (size_t i = 0; i < nq; ++i) {
    uint8_t* row = reinterpret_cast<uint8_t*>(qpad + i * dim4);
    const int8_t* src = queries + i * query_stride;
    for (size_t d = 0; d < dim; ++d) {
      row[d] = static_cast<uint8_t>(src[d]);
    }
    for (size_t d = dim; d < dim4 * 4; ++d) {
      row[d] = 0;
    }
    corrections[i] = kSignedCodes ? 128 * QuerySum(src, dim) : 0;
  }
  for (size_t c0 = 0; c0 < n; c0 += kBlockCodes) {
    const size_t nb = MinSize(kBlockCodes, n - c0);
    const size_t nsb = (nb + kSubBlock - 1) / kSubBlock;
    PackBlock<kSignedCodes>(codes + c0 * code_stride, code_stride, nb, dim, dim4, packed);
    // Sub-tile outer, queries inner: the 32 packed codes (dim * 32 bytes,
    // 25 KiB at dim 784) stay in L1 while every query passes over them.
    for (size_t s0 = 0; s0 < nsb; s0 += kSubTile) {
      const size_t sn = MinSize(kSubTile, nsb - s0);
      const uint32_t* brows[kSubTile];
      for (size_t si = 0; si < kSubTile; ++si) {
        brows[si] = packed + (s0 + MinSize(si, sn - 1)) * dim4 * kSubBlock;
      }
      for (size_t q0 = 0; q0 < nq; q0 += kQueryTile) {
        const size_t qn = MinSize(kQueryTile, nq - q0);
        const uint32_t* qrows[kQueryTile];
        for (size_t qi = 0; qi < kQueryTile; ++qi) {
          qrows[qi] = qpad + (q0 + MinSize(qi, qn - 1)) * dim4;
        }
        alignas(64) int32_t tile[kQueryTile * kSubTile * kSubBlock];
        MicroKernel(qrows, brows, dim4, tile);
        for (size_t qi = 0; qi < qn; ++qi) {
          const __m512i corr = _mm512_set1_epi32(corrections[q0 + qi]);
          int32_t* dst = out + (q0 + qi) * n + c0;
          for (size_t si = 0; si < sn; ++si) {
            const size_t first = (s0 + si) * kSubBlock;
            const size_t valid = MinSize(kSubBlock, nb - first);
            const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
            const __m512i acc = _mm512_load_si512(tile + (qi * kSubTile + si) * kSubBlock);
            _mm512_mask_storeu_epi32(dst + first, m, _mm512_sub_epi32(acc, corr));
          }
        }
      }
    }
  }
}

void DotS8Batch(const int8_t* queries, size_t query_stride, size_t nq, const int8_t* codes,
                size_t code_stride, size_t n, size_t dim, int32_t* out) {
  DotBatchImpl<true>(queries, query_stride, nq, reinterpret_cast<const uint8_t*>(codes),
                     code_stride, n, dim, out);
}

void DotU8S8Batch(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                  size_t code_stride, size_t n, size_t dim, int32_t* out) {
  DotBatchImpl<false>(queries, query_stride, nq, codes, code_stride, n, dim, out);
}

// ---- Float kernels ----------------------------------------------------------

inline __mmask16 FloatTail(size_t rem) {
  return rem == 0 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << rem) - 1);
}

float DotF32(const float* a, const float* b, size_t dim) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  if (i < dim) {
    const __mmask16 m = FloatTail(dim - i);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// Sum of |a - b| over uint8 with vpsadbw on 64-byte steps; the tail is a
// masked load (zeros on both sides add nothing).
int32_t SadU8(const uint8_t* a, const uint8_t* b, size_t dim) {
  __m512i acc = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= dim; i += 64) {
    acc = _mm512_add_epi64(acc,
                           _mm512_sad_epu8(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i)));
  }
  if (i < dim) {
    const __mmask64 m = _bzhi_u64(~uint64_t{0}, static_cast<unsigned>(dim - i));
    acc = _mm512_add_epi64(
        acc, _mm512_sad_epu8(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i)));
  }
  return static_cast<int32_t>(_mm512_reduce_add_epi64(acc));
}

void SadU8Many(const uint8_t* query, const uint8_t* codes, size_t code_stride, size_t n, size_t dim,
               int32_t* out) {
  for (size_t j = 0; j < n; ++j) out[j] = SadU8(query, codes + j * code_stride, dim);
}

float L1F32(const float* a, const float* b, size_t dim) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    acc0 = _mm512_add_ps(
        acc0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
    acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
                                                           _mm512_loadu_ps(b + i + 16))));
  }
  for (; i + 16 <= dim; i += 16) {
    acc0 = _mm512_add_ps(
        acc0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
  }
  if (i < dim) {
    const __mmask16 m = FloatTail(dim - i);
    acc1 = _mm512_add_ps(acc1, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
                                                           _mm512_maskz_loadu_ps(m, b + i))));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

float L2SqF32(const float* a, const float* b, size_t dim) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
  size_t i = 0;
  for (; i + 32 <= dim; i += 32) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
    acc1 = _mm512_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 16 <= dim; i += 16) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    acc0 = _mm512_fmadd_ps(d0, d0, acc0);
  }
  if (i < dim) {
    const __mmask16 m = FloatTail(dim - i);
    const __m512 d =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    acc1 = _mm512_fmadd_ps(d, d, acc1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
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

// Same operation order as the scalar reference (mul, mul, mul, add, add),
// and this file is compiled with -ffp-contract=off, so ranks are identical.
// Selected indices leave through a compress store, no branch per element.
size_t RankSelect(const int32_t* dots, const float* scale, const float* offset,
                  const float* norm_sq, size_t n, float qs, float qsum, float qbias, float bar,
                  float* ranks, uint32_t* selected) {
  const __m512 vqs = _mm512_set1_ps(qs), vqsum = _mm512_set1_ps(qsum),
               vqbias = _mm512_set1_ps(qbias), vbar = _mm512_set1_ps(bar),
               two = _mm512_set1_ps(2.0f);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t count = 0;
  for (size_t j = 0; j < n; j += 16) {
    const __mmask16 m = FloatTail(n - j < 16 ? n - j : 0);
    const __m512 d = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, dots + j));
    __m512 r = _mm512_mul_ps(_mm512_mul_ps(vqs, _mm512_maskz_loadu_ps(m, scale + j)), d);
    r = _mm512_add_ps(_mm512_add_ps(r, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, offset + j), vqsum)),
                      vqbias);
    if (norm_sq != nullptr) {
      r = _mm512_sub_ps(_mm512_mul_ps(two, r), _mm512_maskz_loadu_ps(m, norm_sq + j));
    }
    _mm512_mask_storeu_ps(ranks + j, m, r);
    const __mmask16 keep = _mm512_mask_cmp_ps_mask(m, r, vbar, _CMP_GE_OQ);
    if (keep != 0) {
      _mm512_mask_compressstoreu_epi32(selected + count, keep, index);
      count += static_cast<size_t>(__builtin_popcount(keep));
    }
    index = _mm512_add_epi32(index, step);
  }
  return count;
}

float QuantizeS8(const float* x, size_t dim, int8_t* out) {
  __m512 vmax = _mm512_setzero_ps();
  for (size_t i = 0; i < dim; i += 16) {
    const __mmask16 m = FloatTail(dim - i < 16 ? dim - i : 0);
    vmax = _mm512_max_ps(vmax, _mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + i)));
  }
  const float max_abs = _mm512_reduce_max_ps(vmax);
  if (!(max_abs > 0)) {
    for (size_t i = 0; i < dim; ++i) out[i] = 0;
    return 0.0f;
  }
  const __m512 vinv = _mm512_set1_ps(127.0f / max_abs);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (size_t i = 0; i < dim; i += 16) {
    const __mmask16 m = FloatTail(dim - i < 16 ? dim - i : 0);
    // cvtps rounds half to even in the default MXCSR mode, like nearbyint.
    __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vinv));
    v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
    _mm_mask_storeu_epi8(out + i, m, _mm512_cvtepi32_epi8(v));
  }
  return max_abs / 127.0f;
}

// Per-lane running maxima with their first indices (strict >), then the
// lowest index among the lanes holding the overall maximum.
size_t ArgmaxScaled(const int32_t* dots, const float* scale, const float* bias, size_t n, float mul,
                    float* best) {
  const __m512 vmul = _mm512_set1_ps(mul);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i index = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 top = _mm512_set1_ps(-__builtin_inff());
  __m512i arg = _mm512_set1_epi32(-1);
  for (size_t j = 0; j < n; j += 16) {
    const __mmask16 m = FloatTail(n - j < 16 ? n - j : 0);
    __m512 v = _mm512_mul_ps(_mm512_mul_ps(vmul, _mm512_maskz_loadu_ps(m, scale + j)),
                             _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, dots + j)));
    if (bias != nullptr) v = _mm512_sub_ps(v, _mm512_maskz_loadu_ps(m, bias + j));
    // A lane's first value is taken even if it is -inf (arg still -1).
    const __mmask16 better = _mm512_mask_cmp_ps_mask(m, v, top, _CMP_GT_OQ) |
                             (m & _mm512_cmpeq_epi32_mask(arg, _mm512_set1_epi32(-1)));
    top = _mm512_mask_mov_ps(top, better, v);
    arg = _mm512_mask_mov_epi32(arg, better, index);
    index = _mm512_add_epi32(index, step);
  }
  const float max_value = _mm512_reduce_max_ps(top);
  const __mmask16 at_max = _mm512_cmp_ps_mask(top, _mm512_set1_ps(max_value), _CMP_EQ_OQ) &
                           _mm512_cmpneq_epi32_mask(arg, _mm512_set1_epi32(-1));
  const __m512i candidates = _mm512_mask_mov_epi32(_mm512_set1_epi32(0x7fffffff), at_max, arg);
  *best = max_value;
  return static_cast<size_t>(_mm512_reduce_min_epi32(candidates));
}

// 4-bit fast scan as on AVX2 (see kernels_avx2.cc), four sub-codes per
// 64-byte load; the four 128-bit lanes are summed at the end.
inline __m128i SumLanes16(__m512i v) {
  const __m256i half =
      _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_add_epi16(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
}

void ScanU4(const uint8_t* lut, const uint8_t* blocks, size_t nblocks, size_t m, uint16_t* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* block = blocks + b * m * 16;
    __m512i all_lo = _mm512_setzero_si512(), odd_lo = _mm512_setzero_si512();
    __m512i all_hi = _mm512_setzero_si512(), odd_hi = _mm512_setzero_si512();
    for (size_t j = 0; j < m; j += 4) {
      const __m512i codes = _mm512_loadu_si512(block + j * 16);
      const __m512i table = _mm512_loadu_si512(lut + j * 16);
      const __m512i lo = _mm512_shuffle_epi8(table, _mm512_and_si512(codes, low4));
      const __m512i hi =
          _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(codes, 4), low4));
      all_lo = _mm512_add_epi16(all_lo, lo);
      odd_lo = _mm512_add_epi16(odd_lo, _mm512_srli_epi16(lo, 8));
      all_hi = _mm512_add_epi16(all_hi, hi);
      odd_hi = _mm512_add_epi16(odd_hi, _mm512_srli_epi16(hi, 8));
    }
    const __m128i e0 = SumLanes16(_mm512_sub_epi16(all_lo, _mm512_slli_epi16(odd_lo, 8)));
    const __m128i o0 = SumLanes16(odd_lo);
    const __m128i e1 = SumLanes16(_mm512_sub_epi16(all_hi, _mm512_slli_epi16(odd_hi, 8)));
    const __m128i o1 = SumLanes16(odd_hi);
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
  const __m512i bar = _mm512_set1_epi16(static_cast<short>(above));
  for (; j + 32 <= n; j += 32) {
    uint32_t mask = _mm512_cmpgt_epu16_mask(_mm512_loadu_si512(values + j), bar);
    while (mask != 0) {
      selected[count++] = static_cast<uint32_t>(j + static_cast<size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  if (j < n) {
    const __mmask32 tail = (__mmask32{1} << (n - j)) - 1;
    uint32_t mask = _mm512_mask_cmpgt_epu16_mask(tail, _mm512_maskz_loadu_epi16(tail, values + j), bar);
    while (mask != 0) {
      selected[count++] = static_cast<uint32_t>(j + static_cast<size_t>(__builtin_ctz(mask)));
      mask &= mask - 1;
    }
  }
  return count;
}

constexpr Kernels kAvx512Kernels = {
    .level = SimdLevel::kAvx512,
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
    .argmax_scaled = ArgmaxScaled,
    .scan_u4 = ScanU4,
    .select_u16 = SelectU16,
    .dot_f32 = DotF32,
    .l2sq_f32 = L2SqF32,
    .l1_f32 = L1F32,
    .dot_f32_many = DotF32Many,
    .l2sq_f32_many = L2SqF32Many,
};

}  // namespace

const Kernels& Avx512Kernels() { return kAvx512Kernels; }

}  // namespace qvec::index::internal
