#include "engine/collection_impl.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "engine/codes_value.h"
#include "engine/point_key.h"
#include "index/calibration.h"
#include "index/kernels.h"
#include "index/quality.h"
#include "index/search_finish.h"
#include "index/training.h"

namespace qvec::engine {
namespace {

// Candidates rescored per search at most: limit * oversampling, but never
// more than this (or than limit + offset), so that one request cannot make
// the server read an unbounded number of originals.
constexpr size_t kMaxRescoreCandidates = 50000;
// Attempts to resolve a filter's field indexes under the shared lock before
// a reader builds them under the write lock (the change log was outrun).
constexpr int kFilterAttempts = 3;

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

// The least an answer of `points` points takes (before payloads).
size_t MinResultBytes(size_t points, bool with_vector, size_t dim) {
  return points * (kResultBytesPerPoint + (with_vector ? dim * kResultBytesPerComponent : 0));
}

Status TooLarge(size_t limit) {
  return OutOfRangeError("the answer would be larger than the result size limit (" +
                         std::to_string(limit >> 20) +
                         " MiB): ask for fewer points (limit), or leave out payloads or vectors");
}

// True when `score` is at least as good as `threshold`.
bool PassesThreshold(Distance d, float score, float threshold) {
  return index::ScorePasses(ToMetric(d), score, threshold);
}

}  // namespace

Status CollectionImpl::CheckAlive() const {
  if (closed_.load())
    return FailedPreconditionError("the database holding this collection is closed");
  if (dropped_.load()) return NotFoundError("collection '" + name_ + "' does not exist");
  return Status::Ok();
}

uint64_t CollectionImpl::AllocateLabel(std::vector<uint64_t>* reserved) {
  // Called under write_mu_ before the batch is committed, so the free list is
  // only consumed when the batch is applied; here we pick without mutating.
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
  // No other write of this collection can commit before this snapshot (the
  // caller holds write_mu_), so it shows exactly the state `apply` makes.
  std::shared_ptr<const storage::Snapshot> snapshot = store_->GetSnapshot();
  {
    std::unique_lock state_lock(state_mu_);
    const uint64_t v = version_ + 1;
    apply(v);
    version_ = v;
    snapshot_.swap(snapshot);
  }
  // `snapshot` now holds the previous one, released here outside the lock
  // unless a reader still uses it.
  return Status::Ok();
}

Status CollectionImpl::Upsert(std::span<const Point> points) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  const size_t dim = config_.dimension;
  // The last occurrence of an id in the batch wins.
  std::unordered_map<PointId, size_t, PointIdHash> last;
  last.reserve(points.size());
  for (size_t i = 0; i < points.size(); ++i) {
    const Point& p = points[i];
    if (p.vector.size() != dim) {
      return InvalidArgumentError("point " + p.id.ToString() + ": vector has dimension " +
                                  std::to_string(p.vector.size()) + ", expected " +
                                  std::to_string(dim));
    }
    if (!AllFinite(p.vector)) {
      return InvalidArgumentError("point " + p.id.ToString() + ": vector contains NaN or Inf");
    }
    if (!p.payload.empty()) {
      Status s = ValidatePayload(p.payload);
      if (!s.ok()) return s.Annotate("point " + p.id.ToString());
    }
    last[p.id] = i;
  }
  struct Prepared {
    size_t index;
    std::vector<float> vector;
    std::string value;  // label + code blob
    uint64_t label;
    bool is_new;
    std::shared_ptr<const std::string> payload;  // for the change log
  };
  std::vector<Prepared> prepared;
  prepared.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (last[points[i].id] != i) continue;
    Prepared pp{i, points[i].vector, {}, 0, false, nullptr};
    Status s = preprocessor_.Apply(pp.vector.data());
    if (!s.ok()) return s.Annotate("point " + points[i].id.ToString());
    if (!points[i].payload.empty()) {
      pp.payload = std::make_shared<const std::string>(points[i].payload);
    }
    prepared.push_back(std::move(pp));
  }
  if (prepared.empty()) return Status::Ok();

  {
    std::lock_guard write_lock(write_mu_);
    QVEC_RETURN_IF_ERROR(CheckAlive());
    storage::WriteBatch batch;
    // A calibrated collection calibrates on its first batch; the parameters
    // are written in the same atomic batch as the points they encode.
    std::optional<index::Quantizer> calibrated;
    const index::Quantizer* quantizer = ActiveQuantizer();
    if (quantizer == nullptr) {
      std::vector<float> sample;
      sample.reserve(prepared.size() * dim);
      for (const Prepared& pp : prepared) {
        sample.insert(sample.end(), pp.vector.begin(), pp.vector.end());
      }
      QVEC_ASSIGN_OR_RETURN(calibrated, CalibratedQuantizer(sample.data(), prepared.size()));
      batch.PutIndexState(cid_, kCalibrationStateKey, calibrated->calibration()->Serialize());
      quantizer = &*calibrated;
    }
    // IVF lists of the whole batch in one call (int8 batch kernels), not one
    // centroid scan per point.
    std::vector<uint32_t> lists;
    if (ivf_) {
      std::vector<float> vectors;
      vectors.reserve(prepared.size() * dim);
      for (const Prepared& pp : prepared) {
        vectors.insert(vectors.end(), pp.vector.begin(), pp.vector.end());
      }
      lists.resize(prepared.size());
      ivf_->AssignBatch(vectors.data(), prepared.size(), lists.data());
    }
    std::vector<uint64_t> reserved;
    for (size_t i = 0; i < prepared.size(); ++i) {
      Prepared& pp = prepared[i];
      const Point& p = points[pp.index];
      auto it = id_to_label_.find(p.id);
      pp.is_new = it == id_to_label_.end();
      pp.label = pp.is_new ? AllocateLabel(&reserved) : it->second;
      const std::optional<uint32_t> list =
          lists.empty() ? std::nullopt : std::optional<uint32_t>(lists[i]);
      Status s = EncodeValue(pp.label, pp.vector.data(), *quantizer, ivf_.get(), generation_,
                             &pp.value, list);
      if (!s.ok()) return s.Annotate("point " + p.id.ToString());
      std::optional<std::string_view> payload;
      if (!p.payload.empty()) payload = p.payload;
      batch.PutPoint(cid_, EncodePointKey(p.id), pp.value, pp.vector.data(), dim, payload);
    }
    QVEC_RETURN_IF_ERROR(Commit(&batch, [&](uint64_t version) {
      if (calibrated) flat_ = std::make_unique<index::FlatIndex>(std::move(*calibrated));
      for (size_t r = 0; r < reserved.size() && !free_labels_.empty(); ++r) {
        if (reserved[r] == free_labels_.back()) free_labels_.pop_back();
      }
      for (Prepared& pp : prepared) {
        const Point& p = points[pp.index];
        if (pp.label >= label_to_id_.size()) {
          label_to_id_.resize(pp.label + 1);
          label_used_.resize(pp.label + 1, false);
        }
        label_used_[pp.label] = true;
        label_to_id_[pp.label] = p.id;
        if (pp.is_new) id_to_label_.emplace(p.id, pp.label);
        // Cannot fail: the blob was encoded (and checked) by the active
        // quantizer above, under the same lock.
        (void)AddValueToIndex(pp.value);
        payload_log_.Append(version, p.id, std::move(pp.payload));
        if (tracking_) changed_during_build_.insert(pp.label);
      }
    }));
    writes_since_health_check_ += prepared.size();
  }
  MaybeStartTraining();
  return Status::Ok();
}

