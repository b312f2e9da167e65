// Durable storage of qvec on RocksDB. The only module that includes RocksDB.
//
// Layout, format version 2 (docs/ARCHITECTURE.md has the full on-disk
// format): column families
//   "default"      unused by qvec
//   "meta"         format version, collection-id counter, collection records
//   "points"       (collection id, point key)           -> point record (engine-defined)
//   "codes"        (collection id, field id, point key) -> encoded vector blob (engine-defined)
//   "originals"    (collection id, field id, point key) -> float32 original, little-endian
//   "payloads"     (collection id, point key)           -> payload JSON text
//   "index_state"  (collection id, name)                -> opaque bytes (calibration, ...)
// A point exists iff its points record exists; it has one code and one
// original per vector field it carries. Point keys are opaque byte strings
// chosen by the engine; iteration is in bytewise key order within a
// collection (and field). A version-1 database (one vector per point, codes
// and originals keyed by (collection id, point key), no points records) is
// upgraded in place at Open: its vectors become field 0.
#ifndef QVEC_STORAGE_STORE_H_
#define QVEC_STORAGE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qvec/status.h"

namespace qvec::storage {

// The on-disk format version this build writes and understands (it also
// opens version 1, upgrading it in place).
inline constexpr uint32_t kFormatVersion = 2;
// format_version while a version-1 database is being upgraded (unknown to
// version-1 builds, so they refuse it).
inline constexpr uint32_t kFormatUpgradingToV2 = 0x80000002;

struct StoreOptions {
  // fsync the WAL on every write group, for power-loss durability. Without it
  // an acknowledged write survives a process crash (kill -9) but not a power cut.
  // Default: false.
  bool sync_writes = false;
  // Size of the RocksDB block cache shared by all column families.
  // Default: 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
  // Create the database if the directory holds none.
  // Default: true.
  bool create_if_missing = true;
  // At open, read every SST file in full and verify its block checksums when
  // their total size is at most this many bytes (0 = never). RocksDB opens
  // SSTs lazily: a damaged data block is otherwise found only when read, and
  // open scans only the codes, so damaged originals or payloads would surface
  // later as read errors of single requests instead of a refusal to start.
  // Larger databases still verify every block they read.
  // Default: 1 GiB.
  uint64_t verify_checksums_on_open_max_bytes = uint64_t{1} << 30;
  // Disk space kept free on the file system of the database. A write that
  // would leave less free is refused with ResourceExhausted ("disk full")
  // before it reaches RocksDB, so that RocksDB always has room to flush the
  // memtables holding acknowledged writes (up to one 64 MiB write buffer of
  // the codes or originals column family at a time) and to recover. Batches
  // that only delete are let through while any space is left: deleting is how
  // an operator makes room. 0 disables the check (RocksDB's own out-of-space
  // error is still turned into ResourceExhausted and recovered from).
  // Default: 64 MiB.
  uint64_t min_free_disk_bytes = uint64_t{64} << 20;
  // Receives RocksDB errors with their full text (paths included), which the
  // Status messages returned to callers leave out. Called from any thread,
  // possibly from RocksDB's background threads; must be thread-safe.
  // Default: none.
  std::function<void(std::string_view)> log_error;

  // InvalidArgument if a field is out of range (block cache < 1 MiB).
  [[nodiscard]] Status Validate() const;
};

// A consistent read view of the whole database (a RocksDB snapshot): reads
// given a Snapshot see exactly the batches committed before it was taken.
// Cheap to take; release it by dropping the last reference. Must not outlive
// the Store that made it. Thread-safe.
class Snapshot {
 public:
  virtual ~Snapshot() = default;
};

// Free space and error state of the storage, for health reports.
struct DiskState {
  uint64_t free_bytes = 0;     // on the file system of the database
  uint64_t reserve_bytes = 0;  // StoreOptions::min_free_disk_bytes
  // A write failed or RocksDB stopped writes (out of space or an I/O error);
  // writes are refused until space returns and RocksDB resumes.
  bool writes_stopped = false;
  std::string last_error;  // why, without paths; empty when healthy
};

// A set of mutations applied atomically by Store::Write. Not thread-safe.
class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  // Stores the record of collection `cid` (its name and engine-defined metadata).
  void PutCollection(uint32_t cid, std::string_view name, std::string_view meta);
  // Stores (replaces) the alias `alias` of collection `collection` (by name).
  void PutAlias(std::string_view alias, std::string_view collection);
  void DeleteAlias(std::string_view alias);
  // Stores the record of a point (engine-defined; its existence is the
  // point's).
  void PutPointRecord(uint32_t cid, std::string_view key, std::string_view record);
  // Writes vector field `field` of a point: its code blob and its float
  // original (dim floats).
  void PutVector(uint32_t cid, uint16_t field, std::string_view key, std::string_view code,
                 const float* original, size_t dim);
  // Removes vector field `field` of a point (its code and original).
  void DeleteVector(uint32_t cid, uint16_t field, std::string_view key);
  // Replaces the payload of a point (nullopt deletes it).
  void PutPayload(uint32_t cid, std::string_view key, std::optional<std::string_view> payload);
  // Replaces only the code blob of a field of an existing point (index
  // rebuilds re-encode or re-assign points without touching originals).
  void PutCode(uint32_t cid, uint16_t field, std::string_view key, std::string_view code);
  // Removes a point: its record, its payload and the vectors of `fields`.
  void DeletePoint(uint32_t cid, std::string_view key, std::span<const uint16_t> fields);
  void PutIndexState(uint32_t cid, std::string_view name, std::string_view value);
  void DeleteIndexState(uint32_t cid, std::string_view name);
  // Moves every mutation of `other` to the end of this batch (an error
  // recorded in `other` becomes this batch's).
  void Append(WriteBatch&& other);
  // Number of mutations recorded.
  size_t Count() const;
  // Bytes of keys and values recorded (about the WAL record's size).
  size_t ByteSize() const;

