// The engine's implementation of qvec::Database: collection lifecycle on top
// of one storage::Store.
#include <algorithm>
#include <map>
#include <set>
#include <vector>

#include "common/mutex.h"
#include "engine/build_pool.h"
#include "engine/collection_impl.h"
#include "engine/collection_meta.h"
#include "engine/engine_log.h"
#include "qvec/database.h"
#include "storage/store.h"

namespace qvec {
namespace {

class DatabaseImpl final : public Database {
 public:
  DatabaseImpl(std::unique_ptr<storage::Store> store, const DatabaseOptions& options,
               std::shared_ptr<Logger> logger)
      : store_(std::move(store)),
        options_(options),
        logger_(std::move(logger)),
        log_(logger_),
        builds_(options.build_threads) {}

  ~DatabaseImpl() override {
    std::map<std::string, std::shared_ptr<engine::CollectionImpl>> collections;
    std::vector<std::shared_ptr<engine::CollectionImpl>> dropped;
    {
      MutexLock lock(&mu_);
      collections.swap(collections_);
      dropped.swap(dropped_);
    }
    // Stop builds (they notice within one k-means iteration or one chunk),
    // then release every collection's storage snapshot before the store
    // closes.
    for (auto& [name, c] : collections) c->MarkDropped();
    builds_.Shutdown();
    for (auto& [name, c] : collections) c->Close();
    for (auto& c : dropped) c->Close();
  }

  // At open, before the database is shared: loads every collection (the
  // maps are filled under mu_ only for the analysis).
  Status LoadAll() QVEC_EXCLUDES(mu_) {
    QVEC_ASSIGN_OR_RETURN(auto records, store_->ListCollections());
    for (const auto& rec : records) {
      auto config = engine::DecodeCollectionConfig(rec.meta);
      if (!config.ok()) {
        // Without its config a collection cannot be served, but the others
        // can: keep its name taken and report it, never refuse to open.
        log_.Error("collection '{}' cannot be opened: its stored config is damaged ({})", rec.name,
                   config.status().ToString());
        MutexLock lock(&mu_);
        damaged_[rec.name] = {rec.id, config.status().message()};
        continue;
      }
      auto coll = engine::CollectionImpl::Create(
          store_.get(), rec.id, rec.name, std::move(config->config), std::move(config->field_ids),
          config->legacy, options_.background_indexing ? &builds_ : nullptr, logger_);
      if (!coll.ok()) {
        log_.Error("collection '{}' cannot be opened: {}", rec.name, coll.status().ToString());
        MutexLock lock(&mu_);
        damaged_[rec.name] = {rec.id, coll.status().message()};
        continue;
      }
      QVEC_RETURN_IF_ERROR((*coll)->Load().Annotate("collection '" + rec.name + "'"));
      if (Status built = (*coll)->BuildPayloadIndexes(); !built.ok()) {
        // Filters still answer: the field is built again at their first use.
        log_.Warn("collection '{}': payload indexes not built at open: {}", rec.name,
                  built.ToString());
      }
      (*coll)->MaybeStartTraining();
      MutexLock lock(&mu_);
      collections_[rec.name] = std::move(*coll);
    }
    // Aliases; one left by a drop that crashed before removing it (its
    // collection is gone) is removed now.
    QVEC_ASSIGN_OR_RETURN(auto aliases, store_->ListAliases());
    storage::WriteBatch dangling;
    {
      MutexLock lock(&mu_);
      for (auto& [alias, collection] : aliases) {
        if (collections_.count(collection) || damaged_.count(collection)) {
          aliases_[alias] = collection;
        } else {
          dangling.DeleteAlias(alias);
        }
      }
    }
    if (dangling.Count() > 0) {
      if (Status s = store_->Write(&dangling); !s.ok()) {
        log_.Warn("aliases of dropped collections not removed (removed at the next open): {}",
                  s.ToString());
      }
    }
    return Status::Ok();
  }