void CollectionImpl::ApplyDelete(const std::vector<uint64_t>& labels, uint64_t version) {
  for (uint64_t label : labels) {
    const PointId id = label_to_id_[label];
    id_to_label_.erase(id);
    label_used_[label] = false;
    label_to_id_[label] = PointId();
    RemoveFromIndex(label);
    payload_log_.Append(version, id, nullptr);
    if (tracking_) changed_during_build_.insert(label);
    free_labels_.push_back(label);
  }
}

StatusOr<size_t> CollectionImpl::DeleteLabelsLocked(const std::vector<uint64_t>& labels) {
  if (labels.empty()) return size_t{0};
  storage::WriteBatch batch;
  for (uint64_t label : labels) batch.DeletePoint(cid_, EncodePointKey(label_to_id_[label]));
  // Storage first, then memory: readers that still search the old state read
  // their originals and payloads from its snapshot, which keeps them.
  QVEC_RETURN_IF_ERROR(Commit(&batch, [&](uint64_t version) { ApplyDelete(labels, version); }));
  return labels.size();
}

StatusOr<size_t> CollectionImpl::Delete(std::span<const PointId> ids) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::lock_guard write_lock(write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::vector<uint64_t> labels;
  std::unordered_set<uint64_t> seen;
  for (const PointId& id : ids) {
    auto it = id_to_label_.find(id);
    if (it == id_to_label_.end() || !seen.insert(it->second).second) continue;
    labels.push_back(it->second);
  }
  return DeleteLabelsLocked(labels);
}

