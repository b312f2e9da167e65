#include "engine/collection_impl.h"
#include "engine/query.h"

#include <algorithm>
#include <limits>
#include <random>
#include <cmath>
#include <cstring>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "common/point_key.h"
#include "engine/codes_value.h"
#include "engine/collection_meta.h"
#include "index/metric.h"
#include "index/quality.h"
#include "index/search_finish.h"
#include "index/training.h"

namespace qvec::engine {
namespace {

// Candidates rescored per search at most: limit * oversampling, but never
// more than this (or than limit + offset), so that one request cannot make
// the server read an unbounded number of originals.
constexpr size_t kMaxRescoreCandidates = 50000;
// The oversampling of a search without its own before the field's rescore
// curve is measured (the build task measures it soon after the first
// writes): generous, as an unmeasured int8 ranking may lose a tenth of the
// neighbours at 1 on low-dimensional data.
constexpr float kUnmeasuredOversampling = 4.0f;
// Attempts to resolve a filter's field indexes under the shared lock before
// a reader builds them under the write lock (the change log was outrun).
constexpr int kFilterAttempts = 3;

// Recall@10 expected of a default search on an index described by `info`,
// whose rescoring keeps `quantization_recall` of an exhaustive int8 scan: a
// flat index scans everything; an IVF one with automatic nprobe aims at the
// target (or probes every list when the target is out of reach), with a
// fixed nprobe it keeps curve(nprobe) / curve's best of the scan.
float ProbedRecall(const IndexInfo& info, float quantization_recall, float target,
                   uint32_t default_nprobe) {
  const auto& curve = info.recall_curve;
  if (info.state == IndexInfo::State::kFlat || curve.empty()) return quantization_recall;
  float best = 0;
  for (const auto& point : curve) best = std::max(best, point.second);
  if (best <= 0) return quantization_recall;
  if (default_nprobe == 0) return std::min(target, quantization_recall);
  float at = curve.back().second;
  for (size_t i = 0; i < curve.size(); ++i) {
    if (curve[i].first < default_nprobe) continue;
    if (i == 0 || curve[i].first == default_nprobe) {
      at = curve[i].second;
    } else {
      const auto [p0, r0] = curve[i - 1];
      const auto [p1, r1] = curve[i];
      const double l0 = std::log2(static_cast<double>(p0));
      const double t = (std::log2(static_cast<double>(default_nprobe)) - l0) /
                       (std::log2(static_cast<double>(p1)) - l0);
      at = static_cast<float>(r0 + t * (r1 - r0));
    }
    break;
  }
  return quantization_recall * std::min(1.0f, at / best);
}

bool AllFinite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

std::vector<std::string> KeysOf(const std::vector<PointId>& ids) {
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const PointId& id : ids) keys.push_back(EncodePointKey(id));
  return keys;
}

// The answer-size estimate of SearchRequest::max_result_bytes.
constexpr size_t kResultBytesPerPoint = 48;
constexpr size_t kResultBytesPerComponent = 12;

// The least an answer of `points` points takes (before payloads), when each
// carries vectors of `components` values in all.
size_t MinResultBytes(size_t points, size_t components) {
  return points * (kResultBytesPerPoint + components * kResultBytesPerComponent);
}

Status TooLarge(size_t limit) {
  return OutOfRangeError("the answer would be larger than the result size limit (" +
                         std::to_string(limit >> 20) +
                         " MiB): ask for fewer points (limit), or leave out payloads or vectors");
}

std::string PointRecord(uint64_t label) { return coding::Fixed64(label); }

// OutOfRange when `limit` points with the dense vectors of `fields` cannot
// fit `max_bytes` (0 = no bound), before any work is done.
Status CheckResultBound(size_t limit, const FieldSelection& fields, size_t max_bytes) {
  if (max_bytes == 0) return Status::Ok();
  size_t components = 0;
  for (const VectorField* f : fields.dense) components += f->config.dimension;
  return MinResultBytes(limit, components) > max_bytes ? TooLarge(max_bytes) : Status::Ok();
}

}  // namespace

VectorField::VectorField(std::string field_name, uint16_t field_id,
                         const VectorFieldConfig& field_config)
    : name(std::move(field_name)),
      id(field_id),
      config(field_config),
      metric(ToMetric(field_config.distance)),
      prep(field_config.dimension, ToMetric(field_config.distance)),
      nlist(field_config.index.nlist),
      first_pass(static_cast<uint8_t>(field_config.index.first_pass)),
      ivf_threshold(field_config.index.ivf_threshold),
      default_nprobe(field_config.index.default_nprobe),
      default_target_recall(field_config.index.default_target_recall),
      quant(ToQuantizationConfig(field_config.quantization, field_config.distance)),
      index_quant(quant) {}

Status CollectionImpl::CheckAlive() const {
  if (closed_.load()) {
    return FailedPreconditionError("the database holding this collection is closed");
  }
  if (dropped_.load()) return NotFoundError("collection '" + name_ + "' does not exist");
  return Status::Ok();
}

SparseField* CollectionImpl::SparseFor(const std::string& name) const {
  auto it = sparse_by_name_.find(name);
  return it == sparse_by_name_.end() ? nullptr : it->second;
}

StatusOr<VectorField*> CollectionImpl::FieldFor(const std::string& name) const {
  auto it = field_by_name_.find(name);
  if (it != field_by_name_.end()) return it->second;
  if (SparseFor(name) != nullptr) {
    return InvalidArgumentError("vector name '" + name + "' is a sparse vector field of collection '" +
                                name_ + "': give it {\"indices\": [...], \"values\": [...]}");
  }
  if (single_vector_) {
    return InvalidArgumentError("collection '" + name_ + "' has one unnamed vector; vector name '" +
                                name + "' does not exist");
  }
  std::string names;
  for (const auto& [n, f] : field_by_name_) names += (names.empty() ? "" : ", ") + n;
  return InvalidArgumentError(
      (name.empty() ? std::string("collection '" + name_ + "' has named vectors: name one")
                    : "vector name '" + name + "' does not exist in collection '" + name_ + "'") +
      " (vectors: " + names + ")");
}

StatusOr<FieldSelection> CollectionImpl::SelectFields(const VectorSelector& selector) const {
  FieldSelection out;
  if (selector.all) {
    for (const auto& f : fields_) out.dense.push_back(f.get());
    for (const auto& f : sparse_fields_) out.sparse.push_back(f.get());
    return out;
  }
  for (const std::string& name : selector.names) {
    if (const SparseField* sf = SparseFor(name)) {
      if (std::find(out.sparse.begin(), out.sparse.end(), sf) == out.sparse.end()) {
        out.sparse.push_back(sf);
      }
      continue;
    }
    QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(name));
    if (std::find(out.dense.begin(), out.dense.end(), f) == out.dense.end()) out.dense.push_back(f);
  }
  return out;
}

std::vector<uint16_t> CollectionImpl::FieldIds(uint64_t mask) const {
  std::vector<uint16_t> ids;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (mask & (uint64_t{1} << i)) ids.push_back(fields_[i]->id);
  }
  for (const auto& sf : sparse_fields_) {
    if (mask & sf->bit) ids.push_back(sf->id);
  }
  return ids;
}

uint64_t CollectionImpl::AllocateLabel(std::vector<uint64_t>* reserved) {
  // Called under write_mu_ before the batch is committed, so the free list is
  // only consumed when the batch is applied; here we pick without mutating.
  AssertWriterReads();
  const size_t taken = reserved->size();
  uint64_t label;
  if (taken < free_labels_.size()) {
    label = free_labels_[free_labels_.size() - 1 - taken];
  } else {
    label = label_to_id_.size() + (taken - free_labels_.size());
  }
  reserved->push_back(label);
  return label;
}

Status CollectionImpl::Commit(storage::WriteBatch* batch,
                              const std::function<void(uint64_t)>& apply) {
  QVEC_RETURN_IF_ERROR(store_->Write(batch));
  commits_.fetch_add(1, std::memory_order_relaxed);
  // No other write of this collection can commit before this snapshot (the
  // caller holds write_mu_), so it shows exactly the state `apply` makes.
  std::shared_ptr<const storage::Snapshot> snapshot = store_->GetSnapshot();
  {
    WriterLock state_lock(&state_mu_);
    const uint64_t v = version_ + 1;
    apply(v);
    version_ = v;
    snapshot_.swap(snapshot);
  }
  // `snapshot` now holds the previous one, released here outside the lock
  // unless a reader still uses it.
  return Status::Ok();
}

Status CollectionImpl::SubmitWrite(PendingWrite* w) {
  {
    MutexLock queue_lock(&queue_mu_);
    write_queue_.push_back(w);
    while (!w->done && write_queue_.front() != w) w->cv.Wait(&queue_mu_);
    if (w->done) return w->status;
  }
  // This write leads a group: it and the writes queued behind it (the ones
  // that can join, see below) are built in order into one batch, committed
  // with one RocksDB write (one fsync with sync_writes) and applied together.
  // Writers arriving meanwhile queue for the next group.
  std::vector<PendingWrite*> group;
  {
    MutexLock write_lock(&write_mu_);
    std::vector<PendingWrite*> queued;
    {
      MutexLock queue_lock(&queue_mu_);
      queued.assign(write_queue_.begin(),
                    write_queue_.begin() + std::min(write_queue_.size(), kMaxWriteGroup));
    }
    const Status alive = CheckAlive();
    WriteGroup g;
    storage::WriteBatch batch;
    std::unordered_set<PointId, PointIdHash> touched;
    for (PendingWrite* m : queued) {
      if (m != w) {
        // A write joins unless the group must be applied first: a member
        // installed state it would build on (a first calibration), it
        // touches a point a member touched, or the group is large enough.
        if (g.closed || batch.ByteSize() >= kMaxWriteGroupBytes) break;
        bool conflict = false;
        for (const PointId& id : m->ids) conflict = conflict || touched.count(id) > 0;
        if (conflict) break;
      }
      group.push_back(m);
      if (!alive.ok()) {
        m->status = alive;
        continue;
      }
      const size_t reserved_mark = g.reserved.size();
      const size_t applies_mark = g.applies.size();
      storage::WriteBatch own;
      m->status = m->build(&g, &own);
      if (!m->status.ok()) {
        // Rejected writes leave no trace in the group.
        g.reserved.resize(reserved_mark);
        g.applies.resize(applies_mark);
        g.closed = false;
        continue;
      }
      batch.Append(std::move(own));
      touched.insert(m->ids.begin(), m->ids.end());
    }
    if (!g.applies.empty() || batch.Count() > 0) {
      Status s = Commit(&batch, [&](uint64_t version) {
        state_mu_.AssertHeld();  // Commit runs it under the exclusive state lock
        // Labels the group took from the free list: they were taken from
        // its back, in order.
        for (size_t r = 0; r < g.reserved.size() && !free_labels_.empty(); ++r) {
          if (g.reserved[r] == free_labels_.back()) free_labels_.pop_back();
        }
        for (const auto& apply : g.applies) apply(version);
      });
      if (!s.ok()) {
        for (PendingWrite* m : group) {
          if (m->status.ok()) m->status = s;
        }
      }
    }
  }
  MutexLock queue_lock(&queue_mu_);
  for (PendingWrite* m : group) {
    write_queue_.pop_front();  // the group is the front of the queue, in order
    if (m != w) {
      m->done = true;
      m->cv.Signal();
    }
  }
  if (!write_queue_.empty()) write_queue_.front()->cv.Signal();
  return w->status;
}

// ---- writes ----

Status CollectionImpl::Upsert(std::span<const Point> points) { return WritePoints(points, false); }

