// AMX-INT8 batch kernels (the AVX-512 table with its two batch kernels
// replaced). Compiled with AVX-512 and AMX flags; only called after the
// dispatcher confirmed CPU support and obtained the kernel's permission to use
// tile data (arch_prctl). Free of std:: templates (see internal::ThreadScratch).
//
// One TDPBSSD multiplies a 16 x 64 int8 tile A by a 64 x 16 int8 tile B that
// is stored "VNNI-packed" (16 rows of 16 groups of 4 bytes) and accumulates a
// 16 x 16 int32 tile: 16384 exact multiply-adds per instruction, against 1024
// for one vpdpbusd zmm. Queries are the A operand (copied into zero-padded
// rows); codes are the B operand, packed once per call (a 16 x 16 dword
// transpose per 1 KiB), so that each result tile is queries x codes and is
// stored straight into the row-major output.
//
// Products are exact in int32 for every dim <= kMaxKernelDim (see
// kernels.h); TDPBSSD is signed x signed, TDPBSUD signed queries x unsigned
// codes, so neither needs the +128 offset of the VNNI path.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "index/kernels.h"

namespace qvec::index::internal {
namespace {

constexpr size_t kTileRows = 16;   // rows of every tile
constexpr size_t kTileBytes = 64;  // bytes per tile row (K step of one TDP)
constexpr size_t kTileSize = kTileRows * kTileBytes;
constexpr size_t kBlock = 2 * kTileRows;  // queries or codes per 2 x 2 tile block
// Below this many queries the padding to 32 query columns costs more than
// AMX saves; the VNNI batch kernel handles such calls.
constexpr size_t kMinAmxQueries = 8;

inline size_t MinSize(size_t a, size_t b) { return a < b ? a : b; }

// Layout of the 64-byte operand of LDTILECFG (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles 0-3: accumulators (queries x codes); 4-5: query tiles; 6-7: code tiles.
void ConfigureTiles() {
  TileConfig cfg;
  uint8_t* raw = reinterpret_cast<uint8_t*>(&cfg);
  for (size_t i = 0; i < sizeof(cfg); ++i) raw[i] = 0;
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = static_cast<uint16_t>(kTileBytes);
    cfg.rows[t] = static_cast<uint8_t>(kTileRows);
  }
  _tile_loadconfig(&cfg);
}

// In-register transpose of a 16 x 16 matrix of dwords (r[i] is row i).
inline void Transpose16x16(__m512i r[16]) {
  __m512i a[16];
  for (int k = 0; k < 8; ++k) {
    a[2 * k] = _mm512_unpacklo_epi32(r[2 * k], r[2 * k + 1]);
    a[2 * k + 1] = _mm512_unpackhi_epi32(r[2 * k], r[2 * k + 1]);
  }
  // After this step lane L of b[4m + j] holds rows 4m..4m+3 of column 4L + j.
  __m512i b[16];
  for (int m = 0; m < 4; ++m) {
    b[4 * m + 0] = _mm512_unpacklo_epi64(a[4 * m + 0], a[4 * m + 2]);
    b[4 * m + 1] = _mm512_unpackhi_epi64(a[4 * m + 0], a[4 * m + 2]);
    b[4 * m + 2] = _mm512_unpacklo_epi64(a[4 * m + 1], a[4 * m + 3]);
    b[4 * m + 3] = _mm512_unpackhi_epi64(a[4 * m + 1], a[4 * m + 3]);
  }
  for (int j = 0; j < 4; ++j) {
    const __m512i c0 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0x88);
    const __m512i c1 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0x88);
    const __m512i c2 = _mm512_shuffle_i32x4(b[j], b[4 + j], 0xDD);
    const __m512i c3 = _mm512_shuffle_i32x4(b[8 + j], b[12 + j], 0xDD);
    r[0 + j] = _mm512_shuffle_i32x4(c0, c1, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(c0, c1, 0xDD);
    r[4 + j] = _mm512_shuffle_i32x4(c2, c3, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(c2, c3, 0xDD);
  }
}

// Packs the codes as B tiles: tile (ct, chunk) at packed + (ct * nchunks +
// chunk) * kTileSize holds dims [64 chunk, 64 chunk + 64) of codes
// [16 ct, 16 ct + 16), row g = dword g of each of the 16 codes. Dims past
// `dim` and codes past `n` are zero, so they add nothing.
void PackCodes(const uint8_t* codes, size_t code_stride, size_t n, size_t dim, size_t nct,
               size_t nchunks, uint8_t* packed) {
  for (size_t ct = 0; ct < nct; ++ct) {
    for (size_t c = 0; c < nchunks; ++c) {
      const size_t offset = c * kTileBytes;
      const size_t bytes = MinSize(kTileBytes, dim - offset);
      const __mmask64 mask = bytes == kTileBytes ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1;
      __m512i r[16];
      for (size_t i = 0; i < kTileRows; ++i) {
        const size_t j = ct * kTileRows + i;
        r[i] = j < n ? _mm512_maskz_loadu_epi8(mask, codes + j * code_stride + offset)
                     : _mm512_setzero_si512();
      }
      Transpose16x16(r);
      uint8_t* dst = packed + (ct * nchunks + c) * kTileSize;
      for (size_t g = 0; g < kTileRows; ++g) {
        _mm512_store_si512(dst + g * kTileBytes, r[g]);
      }
    }
  }
}

// Copies the queries into zero-padded rows of nchunks * 64 bytes (rows past
// nq are zero), the A operand of the tile products.
void PadQueries(const int8_t* queries, size_t query_stride, size_t nq, size_t dim, size_t rows,
                size_t nchunks, uint8_t* padded) {
  const size_t padded_dim = nchunks * kTileBytes;
  for (size_t i = 0; i < rows; ++i) {
    for (size_t c = 0; c < nchunks; ++c) {
      const size_t offset = c * kTileBytes;
      const size_t bytes = i < nq ? MinSize(kTileBytes, dim - offset) : 0;
      const __mmask64 mask = bytes == kTileBytes ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1;
      const int8_t* src = queries + (i < nq ? i : 0) * query_stride + offset;
      _mm512_store_si512(padded + i * padded_dim + offset, _mm512_maskz_loadu_epi8(mask, src));
    }
  }
}

// Stores an accumulator tile (queries [q0, q0 + 16) x codes [c0, c0 + 16))
// into out: straight from the tile when it lies inside out, else through a
// buffer and clipped. A macro because the tile number must be a literal.
inline bool TileInside(size_t q0, size_t nq, size_t c0, size_t n) {
  return q0 + kTileRows <= nq && c0 + kTileRows <= n;
}

inline void StoreClipped(const int32_t* tile, size_t q0, size_t nq, size_t c0, size_t n,
                         int32_t* out) {
  if (q0 >= nq || c0 >= n) {
    return;
  }
  const size_t valid = MinSize(kTileRows, n - c0);
  const __mmask16 m = static_cast<__mmask16>((1u << valid) - 1);
  const size_t rows = MinSize(kTileRows, nq - q0);
  for (size_t i = 0; i < rows; ++i) {
    _mm512_mask_storeu_epi32(out + (q0 + i) * n + c0, m, _mm512_load_si512(tile + i * kTileRows));
  }
}

#define QVEC_STORE_TILE(t, q0, nq, c0, n, out, buffer)                                      \
  do {                                                                                      \
    if (TileInside(q0, nq, c0, n)) {                                                        \
      _tile_stored(t, (out) + (q0) * (n) + (c0), static_cast<long>((n) * sizeof(int32_t))); \
    } else {                                                                                \
      _tile_stored(t, buffer, static_cast<long>(kTileBytes));                               \
      StoreClipped(buffer, q0, nq, c0, n, out);                                             \
    }                                                                                       \
  } while (0)

template <bool kUnsignedCodes>
void AmxBatch(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
              size_t code_stride, size_t n, size_t dim, int32_t* out) {
  const size_t nchunks = (dim + kTileBytes - 1) / kTileBytes;
  const size_t padded_dim = nchunks * kTileBytes;
  const size_t nct = (n + kBlock - 1) / kBlock * 2;  // code tiles, even
  const size_t nq_padded = (nq + kBlock - 1) / kBlock * kBlock;
  uint8_t* packed = ThreadScratch(nct * nchunks * kTileSize, 0);
  uint8_t* padded = ThreadScratch(nq_padded * padded_dim, 1);
  PackCodes(codes, code_stride, n, dim, nct, nchunks, packed);
  PadQueries(queries, query_stride, nq, dim, nq_padded, nchunks, padded);
  const long a_stride = static_cast<long>(padded_dim);
  alignas(64) int32_t buffer[kTileRows * kTileRows];
  ConfigureTiles();
  // Code block outer: its two packed B tiles (2 KiB per 64 dims) stay in L1
  // while every block of 32 queries passes over them.
  for (size_t ct = 0; ct < nct; ct += 2) {
    const uint8_t* b0 = packed + ct * nchunks * kTileSize;
    const uint8_t* b1 = b0 + nchunks * kTileSize;
    const size_t c0 = ct * kTileRows;
    for (size_t q0 = 0; q0 < nq; q0 += kBlock) {
      const uint8_t* a0 = padded + q0 * padded_dim;
      const uint8_t* a1 = a0 + kTileRows * padded_dim;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (size_t c = 0; c < nchunks; ++c) {
        _tile_loadd(4, a0 + c * kTileBytes, a_stride);
        _tile_loadd(5, a1 + c * kTileBytes, a_stride);
        _tile_loadd(6, b0 + c * kTileSize, static_cast<long>(kTileBytes));
        _tile_loadd(7, b1 + c * kTileSize, static_cast<long>(kTileBytes));
        if constexpr (kUnsignedCodes) {
          _tile_dpbsud(0, 4, 6);
          _tile_dpbsud(1, 4, 7);
          _tile_dpbsud(2, 5, 6);
          _tile_dpbsud(3, 5, 7);
        } else {
          _tile_dpbssd(0, 4, 6);
          _tile_dpbssd(1, 4, 7);
          _tile_dpbssd(2, 5, 6);
          _tile_dpbssd(3, 5, 7);
        }
      }
      const size_t q1 = q0 + kTileRows, c1 = c0 + kTileRows;
      QVEC_STORE_TILE(0, q0, nq, c0, n, out, buffer);
      QVEC_STORE_TILE(1, q0, nq, c1, n, out, buffer);
      QVEC_STORE_TILE(2, q1, nq, c0, n, out, buffer);
      QVEC_STORE_TILE(3, q1, nq, c1, n, out, buffer);
    }
  }
  // Returns the tile registers to their init state, so that context switches
  // of this thread stop saving 8 KiB of tile data.
  _tile_release();
}

#undef QVEC_STORE_TILE

void AmxDotS8Batch(const int8_t* queries, size_t query_stride, size_t nq, const int8_t* codes,
                   size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq == 0 || n == 0) {
    return;
  }
  if (nq < kMinAmxQueries) {
    Avx512Kernels().dot_s8_batch(queries, query_stride, nq, codes, code_stride, n, dim, out);
    return;
  }
  AmxBatch<false>(queries, query_stride, nq, reinterpret_cast<const uint8_t*>(codes), code_stride,
                  n, dim, out);
}

void AmxDotU8S8Batch(const int8_t* queries, size_t query_stride, size_t nq, const uint8_t* codes,
                     size_t code_stride, size_t n, size_t dim, int32_t* out) {
  if (nq == 0 || n == 0) {
    return;
  }
  if (nq < kMinAmxQueries) {
    Avx512Kernels().dot_u8s8_batch(queries, query_stride, nq, codes, code_stride, n, dim, out);
    return;
  }
  AmxBatch<true>(queries, query_stride, nq, codes, code_stride, n, dim, out);
}

Kernels MakeAmxKernels() {
  Kernels k = Avx512Kernels();
  k.level = SimdLevel::kAmx;
  k.dot_s8_batch = AmxDotS8Batch;
  k.dot_u8s8_batch = AmxDotU8S8Batch;
  return k;
}

}  // namespace

const Kernels& AmxKernels() {
  static const Kernels kernels = MakeAmxKernels();
  return kernels;
}

}  // namespace qvec::index::internal