StatusOr<size_t> CollectionImpl::DeleteByFilter(const Filter& filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  // Field indexes are built before the write lock is taken; under it they
  // are brought to the current state, and the points to delete are decided
  // and deleted without another write in between (an overwrite acknowledged
  // before this delete is seen by it, one acknowledged after it comes later).
  QVEC_ASSIGN_OR_RETURN(FilterFields prepared, PrepareFilter(filter));
  std::lock_guard write_lock(write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  FilterFields fields;
  if (!ResolveFilterLocked(filter, prepared, &fields)) {
    QVEC_ASSIGN_OR_RETURN(fields, FilterUnderWriteLock(filter));
  }
  std::vector<uint64_t> labels;
  for (const auto& [id, label] : id_to_label_) {
    if (MatchesFilter(filter, fields, id)) labels.push_back(label);
  }
  return DeleteLabelsLocked(labels);
}

Status CollectionImpl::SetPayload(std::span<const PointId> ids, std::string_view payload,
                                  bool overwrite) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(ValidatePayload(payload));
  std::lock_guard write_lock(write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  storage::WriteBatch batch;
  std::vector<std::pair<PointId, std::shared_ptr<const std::string>>> updates;
  std::unordered_set<PointId, PointIdHash> seen;
  for (const PointId& id : ids) {
    if (!id_to_label_.count(id)) return NotFoundError("no point with id " + id.ToString());
    if (!seen.insert(id).second) continue;
    std::string merged(payload);
    const std::string key = EncodePointKey(id);
    if (!overwrite) {
      // The latest stored payload is this collection's current one: writes
      // are serialized by write_mu_.
      QVEC_ASSIGN_OR_RETURN(storage::StoredPoint stored,
                            store_->GetPoint(cid_, key, false, false, true));
      if (stored.payload) {
        QVEC_ASSIGN_OR_RETURN(merged, MergePayloads(*stored.payload, payload));
      }
    }
    batch.PutPayload(cid_, key, merged);
    updates.emplace_back(id, std::make_shared<const std::string>(std::move(merged)));
  }
  return Commit(&batch, [&](uint64_t version) {
    for (auto& [id, p] : updates) payload_log_.Append(version, id, std::move(p));
  });
}

// ---- filters ----

StatusOr<FilterFields> CollectionImpl::PrepareFilter(const Filter& filter) {
  std::set<std::string> keys;
  CollectFilterKeys(filter, &keys);
  FilterFields out;
  if (keys.empty()) return out;
  std::vector<std::string> missing;
  ReadView view;
  {
    std::shared_lock lock(state_mu_);
    view = ViewLocked();
    for (const std::string& key : keys) {
      if (auto f = field_cache_.Get(key, version_, payload_log_)) {
        out.Add(std::move(f));
      } else {
        missing.push_back(key);
      }
    }
  }
  if (missing.empty()) return out;
  // Built from the snapshot of `view`: exactly the payloads of its version,
  // read without any collection lock.
  std::vector<std::shared_ptr<CachedField>> built;
  for (const std::string& key : missing) {
    auto field = std::make_shared<CachedField>(key);
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
  std::shared_lock lock(state_mu_);
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
    std::shared_lock lock(state_mu_);
    std::vector<const FilterFields*> none(filters.size(), nullptr);
    return fn(none);
  }
  auto run = [&](std::vector<FilterFields>& prepared, bool* resolved) -> Status {
    std::shared_lock lock(state_mu_);
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
  std::lock_guard write_lock(write_mu_);
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

StatusOr<std::vector<Record>> CollectionImpl::Get(std::span<const PointId> ids, bool with_payload,
                                                  bool with_vector, size_t max_result_bytes) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::vector<PointId> found_ids;
  ReadView view;
  {
    std::shared_lock lock(state_mu_);
    std::unordered_set<PointId, PointIdHash> seen;
    for (const PointId& id : ids) {
      if (id_to_label_.count(id) && seen.insert(id).second) found_ids.push_back(id);
    }
    view = ViewLocked();
  }
  std::vector<std::optional<std::string>> payloads;
  std::vector<std::optional<std::vector<float>>> vectors;
  std::vector<bool> found;
  size_t budget = max_result_bytes;
  QVEC_RETURN_IF_ERROR(FillRecords(found_ids, with_payload, with_vector, view,
                                   max_result_bytes ? &budget : nullptr, &payloads, &vectors,
                                   &found));
  std::vector<Record> out;
  out.reserve(found_ids.size());
  for (size_t i = 0; i < found_ids.size(); ++i) {
    if (!found[i]) continue;
    Record r;
    r.id = found_ids[i];
    if (with_payload) r.payload = std::move(payloads[i]);
    if (with_vector) r.vector = std::move(vectors[i]);
    out.push_back(std::move(r));
  }
  return out;
}

Status CollectionImpl::FillRecords(const std::vector<PointId>& ids, bool with_payload,
                                   bool with_vector, const ReadView& view, size_t* budget,
                                   std::vector<std::optional<std::string>>* payloads,
                                   std::vector<std::optional<std::vector<float>>>* vectors,
                                   std::vector<bool>* found) {
  payloads->assign(ids.size(), std::nullopt);
  vectors->assign(ids.size(), std::nullopt);
  found->assign(ids.size(), true);
  const size_t limit = budget ? *budget : 0;
  auto spend = [&](size_t bytes) -> Status {
    if (budget == nullptr) return Status::Ok();
    if (bytes > *budget) return TooLarge(limit);
    *budget -= bytes;
    return Status::Ok();
  };
  const size_t dim = config_.dimension;
  QVEC_RETURN_IF_ERROR(spend(
      ids.size() * (kResultBytesPerPoint + (with_vector ? dim * kResultBytesPerComponent : 0))));
  if (ids.empty() || (!with_payload && !with_vector)) return Status::Ok();
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
  if (with_vector) {
    std::vector<float> buf(keys.size() * dim);
    Status s = store_->MultiGetOriginals(cid_, keys, dim, buf.data(), snap);
    if (s.ok()) {
      for (size_t i = 0; i < keys.size(); ++i) {
        (*vectors)[i] = std::vector<float>(buf.begin() + i * dim, buf.begin() + (i + 1) * dim);
      }
    } else if (s.code() == StatusCode::kNotFound) {
      // The view holds every point of its state; one missing is damage
      // (e.g. a point quarantined meanwhile). Serve the others.
      for (size_t i = 0; i < keys.size(); ++i) {
        auto sp = store_->GetPoint(cid_, keys[i], false, true, false, snap);
        if (sp.ok()) {
          (*vectors)[i] = std::move(sp->original);
        } else {
          (*found)[i] = false;
          log_.Error("collection '{}': point {} is in memory but not in storage", name_,
                     ids[i].ToString());
        }
      }
    } else {
      return s;
    }
  }
  return Status::Ok();
}

StatusOr<size_t> CollectionImpl::Count(const Filter* filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  size_t n = 0;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        if (fields[0] == nullptr) {
          n = id_to_label_.size();
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
  if (request.max_result_bytes && MinResultBytes(request.limit, request.with_vector,
                                                 config_.dimension) > request.max_result_bytes) {
    return TooLarge(request.max_result_bytes);
  }
  const Filter* filter = request.filter ? &*request.filter : nullptr;
  ScrollPage page;
  std::vector<PointId> ids;
  ReadView view;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        auto it = request.offset ? id_to_label_.lower_bound(*request.offset) : id_to_label_.begin();
        for (; it != id_to_label_.end(); ++it) {
          if (fields[0] != nullptr && !MatchesFilter(*filter, *fields[0], it->first)) continue;
          if (ids.size() == request.limit) {
            page.next_page_offset = it->first;
            break;
          }
          ids.push_back(it->first);
        }
        view = ViewLocked();
        return Status::Ok();
      }));
  std::vector<std::optional<std::string>> payloads;
  std::vector<std::optional<std::vector<float>>> vectors;
  std::vector<bool> found;
  size_t budget = request.max_result_bytes;
  QVEC_RETURN_IF_ERROR(FillRecords(ids, request.with_payload, request.with_vector, view,
                                   request.max_result_bytes ? &budget : nullptr, &payloads,
                                   &vectors, &found));
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!found[i]) continue;
    Record r;
    r.id = ids[i];
    if (request.with_payload) r.payload = std::move(payloads[i]);
    if (request.with_vector) r.vector = std::move(vectors[i]);
    page.points.push_back(std::move(r));
  }
  return page;
}