Status CollectionImpl::UpsertArrays(std::span<const PointId> ids, std::span<const float> vectors,
                                    std::span<const std::string> payloads,
                                    const std::string& vector_name) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(vector_name));
  const size_t dim = f->config.dimension;
  if (vectors.size() != ids.size() * dim) {
    return InvalidArgumentError("UpsertArrays: " + std::to_string(vectors.size()) +
                                " floats for " + std::to_string(ids.size()) + " points of dimension " +
                                std::to_string(dim) + " (expected " +
                                std::to_string(ids.size() * dim) + ")");
  }
  if (!payloads.empty() && payloads.size() != ids.size()) {
    return InvalidArgumentError("UpsertArrays: " + std::to_string(payloads.size()) +
                                " payloads for " + std::to_string(ids.size()) + " points");
  }
  // Every point checked before anything is written.
  std::vector<float> row(dim);
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string where = "point " + ids[i].ToString();
    std::copy(vectors.begin() + i * dim, vectors.begin() + (i + 1) * dim, row.begin());
    if (!AllFinite(row)) return InvalidArgumentError(where + ": vector contains NaN or Inf");
    Status s = f->prep.Apply(row.data());
    if (!s.ok()) return s.Annotate(where);
    if (!payloads.empty() && !payloads[i].empty()) {
      s = ValidatePayload(payloads[i]);
      if (!s.ok()) return s.Annotate(where);
    }
  }
  std::vector<Point> chunk;
  for (size_t start = 0; start < ids.size(); start += kBulkChunkPoints) {
    const size_t end = std::min(ids.size(), start + kBulkChunkPoints);
    chunk.resize(end - start);
    for (size_t i = start; i < end; ++i) {
      Point& p = chunk[i - start];
      p.id = ids[i];
      p.vector.clear();
      p.vectors.clear();
      std::vector<float>& v = single_vector_ ? p.vector : p.vectors[vector_name];
      v.assign(vectors.begin() + i * dim, vectors.begin() + (i + 1) * dim);
      p.payload = payloads.empty() ? std::string() : payloads[i];
    }
    Status s = WritePoints(chunk, false);
    if (!s.ok()) {
      return s.Annotate("UpsertArrays: points from " + ids[start].ToString() +
                        " on were not written (" + std::to_string(start) + " of " +
                        std::to_string(ids.size()) + " were)");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchMatrix(
    std::span<const float> queries, const SearchRequest& common) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(common.vector_name));
  const size_t dim = f->config.dimension;
  if (queries.size() % dim != 0) {
    return InvalidArgumentError("SearchMatrix: " + std::to_string(queries.size()) +
                                " floats are not whole queries of dimension " +
                                std::to_string(dim));
  }
  std::vector<SearchRequest> requests(queries.size() / dim, common);
  for (size_t i = 0; i < requests.size(); ++i) {
    requests[i].vector.assign(queries.begin() + i * dim, queries.begin() + (i + 1) * dim);
  }
  return SearchBatch(requests);
}

Status CollectionImpl::UpdateVectors(std::span<const Point> points) {
  return WritePoints(points, true);
}

StatusOr<uint64_t> CollectionImpl::FieldsMask(const std::vector<std::string>& field_names) const {
  uint64_t mask = 0;
  for (const std::string& name : field_names) {
    if (const SparseField* sf = SparseFor(name)) {
      mask |= sf->bit;
      continue;
    }
    QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(name));
    for (size_t fi = 0; fi < fields_.size(); ++fi) {
      if (fields_[fi].get() == f) mask |= uint64_t{1} << fi;
    }
  }
  return mask;
}

void CollectionImpl::AddVectorRemoval(const PointId& id, uint64_t label, uint64_t drop,
                                      storage::WriteBatch* batch, VectorRemovals* changes) {
  const uint64_t removed = field_mask_[label] & drop;
  if (removed == 0) return;
  const std::string key = EncodePointKey(id);
  for (uint16_t fid : FieldIds(removed)) batch->DeleteVector(cid_, fid, key);
  changes->emplace_back(label, removed);
}

void CollectionImpl::ApplyVectorRemovals(const VectorRemovals& changes) {
  for (const auto& [label, removed] : changes) {
    for (size_t fi = 0; fi < fields_.size(); ++fi) {
      if (!(removed & (uint64_t{1} << fi))) continue;
      VectorField& f = *fields_[fi];
      f.index->Remove(label);
      if (f.tracking) f.changed_during_build.insert(label);
      f.writes_since_health_check.fetch_add(1);
    }
    for (auto& sf : sparse_fields_) {
      if (removed & sf->bit) sf->index.Remove(label);
    }
    field_mask_[label] &= ~removed;
  }
}

Status CollectionImpl::DeleteVectors(std::span<const PointId> ids,
                                     const std::vector<std::string>& field_names) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(const uint64_t drop, FieldsMask(field_names));
  PendingWrite w;
  w.ids.assign(ids.begin(), ids.end());
  w.build = [&](WriteGroup* g, storage::WriteBatch* batch) -> Status {
    write_mu_.AssertHeld();  // builds run in the group's leader, which holds it
    AssertWriterReads();
    VectorRemovals changes;  // (label, fields removed)
    std::unordered_set<uint64_t> seen;
    for (const PointId& id : ids) {
      auto it = id_to_label_.find(id);
      if (it == id_to_label_.end()) return NotFoundError("no point with id " + id.ToString());
      if (!seen.insert(it->second).second) continue;
      AddVectorRemoval(id, it->second, drop, batch, &changes);
    }
    if (changes.empty()) return Status::Ok();
    g->applies.push_back([this, changes = std::move(changes)](uint64_t) {
      write_mu_.AssertHeld();  // run by Commit, under write_mu_
      state_mu_.AssertHeld();  // and the exclusive state lock
      ApplyVectorRemovals(changes);
    });
    return Status::Ok();
  };
  QVEC_RETURN_IF_ERROR(SubmitWrite(&w));
  MaybeCompactSparse();
  return Status::Ok();
}

StatusOr<size_t> CollectionImpl::DeleteVectorsByFilter(
    const Filter& filter, const std::vector<std::string>& field_names) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(const uint64_t drop, FieldsMask(field_names));
  // As DeleteByFilter: field indexes built before the write lock; under it
  // the points are chosen and written with no other write in between.
  QVEC_ASSIGN_OR_RETURN(FilterFields prepared, PrepareFilter(filter));
  MutexLock write_lock(&write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(auto matching, PassingPointsLocked(filter, prepared));
  storage::WriteBatch batch;
  VectorRemovals changes;
  {
    WriterReads reads(this);
    for (const auto& [id, label] : matching) AddVectorRemoval(id, label, drop, &batch, &changes);
  }
  if (changes.empty()) return size_t{0};
  QVEC_RETURN_IF_ERROR(Commit(&batch, [&](uint64_t) {
    write_mu_.AssertHeld();  // run by Commit, under write_mu_
    state_mu_.AssertHeld();  // and the exclusive state lock
    ApplyVectorRemovals(changes);
  }));
  return changes.size();
}

Status CollectionImpl::WritePoints(std::span<const Point> points, bool update_only) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  const size_t nf = fields_.size();
  // The last occurrence of an id in the batch wins.
  std::unordered_map<PointId, size_t, PointIdHash> last;
  last.reserve(points.size());
  for (size_t i = 0; i < points.size(); ++i) last[points[i].id] = i;

  struct Prepared {
    size_t index;
    // Per field (fields_ order): the preprocessed vector, empty if absent.
    std::vector<std::vector<float>> vectors;
    uint64_t mask = 0;
    std::vector<std::string> values;  // per field: header + code blob
    // Per sparse field (sparse_fields_ order): the canonical vector, if given.
    std::vector<std::optional<SparseVector>> sparse;
    uint64_t label = 0;
    bool is_new = false;
    uint64_t old_mask = 0;
    std::shared_ptr<const std::string> payload;  // for the change log
  };
  std::vector<Prepared> prepared;
  prepared.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    if (last[p.id] != i) continue;
    const std::string where = "point " + p.id.ToString();
    Prepared pp;
    pp.index = i;
    pp.vectors.resize(nf);
    pp.values.resize(nf);
    // Checks a vector for field `f` and stores it, preprocessed, at `fi`.
    auto take = [&](size_t fi, const std::vector<float>& v) -> Status {
      VectorField& f = *fields_[fi];
      const std::string fname = f.name.empty() ? "" : " '" + f.name + "'";
      if (v.size() != f.config.dimension) {
        return InvalidArgumentError(where + ": vector" + fname + " has dimension " +
                                    std::to_string(v.size()) + ", expected " +
                                    std::to_string(f.config.dimension));
      }
      if (!AllFinite(v)) {
        return InvalidArgumentError(where + ": vector" + fname + " contains NaN or Inf");
      }
      pp.vectors[fi] = v;
      Status s = f.prep.Apply(pp.vectors[fi].data());
      if (!s.ok()) return s.Annotate(where + (f.name.empty() ? "" : ", vector '" + f.name + "'"));
      pp.mask |= uint64_t{1} << fi;
      return Status::Ok();
    };
    if (single_vector_) {
      const std::vector<float>* v = &p.vector;
      if (p.vector.empty() && p.vectors.size() == 1 && p.vectors.begin()->first.empty()) {
        v = &p.vectors.begin()->second;
      } else if (!p.vectors.empty()) {
        return InvalidArgumentError(where + ": collection '" + name_ +
                                    "' has one unnamed vector, not named vectors");
      }
      QVEC_RETURN_IF_ERROR(take(0, *v));
    } else {
      if (!p.vector.empty()) {
        return InvalidArgumentError(where + ": collection '" + name_ +
                                    "' has named vectors; give {\"name\": [...]}");
      }
      for (const auto& [fname, v] : p.vectors) {
        QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(fname));
        size_t fi = 0;
        while (fields_[fi].get() != f) ++fi;
        QVEC_RETURN_IF_ERROR(take(fi, v));
      }
    }
    pp.sparse.resize(sparse_fields_.size());
    for (const auto& [sname, sv] : p.sparse_vectors) {
      size_t si = 0;
      while (si < sparse_fields_.size() && sparse_fields_[si]->name != sname) ++si;
      if (si == sparse_fields_.size()) {
        std::string names;
        for (const auto& sf : sparse_fields_) names += (names.empty() ? "" : ", ") + sf->name;
        return InvalidArgumentError(
            where + ": collection '" + name_ + "' has no sparse vector field '" + sname + "'" +
            (names.empty() ? std::string(" (it has none)") : " (sparse vectors: " + names + ")"));
      }
      SparseVector canonical = sv;
      Status s = index::CanonicalizeSparse(&canonical.indices, &canonical.values);
      if (!s.ok()) return s.Annotate(where + ", sparse vector '" + sname + "'");
      pp.sparse[si] = std::move(canonical);
      pp.mask |= sparse_fields_[si]->bit;
    }
    if (update_only && !p.payload.empty()) {
      return InvalidArgumentError(where + ": updating vectors keeps the payload; set it apart");
    }
    if (!p.payload.empty()) {
      Status s = ValidatePayload(p.payload);
      if (!s.ok()) return s.Annotate(where);
      pp.payload = std::make_shared<const std::string>(p.payload);
    }
    prepared.push_back(std::move(pp));
  }
  if (prepared.empty()) return Status::Ok();

  // A calibrated field calibrates on the first vectors it receives. That is
  // done before the write lock is taken, so that other writers are not held
  // up by it; under the lock it is used unless another batch calibrated the
  // field meanwhile.
  std::vector<std::unique_ptr<index::VectorIndex>> calibrated(nf);
  std::vector<uint64_t> calibrated_on(nf, 0);
  std::vector<index::QuantizationConfig> calibrated_quant(nf);
  for (size_t fi = 0; fi < nf; ++fi) {
    VectorField& f = *fields_[fi];
    {
      ReaderLock lock(&state_mu_);
      if (f.index) continue;
      calibrated_quant[fi] = f.quant;
    }
    std::vector<float> sample;
    size_t n = 0;
    for (const Prepared& pp : prepared) {
      if (!(pp.mask & (uint64_t{1} << fi))) continue;
      sample.insert(sample.end(), pp.vectors[fi].begin(), pp.vectors[fi].end());
      ++n;
    }
    if (n == 0) continue;
    QVEC_ASSIGN_OR_RETURN(index::Quantizer q,
                          CalibratedQuantizer(f, calibrated_quant[fi], sample.data(), n));
    QVEC_ASSIGN_OR_RETURN(calibrated[fi], index::CreateIndex(index::kInitialIndexKind, q, ""));
    calibrated_on[fi] = n;
  }

  PendingWrite w;
  w.ids.reserve(prepared.size());
  for (const Prepared& pp : prepared) w.ids.push_back(points[pp.index].id);
  w.build = [&](WriteGroup* g, storage::WriteBatch* batch_out) -> Status {
    write_mu_.AssertHeld();  // builds run in the group's leader, which holds it
    AssertWriterReads();
    storage::WriteBatch& batch = *batch_out;
    // The index each field encodes for: its own, or the one calibrated above.
    std::vector<const index::VectorIndex*> target(nf, nullptr);
    for (size_t fi = 0; fi < nf; ++fi) {
      VectorField& f = *fields_[fi];
      if (f.index) {
        calibrated[fi].reset();  // calibrated meanwhile by another batch
        target[fi] = f.index.get();
      } else if (calibrated[fi]) {
        target[fi] = calibrated[fi].get();
        g->closed = true;  // later writes must see this calibration installed
        const index::CalibrationParams* params = calibrated[fi]->quantizer().calibration();
        if (params != nullptr)
          batch.PutIndexState(cid_, StateKey(f, kCalibrationState), params->Serialize());
        batch.PutIndexState(cid_, StateKey(f, kCalibratedOnState),
                            coding::Fixed64(calibrated_on[fi]));
        if (SameQuant(calibrated_quant[fi], f.quant)) {
          batch.DeleteIndexState(cid_, StateKey(f, kQuantConfigState));
        } else {
          batch.PutIndexState(cid_, StateKey(f, kQuantConfigState),
                              EncodeQuantConfig(calibrated_quant[fi]));
        }
      }
    }
    // Slots (IVF lists) of each field's vectors in one call per field (int8
    // batch kernels), not one centroid scan per point.
    std::vector<std::vector<uint32_t>> slots(nf);
    for (size_t fi = 0; fi < nf; ++fi) {
      if (target[fi] == nullptr) continue;
      std::vector<float> vectors;
      std::vector<size_t> which;
      const size_t dim = fields_[fi]->config.dimension;
      for (size_t i = 0; i < prepared.size(); ++i) {
        if (!(prepared[i].mask & (uint64_t{1} << fi))) continue;
        vectors.insert(vectors.end(), prepared[i].vectors[fi].begin(),
                       prepared[i].vectors[fi].end());
        which.push_back(i);
      }
      if (which.empty()) continue;
      std::vector<uint32_t> got(which.size());
      target[fi]->AssignSlots(vectors.data(), which.size(), got.data());
      slots[fi].assign(prepared.size(), 0);
      for (size_t j = 0; j < which.size(); ++j) slots[fi][which[j]] = got[j];
      (void)dim;
    }
    for (size_t i = 0; i < prepared.size(); ++i) {
      Prepared& pp = prepared[i];
      const Point& p = points[pp.index];
      auto it = id_to_label_.find(p.id);
      pp.is_new = it == id_to_label_.end();
      if (update_only && pp.is_new) return NotFoundError("no point with id " + p.id.ToString());
      pp.label = pp.is_new ? AllocateLabel(&g->reserved) : it->second;
      pp.old_mask = pp.is_new ? 0 : field_mask_[pp.label];
      // Updating vectors keeps the fields the point does not carry.
      if (update_only) pp.mask |= pp.old_mask;
      const std::string key = EncodePointKey(p.id);
      if (pp.is_new) batch.PutPointRecord(cid_, key, PointRecord(pp.label));
      for (size_t fi = 0; fi < nf; ++fi) {
        VectorField& f = *fields_[fi];
        const uint64_t bit = uint64_t{1} << fi;
        if ((pp.mask & bit) && !pp.vectors[fi].empty()) {
          Status s = EncodeValue(pp.label, pp.vectors[fi].data(), *target[fi],
                                 f.index ? f.generation : 0, slots[fi][i], &pp.values[fi]);
          if (!s.ok()) return s.Annotate("point " + p.id.ToString());
          batch.PutVector(cid_, f.id, key, pp.values[fi], pp.vectors[fi].data(),
                          f.config.dimension);
        } else if (!(pp.mask & bit) && (pp.old_mask & bit)) {
          batch.DeleteVector(cid_, f.id, key);  // an upsert replaces the whole point
        }
      }
      for (size_t si = 0; si < sparse_fields_.size(); ++si) {
        const SparseField& sf = *sparse_fields_[si];
        if ((pp.mask & sf.bit) && pp.sparse[si]) {
          batch.PutCode(cid_, sf.id, key, EncodeSparseValue(*pp.sparse[si]));
        } else if (!(pp.mask & sf.bit) && (pp.old_mask & sf.bit)) {
          batch.DeleteVector(cid_, sf.id, key);
        }
      }
      if (!update_only) {
        std::optional<std::string_view> payload;
        if (pp.payload) payload = *pp.payload;
        batch.PutPayload(cid_, key, payload);
      }
    }
    g->applies.push_back([&](uint64_t version) {
      write_mu_.AssertHeld();  // run by Commit, under write_mu_
      state_mu_.AssertHeld();  // and the exclusive state lock
      for (size_t fi = 0; fi < nf; ++fi) {
        VectorField& f = *fields_[fi];
        if (calibrated[fi]) {
          f.index = std::move(calibrated[fi]);
          f.calibrated_on = calibrated_on[fi];
          f.index_quant = calibrated_quant[fi];
          // Calibrated with a quantization changed meanwhile: rebuild.
          f.built_epoch = SameQuant(f.index_quant, f.quant) ? f.rebuild_epoch : f.rebuild_epoch - 1;
        }
      }
      for (Prepared& pp : prepared) {
        const Point& p = points[pp.index];
        if (pp.label >= label_to_id_.size()) {
          label_to_id_.resize(pp.label + 1);
          label_used_.resize(pp.label + 1, false);
          field_mask_.resize(pp.label + 1, 0);
        }
        label_used_[pp.label] = true;
        label_to_id_[pp.label] = p.id;
        field_mask_[pp.label] = pp.mask;
        if (pp.is_new) id_to_label_.emplace(p.id, pp.label);
        for (size_t fi = 0; fi < nf; ++fi) {
          VectorField& f = *fields_[fi];
          const uint64_t bit = uint64_t{1} << fi;
          if ((pp.mask & bit) && !pp.values[fi].empty()) {
            // Cannot fail: encoded (and checked) for this index above, under
            // the same lock.
            (void)AddValue(f, pp.values[fi]);
          } else if (pp.mask & bit) {
            continue;  // kept by UpdateVectors
          } else if (pp.old_mask & bit) {
            f.index->Remove(pp.label);
          } else {
            continue;
          }
          if (f.tracking) f.changed_during_build.insert(pp.label);
          f.writes_since_health_check.fetch_add(1);
        }
        for (size_t si = 0; si < sparse_fields_.size(); ++si) {
          SparseField& sf = *sparse_fields_[si];
          if ((pp.mask & sf.bit) && pp.sparse[si]) {
            sf.index.Set(pp.label, index::SparseView{pp.sparse[si]->indices, pp.sparse[si]->values});
          } else if (!(pp.mask & sf.bit) && (pp.old_mask & sf.bit)) {
            sf.index.Remove(pp.label);
          }
        }
        if (!update_only) payload_log_.Append(version, p.id, std::move(pp.payload));
      }
    });
    return Status::Ok();
  };
  QVEC_RETURN_IF_ERROR(SubmitWrite(&w));
  MaybeStartTraining();
  MaybeCompactSparse();
  return Status::Ok();
}

