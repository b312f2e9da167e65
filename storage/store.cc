// RocksDB implementation of qvec::storage::Store.
//
// ON-DISK FORMAT (version 1)
// ==========================
// One RocksDB database, bytewise comparator, six column families:
//
//   CF           key                                  value
//   -----------  -----------------------------------  ----------------------------------------
//   default      (unused)
//   meta         "format_version"                     u32 little-endian; 1 for this format
//   meta         "next_collection_id"                 u32 little-endian; next id to hand out
//                                                     (absent = 1; ids start at 1, never reused)
//   meta         "collection/" + BE32(cid)            varint32(len(name)) + name + meta, where
//                                                     meta (engine-defined) is the rest of the
//                                                     value
//   codes        BE32(cid) + point key                encoded vector blob (engine-defined)
//   originals    BE32(cid) + point key                dim float32 values, raw little-endian
//                                                     (value size = 4 * dim)
//   payloads     BE32(cid) + point key                payload JSON text (absent = no payload)
//   index_state  BE32(cid) + state name               opaque bytes (engine-defined)
//
// BE32(cid) is the collection id as 4 bytes big-endian, so all keys of a
// collection are contiguous and ordered bytewise by point key; they lie in
// [BE32(cid), BE32(cid + 1)). Hence cid 0xFFFFFFFF is never used. varint32 is
// the LEB128 encoding (7 bits per byte, low bits first, high bit = "more").
// A point exists iff its codes key exists; PutPoint always writes codes and
// originals together (and writes or deletes the payload) in one WriteBatch.
// DropCollection deletes [BE32(cid), BE32(cid + 1)) in codes, originals,
// payloads and index_state (DeleteRange) and the meta record in ONE batch.
#include "store.h"  // NOLINT(build/include_subdir)

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

#include "common/mutex.h"
#include "key_codec.h"  // NOLINT(build/include_subdir)
#include "snapshot_file.h"  // NOLINT(build/include_subdir)

namespace qvec::storage {
namespace {

namespace fs = std::filesystem;

// Column family indexes into RocksStore::cfs_ and the names on disk.
// "points" is new in version 2 and comes last, so the indexes of the others
// stay those of version 1.
enum Cf : int { kDefault = 0, kMeta, kCodes, kOriginals, kPayloads, kIndexState, kPoints, kNumCfs };
constexpr std::array<const char*, kNumCfs> kCfNames = {
    "default", "meta", "codes", "originals", "payloads", "index_state", "points"};

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// A RocksDB status in words, without the file names RocksDB puts in its
// messages (Status messages reach HTTP clients; paths are for the log).
std::string Describe(const rocksdb::Status& s) {
  if (s.IsNoSpace()) return "no space left on the device";
  switch (s.code()) {
    case rocksdb::Status::kCorruption:
      return "the database is corrupted";
    case rocksdb::Status::kIOError:
      return "I/O error";
    case rocksdb::Status::kNotFound:
      return "not found";
    case rocksdb::Status::kInvalidArgument:
      return "invalid argument";
    case rocksdb::Status::kBusy:
      return "busy";
    case rocksdb::Status::kTimedOut:
      return "timed out";
    case rocksdb::Status::kAborted:
      return "aborted";
    case rocksdb::Status::kShutdownInProgress:
      return "shutting down";
    case rocksdb::Status::kNotSupported:
      return "not supported";
    default:
      return "storage error (code " + std::to_string(static_cast<int>(s.code())) + ")";
  }
}

bool IsSpaceError(const rocksdb::Status& s) {
  return s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit;
}

// Converts a RocksDB status; `what` says what was being done.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = "storage: " + std::string(what) + ": " + Describe(s);
  if (IsSpaceError(s)) {
    return ResourceExhaustedError(
        "disk full: the disk holding the database has no space left; writes are refused "
        "until space is freed and resume by themselves (" +
        msg + ")");
  }
  switch (s.code()) {
    case rocksdb::Status::kCorruption:
      return DataLossError(msg);
    case rocksdb::Status::kNotFound:
      return NotFoundError(msg);
    case rocksdb::Status::kInvalidArgument:
      return InvalidArgumentError(msg);
    case rocksdb::Status::kIOError:
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kShutdownInProgress:
      return UnavailableError(msg);
    default:
      return InternalError(msg);
  }
}

// True for the IOError RocksDB returns when the LOCK file is held, either by
// another process ("While lock file: .../LOCK: Resource temporarily
// unavailable") or by this one ("lock hold by current process ...").
bool IsLockError(const rocksdb::Status& s) {
  if (!s.IsIOError()) return false;
  const std::string m = s.ToString();
  return m.find("lock file") != std::string::npos || m.find("/LOCK") != std::string::npos ||
         m.find("lock hold") != std::string::npos;
}

// Runs `fn` and turns any exception into a Status, so none crosses the
// module boundary (RocksDB's C++ API and std containers can throw bad_alloc).
template <typename Fn>
auto NoThrow(Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return UnavailableError("storage: out of memory");
  } catch (const std::exception& e) {
    return InternalError(std::string("storage: unexpected exception: ") + e.what());
  } catch (...) {
    return InternalError("storage: unexpected unknown exception");
  }
}

Status CheckCid(uint32_t cid) {
  if (cid > codec::kMaxCollectionId) {
    return InvalidArgumentError("collection id " + std::to_string(cid) + " is out of range");
  }
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------
// StoreOptions
// ---------------------------------------------------------------------------

Status StoreOptions::Validate() const {
  if (block_cache_bytes < (size_t{1} << 20)) {
    return InvalidArgumentError("block_cache_bytes must be at least 1 MiB, got " +
                                std::to_string(block_cache_bytes));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// WriteBatch: records mutations by column-family index; Store::Write turns
// them into a rocksdb::WriteBatch (the column family handles belong to a
// Store, which a WriteBatch does not know).
// ---------------------------------------------------------------------------

namespace {
struct BatchData {
  enum class Kind : uint8_t { kPut, kDelete };
  struct Op {
    Kind kind;
    Cf cf;
    std::string key;
    std::string value;
  };
  std::vector<Op> ops;
  size_t bytes = 0;
  size_t count = 0;  // public mutations (PutVector counts once)
  Status error;      // first invalid call; Write returns it

  void Add(Kind kind, Cf cf, std::string key, std::string value = {}) {
    bytes += key.size() + value.size() + 16;
    ops.push_back(Op{kind, cf, std::move(key), std::move(value)});
  }
  // Records `s` unless an earlier error is recorded. Returns s.ok().
  bool Check(Status s) {
    if (!s.ok() && error.ok()) error = std::move(s);
    return error.ok();
  }
  template <typename Fn>
  void Guarded(Fn&& fn) {
    try {
      fn();
      ++count;
    } catch (const std::bad_alloc&) {
      Check(UnavailableError("storage: out of memory building a write batch"));
    } catch (const std::exception& e) {
      Check(InternalError(std::string("storage: exception building a write batch: ") + e.what()));
    }
  }
};
}  // namespace

struct WriteBatch::Rep : BatchData {};

WriteBatch::WriteBatch() : rep_(std::make_unique<Rep>()) {}
WriteBatch::~WriteBatch() = default;

void WriteBatch::PutCollection(uint32_t cid, std::string_view name, std::string_view meta) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kMeta, codec::CollectionRecordKey(cid),
              codec::EncodeCollectionRecord(name, meta));
  });
}

void WriteBatch::PutAlias(std::string_view alias, std::string_view collection) {
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kMeta,
              std::string(codec::kAliasKeyPrefix) + std::string(alias), std::string(collection));
  });
}

void WriteBatch::DeleteAlias(std::string_view alias) {
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kDelete, kMeta,
              std::string(codec::kAliasKeyPrefix) + std::string(alias));
  });
}

void WriteBatch::PutPointRecord(uint32_t cid, std::string_view key, std::string_view record) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kPoints, codec::DataKey(cid, key), std::string(record));
  });
}

void WriteBatch::PutVector(uint32_t cid, uint16_t field, std::string_view key,
                           std::string_view code, const float* original, size_t dim) {
  if (!rep_->Check(CheckCid(cid))) return;
  if (original == nullptr && dim != 0) {
    rep_->Check(
        InvalidArgumentError("PutVector: original is null but dim is " + std::to_string(dim)));
    return;
  }
  rep_->Guarded([&] {
    std::string k = codec::VectorKey(cid, field, key);
    std::string orig(dim * sizeof(float), '\0');
    if (dim != 0) std::memcpy(orig.data(), original, dim * sizeof(float));  // raw LE floats
    rep_->Add(BatchData::Kind::kPut, kCodes, k, std::string(code));
    rep_->Add(BatchData::Kind::kPut, kOriginals, std::move(k), std::move(orig));
  });
}