// ---- search ----

Status CollectionImpl::ValidateSearch(const SearchRequest& r) const {
  if (r.vector.size() != config_.dimension) {
    return InvalidArgumentError("query vector has dimension " + std::to_string(r.vector.size()) +
                                ", expected " + std::to_string(config_.dimension));
  }
  if (!AllFinite(r.vector)) return InvalidArgumentError("query vector contains NaN or Inf");
  if (r.limit < 1 || r.limit > kMaxSearchLimit) {
    return OutOfRangeError("limit must be in [1, " + std::to_string(kMaxSearchLimit) + "]");
  }
  if (r.offset > kMaxSearchOffset) {
    return OutOfRangeError("offset must be at most " + std::to_string(kMaxSearchOffset));
  }
  if (!(r.params.oversampling >= 1.0f && r.params.oversampling <= 100.0f)) {
    return OutOfRangeError("oversampling must be in [1, 100]");
  }
  if (!(r.params.target_recall >= 0 && r.params.target_recall <= 1)) {
    return OutOfRangeError("target_recall must be in [0, 1]");
  }
  if (r.score_threshold && !std::isfinite(*r.score_threshold)) {
    return InvalidArgumentError("score_threshold must be a finite number");
  }
  return Status::Ok();
}

size_t CollectionImpl::CandidateCount(const SearchRequest& r) const {
  const size_t k = r.limit + r.offset;
  if (!r.params.rescore.value_or(true)) return k;
  const double want = std::ceil(static_cast<double>(k) * r.params.oversampling);
  const double cap = static_cast<double>(std::max(k, kMaxRescoreCandidates));
  return static_cast<size_t>(std::min({want, cap, static_cast<double>(index::kMaxSearchK)}));
}

