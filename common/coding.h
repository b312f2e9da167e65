// Byte encodings shared by every module: fixed-width little-endian integers
// and floats (stored values and serialized index state), big-endian integers
// (keys whose byte order must equal numeric order), varints, and a bounds-
// checked reader. Header-only; no dependencies beyond the standard library.
#ifndef QVEC_COMMON_CODING_H_
#define QVEC_COMMON_CODING_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace qvec::coding {

static_assert(std::endian::native == std::endian::little,
              "qvec stores fixed-width values as raw little-endian bytes");

// ---- little-endian fixed width ----

inline void EncodeFixed32(char* dst, uint32_t v) { std::memcpy(dst, &v, 4); }
inline void EncodeFixed64(char* dst, uint64_t v) { std::memcpy(dst, &v, 8); }
inline uint32_t DecodeFixed32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t DecodeFixed64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

inline void PutFixed32(std::string* out, uint32_t v) {
  char b[4];
  EncodeFixed32(b, v);
  out->append(b, 4);
}
inline void PutFixed64(std::string* out, uint64_t v) {
  char b[8];
  EncodeFixed64(b, v);
  out->append(b, 8);
}
inline void PutFloat(std::string* out, float v) { PutFixed32(out, std::bit_cast<uint32_t>(v)); }
inline void PutDouble(std::string* out, double v) { PutFixed64(out, std::bit_cast<uint64_t>(v)); }

inline std::string Fixed32(uint32_t v) {
  std::string s;
  PutFixed32(&s, v);
  return s;
}
inline std::string Fixed64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}
// The value of a whole 4- or 8-byte string; nullopt for another size.
inline std::optional<uint32_t> ParseFixed32(std::string_view s) {
  if (s.size() != 4) return std::nullopt;
  return DecodeFixed32(s.data());
}
inline std::optional<uint64_t> ParseFixed64(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  return DecodeFixed64(s.data());
}

// ---- big-endian fixed width (byte order = numeric order) ----

inline void PutBigEndian16(std::string* out, uint16_t v) {
  const char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 2);
}
inline void PutBigEndian32(std::string* out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, 4);
}
inline void PutBigEndian64(std::string* out, uint64_t v) {
  PutBigEndian32(out, static_cast<uint32_t>(v >> 32));
  PutBigEndian32(out, static_cast<uint32_t>(v));
}
inline uint32_t DecodeBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}
inline uint64_t DecodeBigEndian64(const char* p) {
  return (uint64_t{DecodeBigEndian32(p)} << 32) | DecodeBigEndian32(p + 4);
}

// ---- varints (7 bits per byte, low first) ----

inline void PutVarint32(std::string* out, uint32_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// Parses a varint32 from the front of `*in`, advancing it. False if
// malformed, truncated or beyond 32 bits.
inline bool GetVarint32(std::string_view* in, uint32_t* v) {
  uint32_t result = 0;
  for (int shift = 0; shift <= 28 && !in->empty(); shift += 7) {
    const auto byte = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    if (shift == 28 && (byte & 0xf0) != 0) return false;
    result |= uint32_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

// Reads little-endian values from a byte string. A read past the end
// returns zero and clears ok(); check ok() once after reading.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  size_t remaining() const { return in_.size(); }

  uint8_t U8() {
    if (!Need(1)) return 0;
    const auto v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint16_t U16() {
    if (!Need(2)) return 0;
    const uint16_t v =
        static_cast<uint16_t>(static_cast<uint8_t>(in_[0]) | (static_cast<uint8_t>(in_[1]) << 8));
    in_.remove_prefix(2);
    return v;
  }
  uint32_t U32() {
    if (!Need(4)) return 0;
    const uint32_t v = DecodeFixed32(in_.data());
    in_.remove_prefix(4);
    return v;
  }
  uint64_t U64() {
    if (!Need(8)) return 0;
    const uint64_t v = DecodeFixed64(in_.data());
    in_.remove_prefix(8);
    return v;
  }
  float F32() { return std::bit_cast<float>(U32()); }
  double F64() { return std::bit_cast<double>(U64()); }
  // The next n bytes (empty and !ok() if fewer remain).
  std::string_view Bytes(size_t n) {
    if (!Need(n)) return {};
    std::string_view v = in_.substr(0, n);
    in_.remove_prefix(n);
    return v;
  }
  // Everything not read yet.
  std::string_view Rest() {
    std::string_view v = in_;
    in_ = {};
    return v;
  }

 private:
  bool Need(size_t n) {
    if (in_.size() < n) {
      ok_ = false;
      in_ = {};
    }
    return ok_;
  }
  std::string_view in_;
  bool ok_ = true;
};

}  // namespace qvec::coding

#endif  // QVEC_COMMON_CODING_H_