void WriteBatch::DeleteVector(uint32_t cid, uint16_t field, std::string_view key) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    std::string k = codec::VectorKey(cid, field, key);
    rep_->Add(BatchData::Kind::kDelete, kCodes, k);
    rep_->Add(BatchData::Kind::kDelete, kOriginals, std::move(k));
  });
}

void WriteBatch::PutPayload(uint32_t cid, std::string_view key,
                            std::optional<std::string_view> payload) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    if (payload.has_value()) {
      rep_->Add(BatchData::Kind::kPut, kPayloads, codec::DataKey(cid, key), std::string(*payload));
    } else {
      rep_->Add(BatchData::Kind::kDelete, kPayloads, codec::DataKey(cid, key));
    }
  });
}

void WriteBatch::PutCode(uint32_t cid, uint16_t field, std::string_view key,
                         std::string_view code) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kCodes, codec::VectorKey(cid, field, key), std::string(code));
  });
}

void WriteBatch::DeletePoint(uint32_t cid, std::string_view key, std::span<const uint16_t> fields) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    std::string k = codec::DataKey(cid, key);
    rep_->Add(BatchData::Kind::kDelete, kPoints, k);
    rep_->Add(BatchData::Kind::kDelete, kPayloads, std::move(k));
    for (uint16_t field : fields) {
      std::string vk = codec::VectorKey(cid, field, key);
      rep_->Add(BatchData::Kind::kDelete, kCodes, vk);
      rep_->Add(BatchData::Kind::kDelete, kOriginals, std::move(vk));
    }
  });
}

void WriteBatch::PutIndexState(uint32_t cid, std::string_view name, std::string_view value) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kIndexState, codec::DataKey(cid, name), std::string(value));
  });
}

void WriteBatch::DeleteIndexState(uint32_t cid, std::string_view name) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded(
      [&] { rep_->Add(BatchData::Kind::kDelete, kIndexState, codec::DataKey(cid, name)); });
}

void WriteBatch::Append(WriteBatch&& other) {
  if (!rep_->Check(other.rep_->error)) return;
  if (rep_->ops.empty()) {
    rep_->ops = std::move(other.rep_->ops);
  } else {
    rep_->ops.reserve(rep_->ops.size() + other.rep_->ops.size());
    for (auto& op : other.rep_->ops) rep_->ops.push_back(std::move(op));
  }
  rep_->bytes += other.rep_->bytes;
  rep_->count += other.rep_->count;
  other.rep_->ops.clear();
  other.rep_->bytes = 0;
  other.rep_->count = 0;
}

size_t WriteBatch::Count() const { return rep_->count; }
size_t WriteBatch::ByteSize() const { return rep_->bytes; }

// ---------------------------------------------------------------------------
// RocksStore
// ---------------------------------------------------------------------------
namespace {

class RocksSnapshot final : public Snapshot {
 public:
  RocksSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snapshot) : db_(db), snap_(snapshot) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snap_); }
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snap_;
};

rocksdb::ReadOptions ReadAt(const Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = static_cast<const RocksSnapshot*>(snapshot)->get();
  return ro;
}

class RocksStore;

// RocksDB's own log lines, warnings and errors only, go to StoreOptions::
// log_error instead of the LOG file RocksDB would keep beside the data: on a
// full disk, a write to that file fails and RocksDB's next log line then
// trips an assertion that aborts the process (Debian's build keeps its
// assertions).
class RocksLogger final : public rocksdb::Logger {
 public:
  explicit RocksLogger(std::function<void(std::string_view)> sink)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), sink_(std::move(sink)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (!sink_) return;
    char buf[1024];
    const int n = std::vsnprintf(buf, sizeof(buf), format, ap);
    if (n > 0) sink_("rocksdb: " + std::string(buf, std::min<size_t>(n, sizeof(buf) - 1)));
  }

 private:
  std::function<void(std::string_view)> sink_;
};

// Learns of RocksDB's background errors (a failed flush, WAL write or
// compaction). A hard error (RocksDB stops writes) is recovered from by the
// store's monitor thread, which resumes as soon as the reserve is free again,
// instead of RocksDB's own recovery, which waits for a whole write buffer of
// free space and polls every 5 s. A soft error (a compaction out of space)
// is left to RocksDB: it delays compactions until there is room, and writes
// go on.
class ErrorListener final : public rocksdb::EventListener {
 public:
  explicit ErrorListener(RocksStore* store) : store_(store) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override;
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status error,
                            bool* auto_recovery) override {
    if (error.severity() >= rocksdb::Status::Severity::kHardError) *auto_recovery = false;
  }

 private:
  RocksStore* const store_;
};

// Writes and everything that can make RocksDB reuse a WAL writer that saw an
// error are kept apart: after a failed WAL write (disk full) RocksDB's debug
// assertions (Debian's build keeps them) abort the process if anything but
// its recovery switches the memtable, as a checkpoint's flush or the flush
// at Close would. `io_mu_` orders them: writes share it; Checkpoint and
// Close take it exclusively and refuse (or skip the flush) while writes are
// stopped.
class RocksStore final : public Store {
 public:
  // WriteBatch's representation is private to WriteBatch and its friend
  // Store; Store::Open hands us an accessor (a lambda defined in a Store
  // member function has Store's access rights) so store.h stays unchanged.
  using RepAccessor = BatchData* (*)(WriteBatch*);

  RocksStore(std::string path, const StoreOptions& options, RepAccessor rep_of)
      : path_(std::move(path)),
        rep_of_(rep_of),
        reserve_bytes_(options.min_free_disk_bytes),
        log_error_(options.log_error) {
    write_options_.sync = options.sync_writes;
    write_options_.disableWAL = false;  // never: the WAL is our only crash protection
  }

  ~RocksStore() override {
    {
      MutexLock lock(&monitor_mu_);
      closing_ = true;
    }
    monitor_cv_.SignalAll();
    if (monitor_.joinable()) monitor_.join();
    // Handles must be destroyed before the DB. Memtables are flushed first so
    // that the next Open replays no WAL, except while writes are stopped:
    // flushing then would reuse the failed WAL writer (see io_mu_), and the
    // WAL holds every acknowledged write anyway. Errors cannot be reported
    // from a destructor; the WAL still holds the data.
    try {
      WriterLock io_lock(&io_mu_);
      if (db_ != nullptr && !writes_stopped_.load()) {
        rocksdb::FlushOptions fo;
        fo.allow_write_stall = true;
        std::vector<rocksdb::ColumnFamilyHandle*> all(cfs_.begin(), cfs_.end());
        db_->Flush(fo, all).PermitUncheckedError();
      }
      for (auto* h : handles_) {
        if (db_ != nullptr && h != nullptr)
          db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      }
      handles_.clear();
      if (db_ != nullptr) db_->Close().PermitUncheckedError();
    } catch (...) {
    }
    delete db_;
  }

  Status OpenDb(const StoreOptions& options);