index::IvfSearchParams CollectionImpl::IndexParams(const SearchRequest& r) const {
  // The index returns int8-scored candidates only; rescoring, thresholds and
  // offset are applied outside the lock (FinishSearch).
  index::IvfSearchParams p;
  p.k = CandidateCount(r);
  p.rescore = false;
  if (ivf_ != nullptr) {
    p.nprobe = r.params.exact ? ivf_->nlist() : r.params.nprobe;
    if (p.nprobe == 0 && r.params.target_recall == 0) p.nprobe = config_.index.default_nprobe;
    p.target_recall =
        r.params.target_recall > 0 ? r.params.target_recall : config_.index.default_target_recall;
    if (p.nprobe > ivf_->nlist()) p.nprobe = ivf_->nlist();
  }
  return p;
}

StatusOr<CollectionImpl::Candidates> CollectionImpl::SearchLocked(const SearchRequest& r,
                                                                  const float* query,
                                                                  const FilterFields* fields) {
  Candidates c;
  const Filter* filter = fields != nullptr ? &*r.filter : nullptr;
  if (r.params.ignore_quantization) {
    // The float scan reads originals from the view, outside the lock; here
    // only the filter is decided.
    c.float_scan = true;
    if (filter != nullptr) {
      c.allowed.emplace();
      for (const auto& [id, label] : id_to_label_) {
        if (MatchesFilter(*filter, *fields, id)) c.allowed->insert(id);
      }
    }
    return c;
  }
  if (flat_ == nullptr && ivf_ == nullptr) {  // a calibrated collection with nothing yet
    c.exact = true;
    return c;
  }
  index::IvfSearchParams p = IndexParams(r);
  std::function<bool(uint64_t)> allowed;
  if (filter != nullptr) {
    allowed = [this, filter, fields](uint64_t label) { return Passes(*filter, *fields, label); };
    p.filter = &allowed;
  }
  if (flat_ != nullptr) {
    QVEC_ASSIGN_OR_RETURN(c.hits, flat_->Search(query, p, nullptr));
  } else {
    // Query planner: a selective filter is answered by an exact scan of the
    // allowed points (IVF probing would visit many lists to find k of
    // them); otherwise the IVF search checks the filter as it scans and
    // probes further lists until k matches are found.
    bool exact_subset = false;
    std::vector<uint64_t> subset;
    if (filter != nullptr) {
      const size_t n = id_to_label_.size();
      const size_t stride = std::max<size_t>(1, label_to_id_.size() / 2000);
      size_t seen = 0, passed = 0;
      for (size_t l = 0; l < label_to_id_.size(); l += stride) {
        if (!label_used_[l]) continue;
        ++seen;
        passed += Passes(*filter, *fields, l) ? 1 : 0;
      }
      const double selectivity = seen ? static_cast<double>(passed) / seen : 1.0;
      exact_subset = selectivity * n <= std::max<double>(20000, 0.02 * n);
      if (exact_subset) {
        for (const auto& [id, label] : id_to_label_) {
          if (MatchesFilter(*filter, *fields, id)) subset.push_back(label);
        }
      }
    }
    if (exact_subset) {
      p.filter = nullptr;
      QVEC_ASSIGN_OR_RETURN(c.hits, ivf_->SearchAllowed(query, p, subset, nullptr));
    } else {
      QVEC_ASSIGN_OR_RETURN(c.hits, ivf_->Search(query, p, nullptr));
    }
  }
  c.exact = !r.params.rescore.value_or(true);
  c.ids.reserve(c.hits.size());
  for (const index::Hit& h : c.hits) c.ids.push_back(label_to_id_[h.label]);
  return c;
}

