// The engine's implementation of qvec::Collection.
#ifndef QVEC_ENGINE_COLLECTION_IMPL_H_
#define QVEC_ENGINE_COLLECTION_IMPL_H_

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/mutex.h"
#include "engine/build_pool.h"
#include "engine/engine_log.h"
#include "engine/payload_index.h"
#include "index/quality.h"
#include "index/quantizer.h"
#include "index/sparse_index.h"
#include "index/vector_index.h"
#include "qvec/collection.h"
#include "storage/store.h"

namespace qvec::engine {

// One vector field of a collection: its config, its index and its build
// state. Points share one label space across fields; each field's index
// holds the labels of the points that carry it.
struct VectorField {
  VectorField(std::string field_name, uint16_t field_id, const VectorFieldConfig& field_config);

  const std::string name;
  const uint16_t id;  // keys the field's codes and originals in storage
  // As created; dimension and distance never change. The quantization and
  // index options a PATCH may change are the members below.
  const VectorFieldConfig config;
  const index::Metric metric;
  const index::Preprocessor prep;

  // ---- index options (Database::UpdateCollection changes them; read
  // without a lock)
  std::atomic<uint32_t> nlist;
  // IndexOptions::first_pass as a number (a change rebuilds the IVF).
  std::atomic<uint8_t> first_pass;
  std::atomic<uint32_t> ivf_threshold;
  std::atomic<uint32_t> default_nprobe;
  std::atomic<float> default_target_recall;

  // ---- guarded by the collection's state_mu_ (mutated under write_mu_
  // too, so writers read them under write_mu_ alone). Not annotated: the
  // analysis cannot name the owner's mutex from here.
  // The quantization the field is configured with: the next build (and
  // the first calibration) uses it.
  index::QuantizationConfig quant;
  // The quantization `index`'s quantizer was made with (persisted as the
  // field's kQuantConfigState once it differs from the creation config).
  index::QuantizationConfig index_quant;
  // Bumped by every config change that needs the index rebuilt (quantization,
  // nlist); built_epoch is the one the current index was built for.
  uint64_t rebuild_epoch = 0;
  uint64_t built_epoch = 0;
  // nullptr before a calibrated field's first vector.
  std::unique_ptr<index::VectorIndex> index;
  uint32_t generation = 0;     // of `index`; stored with every code
  uint64_t calibrated_on = 0;  // vectors the calibration was computed on

  // ---- guarded by the collection's write_mu_ (not annotated, as above)
  uint32_t next_generation = 1;  // never reused, also across failed builds
  bool tracking = false;         // a build runs: labels written meanwhile are recorded
  std::unordered_set<uint64_t> changed_during_build;

