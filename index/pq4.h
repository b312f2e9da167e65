// 4-bit codes for the IVF first pass: every vector (a residual from its
// list's centroid) is cut into m sub-vectors of `dsub` dimensions, each coded
// by the nearest of 16 centroids. A query turns the codebook into one table
// of m * 16 small integers (its inner product with every centroid), and the
// scan adds up one table entry per sub-code with in-register lookups
// (Kernels::scan_u4): 32 rows per block, half a byte per sub-code.
//
// Two codebooks share that layout and kernel:
//  - kSq4: per-dimension scalar codes (dsub 1), 16 uniform levels per
//    dimension over a clipped range chosen for the least squared error.
//  - kPq4: product quantization, 16 k-means centroids per sub-space
//    (FAISS ProductQuantizer), dsub 1, 2 or 4.
// At dsub 1 both take dim / 2 bytes per vector; PQ4 at dsub 2 takes half.
//
// Thread safety: a trained codebook is immutable; its const methods may run
// concurrently.
#ifndef QVEC_INDEX_PQ4_H_
#define QVEC_INDEX_PQ4_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "qvec/status.h"

namespace qvec::index {

enum class FirstPassKind : uint8_t { kNone = 0, kSq4 = 1, kPq4 = 2 };
// "none", "sq4", "pq4".
std::string_view FirstPassKindName(FirstPassKind kind);

// Rows per block of 4-bit codes (the width of one scan_u4 step).
inline constexpr size_t kCode4BlockRows = 32;

// A query's lookup table: the inner product of sub-code c at position j is
// about bias_j + scale * table[j * 16 + c], so a row's inner product with
// the query is about bias + scale * (sum of its entries). Entries are
// scaled so that any row's sum fits in 16 bits (scan_u4 is then exact).
struct Code4Lut {
  std::vector<uint8_t> table;  // m_padded * 16
  float scale = 0;
  float bias = 0;
};

class Pq4Codebook {
 public:
  Pq4Codebook() = default;

  // Trains a codebook of `kind` (kSq4 or kPq4) on n vectors (n * dim
  // floats). dsub: dimensions per sub-space, 1 for kSq4, 1, 2 or 4 for
  // kPq4. Needs n >= 16. Errors: InvalidArgument for bad arguments or
  // non-finite values, Internal if FAISS throws.
  [[nodiscard]] static StatusOr<Pq4Codebook> Train(FirstPassKind kind, uint32_t dim, uint32_t dsub,
                                                   const float* x, size_t n, uint32_t seed = 1234);

  FirstPassKind kind() const { return kind_; }
  bool empty() const { return kind_ == FirstPassKind::kNone; }
  uint32_t dim() const { return dim_; }
  uint32_t dsub() const { return dsub_; }
  // Sub-quantizers, and that count rounded up to a multiple of 4 (the
  // kernels' step; padding positions have code 0 and a zero table row).
  uint32_t m() const { return m_; }
  uint32_t m_padded() const { return (m_ + 3) / 4 * 4; }
  // Bytes of one block of kCode4BlockRows rows.
  size_t block_bytes() const { return size_t{m_padded()} * 16; }

  // The m sub-codes (each in [0, 16)) of x (size dim).
  void Encode(const float* x, uint8_t* codes) const;
  // The vector the sub-codes stand for (size dim).
  void Decode(const uint8_t* codes, float* out) const;
  // The lookup table of query q (size dim) for inner products with coded
  // vectors.
  void BuildLut(const float* q, Code4Lut* lut) const;

  std::string Serialize() const;
  // DataLoss / InvalidArgument for malformed bytes.
  [[nodiscard]] static StatusOr<Pq4Codebook> Deserialize(std::string_view bytes);
  size_t MemoryBytes() const { return centroids_.capacity() * sizeof(float); }

 private:
  [[nodiscard]] Status Validate() const;
  FirstPassKind kind_ = FirstPassKind::kNone;
  uint32_t dim_ = 0, dsub_ = 1, m_ = 0;
  // m * 16 * dsub floats: centroid c of sub-space j at (j * 16 + c) * dsub;
  // coordinates past dim (the last sub-space's padding) are zero.
  std::vector<float> centroids_;
};

// Sub-code j of row `row` in an array of blocks (block_bytes per block).
inline uint8_t GetCode4(const uint8_t* blocks, size_t block_bytes, size_t row, size_t j) {
  const uint8_t byte = blocks[(row / kCode4BlockRows) * block_bytes + j * 16 + (row & 15)];
  return (row & 16) != 0 ? static_cast<uint8_t>(byte >> 4) : static_cast<uint8_t>(byte & 15);
}
inline void SetCode4(uint8_t* blocks, size_t block_bytes, size_t row, size_t j, uint8_t code) {
  uint8_t& byte = blocks[(row / kCode4BlockRows) * block_bytes + j * 16 + (row & 15)];
  if ((row & 16) != 0) {
    byte = static_cast<uint8_t>((byte & 0x0F) | (code << 4));
  } else {
    byte = static_cast<uint8_t>((byte & 0xF0) | (code & 0x0F));
  }
}

}  // namespace qvec::index

#endif  // QVEC_INDEX_PQ4_H_
