// The entry point of the embedded library: a database of collections.
//
//   qvec::DatabaseOptions options;
//   auto db = qvec::Database::Open(options, "/tmp/qvec-data");
//   if (!db.ok()) { ... db.status().ToString() ... }
#ifndef QVEC_DATABASE_H_
#define QVEC_DATABASE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qvec/collection.h"
#include "qvec/export.h"
#include "qvec/options.h"
#include "qvec/status.h"
#include "qvec/version.h"

namespace qvec {

/// The state of a database's storage.
struct StorageHealth {
  uint64_t free_disk_bytes = 0;      ///< on the file system of the database
  uint64_t reserved_disk_bytes = 0;  ///< DatabaseOptions::min_free_disk_bytes
  /// Writes fail (ResourceExhausted when the disk is full) until the cause
  /// clears; they resume by themselves. Reads are not affected.
  bool writes_stopped = false;
  std::string reason;  ///< why writes are stopped
};

/// Thread safety: all methods may be called from many threads at once.
/// Collections returned by GetCollection must not be used once the Database
/// is destroyed (they answer FailedPrecondition then, if still referenced).
/// One change to the aliases of a database.
struct AliasOperation {
  enum class Kind : uint8_t { kCreate, kDelete, kRename };
  /// Default: kCreate.
  Kind kind = Kind::kCreate;
  /// kCreate / kDelete: the alias; kRename: its current name. Default: "".
  std::string alias;
  /// kCreate: the collection it names (not an alias). Default: "".
  std::string collection;
  /// kRename: the new name. Default: "".
  std::string new_alias;
};

/// A snapshot file as written or read: its SHA-256 and size.
struct SnapshotFileInfo {
  std::string sha256;  ///< lower-case hex digest of the whole file
  uint64_t size_bytes = 0;
};

/// A database of collections in one directory (one RocksDB database).
/// Thread safety: every method may be called from many threads at once.
/// Ownership: collections returned by GetCollection are shared; they must
/// not be used after the Database is destroyed (they answer
/// FailedPrecondition then).
class QVEC_EXPORT Database {
 public:
  /// Opens (or creates) the database in directory `path`, rebuilding the
  /// in-memory indexes from disk. InvalidArgument for bad options;
  /// FailedPrecondition for a database of an unknown format version;
  /// Unavailable if another process has it open; DataLoss if it is corrupted.
  [[nodiscard]] static StatusOr<std::unique_ptr<Database>> Open(const DatabaseOptions& options,
                                                                const std::string& path);
  virtual ~Database() = default;

  /// AlreadyExists if `name` is taken; InvalidArgument for a bad name (empty,
  /// longer than 255 bytes, containing '/', '\\', control characters, or equal
  /// to "." or "..") or a bad config.
  [[nodiscard]] virtual Status CreateCollection(const std::string& name,
                                                const CollectionConfig& config) = 0;
  /// The collection `name` names, directly or as an alias (resolved at the
  /// call). NotFound if absent. The collection is shared: it outlives a drop.
  [[nodiscard]] virtual StatusOr<std::shared_ptr<Collection>> GetCollection(
      const std::string& name) = 0;
  /// Removes the collection and all its points durably, and its aliases.
  /// NotFound if absent; InvalidArgument for an alias name (drop the
  /// collection by its own name). Never waits for the collection's background
  /// work (it is stopped).
  [[nodiscard]] virtual Status DropCollection(const std::string& name) = 0;
  /// Changes collection `name` (or the one an alias names) to `next`, which
  /// may differ from its config only in the quantization and index options of
  /// its fields (QuantizationOptions, IndexOptions); persisted before it
  /// returns. Index options take effect at once (default_nprobe,
  /// default_target_recall for the next search; ivf_threshold and nlist for
  /// the index policy). A change of quantization, of nlist on an IVF field, or
  /// an ivf_threshold above an IVF field's size schedules a background rebuild
  /// that re-encodes every vector from its float original; until it is
  /// swapped in, searches use the previous codes (a restart resumes it).
  /// Errors: NotFound; InvalidArgument for a bad config or a change of
  /// anything else (fields, sizes, distances).
  [[nodiscard]] virtual Status UpdateCollection(const std::string& name,
                                                const CollectionConfig& next) = 0;
  /// Names of all collections, sorted.
  virtual std::vector<std::string> ListCollections() = 0;

  /// Applies `ops` in order, all or none, persisted in one write (Qdrant's
  /// alias actions). An alias names one collection; alias and collection
  /// names share one namespace. Errors (nothing changed then):
  /// InvalidArgument for a bad name; AlreadyExists when creating or renaming
  /// to a name that is taken; NotFound for an unknown collection or alias.
  [[nodiscard]] virtual Status UpdateAliases(std::span<const AliasOperation> ops) = 0;
  /// Every alias and the collection it names, sorted by alias.
  virtual std::vector<std::pair<std::string, std::string>> ListAliases() = 0;

  /// Writes a consistent checkpoint of the whole database into `dir`, which
  /// must not exist. The result opens with Database::Open. Concurrent calls
  /// run one after the other. Unavailable while writes are stopped.
  [[nodiscard]] virtual Status Snapshot(const std::string& dir) = 0;

  /// Writes collection `name` (or the collection an alias names): its config,
  /// points, vectors, payloads and index state as of one instant, into a new
  /// snapshot file at `path` (one file with a SHA-256 trailer; written under
  /// path + ".tmp" and renamed when complete, so `path` never holds a partial
  /// file). The collection keeps serving reads and writes meanwhile. Errors:
  /// NotFound for an unknown collection; AlreadyExists if `path` exists;
  /// ResourceExhausted when the disk fills (nothing is left behind).
  [[nodiscard]] virtual StatusOr<SnapshotFileInfo> SnapshotCollection(const std::string& name,
                                                                      const std::string& path) = 0;
  /// Writes every collection and alias into one snapshot file (as above).
  [[nodiscard]] virtual StatusOr<SnapshotFileInfo> SnapshotAll(const std::string& path) = 0;
  /// Creates collection `name` from the snapshot file at `path`, or replaces
  /// it (an alias names the collection it replaces; aliases stay). The file
  /// is verified whole first (structure, checksum trailer and, when not empty,
  /// `expected_sha256`); the collection appears, or replaces the old one, in
  /// one atomic step only once all of it is stored, so a failure (bad file,
  /// disk full, crash) leaves the database as it was. From a full snapshot
  /// (SnapshotAll) the collection of the same name is taken. Errors:
  /// InvalidArgument for a bad name, a file that is not a valid snapshot, or a
  /// checksum mismatch; NotFound if the file is missing or a full snapshot
  /// holds no collection of that name; FailedPrecondition for a snapshot of
  /// another storage format; ResourceExhausted when the disk is full.
  [[nodiscard]] virtual StatusOr<SnapshotFileInfo> RecoverCollection(
      const std::string& name, const std::string& path, std::string_view expected_sha256) = 0;

  /// Free disk space and whether writes are stopped; never blocks on I/O
  /// beyond a statvfs.
  [[nodiscard]] virtual StatusOr<StorageHealth> Health() = 0;
};


/// InvalidArgument unless `name` is a valid collection name (see CreateCollection).
[[nodiscard]] QVEC_EXPORT Status ValidateCollectionName(std::string_view name);

}  // namespace qvec

#endif  // QVEC_DATABASE_H_
