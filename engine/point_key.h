// Encoding of point ids as storage keys: byte order equals id order
// (integers before UUIDs, each by value), so that scrolling by id is a
// key-ordered scan.
//   integer id: 0x00, 8 bytes big-endian
//   UUID:       0x01, 16 bytes
#ifndef QVEC_ENGINE_POINT_KEY_H_
#define QVEC_ENGINE_POINT_KEY_H_

#include <string>
#include <string_view>

#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::engine {

inline std::string EncodePointKey(const PointId& id) {
  std::string key;
  if (!id.is_uuid()) {
    key.resize(9);
    key[0] = 0;
    uint64_t n = id.num();
    for (int i = 8; i >= 1; --i) {
      key[i] = static_cast<char>(n & 0xff);
      n >>= 8;
    }
  } else {
    key.resize(17);
    key[0] = 1;
    for (int i = 0; i < 16; ++i) key[1 + i] = static_cast<char>(id.uuid()[i]);
  }
  return key;
}

inline StatusOr<PointId> DecodePointKey(std::string_view key) {
  if (key.size() == 9 && key[0] == 0) {
    uint64_t n = 0;
    for (int i = 1; i <= 8; ++i) n = (n << 8) | static_cast<unsigned char>(key[i]);
    return PointId::Num(n);
  }
  if (key.size() == 17 && key[0] == 1) {
    std::array<uint8_t, 16> b{};
    for (int i = 0; i < 16; ++i) b[i] = static_cast<uint8_t>(key[1 + i]);
    return PointId::Uuid(b);
  }
  return DataLossError("malformed point key in storage");
}

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_POINT_KEY_H_