  // ---- thread-safe
  std::atomic<IndexInfo::State> state{IndexInfo::State::kFlat};
  std::atomic<size_t> writes_since_health_check{0};
  Mutex status_mu;
  std::string last_build_error QVEC_GUARDED_BY(status_mu);
  size_t build_failures QVEC_GUARDED_BY(status_mu) = 0;
  std::chrono::steady_clock::time_point next_build_attempt QVEC_GUARDED_BY(status_mu){};
  QualityReport quality QVEC_GUARDED_BY(status_mu);
  size_t quality_points QVEC_GUARDED_BY(status_mu) = 0;
  // The field's rescore curve (index::MeasureRescoreCurve on a sample of its
  // vectors, by the build task), and what it was measured on. Searches read
  // it for their oversampling: its own mutex, never held across I/O.
  // (Searches hold the field const: mutable.)
  mutable Mutex rescore_mu;
  std::vector<index::RescorePoint> rescore_curve QVEC_GUARDED_BY(rescore_mu);
  size_t rescore_points QVEC_GUARDED_BY(rescore_mu) = 0;
  uint32_t rescore_generation QVEC_GUARDED_BY(rescore_mu) = 0;
};

// One sparse vector field: its config and inverted index. Its vectors are
// stored as the field's code blobs (EncodeSparseValue); the index is built
// from them at open.
struct SparseField {
  SparseField(std::string field_name, uint16_t field_id, const SparseVectorConfig& field_config,
              uint64_t mask_bit)
      : name(std::move(field_name)), id(field_id), config(field_config), bit(mask_bit) {}
  const std::string name;
  const uint16_t id;
  const SparseVectorConfig config;
  const uint64_t bit;  // the field's bit in the collection's field masks
  // Guarded by the collection's state_mu_ (mutated under write_mu_ too), as
  // VectorField's index.
  index::SparseIndex index;
};

// The fields a read returns (VectorSelector resolved).
struct FieldSelection {
  std::vector<const VectorField*> dense;
  std::vector<const SparseField*> sparse;
};

// Concurrency and consistency
// ---------------------------
// `write_mu_` is the collection's serialization point: every mutation
// (upsert, delete by ids or by filter, payload update, the index build's
// steps) runs under it, decides what it changes from the state it sees there,
// writes one RocksDB batch, takes a storage snapshot and then, under the
// exclusive `state_mu_`, applies the batch to memory and publishes
// (version_ + 1, that snapshot). Since no other write of the collection can
// commit between its batch and its snapshot, snapshot and in-memory state
// describe the same committed sequence of writes.
//
// Group commit: point writes (upserts, vector updates, deletes by id,
// payload updates) queue in `write_queue_` (as LevelDB's writers do). The
// write at the front leads: under write_mu_ it builds itself and the writes
// queued behind it, in order, into one batch, commits that batch once (one
// fsync with sync_writes) and applies all of them; then it wakes them. A
// queued write joins the group only if no earlier member touched one of its
// points and no member installed state it would build on (a first
// calibration); so each member builds on the committed state exactly as if
// the earlier members had been applied, and the group is applied atomically.
//
// Readers take `state_mu_` shared only for in-memory work (id lookups,
// filters, the int8 scan) and leave with the snapshot of the state they saw;
// every RocksDB read they then make (originals for rescoring, payloads,
// vectors) reads that snapshot, without any lock. So one answer reflects one
// committed state: a record's payload and vectors come from the same write,
// scores match the returned vectors, hits pass the filter.
//
// Filters read payload field indexes from `field_cache_` (see
// payload_index.h); writers only append to `payload_log_`.
//
// Index lifecycle, per vector field: a field starts with an exact flat index;
// a background build (on the database's BuildPool) replaces it when the field
// needs another index (IVF past `ivf_threshold` vectors, a retrain after 4x
// growth or badly imbalanced lists, a recalibration of a calibrated flat
// field that grew 4x past its calibration sample) while searches and writes
// go on; writes made meanwhile are tracked and replayed before the new index
// is swapped in. Every stored code carries the generation of the index it was
// encoded for; on open, codes of another generation (left by a crash during
// a rebuild) are re-encoded from their originals.
class CollectionImpl final : public Collection,
                             public std::enable_shared_from_this<CollectionImpl> {
 public:
  // Creates the in-memory collection; Load() fills it from storage. `builds`
  // (nullptr: no background builds) must outlive the collection's Close().
  // `legacy_state`: the collection was written by format 1 (its index
  // state keys are migrated at Load).
  static StatusOr<std::shared_ptr<CollectionImpl>> Create(storage::Store* store, uint32_t cid,
                                                          std::string name, CollectionConfig config,
                                                          std::map<std::string, uint16_t> field_ids,
                                                          bool legacy_state, BuildPool* builds,
                                                          std::shared_ptr<Logger> logger);
  ~CollectionImpl() override;

  // Rebuilds the in-memory state from the stored points, codes and index
  // state. Derived data that is damaged (codes, calibration, index state) is
  // rebuilt from the originals; a point whose own data is unusable is moved
  // to quarantine (see docs/ARCHITECTURE.md). Fails only on storage errors.
  [[nodiscard]] Status Load() QVEC_EXCLUDES(write_mu_, state_mu_);
  // Queues a background (re)build when a field needs one. Called after
  // writes and, by the database, after Load().
  void MaybeStartTraining();
  // Builds the declared payload indexes (after Load; reads the payloads from
  // a snapshot without holding a collection lock).
  Status BuildPayloadIndexes();
  // After a drop every call answers NotFound and background work stops.
  void MarkDropped();
  // The database is closing: background work stops, the storage snapshot is
  // released, and every later call answers FailedPrecondition.
  void Close();
  uint32_t id() const { return cid_; }

  const std::string& name() const override { return name_; }
  CollectionConfig config() const override {
    MutexLock lock(&config_mu_);
    return config_;
  }
  // Changes the quantization and index options of the fields to those of
  // `next` (see Database::UpdateCollection), persisted with the collection
  // record; a change of quantization or nlist schedules a background rebuild.
  // The database serializes it with drops and recoveries.
  Status UpdateConfig(const CollectionConfig& next);
  Status Upsert(std::span<const Point> points) override;
  Status UpsertArrays(std::span<const PointId> ids, std::span<const float> vectors,
                      std::span<const std::string> payloads,
                      const std::string& vector_name) override;
  StatusOr<std::vector<std::vector<ScoredPoint>>> SearchMatrix(
      std::span<const float> queries, const SearchRequest& common) override;
  Status UpdateVectors(std::span<const Point> points) override;
  Status DeleteVectors(std::span<const PointId> ids,
                       const std::vector<std::string>& field_names) override;
  StatusOr<size_t> DeleteVectorsByFilter(const Filter& filter,
                                         const std::vector<std::string>& field_names) override;
  StatusOr<size_t> Delete(std::span<const PointId> ids) override;
  StatusOr<size_t> DeleteByFilter(const Filter& filter) override;
  // Search with SearchRequest::mmr: the nearest candidates with their
  // vectors, re-ranked by maximal marginal relevance.
  StatusOr<std::vector<ScoredPoint>> SearchMmr(const SearchRequest& request);
  Status CreatePayloadIndex(const std::string& key, PayloadSchemaType type) override;
  Status DropPayloadIndex(const std::string& key) override;
  Status UpdatePayload(std::span<const PointId> ids, const PayloadUpdate& update) override;
  StatusOr<size_t> UpdatePayloadByFilter(const Filter& filter,
                                         const PayloadUpdate& update) override;
  Status SetPayload(std::span<const PointId> ids, std::string_view payload,
                    bool overwrite) override;
  StatusOr<std::vector<Record>> Get(std::span<const PointId> ids, bool with_payload,
                                    const VectorSelector& with_vector,
                                    size_t max_result_bytes) override;
  StatusOr<size_t> Count(const Filter* filter) override;
  StatusOr<ScrollPage> Scroll(const ScrollRequest& request) override;
  StatusOr<std::vector<ScoredPoint>> Search(const SearchRequest& request) override;
  StatusOr<std::vector<ScoredPoint>> Query(const QueryRequest& request) override;
  StatusOr<std::vector<PointGroup>> QueryGroups(const QueryRequest& request,
                                                const GroupBy& group) override;
  StatusOr<std::vector<FacetHit>> Facet(const std::string& key, const Filter* filter,
                                        size_t limit) override;
  StatusOr<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      std::span<const SearchRequest> requests) override;
  Status Optimize() override;
  StatusOr<IndexLists> ListsOf(const std::string& field, std::span<const PointId> ids,
                               bool with_centroids) override;
  StatusOr<CollectionInfo> Info() override;
  IndexInfo::State index_state() const override {
    return fields_.empty() ? IndexInfo::State::kFlat : fields_.front()->state.load();
  }

