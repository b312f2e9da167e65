// Enums shared by the quantizer, calibration and index code.
#ifndef QVEC_INDEX_TYPES_H_
#define QVEC_INDEX_TYPES_H_

#include <cstddef>
#include <cstdint>

#include "index/metric.h"

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

// Largest supported vector dimension (kernel exactness bound).
inline constexpr size_t kMaxDim = 65536;

}  // namespace qvec::index

#endif  // QVEC_INDEX_TYPES_H_