 private:
  friend class Store;
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

struct CollectionRecord {
  uint32_t id = 0;
  std::string name;
  std::string meta;
};

// What a snapshot file is, as its writer or reader computed it.
struct SnapshotFileInfo {
  std::string sha256;  // lower-case hex, of the whole file
  uint64_t size_bytes = 0;
};

// A RocksDB database holding every collection. Thread-safe: all methods may be
// called concurrently; reads see a consistent state of committed batches.
class Store {
 public:
  // Opens (creating if allowed) the database at `path`. FailedPrecondition if
  // it was written by an unknown format version; DataLoss if it is corrupted;
  // Unavailable if another process holds its lock.
  [[nodiscard]] static StatusOr<std::unique_ptr<Store>> Open(const std::string& path,
                                                             const StoreOptions& options);
  virtual ~Store() = default;

  // Applies `batch` atomically with the WAL on; returns only once RocksDB's
  // Write() succeeded (and, with sync_writes, the WAL was fsynced).
  // ResourceExhausted when the disk is full (free space below
  // min_free_disk_bytes, or RocksDB ran out of space): nothing is written,
  // and writes succeed again by themselves once space is freed.
  [[nodiscard]] virtual Status Write(WriteBatch* batch) = 0;

  // Returns a new collection id, durably reserved (ids are never reused).
  [[nodiscard]] virtual StatusOr<uint32_t> AllocateCollectionId() = 0;
  // All collection records, ordered by name.
  [[nodiscard]] virtual StatusOr<std::vector<CollectionRecord>> ListCollections() = 0;
  // Every alias -> collection name, ordered by alias.
  [[nodiscard]] virtual StatusOr<std::vector<std::pair<std::string, std::string>>>
  ListAliases() = 0;
  // Atomically removes the record of `cid` and every point and index-state key
  // of it.
  [[nodiscard]] virtual Status DropCollection(uint32_t cid) = 0;

  // A read view of the current state (see Snapshot).
  virtual std::shared_ptr<const Snapshot> GetSnapshot() = 0;

  // Every read below reads from `snapshot` when given (it must come from this
  // Store's GetSnapshot), else from the latest committed state.

  // The original of vector field `field` of a point. NotFound if absent,
  // DataLoss if it is not a whole number of floats.
  [[nodiscard]] virtual StatusOr<std::vector<float>> GetOriginal(
      uint32_t cid, uint16_t field, std::string_view key, const Snapshot* snapshot = nullptr) = 0;
  // The payload of a point; nullopt when it has none (or does not exist).
  [[nodiscard]] virtual StatusOr<std::optional<std::string>> GetPayload(
      uint32_t cid, std::string_view key, const Snapshot* snapshot = nullptr) = 0;
  // Reads the originals of field `field` of `keys` into `out` (size
  // keys.size() * dim). NotFound if any key is absent, DataLoss if an
  // original has the wrong size.
  [[nodiscard]] virtual Status MultiGetOriginals(uint32_t cid, uint16_t field,
                                                 const std::vector<std::string>& keys, size_t dim,
                                                 float* out,
                                                 const Snapshot* snapshot = nullptr) = 0;
  // Reads the code blobs of field `field` of `keys` (nullopt where absent).
  [[nodiscard]] virtual StatusOr<std::vector<std::optional<std::string>>> MultiGetCodes(
      uint32_t cid, uint16_t field, const std::vector<std::string>& keys,
      const Snapshot* snapshot = nullptr) = 0;
  // Reads the payloads of `keys` (nullopt where a point has none or is absent).
  [[nodiscard]] virtual StatusOr<std::vector<std::optional<std::string>>> MultiGetPayloads(
      uint32_t cid, const std::vector<std::string>& keys, const Snapshot* snapshot = nullptr) = 0;