 private:
  friend class CollectionImplTestPeer;  // tests/engine/group_commit_test.cc

  CollectionImpl(storage::Store* store, uint32_t cid, std::string name, CollectionConfig config,
                 const std::map<std::string, uint16_t>& field_ids, bool legacy_state,
                 BuildPool* builds, std::shared_ptr<Logger> logger);

  // What a reader leaves the state lock with: the storage snapshot of the
  // state it saw.
  struct ReadView {
    std::shared_ptr<const storage::Snapshot> snapshot;
    uint64_t version = 0;
  };
  // The raw result of one search's in-memory part.
  struct Candidates {
    std::vector<index::Hit> hits;  // approximate scores unless `exact`
    std::vector<PointId> ids;      // of hits, in order
    std::vector<uint64_t> masks;   // of hits: the fields each point carries
    bool exact = false;            // scores final (no rescoring needed)
    // ignore_quantization: the float scan runs outside the lock over these.
    bool float_scan = false;
    std::optional<std::unordered_set<PointId, PointIdHash>> allowed;
  };
  // A point's vectors read for an answer.
  struct Vectors {
    std::map<std::string, std::vector<float>> by_field;
    std::map<std::string, SparseVector> sparse;
  };
  // What the members of a write group share while the leader builds them.
  struct WriteGroup {
    // Labels given to new points by the members so far (AllocateLabel).
    std::vector<uint64_t> reserved;
    // The members' in-memory effects, applied in order after the commit
    // (by Commit, under the exclusive state lock).
    std::vector<std::function<void(uint64_t)>> applies;
    // A member installed state later members would have to build on.
    bool closed = false;
  };
  // A write waiting in the queue; it lives on its writer's stack.
  struct PendingWrite {
    // The points it touches.
    std::vector<PointId> ids;
    // Builds its mutations into the batch and appends its apply step to the
    // group, from the committed state; an error rejects this write only.
    // Run by the group's leader under write_mu_.
    std::function<Status(WriteGroup*, storage::WriteBatch*)> build;
    Status status;
    bool done = false;  // guarded by queue_mu_
    CondVar cv;         // signalled (under queue_mu_) when done or at the front
  };
  // Most writes and bytes in one group.
  static constexpr size_t kMaxWriteGroup = 256;
  static constexpr size_t kMaxWriteGroupBytes = size_t{16} << 20;