  Status Write(WriteBatch* batch) override;
  StatusOr<uint32_t> AllocateCollectionId() override;
  StatusOr<std::vector<CollectionRecord>> ListCollections() override;
  StatusOr<std::vector<std::pair<std::string, std::string>>> ListAliases() override;
  Status DropCollection(uint32_t cid) override;
  std::shared_ptr<const Snapshot> GetSnapshot() override;
  StatusOr<std::vector<float>> GetOriginal(uint32_t cid, uint16_t field, std::string_view key,
                                           const Snapshot* snapshot) override;
  StatusOr<std::optional<std::string>> GetPayload(uint32_t cid, std::string_view key,
                                                  const Snapshot* snapshot) override;
  Status MultiGetOriginals(uint32_t cid, uint16_t field, const std::vector<std::string>& keys,
                           size_t dim, float* out, const Snapshot* snapshot) override;
  // The values of `full_keys` (complete keys) in column family `c`,
  // nullopt where absent; `what` names the read in errors.
  StatusOr<std::vector<std::optional<std::string>>> MultiGetValues(
      Cf c, const std::vector<std::string>& full_keys, const Snapshot* snapshot,
      std::string_view what);
  StatusOr<std::vector<std::optional<std::string>>> MultiGetCodes(
      uint32_t cid, uint16_t field, const std::vector<std::string>& keys,
      const Snapshot* snapshot) override;
  StatusOr<std::vector<std::optional<std::string>>> MultiGetPayloads(
      uint32_t cid, const std::vector<std::string>& keys, const Snapshot* snapshot) override;
  Status ScanPoints(uint32_t cid,
                    const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status ScanCodes(uint32_t cid, uint16_t field,
                   const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status ScanPayloads(uint32_t cid,
                      const std::function<bool(std::string_view, std::string_view)>& fn,
                      const Snapshot* snapshot) override;
  Status ScanOriginals(uint32_t cid, uint16_t field, size_t dim,
                       const std::function<bool(std::string_view, const float*)>& fn,
                       const Snapshot* snapshot) override;
  StatusOr<std::string> GetIndexState(uint32_t cid, std::string_view name) override;
  Status ScanIndexState(uint32_t cid, std::string_view prefix,
                        const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status Checkpoint(const std::string& dir) override;
  StatusOr<SnapshotFileInfo> ExportCollections(
      std::span<const uint32_t> cids, std::span<const std::pair<std::string, std::string>> aliases,
      const std::string& path) override;
  StatusOr<std::pair<CollectionRecord, SnapshotFileInfo>> ImportCollection(
      const std::string& path, uint32_t cid, std::string_view pick,
      std::string_view expected_sha256) override;
  Status CommitImport(uint32_t cid, std::string_view name, std::string_view meta,
                      std::optional<uint32_t> replaced) override;
  Status AbortImport(uint32_t cid) override;
  // Removes imports a crash interrupted (at open).
  Status RemoveInterruptedImports();
  DiskState GetDiskState() override;
  uint64_t ApproximateDiskBytes() override;

  // Called by ErrorListener from RocksDB's threads.
  void OnBackgroundError(const rocksdb::Status& error);

 private:
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cfs_[c]; }
  // Adds to `wb` the deletion of every key of collection `cid` in the data
  // column families (range deletions; the meta record is the caller's).
  Status DeleteCollectionKeys(rocksdb::WriteBatch* wb, uint32_t cid) {
    const std::string begin = codec::CollectionPrefix(cid);
    const std::string end = codec::CollectionPrefix(cid + 1);
    for (Cf c : {kPoints, kCodes, kOriginals, kPayloads, kIndexState}) {
      QVEC_RETURN_IF_ERROR(Rocks(wb->DeleteRange(cf(c), begin, end), "deleting a collection"));
    }
    return Status::Ok();
  }
  Status Rocks(const rocksdb::Status& s, std::string_view what) const {
    if (!s.ok() && log_error_) {
      log_error_("rocksdb (" + path_ + "): " + std::string(what) + ": " + s.ToString());
    }
    return FromRocks(s, what);
  }
  Status CheckFormatVersion();
  // Verifies the checksums of all SST files if they total at most max_bytes.
  Status VerifySstChecksums(uint64_t max_bytes);
  // Iterates the keys starting with `prefix` in `c` in order, calling
  // fn(key without the prefix, value).
  Status ScanPrefix(
      Cf c, const std::string& prefix, bool fill_cache, const Snapshot* snapshot,
      const std::function<Status(std::string_view, const rocksdb::Slice&, bool*)>& fn);
  // Version 1 -> 2: moves every collection's vectors to field 0 and writes
  // the points records (see Upgrade in store.cc).
  Status UpgradeFromV1();

  // The one way writes reach RocksDB: checks free space (unless the batch
  // only deletes), refuses while writes are stopped, and notes failures.
  Status GuardedWrite(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                      size_t bytes, bool deletes_only, std::string_view what);
  // Free bytes on the file system of the database (statvfs); 0 on error.
  uint64_t FreeBytes() const;
  // Bytes held in memtables, which a flush writes out as SSTs.
  uint64_t MemtableBytes() const;
  // ResourceExhausted when `bytes` more would leave less than the reserve.
  Status CheckSpace(size_t bytes, bool deletes_only);
  void StopWrites(const std::string& why);
  // The monitor thread: while writes are stopped, resumes RocksDB once the
  // reserve is free again.
  void MonitorLoop();

  const std::string path_;
  const RepAccessor rep_of_;
  const uint64_t reserve_bytes_;
  const std::function<void(std::string_view)> log_error_;
  rocksdb::WriteOptions write_options_;
  std::shared_ptr<rocksdb::Cache> cache_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // all opened, incl. unknown CFs
  std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> cfs_{};

  Mutex id_mu_;                                    // serializes the durable update of next_cid_
  uint32_t next_cid_ QVEC_GUARDED_BY(id_mu_) = 1;  // mirrors meta "next_collection_id"

  SharedMutex io_mu_;  // writes (shared) vs. Checkpoint, flushes and Close (exclusive)
  // Set when a write failed or RocksDB reported a background error; cleared
  // when Resume() succeeds.
  std::atomic<bool> writes_stopped_{false};
  // Free-space estimate between statvfs calls: the last reading, when it was
  // taken (steady clock, ns) and the bytes written since.
  std::atomic<uint64_t> free_seen_{0};
  std::atomic<uint64_t> memtables_seen_{0};
  std::atomic<int64_t> free_seen_at_ns_{0};
  std::atomic<uint64_t> written_since_{0};
  // A write was refused for space while memtables held data: the monitor
  // flushes them, which lets RocksDB delete the WAL they were logged in.
  std::atomic<bool> flush_wanted_{false};

  Mutex monitor_mu_;
  CondVar monitor_cv_;  // wakes the monitor: closing, or a flush wanted
  bool closing_ QVEC_GUARDED_BY(monitor_mu_) = false;
  std::string stop_reason_ QVEC_GUARDED_BY(monitor_mu_);
  std::thread monitor_;
};

void ErrorListener::OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) {
  if (error != nullptr && !error->ok()) store_->OnBackgroundError(*error);
}

rocksdb::ColumnFamilyOptions MakeCfOptions(Cf c, const std::shared_ptr<rocksdb::Cache>& cache,
                                           bool lz4) {
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache;  // one LRU cache shared by every CF bounds read memory
  const bool point_lookups = (c == kCodes || c == kOriginals || c == kPayloads);
  if (point_lookups) {
    // ~1% false positives; GetPoint/MultiGet skip SSTs without the key.
    t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  }
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // Level compaction with dynamic level sizes keeps space amplification ~1.1x.
  o.level_compaction_dynamic_level_bytes = true;
  if (c == kCodes || c == kOriginals) {
    // Bulk-loaded data: large memtables mean fewer, larger L0 files and less
    // write amplification. Float originals and int8 codes are high-entropy and
    // barely compress, so compression would only cost CPU.
    o.write_buffer_size = size_t{64} << 20;
    o.compression = rocksdb::kNoCompression;
  } else {
    // JSON payloads compress well; meta/index_state are small. LZ4 is cheap;
    // fall back to none if this RocksDB build lacks it.
    o.write_buffer_size = (c == kPayloads) ? size_t{32} << 20 : size_t{8} << 20;
    o.compression = lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
  }
  o.max_write_buffer_number = 3;
  return o;
}

Status RocksStore::OpenDb(const StoreOptions& options) {
  std::error_code ec;
  const bool exists = fs::exists(fs::path(path_) / "CURRENT", ec);
  if (!exists && !options.create_if_missing) {
    return NotFoundError("no qvec database at " + path_ + " (and create_if_missing is false)");
  }
  if (!exists) {
    // RocksDB would create it too, but first logs a read error for the
    // missing directory.
    fs::create_directories(path_, ec);
    if (ec) return UnavailableError("cannot create the database directory: " + ec.message());
  }

  bool lz4 = false;
  for (auto c : rocksdb::GetSupportedCompressions()) lz4 |= (c == rocksdb::kLZ4Compression);

  cache_ = rocksdb::NewLRUCache(options.block_cache_bytes);

  rocksdb::DBOptions db_opts;
  db_opts.create_if_missing = options.create_if_missing;
  db_opts.create_missing_column_families = true;
  // Verify checksums/consistency eagerly and stop on any detected corruption
  // instead of serving possibly wrong data.
  db_opts.paranoid_checks = true;
  // The machine is small and shared: one flush plus one compaction thread.
  db_opts.max_background_jobs = 2;
  // The destructor flushes explicitly, and only when that is safe.
  db_opts.avoid_flush_during_shutdown = true;
  // A kill -9 can leave a torn record at the WAL tail: replay up to it and
  // drop it. Only the torn (hence never acknowledged) write is lost; with
  // kAbsoluteConsistency Open would fail instead.
  db_opts.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // A WAL can only be deleted once every CF it covers is flushed; rarely
  // written CFs (meta, index_state) would pin old WALs. Cap total WAL size so
  // RocksDB flushes those CFs and recycles the space.
  db_opts.max_total_wal_size = uint64_t{256} << 20;
  db_opts.keep_log_file_num = 4;
  db_opts.max_log_file_size = size_t{16} << 20;
  db_opts.listeners.push_back(std::make_shared<ErrorListener>(this));
  db_opts.info_log = std::make_shared<RocksLogger>(log_error_);
  db_opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;

  std::vector<std::string> names(kCfNames.begin(), kCfNames.end());
  if (exists) {
    // Open any extra CF a newer build may have added; RocksDB refuses to open
    // a DB without listing all of them (the version check then decides).
    std::vector<std::string> on_disk;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_opts, path_, &on_disk);
    if (!s.ok()) return Rocks(s, "listing the column families of the database at " + path_);
    for (auto& n : on_disk) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (size_t i = 0; i < names.size(); ++i) {
    const Cf c = i < kNumCfs ? static_cast<Cf>(i) : kDefault;
    descs.emplace_back(names[i], MakeCfOptions(c, cache_, lz4));
  }

  rocksdb::Status s = rocksdb::DB::Open(db_opts, path_, descs, &handles_, &db_);
  if (!s.ok()) {
    db_ = nullptr;
    handles_.clear();
    if (IsLockError(s)) {
      return UnavailableError("database at " + path_ + " is in use by another process");
    }
    return Rocks(s, "opening the database at " + path_);
  }
  for (int i = 0; i < kNumCfs; ++i) cfs_[i] = handles_[i];
  QVEC_RETURN_IF_ERROR(CheckFormatVersion());
  QVEC_RETURN_IF_ERROR(RemoveInterruptedImports());
  QVEC_RETURN_IF_ERROR(VerifySstChecksums(options.verify_checksums_on_open_max_bytes));
  monitor_ = std::thread([this] { MonitorLoop(); });
  return Status::Ok();
}

uint64_t RocksStore::FreeBytes() const {
  struct statvfs st;
  if (statvfs(path_.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
}

uint64_t RocksStore::MemtableBytes() const {
  uint64_t v = 0;
  if (!db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) return 0;
  return v;
}

Status RocksStore::CheckSpace(size_t bytes, bool deletes_only) {
  if (reserve_bytes_ == 0) return Status::Ok();
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  // A WAL record is about as large as its batch, and the memtable holding it
  // needs as much again when flushed: count the batch twice.
  const uint64_t need = 2 * static_cast<uint64_t>(bytes);
  const uint64_t seen = free_seen_.load(), since = written_since_.load();
  uint64_t free = seen > since ? seen - since : 0;
  uint64_t memtables = memtables_seen_.load() + since / 2;
  // statvfs at most every 100 ms, and on every write once close to the edge.
  if (now - free_seen_at_ns_.load() > 100'000'000 || free < reserve_bytes_ + memtables + 4 * need) {
    free = FreeBytes();
    memtables = MemtableBytes();
    free_seen_.store(free);
    memtables_seen_.store(memtables);
    free_seen_at_ns_.store(now);
    written_since_.store(0);
  }
  // What is in the memtables must always fit on disk once more: a flush
  // writes it out before the WAL holding it can be deleted.
  const uint64_t floor = deletes_only ? (uint64_t{1} << 20) : reserve_bytes_ + memtables;
  if (free >= floor + need) {
    written_since_.fetch_add(need / 2);
    return Status::Ok();
  }
  if (!deletes_only && memtables > (uint64_t{1} << 20) && !flush_wanted_.exchange(true)) {
    monitor_cv_.SignalAll();  // flushing frees the WAL that logged them
  }
  return ResourceExhaustedError(
      "disk full: " + std::to_string(free >> 20) + " MiB free on the disk holding the database; " +
      "writes keep " + std::to_string(reserve_bytes_ >> 20) +
      " MiB free (min_free_disk_bytes) plus room to flush what is in memory (" +
      std::to_string(memtables >> 20) + " MiB); free space and writes resume by themselves");
}

void RocksStore::StopWrites(const std::string& why) {
  {
    MutexLock lock(&monitor_mu_);
    stop_reason_ = why;
    writes_stopped_.store(true);
  }
  monitor_cv_.SignalAll();
}

void RocksStore::OnBackgroundError(const rocksdb::Status& error) {
  if (log_error_) log_error_("rocksdb (" + path_ + "): background error: " + error.ToString());
  // Soft errors (a compaction without room) do not stop RocksDB's writes;
  // ours stop with the hard ones.
  if (error.severity() >= rocksdb::Status::Severity::kHardError) {
    StopWrites(FromRocks(error, "background flush").message());
  }
}

void RocksStore::MonitorLoop() {
  MutexLock lock(&monitor_mu_);
  while (!closing_) {
    monitor_cv_.WaitFor(&monitor_mu_, std::chrono::seconds(1));
    if (closing_) break;
    if (flush_wanted_.exchange(false) && !writes_stopped_.load()) {
      lock.Unlock();
      {
        // No write runs during the flush (see io_mu_); writes are being
        // refused for space anyway.
        WriterLock io_lock(&io_mu_);
        if (!writes_stopped_.load()) {
          rocksdb::FlushOptions fo;
          fo.allow_write_stall = true;
          std::vector<rocksdb::ColumnFamilyHandle*> all(cfs_.begin(), cfs_.end());
          rocksdb::Status s = db_->Flush(fo, all);
          if (!s.ok() && log_error_) {
            log_error_("rocksdb (" + path_ + "): flush to free the WAL failed: " + s.ToString());
          }
          free_seen_at_ns_.store(0);  // re-read free space on the next write
        }
      }
      lock.Lock();
      continue;
    }
    if (!writes_stopped_.load()) continue;
    // Resume() flushes the memtables: wait until they fit with the reserve.
    if (reserve_bytes_ != 0 && FreeBytes() < reserve_bytes_ + MemtableBytes()) continue;
    lock.Unlock();
    rocksdb::Status s;
    try {
      // RocksDB's recovery path: flushes every memtable and starts a new WAL
      // (the one path allowed to reuse a WAL writer that saw the error).
      s = db_->Resume();
    } catch (...) {
      s = rocksdb::Status::Aborted("exception in Resume");
    }
    lock.Lock();
    if (s.ok()) {
      writes_stopped_.store(false);
      stop_reason_.clear();
      free_seen_at_ns_.store(0);
      if (log_error_) log_error_("rocksdb (" + path_ + "): writes resumed");
    } else if (log_error_) {
      log_error_("rocksdb (" + path_ + "): resume failed: " + s.ToString());
    }
  }
}

Status RocksStore::GuardedWrite(const rocksdb::WriteOptions& options, rocksdb::WriteBatch* batch,
                                size_t bytes, bool deletes_only, std::string_view what) {
  ReaderLock io_lock(&io_mu_);
  if (writes_stopped_.load()) {
    std::string why;
    {
      MutexLock lock(&monitor_mu_);
      why = stop_reason_;
    }
    if (why.rfind("disk full", 0) == 0 || why.find("no space") != std::string::npos) {
      return ResourceExhaustedError(
          "disk full: writes are stopped until space is freed on the disk holding the database; "
          "they resume by themselves");
    }
    return UnavailableError("storage: writes are stopped after an error (" + why +
                            "); they resume when the error clears");
  }
  QVEC_RETURN_IF_ERROR(CheckSpace(bytes, deletes_only));
  // A write RocksDB has stopped (compactions far behind, e.g. skipped for
  // lack of disk space) would block until they catch up: answer instead.
  if (uint64_t stopped = 0;
      db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &stopped) && stopped != 0) {
    return UnavailableError(
        "storage: writes are stalled until compactions catch up (is the disk nearly full?); "
        "retry later");
  }
  rocksdb::Status s = db_->Write(options, batch);
  if (!s.ok()) {
    Status st = Rocks(s, what);
    // Any failed write may have left the WAL writer with an error (see
    // io_mu_); RocksDB stops writes then, and so do we until it resumes.
    if (s.IsIOError() || IsSpaceError(s)) StopWrites(st.message());
    return st;
  }
  return Status::Ok();
}

DiskState RocksStore::GetDiskState() {
  DiskState d;
  d.free_bytes = FreeBytes();
  d.reserve_bytes = reserve_bytes_;
  d.writes_stopped = writes_stopped_.load();
  MutexLock lock(&monitor_mu_);
  d.last_error = stop_reason_;
  return d;
}

std::shared_ptr<const Snapshot> RocksStore::GetSnapshot() {
  return std::make_shared<RocksSnapshot>(db_, db_->GetSnapshot());
}

Status RocksStore::VerifySstChecksums(uint64_t max_bytes) {
  if (max_bytes == 0) return Status::Ok();
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  uint64_t total = 0;
  for (const auto& f : files) total += f.size;
  if (total == 0 || total > max_bytes) return Status::Ok();
  rocksdb::Status s = db_->VerifyChecksum();
  if (s.ok()) return Status::Ok();
  // Any failure here means an SST cannot be read back intact: refuse to serve
  // rather than serve part of the data.
  return DataLossError("database at " + path_ +
                       " is corrupted (SST checksum verification at "
                       "open failed): " +
                       s.ToString());
}

Status RocksStore::UpgradeFromV1() {
  // Version 1 kept one vector per point: codes and originals under
  // BE32(cid) + point key, and a point existed iff its code did. Version 2
  // moves them to field 0 (BE32(cid) + BE16(0) + point key) and writes an
  // empty points record (the engine takes the label from the code and
  // writes its own record at the next load). In batches of 1024 points.
  QVEC_ASSIGN_OR_RETURN(auto records, ListCollections());
  const char* crash_after = std::getenv("QVEC_TEST_CRASH_DURING_UPGRADE");  // test hook
  int batches = 0;
  for (const auto& rec : records) {
    const std::string prefix = codec::CollectionPrefix(rec.id);
    std::vector<std::pair<std::string, std::string>> chunk;  // (point key, code)
    auto flush = [&]() -> Status {
      if (chunk.empty()) return Status::Ok();
      rocksdb::WriteBatch wb;
      for (const auto& [pk, code] : chunk) {
        const std::string old_key = prefix + pk;
        const std::string new_key = codec::VectorKey(rec.id, 0, pk);
        std::string original;
        rocksdb::Status g = db_->Get(rocksdb::ReadOptions(), cf(kOriginals), old_key, &original);
        if (!g.ok() && !g.IsNotFound()) return Rocks(g, "upgrading: reading an original");
        QVEC_RETURN_IF_ERROR(Rocks(wb.Put(cf(kCodes), new_key, code), "upgrading"));
        if (g.ok()) {
          QVEC_RETURN_IF_ERROR(Rocks(wb.Put(cf(kOriginals), new_key, original), "upgrading"));
        }
        QVEC_RETURN_IF_ERROR(Rocks(wb.Put(cf(kPoints), old_key, ""), "upgrading"));
        QVEC_RETURN_IF_ERROR(Rocks(wb.Delete(cf(kCodes), old_key), "upgrading"));
        QVEC_RETURN_IF_ERROR(Rocks(wb.Delete(cf(kOriginals), old_key), "upgrading"));
      }
      chunk.clear();
      QVEC_RETURN_IF_ERROR(Rocks(db_->Write(write_options_, &wb), "upgrading: writing"));
      if (crash_after != nullptr && ++batches >= std::atoi(crash_after)) std::_Exit(137);
      return Status::Ok();
    };
    Status inner;
    QVEC_RETURN_IF_ERROR(
        ScanPrefix(kCodes, prefix, false, nullptr,
                   [&](std::string_view key, const rocksdb::Slice& v, bool* more) -> Status {
                     if (!codec::IsV1PointKeySize(key.size())) return Status::Ok();
                     chunk.emplace_back(std::string(key), v.ToString());
                     if (chunk.size() >= 1024) inner = flush();
                     *more = inner.ok();
                     return Status::Ok();
                   }));
    QVEC_RETURN_IF_ERROR(inner);
    QVEC_RETURN_IF_ERROR(flush());
    // Originals without a code were no point in version 1: drop them.
    rocksdb::WriteBatch orphans;
    QVEC_RETURN_IF_ERROR(ScanPrefix(
        kOriginals, prefix, false, nullptr,
        [&](std::string_view key, const rocksdb::Slice&, bool*) -> Status {
          if (codec::IsV1PointKeySize(key.size())) {
            return Rocks(orphans.Delete(cf(kOriginals), prefix + std::string(key)), "upgrading");
          }
          return Status::Ok();
        }));
    if (orphans.Count() > 0) {
      QVEC_RETURN_IF_ERROR(Rocks(db_->Write(write_options_, &orphans), "upgrading: writing"));
    }
  }
  return Status::Ok();
}

Status RocksStore::CheckFormatVersion() {
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), cf(kMeta), ToSlice(codec::kFormatVersionKey), &value);
  if (s.IsNotFound()) {
    // A fresh database, or one whose creation crashed before the version
    // record was written; either way it must hold nothing else.
    bool empty = true;
    for (int i = 1; i < kNumCfs && empty; ++i) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[i]));
      it->SeekToFirst();
      if (it->Valid()) empty = false;
      if (!it->status().ok()) return Rocks(it->status(), "checking an unversioned database");
    }
    if (!empty) {
      return DataLossError("database at " + path_ + " has data but no format_version record");
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;  // creation is rare; make the version durable immediately
    return Rocks(db_->Put(wo, cf(kMeta), ToSlice(codec::kFormatVersionKey),
                          ToSlice(coding::Fixed32(kFormatVersion))),
                 "writing format_version");
  }
  if (!s.ok()) return Rocks(s, "reading format_version");
  const auto version = coding::ParseFixed32(value);
  if (!version) {
    return DataLossError("database at " + path_ + " has a malformed format_version record (" +
                         std::to_string(value.size()) + " bytes)");
  }
  if (*version == 1 || *version == kFormatUpgradingToV2) {
    // Upgrade in place. The marker goes first (synced) so that a version-1
    // build refuses the half-upgraded database; the conversion is idempotent
    // (a key's length tells its version), so after a crash the next open
    // simply runs it again.
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (*version == 1) {
      QVEC_RETURN_IF_ERROR(Rocks(db_->Put(wo, cf(kMeta), ToSlice(codec::kFormatVersionKey),
                                          ToSlice(coding::Fixed32(kFormatUpgradingToV2))),
                                 "marking the format upgrade"));
    }
    QVEC_RETURN_IF_ERROR(UpgradeFromV1());
    QVEC_RETURN_IF_ERROR(Rocks(db_->Put(wo, cf(kMeta), ToSlice(codec::kFormatVersionKey),
                                        ToSlice(coding::Fixed32(kFormatVersion))),
                               "writing format_version"));
    if (log_error_) log_error_("storage: upgraded the database at " + path_ + " to format 2");
  } else if (*version != kFormatVersion) {
    return FailedPreconditionError(
        "database at " + path_ + " has format version " + std::to_string(*version) +
        "; this build of qvec reads versions 1 and " + std::to_string(kFormatVersion));
  }
  s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), ToSlice(codec::kNextCollectionIdKey), &value);
  MutexLock id_lock(&id_mu_);  // at open, before the store is shared
  if (s.IsNotFound()) {
    next_cid_ = 1;
  } else if (!s.ok()) {
    return Rocks(s, "reading next_collection_id");
  } else {
    const auto next = coding::ParseFixed32(value);
    if (!next || *next == 0) {
      return DataLossError("database at " + path_ + " has a malformed next_collection_id record");
    }
    next_cid_ = *next;
  }
  return Status::Ok();
}