  // Scans call fn(point key, value) in key order from one consistent view
  // and stop early (returning ok) when fn returns false.
  // Every point record of `cid`.
  [[nodiscard]] virtual Status ScanPoints(
      uint32_t cid, const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Every code of field `field` of `cid`.
  [[nodiscard]] virtual Status ScanCodes(
      uint32_t cid, uint16_t field,
      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Every payload of `cid`.
  [[nodiscard]] virtual Status ScanPayloads(
      uint32_t cid, const std::function<bool(std::string_view, std::string_view)>& fn,
      const Snapshot* snapshot = nullptr) = 0;
  // Every original of field `field` of `cid` (dim floats each).
  [[nodiscard]] virtual Status ScanOriginals(
      uint32_t cid, uint16_t field, size_t dim,
      const std::function<bool(std::string_view, const float*)>& fn,
      const Snapshot* snapshot = nullptr) = 0;

  // Returns NotFound when no value is stored under `name`.
  [[nodiscard]] virtual StatusOr<std::string> GetIndexState(uint32_t cid,
                                                            std::string_view name) = 0;
  // Calls fn(name, value) for every index-state entry of `cid` whose name
  // starts with `prefix`, in name order; stops early when fn returns false.
  [[nodiscard]] virtual Status ScanIndexState(
      uint32_t cid, std::string_view prefix,
      const std::function<bool(std::string_view, std::string_view)>& fn) = 0;

  // Writes a consistent RocksDB checkpoint of the whole database into `dir`,
  // which must not exist yet (its parent must). Unavailable while writes are
  // stopped (see DiskState): RocksDB cannot flush then.
  [[nodiscard]] virtual Status Checkpoint(const std::string& dir) = 0;

  // Writes collections `cids` (their records and every key of them) and
  // `aliases` (alias -> collection name), all read from one consistent view,
  // into a new snapshot file at `path` (format: storage/snapshot_file.h;
  // written under path + ".tmp" and renamed when complete). Returns its
  // SHA-256 (hex) and size. NotFound if a collection has no record;
  // AlreadyExists if `path` exists; ResourceExhausted when the disk fills
  // (nothing is left behind).
  [[nodiscard]] virtual StatusOr<SnapshotFileInfo> ExportCollections(
      std::span<const uint32_t> cids,
      std::span<const std::pair<std::string, std::string>> aliases, const std::string& path) = 0;

  // Verifies the snapshot file at `path` (see ReadSnapshotFile: structure,
  // checksum trailer, `expected_sha256` when not empty, storage format), then
  // writes the keys of one collection it holds (the one named `pick`; in a
  // file of a single collection, that one whatever its name) under the new
  // collection id `cid` (from AllocateCollectionId) WITHOUT a collection
  // record: the data stays invisible until CommitImport. An import
  // interrupted by a crash is removed at the next Open; one that fails is
  // removed before returning. Returns the collection's record as the file
  // holds it (id = cid) and the file's checksum and size. Errors as
  // ReadSnapshotFile's, InvalidArgument if the file holds no collection,
  // NotFound if it holds several and none named `pick`, ResourceExhausted
  // when the disk is full.
  [[nodiscard]] virtual StatusOr<std::pair<CollectionRecord, SnapshotFileInfo>>
  ImportCollection(const std::string& path, uint32_t cid, std::string_view pick,
                   std::string_view expected_sha256) = 0;
  // In one atomic write: makes imported `cid` the collection `name` with
  // `meta`, and, when `replaced` is set, removes that collection (record and
  // data).
  [[nodiscard]] virtual Status CommitImport(uint32_t cid, std::string_view name,
                                            std::string_view meta,
                                            std::optional<uint32_t> replaced) = 0;
  // Removes what ImportCollection wrote for `cid` (after a failure to use
  // it).
  [[nodiscard]] virtual Status AbortImport(uint32_t cid) = 0;

  // Free space and whether writes are stopped.
  virtual DiskState GetDiskState() = 0;

  // Approximate on-disk size in bytes of all column families.
  virtual uint64_t ApproximateDiskBytes() = 0;
};

}  // namespace qvec::storage

#endif  // QVEC_STORAGE_STORE_H_
