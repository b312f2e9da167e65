// The snapshot file: one or more collections (and aliases) of a qvec database
// as a single self-checking file. Internal to storage/ (Store::ExportCollections
// writes it, Store::ImportCollection reads it).
//
// Layout (integers little-endian):
//   magic "QVECSNAP" (8 bytes)
//   u32 file version (kSnapshotFileVersion)
//   u32 storage format version of the records (storage::kFormatVersion)
//   entries, each: u8 kind, varint32 key size, varint32 value size, key, value
//     kCollection   key = collection name, value = engine meta; the data
//                   entries that follow belong to it
//     kPoints .. kIndexState
//                   key = the RocksDB key after the collection id (point key,
//                   or field id + point key, or index-state name)
//     kAlias        key = alias, value = collection name
//     kEnd          key empty, value = u64 number of entries before it
//   trailer: SHA-256 (32 bytes) of every byte before it.
// A file that is truncated, altered or of another format fails the magic, the
// structure or the trailer check; readers verify the trailer before using
// any entry.
#ifndef QVEC_STORAGE_SNAPSHOT_FILE_H_
#define QVEC_STORAGE_SNAPSHOT_FILE_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "qvec/status.h"

namespace qvec::storage {

inline constexpr uint32_t kSnapshotFileVersion = 1;

enum class SnapshotEntry : uint8_t {
  kCollection = 1,
  kPoints = 2,
  kCodes = 3,
  kOriginals = 4,
  kPayloads = 5,
  kIndexState = 6,
  kAlias = 7,
  kEnd = 0x7f,
};

// Incremental SHA-256 (OpenSSL's libcrypto). Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  // The digest of everything so far (32 bytes); the hash goes on accepting
  // input after it.
  std::string Digest() const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

// Lower-case hex of `bytes`.
std::string HexOf(std::string_view bytes);

// Writes a snapshot file at `path` + ".tmp", then (Finish) fsyncs it and
// renames it to `path`: a partial file never appears under `path`. A writer
// destroyed without Finish removes its temporary file. Not thread-safe.
class SnapshotFileWriter {
 public:
  // AlreadyExists if `path` exists (or is a dangling symlink); Internal on an
  // I/O error.
  [[nodiscard]] static StatusOr<std::unique_ptr<SnapshotFileWriter>> Create(
      const std::string& path, uint32_t storage_format);
  ~SnapshotFileWriter();

  [[nodiscard]] Status Add(SnapshotEntry kind, std::string_view key, std::string_view value);
  // Writes the end entry and the trailer, fsyncs, renames. Returns the SHA-256
  // (hex) of the whole file and its size in bytes.
  [[nodiscard]] StatusOr<std::pair<std::string, uint64_t>> Finish();

 private:
  SnapshotFileWriter(std::string path, std::FILE* file);
  Status Write(std::string_view bytes);

  std::string path_;
  std::FILE* file_;
  Sha256 hash_;
  uint64_t entries_ = 0;
  uint64_t bytes_ = 0;
  bool finished_ = false;
};

struct SnapshotFileCheck {
  std::string sha256;  // hex, of the whole file (trailer included)
  uint64_t size_bytes = 0;
  uint32_t storage_format = 0;
};

// Reads the file at `path` twice: first to verify it whole (magic, version,
// entry structure, entry count, trailer; `expected_sha256` (hex, any case)
// when not empty), then, only if that passed, calling fn(kind, key, value) for
// every entry but kEnd in order. fn's error stops the read and is returned.
// Errors: NotFound if the file is missing; InvalidArgument naming what is
// wrong with a file that is not a valid snapshot, or whose checksum differs;
// FailedPrecondition if it is a snapshot of another storage format.
// Symlinks are not followed (InvalidArgument).
[[nodiscard]] StatusOr<SnapshotFileCheck> ReadSnapshotFile(
    const std::string& path, std::string_view expected_sha256, uint32_t storage_format,
    const std::function<Status(SnapshotEntry, std::string_view, std::string_view)>& fn);

}  // namespace qvec::storage

#endif  // QVEC_STORAGE_SNAPSHOT_FILE_H_