Status RocksStore::Write(WriteBatch* batch) {
  return NoThrow([&]() -> Status {
    if (batch == nullptr) return InvalidArgumentError("Write: null batch");
    BatchData& rep = *rep_of_(batch);
    QVEC_RETURN_IF_ERROR(rep.error);
    if (rep.ops.empty()) return Status::Ok();
    rocksdb::WriteBatch wb(rep.bytes + 64);
    bool deletes_only = true;
    for (const auto& op : rep.ops) {
      deletes_only = deletes_only && op.kind == BatchData::Kind::kDelete;
      rocksdb::Status s = op.kind == BatchData::Kind::kPut
                              ? wb.Put(cf(op.cf), ToSlice(op.key), ToSlice(op.value))
                              : wb.Delete(cf(op.cf), ToSlice(op.key));
      if (!s.ok()) return Rocks(s, "building write batch");
    }
    return GuardedWrite(write_options_, &wb, rep.bytes, deletes_only, "writing batch");
  });
}

StatusOr<uint32_t> RocksStore::AllocateCollectionId() {
  return NoThrow([&]() -> StatusOr<uint32_t> {
    MutexLock lock(&id_mu_);
    if (next_cid_ > codec::kMaxCollectionId) {
      return ResourceExhaustedError("collection ids exhausted (2^32 - 2 collections created)");
    }
    const uint32_t id = next_cid_;
    // Always synced: an id must never be handed out twice, even across a
    // power cut, and allocation is rare.
    rocksdb::WriteOptions wo = write_options_;
    wo.sync = true;
    rocksdb::WriteBatch wb;
    QVEC_RETURN_IF_ERROR(Rocks(
        wb.Put(cf(kMeta), ToSlice(codec::kNextCollectionIdKey), ToSlice(coding::Fixed32(id + 1))),
        "building id batch"));
    QVEC_RETURN_IF_ERROR(GuardedWrite(wo, &wb, 64, false, "allocating a collection id"));
    next_cid_ = id + 1;
    return id;
  });
}