void CollectionImpl::ApplyDelete(const std::vector<uint64_t>& labels, uint64_t version) {
  for (uint64_t label : labels) {
    const PointId id = label_to_id_[label];
    id_to_label_.erase(id);
    for (size_t fi = 0; fi < fields_.size(); ++fi) {
      if (!(field_mask_[label] & (uint64_t{1} << fi))) continue;
      VectorField& f = *fields_[fi];
      f.index->Remove(label);
      if (f.tracking) f.changed_during_build.insert(label);
    }
    for (auto& sf : sparse_fields_) {
      if (field_mask_[label] & sf->bit) sf->index.Remove(label);
    }
    field_mask_[label] = 0;
    label_used_[label] = false;
    label_to_id_[label] = PointId();
    payload_log_.Append(version, id, nullptr);
    free_labels_.push_back(label);
  }
}

StatusOr<size_t> CollectionImpl::DeleteLabelsLocked(const std::vector<uint64_t>& labels) {
  if (labels.empty()) return size_t{0};
  storage::WriteBatch batch;
  {
    WriterReads reads(this);
    for (uint64_t label : labels) {
      const std::vector<uint16_t> fids = FieldIds(field_mask_[label]);
      batch.DeletePoint(cid_, EncodePointKey(label_to_id_[label]), fids);
    }
  }
  // Storage first, then memory: readers that still search the old state read
  // their originals and payloads from its snapshot, which keeps them.
  QVEC_RETURN_IF_ERROR(Commit(&batch, [&](uint64_t version) {
    write_mu_.AssertHeld();  // run by Commit, under write_mu_
    state_mu_.AssertHeld();  // and the exclusive state lock
    ApplyDelete(labels, version);
  }));
  return labels.size();
}

StatusOr<size_t> CollectionImpl::Delete(std::span<const PointId> ids) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  PendingWrite w;
  w.ids.assign(ids.begin(), ids.end());
  size_t deleted = 0;
  w.build = [&](WriteGroup* g, storage::WriteBatch* batch) -> Status {
    write_mu_.AssertHeld();  // builds run in the group's leader, which holds it
    AssertWriterReads();
    std::vector<uint64_t> labels;
    std::unordered_set<uint64_t> seen;
    for (const PointId& id : ids) {
      auto it = id_to_label_.find(id);
      if (it == id_to_label_.end() || !seen.insert(it->second).second) continue;
      labels.push_back(it->second);
    }
    deleted = labels.size();
    if (labels.empty()) return Status::Ok();
    for (uint64_t label : labels) {
      batch->DeletePoint(cid_, EncodePointKey(label_to_id_[label]), FieldIds(field_mask_[label]));
    }
    g->applies.push_back([this, labels = std::move(labels)](uint64_t version) {
      write_mu_.AssertHeld();  // run by Commit, under write_mu_
      state_mu_.AssertHeld();  // and the exclusive state lock
      ApplyDelete(labels, version);
    });
    return Status::Ok();
  };
  QVEC_RETURN_IF_ERROR(SubmitWrite(&w));
  MaybeCompactSparse();
  return deleted;
}

StatusOr<std::vector<std::pair<PointId, uint64_t>>> CollectionImpl::PassingPointsLocked(
    const Filter& filter, const FilterFields& prepared) {
  WriterReads reads(this);
  FilterFields fields;
  if (!ResolveFilterLocked(filter, prepared, &fields)) {
    QVEC_ASSIGN_OR_RETURN(fields, FilterUnderWriteLock(filter));
  }
  std::vector<std::pair<PointId, uint64_t>> out;
  if (auto candidates = IndexedCandidates(filter, fields)) {
    for (const PointId& id : candidates->ids) {
      auto found = id_to_label_.find(id);
      if (found != id_to_label_.end() &&
          (candidates->exact || MatchesFilter(filter, fields, id))) {
        out.emplace_back(id, found->second);
      }
    }
    return out;
  }
  for (const auto& [id, label] : id_to_label_) {
    if (MatchesFilter(filter, fields, id)) out.emplace_back(id, label);
  }
  return out;
}

StatusOr<size_t> CollectionImpl::DeleteByFilter(const Filter& filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  // Field indexes are built before the write lock is taken; under it they
  // are brought to the current state, and the points to delete are decided
  // and deleted without another write in between (an overwrite acknowledged
  // before this delete is seen by it, one acknowledged after it comes later).
  QVEC_ASSIGN_OR_RETURN(FilterFields prepared, PrepareFilter(filter));
  MutexLock write_lock(&write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(auto matching, PassingPointsLocked(filter, prepared));
  std::vector<uint64_t> labels;
  labels.reserve(matching.size());
  for (const auto& [id, label] : matching) labels.push_back(label);
  return DeleteLabelsLocked(labels);
}

StatusOr<CollectionImpl::PayloadChanges> CollectionImpl::BuildPayloadUpdate(
    std::span<const PointId> ids, const PayloadUpdate& update, storage::WriteBatch* batch) {
  PayloadChanges changes;
  changes.reserve(ids.size());
  const bool reads_stored = update.op == PayloadUpdate::Op::kMerge ||
                            update.op == PayloadUpdate::Op::kDeleteKeys ||
                            (update.op == PayloadUpdate::Op::kOverwrite && !update.key.empty());
  for (const PointId& id : ids) {
    const std::string key = EncodePointKey(id);
    std::optional<std::string> stored;
    if (reads_stored) {
      QVEC_ASSIGN_OR_RETURN(stored, store_->GetPayload(cid_, key));
    }
    QVEC_ASSIGN_OR_RETURN(std::string next,
                          ApplyPayloadUpdate(stored ? std::string_view(*stored) : "", update));
    batch->PutPayload(cid_, key, next);
    changes.emplace_back(id, std::make_shared<const std::string>(std::move(next)));
  }
  return changes;
}

void CollectionImpl::ApplyPayloads(PayloadChanges* changes, uint64_t version) {
  for (auto& [id, p] : *changes) payload_log_.Append(version, id, std::move(p));
}

Status CollectionImpl::UpdatePayload(std::span<const PointId> ids, const PayloadUpdate& update) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(update.Validate());
  PendingWrite w;
  w.ids.assign(ids.begin(), ids.end());
  w.build = [&](WriteGroup* g, storage::WriteBatch* batch) -> Status {
    write_mu_.AssertHeld();  // builds run in the group's leader, which holds it
    AssertWriterReads();
    std::vector<PointId> distinct;
    std::unordered_set<PointId, PointIdHash> seen;
    for (const PointId& id : ids) {
      if (!id_to_label_.count(id)) return NotFoundError("no point with id " + id.ToString());
      if (seen.insert(id).second) distinct.push_back(id);
    }
    // No earlier member of this write's group touched these points (the
    // group never holds two writes to one point), so the stored payloads
    // are current.
    QVEC_ASSIGN_OR_RETURN(PayloadChanges changes, BuildPayloadUpdate(distinct, update, batch));
    g->applies.push_back([this, changes = std::move(changes)](uint64_t version) mutable {
      write_mu_.AssertHeld();  // run by Commit, under write_mu_
      state_mu_.AssertHeld();  // and the exclusive state lock
      ApplyPayloads(&changes, version);
    });
    return Status::Ok();
  };
  return SubmitWrite(&w);
}