  Status CheckAlive() const;
  // The field a request names; InvalidArgument naming the fields otherwise.
  StatusOr<VectorField*> FieldFor(const std::string& name) const;
  Status ValidateSearch(const SearchRequest& r, const VectorField& f) const;
  // Field indexes for every payload key `filter` names, built at a snapshot
  // where missing (no lock held; reads storage). They are brought up to the
  // reader's version by ResolveFilterLocked.
  StatusOr<FilterFields> PrepareFilter(const Filter& filter);
  // Brings `prepared` up to version_ (from the cache when it holds fresher
  // fields). False when the change log no longer covers a field: the caller
  // prepares again. Requires state_mu_ (shared) or write_mu_.
  bool ResolveFilterLocked(const Filter& filter, const FilterFields& prepared, FilterFields* out)
      QVEC_REQUIRES_SHARED(state_mu_);
  // PrepareFilter + ResolveFilterLocked under write_mu_ (held by the caller),
  // building in place as a last resort.
  StatusOr<FilterFields> FilterUnderWriteLock(const Filter& filter) QVEC_REQUIRES(write_mu_);
  // Runs fn(fields) under the shared state lock, fields[i] being the
  // resolved field indexes of filters[i] (nullptr for no filter).
  template <typename Fn>
  Status WithReadLock(const std::vector<const Filter*>& filters, Fn&& fn) QVEC_EXCLUDES(state_mu_);
  bool Passes(const Filter& filter, const FilterFields& fields, uint64_t label) const
      QVEC_REQUIRES_SHARED(state_mu_) {
    return MatchesFilter(filter, fields, label_to_id_[label]);
  }
  // Requires state_mu_.
  ReadView ViewLocked() const QVEC_REQUIRES_SHARED(state_mu_) {
    return ReadView{snapshot_, version_};
  }
  // How a search rescores: the oversampling it runs with and the recall the
  // rescoring is expected to keep of an exhaustive int8 scan (0 = unknown).
  struct RescorePlan {
    float oversampling = 1;
    float quantization_recall = 0;
  };
  // The plan for `r` on `f`: its own oversampling, else the one f's rescore
  // curve expects to meet the search's target (for a probed IVF search half
  // of the loss budget goes to quantization, the rest to probing).
  static RescorePlan PlanRescore(const SearchRequest& r, const VectorField& f);
  // The index's parameters for request `r` on field `f`; requires state_mu_.
  index::IndexSearchParams IndexParams(const SearchRequest& r, const VectorField& f) const
      QVEC_REQUIRES_SHARED(state_mu_);
  // Hits the index returns for `r`: k * oversampling when rescoring.
  static size_t CandidateCount(const SearchRequest& r, float oversampling);
  // Measures f's rescore curve when it has none for its index's generation
  // or the field doubled or halved since (build task; reads storage, holds
  // no lock across it).
  bool NeedsRescoreCurve(VectorField& f);
  Status MeasureRescoreCurve(VectorField& f);
  // The in-memory part of a search; requires state_mu_ held shared.
  StatusOr<Candidates> SearchLocked(const SearchRequest& r, const VectorField& f,
                                    const float* query, const FilterFields* fields)
      QVEC_REQUIRES_SHARED(state_mu_);
  // Rescoring, offset, threshold, payloads and vectors, from `view`.
  StatusOr<std::vector<ScoredPoint>> FinishSearch(const SearchRequest& r, const VectorField& f,
                                                  const float* query, Candidates c,
                                                  const ReadView& view, size_t* budget);
  StatusOr<std::vector<std::pair<PointId, float>>> ExactFloatSearch(const VectorField& f,
                                                                    const float* query, size_t k,
                                                                    const Candidates& c,
                                                                    const ReadView& view);
  // The fields a read returns: those `selector` asks for (InvalidArgument
  // for an unknown name).
  StatusOr<FieldSelection> SelectFields(const VectorSelector& selector) const;
  // The sparse field `name`, or nullptr.
  SparseField* SparseFor(const std::string& name) const;
  // Search() of a sparse field: exact dot products through its inverted
  // index (or, under a filter payload indexes narrow below the field's
  // full_scan_threshold, of those points one by one).
  StatusOr<std::vector<ScoredPoint>> SearchSparse(const SearchRequest& r, const SparseField& f);
  // Compacts the sparse indexes that need it: in the background when there
  // is a build pool (writers wait, readers do not), else now.
  void MaybeCompactSparse();
  void CompactSparse();
  // Fills payloads / vectors of results from `view`. `masks[i]` are the
  // fields point i carries (from memory, under the lock the caller held).
  // A point absent there (which a consistent view cannot have) leaves
  // found[i] false. `budget` (nullptr = none) is the answer size still
  // allowed (see SearchRequest::max_result_bytes); it is reduced by what is
  // read, and OutOfRange is returned beyond it.
  Status FillRecords(const std::vector<PointId>& ids, const std::vector<uint64_t>& masks,
                     bool with_payload, const FieldSelection& fields,
                     const ReadView& view, size_t* budget,
                     std::vector<std::optional<std::string>>* payloads,
                     std::vector<Vectors>* vectors, std::vector<bool>* found);
  // Moves the vectors read for a point into a record's fields.
  void SetRecordVectors(Vectors v, std::optional<std::vector<float>>* unnamed,
                        std::map<std::string, std::vector<float>>* named,
                        std::map<std::string, SparseVector>* sparse) const;
  // Commits `batch` and applies it: `apply(version)` runs under the
  // exclusive state lock; then (version, snapshot) is published.
  Status Commit(storage::WriteBatch* batch, const std::function<void(uint64_t)>& apply)
      QVEC_REQUIRES(write_mu_) QVEC_EXCLUDES(state_mu_);
  // Queues `w`, and runs it (with a group of others) when it reaches the
  // front; returns its status once it is committed and applied, or rejected.
  Status SubmitWrite(PendingWrite* w) QVEC_EXCLUDES(write_mu_, queue_mu_, state_mu_);
  // Writers read the in-memory state under write_mu_ alone: it changes only
  // under write_mu_ (and the exclusive state lock). For the analysis, a
  // writer declares that with AssertWriterReads() (in callbacks run under
  // write_mu_) or, where it takes the state lock later in the same function,
  // with a WriterReads scope. Neither takes a lock.
  void AssertWriterReads() const QVEC_REQUIRES(write_mu_) QVEC_ASSERT_SHARED_CAPABILITY(state_mu_) {
  }
  class QVEC_SCOPED_CAPABILITY WriterReads {
   public:
    // The caller holds c->write_mu_. (Not an annotation: on a scoped
    // capability's constructor, clang reads that as adopting the mutex.)
    explicit WriterReads(const CollectionImpl* c) QVEC_ACQUIRE_SHARED(c->state_mu_) {}
    ~WriterReads() QVEC_RELEASE() {}
  };
  // The new payloads of `ids` (existing points, distinct) after `update`,
  // put into `batch`; the caller commits and then applies them with
  // ApplyPayloads. Reads the stored payloads: writes are serialized by
  // write_mu_, so they are the points' current ones.
  using PayloadChanges = std::vector<std::pair<PointId, std::shared_ptr<const std::string>>>;
  StatusOr<PayloadChanges> BuildPayloadUpdate(std::span<const PointId> ids,
                                              const PayloadUpdate& update,
                                              storage::WriteBatch* batch)
      QVEC_REQUIRES(write_mu_);
  void ApplyPayloads(PayloadChanges* changes, uint64_t version)
      QVEC_REQUIRES(write_mu_, state_mu_);
  // The points (id, label) that pass `filter` in the current state, with
  // the field indexes of `prepared` brought up to it (built again if the
  // change log no longer reaches them). Under write_mu_, so that the caller
  // writes to exactly these points with no other write in between.
  StatusOr<std::vector<std::pair<PointId, uint64_t>>> PassingPointsLocked(
      const Filter& filter, const FilterFields& prepared) QVEC_REQUIRES(write_mu_);
  // Persists `next` as the declared payload indexes and installs it.
  Status StorePayloadIndexesLocked(std::map<std::string, PayloadSchemaType> next)
      QVEC_REQUIRES(write_mu_);
  // Deletes the points with `labels` (write + apply).
  StatusOr<size_t> DeleteLabelsLocked(const std::vector<uint64_t>& labels) QVEC_REQUIRES(write_mu_);
  // Applies a committed deletion of `labels` to the in-memory state.
  void ApplyDelete(const std::vector<uint64_t>& labels, uint64_t version)
      QVEC_REQUIRES(write_mu_, state_mu_);
  // The bit mask (fields_ order) of named fields; InvalidArgument for an
  // unknown name.
  StatusOr<uint64_t> FieldsMask(const std::vector<std::string>& field_names) const;
  // (label, fields removed) of a vector deletion.
  using VectorRemovals = std::vector<std::pair<uint64_t, uint64_t>>;
  // Puts the deletion of the `drop` fields a point carries into `batch`;
  // ApplyVectorRemovals applies them after the commit.
  void AddVectorRemoval(const PointId& id, uint64_t label, uint64_t drop,
                        storage::WriteBatch* batch, VectorRemovals* changes)
      QVEC_REQUIRES(write_mu_) QVEC_REQUIRES_SHARED(state_mu_);
  void ApplyVectorRemovals(const VectorRemovals& changes) QVEC_REQUIRES(write_mu_, state_mu_);
  // Upsert (whole points) or, with `update_only`, UpdateVectors.
  Status WritePoints(std::span<const Point> points, bool update_only);
  uint64_t AllocateLabel(std::vector<uint64_t>* reserved) QVEC_REQUIRES(write_mu_);
  // The field ids of a fields mask.
  std::vector<uint16_t> FieldIds(uint64_t mask) const;
  // The quantization report of `f`, re-measured on a sample of stored
  // originals when the field's size moved by more than 10%.
  QualityReport Quality(VectorField& f, size_t vectors);

