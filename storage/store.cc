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
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/table.h>
#include <rocksdb/transaction_log.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <new>
#include <utility>

#include "key_codec.h"  // NOLINT(build/include_subdir)

namespace qvec::storage {
namespace {

namespace fs = std::filesystem;

// Column family indexes into RocksStore::cfs_ and the names on disk.
enum Cf : int { kDefault = 0, kMeta, kCodes, kOriginals, kPayloads, kIndexState, kNumCfs };
constexpr std::array<const char*, kNumCfs> kCfNames = {"default",   "meta",     "codes",
                                                       "originals", "payloads", "index_state"};

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }
std::string_view ToView(const rocksdb::Slice& s) { return std::string_view(s.data(), s.size()); }

// Converts a RocksDB status. `path` names the database in messages.
Status FromRocks(const rocksdb::Status& s, const std::string& path, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg(what);
  msg += " (database at ";
  msg += path;
  msg += "): ";
  msg += s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kCorruption:
      return DataLossError("database at " + path + " is corrupted: " + s.ToString());
    case rocksdb::Status::kNotFound:
      return NotFoundError(msg);
    case rocksdb::Status::kInvalidArgument:
      return InvalidArgumentError(msg);
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
    return ResourceExhaustedError("storage: out of memory");
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
  size_t count = 0;  // public mutations (PutPoint counts once)
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
      Check(ResourceExhaustedError("storage: out of memory building a write batch"));
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

void WriteBatch::PutPoint(uint32_t cid, std::string_view key, std::string_view code,
                          const float* original, size_t dim,
                          std::optional<std::string_view> payload) {
  if (!rep_->Check(CheckCid(cid))) return;
  if (original == nullptr && dim != 0) {
    rep_->Check(
        InvalidArgumentError("PutPoint: original is null but dim is " + std::to_string(dim)));
    return;
  }
  rep_->Guarded([&] {
    std::string k = codec::DataKey(cid, key);
    std::string orig(dim * sizeof(float), '\0');
    if (dim != 0) std::memcpy(orig.data(), original, dim * sizeof(float));  // raw LE floats
    rep_->Add(BatchData::Kind::kPut, kCodes, k, std::string(code));
    rep_->Add(BatchData::Kind::kPut, kOriginals, k, std::move(orig));
    if (payload.has_value()) {
      rep_->Add(BatchData::Kind::kPut, kPayloads, std::move(k), std::string(*payload));
    } else {
      rep_->Add(BatchData::Kind::kDelete, kPayloads, std::move(k));
    }
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

void WriteBatch::PutCode(uint32_t cid, std::string_view key, std::string_view code) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    rep_->Add(BatchData::Kind::kPut, kCodes, codec::DataKey(cid, key), std::string(code));
  });
}

void WriteBatch::DeletePoint(uint32_t cid, std::string_view key) {
  if (!rep_->Check(CheckCid(cid))) return;
  rep_->Guarded([&] {
    std::string k = codec::DataKey(cid, key);
    rep_->Add(BatchData::Kind::kDelete, kCodes, k);
    rep_->Add(BatchData::Kind::kDelete, kOriginals, k);
    rep_->Add(BatchData::Kind::kDelete, kPayloads, std::move(k));
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

size_t WriteBatch::Count() const { return rep_->count; }

// ---------------------------------------------------------------------------
// RocksStore
// ---------------------------------------------------------------------------
namespace {

class RocksStore final : public Store {
 public:
  // WriteBatch's representation is private to WriteBatch and its friend
  // Store; Store::Open hands us an accessor (a lambda defined in a Store
  // member function has Store's access rights) so store.h stays unchanged.
  using RepAccessor = BatchData* (*)(WriteBatch*);

  RocksStore(std::string path, const StoreOptions& options, RepAccessor rep_of)
      : path_(std::move(path)), rep_of_(rep_of) {
    write_options_.sync = options.sync_writes;
    write_options_.disableWAL = false;  // never: the WAL is our only crash protection
  }

  ~RocksStore() override {
    // Handles must be destroyed before the DB; Close() flushes memtables
    // (avoid_flush_during_shutdown = false) so the next Open replays no WAL.
    // Errors cannot be reported from a destructor; the WAL still holds the data.
    try {
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
  Status DropCollection(uint32_t cid) override;
  StatusOr<StoredPoint> GetPoint(uint32_t cid, std::string_view key, bool with_code,
                                 bool with_original, bool with_payload) override;
  Status MultiGetOriginals(uint32_t cid, const std::vector<std::string>& keys, size_t dim,
                           float* out) override;
  StatusOr<std::vector<std::optional<std::string>>> MultiGetPayloads(
      uint32_t cid, const std::vector<std::string>& keys) override;
  Status ScanCodes(uint32_t cid,
                   const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status ScanPayloads(uint32_t cid,
                      const std::function<bool(std::string_view, std::string_view)>& fn) override;
  Status ScanOriginals(uint32_t cid, size_t dim,
                       const std::function<bool(std::string_view, const float*)>& fn) override;
  StatusOr<std::string> GetIndexState(uint32_t cid, std::string_view name) override;
  Status Checkpoint(const std::string& dir) override;
  uint64_t ApproximateDiskBytes() override;

 private:
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return cfs_[c]; }
  Status Rocks(const rocksdb::Status& s, std::string_view what) const {
    return FromRocks(s, path_, what);
  }
  Status CheckFormatVersion();
  // Verifies the checksums of all SST files if they total at most max_bytes.
  Status VerifySstChecksums(uint64_t max_bytes);
  // Iterates the keys of `cid` in `c` in order, calling fn(point key, value).
  Status ScanPrefix(
      Cf c, uint32_t cid, bool fill_cache,
      const std::function<Status(std::string_view, const rocksdb::Slice&, bool*)>& fn);

  const std::string path_;
  const RepAccessor rep_of_;
  rocksdb::WriteOptions write_options_;
  std::shared_ptr<rocksdb::Cache> cache_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // all opened, incl. unknown CFs
  std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> cfs_{};

  std::mutex id_mu_;       // guards next_cid_ and serializes its durable update
  uint32_t next_cid_ = 1;  // mirrors meta "next_collection_id"
};

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
  // Flush memtables on Close so a clean restart replays no WAL.
  db_opts.avoid_flush_during_shutdown = false;
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

  std::vector<std::string> names(kCfNames.begin(), kCfNames.end());
  if (exists) {
    // Open any extra CF a newer build may have added; RocksDB refuses to open
    // a DB without listing all of them (the version check then decides).
    std::vector<std::string> on_disk;
    rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_opts, path_, &on_disk);
    if (!s.ok()) return Rocks(s, "listing column families");
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
    return Rocks(s, "opening");
  }
  for (int i = 0; i < kNumCfs; ++i) cfs_[i] = handles_[i];
  QVEC_RETURN_IF_ERROR(CheckFormatVersion());
  return VerifySstChecksums(options.verify_checksums_on_open_max_bytes);
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
                          ToSlice(codec::EncodeFixed32LE(kFormatVersion))),
                 "writing format_version");
  }
  if (!s.ok()) return Rocks(s, "reading format_version");
  const auto version = codec::DecodeFixed32LE(value);
  if (!version) {
    return DataLossError("database at " + path_ + " has a malformed format_version record (" +
                         std::to_string(value.size()) + " bytes)");
  }
  if (*version != kFormatVersion) {
    return FailedPreconditionError(
        "database at " + path_ + " has format version " + std::to_string(*version) +
        "; this build of qvec reads version " + std::to_string(kFormatVersion));
  }
  s = db_->Get(rocksdb::ReadOptions(), cf(kMeta), ToSlice(codec::kNextCollectionIdKey), &value);
  if (s.IsNotFound()) {
    next_cid_ = 1;
  } else if (!s.ok()) {
    return Rocks(s, "reading next_collection_id");
  } else {
    const auto next = codec::DecodeFixed32LE(value);
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
    for (const auto& op : rep.ops) {
      rocksdb::Status s = op.kind == BatchData::Kind::kPut
                              ? wb.Put(cf(op.cf), ToSlice(op.key), ToSlice(op.value))
                              : wb.Delete(cf(op.cf), ToSlice(op.key));
      if (!s.ok()) return Rocks(s, "building write batch");
    }
    return Rocks(db_->Write(write_options_, &wb), "writing batch");
  });
}

StatusOr<uint32_t> RocksStore::AllocateCollectionId() {
  return NoThrow([&]() -> StatusOr<uint32_t> {
    std::lock_guard<std::mutex> lock(id_mu_);
    if (next_cid_ > codec::kMaxCollectionId) {
      return ResourceExhaustedError("collection ids exhausted in database at " + path_);
    }
    const uint32_t id = next_cid_;
    // Always synced: an id must never be handed out twice, even across a
    // power cut, and allocation is rare.
    rocksdb::WriteOptions wo = write_options_;
    wo.sync = true;
    QVEC_RETURN_IF_ERROR(Rocks(db_->Put(wo, cf(kMeta), ToSlice(codec::kNextCollectionIdKey),
                                        ToSlice(codec::EncodeFixed32LE(id + 1))),
                               "allocating a collection id"));
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
      rec.id = codec::DecodeBigEndian32(key.data() + lower.size());
      out.push_back(std::move(rec));
    }
    QVEC_RETURN_IF_ERROR(Rocks(it->status(), "listing collections"));
    std::sort(out.begin(), out.end(), [](const CollectionRecord& a, const CollectionRecord& b) {
      return a.name != b.name ? a.name < b.name : a.id < b.id;
    });
    return out;
  });
}

Status RocksStore::DropCollection(uint32_t cid) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    const std::string begin = codec::CollectionPrefix(cid);
    const std::string end = codec::CollectionPrefix(cid + 1);
    rocksdb::WriteBatch wb;
    for (Cf c : {kCodes, kOriginals, kPayloads, kIndexState}) {
      QVEC_RETURN_IF_ERROR(Rocks(wb.DeleteRange(cf(c), begin, end), "building drop batch"));
    }
    QVEC_RETURN_IF_ERROR(
        Rocks(wb.Delete(cf(kMeta), codec::CollectionRecordKey(cid)), "building drop batch"));
    return Rocks(db_->Write(write_options_, &wb), "dropping collection");
  });
}

