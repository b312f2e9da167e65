// SIMD distance kernels for int8/uint8 codes and float vectors, with one
// implementation per ISA (scalar reference, AVX2, AVX-512 VNNI, and AMX-INT8
// for the batch kernels) selected once at runtime.
//
// All integer kernels are exact: they return the same int32 as the scalar
// reference for every input with dim in [1, 65536] and code values in
// [-127, 127] (int8) or [0, 255] (uint8); query bytes are int8 in [-127, 127]
// (uint8 in [0, 255] for the L1 kernels).
// (-128 never occurs because every quantizer clamps to +-127.) Float kernels
// agree with the reference up to summation order.
//
// Thread safety: every kernel is a pure function; ActiveKernels() is safe to
// call from any thread.
#ifndef QVEC_INDEX_KERNELS_H_
#define QVEC_INDEX_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "index/types.h"

namespace qvec::index {

// kAmx is kAvx512 with the batch kernels on AMX-INT8 tiles (Sapphire Rapids
// and later, with the OS's permission to use tile data).
enum class SimdLevel : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };

// Function table of one ISA level. Array shapes: a "code" is `dim` bytes;
// `n` codes start every `code_stride` bytes (code_stride >= dim); outputs of
// "many" kernels are `n` values, of batch kernels `nq * n` values row-major
// (out[i * n + j] = query i against code j).
struct Kernels {
  SimdLevel level;

  // Sum over i < dim of a[i] * b[i], int8 x int8.
  int32_t (*dot_s8)(const int8_t* a, const int8_t* b, size_t dim);
  // out[j] = dot_s8(query, codes + j * code_stride, dim) for j < n.
  void (*dot_s8_many)(const int8_t* query, const int8_t* codes, size_t code_stride, size_t n,
                      size_t dim, int32_t* out);
  // Sum over i < dim of code[i] (uint8) * query[i] (int8).
  int32_t (*dot_u8s8)(const uint8_t* code, const int8_t* query, size_t dim);
  // out[j] = dot_u8s8(codes + j * code_stride, query, dim) for j < n.
  void (*dot_u8s8_many)(const int8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                        size_t dim, int32_t* out);
  // Block of `nq` queries (each `dim` bytes, every `query_stride` bytes) against
  // `n` codes; out has nq * n int32. Cache-blocked: codes are packed in blocks
  // that stay in L1/L2 while all queries pass over them. Uses a per-thread
  // scratch buffer, so it may allocate on first use in a thread.
  void (*dot_s8_batch)(const int8_t* queries, size_t query_stride, size_t nq, const int8_t* codes,
                       size_t code_stride, size_t n, size_t dim, int32_t* out);
  void (*dot_u8s8_batch)(const int8_t* queries, size_t query_stride, size_t nq,
                         const uint8_t* codes, size_t code_stride, size_t n, size_t dim,
                         int32_t* out);

  // Sum over i < dim of |a[i] - b[i]|, uint8 x uint8 (Manhattan codes).
  int32_t (*sad_u8)(const uint8_t* a, const uint8_t* b, size_t dim);
  // out[j] = sad_u8(query, codes + j * code_stride, dim) for j < n.
  void (*sad_u8_many)(const uint8_t* query, const uint8_t* codes, size_t code_stride, size_t n,
                      size_t dim, int32_t* out);

  // Turns n integer dots into rank values and selects the promising ones:
  // ranks[j] = qs * scale[j] * float(dots[j]) + offset[j] * qsum + qbias, then
  // 2 * ranks[j] - norm_sq[j] when norm_sq is not null (Euclid); writes the
  // indices j with ranks[j] >= bar to `selected` in increasing order and
  // returns their count. Arrays: dots, scale, offset, norm_sq, ranks and
  // selected hold n values. Every level computes bit-identical ranks (no
  // fused multiply-add), so flat and IVF scans agree exactly.
  size_t (*rank_select)(const int32_t* dots, const float* scale, const float* offset,
                        const float* norm_sq, size_t n, float qs, float qsum, float qbias,
                        float bar, float* ranks, uint32_t* selected);

  // Symmetric int8 code of one finite row: out[i] = clamp(round_half_even(
  // x[i] * (127 / max|x|)), -127, 127); returns the scale max|x| / 127 (0,
  // with all-zero codes, for an all-zero row). Identical on every level.
  float (*quantize_s8)(const float* x, size_t dim, int8_t* out);
  // Index of the largest value (mul * scale[j]) * float(dots[j]) - bias[j]
  // over j < n (bias may be null: nothing subtracted), the lowest index on
  // ties; *best receives that value. n >= 1. Identical on every level.
  size_t (*argmax_scaled)(const int32_t* dots, const float* scale, const float* bias, size_t n,
                          float mul, float* best);

  // 4-bit fast scan (the IVF first pass, see index/pq4.h). `blocks` holds
  // `nblocks` blocks of 32 rows, each m * 16 bytes (m a multiple of 4): the
  // 16 bytes at j * 16 hold sub-code j of the block's rows, row r < 16 in the
  // low nibble of byte r and row r + 16 in its high nibble. `lut` is m * 16
  // bytes, entry lut[j * 16 + c] the value of sub-code c at position j.
  // out[b * 32 + r] = (sum over j < m of lut[j * 16 + code(b, r, j)]) mod
  // 2^16, for nblocks * 32 outputs. Identical on every level.
  void (*scan_u4)(const uint8_t* lut, const uint8_t* blocks, size_t nblocks, size_t m,
                  uint16_t* out);
  // Writes the indices j < n with values[j] > above to `selected` in
  // increasing order and returns their count (above < 0: every index).
  size_t (*select_u16)(const uint16_t* values, size_t n, int32_t above, uint32_t* selected);