  // ---- the vector indexes (collection_index.cc) ----
  // A quantizer for `f` calibrated on `vectors` (preprocessed, n * dim).
  StatusOr<index::Quantizer> CalibratedQuantizer(const VectorField& f,
                                                 const index::QuantizationConfig& quant,
                                                 const float* vectors, size_t n) const;
  // Encodes preprocessed `vector` for `index` as a stored codes value:
  // header (label, generation, slot) + blob. `slot` is the vector's slot
  // (IVF list) already assigned by the caller.
  Status EncodeValue(uint64_t label, const float* vector, const index::VectorIndex& index,
                     uint32_t generation, uint32_t slot, std::string* value) const;
  // Adds a stored codes value to `f`'s index; requires both locks.
  static Status AddValue(VectorField& f, std::string_view value);  // both locks held
  // What `f` needs built next, if anything (takes state_mu_ shared).
  std::optional<index::IndexKind> NeedsBuild(VectorField& f);
  // Builds `kind` for `f` on its current vectors and swaps it in: the body
  // of the background build and of Optimize(). Generic over index kinds:
  // snapshot the labels, sample the originals, (re)calibrate, train
  // (index::TrainIndex), re-encode and assign in chunks, replay the writes
  // tracked meanwhile, persist and swap.
  Status BuildIndex(VectorField& f, index::IndexKind kind);
  // The background build task: builds while some field needs it, records
  // failures and backs off before the next attempt.
  void RunBackgroundBuild();
  // Index-state key of `f`'s `name` entry ("field/<id>/<name>").
  static std::string StateKey(const VectorField& f, std::string_view name);
  // Load(): fills `f`'s index from its stored state and codes; points
  // without a known label (`pending`, by point key) take the one their code
  // carries. Codes to re-encode go to `repair` (point keys).
  Status LoadField(VectorField& f, size_t field_index, std::set<std::string>* pending,
                   std::vector<std::string>* repair, storage::WriteBatch* fixes)
      QVEC_REQUIRES(write_mu_, state_mu_);
  // Load(): re-encodes `repair` (point keys) of `f` from their originals;
  // returns the keys whose original is unusable, with why.
  StatusOr<std::vector<std::pair<std::string, std::string>>> RepairField(
      VectorField& f, size_t field_index, const std::vector<std::string>& repair)
      QVEC_REQUIRES(write_mu_, state_mu_);
  // Load(): registers a point under `label` (both locks held).
  void RegisterLoaded(const PointId& id, uint64_t label) QVEC_REQUIRES(write_mu_, state_mu_);
  // Moves a damaged point's stored data to quarantine (best effort).
  void Quarantine(std::string_view key, const std::string& reason) QVEC_REQUIRES(write_mu_);