StatusOr<std::vector<std::pair<PointId, float>>> CollectionImpl::ExactFloatSearch(
    const SearchRequest& r, const float* query, size_t k, const Candidates& c,
    const ReadView& view) {
  // Scores every original of the view; the heap keeps the k best (worst on
  // top). Every key of the view's originals is a point of its state.
  const size_t dim = config_.dimension;
  const index::Metric metric = ToMetric(config_.distance);
  using Scored = std::pair<float, PointId>;
  auto worse = [metric](const Scored& a, const Scored& b) {
    if (a.first != b.first) return index::ScoreBetter(metric, a.first, b.first);
    return a.second < b.second;
  };
  std::priority_queue<Scored, std::vector<Scored>, decltype(worse)> heap(worse);
  Status inner;
  Status scan = store_->ScanOriginals(
      cid_, dim,
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
  (void)r;
  return out;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::FinishSearch(const SearchRequest& r,
                                                                const float* query, Candidates c,
                                                                const ReadView& view,
                                                                size_t* budget) {
  const size_t k = r.limit + r.offset;
  const size_t dim = config_.dimension;
  std::vector<std::pair<PointId, float>> hits;
  if (c.float_scan) {
    QVEC_ASSIGN_OR_RETURN(hits, ExactFloatSearch(r, query, k, c, view));
  } else if (!c.exact && !c.hits.empty()) {
    // Rescoring with the originals of the view: the state the candidates
    // were found in, so every candidate is there.
    std::vector<std::string> keys = KeysOf(c.ids);
    std::vector<float> originals(keys.size() * dim);
    Status s = store_->MultiGetOriginals(cid_, keys, dim, originals.data(), view.snapshot.get());
    std::vector<PointId> ids = std::move(c.ids);
    if (s.code() == StatusCode::kNotFound) {
      // Damage (see FillRecords): drop what storage lacks, keep the rest.
      std::vector<index::Hit> kept;
      std::vector<PointId> kept_ids;
      std::vector<float> kept_originals;
      for (size_t i = 0; i < keys.size(); ++i) {
        auto sp = store_->GetPoint(cid_, keys[i], false, true, false, view.snapshot.get());
        if (!sp.ok() || sp->original.size() != dim) continue;
        kept.push_back(c.hits[i]);
        kept_ids.push_back(ids[i]);
        kept_originals.insert(kept_originals.end(), sp->original.begin(), sp->original.end());
      }
      c.hits = std::move(kept);
      ids = std::move(kept_ids);
      originals = std::move(kept_originals);
    } else if (!s.ok()) {
      return s;
    }
    // Hits carry their position in `ids` through the re-ranking.
    for (size_t i = 0; i < c.hits.size(); ++i) c.hits[i].label = i;
    index::RescoreExact(ToMetric(config_.distance), query, dim, originals.data(), &c.hits, k,
                        r.score_threshold);
    hits.reserve(c.hits.size());
    for (const index::Hit& h : c.hits) hits.emplace_back(ids[h.label], h.score);
  } else {
    hits.reserve(c.hits.size());
    for (size_t i = 0; i < c.hits.size() && hits.size() < k; ++i) {
      hits.emplace_back(c.ids[i], c.hits[i].score);
    }
  }

  std::vector<ScoredPoint> out;
  std::vector<PointId> ids;
  for (size_t i = r.offset; i < hits.size(); ++i) {
    const float score = hits[i].second;
    if (r.score_threshold && !PassesThreshold(config_.distance, score, *r.score_threshold)) {
      break;  // best first: the rest fail too
    }
    ScoredPoint sp;
    sp.id = hits[i].first;
    sp.score = score;
    ids.push_back(sp.id);
    out.push_back(std::move(sp));
  }
  {
    std::vector<std::optional<std::string>> payloads;
    std::vector<std::optional<std::vector<float>>> vectors;
    std::vector<bool> found;
    QVEC_RETURN_IF_ERROR(
        FillRecords(ids, r.with_payload, r.with_vector, view, budget, &payloads, &vectors, &found));
    std::vector<ScoredPoint> kept;
    kept.reserve(out.size());
    for (size_t i = 0; i < out.size(); ++i) {
      if (!found[i]) continue;
      if (r.with_payload) out[i].payload = std::move(payloads[i]);
      if (r.with_vector) out[i].vector = std::move(vectors[i]);
      kept.push_back(std::move(out[i]));
    }
    out = std::move(kept);
  }
  return out;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(ValidateSearch(request));
  if (request.max_result_bytes && MinResultBytes(request.limit, request.with_vector,
                                                 config_.dimension) > request.max_result_bytes) {
    return TooLarge(request.max_result_bytes);
  }
  std::vector<float> query = request.vector;
  QVEC_RETURN_IF_ERROR(preprocessor_.Apply(query.data()));
  const Filter* filter = request.filter ? &*request.filter : nullptr;
  Candidates c;
  ReadView view;
  QVEC_RETURN_IF_ERROR(
      WithReadLock({filter}, [&](const std::vector<const FilterFields*>& fields) -> Status {
        QVEC_ASSIGN_OR_RETURN(c, SearchLocked(request, query.data(), fields[0]));
        view = ViewLocked();
        return Status::Ok();
      }));
  size_t budget = request.max_result_bytes;
  return FinishSearch(request, query.data(), std::move(c), view,
                      request.max_result_bytes ? &budget : nullptr);
}

StatusOr<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    std::span<const SearchRequest> requests) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  const size_t dim = config_.dimension;
  std::vector<float> queries(requests.size() * dim);
  std::vector<const Filter*> filters;
  for (size_t i = 0; i < requests.size(); ++i) {
    const SearchRequest& r = requests[i];
    QVEC_RETURN_IF_ERROR(ValidateSearch(r).Annotate("search " + std::to_string(i)));
    std::copy(r.vector.begin(), r.vector.end(), queries.begin() + i * dim);
    QVEC_RETURN_IF_ERROR(preprocessor_.Apply(queries.data() + i * dim));
    filters.push_back(r.filter && !r.filter->empty() ? &*r.filter : nullptr);
  }
  // Refused before any search runs when the hits alone would not fit.
  if (!requests.empty() && requests[0].max_result_bytes) {
    size_t least = 0;
    for (const SearchRequest& r : requests) least += MinResultBytes(r.limit, r.with_vector, dim);
    if (least > requests[0].max_result_bytes) return TooLarge(requests[0].max_result_bytes);
  }

  // Unfiltered requests with the same parameters share one pass over the
  // codes (the index's cache-blocked batch kernels).
  bool shared = requests.size() > 1;
  for (size_t i = 0; i < requests.size(); ++i) {
    const SearchRequest& r = requests[i];
    shared = shared && filters[i] == nullptr && !r.params.ignore_quantization &&
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
      WithReadLock(filters, [&](const std::vector<const FilterFields*>& fields) -> Status {
        view = ViewLocked();
        if (shared && (flat_ != nullptr || ivf_ != nullptr)) {
          const index::IvfSearchParams p = IndexParams(requests[0]);
          std::vector<std::vector<index::Hit>> raw;
          if (flat_ != nullptr) {
            QVEC_ASSIGN_OR_RETURN(raw,
                                  flat_->SearchBatch(queries.data(), requests.size(), p, nullptr));
          } else {
            QVEC_ASSIGN_OR_RETURN(raw,
                                  ivf_->SearchBatch(queries.data(), requests.size(), p, nullptr));
          }
          for (size_t i = 0; i < requests.size(); ++i) {
            cands[i].exact = !requests[i].params.rescore.value_or(true);
            cands[i].hits = std::move(raw[i]);
            for (const index::Hit& h : cands[i].hits) {
              cands[i].ids.push_back(label_to_id_[h.label]);
            }
          }
          return Status::Ok();
        }
        for (size_t i = 0; i < requests.size(); ++i) {
          QVEC_ASSIGN_OR_RETURN(cands[i],
                                SearchLocked(requests[i], queries.data() + i * dim, fields[i]));
        }
        return Status::Ok();
      }));
  std::vector<std::vector<ScoredPoint>> out;
  out.reserve(requests.size());
  const size_t bound = requests.empty() ? 0 : requests[0].max_result_bytes;
  size_t budget = bound;
  for (size_t i = 0; i < requests.size(); ++i) {
    QVEC_ASSIGN_OR_RETURN(
        auto one, FinishSearch(requests[i], queries.data() + i * dim, std::move(cands[i]), view,
                               bound ? &budget : nullptr));
    out.push_back(std::move(one));
  }
  return out;
}