StatusOr<size_t> CollectionImpl::UpdatePayloadByFilter(const Filter& filter,
                                                       const PayloadUpdate& update) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(update.Validate());
  // As DeleteByFilter: field indexes built before the write lock; under it
  // the points are chosen and written with no other write in between.
  QVEC_ASSIGN_OR_RETURN(FilterFields prepared, PrepareFilter(filter));
  MutexLock write_lock(&write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(auto matching, PassingPointsLocked(filter, prepared));
  std::vector<PointId> ids;
  ids.reserve(matching.size());
  for (const auto& [id, label] : matching) ids.push_back(id);
  if (ids.empty()) return size_t{0};
  storage::WriteBatch batch;
  QVEC_ASSIGN_OR_RETURN(PayloadChanges changes, BuildPayloadUpdate(ids, update, &batch));
  QVEC_RETURN_IF_ERROR(Commit(&batch, [&](uint64_t version) {
    write_mu_.AssertHeld();  // run by Commit, under write_mu_
    state_mu_.AssertHeld();  // and the exclusive state lock
    ApplyPayloads(&changes, version);
  }));
  return ids.size();
}

Status CollectionImpl::SetPayload(std::span<const PointId> ids, std::string_view payload,
                                  bool overwrite) {
  PayloadUpdate update;
  update.op = overwrite ? PayloadUpdate::Op::kOverwrite : PayloadUpdate::Op::kMerge;
  update.payload = std::string(payload);
  return UpdatePayload(ids, update);
}

// ---- payload indexes ----

namespace {

Status ValidatePayloadKey(const std::string& key) {
  if (key.empty()) return InvalidArgumentError("payload index key must not be empty");
  PayloadUpdate probe;
  probe.key = key;
  return probe.Validate();
}

// A filter naming `keys`, so that PrepareFilter builds their fields.
Filter KeysProbe(const std::vector<std::string>& keys) {
  Filter f;
  for (const std::string& key : keys) {
    Condition c;
    c.kind = Condition::Kind::kIsNull;
    c.key = key;
    f.should.push_back(std::move(c));
  }
  return f;
}

}  // namespace

Status CollectionImpl::StorePayloadIndexesLocked(std::map<std::string, PayloadSchemaType> next) {
  storage::WriteBatch batch;
  if (next.empty()) {
    batch.DeleteIndexState(cid_, kPayloadIndexesState);
  } else {
    batch.PutIndexState(cid_, kPayloadIndexesState, EncodePayloadIndexes(next));
  }
  return Commit(&batch, [&](uint64_t) {
    write_mu_.AssertHeld();  // run by Commit, under write_mu_
    state_mu_.AssertHeld();  // and the exclusive state lock
    payload_indexes_ = std::move(next);
  });
}

Status CollectionImpl::CreatePayloadIndex(const std::string& key, PayloadSchemaType type) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(ValidatePayloadKey(key));
  {
    MutexLock write_lock(&write_mu_);
    QVEC_RETURN_IF_ERROR(CheckAlive());
    std::map<std::string, PayloadSchemaType> next;
    {
      WriterReads reads(this);
      next = payload_indexes_;
    }
    auto it = next.find(key);
    if (it != next.end() && it->second == type) return Status::Ok();
    next[key] = type;
    QVEC_RETURN_IF_ERROR(StorePayloadIndexesLocked(std::move(next)));
  }
  field_cache_.Pin(key, true);
  // Built now (from a snapshot, no collection lock held), not by the first
  // filter that names the key.
  return PrepareFilter(KeysProbe({key})).status();
}

Status CollectionImpl::DropPayloadIndex(const std::string& key) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  {
    MutexLock write_lock(&write_mu_);
    QVEC_RETURN_IF_ERROR(CheckAlive());
    std::map<std::string, PayloadSchemaType> next;
    {
      WriterReads reads(this);
      next = payload_indexes_;
    }
    if (next.erase(key) == 0) return NotFoundError("no payload index on '" + key + "'");
    QVEC_RETURN_IF_ERROR(StorePayloadIndexesLocked(std::move(next)));
  }
  field_cache_.Pin(key, false);
  field_cache_.Erase(key);
  return Status::Ok();
}

Status CollectionImpl::BuildPayloadIndexes() {
  std::vector<std::string> keys;
  {
    ReaderLock lock(&state_mu_);
    for (const auto& [key, type] : payload_indexes_) keys.push_back(key);
  }
  if (keys.empty()) return Status::Ok();
  return PrepareFilter(KeysProbe(keys)).status();
}

// ---- filters ----

namespace {

// InvalidArgument naming a has_vector condition on a field the collection
// does not have (it would silently match nothing).
Status CheckHasVector(const Filter& filter, const CollectionConfig& config,
                      const std::map<std::string, VectorFieldConfig>& fields) {
  for (const auto* list : {&filter.must, &filter.should, &filter.must_not}) {
    for (const Condition& c : *list) {
      if (c.kind == Condition::Kind::kHasVector && fields.count(c.key) == 0 &&
          config.sparse_vectors.count(c.key) == 0) {
        return InvalidArgumentError("has_vector: the collection has no vector field '" + c.key +
                                    "'");
      }
      if ((c.kind == Condition::Kind::kNested || c.kind == Condition::Kind::kNestedObjects) &&
          c.filter != nullptr) {
        QVEC_RETURN_IF_ERROR(CheckHasVector(*c.filter, config, fields));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<FilterFields> CollectionImpl::PrepareFilter(const Filter& filter) {
  {
    const CollectionConfig current = config();
    QVEC_RETURN_IF_ERROR(CheckHasVector(filter, current, current.Fields()));
  }
  std::set<std::string> keys;
  CollectFilterKeys(filter, &keys);
  FilterFields out;
  if (keys.empty()) return out;
  // key, its declared payload index type (nullopt: none)
  std::vector<std::pair<std::string, std::optional<PayloadSchemaType>>> missing;
  ReadView view;
  {
    ReaderLock lock(&state_mu_);
    view = ViewLocked();
    for (const std::string& key : keys) {
      std::optional<PayloadSchemaType> declared;
      if (auto d = payload_indexes_.find(key); d != payload_indexes_.end()) declared = d->second;
      auto f = field_cache_.Get(key, version_, payload_log_);
      // A declared index needs its inverted index; a field built before the
      // declaration (or after its removal, or for another type) differs.
      if (f != nullptr && f->index.schema() == declared) {
        out.Add(std::move(f));
      } else {
        missing.emplace_back(key, declared);
      }
    }
  }
  if (missing.empty()) return out;
  // Built from the snapshot of `view`: exactly the payloads of its version,
  // read without any collection lock.
  std::vector<std::shared_ptr<CachedField>> built;
  for (const auto& [key, declared] : missing) {
    auto field = std::make_shared<CachedField>(key, declared);
    field->version = view.version;
    built.push_back(field);
  }
  Status inner;
  Status scan = store_->ScanPayloads(
      cid_,
      [&](std::string_view k, std::string_view payload) {
        auto id = DecodePointKey(k);
        if (!id.ok()) return true;  // not a point key: nothing to index
        const std::string text(payload);
        for (auto& f : built) f->index.Set(*id, &text);
        return true;
      },
      view.snapshot.get());
  QVEC_RETURN_IF_ERROR(scan);
  QVEC_RETURN_IF_ERROR(inner);
  for (auto& f : built) {
    field_cache_.Insert(f);
    out.Add(std::move(f));
  }
  return out;
}

bool CollectionImpl::ResolveFilterLocked(const Filter& filter, const FilterFields& prepared,
                                         FilterFields* out) {
  // has_vector reads the field masks; callers evaluate under the lock they
  // hold now (shared state lock or write_mu_).
  out->has_vector = [this](const PointId& id, const std::string& name) {
    // Writers hold write_mu_, under which the state cannot change (see
    // AssertWriterReads); readers hold the shared state lock.
    state_mu_.AssertReaderHeld();
    auto it = id_to_label_.find(id);
    if (it == id_to_label_.end()) return false;
    for (size_t fi = 0; fi < fields_.size(); ++fi) {
      if (fields_[fi]->name == name) return (field_mask_[it->second] & (uint64_t{1} << fi)) != 0;
    }
    if (const SparseField* sf = SparseFor(name)) return (field_mask_[it->second] & sf->bit) != 0;
    return false;
  };
  for (const auto& [key, field] : prepared.all()) {
    if (auto fresh = field_cache_.Get(key, version_, payload_log_)) {
      out->Add(std::move(fresh));
      continue;
    }
    if (!field_cache_.CatchUp(field.get(), version_, payload_log_)) return false;
    out->Add(field);
  }
  (void)filter;
  return true;
}

StatusOr<FilterFields> CollectionImpl::FilterUnderWriteLock(const Filter& filter) {
  // write_mu_ is held: the version cannot move, so what PrepareFilter builds
  // resolves.
  QVEC_ASSIGN_OR_RETURN(FilterFields prepared, PrepareFilter(filter));
  ReaderLock lock(&state_mu_);
  FilterFields fields;
  if (!ResolveFilterLocked(filter, prepared, &fields)) {
    return InternalError("filter field indexes could not be brought up to date");
  }
  return fields;
}

// Runs fn(fields) under the shared state lock with the field indexes of
// every filter in `filters` (nullptr entries: no filter) resolved at the
// locked state.
template <typename Fn>
Status CollectionImpl::WithReadLock(const std::vector<const Filter*>& filters, Fn&& fn) {
  bool any = false;
  for (const Filter* f : filters) any = any || (f != nullptr && !f->empty());
  if (!any) {
    ReaderLock lock(&state_mu_);
    std::vector<const FilterFields*> none(filters.size(), nullptr);
    return fn(none);
  }
  auto run = [&](std::vector<FilterFields>& prepared, bool* resolved) -> Status {
    ReaderLock lock(&state_mu_);
    std::vector<FilterFields> fields(filters.size());
    std::vector<const FilterFields*> ptrs(filters.size(), nullptr);
    for (size_t i = 0; i < filters.size(); ++i) {
      if (filters[i] == nullptr || filters[i]->empty()) continue;
      if (!ResolveFilterLocked(*filters[i], prepared[i], &fields[i])) {
        *resolved = false;
        return Status::Ok();
      }
      ptrs[i] = &fields[i];
    }
    *resolved = true;
    return fn(ptrs);
  };
  for (int attempt = 0; attempt < kFilterAttempts; ++attempt) {
    std::vector<FilterFields> prepared(filters.size());
    for (size_t i = 0; i < filters.size(); ++i) {
      if (filters[i] == nullptr || filters[i]->empty()) continue;
      QVEC_ASSIGN_OR_RETURN(prepared[i], PrepareFilter(*filters[i]));
    }
    bool resolved = false;
    Status s = run(prepared, &resolved);
    if (resolved) return s;
  }
  // Writes outran the change log three times: prepare with writers held off.
  MutexLock write_lock(&write_mu_);
  std::vector<FilterFields> prepared(filters.size());
  for (size_t i = 0; i < filters.size(); ++i) {
    if (filters[i] == nullptr || filters[i]->empty()) continue;
    QVEC_ASSIGN_OR_RETURN(prepared[i], PrepareFilter(*filters[i]));
  }
  bool resolved = false;
  Status s = run(prepared, &resolved);
  if (!resolved) return InternalError("filter field indexes could not be brought up to date");
  return s;
}

// ---- reads ----

void CollectionImpl::SetRecordVectors(Vectors v, std::optional<std::vector<float>>* unnamed,
                                      std::map<std::string, std::vector<float>>* named,
                                      std::map<std::string, SparseVector>* sparse) const {
  *sparse = std::move(v.sparse);
  if (single_vector_) {
    auto it = v.by_field.find("");
    if (it != v.by_field.end()) *unnamed = std::move(it->second);
  } else {
    *named = std::move(v.by_field);
  }
}

StatusOr<std::vector<Record>> CollectionImpl::Get(std::span<const PointId> ids, bool with_payload,
                                                  const VectorSelector& with_vector,
                                                  size_t max_result_bytes) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(FieldSelection fields, SelectFields(with_vector));
  std::vector<PointId> found_ids;
  std::vector<uint64_t> masks;
  ReadView view;
  {
    ReaderLock lock(&state_mu_);
    std::unordered_set<PointId, PointIdHash> seen;
    for (const PointId& id : ids) {
      auto it = id_to_label_.find(id);
      if (it == id_to_label_.end() || !seen.insert(id).second) continue;
      found_ids.push_back(id);
      masks.push_back(field_mask_[it->second]);
    }
    view = ViewLocked();
  }
  std::vector<std::optional<std::string>> payloads;
  std::vector<Vectors> vectors;
  std::vector<bool> found;
  size_t budget = max_result_bytes;
  QVEC_RETURN_IF_ERROR(FillRecords(found_ids, masks, with_payload, fields, view,
                                   max_result_bytes ? &budget : nullptr, &payloads, &vectors,
                                   &found));
  std::vector<Record> out;
  out.reserve(found_ids.size());
  for (size_t i = 0; i < found_ids.size(); ++i) {
    if (!found[i]) continue;
    Record r;
    r.id = found_ids[i];
    if (with_payload) r.payload = std::move(payloads[i]);
    if (with_vector) SetRecordVectors(std::move(vectors[i]), &r.vector, &r.vectors, &r.sparse_vectors);
    out.push_back(std::move(r));
  }
  return out;
}

Status CollectionImpl::FillRecords(const std::vector<PointId>& ids,
                                   const std::vector<uint64_t>& masks, bool with_payload,
                                   const FieldSelection& fields,
                                   const ReadView& view, size_t* budget,
                                   std::vector<std::optional<std::string>>* payloads,
                                   std::vector<Vectors>* vectors, std::vector<bool>* found) {
  payloads->assign(ids.size(), std::nullopt);
  vectors->assign(ids.size(), Vectors());
  found->assign(ids.size(), true);
  const size_t limit = budget ? *budget : 0;
  auto spend = [&](size_t bytes) -> Status {
    if (budget == nullptr) return Status::Ok();
    if (bytes > *budget) return TooLarge(limit);
    *budget -= bytes;
    return Status::Ok();
  };
  // Field positions (bits of the masks) of the fields asked for.
  std::vector<std::pair<const VectorField*, uint64_t>> wanted;
  for (const VectorField* f : fields.dense) {
    for (size_t fi = 0; fi < fields_.size(); ++fi) {
      if (fields_[fi].get() == f) wanted.emplace_back(f, uint64_t{1} << fi);
    }
  }
  size_t components = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    for (const auto& [f, bit] : wanted) components += (masks[i] & bit) ? f->config.dimension : 0;
  }
  QVEC_RETURN_IF_ERROR(
      spend(MinResultBytes(ids.size(), 0) + components * kResultBytesPerComponent));
  if (ids.empty() || (!with_payload && wanted.empty() && fields.sparse.empty())) {
    return Status::Ok();
  }
  const storage::Snapshot* snap = view.snapshot.get();
  const std::vector<std::string> keys = KeysOf(ids);
  if (with_payload) {
    // In chunks, so that an answer too large stops before all of it is read.
    constexpr size_t kChunk = 256;
    for (size_t start = 0; start < keys.size(); start += kChunk) {
      const size_t end = std::min(keys.size(), start + kChunk);
      std::vector<std::string> chunk(keys.begin() + start, keys.begin() + end);
      QVEC_ASSIGN_OR_RETURN(auto got, store_->MultiGetPayloads(cid_, chunk, snap));
      for (size_t i = 0; i < got.size(); ++i) {
        // A point without a payload has the empty one (Qdrant's answer).
        if (!got[i]) got[i] = std::string("{}");
        QVEC_RETURN_IF_ERROR(spend(got[i]->size()));
        (*payloads)[start + i] = std::move(got[i]);
      }
    }
  }
  for (const auto& [f, bit] : wanted) {
    const size_t dim = f->config.dimension;
    std::vector<size_t> rows;
    std::vector<std::string> fkeys;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (masks[i] & bit) {
        rows.push_back(i);
        fkeys.push_back(keys[i]);
      }
    }
    if (rows.empty()) continue;
    std::vector<float> buf(rows.size() * dim);
    Status s = store_->MultiGetOriginals(cid_, f->id, fkeys, dim, buf.data(), snap);
    if (s.ok()) {
      for (size_t j = 0; j < rows.size(); ++j) {
        (*vectors)[rows[j]].by_field[f->name] =
            std::vector<float>(buf.begin() + j * dim, buf.begin() + (j + 1) * dim);
      }
    } else if (s.code() == StatusCode::kNotFound) {
      // Point by point: a point whose fields were not known (mask ~0) may
      // lack this one; a known field missing from the view is damage (a
      // point quarantined meanwhile): that point is left out.
      for (size_t j = 0; j < rows.size(); ++j) {
        auto v = store_->GetOriginal(cid_, f->id, fkeys[j], snap);
        if (v.ok()) {
          (*vectors)[rows[j]].by_field[f->name] = std::move(*v);
        } else if (v.status().code() == StatusCode::kNotFound && masks[rows[j]] == ~uint64_t{0}) {
          continue;
        } else {
          (*found)[rows[j]] = false;
          log_.Error("collection '{}': point {} is in memory but its vector '{}' is not in storage",
                     name_, ids[rows[j]].ToString(), f->name);
        }
      }
    } else {
      return s;
    }
  }
  for (const SparseField* f : fields.sparse) {
    std::vector<size_t> rows;
    std::vector<std::string> fkeys;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (masks[i] & f->bit) {
        rows.push_back(i);
        fkeys.push_back(keys[i]);
      }
    }
    if (rows.empty()) continue;
    QVEC_ASSIGN_OR_RETURN(auto got, store_->MultiGetCodes(cid_, f->id, fkeys, snap));
    for (size_t j = 0; j < rows.size(); ++j) {
      std::optional<SparseVector> v;
      if (got[j]) v = DecodeSparseValue(*got[j]);
      if (!v) {
        if (!got[j] && masks[rows[j]] == ~uint64_t{0}) continue;
        (*found)[rows[j]] = false;
        log_.Error("collection '{}': point {} is in memory but its sparse vector '{}' is not "
                   "readable in storage",
                   name_, ids[rows[j]].ToString(), f->name);
        continue;
      }
      QVEC_RETURN_IF_ERROR(spend(v->indices.size() * 2 * kResultBytesPerComponent));
      (*vectors)[rows[j]].sparse[f->name] = std::move(*v);
    }
  }
  return Status::Ok();
}

StatusOr<size_t> CollectionImpl::Count(const Filter* filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  size_t n = 0;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        if (fields[0] == nullptr) {
          n = id_to_label_.size();
          return Status::Ok();
        }
        if (auto candidates = IndexedCandidates(*filter, *fields[0])) {
          if (candidates->exact && candidates->all_exist) {
            n = candidates->ids.size();
            return Status::Ok();
          }
          for (const PointId& id : candidates->ids) {
            n += (candidates->all_exist || id_to_label_.count(id)) &&
                         MatchesFilter(*filter, *fields[0], id)
                     ? 1
                     : 0;
          }
          return Status::Ok();
        }
        for (const auto& [id, label] : id_to_label_) {
          n += MatchesFilter(*filter, *fields[0], id) ? 1 : 0;
        }
        return Status::Ok();
      }));
  return n;
}