StatusOr<std::vector<CollectionRecord>> RocksStore::ListCollections() {
  return NoThrow([&]() -> StatusOr<std::vector<CollectionRecord>> {
    const std::string lower(codec::kCollectionKeyPrefix);
    std::string upper = lower;
    upper.back() = static_cast<char>(upper.back() + 1);  // "collection0"
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kMeta)));
    std::vector<CollectionRecord> out;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      const std::string_view key = ToView(it->key());
      CollectionRecord rec;
      if (key.size() != lower.size() + codec::kCidBytes ||
          !codec::DecodeCollectionRecord(ToView(it->value()), &rec.name, &rec.meta)) {
        return DataLossError("database at " + path_ + " has a malformed collection record " +
                             codec::PrintableKey(key));
      }
      rec.id = coding::DecodeBigEndian32(key.data() + lower.size());
      out.push_back(std::move(rec));
    }
    QVEC_RETURN_IF_ERROR(Rocks(it->status(), "listing collections"));
    std::sort(out.begin(), out.end(), [](const CollectionRecord& a, const CollectionRecord& b) {
      return a.name != b.name ? a.name < b.name : a.id < b.id;
    });
    return out;
  });
}

StatusOr<std::vector<std::pair<std::string, std::string>>> RocksStore::ListAliases() {
  return NoThrow([&]() -> StatusOr<std::vector<std::pair<std::string, std::string>>> {
    const std::string lower(codec::kAliasKeyPrefix);
    std::string upper = lower;
    upper.back() = static_cast<char>(upper.back() + 1);  // "alias0"
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kMeta)));
    std::vector<std::pair<std::string, std::string>> out;
    for (it->Seek(lower); it->Valid(); it->Next()) {
      out.emplace_back(std::string(ToView(it->key()).substr(lower.size())),
                       std::string(ToView(it->value())));
    }
    QVEC_RETURN_IF_ERROR(Rocks(it->status(), "listing aliases"));
    return out;
  });
}