  Status CreateCollection(const std::string& name, const CollectionConfig& config) override {
    QVEC_RETURN_IF_ERROR(ValidateCollectionName(name));
    QVEC_RETURN_IF_ERROR(config.Validate());
    // Creates and drops run one at a time; their storage writes happen
    // outside mu_, so that they never hold up requests on other collections.
    MutexLock ddl(&ddl_mu_);
    {
      MutexLock lock(&mu_);
      if (collections_.count(name) || damaged_.count(name)) {
        return AlreadyExistsError("collection '" + name + "' already exists");
      }
      if (auto a = aliases_.find(name); a != aliases_.end()) {
        return AlreadyExistsError("'" + name + "' is an alias of collection '" + a->second + "'");
      }
    }
    QVEC_ASSIGN_OR_RETURN(uint32_t cid, store_->AllocateCollectionId());
    std::map<std::string, uint16_t> field_ids = engine::AssignFieldIds(config);
    const std::string meta = engine::EncodeCollectionConfig(config, field_ids);
    QVEC_ASSIGN_OR_RETURN(
        auto coll,
        engine::CollectionImpl::Create(store_.get(), cid, name, config, std::move(field_ids),
                                       /*legacy_state=*/false,
                                       options_.background_indexing ? &builds_ : nullptr, logger_));
    storage::WriteBatch batch;
    batch.PutCollection(cid, name, meta);
    QVEC_RETURN_IF_ERROR(store_->Write(&batch));
    MutexLock lock(&mu_);
    collections_[name] = std::move(coll);
    return Status::Ok();
  }

  StatusOr<std::shared_ptr<Collection>> GetCollection(const std::string& name) override {
    MutexLock lock(&mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) {
      if (auto a = aliases_.find(name); a != aliases_.end()) it = collections_.find(a->second);
    }
    if (it == collections_.end()) {
      if (auto d = damaged_.find(name); d != damaged_.end()) {
        return FailedPreconditionError("collection '" + name +
                                       "' is damaged and cannot be served (" + d->second.reason +
                                       "); drop it to remove it");
      }
      return NotFoundError("collection '" + name + "' does not exist");
    }
    return std::shared_ptr<Collection>(it->second);
  }

  Status DropCollection(const std::string& name) override {
    MutexLock ddl(&ddl_mu_);
    std::shared_ptr<engine::CollectionImpl> coll;
    uint32_t cid = 0;
    {
      MutexLock lock(&mu_);
      auto it = collections_.find(name);
      if (it != collections_.end()) {
        coll = it->second;
        cid = coll->id();
      } else if (auto d = damaged_.find(name); d != damaged_.end()) {
        cid = d->second.cid;
      } else if (auto a = aliases_.find(name); a != aliases_.end()) {
        return InvalidArgumentError("'" + name + "' is an alias of collection '" + a->second +
                                    "': drop the collection by its name, or delete the alias");
      } else {
        return NotFoundError("collection '" + name + "' does not exist");
      }
    }
    // One small batch (range deletions). The collection's own work (a
    // running build) is not waited for: MarkDropped stops it, and it
    // releases the collection when it returns, on its own thread.
    QVEC_RETURN_IF_ERROR(store_->DropCollection(cid));
    // Its aliases: a second small write (if it is lost in a crash, the open
    // removes aliases whose collection is gone).
    storage::WriteBatch alias_batch;
    std::vector<std::string> its_aliases;
    {
      MutexLock lock(&mu_);
      for (const auto& [alias, collection] : aliases_) {
        if (collection == name) its_aliases.push_back(alias);
      }
    }
    for (const std::string& alias : its_aliases) alias_batch.DeleteAlias(alias);
    Status aliases_removed = its_aliases.empty() ? Status::Ok() : store_->Write(&alias_batch);
    if (!aliases_removed.ok()) {
      log_.Warn("aliases of dropped collection '{}' not removed on disk (removed at the next "
                "open): {}", name, aliases_removed.ToString());
    }
    MutexLock lock(&mu_);
    for (const std::string& alias : its_aliases) aliases_.erase(alias);
    if (coll == nullptr) {
      damaged_.erase(name);
      return Status::Ok();
    }
    coll->MarkDropped();
    collections_.erase(name);
    dropped_.push_back(coll);
    // Forget dropped collections nobody uses any more.
    std::erase_if(dropped_, [](const auto& c) { return c.use_count() == 1; });
    return Status::Ok();
  }

