// The snapshots directory of the server: names, validation, listing and
// recovery sources of Qdrant's snapshot endpoints. The engine writes and
// reads the files (Database::SnapshotCollection, RecoverCollection); this
// module decides where they live and guards what a client may name.
//
// Layout: <root>/<collection>/<name>.snapshot for snapshots of one
// collection, <root>/<name>.snapshot for full ones, each with a
// <name>.snapshot.checksum beside it (its SHA-256 in hex, as Qdrant writes).
// Files being written end in ".tmp" and are never listed.
//
// Clients never pass paths: snapshot names must be a plain file name
// ([A-Za-z0-9._-], not starting with '.', ending in ".snapshot"); a file that
// is a symbolic link is never served, deleted or recovered from; a recovery
// location is either a file:// path inside the root (no symbolic links on the
// way) or an http:// URL on this machine (127.0.0.1, localhost, [::1]).
//
// Thread-safe: every method may run concurrently (names carry a counter).
#ifndef QVEC_SERVER_SNAPSHOT_FILES_H_
#define QVEC_SERVER_SNAPSHOT_FILES_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvec/database.h"
#include "qvec/status.h"

namespace qvec::server {

// Qdrant's SnapshotDescription.
struct SnapshotDescription {
  std::string name;
  std::string creation_time;  // "2026-12-02T07:30:00" (UTC), from the file's mtime
  uint64_t size = 0;
  std::optional<std::string> checksum;  // SHA-256 hex
};

class SnapshotFiles {
 public:
  // `root`: the snapshots directory (created when first needed).
  // `max_download_bytes`: bound on a snapshot fetched from a URL.
  SnapshotFiles(std::shared_ptr<Database> db, std::string root, uint64_t max_download_bytes);

  // `collection` is the collection's own name (aliases resolved); "" means
  // the full snapshots everywhere below.

  // Writes a new snapshot. Errors of Database::SnapshotCollection/SnapshotAll.
  [[nodiscard]] StatusOr<SnapshotDescription> Create(const std::string& collection);
  // Every snapshot, sorted by name (none when the directory does not exist).
  [[nodiscard]] StatusOr<std::vector<SnapshotDescription>> List(const std::string& collection);
  // The path of an existing snapshot file: InvalidArgument for a bad name,
  // NotFound when absent (or a symbolic link).
  [[nodiscard]] StatusOr<std::string> PathOf(const std::string& collection,
                                             const std::string& name);
  // Removes a snapshot and its checksum file (errors as PathOf).
  [[nodiscard]] Status Delete(const std::string& collection, const std::string& name);

  // Recovers collection `collection` (created or replaced) from the bytes of
  // an uploaded snapshot. `checksum`: expected SHA-256 hex, or "".
  [[nodiscard]] Status RecoverFromBytes(const std::string& collection, std::string_view bytes,
                                        std::string_view checksum);
  // Recovers from `location` (file:// inside the root, or http:// on this
  // machine; `api_key` is sent as the api-key header). InvalidArgument for any
  // other location, naming why.
  [[nodiscard]] Status RecoverFromLocation(const std::string& collection,
                                           const std::string& location, std::string_view checksum,
                                           std::string_view api_key);

  // The content of the part named "snapshot" of a multipart/form-data body
  // whose Content-Type is `content_type`; InvalidArgument naming what is
  // wrong.
  [[nodiscard]] static StatusOr<std::string_view> MultipartFile(std::string_view content_type,
                                                                std::string_view body);
  // True for a name a client may use for a snapshot.
  static bool ValidName(std::string_view name);

 private:
  std::string DirOf(const std::string& collection) const;
  // A fresh temporary path in the directory of `collection`.
  StatusOr<std::string> TempPath(const std::string& collection);

  const std::shared_ptr<Database> db_;
  const std::string root_;
  const uint64_t max_download_bytes_;
  std::atomic<uint64_t> counter_{0};
};

}  // namespace qvec::server

#endif  // QVEC_SERVER_SNAPSHOT_FILES_H_