Status RocksStore::DropCollection(uint32_t cid) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    rocksdb::WriteBatch wb;
    QVEC_RETURN_IF_ERROR(DeleteCollectionKeys(&wb, cid));
    QVEC_RETURN_IF_ERROR(
        Rocks(wb.Delete(cf(kMeta), codec::CollectionRecordKey(cid)), "building drop batch"));
    return GuardedWrite(write_options_, &wb, 64, true, "dropping collection");
  });
}

StatusOr<std::vector<float>> RocksStore::GetOriginal(uint32_t cid, uint16_t field,
                                                     std::string_view key,
                                                     const Snapshot* snapshot) {
  return NoThrow([&]() -> StatusOr<std::vector<float>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    rocksdb::PinnableSlice v;
    rocksdb::Status s =
        db_->Get(ReadAt(snapshot), cf(kOriginals), codec::VectorKey(cid, field, key), &v);
    if (s.IsNotFound()) {
      return NotFoundError("no vector " + std::to_string(field) + " for point " +
                           codec::PrintableKey(key) + " in collection " + std::to_string(cid));
    }
    QVEC_RETURN_IF_ERROR(Rocks(s, "reading an original"));
    if (v.size() % sizeof(float) != 0) {
      return DataLossError("storage: original of point " + codec::PrintableKey(key) + " has " +
                           std::to_string(v.size()) + " bytes, not a multiple of 4");
    }
    std::vector<float> out(v.size() / sizeof(float));
    if (!v.empty()) std::memcpy(out.data(), v.data(), v.size());
    return out;
  });
}

StatusOr<std::optional<std::string>> RocksStore::GetPayload(uint32_t cid, std::string_view key,
                                                            const Snapshot* snapshot) {
  return NoThrow([&]() -> StatusOr<std::optional<std::string>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::string v;
    rocksdb::Status s = db_->Get(ReadAt(snapshot), cf(kPayloads), codec::DataKey(cid, key), &v);
    if (s.IsNotFound()) return std::optional<std::string>();
    QVEC_RETURN_IF_ERROR(Rocks(s, "reading a payload"));
    return std::optional<std::string>(std::move(v));
  });
}

Status RocksStore::MultiGetOriginals(uint32_t cid, uint16_t field,
                                     const std::vector<std::string>& keys, size_t dim, float* out,
                                     const Snapshot* snapshot) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    if (keys.empty()) return Status::Ok();
    if (out == nullptr) return InvalidArgumentError("MultiGetOriginals: null output");
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(codec::VectorKey(cid, field, k));
    std::vector<rocksdb::Slice> slices(full.begin(), full.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(ReadAt(snapshot), cf(kOriginals), keys.size(), slices.data(), values.data(),
                  statuses.data());
    const size_t want = dim * sizeof(float);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) {
        return NotFoundError("point " + codec::PrintableKey(keys[i]) + " has no vector " +
                             std::to_string(field) + " in collection " + std::to_string(cid));
      }
      QVEC_RETURN_IF_ERROR(Rocks(statuses[i], "reading originals"));
      if (values[i].size() != want) {
        return DataLossError("storage: original of point " + codec::PrintableKey(keys[i]) +
                             " in collection " + std::to_string(cid) + " has " +
                             std::to_string(values[i].size()) + " bytes, expected " +
                             std::to_string(want));
      }
      if (want != 0) std::memcpy(out + i * dim, values[i].data(), want);
    }
    return Status::Ok();
  });
}

StatusOr<std::vector<std::optional<std::string>>> RocksStore::MultiGetValues(
    Cf c, const std::vector<std::string>& full_keys, const Snapshot* snapshot,
    std::string_view what) {
  std::vector<std::optional<std::string>> out(full_keys.size());
  if (full_keys.empty()) return out;
  std::vector<rocksdb::Slice> slices(full_keys.begin(), full_keys.end());
  std::vector<rocksdb::PinnableSlice> values(full_keys.size());
  std::vector<rocksdb::Status> statuses(full_keys.size());
  db_->MultiGet(ReadAt(snapshot), cf(c), full_keys.size(), slices.data(), values.data(),
                statuses.data());
  for (size_t i = 0; i < full_keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    QVEC_RETURN_IF_ERROR(Rocks(statuses[i], what));
    out[i].emplace(values[i].data(), values[i].size());
  }
  return out;
}

StatusOr<std::vector<std::optional<std::string>>> RocksStore::MultiGetCodes(
    uint32_t cid, uint16_t field, const std::vector<std::string>& keys,
    const Snapshot* snapshot) {
  return NoThrow([&]() -> StatusOr<std::vector<std::optional<std::string>>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(codec::VectorKey(cid, field, k));
    return MultiGetValues(kCodes, full, snapshot, "reading codes");
  });
}

StatusOr<std::vector<std::optional<std::string>>> RocksStore::MultiGetPayloads(
    uint32_t cid, const std::vector<std::string>& keys, const Snapshot* snapshot) {
  return NoThrow([&]() -> StatusOr<std::vector<std::optional<std::string>>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(codec::DataKey(cid, k));
    return MultiGetValues(kPayloads, full, snapshot, "reading payloads");
  });
}