  Status UpdateCollection(const std::string& name, const CollectionConfig& next) override {
    // ddl_mu_: a drop or recovery cannot remove the collection's record
    // between the update's checks and its write of that record.
    MutexLock ddl(&ddl_mu_);
    std::shared_ptr<engine::CollectionImpl> coll;
    {
      MutexLock lock(&mu_);
      QVEC_ASSIGN_OR_RETURN(coll, FindLocked(name));
    }
    QVEC_RETURN_IF_ERROR(coll->UpdateConfig(next));
    coll->MaybeStartTraining();
    return Status::Ok();
  }

  std::vector<std::string> ListCollections() override {
    MutexLock lock(&mu_);
    std::vector<std::string> names;
    names.reserve(collections_.size() + damaged_.size());
    for (const auto& [name, c] : collections_) names.push_back(name);
    for (const auto& [name, d] : damaged_) names.push_back(name);
    std::sort(names.begin(), names.end());
    return names;
  }

  Status UpdateAliases(std::span<const AliasOperation> ops) override {
    MutexLock ddl(&ddl_mu_);  // no collection is created or dropped meanwhile
    std::map<std::string, std::string> before, next;
    std::set<std::string> collections;
    {
      MutexLock lock(&mu_);
      before = aliases_;
      for (const auto& [name, c] : collections_) collections.insert(name);
      for (const auto& [name, d] : damaged_) collections.insert(name);
    }
    next = before;
    auto check_new_name = [&](const std::string& alias) -> Status {
      QVEC_RETURN_IF_ERROR(ValidateCollectionName(alias).Annotate("alias"));
      if (collections.count(alias)) {
        return AlreadyExistsError("'" + alias + "' is the name of a collection");
      }
      if (next.count(alias)) return AlreadyExistsError("alias '" + alias + "' already exists");
      return Status::Ok();
    };
    for (const AliasOperation& op : ops) {
      switch (op.kind) {
        case AliasOperation::Kind::kCreate:
          QVEC_RETURN_IF_ERROR(check_new_name(op.alias));
          if (!collections.count(op.collection)) {
            return NotFoundError("collection '" + op.collection + "' does not exist");
          }
          next[op.alias] = op.collection;
          break;
        case AliasOperation::Kind::kDelete:
          if (next.erase(op.alias) == 0) {
            return NotFoundError("alias '" + op.alias + "' does not exist");
          }
          break;
        case AliasOperation::Kind::kRename: {
          auto it = next.find(op.alias);
          if (it == next.end()) return NotFoundError("alias '" + op.alias + "' does not exist");
          const std::string collection = it->second;
          next.erase(it);
          QVEC_RETURN_IF_ERROR(check_new_name(op.new_alias));
          next[op.new_alias] = collection;
          break;
        }
      }
    }
    storage::WriteBatch batch;
    for (const auto& [alias, collection] : before) {
      if (!next.count(alias)) batch.DeleteAlias(alias);
    }
    for (const auto& [alias, collection] : next) {
      auto it = before.find(alias);
      if (it == before.end() || it->second != collection) batch.PutAlias(alias, collection);
    }
    if (batch.Count() > 0) QVEC_RETURN_IF_ERROR(store_->Write(&batch));
    MutexLock lock(&mu_);
    aliases_ = std::move(next);
    return Status::Ok();
  }