// ---- info ----

QualityReport CollectionImpl::Quality(size_t points) {
  std::optional<index::Quantizer> quantizer;
  {
    std::shared_lock lock(state_mu_);
    if (const index::Quantizer* q = ActiveQuantizer()) quantizer = *q;
  }
  std::lock_guard lock(quality_mu_);
  // Re-measured when the collection changed size by more than 10%.
  if (!quantizer || points == 0) return QualityReport();
  if (quality_.sample_size > 0 && points * 10 <= quality_points_ * 11 &&
      points * 11 >= quality_points_ * 10) {
    return quality_;
  }
  constexpr size_t kSample = 1000;
  const size_t dim = config_.dimension;
  std::vector<float> sample;
  sample.reserve(std::min(points, kSample) * dim);
  Status s = store_->ScanOriginals(cid_, dim, [&](std::string_view, const float* x) {
    sample.insert(sample.end(), x, x + dim);
    return sample.size() < kSample * dim;
  });
  if (!s.ok() || sample.empty()) return quality_;
  auto report = index::Measure(*quantizer, sample.data(), sample.size() / dim, 5000);
  if (!report.ok()) return quality_;
  quality_.sample_size = report->vectors;
  quality_.mse = report->mse;
  quality_.sqnr_db = report->sqnr_db;
  quality_.max_abs_error = report->max_abs_error;
  quality_.score_mean_abs_error = report->score_mean_abs_error;
  quality_.score_max_abs_error = report->score_max_abs_error;
  quality_points_ = points;
  return quality_;
}