StatusOr<ScrollPage> CollectionImpl::Scroll(const ScrollRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  if (request.limit < 1 || request.limit > kMaxScrollLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxScrollLimit) + "]");
  }
  QVEC_ASSIGN_OR_RETURN(FieldSelection vfields, SelectFields(request.with_vector));
  QVEC_RETURN_IF_ERROR(CheckResultBound(request.limit, vfields, request.max_result_bytes));
  const Filter* filter = request.filter ? &*request.filter : nullptr;
  ScrollPage page;
  std::vector<PointId> ids;
  std::vector<uint64_t> masks;
  std::vector<double> order_values;
  ReadView view;
  // order_by reads the ordered numbers of the key's payload index, brought
  // up to the locked state with the filter's fields.
  Filter order_probe;
  if (request.order_by) {
    const OrderBy& o = *request.order_by;
    if (request.offset) {
      return InvalidArgumentError("offset: not with order_by (continue with order_by.start_from)");
    }
    {
      ReaderLock lock(&state_mu_);
      auto it = payload_indexes_.find(o.key);
      if (it == payload_indexes_.end() || (it->second != PayloadSchemaType::kInteger &&
                                           it->second != PayloadSchemaType::kFloat &&
                                           it->second != PayloadSchemaType::kDatetime)) {
        return InvalidArgumentError("order_by: ordering by '" + o.key +
                                    "' is supported only with an integer, float or datetime "
                                    "payload index on it (PUT /collections/{name}/index)");
      }
      if (o.start_from_datetime && it->second != PayloadSchemaType::kDatetime) {
        return InvalidArgumentError(
            "order_by.start_from: a date-time is supported only with a datetime payload index "
            "on the key (give a number for an integer or float index)");
      }
    }
    Condition c;
    c.kind = Condition::Kind::kIsNull;
    c.key = o.key;
    order_probe.should.push_back(std::move(c));
  }
  QVEC_RETURN_IF_ERROR(WithReadLock(
      {filter, request.order_by ? &order_probe : nullptr},
      [&](const std::vector<const FilterFields*>& fields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        if (request.order_by) {
          const FieldIndex* ordered = fields[1]->Get(request.order_by->key);
          if (ordered == nullptr || (ordered->schema() != PayloadSchemaType::kInteger &&
                                     ordered->schema() != PayloadSchemaType::kFloat &&
                                     ordered->schema() != PayloadSchemaType::kDatetime)) {
            return InternalError("order_by: the payload index is not built");
          }
          ordered->ForEachNumber(
              request.order_by->descending, request.order_by->start_from,
              [&](double value, const PointId& id) {
                state_mu_.AssertReaderHeld();  // called within this scroll
                auto found = id_to_label_.find(id);
                if (found == id_to_label_.end()) return true;
                if (fields[0] != nullptr && !MatchesFilter(*filter, *fields[0], id)) return true;
                ids.push_back(id);
                masks.push_back(field_mask_[found->second]);
                order_values.push_back(value);
                return ids.size() < request.limit;
              });
          view = ViewLocked();
          return Status::Ok();
        }
        std::optional<FilterCandidates> candidates;
        if (fields[0] != nullptr) candidates = IndexedCandidates(*filter, *fields[0]);
        if (candidates) {
          // An indexed condition narrows the points: walk them in id order.
          std::vector<PointId>& cand = candidates->ids;
          auto c = request.offset ? std::lower_bound(cand.begin(), cand.end(), *request.offset)
                                  : cand.begin();
          for (; c != cand.end(); ++c) {
            auto found = id_to_label_.find(*c);
            if (found == id_to_label_.end()) continue;
            if (!candidates->exact && !MatchesFilter(*filter, *fields[0], *c)) continue;
            if (ids.size() == request.limit) {
              page.next_page_offset = *c;
              break;
            }
            ids.push_back(*c);
            masks.push_back(field_mask_[found->second]);
          }
          view = ViewLocked();
          return Status::Ok();
        }
        auto it = request.offset ? id_to_label_.lower_bound(*request.offset) : id_to_label_.begin();
        for (; it != id_to_label_.end(); ++it) {
          if (fields[0] != nullptr && !MatchesFilter(*filter, *fields[0], it->first)) continue;
          if (ids.size() == request.limit) {
            page.next_page_offset = it->first;
            break;
          }
          ids.push_back(it->first);
          masks.push_back(field_mask_[it->second]);
        }
        view = ViewLocked();
        return Status::Ok();
      }));
  std::vector<std::optional<std::string>> payloads;
  std::vector<Vectors> vectors;
  std::vector<bool> found;
  size_t budget = request.max_result_bytes;
  QVEC_RETURN_IF_ERROR(FillRecords(ids, masks, request.with_payload, vfields, view,
                                   request.max_result_bytes ? &budget : nullptr, &payloads,
                                   &vectors, &found));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!found[i]) continue;
    Record r;
    r.id = ids[i];
    if (!order_values.empty()) r.order_value = order_values[i];
    if (request.with_payload) r.payload = std::move(payloads[i]);
    if (request.with_vector) SetRecordVectors(std::move(vectors[i]), &r.vector, &r.vectors, &r.sparse_vectors);
    page.points.push_back(std::move(r));
  }
  return page;
}

// ---- search ----