StatusOr<StoredPoint> RocksStore::GetPoint(uint32_t cid, std::string_view key, bool with_code,
                                           bool with_original, bool with_payload) {
  return NoThrow([&]() -> StatusOr<StoredPoint> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    const std::string k = codec::DataKey(cid, key);
    // One batched MultiGet across CFs reads them all from one consistent view.
    // The code is always read: its presence defines the point's existence.
    std::array<rocksdb::ColumnFamilyHandle*, 3> cfs{};
    std::array<int, 3> which{};
    size_t n = 0;
    cfs[n] = cf(kCodes), which[n++] = kCodes;
    if (with_original) cfs[n] = cf(kOriginals), which[n++] = kOriginals;
    if (with_payload) cfs[n] = cf(kPayloads), which[n++] = kPayloads;
    std::array<rocksdb::Slice, 3> keys = {rocksdb::Slice(k), rocksdb::Slice(k), rocksdb::Slice(k)};
    std::array<rocksdb::PinnableSlice, 3> values;
    std::array<rocksdb::Status, 3> statuses;
    db_->MultiGet(rocksdb::ReadOptions(), n, cfs.data(), keys.data(), values.data(),
                  statuses.data());
    StoredPoint p;
    for (size_t i = 0; i < n; ++i) {
      const rocksdb::Status& s = statuses[i];
      if (s.IsNotFound()) {
        if (which[i] == kCodes) {
          return NotFoundError("point " + codec::PrintableKey(key) + " not found in collection " +
                               std::to_string(cid));
        }
        if (which[i] == kOriginals) {
          return DataLossError("database at " + path_ + ": point " + codec::PrintableKey(key) +
                               " of collection " + std::to_string(cid) + " has no original");
        }
        continue;  // no payload
      }
      QVEC_RETURN_IF_ERROR(Rocks(s, "reading a point"));
      const rocksdb::Slice v = values[i];
      if (which[i] == kCodes) {
        if (with_code) p.code.assign(v.data(), v.size());
      } else if (which[i] == kOriginals) {
        if (v.size() % sizeof(float) != 0) {
          return DataLossError("database at " + path_ + ": original of point " +
                               codec::PrintableKey(key) + " has " + std::to_string(v.size()) +
                               " bytes, not a multiple of 4");
        }
        p.original.resize(v.size() / sizeof(float));
        if (!v.empty()) std::memcpy(p.original.data(), v.data(), v.size());
      } else {
        p.payload.emplace(v.data(), v.size());
      }
    }
    return p;
  });
}