StatusOr<CollectionInfo> CollectionImpl::Info() {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  CollectionInfo info;
  info.name = name_;
  info.config = config_;
  info.simd_level = std::string(index::SimdLevelName(index::ActiveSimdLevel()));
  {
    std::shared_lock lock(state_mu_);
    info.points_count = id_to_label_.size();
    info.quarantined_points = quarantined_;
    info.index.state = state_.load();
    if (ivf_ != nullptr) {
      const index::IvfHealth h = ivf_->Health();
      info.index.nlist = h.nlist;
      info.index.list_min = h.min_list;
      info.index.list_median = h.median_list;
      info.index.list_max = h.max_list;
      info.index.imbalance = h.imbalance;
      info.index.kmeans_objective = h.objective;
      info.index.training_seconds = h.training_seconds;
      info.index.trained_on_points = h.trained_on_points;
      info.index.recall_curve = h.recall_curve;
    }
    const size_t index_bytes = flat_ ? flat_->MemoryBytes() : ivf_ ? ivf_->MemoryBytes() : 0;
    info.memory_bytes = index_bytes + field_cache_.MemoryBytes() + payload_log_.MemoryBytes() +
                        label_to_id_.capacity() * sizeof(PointId) +
                        id_to_label_.size() * (sizeof(PointId) + sizeof(uint64_t) + 32);
  }
  {
    std::lock_guard lock(build_status_mu_);
    info.index.last_error = last_build_error_;
    info.index.failed_builds = build_failures_;
  }
  info.disk_bytes = store_->ApproximateDiskBytes();
  info.quality = Quality(info.points_count);
  return info;
}

}  // namespace qvec::engine