Status CollectionImpl::ValidateSearch(const SearchRequest& r, const VectorField& f) const {
  if (r.vector.size() != f.config.dimension) {
    return InvalidArgumentError("query vector has dimension " + std::to_string(r.vector.size()) +
                                ", expected " + std::to_string(f.config.dimension));
  }
  if (!AllFinite(r.vector)) return InvalidArgumentError("query vector contains NaN or Inf");
  if (r.limit < 1 || r.limit > kMaxSearchLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  if (r.offset > kMaxSearchOffset) {
    return OutOfRangeError("offset must be at most " + std::to_string(kMaxSearchOffset));
  }
  if (r.params.oversampling &&
      !(*r.params.oversampling >= 1.0f && *r.params.oversampling <= kMaxOversampling)) {
    return OutOfRangeError("oversampling must be in [1, " +
                           std::to_string(static_cast<int>(kMaxOversampling)) + "]");
  }
  if (!(r.params.target_recall >= 0 && r.params.target_recall <= 1)) {
    return OutOfRangeError("target_recall must be in [0, 1]");
  }
  if (r.params.nprobe > kMaxNlist) {
    return OutOfRangeError("nprobe must be at most " + std::to_string(kMaxNlist));
  }
  if (r.score_threshold && !std::isfinite(*r.score_threshold)) {
    return InvalidArgumentError("score_threshold must be a finite number");
  }
  return Status::Ok();
}

CollectionImpl::RescorePlan CollectionImpl::PlanRescore(const SearchRequest& r,
                                                      const VectorField& f) {
  RescorePlan plan;
  if (!r.params.rescore.value_or(true) || r.params.ignore_quantization) return plan;
  MutexLock lock(&f.rescore_mu);
  const std::vector<index::RescorePoint>& curve = f.rescore_curve;
  if (r.params.oversampling) {
    plan.oversampling = *r.params.oversampling;
    if (!curve.empty()) plan.quantization_recall = RecallAtOversampling(curve, plan.oversampling);
    return plan;
  }
  if (curve.empty()) {
    plan.oversampling = kUnmeasuredOversampling;
    return plan;
  }
  const float target =
      r.params.target_recall > 0 ? r.params.target_recall : f.default_target_recall.load();
  // A probed search (IVF, automatic nprobe) loses recall twice: half of the
  // budget 1 - target goes to the quantization, the rest to probing (the
  // index picks nprobe for target / quantization_recall).
  const bool probed = f.state.load() != IndexInfo::State::kFlat && !r.params.exact &&
                      r.params.nprobe == 0;
  const float quant_target = probed ? 1.0f - (1.0f - target) / 2 : target;
  plan.oversampling = index::OversamplingForRecall(curve, quant_target);
  plan.quantization_recall = index::RecallAtOversampling(curve, plan.oversampling);
  return plan;
}

size_t CollectionImpl::CandidateCount(const SearchRequest& r, float oversampling) {
  const size_t k = r.limit + r.offset;
  if (!r.params.rescore.value_or(true)) return k;
  const double want = std::ceil(static_cast<double>(k) * oversampling);
  const double cap = static_cast<double>(std::max(k, kMaxRescoreCandidates));
  return static_cast<size_t>(std::min({want, cap, static_cast<double>(index::kMaxSearchK)}));
}

index::IndexSearchParams CollectionImpl::IndexParams(const SearchRequest& r,
                                                     const VectorField& f) const {
  // The index returns int8-scored candidates only; rescoring, thresholds and
  // offset are applied outside the lock (FinishSearch).
  const RescorePlan plan = PlanRescore(r, f);
  index::IndexSearchParams p;
  p.k = CandidateCount(r, plan.oversampling);
  p.exhaustive = r.params.exact;
  p.nprobe = r.params.nprobe;
  if (p.nprobe == 0 && r.params.target_recall == 0) p.nprobe = f.default_nprobe.load();
  p.target_recall =
      r.params.target_recall > 0 ? r.params.target_recall : f.default_target_recall.load();
  p.quantization_recall = plan.quantization_recall;
  return p;
}

StatusOr<CollectionImpl::Candidates> CollectionImpl::SearchLocked(const SearchRequest& r,
                                                                  const VectorField& f,
                                                                  const float* query,
                                                                  const FilterFields* fields) {
  Candidates c;
  const Filter* filter = fields != nullptr ? &*r.filter : nullptr;
  if (r.params.ignore_quantization) {
    // The float scan reads the field's originals from the view, outside the
    // lock; here only the filter is decided.
    c.float_scan = true;
    if (filter != nullptr) {
      c.allowed.emplace();
      if (auto candidates = IndexedCandidates(*filter, *fields)) {
        for (const PointId& id : candidates->ids) {
          if ((candidates->all_exist || id_to_label_.count(id)) &&
              (candidates->exact || MatchesFilter(*filter, *fields, id))) {
            c.allowed->insert(id);
          }
        }
      } else {
        for (const auto& [id, label] : id_to_label_) {
          if (MatchesFilter(*filter, *fields, id)) c.allowed->insert(id);
        }
      }
    }
    return c;
  }
  if (f.index == nullptr) {  // a calibrated field with nothing yet
    c.exact = true;
    return c;
  }
  index::IndexSearchParams p = IndexParams(r, f);
  std::function<bool(uint64_t)> allowed;
  if (filter != nullptr) {
    allowed = [this, filter, fields](uint64_t label) {
      state_mu_.AssertReaderHeld();  // the index calls it within this search
      return Passes(*filter, *fields, label);
    };
    p.filter = &allowed;
  }
  bool subset_scan = false;
  std::vector<uint64_t> subset;
  std::optional<FilterCandidates> candidates;
  if (filter != nullptr) candidates = IndexedCandidates(*filter, *fields);
  const size_t subset_limit = std::max<size_t>(20000, id_to_label_.size() / 50);
  if (candidates && candidates->ids.size() <= subset_limit) {
    // A payload index (or has_id) names the few points that can pass: score
    // exactly those that do, on either index kind, instead of scanning.
    subset.reserve(candidates->ids.size());
    for (const PointId& id : candidates->ids) {
      auto found = id_to_label_.find(id);
      if (found != id_to_label_.end() &&
          (candidates->exact || MatchesFilter(*filter, *fields, id))) {
        subset.push_back(found->second);
      }
    }
    subset_scan = true;
  } else if (filter != nullptr && !f.index->exhaustive()) {
    // Query planner: a selective filter is answered by an exact scan of the
    // allowed points (probing would visit many lists to find k of them);
    // otherwise the index checks the filter as it scans and probes further
    // lists until k matches are found.
    const size_t n = id_to_label_.size();
    // Labels drawn at random (seeded: the same plan for the same state), not
    // at a fixed stride, which aliases with periodic data: every 100th label
    // of points loaded in id order with a payload "tenant": id % 100 has the
    // same tenant, and a stride of 100 then estimates 100 % or 0 %.
    size_t seen = 0, passed = 0;
    std::mt19937_64 rng(0x5eed + label_to_id_.size());
    const size_t draws = std::min<size_t>(2000, label_to_id_.size());
    for (size_t i = 0; i < draws; ++i) {
      const size_t l = label_to_id_.size() <= 2000 ? i : rng() % label_to_id_.size();
      if (!label_used_[l]) continue;
      ++seen;
      passed += Passes(*filter, *fields, l) ? 1 : 0;
    }
    const double selectivity = seen ? static_cast<double>(passed) / seen : 1.0;
    subset_scan = selectivity * n <= std::max<double>(20000, 0.02 * n);
    if (subset_scan) {
      for (const auto& [id, label] : id_to_label_) {
        if (MatchesFilter(*filter, *fields, id)) subset.push_back(label);
      }
    }
  }
  if (subset_scan) {
    p.filter = nullptr;
    QVEC_ASSIGN_OR_RETURN(c.hits, f.index->SearchSubset(query, p, subset));
  } else {
    QVEC_ASSIGN_OR_RETURN(c.hits, f.index->Search(query, p));
  }
  c.exact = !r.params.rescore.value_or(true);
  c.ids.reserve(c.hits.size());
  c.masks.reserve(c.hits.size());
  for (const index::Hit& h : c.hits) {
    c.ids.push_back(label_to_id_[h.label]);
    c.masks.push_back(field_mask_[h.label]);
  }
  return c;
}

StatusOr<std::vector<std::pair<PointId, float>>> CollectionImpl::ExactFloatSearch(
    const VectorField& f, const float* query, size_t k, const Candidates& c, const ReadView& view) {
  // Scores every original of the field in the view; the heap keeps the k
  // best (worst on top). Every key of the view's originals is a point of
  // its state.
  const size_t dim = f.config.dimension;
  const index::Metric metric = f.metric;
  using Scored = std::pair<float, PointId>;
  auto worse = [metric](const Scored& a, const Scored& b) {
    if (a.first != b.first) return index::ScoreBetter(metric, a.first, b.first);
    return a.second < b.second;
  };
  std::priority_queue<Scored, std::vector<Scored>, decltype(worse)> heap(worse);
  Status inner;
  Status scan = store_->ScanOriginals(
      cid_, f.id, dim,
      [&](std::string_view key, const float* x) {
        auto id = DecodePointKey(key);
        if (!id.ok()) {
          inner = id.status();
          return false;
        }
        if (c.allowed && !c.allowed->count(*id)) return true;
        const float score = index::ExactScore(metric, query, x, dim);
        if (heap.size() < k) {
          heap.emplace(score, *id);
        } else if (worse({score, *id}, heap.top())) {
          heap.pop();
          heap.emplace(score, *id);
        }
        return true;
      },
      view.snapshot.get());
  QVEC_RETURN_IF_ERROR(scan);
  QVEC_RETURN_IF_ERROR(inner);
  std::vector<std::pair<PointId, float>> out(heap.size());
  for (size_t i = heap.size(); i-- > 0;) {
    out[i] = {heap.top().second, heap.top().first};
    heap.pop();
  }
  return out;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::FinishSearch(const SearchRequest& r,
                                                                const VectorField& f,
                                                                const float* query, Candidates c,
                                                                const ReadView& view,
                                                                size_t* budget) {
  const size_t k = r.limit + r.offset;
  const size_t dim = f.config.dimension;
  struct Scored {
    PointId id;
    float score;
    uint64_t mask;  // the fields the point carries (all unknown: ~0)
  };
  std::vector<Scored> hits;
  if (c.float_scan) {
    QVEC_ASSIGN_OR_RETURN(auto exact, ExactFloatSearch(f, query, k, c, view));
    for (auto& [id, score] : exact) hits.push_back({id, score, ~uint64_t{0}});
  } else if (!c.exact && !c.hits.empty()) {
    // Rescoring with the originals of the view: the state the candidates
    // were found in, so every candidate is there.
    std::vector<std::string> keys = KeysOf(c.ids);
    std::vector<float> originals(keys.size() * dim);
    Status s =
        store_->MultiGetOriginals(cid_, f.id, keys, dim, originals.data(), view.snapshot.get());
    if (s.code() == StatusCode::kNotFound) {
      // Damage (see FillRecords): drop what storage lacks, keep the rest.
      Candidates kept;
      std::vector<float> kept_originals;
      for (size_t i = 0; i < keys.size(); ++i) {
        auto v = store_->GetOriginal(cid_, f.id, keys[i], view.snapshot.get());
        if (!v.ok() || v->size() != dim) continue;
        kept.hits.push_back(c.hits[i]);
        kept.ids.push_back(c.ids[i]);
        kept.masks.push_back(c.masks[i]);
        kept_originals.insert(kept_originals.end(), v->begin(), v->end());
      }
      c.hits = std::move(kept.hits);
      c.ids = std::move(kept.ids);
      c.masks = std::move(kept.masks);
      originals = std::move(kept_originals);
    } else if (!s.ok()) {
      return s;
    }
    // Hits carry their position in `ids` through the re-ranking.
    for (size_t i = 0; i < c.hits.size(); ++i) c.hits[i].label = i;
    index::RescoreExact(f.metric, query, dim, originals.data(), &c.hits, k, r.score_threshold);
    hits.reserve(c.hits.size());
    for (const index::Hit& h : c.hits) hits.push_back({c.ids[h.label], h.score, c.masks[h.label]});
  } else {
    hits.reserve(c.hits.size());
    for (size_t i = 0; i < c.hits.size() && hits.size() < k; ++i) {
      hits.push_back({c.ids[i], c.hits[i].score, c.masks[i]});
    }
  }

  std::vector<ScoredPoint> out;
  std::vector<PointId> ids;
  std::vector<uint64_t> masks;
  for (size_t i = r.offset; i < hits.size(); ++i) {
    const float score = hits[i].score;
    if (r.score_threshold && !index::ScorePasses(f.metric, score, *r.score_threshold)) {
      break;  // best first: the rest fail too
    }
    ScoredPoint sp;
    sp.id = hits[i].id;
    sp.score = score;
    ids.push_back(sp.id);
    masks.push_back(hits[i].mask);
    out.push_back(std::move(sp));
  }
  QVEC_ASSIGN_OR_RETURN(FieldSelection vfields, SelectFields(r.with_vector));
  std::vector<std::optional<std::string>> payloads;
  std::vector<Vectors> vectors;
  std::vector<bool> found;
  QVEC_RETURN_IF_ERROR(
      FillRecords(ids, masks, r.with_payload, vfields, view, budget, &payloads, &vectors, &found));
  std::vector<ScoredPoint> kept;
  kept.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!found[i]) continue;
    if (r.with_payload) out[i].payload = std::move(payloads[i]);
    if (r.with_vector) SetRecordVectors(std::move(vectors[i]), &out[i].vector, &out[i].vectors,
                         &out[i].sparse_vectors);
    kept.push_back(std::move(out[i]));
  }
  return kept;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::SearchMmr(const SearchRequest& request) {
  const Mmr& mmr = *request.mmr;
  if (!(mmr.diversity >= 0 && mmr.diversity <= 1)) {
    return OutOfRangeError("mmr.diversity must be in [0, 1]");
  }
  const size_t want = request.limit + request.offset;
  if (mmr.candidates_limit != 0 && mmr.candidates_limit < want) {
    return OutOfRangeError("mmr.candidates_limit must be at least limit + offset (" +
                           std::to_string(want) + ")");
  }
  const size_t candidates = mmr.candidates_limit ? mmr.candidates_limit : want;
  if (candidates > kMaxSearchLimit) {
    return OutOfRangeError("mmr.candidates_limit must be at most " +
                           std::to_string(kMaxSearchLimit));
  }
  QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(request.vector_name));
  SearchRequest inner = request;
  inner.mmr.reset();
  inner.limit = candidates;
  inner.offset = 0;
  const bool unnamed = single_vector_;
  if (!request.with_vector.all) {
    if (unnamed) {
      inner.with_vector = VectorSelector(true);
    } else if (!request.with_vector.Wants(f->name)) {
      std::vector<std::string> names = request.with_vector.names;
      names.push_back(f->name);
      inner.with_vector = VectorSelector(std::move(names));
    }
  }
  QVEC_ASSIGN_OR_RETURN(std::vector<ScoredPoint> hits, Search(inner));
  const index::Metric metric = ToMetric(f->config.distance);
  const bool lower_better = index::Describe(metric).lower_is_better;
  const size_t dim = f->config.dimension;
  auto vector_of = [&](const ScoredPoint& p) -> const std::vector<float>* {
    if (unnamed) return p.vector ? &*p.vector : nullptr;
    auto it = p.vectors.find(f->name);
    return it == p.vectors.end() ? nullptr : &it->second;
  };
  // Higher is more similar, whatever the metric.
  auto similarity = [&](const float* a, const float* b) {
    const float s = index::ExactScore(metric, a, b, dim);
    return lower_better ? -s : s;
  };
  std::vector<float> query = request.vector;
  QVEC_RETURN_IF_ERROR(f->prep.Apply(query.data()));
  std::vector<size_t> usable;
  std::vector<float> relevance;
  for (size_t i = 0; i < hits.size(); ++i) {
    const std::vector<float>* v = vector_of(hits[i]);
    if (v == nullptr || v->size() != dim) continue;
    usable.push_back(i);
    relevance.push_back(similarity(query.data(), v->data()));
  }
  const float lambda = 1.0f - mmr.diversity;
  std::vector<size_t> picked;  // indexes into `usable`
  std::vector<float> max_sim(usable.size(), -std::numeric_limits<float>::infinity());
  std::vector<bool> taken(usable.size(), false);
  while (picked.size() < want && picked.size() < usable.size()) {
    size_t best = usable.size();
    float best_value = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < usable.size(); ++j) {
      if (taken[j]) continue;
      // The first pick is the most relevant; then relevance against
      // redundancy with what is already picked.
      const float value =
          picked.empty() ? relevance[j] : lambda * relevance[j] - (1 - lambda) * max_sim[j];
      if (best == usable.size() || value > best_value) {
        best = j;
        best_value = value;
      }
    }
    taken[best] = true;
    picked.push_back(best);
    const float* chosen = vector_of(hits[usable[best]])->data();
    for (size_t j = 0; j < usable.size(); ++j) {
      if (!taken[j]) {
        max_sim[j] = std::max(max_sim[j], similarity(vector_of(hits[usable[j]])->data(), chosen));
      }
    }
  }
  std::vector<ScoredPoint> out;
  for (size_t k = request.offset; k < picked.size(); ++k) {
    ScoredPoint p = std::move(hits[usable[picked[k]]]);
    if (!request.with_vector.Wants(unnamed ? std::string() : f->name) && !request.with_vector.all) {
      if (unnamed) {
        p.vector.reset();
      } else {
        p.vectors.erase(f->name);
      }
    }
    out.push_back(std::move(p));
  }
  return out;
}