Status RocksStore::ScanPrefix(
    Cf c, const std::string& prefix, bool fill_cache, const Snapshot* snapshot,
    const std::function<Status(std::string_view, const rocksdb::Slice&, bool*)>& fn) {
  // The upper bound: the prefix incremented as a big-endian number (the
  // prefixes here are collection or field ids, never all 0xff).
  std::string upper = prefix;
  for (size_t i = upper.size(); i-- > 0;) {
    if (static_cast<unsigned char>(upper[i]) != 0xff) {
      upper[i] = static_cast<char>(static_cast<unsigned char>(upper[i]) + 1);
      upper.resize(i + 1);
      break;
    }
  }
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro = ReadAt(snapshot);
  // The iterator reads from `snapshot`, or an implicit one taken at creation,
  // so the whole scan sees one consistent state. The upper bound keeps it
  // inside the prefix (and lets RocksDB skip tombstones/files beyond it).
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = fill_cache;
  ro.adaptive_readahead = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(c)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    bool keep_going = true;
    QVEC_RETURN_IF_ERROR(fn(std::string_view(k.data() + prefix.size(), k.size() - prefix.size()),
                            it->value(), &keep_going));
    if (!keep_going) return Status::Ok();
  }
  return Rocks(it->status(), "scanning");
}

Status RocksStore::ScanPoints(uint32_t cid,
                              const std::function<bool(std::string_view, std::string_view)>& fn) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    return ScanPrefix(kPoints, codec::CollectionPrefix(cid), /*fill_cache=*/false, nullptr,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) {
                        *more = fn(key, ToView(v));
                        return Status::Ok();
                      });
  });
}

Status RocksStore::ScanCodes(uint32_t cid, uint16_t field,
                             const std::function<bool(std::string_view, std::string_view)>& fn) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    return ScanPrefix(kCodes, codec::FieldPrefix(cid, field), /*fill_cache=*/false, nullptr,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) {
                        *more = fn(key, ToView(v));
                        return Status::Ok();
                      });
  });
}

Status RocksStore::ScanPayloads(uint32_t cid,
                                const std::function<bool(std::string_view, std::string_view)>& fn,
                                const Snapshot* snapshot) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    return ScanPrefix(kPayloads, codec::CollectionPrefix(cid), /*fill_cache=*/false, snapshot,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) {
                        *more = fn(key, ToView(v));
                        return Status::Ok();
                      });
  });
}

Status RocksStore::ScanOriginals(uint32_t cid, uint16_t field, size_t dim,
                                 const std::function<bool(std::string_view, const float*)>& fn,
                                 const Snapshot* snapshot) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::vector<float> buf(dim);  // copy: RocksDB values are not float-aligned
    const size_t want = dim * sizeof(float);
    return ScanPrefix(kOriginals, codec::FieldPrefix(cid, field), /*fill_cache=*/false, snapshot,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) -> Status {
                        if (v.size() != want) {
                          return DataLossError("storage: original of point " +
                                               codec::PrintableKey(key) + " in collection " +
                                               std::to_string(cid) + " has " +
                                               std::to_string(v.size()) + " bytes, expected " +
                                               std::to_string(want));
                        }
                        if (want != 0) std::memcpy(buf.data(), v.data(), want);
                        *more = fn(key, buf.data());
                        return Status::Ok();
                      });
  });
}

StatusOr<std::string> RocksStore::GetIndexState(uint32_t cid, std::string_view name) {
  return NoThrow([&]() -> StatusOr<std::string> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::string value;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), cf(kIndexState), codec::DataKey(cid, name), &value);
    if (s.IsNotFound()) {
      return NotFoundError("no index state " + codec::PrintableKey(name) + " for collection " +
                           std::to_string(cid));
    }
    QVEC_RETURN_IF_ERROR(Rocks(s, "reading index state"));
    return value;
  });
}

Status RocksStore::ScanIndexState(
    uint32_t cid, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    return ScanPrefix(kIndexState, codec::CollectionPrefix(cid), /*fill_cache=*/false, nullptr,
                      [&](std::string_view name, const rocksdb::Slice& v, bool* more) {
                        if (name.substr(0, prefix.size()) == prefix) {
                          *more = fn(name, ToView(v));
                        } else {
                          *more = name < prefix;  // sorted: past the prefix, stop
                        }
                        return Status::Ok();
                      });
  });
}

Status RocksStore::Checkpoint(const std::string& dir) {
  return NoThrow([&]() -> Status {
    WriterLock io_lock(&io_mu_);
    if (writes_stopped_.load()) {
      return UnavailableError(
          "snapshots are unavailable while writes are stopped (disk full or a storage error); "
          "they work again once writes resume");
    }
    // The checkpoint flushes the memtables first: refuse unless that fits
    // with the reserve, instead of spending the reserve on it.
    if (reserve_bytes_ != 0) {
      const uint64_t free = FreeBytes(), memtables = MemtableBytes();
      if (free < reserve_bytes_ + 2 * memtables) {
        return ResourceExhaustedError("disk full: a snapshot needs " +
                                      std::to_string((reserve_bytes_ + 2 * memtables) >> 20) +
                                      " MiB free, " + std::to_string(free >> 20) + " MiB are");
      }
    }
    std::error_code ec;
    const auto st = fs::symlink_status(dir, ec);
    if (!ec && fs::exists(st)) return AlreadyExistsError("the snapshot directory exists already");
    rocksdb::Checkpoint* raw = nullptr;
    QVEC_RETURN_IF_ERROR(Rocks(rocksdb::Checkpoint::Create(db_, &raw), "creating a snapshot"));
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // log_size_for_flush = 0: flush all memtables first, so the checkpoint is
    // self-contained SSTs (plus any WAL RocksDB still deems live) and consistent
    // across column families.
    rocksdb::Status s = cp->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
    if (!s.ok()) {
      fs::remove_all(dir, ec);
      fs::remove_all(dir + ".tmp", ec);
    }
    return Rocks(s, "creating a snapshot");
  });
}

// "importing/" + BE(cid) (meta CF): collection `cid` is being imported from a
// snapshot file; its keys have no collection record yet.
std::string ImportMarkerKey(uint32_t cid) {
  std::string out = "importing/";
  coding::PutBigEndian32(&out, cid);
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += "'" + n + "'";
  }
  return out;
}

constexpr std::array<std::pair<Cf, SnapshotEntry>, 5> kExportedCfs = {{
    {kPoints, SnapshotEntry::kPoints},
    {kCodes, SnapshotEntry::kCodes},
    {kOriginals, SnapshotEntry::kOriginals},
    {kPayloads, SnapshotEntry::kPayloads},
    {kIndexState, SnapshotEntry::kIndexState},
}};

StatusOr<SnapshotFileInfo> RocksStore::ExportCollections(
    std::span<const uint32_t> cids, std::span<const std::pair<std::string, std::string>> aliases,
    const std::string& path) {
  return NoThrow([&]() -> StatusOr<SnapshotFileInfo> {
    for (uint32_t cid : cids) QVEC_RETURN_IF_ERROR(CheckCid(cid));
    // One RocksDB snapshot for every read: the file is the state between two
    // committed batches, as a crash would have left it.
    std::shared_ptr<const Snapshot> snap = GetSnapshot();
    const rocksdb::ReadOptions ro = ReadAt(snap.get());
    QVEC_ASSIGN_OR_RETURN(auto writer, SnapshotFileWriter::Create(path, kFormatVersion));
    for (uint32_t cid : cids) {
      std::string record;
      rocksdb::Status rs = db_->Get(ro, cf(kMeta), codec::CollectionRecordKey(cid), &record);
      if (rs.IsNotFound()) return NotFoundError("collection " + std::to_string(cid) + " is gone");
      QVEC_RETURN_IF_ERROR(Rocks(rs, "reading a collection record"));
      std::string name, meta;
      if (!codec::DecodeCollectionRecord(record, &name, &meta)) {
        return DataLossError("malformed collection record " + std::to_string(cid));
      }
      QVEC_RETURN_IF_ERROR(writer->Add(SnapshotEntry::kCollection, name, meta));
      for (const auto& cf_kind : kExportedCfs) {
        const SnapshotEntry kind = cf_kind.second;
        QVEC_RETURN_IF_ERROR(ScanPrefix(cf_kind.first, codec::CollectionPrefix(cid),
                                        /*fill_cache=*/false, snap.get(),
                                        [&](std::string_view key, const rocksdb::Slice& v, bool*) {
                                          return writer->Add(kind, key, ToView(v));
                                        }));
      }
    }
    for (const auto& [alias, collection] : aliases) {
      QVEC_RETURN_IF_ERROR(writer->Add(SnapshotEntry::kAlias, alias, collection));
    }
    QVEC_ASSIGN_OR_RETURN(auto done, writer->Finish());
    return SnapshotFileInfo{std::move(done.first), done.second};
  });
}