  std::vector<std::pair<std::string, std::string>> ListAliases() override {
    MutexLock lock(&mu_);
    return {aliases_.begin(), aliases_.end()};
  }

  Status Snapshot(const std::string& dir) override {
    // One at a time: RocksDB's checkpoint stages into a temporary directory
    // beside `dir`, and concurrent ones race on it.
    MutexLock lock(&snapshot_mu_);
    return store_->Checkpoint(dir);
  }

  StatusOr<SnapshotFileInfo> SnapshotCollection(const std::string& name,
                                                const std::string& path) override {
    uint32_t cid = 0;
    {
      MutexLock lock(&mu_);
      QVEC_ASSIGN_OR_RETURN(auto coll, FindLocked(name));
      cid = coll->id();
    }
    const uint32_t cids[] = {cid};
    QVEC_ASSIGN_OR_RETURN(auto info, store_->ExportCollections(cids, {}, path));
    return SnapshotFileInfo{std::move(info.sha256), info.size_bytes};
  }

  StatusOr<SnapshotFileInfo> SnapshotAll(const std::string& path) override {
    std::vector<uint32_t> cids;
    std::vector<std::pair<std::string, std::string>> aliases;
    {
      // ddl_mu_: the set of collections cannot change while it is listed.
      MutexLock ddl(&ddl_mu_);
      MutexLock lock(&mu_);
      for (const auto& [name, c] : collections_) cids.push_back(c->id());
      aliases.assign(aliases_.begin(), aliases_.end());
    }
    // A collection dropped between the listing and the export's storage
    // snapshot makes the export fail with NotFound; the caller retries.
    QVEC_ASSIGN_OR_RETURN(auto info, store_->ExportCollections(cids, aliases, path));
    return SnapshotFileInfo{std::move(info.sha256), info.size_bytes};
  }

  StatusOr<SnapshotFileInfo> RecoverCollection(const std::string& requested,
                                               const std::string& path,
                                               std::string_view expected_sha256) override {
    MutexLock ddl(&ddl_mu_);
    std::string name = requested;
    {
      MutexLock lock(&mu_);
      if (auto a = aliases_.find(requested); a != aliases_.end()) name = a->second;
    }
    QVEC_RETURN_IF_ERROR(ValidateCollectionName(name));
    QVEC_ASSIGN_OR_RETURN(uint32_t cid, store_->AllocateCollectionId());
    QVEC_ASSIGN_OR_RETURN(auto imported, store_->ImportCollection(path, cid, name, expected_sha256));
    const std::string meta = imported.first.meta;
    // Until the commit, every failure removes what the import wrote.
    auto abort = [&](Status why) -> Status {
      if (Status undo = store_->AbortImport(cid); !undo.ok()) {
        log_.Warn("recovering '{}': the failed import is removed at the next open: {}", name,
                  undo.ToString());
      }
      return why;
    };
    auto config = engine::DecodeCollectionConfig(meta);
    if (!config.ok()) {
      return abort(InvalidArgumentError("the snapshot's collection config cannot be read: " +
                                        std::string(config.status().message())));
    }
    auto coll = engine::CollectionImpl::Create(
        store_.get(), cid, name, std::move(config->config), std::move(config->field_ids),
        config->legacy, options_.background_indexing ? &builds_ : nullptr, logger_);
    if (!coll.ok()) return abort(coll.status());
    if (Status loaded = (*coll)->Load(); !loaded.ok()) {
      (*coll)->Close();
      return abort(loaded.Annotate("the snapshot's collection cannot be loaded"));
    }
    std::optional<uint32_t> replaced;
    std::shared_ptr<engine::CollectionImpl> old;
    {
      MutexLock lock(&mu_);
      if (auto it = collections_.find(name); it != collections_.end()) {
        old = it->second;
        replaced = old->id();
      } else if (auto d = damaged_.find(name); d != damaged_.end()) {
        replaced = d->second.cid;
      }
    }
    if (Status committed = store_->CommitImport(cid, name, meta, replaced); !committed.ok()) {
      (*coll)->Close();
      return abort(committed);
    }
    if (Status built = (*coll)->BuildPayloadIndexes(); !built.ok()) {
      log_.Warn("collection '{}': payload indexes not built after recovery: {}", name,
                built.ToString());
    }
    (*coll)->MaybeStartTraining();
    MutexLock lock(&mu_);
    damaged_.erase(name);
    collections_[name] = std::move(*coll);
    if (old != nullptr) {
      old->MarkDropped();
      dropped_.push_back(old);
      std::erase_if(dropped_, [](const auto& c) { return c.use_count() == 1; });
    }
    return SnapshotFileInfo{imported.second.sha256, imported.second.size_bytes};
  }

