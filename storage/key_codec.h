// Key and value encodings of the qvec RocksDB database. Internal to storage/.
// The format is described at the top of storage/store.cc.
#ifndef QVEC_STORAGE_KEY_CODEC_H_
#define QVEC_STORAGE_KEY_CODEC_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/coding.h"
#include "common/point_key.h"

namespace qvec::storage::codec {
static_assert(sizeof(float) == 4, "qvec stores originals as IEEE-754 binary32");

inline constexpr size_t kCidBytes = 4;
// The largest usable collection id: cid + 1 must fit in 32 bits so that
// [BE(cid), BE(cid + 1)) bounds every key of the collection.
inline constexpr uint32_t kMaxCollectionId = UINT32_MAX - 1;

inline constexpr std::string_view kFormatVersionKey = "format_version";
inline constexpr std::string_view kNextCollectionIdKey = "next_collection_id";
inline constexpr std::string_view kCollectionKeyPrefix = "collection/";
// "alias/" + alias name -> collection name (meta CF).
inline constexpr std::string_view kAliasKeyPrefix = "alias/";

// BE(cid): the prefix of every key of collection `cid` in the data CFs.
inline std::string CollectionPrefix(uint32_t cid) {
  std::string out;
  coding::PutBigEndian32(&out, cid);
  return out;
}

// BE(cid) + suffix: key of a point (codes/originals/payloads) or of an
// index-state entry (index_state).
inline std::string DataKey(uint32_t cid, std::string_view suffix) {
  std::string out;
  out.reserve(kCidBytes + suffix.size());
  coding::PutBigEndian32(&out, cid);
  out.append(suffix);
  return out;
}

inline constexpr size_t kFieldBytes = 2;

// BE(cid) + BE16(field) + point key: key of a vector (codes/originals, v2).
inline std::string VectorKey(uint32_t cid, uint16_t field, std::string_view point_key) {
  std::string out;
  out.reserve(kCidBytes + kFieldBytes + point_key.size());
  coding::PutBigEndian32(&out, cid);
  coding::PutBigEndian16(&out, field);
  out.append(point_key);
  return out;
}

// BE(cid) + BE16(field): the prefix of every vector key of one field.
inline std::string FieldPrefix(uint32_t cid, uint16_t field) {
  std::string out;
  coding::PutBigEndian32(&out, cid);
  coding::PutBigEndian16(&out, field);
  return out;
}

// Version-1 point keys are 9 (integer id) or 17 (UUID) bytes after the
// collection id; version-2 vector keys carry a 2-byte field id first, so a
// key's length tells its version.
inline bool IsV1PointKeySize(size_t suffix_size) {
  return suffix_size == kIntegerPointKeySize || suffix_size == kUuidPointKeySize;
}

// "collection/" + BE(cid): key of a collection record in the meta CF.
inline std::string CollectionRecordKey(uint32_t cid) {
  std::string out(kCollectionKeyPrefix);
  coding::PutBigEndian32(&out, cid);
  return out;
}

// Collection record value: varint32(len(name)) + name + meta (rest of the value).
inline std::string EncodeCollectionRecord(std::string_view name, std::string_view meta) {
  std::string out;
  out.reserve(5 + name.size() + meta.size());
  coding::PutVarint32(&out, static_cast<uint32_t>(name.size()));
  out.append(name);
  out.append(meta);
  return out;
}

inline bool DecodeCollectionRecord(std::string_view value, std::string* name, std::string* meta) {
  uint32_t len = 0;
  if (!coding::GetVarint32(&value, &len) || value.size() < len) return false;
  name->assign(value.substr(0, len));
  meta->assign(value.substr(len));
  return true;
}

// Escapes a binary key for error messages ("ab\x00").
inline std::string PrintableKey(std::string_view key) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  const size_t limit = key.size() > 64 ? 64 : key.size();
  for (size_t i = 0; i < limit; ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (limit < key.size()) out += "...";
  return out;
}

}  // namespace qvec::storage::codec

#endif  // QVEC_STORAGE_KEY_CODEC_H_