  // Float kernels (rescoring and the float baseline path).
  float (*dot_f32)(const float* a, const float* b, size_t dim);
  float (*l2sq_f32)(const float* a, const float* b, size_t dim);
  // Sum over i < dim of |a[i] - b[i]|.
  float (*l1_f32)(const float* a, const float* b, size_t dim);
  // out[j] = dot_f32(query, x + j * stride, dim); stride in floats.
  void (*dot_f32_many)(const float* query, const float* x, size_t stride, size_t n, size_t dim,
                       float* out);
  // out[j] = l2sq_f32(query, x + j * stride, dim); stride in floats.
  void (*l2sq_f32_many)(const float* query, const float* x, size_t stride, size_t n, size_t dim,
                        float* out);
};

// Which integer kernel scores a set of codes (see Quantizer::code_kernel).
enum class CodeKernel : uint8_t {
  kDotS8 = 0,    // int8 codes, dot with int8 query codes
  kDotU8S8 = 1,  // uint8 codes, dot with int8 query codes
  kSadU8 = 2,    // uint8 codes, sum of |differences| with uint8 query codes
};

// Integer scores of one query (`dim` code bytes) against `n` codes every
// `stride` bytes, with the kernel `kind` calls for. For kSadU8 the query
// bytes are uint8 codes (the int8 pointer is reinterpreted).
inline void ScoreCodes(const Kernels& k, CodeKernel kind, const int8_t* query, const uint8_t* codes,
                       size_t stride, size_t n, size_t dim, int32_t* out) {
  switch (kind) {
    case CodeKernel::kDotS8:
      k.dot_s8_many(query, reinterpret_cast<const int8_t*>(codes), stride, n, dim, out);
      return;
    case CodeKernel::kDotU8S8:
      k.dot_u8s8_many(query, codes, stride, n, dim, out);
      return;
    case CodeKernel::kSadU8:
      k.sad_u8_many(reinterpret_cast<const uint8_t*>(query), codes, stride, n, dim, out);
      return;
  }
}
inline int32_t ScoreCode(const Kernels& k, CodeKernel kind, const int8_t* query,
                         const uint8_t* code, size_t dim) {
  switch (kind) {
    case CodeKernel::kDotS8:
      return k.dot_s8(query, reinterpret_cast<const int8_t*>(code), dim);
    case CodeKernel::kDotU8S8:
      return k.dot_u8s8(code, query, dim);
    case CodeKernel::kSadU8:
      return k.sad_u8(reinterpret_cast<const uint8_t*>(query), code, dim);
  }
  return 0;
}
// The batch form: `nq` queries every `query_stride` bytes; out is nq * n.
inline void ScoreCodesBatch(const Kernels& k, CodeKernel kind, const int8_t* queries,
                            size_t query_stride, size_t nq, const uint8_t* codes, size_t stride,
                            size_t n, size_t dim, int32_t* out) {
  switch (kind) {
    case CodeKernel::kDotS8:
      k.dot_s8_batch(queries, query_stride, nq, reinterpret_cast<const int8_t*>(codes), stride, n,
                     dim, out);
      return;
    case CodeKernel::kDotU8S8:
      k.dot_u8s8_batch(queries, query_stride, nq, codes, stride, n, dim, out);
      return;
    case CodeKernel::kSadU8:
      for (size_t i = 0; i < nq; ++i) {
        k.sad_u8_many(reinterpret_cast<const uint8_t*>(queries + i * query_stride), codes, stride,
                      n, dim, out + i * n);
      }
      return;
  }
}

// Largest dim for which the integer kernels are guaranteed exact (no int32
// overflow in the accumulators).
inline constexpr size_t kMaxKernelDim = kMaxDim;

// The level used by ActiveKernels(): chosen once per process from CPU
// features, overridable by env var QVEC_SIMD=scalar|avx2|avx512|amx (a level the
// CPU lacks, or an unknown value, falls back to the best available level).
SimdLevel ActiveSimdLevel();
const Kernels& ActiveKernels();
// Kernels of `level`, or nullptr if this CPU cannot run them.
const Kernels* KernelsFor(SimdLevel level);
// "scalar", "avx2", "avx512" or "amx".
std::string_view SimdLevelName(SimdLevel level);

namespace internal {
// Per-ISA tables; only call the ones whose level the CPU supports.
const Kernels& ScalarKernels();
const Kernels& Avx2Kernels();
const Kernels& Avx512Kernels();
const Kernels& AmxKernels();
// The scalar reference of Kernels::argmax_scaled, which the AVX2 table
// reuses.
size_t ScalarArgmaxScaled(const int32_t* dots, const float* scale, const float* bias, size_t n,
                          float mul, float* best);
// Per-thread, 64-byte aligned scratch of at least `bytes` bytes; `slot` in
// [0, 4) selects independent buffers. Lives in a generic translation unit so
// ISA files need no std:: containers (whose inline code could otherwise be
// merged across ISA flags by the linker).
uint8_t* ThreadScratch(size_t bytes, int slot);
// Picks the level from CPU features and an optional QVEC_SIMD value
// (nullptr = unset). Exposed for tests.
SimdLevel ChooseSimdLevel(const char* env_value);
}  // namespace internal

}  // namespace qvec::index

#endif  // QVEC_INDEX_KERNELS_H_