StatusOr<std::pair<CollectionRecord, SnapshotFileInfo>> RocksStore::ImportCollection(
    const std::string& path, uint32_t cid, std::string_view pick,
    std::string_view expected_sha256) {
  return NoThrow([&]() -> StatusOr<std::pair<CollectionRecord, SnapshotFileInfo>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    {
      rocksdb::WriteBatch marker;
      QVEC_RETURN_IF_ERROR(Rocks(marker.Put(cf(kMeta), ImportMarkerKey(cid), ""), "importing"));
      QVEC_RETURN_IF_ERROR(GuardedWrite(write_options_, &marker, 64, false, "importing"));
    }
    CollectionRecord rec;
    rec.id = cid;
    // A full snapshot holds several collections: the one named `pick` is
    // imported. Entries are written while `taking`.
    int collections = 0;
    bool taking = false, taken = false;
    rocksdb::WriteBatch wb;
    size_t batch_bytes = 0;
    auto flush = [&]() -> Status {
      if (wb.Count() == 0) return Status::Ok();
      Status s = GuardedWrite(write_options_, &wb, batch_bytes, false, "importing a snapshot");
      wb.Clear();
      batch_bytes = 0;
      return s;
    };
    const std::string prefix = codec::CollectionPrefix(cid);
    // The collection named `pick` is taken; failing that, a file holding a
    // single collection gives that one whatever its name. Which case holds is
    // known only at the second collection entry, so the first is written
    // tentatively and range-deleted again if the file holds more.
    std::vector<std::string> names;
    bool by_name = false;
    auto undo_all = [&]() -> Status {
      taken = false;
      return DeleteCollectionKeys(&wb, cid);
    };
    auto read = ReadSnapshotFile(
        path, expected_sha256, kFormatVersion,
        [&](SnapshotEntry kind, std::string_view key, std::string_view value) -> Status {
          Cf c = kDefault;
          switch (kind) {
            case SnapshotEntry::kCollection:
              ++collections;
              names.emplace_back(key);
              taking = false;
              if (by_name) return Status::Ok();
              if (key == pick) {
                if (taken) QVEC_RETURN_IF_ERROR(undo_all());
                by_name = true;
              } else if (collections == 1) {
                // tentative
              } else {
                if (taken) QVEC_RETURN_IF_ERROR(undo_all());
                return Status::Ok();
              }
              taking = taken = true;
              rec.name = std::string(key);
              rec.meta = std::string(value);
              return Status::Ok();
            case SnapshotEntry::kAlias:
              return Status::Ok();  // aliases are not part of a collection
            case SnapshotEntry::kPoints:
              c = kPoints;
              break;
            case SnapshotEntry::kCodes:
              c = kCodes;
              break;
            case SnapshotEntry::kOriginals:
              c = kOriginals;
              break;
            case SnapshotEntry::kPayloads:
              c = kPayloads;
              break;
            case SnapshotEntry::kIndexState:
              c = kIndexState;
              break;
            case SnapshotEntry::kEnd:
              return Status::Ok();
          }
          if (!taking) return Status::Ok();
          std::string k = prefix;
          k.append(key);
          QVEC_RETURN_IF_ERROR(Rocks(wb.Put(cf(c), ToSlice(k), ToSlice(value)), "importing"));
          batch_bytes += k.size() + value.size();
          if (batch_bytes >= (size_t{8} << 20)) return flush();
          return Status::Ok();
        });
    Status s = read.ok() ? flush() : read.status();
    if (s.ok() && !taken) {
      s = collections == 0
              ? InvalidArgumentError("the snapshot holds no collection")
              : NotFoundError("the snapshot holds several collections and none named '" +
                              std::string(pick) + "' (it holds " + JoinNames(names) + ")");
    }
    if (!s.ok()) {
      if (Status undo = AbortImport(cid); !undo.ok() && log_error_) {
        log_error_("removing a failed import: " + undo.ToString());
      }
      return s;
    }
    return std::make_pair(std::move(rec), SnapshotFileInfo{read->sha256, read->size_bytes});
  });
}

Status RocksStore::CommitImport(uint32_t cid, std::string_view name, std::string_view meta,
                                std::optional<uint32_t> replaced) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    rocksdb::WriteBatch wb;
    if (replaced) {
      QVEC_RETURN_IF_ERROR(CheckCid(*replaced));
      QVEC_RETURN_IF_ERROR(DeleteCollectionKeys(&wb, *replaced));
      QVEC_RETURN_IF_ERROR(
          Rocks(wb.Delete(cf(kMeta), codec::CollectionRecordKey(*replaced)), "committing"));
    }
    QVEC_RETURN_IF_ERROR(Rocks(wb.Put(cf(kMeta), codec::CollectionRecordKey(cid),
                                      codec::EncodeCollectionRecord(name, meta)),
                               "committing an import"));
    QVEC_RETURN_IF_ERROR(Rocks(wb.Delete(cf(kMeta), ImportMarkerKey(cid)), "committing"));
    return GuardedWrite(write_options_, &wb, 256 + meta.size(), false, "committing an import");
  });
}

Status RocksStore::AbortImport(uint32_t cid) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    rocksdb::WriteBatch wb;
    QVEC_RETURN_IF_ERROR(DeleteCollectionKeys(&wb, cid));
    QVEC_RETURN_IF_ERROR(Rocks(wb.Delete(cf(kMeta), ImportMarkerKey(cid)), "removing an import"));
    return GuardedWrite(write_options_, &wb, 64, true, "removing an import");
  });
}

Status RocksStore::RemoveInterruptedImports() {
  const std::string lower = "importing/";
  std::string upper = lower;
  upper.back() = static_cast<char>(upper.back() + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  std::vector<uint32_t> cids;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(kMeta)));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      const std::string_view key = ToView(it->key());
      if (key.size() == lower.size() + codec::kCidBytes) {
        cids.push_back(coding::DecodeBigEndian32(key.data() + lower.size()));
      }
    }
    QVEC_RETURN_IF_ERROR(Rocks(it->status(), "listing interrupted imports"));
  }
  for (uint32_t cid : cids) {
    rocksdb::WriteBatch wb;
    QVEC_RETURN_IF_ERROR(DeleteCollectionKeys(&wb, cid));
    QVEC_RETURN_IF_ERROR(Rocks(wb.Delete(cf(kMeta), ImportMarkerKey(cid)), "removing an import"));
    QVEC_RETURN_IF_ERROR(Rocks(db_->Write(write_options_, &wb), "removing an interrupted import"));
  }
  return Status::Ok();
}

uint64_t RocksStore::ApproximateDiskBytes() {
  try {
    uint64_t total = 0;
    for (int i = 0; i < kNumCfs; ++i) {
      uint64_t v = 0;
      if (db_->GetIntProperty(cfs_[i], rocksdb::DB::Properties::kTotalSstFilesSize, &v)) total += v;
    }
    rocksdb::VectorLogPtr wals;
    if (db_->GetSortedWalFiles(wals).ok()) {
      for (const auto& w : wals) total += w->SizeFileBytes();
    }
    return total;
  } catch (...) {
    return 0;
  }
}

}  // namespace

StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path, const StoreOptions& options) {
  return NoThrow([&]() -> StatusOr<std::unique_ptr<Store>> {
    QVEC_RETURN_IF_ERROR(options.Validate());
    if (path.empty()) return InvalidArgumentError("Store::Open: empty path");
    auto rep_of = [](WriteBatch* b) -> BatchData* { return b->rep_.get(); };
    auto store = std::make_unique<RocksStore>(path, options, +rep_of);
    QVEC_RETURN_IF_ERROR(store->OpenDb(options));
    return std::unique_ptr<Store>(std::move(store));
  });
}

}  // namespace qvec::storage
