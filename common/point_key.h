// Encoding of point ids as storage keys: byte order equals id order
// (integers before UUIDs, each by value), so that scrolling by id is a
// key-ordered scan.
//   integer id: 0x00, 8 bytes big-endian
//   UUID:       0x01, 16 bytes
#ifndef QVEC_COMMON_POINT_KEY_H_
#define QVEC_COMMON_POINT_KEY_H_

#include <array>
#include <string>
#include <string_view>

#include "common/coding.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec {

// Key sizes: storage's format upgrade tells version-1 point keys by them.
inline constexpr size_t kIntegerPointKeySize = 9;
inline constexpr size_t kUuidPointKeySize = 17;

inline std::string EncodePointKey(const PointId& id) {
  std::string key;
  if (!id.is_uuid()) {
    key.reserve(kIntegerPointKeySize);
    key.push_back(0);
    coding::PutBigEndian64(&key, id.num());
  } else {
    key.reserve(kUuidPointKeySize);
    key.push_back(1);
    key.append(reinterpret_cast<const char*>(id.uuid().data()), 16);
  }
  return key;
}

inline StatusOr<PointId> DecodePointKey(std::string_view key) {
  if (key.size() == kIntegerPointKeySize && key[0] == 0) {
    return PointId::Num(coding::DecodeBigEndian64(key.data() + 1));
  }
  if (key.size() == kUuidPointKeySize && key[0] == 1) {
    std::array<uint8_t, 16> b{};
    for (int i = 0; i < 16; ++i) b[i] = static_cast<uint8_t>(key[1 + i]);
    return PointId::Uuid(b);
  }
  return DataLossError("malformed point key in storage");
}

}  // namespace qvec

#endif  // QVEC_COMMON_POINT_KEY_H_