StatusOr<IndexLists> CollectionImpl::ListsOf(const std::string& field,
                                             std::span<const PointId> ids, bool with_centroids) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(field));
  if (ids.size() > kMaxSearchLimit) {
    return InvalidArgumentError("at most " + std::to_string(kMaxSearchLimit) + " ids");
  }
  IndexLists out;
  std::vector<std::string> keys;
  std::vector<size_t> rows;  // of ids carrying the field
  ReadView view;
  size_t fi = 0;
  while (fields_[fi].get() != f) ++fi;
  {
    ReaderLock lock(&state_mu_);
    if (f->index) {
      index::IndexStats st = f->index->Stats();
      out.list_sizes = st.list_sizes.empty() ? std::vector<uint32_t>{static_cast<uint32_t>(st.size)}
                                             : std::move(st.list_sizes);
      if (with_centroids) out.centroids = f->index->SlotCentroids();
    }
    out.point_lists.assign(ids.size(), -1);
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = id_to_label_.find(ids[i]);
      if (it == id_to_label_.end() || !(field_mask_[it->second] & (uint64_t{1} << fi))) continue;
      rows.push_back(i);
      keys.push_back(EncodePointKey(ids[i]));
    }
    view = ViewLocked();
  }
  // Each stored code carries the list (slot) it was assigned to.
  QVEC_ASSIGN_OR_RETURN(auto codes, store_->MultiGetCodes(cid_, f->id, keys, view.snapshot.get()));
  for (size_t j = 0; j < rows.size(); ++j) {
    if (codes[j] && codes[j]->size() >= kCodesHeaderBytes) {
      out.point_lists[rows[j]] = coding::DecodeFixed32(codes[j]->data() + 12);
    }
  }
  return out;
}

// ---- sparse fields ----

StatusOr<std::vector<ScoredPoint>> CollectionImpl::SearchSparse(const SearchRequest& r,
                                                                const SparseField& f) {
  if (!r.sparse_vector) {
    return InvalidArgumentError("'" + f.name +
                                "' is a sparse vector field: query it with a sparse vector "
                                "{\"indices\": [...], \"values\": [...]}");
  }
  if (!r.vector.empty()) {
    return InvalidArgumentError("a search has a dense or a sparse query vector, not both");
  }
  if (r.mmr) {
    return InvalidArgumentError("mmr: not supported on the sparse vector field '" + f.name + "'");
  }
  if (r.limit < 1 || r.limit > kMaxSearchLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  if (r.offset > kMaxSearchOffset) {
    return OutOfRangeError("offset must be at most " + std::to_string(kMaxSearchOffset));
  }
  if (r.score_threshold && !std::isfinite(*r.score_threshold)) {
    return InvalidArgumentError("score_threshold must be a finite number");
  }
  SparseVector q = *r.sparse_vector;
  QVEC_RETURN_IF_ERROR(
      index::CanonicalizeSparse(&q.indices, &q.values).Annotate("query sparse vector"));
  QVEC_ASSIGN_OR_RETURN(FieldSelection vfields, SelectFields(r.with_vector));
  QVEC_RETURN_IF_ERROR(CheckResultBound(r.limit, vfields, r.max_result_bytes));
  const size_t k = r.limit + r.offset;
  const Filter* filter = r.filter ? &*r.filter : nullptr;
  std::vector<index::SparseHit> hits;
  std::vector<PointId> ids;
  std::vector<uint64_t> masks;
  ReadView view;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        std::vector<float> weights = q.values;
        if (f.config.modifier == SparseVectorConfig::Modifier::kIdf) {
          const double n_points = static_cast<double>(f.index.size());
          for (size_t i = 0; i < q.indices.size(); ++i) {
            const double df = f.index.DocFrequency(q.indices[i]);
            weights[i] *= static_cast<float>(std::log((n_points - df + 0.5) / (df + 0.5) + 1.0));
          }
        }
        const index::SparseView query{q.indices, weights};
        const FilterFields* ff = fields[0];
        std::optional<FilterCandidates> candidates;
        if (ff != nullptr) candidates = IndexedCandidates(*filter, *ff);
        if (candidates && candidates->ids.size() < f.config.full_scan_threshold) {
          // Few points pass: score them one by one.
          for (const PointId& id : candidates->ids) {
            auto it = id_to_label_.find(id);
            if (it == id_to_label_.end()) continue;
            if (!candidates->exact && !MatchesFilter(*filter, *ff, id)) continue;
            float score = 0;
            if (f.index.Score(it->second, query, &score)) hits.push_back({it->second, score});
          }
          std::sort(hits.begin(), hits.end(),
                    [](const index::SparseHit& a, const index::SparseHit& b) {
                      return a.score > b.score || (a.score == b.score && a.label < b.label);
                    });
          if (hits.size() > k) hits.resize(k);
        } else if (ff != nullptr) {
          std::function<bool(uint64_t)> accept = [&](uint64_t label) {
            state_mu_.AssertReaderHeld();  // called within this search
            return Passes(*filter, *ff, label);
          };
          hits = f.index.Search(query, k, &accept);
        } else {
          hits = f.index.Search(query, k, nullptr);
        }
        for (const index::SparseHit& h : hits) {
          ids.push_back(label_to_id_[h.label]);
          masks.push_back(field_mask_[h.label]);
        }
        view = ViewLocked();
        return Status::Ok();
      }));
  std::vector<ScoredPoint> out;
  std::vector<PointId> kept_ids;
  std::vector<uint64_t> kept_masks;
  for (size_t i = r.offset; i < hits.size(); ++i) {
    if (r.score_threshold && hits[i].score < *r.score_threshold) break;
    ScoredPoint sp;
    sp.id = ids[i];
    sp.score = hits[i].score;
    out.push_back(std::move(sp));
    kept_ids.push_back(ids[i]);
    kept_masks.push_back(masks[i]);
  }
  std::vector<std::optional<std::string>> payloads;
  std::vector<Vectors> vectors;
  std::vector<bool> found;
  size_t budget = r.max_result_bytes;
  QVEC_RETURN_IF_ERROR(FillRecords(kept_ids, kept_masks, r.with_payload, vfields, view,
                                   r.max_result_bytes ? &budget : nullptr, &payloads, &vectors,
                                   &found));
  std::vector<ScoredPoint> kept;
  kept.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (!found[i]) continue;
    if (r.with_payload) out[i].payload = std::move(payloads[i]);
    if (r.with_vector) {
      SetRecordVectors(std::move(vectors[i]), &out[i].vector, &out[i].vectors,
                       &out[i].sparse_vectors);
    }
    kept.push_back(std::move(out[i]));
  }
  return kept;
}

void CollectionImpl::MaybeCompactSparse() {
  if (sparse_fields_.empty() || stop_.load()) return;
  bool needed = false;
  {
    ReaderLock lock(&state_mu_);
    for (const auto& sf : sparse_fields_) needed = needed || sf->index.NeedsCompaction();
  }
  if (!needed) return;
  bool expected = false;
  if (!compacting_.compare_exchange_strong(expected, true)) return;
  if (builds_ != nullptr) {
    std::weak_ptr<CollectionImpl> weak = weak_from_this();
    if (builds_->Submit([weak] {
          if (auto self = weak.lock()) {
            self->CompactSparse();
            self->compacting_.store(false);
          }
        })) {
      return;
    }
  }
  CompactSparse();
  compacting_.store(false);
}

void CollectionImpl::CompactSparse() {
  // Under write_mu_ no write changes the indexes, so the compacted copy is
  // made with readers still searching (shared lock) and swapped in under the
  // exclusive lock, which readers wait for only as long as the swap.
  MutexLock write_lock(&write_mu_);
  if (stop_.load()) return;
  for (auto& sf : sparse_fields_) {
    std::optional<index::SparseIndex> compacted;
    {
      ReaderLock lock(&state_mu_);
      if (!sf->index.NeedsCompaction()) continue;
      compacted.emplace(sf->index.Compacted());
    }
    WriterLock lock(&state_mu_);
    sf->index = std::move(*compacted);
  }
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  if (const SparseField* sf = SparseFor(request.vector_name)) return SearchSparse(request, *sf);
  if (request.sparse_vector) {
    return InvalidArgumentError("a sparse query needs a sparse vector field; '" +
                                request.vector_name + "' is not one");
  }
  if (request.mmr) return SearchMmr(request);
  QVEC_ASSIGN_OR_RETURN(VectorField * f, FieldFor(request.vector_name));
  QVEC_RETURN_IF_ERROR(ValidateSearch(request, *f));
  QVEC_ASSIGN_OR_RETURN(FieldSelection vfields, SelectFields(request.with_vector));
  QVEC_RETURN_IF_ERROR(CheckResultBound(request.limit, vfields, request.max_result_bytes));
  std::vector<float> query = request.vector;
  QVEC_RETURN_IF_ERROR(f->prep.Apply(query.data()));
  const Filter* filter = request.filter ? &*request.filter : nullptr;
  Candidates c;
  ReadView view;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        QVEC_ASSIGN_OR_RETURN(c, SearchLocked(request, *f, query.data(), fields[0]));
        view = ViewLocked();
        return Status::Ok();
      }));
  size_t budget = request.max_result_bytes;
  return FinishSearch(request, *f, query.data(), std::move(c), view,
                      request.max_result_bytes ? &budget : nullptr);
}

