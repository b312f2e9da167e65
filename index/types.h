// Enums shared by the quantizer, calibration and index code.
#ifndef QVEC_INDEX_TYPES_H_
#define QVEC_INDEX_TYPES_H_

#include <cstddef>
#include <cstdint>

#include <climits>

#include "index/metric.h"
#include "qvec/options.h"

namespace qvec::index {

// How floats map to 8-bit codes.
enum class QuantizationType : uint8_t {
  // x ~= s * q, q in [-127, 127] (int8 codes).
  kSymmetricInt8 = 0,
  // x ~= s * (u - z), u in [0, 255] (uint8 codes), s = (max - min) / 255.
  kAsymmetricUint8 = 1,
};

// Which values share a scale (and zero point).
enum class Granularity : uint8_t {
  kPerVector = 0,      // each vector its own range; needs no calibration
  kPerCollection = 1,  // one calibrated range for all values
  kPerDimension = 2,   // one calibrated range per dimension
};

// Largest supported vector dimension: the public limit, which the int8
// kernels' int32 accumulators hold exactly.
inline constexpr size_t kMaxDim = kMaxDimension;
static_assert(uint64_t{127} * 127 * kMaxDim <= uint64_t{INT32_MAX},
              "int8 dot products of kMaxDim components must fit int32");
static_assert(uint64_t{255} * kMaxDim <= uint64_t{INT32_MAX},
              "uint8 L1 sums of kMaxDim components must fit int32");

}  // namespace qvec::index

#endif  // QVEC_INDEX_TYPES_H_