Status RocksStore::MultiGetOriginals(uint32_t cid, const std::vector<std::string>& keys, size_t dim,
                                     float* out) {
  return NoThrow([&]() -> Status {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    if (keys.empty()) return Status::Ok();
    if (out == nullptr) return InvalidArgumentError("MultiGetOriginals: null output");
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(codec::DataKey(cid, k));
    std::vector<rocksdb::Slice> slices(full.begin(), full.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions(), cf(kOriginals), keys.size(), slices.data(), values.data(),
                  statuses.data());
    const size_t want = dim * sizeof(float);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) {
        return NotFoundError("point " + codec::PrintableKey(keys[i]) + " not found in collection " +
                             std::to_string(cid));
      }
      QVEC_RETURN_IF_ERROR(Rocks(statuses[i], "reading originals"));
      if (values[i].size() != want) {
        return DataLossError("database at " + path_ + ": original of point " +
                             codec::PrintableKey(keys[i]) + " in collection " +
                             std::to_string(cid) + " has " + std::to_string(values[i].size()) +
                             " bytes, expected " + std::to_string(want));
      }
      if (want != 0) std::memcpy(out + i * dim, values[i].data(), want);
    }
    return Status::Ok();
  });
}

StatusOr<std::vector<std::optional<std::string>>> RocksStore::MultiGetPayloads(
    uint32_t cid, const std::vector<std::string>& keys) {
  return NoThrow([&]() -> StatusOr<std::vector<std::optional<std::string>>> {
    QVEC_RETURN_IF_ERROR(CheckCid(cid));
    std::vector<std::optional<std::string>> out(keys.size());
    if (keys.empty()) return out;
    std::vector<std::string> full;
    full.reserve(keys.size());
    for (const auto& k : keys) full.push_back(codec::DataKey(cid, k));
    std::vector<rocksdb::Slice> slices(full.begin(), full.end());
    std::vector<rocksdb::PinnableSlice> values(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db_->MultiGet(rocksdb::ReadOptions(), cf(kPayloads), keys.size(), slices.data(), values.data(),
                  statuses.data());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (statuses[i].IsNotFound()) continue;
      QVEC_RETURN_IF_ERROR(Rocks(statuses[i], "reading payloads"));
      out[i].emplace(values[i].data(), values[i].size());
    }
    return out;
  });
}

