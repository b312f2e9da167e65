// The engine's implementation of qvec::Database: collection lifecycle on top
// of one storage::Store.
#include <map>
#include <mutex>

#include "engine/collection_impl.h"
#include "engine/collection_meta.h"
#include "qvec/database.h"
#include "storage/store.h"

namespace qvec {
namespace {

class DatabaseImpl final : public Database {
 public:
  DatabaseImpl(std::unique_ptr<storage::Store> store, const DatabaseOptions& options)
      : store_(std::move(store)), options_(options) {}

  ~DatabaseImpl() override {
    std::lock_guard lock(mu_);
    collections_.clear();
  }

  Status LoadAll() {
    QVEC_ASSIGN_OR_RETURN(auto records, store_->ListCollections());
    for (const auto& rec : records) {
      auto config = engine::DecodeCollectionConfig(rec.meta);
      if (!config.ok()) return config.status().Annotate("collection '" + rec.name + "'");
      QVEC_ASSIGN_OR_RETURN(auto coll,
                            engine::CollectionImpl::Create(store_.get(), rec.id, rec.name, *config,
                                                           options_.background_indexing));
      QVEC_RETURN_IF_ERROR(coll->Load());
      coll->MaybeStartTraining();
      collections_[rec.name] = std::move(coll);
    }
    return Status::Ok();
  }

  Status CreateCollection(const std::string& name, const CollectionConfig& config) override {
    QVEC_RETURN_IF_ERROR(ValidateCollectionName(name));
    QVEC_RETURN_IF_ERROR(config.Validate());
    std::lock_guard lock(mu_);
    if (collections_.count(name)) {
      return AlreadyExistsError("collection '" + name + "' already exists");
    }
    QVEC_ASSIGN_OR_RETURN(uint32_t cid, store_->AllocateCollectionId());
    QVEC_ASSIGN_OR_RETURN(auto coll, engine::CollectionImpl::Create(store_.get(), cid, name, config,
                                                                    options_.background_indexing));
    storage::WriteBatch batch;
    batch.PutCollection(cid, name, engine::EncodeCollectionConfig(config));
    QVEC_RETURN_IF_ERROR(store_->Write(&batch));
    collections_[name] = std::move(coll);
    return Status::Ok();
  }

  StatusOr<std::shared_ptr<Collection>> GetCollection(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) return NotFoundError("collection '" + name + "' does not exist");
    return std::shared_ptr<Collection>(it->second);
  }

  Status DropCollection(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = collections_.find(name);
    if (it == collections_.end()) return NotFoundError("collection '" + name + "' does not exist");
    QVEC_RETURN_IF_ERROR(store_->DropCollection(it->second->id()));
    it->second->MarkDropped();
    collections_.erase(it);
    return Status::Ok();
  }

  std::vector<std::string> ListCollections() override {
    std::lock_guard lock(mu_);
    std::vector<std::string> names;
    names.reserve(collections_.size());
    for (const auto& [name, c] : collections_) names.push_back(name);
    return names;
  }

  Status Snapshot(const std::string& dir) override { return store_->Checkpoint(dir); }

 private:
  std::unique_ptr<storage::Store> store_;
  const DatabaseOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<engine::CollectionImpl>> collections_;
};

}  // namespace

StatusOr<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options,
                                                   const std::string& path) {
  QVEC_RETURN_IF_ERROR(options.Validate());
  storage::StoreOptions so;
  so.sync_writes = options.sync_writes;
  so.block_cache_bytes = options.block_cache_bytes;
  so.create_if_missing = options.create_if_missing;
  QVEC_ASSIGN_OR_RETURN(auto store, storage::Store::Open(path, so));
  auto db = std::make_unique<DatabaseImpl>(std::move(store), options);
  QVEC_RETURN_IF_ERROR(db->LoadAll());
  return std::unique_ptr<Database>(std::move(db));
}

}  // namespace qvec