  storage::Store* const store_;
  const uint32_t cid_;
  const std::string name_;
  BuildPool* const builds_;
  const EngineLog log_;
  bool legacy_state_;  // see Create; cleared once Load migrated it
  const bool single_vector_;  // the one unnamed field (the field set never changes)
  mutable Mutex config_mu_;
  CollectionConfig config_ QVEC_GUARDED_BY(config_mu_);
  std::atomic<bool> dropped_{false};
  std::atomic<bool> closed_{false};

  // Fixed at creation (the field set of a collection never changes).
  std::vector<std::unique_ptr<VectorField>> fields_;
  std::map<std::string, VectorField*> field_by_name_;
  // Sparse fields; their mask bits follow the dense fields'.
  std::vector<std::unique_ptr<SparseField>> sparse_fields_;
  std::map<std::string, SparseField*> sparse_by_name_;
  std::atomic<bool> compacting_{false};

  // The serialization point of all writes (see the comment at the top).
  // Lock order: write_mu_, then state_mu_ or queue_mu_.
  Mutex write_mu_ QVEC_ACQUIRED_BEFORE(state_mu_, queue_mu_);
  // Guards the writer queue.
  Mutex queue_mu_;
  std::deque<PendingWrite*> write_queue_ QVEC_GUARDED_BY(queue_mu_);
  // RocksDB batches committed by Commit (one per write group), for tests.
  std::atomic<uint64_t> commits_{0};
  // Guards the in-memory state below; mutated only while write_mu_ is held
  // too, so a writer may read it under write_mu_ alone (AssertWriterReads).
  mutable SharedMutex state_mu_;
  // ordered: Scroll walks it
  std::map<PointId, uint64_t> id_to_label_ QVEC_GUARDED_BY(state_mu_);
  std::vector<PointId> label_to_id_ QVEC_GUARDED_BY(state_mu_);  // index = label
  std::vector<bool> label_used_ QVEC_GUARDED_BY(state_mu_);
  // index = label: the fields the point carries
  std::vector<uint64_t> field_mask_ QVEC_GUARDED_BY(state_mu_);
  std::vector<uint64_t> free_labels_ QVEC_GUARDED_BY(state_mu_);
  uint64_t version_ QVEC_GUARDED_BY(state_mu_) = 0;  // committed writes applied
  // storage at version_
  std::shared_ptr<const storage::Snapshot> snapshot_ QVEC_GUARDED_BY(state_mu_);
  PayloadChangeLog payload_log_ QVEC_GUARDED_BY(state_mu_);
  std::atomic<size_t> quarantined_{0};

  // Thread-safe on its own.
  FieldCache field_cache_;
  // The declared payload indexes: key -> type (persisted under index_state
  // kPayloadIndexesState). Their fields are indexed and pinned in
  // field_cache_.
  std::map<std::string, PayloadSchemaType> payload_indexes_ QVEC_GUARDED_BY(state_mu_);

  // One build at a time per collection (background or Optimize).
  std::atomic<bool> training_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_IMPL_H_