Status RocksStore::ScanPrefix(
    Cf c, uint32_t cid, bool fill_cache,
    const std::function<Status(std::string_view, const rocksdb::Slice&, bool*)>& fn) {
  QVEC_RETURN_IF_ERROR(CheckCid(cid));
  const std::string lower = codec::CollectionPrefix(cid);
  const std::string upper = codec::CollectionPrefix(cid + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  // The iterator reads from an implicit snapshot taken at creation, so the
  // whole scan sees one consistent state. The upper bound keeps it inside the
  // collection (and lets RocksDB skip tombstones/files beyond it).
  ro.iterate_upper_bound = &upper_slice;
  ro.fill_cache = fill_cache;
  ro.adaptive_readahead = true;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, cf(c)));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    bool keep_going = true;
    QVEC_RETURN_IF_ERROR(
        fn(std::string_view(k.data() + codec::kCidBytes, k.size() - codec::kCidBytes), it->value(),
           &keep_going));
    if (!keep_going) return Status::Ok();
  }
  return Rocks(it->status(), "scanning");
}

Status RocksStore::ScanCodes(uint32_t cid,
                             const std::function<bool(std::string_view, std::string_view)>& fn) {
  return NoThrow([&]() -> Status {
    return ScanPrefix(kCodes, cid, /*fill_cache=*/false,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) {
                        *more = fn(key, ToView(v));
                        return Status::Ok();
                      });
  });
}

Status RocksStore::ScanPayloads(uint32_t cid,
                                const std::function<bool(std::string_view, std::string_view)>& fn) {
  return NoThrow([&]() -> Status {
    return ScanPrefix(kPayloads, cid, /*fill_cache=*/false,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) {
                        *more = fn(key, ToView(v));
                        return Status::Ok();
                      });
  });
}

Status RocksStore::ScanOriginals(uint32_t cid, size_t dim,
                                 const std::function<bool(std::string_view, const float*)>& fn) {
  return NoThrow([&]() -> Status {
    std::vector<float> buf(dim);  // copy: RocksDB values are not float-aligned
    const size_t want = dim * sizeof(float);
    return ScanPrefix(kOriginals, cid, /*fill_cache=*/false,
                      [&](std::string_view key, const rocksdb::Slice& v, bool* more) -> Status {
                        if (v.size() != want) {
                          return DataLossError("database at " + path_ + ": original of point " +
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

Status RocksStore::Checkpoint(const std::string& dir) {
  return NoThrow([&]() -> Status {
    std::error_code ec;
    const auto st = fs::symlink_status(dir, ec);
    if (!ec && fs::exists(st)) return AlreadyExistsError("checkpoint directory " + dir + " exists");
    rocksdb::Checkpoint* raw = nullptr;
    QVEC_RETURN_IF_ERROR(Rocks(rocksdb::Checkpoint::Create(db_, &raw), "creating checkpoint"));
    std::unique_ptr<rocksdb::Checkpoint> cp(raw);
    // log_size_for_flush = 0: flush all memtables first, so the checkpoint is
    // self-contained SSTs (plus any WAL RocksDB still deems live) and consistent
    // across column families.
    return Rocks(cp->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                 "creating checkpoint in " + dir);
  });
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