StatusOr<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    std::span<const SearchRequest> requests) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  // MMR re-ranks each request's own candidates: answered one by one.
  bool any_mmr = false;
  for (const SearchRequest& r : requests) {
    any_mmr = any_mmr || r.mmr.has_value() || r.sparse_vector.has_value() ||
              SparseFor(r.vector_name) != nullptr;
  }
  if (any_mmr) {
    std::vector<std::vector<ScoredPoint>> out;
    out.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      auto hits = Search(requests[i]);
      if (!hits.ok()) return hits.status().Annotate("search " + std::to_string(i));
      out.push_back(std::move(*hits));
    }
    return out;
  }
  std::vector<VectorField*> fields;
  std::vector<std::vector<float>> queries;
  std::vector<const Filter*> filters;
  size_t least = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const SearchRequest& r = requests[i];
    const std::string where = "search " + std::to_string(i);
    auto f = FieldFor(r.vector_name);
    if (!f.ok()) return f.status().Annotate(where);
    QVEC_RETURN_IF_ERROR(ValidateSearch(r, **f).Annotate(where));
    auto vfields = SelectFields(r.with_vector);
    if (!vfields.ok()) return vfields.status().Annotate(where);
    size_t components = 0;
    for (const VectorField* vf : vfields->dense) components += vf->config.dimension;
    least += MinResultBytes(r.limit, components);
    queries.push_back(r.vector);
    QVEC_RETURN_IF_ERROR((*f)->prep.Apply(queries.back().data()).Annotate(where));
    fields.push_back(*f);
    filters.push_back(r.filter && !r.filter->empty() ? &*r.filter : nullptr);
  }
  // Refused before any search runs when the hits alone would not fit.
  if (!requests.empty() && requests[0].max_result_bytes && least > requests[0].max_result_bytes) {
    return TooLarge(requests[0].max_result_bytes);
  }
  // Unfiltered requests on one field with the same parameters share one pass
  // over the codes (the index's cache-blocked batch kernels).
  bool shared = requests.size() > 1;
  for (size_t i = 0; i < requests.size(); ++i) {
    const SearchRequest& r = requests[i];
    shared = shared && fields[i] == fields[0] && filters[i] == nullptr &&
             !r.params.ignore_quantization &&
             r.limit + r.offset == requests[0].limit + requests[0].offset &&
             r.params.nprobe == requests[0].params.nprobe &&
             r.params.target_recall == requests[0].params.target_recall &&
             r.params.exact == requests[0].params.exact &&
             r.params.rescore == requests[0].params.rescore &&
             r.params.oversampling == requests[0].params.oversampling;
  }
  std::vector<Candidates> cands(requests.size());
  ReadView view;
  QVEC_RETURN_IF_ERROR(
      WithReadLock(filters, [&](const std::vector<const FilterFields*>& ffields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        view = ViewLocked();
        if (shared && fields[0]->index != nullptr) {
          const VectorField& f = *fields[0];
          const size_t dim = f.config.dimension;
          std::vector<float> packed(requests.size() * dim);
          for (size_t i = 0; i < requests.size(); ++i) {
            std::copy(queries[i].begin(), queries[i].end(), packed.begin() + i * dim);
          }
          QVEC_ASSIGN_OR_RETURN(auto raw, f.index->SearchBatch(packed.data(), requests.size(),
                                                               IndexParams(requests[0], f)));
          for (size_t i = 0; i < requests.size(); ++i) {
            cands[i].exact = !requests[i].params.rescore.value_or(true);
            cands[i].hits = std::move(raw[i]);
            for (const index::Hit& h : cands[i].hits) {
              cands[i].ids.push_back(label_to_id_[h.label]);
              cands[i].masks.push_back(field_mask_[h.label]);
            }
          }
          return Status::Ok();
        }
        for (size_t i = 0; i < requests.size(); ++i) {
          QVEC_ASSIGN_OR_RETURN(
              cands[i], SearchLocked(requests[i], *fields[i], queries[i].data(), ffields[i]));
        }
        return Status::Ok();
      }));
  std::vector<std::vector<ScoredPoint>> out;
  out.reserve(requests.size());
  const size_t bound = requests.empty() ? 0 : requests[0].max_result_bytes;
  size_t budget = bound;
  for (size_t i = 0; i < requests.size(); ++i) {
    QVEC_ASSIGN_OR_RETURN(
        auto one, FinishSearch(requests[i], *fields[i], queries[i].data(), std::move(cands[i]),
                               view, bound ? &budget : nullptr));
    out.push_back(std::move(one));
  }
  return out;
}

// ---- info ----

QualityReport CollectionImpl::Quality(VectorField& f, size_t vectors) {
  std::optional<index::Quantizer> quantizer;
  {
    ReaderLock lock(&state_mu_);
    if (f.index) quantizer = f.index->quantizer();
  }
  MutexLock lock(&f.status_mu);
  // Re-measured when the field changed size by more than 10%.
  if (!quantizer || vectors == 0) return QualityReport();
  if (f.quality.sample_size > 0 && vectors * 10 <= f.quality_points * 11 &&
      vectors * 11 >= f.quality_points * 10) {
    return f.quality;
  }
  constexpr size_t kSample = 1000;
  const size_t dim = f.config.dimension;
  std::vector<float> sample;
  sample.reserve(std::min(vectors, kSample) * dim);
  Status s = store_->ScanOriginals(cid_, f.id, dim, [&](std::string_view, const float* x) {
    sample.insert(sample.end(), x, x + dim);
    return sample.size() < kSample * dim;
  });
  if (!s.ok() || sample.empty()) return f.quality;
  auto report = index::Measure(*quantizer, sample.data(), sample.size() / dim, 5000);
  if (!report.ok()) return f.quality;
  f.quality.sample_size = report->vectors;
  f.quality.mse = report->mse;
  f.quality.sqnr_db = report->sqnr_db;
  f.quality.max_abs_error = report->max_abs_error;
  f.quality.score_mean_abs_error = report->score_mean_abs_error;
  f.quality.score_max_abs_error = report->score_max_abs_error;
  f.quality_points = vectors;
  return f.quality;
}

StatusOr<CollectionInfo> CollectionImpl::Info() {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  CollectionInfo info;
  info.name = name_;
  info.config = config();
  info.simd_level = std::string(index::SimdLevelName(index::ActiveSimdLevel()));
  const auto configs = info.config.Fields();
  {
    ReaderLock lock(&state_mu_);
    info.points_count = id_to_label_.size();
    info.quarantined_points = quarantined_;
    size_t index_bytes = 0;
    for (const auto& f : fields_) {
      VectorFieldInfo& fi = info.fields[f->name];
      fi.config = configs.at(f->name);
      fi.index.state = f->state.load();
      fi.index.rebuild_pending = f->built_epoch != f->rebuild_epoch;
      fi.index.codes_quantization = ToQuantizationOptions(f->index_quant);
      if (f->index) {
        fi.index.kind = std::string(index::IndexKindName(f->index->kind()));
        const index::IndexStats st = f->index->Stats();
        fi.vectors_count = st.size;
        fi.memory_bytes = st.memory_bytes;
        fi.index.nlist = st.nlist;
        fi.index.list_min = st.min_list;
        fi.index.list_median = st.median_list;
        fi.index.list_max = st.max_list;
        fi.index.imbalance = st.imbalance;
        fi.index.kmeans_objective = st.objective;
        fi.index.training_seconds = st.training_seconds;
        fi.index.trained_on_points = st.trained_on_points;
        fi.index.recall_curve = st.recall_curve;
        fi.index.first_pass = st.first_pass;
        fi.index.first_pass_curve = st.first_pass_curve;
        index_bytes += st.memory_bytes;
      }
    }
    for (const auto& sf : sparse_fields_) {
      SparseFieldInfo& si = info.sparse_fields[sf->name];
      si.vectors_count = sf->index.size();
      si.entries = sf->index.entries();
      si.memory_bytes = sf->index.MemoryBytes();
      index_bytes += si.memory_bytes;
    }
    info.memory_bytes = index_bytes + field_cache_.MemoryBytes() + payload_log_.MemoryBytes() +
                        label_to_id_.capacity() * (sizeof(PointId) + sizeof(uint64_t)) +
                        id_to_label_.size() * (sizeof(PointId) + sizeof(uint64_t) + 32);
  }
  {
    std::map<std::string, PayloadSchemaType> declared;
    {
      ReaderLock lock(&state_mu_);
      declared = payload_indexes_;
    }
    if (!declared.empty()) {
      std::vector<std::string> keys;
      for (const auto& [key, type] : declared) keys.push_back(key);
      QVEC_ASSIGN_OR_RETURN(FilterFields fields, PrepareFilter(KeysProbe(keys)));
      for (const auto& [key, type] : declared) {
        PayloadIndexInfo& pi = info.payload_schema[key];
        pi.type = type;
        if (const FieldIndex* f = fields.Get(key)) pi.points = f->CountPoints(type);
      }
    }
  }
  for (const auto& f : fields_) {
    VectorFieldInfo& fi = info.fields[f->name];
    {
      MutexLock lock(&f->status_mu);
      fi.index.last_error = f->last_build_error;
      fi.index.failed_builds = f->build_failures;
    }
    fi.quality = Quality(*f, fi.vectors_count);
    // What a default search runs with and is expected to reach.
    const RescorePlan plan = PlanRescore(SearchRequest(), *f);
    fi.index.default_oversampling = plan.oversampling;
    {
      MutexLock lock(&f->rescore_mu);
      for (const index::RescorePoint& p : f->rescore_curve) {
        fi.index.rescore_curve.emplace_back(p.oversampling, p.recall);
      }
    }
    if (!fi.index.rescore_curve.empty()) {
      fi.index.estimated_recall = ProbedRecall(fi.index, plan.quantization_recall,
                                               f->default_target_recall.load(),
                                               f->default_nprobe.load());
    }
  }
  if (!fields_.empty()) {
    const VectorFieldInfo& first = info.fields.at(fields_.front()->name);
    info.index = first.index;
    info.quality = first.quality;
  }
  info.disk_bytes = store_->ApproximateDiskBytes();
  return info;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::Query(const QueryRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  return RunQuery(*this, request);
}

StatusOr<std::vector<FacetHit>> CollectionImpl::Facet(const std::string& key,
                                                      const Filter* filter, size_t limit) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  if (limit == 0) return InvalidArgumentError("limit must be at least 1");
  {
    ReaderLock lock(&state_mu_);
    auto it = payload_indexes_.find(key);
    if (it == payload_indexes_.end() ||
        (it->second != PayloadSchemaType::kKeyword && it->second != PayloadSchemaType::kInteger &&
         it->second != PayloadSchemaType::kUuid && it->second != PayloadSchemaType::kBool)) {
      return InvalidArgumentError("facet: key '" + key +
                                  "' needs a keyword, integer, uuid or bool payload index "
                                  "(PUT /collections/{name}/index)");
    }
  }
  Filter probe;
  Condition c;
  c.kind = Condition::Kind::kIsNull;
  c.key = key;
  probe.should.push_back(std::move(c));
  PayloadSchemaType type;
  {
    ReaderLock lock(&state_mu_);
    type = payload_indexes_.at(key);
  }
  // The values of the index's type only (a keyword index counts strings).
  auto of_type = [type](const MatchValue& v) {
    switch (type) {
      case PayloadSchemaType::kInteger:
        return std::holds_alternative<int64_t>(v);
      case PayloadSchemaType::kBool:
        return std::holds_alternative<bool>(v);
      default:
        return std::holds_alternative<std::string>(v);
    }
  };
  std::vector<FacetHit> hits;
  QVEC_RETURN_IF_ERROR(WithReadLock(
      {filter, &probe}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        state_mu_.AssertReaderHeld();  // WithReadLock runs it under the shared lock
        const FieldIndex* index = fields[1]->Get(key);
        if (index == nullptr) return InternalError("facet: the payload index is not built");
        index->ForEachValue([&](const MatchValue& value,
                                const std::unordered_set<PointId, PointIdHash>& ids) {
          state_mu_.AssertReaderHeld();  // called within this read
          if (!of_type(value)) return;
          size_t n = 0;
          for (const PointId& id : ids) {
            if (!id_to_label_.count(id)) continue;
            if (fields[0] != nullptr && !MatchesFilter(*filter, *fields[0], id)) continue;
            ++n;
          }
          if (n > 0) hits.push_back(FacetHit{value, n});
        });
        return Status::Ok();
      }));
  std::sort(hits.begin(), hits.end(), [](const FacetHit& a, const FacetHit& b) {
    if (a.count != b.count) return a.count > b.count;
    return a.value < b.value;  // variant order: strings, integers, bools
  });
  if (hits.size() > limit) hits.resize(limit);
  return hits;
}

StatusOr<std::vector<PointGroup>> CollectionImpl::QueryGroups(const QueryRequest& request,
                                                              const GroupBy& group) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  return RunQueryGroups(*this, request, group);
}

}  // namespace qvec::engine