  StatusOr<StorageHealth> Health() override {
    const storage::DiskState d = store_->GetDiskState();
    StorageHealth h;
    h.free_disk_bytes = d.free_bytes;
    h.reserved_disk_bytes = d.reserve_bytes;
    h.writes_stopped = d.writes_stopped;
    h.reason = d.last_error;
    return h;
  }

 private:
  // The collection `name` names, directly or as an alias.
  StatusOr<std::shared_ptr<engine::CollectionImpl>> FindLocked(const std::string& name)
      QVEC_REQUIRES(mu_) {
    auto it = collections_.find(name);
    if (it == collections_.end()) {
      if (auto a = aliases_.find(name); a != aliases_.end()) it = collections_.find(a->second);
    }
    if (it == collections_.end()) return NotFoundError("collection '" + name + "' does not exist");
    return it->second;
  }

  struct Damaged {
    uint32_t cid;
    std::string reason;
  };

  std::unique_ptr<storage::Store> store_;
  const DatabaseOptions options_;
  const std::shared_ptr<Logger> logger_;
  const engine::EngineLog log_;
  engine::BuildPool builds_;
  Mutex snapshot_mu_;  // serializes Snapshot() (held across the checkpoint)
  // Serializes CreateCollection and DropCollection (held across their
  // storage writes; no request on a collection takes it).
  Mutex ddl_mu_ QVEC_ACQUIRED_BEFORE(mu_);
  Mutex mu_;  // guards the maps below; never held across I/O
  std::map<std::string, std::shared_ptr<engine::CollectionImpl>> collections_ QVEC_GUARDED_BY(mu_);
  std::map<std::string, Damaged> damaged_ QVEC_GUARDED_BY(mu_);
  // alias -> collection name (persisted in the meta column family).
  std::map<std::string, std::string> aliases_ QVEC_GUARDED_BY(mu_);
  // Dropped collections still referenced elsewhere (a request, a build):
  // closed with the database, so none outlives the store with a snapshot.
  std::vector<std::shared_ptr<engine::CollectionImpl>> dropped_ QVEC_GUARDED_BY(mu_);
};

}  // namespace

StatusOr<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options,
                                                   const std::string& path) {
  QVEC_RETURN_IF_ERROR(options.Validate());
  std::shared_ptr<Logger> logger = engine::LoggerOrDefault(options.logger);
  storage::StoreOptions so;
  so.sync_writes = options.sync_writes;
  so.block_cache_bytes = options.block_cache_bytes;
  so.create_if_missing = options.create_if_missing;
  so.min_free_disk_bytes = options.min_free_disk_bytes;
  so.log_error = [logger](std::string_view line) { logger->Log(LogLevel::kWarning, line); };
  QVEC_ASSIGN_OR_RETURN(auto store, storage::Store::Open(path, so));
  auto db = std::make_unique<DatabaseImpl>(std::move(store), options, logger);
  QVEC_RETURN_IF_ERROR(db->LoadAll());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace qvec
