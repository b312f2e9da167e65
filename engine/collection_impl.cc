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
#include "index/training.h"

namespace qvec::engine {
namespace {

constexpr size_t kMaxLimit = 10000;

bool AllFinite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

// Reads float originals of labels from storage for rescoring.
class StoredOriginals final : public index::OriginalsSource {
 public:
  StoredOriginals(storage::Store* store, uint32_t cid, size_t dim,
                  const std::vector<PointId>* label_to_id)
      : store_(store), cid_(cid), dim_(dim), label_to_id_(label_to_id) {}

  Status Fetch(const uint64_t* labels, size_t n, float* out) const override {
    std::vector<std::string> keys;
    keys.reserve(n);
    for (size_t i = 0; i < n; ++i) keys.push_back(EncodePointKey((*label_to_id_)[labels[i]]));
    return store_->MultiGetOriginals(cid_, keys, dim_, out);
  }

 private:
  storage::Store* store_;
  uint32_t cid_;
  size_t dim_;
  const std::vector<PointId>* label_to_id_;
};

}  // namespace

Status CollectionImpl::CheckAlive() const {
  if (dropped_.load()) return NotFoundError("collection '" + name_ + "' does not exist");
  return Status::Ok();
}

uint64_t CollectionImpl::AllocateLabel(std::vector<uint64_t>* reserved) {
  // Called under write_mu_ before the batch is committed, so the free list is
  // only consumed in ApplyUpsert; here we pick without mutating.
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
  };
  std::vector<Prepared> prepared;
  prepared.reserve(last.size());
  for (size_t i = 0; i < points.size(); ++i) {
    if (last[points[i].id] != i) continue;
    Prepared pp{i, points[i].vector, {}, 0, false};
    Status s = preprocessor_.Preprocess(pp.vector.data());
    if (!s.ok()) return s.Annotate("point " + points[i].id.ToString());
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
    QVEC_RETURN_IF_ERROR(store_->Write(&batch));

    std::unique_lock state_lock(state_mu_);
    if (calibrated) flat_ = std::make_unique<index::FlatIndex>(std::move(*calibrated));
    for (size_t r = 0; r < reserved.size() && !free_labels_.empty(); ++r) {
      if (reserved[r] == free_labels_.back()) free_labels_.pop_back();
    }
    for (const Prepared& pp : prepared) {
      const Point& p = points[pp.index];
      if (pp.label >= label_to_id_.size()) {
        label_to_id_.resize(pp.label + 1);
        label_used_.resize(pp.label + 1, false);
      }
      label_used_[pp.label] = true;
      label_to_id_[pp.label] = p.id;
      if (pp.is_new) id_to_label_.emplace(p.id, pp.label);
      // Only fails on programming errors (a wrong blob size); the batch is
      // durable either way and Load() would rebuild from it.
      (void)AddValueToIndex(pp.value);
      payload_index_.Update(pp.label, p.payload);
      if (tracking_) changed_during_build_.insert(pp.label);
    }
    writes_since_health_check_ += prepared.size();
  }
  MaybeStartTraining();
  return Status::Ok();
}

void CollectionImpl::ApplyDelete(const std::vector<uint64_t>& labels) {
  for (uint64_t label : labels) {
    id_to_label_.erase(label_to_id_[label]);
    label_used_[label] = false;
    label_to_id_[label] = PointId();
    RemoveFromIndex(label);
    payload_index_.Remove(label);
    if (tracking_) changed_during_build_.insert(label);
    free_labels_.push_back(label);
  }
}

StatusOr<size_t> CollectionImpl::Delete(std::span<const PointId> ids) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::lock_guard write_lock(write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::vector<uint64_t> labels;
  std::unordered_set<uint64_t> seen;
  storage::WriteBatch batch;
  for (const PointId& id : ids) {
    auto it = id_to_label_.find(id);
    if (it == id_to_label_.end() || !seen.insert(it->second).second) continue;
    labels.push_back(it->second);
    batch.DeletePoint(cid_, EncodePointKey(id));
  }
  if (labels.empty()) return size_t{0};
  // Memory first: a search that found one of these points must still be
  // able to read its original for rescoring, so the points leave the index
  // before their originals leave the disk.
  std::vector<PointId> deleted_ids;
  deleted_ids.reserve(labels.size());
  for (uint64_t label : labels) deleted_ids.push_back(label_to_id_[label]);
  {
    std::unique_lock state_lock(state_mu_);
    ApplyDelete(labels);
  }
  Status written = store_->Write(&batch);
  if (!written.ok()) {
    // Nothing was deleted: put the points back as they are stored.
    std::unique_lock state_lock(state_mu_);
    for (size_t i = 0; i < labels.size(); ++i) {
      auto stored = store_->GetPoint(cid_, EncodePointKey(deleted_ids[i]), true, false, true);
      if (!stored.ok()) continue;
      free_labels_.erase(std::remove(free_labels_.begin(), free_labels_.end(), labels[i]),
                         free_labels_.end());
      label_used_[labels[i]] = true;
      label_to_id_[labels[i]] = deleted_ids[i];
      id_to_label_.emplace(deleted_ids[i], labels[i]);
      (void)AddValueToIndex(stored->code);
      payload_index_.Update(labels[i], stored->payload.value_or(""));
    }
    return written;
  }
  return labels.size();
}

StatusOr<size_t> CollectionImpl::DeleteByFilter(const Filter& filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(EnsureFilterFields(filter));
  std::vector<PointId> ids;
  {
    std::shared_lock lock(state_mu_);
    for (const auto& [id, label] : id_to_label_) {
      if (Passes(filter, label)) ids.push_back(id);
    }
  }
  return Delete(ids);
}

Status CollectionImpl::SetPayload(std::span<const PointId> ids, std::string_view payload,
                                  bool overwrite) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(ValidatePayload(payload));
  std::lock_guard write_lock(write_mu_);
  storage::WriteBatch batch;
  std::vector<std::pair<uint64_t, std::string>> updates;
  for (const PointId& id : ids) {
    auto it = id_to_label_.find(id);
    if (it == id_to_label_.end()) return NotFoundError("no point with id " + id.ToString());
    std::string merged(payload);
    const std::string key = EncodePointKey(id);
    if (!overwrite) {
      QVEC_ASSIGN_OR_RETURN(storage::StoredPoint stored,
                            store_->GetPoint(cid_, key, false, false, true));
      if (stored.payload) {
        QVEC_ASSIGN_OR_RETURN(merged, MergePayloads(*stored.payload, payload));
      }
    }
    batch.PutPayload(cid_, key, merged);
    updates.emplace_back(it->second, std::move(merged));
  }
  QVEC_RETURN_IF_ERROR(store_->Write(&batch));
  std::unique_lock state_lock(state_mu_);
  for (const auto& [label, p] : updates) payload_index_.Update(label, p);
  return Status::Ok();
}

Status CollectionImpl::EnsureFilterFields(const Filter& filter) {
  std::set<std::string> keys;
  PayloadIndex::CollectKeys(filter, &keys);
  {
    std::shared_lock lock(state_mu_);
    bool all = true;
    for (const auto& k : keys) all = all && payload_index_.HasField(k);
    if (all) return Status::Ok();
  }
  // Building a field reads every stored payload; holding write_mu_ keeps
  // writers out so that no update is missed.
  std::lock_guard write_lock(write_mu_);
  for (const auto& key : keys) {
    {
      std::shared_lock lock(state_mu_);
      if (payload_index_.HasField(key)) continue;
    }
    std::vector<std::pair<uint64_t, std::string>> payloads;
    Status inner;
    Status scan = store_->ScanPayloads(cid_, [&](std::string_view k, std::string_view payload) {
      auto id = DecodePointKey(k);
      if (!id.ok()) {
        inner = id.status();
        return false;
      }
      auto it = id_to_label_.find(*id);
      if (it != id_to_label_.end()) payloads.emplace_back(it->second, std::string(payload));
      return true;
    });
    QVEC_RETURN_IF_ERROR(scan);
    QVEC_RETURN_IF_ERROR(inner);
    std::unique_lock state_lock(state_mu_);
    payload_index_.AddField(key, [&](const std::function<void(uint64_t, std::string_view)>& fn) {
      for (const auto& [label, payload] : payloads) fn(label, payload);
    });
  }
  return Status::Ok();
}

bool CollectionImpl::Passes(const Filter& filter, uint64_t label) const {
  return payload_index_.Matches(filter, label, label_to_id_[label]);
}

StatusOr<std::vector<Record>> CollectionImpl::Get(std::span<const PointId> ids, bool with_payload,
                                                  bool with_vector) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  std::vector<PointId> found;
  {
    std::shared_lock lock(state_mu_);
    std::unordered_set<PointId, PointIdHash> seen;
    for (const PointId& id : ids) {
      if (id_to_label_.count(id) && seen.insert(id).second) found.push_back(id);
    }
  }
  std::vector<std::optional<std::string>> payloads;
  std::vector<std::optional<std::vector<float>>> vectors;
  QVEC_RETURN_IF_ERROR(FillRecords(found, with_payload, with_vector, &payloads, &vectors));
  std::vector<Record> out;
  out.reserve(found.size());
  for (size_t i = 0; i < found.size(); ++i) {
    Record r;
    r.id = found[i];
    if (with_payload) r.payload = std::move(payloads[i]);
    if (with_vector) r.vector = std::move(vectors[i]);
    if (with_vector && !r.vector) continue;  // deleted between the lookup and the read
    out.push_back(std::move(r));
  }
  return out;
}

Status CollectionImpl::FillRecords(const std::vector<PointId>& ids, bool with_payload,
                                   bool with_vector,
                                   std::vector<std::optional<std::string>>* payloads,
                                   std::vector<std::optional<std::vector<float>>>* vectors) {
  payloads->assign(ids.size(), std::nullopt);
  vectors->assign(ids.size(), std::nullopt);
  if (ids.empty() || (!with_payload && !with_vector)) return Status::Ok();
  std::vector<std::string> keys;
  keys.reserve(ids.size());
  for (const PointId& id : ids) keys.push_back(EncodePointKey(id));
  if (with_payload) {
    QVEC_ASSIGN_OR_RETURN(*payloads, store_->MultiGetPayloads(cid_, keys));
    for (auto& p : *payloads) {
      if (!p) p = std::string("{}");
    }
  }
  if (with_vector) {
    const size_t dim = config_.dimension;
    std::vector<float> buf(keys.size() * dim);
    Status s = store_->MultiGetOriginals(cid_, keys, dim, buf.data());
    if (s.ok()) {
      for (size_t i = 0; i < keys.size(); ++i) {
        (*vectors)[i] = std::vector<float>(buf.begin() + i * dim, buf.begin() + (i + 1) * dim);
      }
    } else if (s.code() == StatusCode::kNotFound) {
      // A point was deleted concurrently: read one by one.
      for (size_t i = 0; i < keys.size(); ++i) {
        auto sp = store_->GetPoint(cid_, keys[i], false, true, false);
        if (sp.ok()) (*vectors)[i] = std::move(sp->original);
      }
    } else {
      return s;
    }
  }
  return Status::Ok();
}

StatusOr<size_t> CollectionImpl::Count(const Filter* filter) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  if (filter == nullptr || filter->empty()) {
    std::shared_lock lock(state_mu_);
    return id_to_label_.size();
  }
  QVEC_RETURN_IF_ERROR(EnsureFilterFields(*filter));
  std::shared_lock lock(state_mu_);
  size_t n = 0;
  for (const auto& [id, label] : id_to_label_) n += Passes(*filter, label) ? 1 : 0;
  return n;
}

StatusOr<ScrollPage> CollectionImpl::Scroll(const ScrollRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  if (request.limit < 1 || request.limit > 100000) {
    return OutOfRangeError("limit must be in [1, 100000]");
  }
  const bool filtered = request.filter && !request.filter->empty();
  if (filtered) QVEC_RETURN_IF_ERROR(EnsureFilterFields(*request.filter));
  ScrollPage page;
  std::vector<PointId> ids;
  {
    std::shared_lock lock(state_mu_);
    auto it = request.offset ? id_to_label_.lower_bound(*request.offset) : id_to_label_.begin();
    for (; it != id_to_label_.end(); ++it) {
      if (filtered && !Passes(*request.filter, it->second)) continue;
      if (ids.size() == request.limit) {
        page.next_page_offset = it->first;
        break;
      }
      ids.push_back(it->first);
    }
  }
  std::vector<std::optional<std::string>> payloads;
  std::vector<std::optional<std::vector<float>>> vectors;
  QVEC_RETURN_IF_ERROR(
      FillRecords(ids, request.with_payload, request.with_vector, &payloads, &vectors));
  for (size_t i = 0; i < ids.size(); ++i) {
    Record r;
    r.id = ids[i];
    if (request.with_payload) r.payload = std::move(payloads[i]);
    if (request.with_vector) {
      if (!vectors[i]) continue;
      r.vector = std::move(vectors[i]);
    }
    page.points.push_back(std::move(r));
  }
  return page;
}

Status CollectionImpl::ValidateSearch(const SearchRequest& r) const {
  if (r.vector.size() != config_.dimension) {
    return InvalidArgumentError("query vector has dimension " + std::to_string(r.vector.size()) +
                                ", expected " + std::to_string(config_.dimension));
  }
  if (!AllFinite(r.vector)) return InvalidArgumentError("query vector contains NaN or Inf");
  if (r.limit < 1 || r.limit > kMaxLimit) return OutOfRangeError("limit must be in [1, 10000]");
  if (r.offset > 100000) return OutOfRangeError("offset must be at most 100000");
  if (!(r.params.oversampling >= 1.0f && r.params.oversampling <= 100.0f)) {
    return OutOfRangeError("oversampling must be in [1, 100]");
  }
  if (r.params.target_recall < 0 || r.params.target_recall > 1) {
    return OutOfRangeError("target_recall must be in [0, 1]");
  }
  if (r.score_threshold && !std::isfinite(*r.score_threshold)) {
    return InvalidArgumentError("score_threshold must be a finite number");
  }
  return Status::Ok();
}

StatusOr<std::vector<std::pair<uint64_t, float>>> CollectionImpl::ExactFloatSearch(
    const SearchRequest& r, const float* query, size_t k) {
  // Scores every stored original; the heap keeps the k best (worst on top).
  const size_t dim = config_.dimension;
  const auto& kernels = index::ActiveKernels();
  const bool euclid = config_.distance == Distance::kEuclid;
  auto worse = [euclid](const std::pair<float, uint64_t>& a, const std::pair<float, uint64_t>& b) {
    return euclid ? a.first < b.first : a.first > b.first;
  };
  std::priority_queue<std::pair<float, uint64_t>, std::vector<std::pair<float, uint64_t>>,
                      decltype(worse)>
      heap(worse);
  const bool filtered = r.filter && !r.filter->empty();
  Status inner;
  Status scan = store_->ScanOriginals(cid_, dim, [&](std::string_view key, const float* x) {
    auto id = DecodePointKey(key);
    if (!id.ok()) {
      inner = id.status();
      return false;
    }
    auto it = id_to_label_.find(*id);
    if (it == id_to_label_.end()) return true;
    if (filtered && !Passes(*r.filter, it->second)) return true;
    float score =
        euclid ? std::sqrt(kernels.l2sq_f32(query, x, dim)) : kernels.dot_f32(query, x, dim);
    if (heap.size() < k) {
      heap.emplace(score, it->second);
    } else if (worse({score, it->second}, heap.top())) {
      heap.pop();
      heap.emplace(score, it->second);
    }
    return true;
  });
  QVEC_RETURN_IF_ERROR(scan);
  QVEC_RETURN_IF_ERROR(inner);
  std::vector<std::pair<uint64_t, float>> out(heap.size());
  for (size_t i = heap.size(); i-- > 0;) {
    out[i] = {heap.top().second, heap.top().first};
    heap.pop();
  }
  return out;
}

index::IvfSearchParams CollectionImpl::IndexParams(const SearchRequest& r) const {
  index::IvfSearchParams p;
  p.k = r.limit + r.offset;
  p.oversampling = r.params.oversampling;
  p.rescore = r.params.rescore.value_or(true);
  if (ivf_ != nullptr) {
    p.nprobe = r.params.exact ? ivf_->nlist() : r.params.nprobe;
    if (p.nprobe == 0 && r.params.target_recall == 0) p.nprobe = config_.index.default_nprobe;
    p.target_recall =
        r.params.target_recall > 0 ? r.params.target_recall : config_.index.default_target_recall;
    if (p.nprobe > ivf_->nlist()) p.nprobe = ivf_->nlist();
  }
  return p;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::SearchLocked(const SearchRequest& r) {
  const size_t k = r.limit + r.offset;
  std::vector<float> query = r.vector;
  QVEC_RETURN_IF_ERROR(preprocessor_.Preprocess(query.data()));
  const bool filtered = r.filter && !r.filter->empty();

  std::vector<std::pair<uint64_t, float>> hits;
  if (r.params.ignore_quantization) {
    QVEC_ASSIGN_OR_RETURN(hits, ExactFloatSearch(r, query.data(), k));
  } else {
    if (flat_ == nullptr && ivf_ == nullptr) return std::vector<ScoredPoint>();  // nothing yet
    index::IvfSearchParams p = IndexParams(r);
    std::function<bool(uint64_t)> allowed;
    if (filtered) {
      allowed = [this, &r](uint64_t label) { return Passes(*r.filter, label); };
      p.filter = &allowed;
    }
    StoredOriginals originals(store_, cid_, config_.dimension, &label_to_id_);
    const index::OriginalsSource* source = p.rescore ? &originals : nullptr;
    std::vector<index::Hit> raw;
    if (flat_ != nullptr) {
      QVEC_ASSIGN_OR_RETURN(raw, flat_->Search(query.data(), p, source));
    } else {
      // Query planner: a selective filter is answered by an exact scan of the
      // allowed points (IVF probing would visit many lists to find k of
      // them); otherwise the IVF search checks the filter as it scans and
      // probes further lists until k matches are found.
      bool exact_subset = false;
      std::vector<uint64_t> subset;
      if (filtered) {
        const size_t n = id_to_label_.size();
        const size_t stride = std::max<size_t>(1, label_to_id_.size() / 2000);
        size_t seen = 0, passed = 0;
        for (size_t l = 0; l < label_to_id_.size(); l += stride) {
          if (!label_used_[l]) continue;
          ++seen;
          passed += Passes(*r.filter, l) ? 1 : 0;
        }
        const double selectivity = seen ? static_cast<double>(passed) / seen : 1.0;
        exact_subset = selectivity * n <= std::max<double>(20000, 0.02 * n);
        if (exact_subset) {
          for (const auto& [id, label] : id_to_label_) {
            if (Passes(*r.filter, label)) subset.push_back(label);
          }
        }
      }
      if (exact_subset) {
        p.filter = nullptr;
        QVEC_ASSIGN_OR_RETURN(raw, ivf_->SearchAllowed(query.data(), p, subset, source));
      } else {
        QVEC_ASSIGN_OR_RETURN(raw, ivf_->Search(query.data(), p, source));
      }
    }
    hits.reserve(raw.size());
    for (const auto& h : raw) hits.emplace_back(h.label, h.score);
  }

  return Finalize(r, hits);
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::Finalize(
    const SearchRequest& r, const std::vector<std::pair<uint64_t, float>>& hits) {
  std::vector<ScoredPoint> out;
  std::vector<PointId> ids;
  const bool euclid = config_.distance == Distance::kEuclid;
  for (size_t i = r.offset; i < hits.size(); ++i) {
    const float score = hits[i].second;
    if (r.score_threshold) {
      if (euclid ? score > *r.score_threshold : score < *r.score_threshold) break;
    }
    ScoredPoint sp;
    sp.id = label_to_id_[hits[i].first];
    sp.score = score;
    ids.push_back(sp.id);
    out.push_back(std::move(sp));
  }
  if (r.with_payload || r.with_vector) {
    std::vector<std::optional<std::string>> payloads;
    std::vector<std::optional<std::vector<float>>> vectors;
    QVEC_RETURN_IF_ERROR(FillRecords(ids, r.with_payload, r.with_vector, &payloads, &vectors));
    for (size_t i = 0; i < out.size(); ++i) {
      if (r.with_payload) out[i].payload = std::move(payloads[i]);
      if (r.with_vector) out[i].vector = std::move(vectors[i]);
    }
  }
  return out;
}

StatusOr<std::vector<ScoredPoint>> CollectionImpl::Search(const SearchRequest& request) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(ValidateSearch(request));
  if (request.filter) QVEC_RETURN_IF_ERROR(EnsureFilterFields(*request.filter));
  std::shared_lock lock(state_mu_);
  return SearchLocked(request);
}

StatusOr<std::vector<std::vector<ScoredPoint>>> CollectionImpl::SearchBatch(
    std::span<const SearchRequest> requests) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  for (const auto& r : requests) {
    QVEC_RETURN_IF_ERROR(ValidateSearch(r));
    if (r.filter) QVEC_RETURN_IF_ERROR(EnsureFilterFields(*r.filter));
  }
  std::shared_lock lock(state_mu_);
  std::vector<std::vector<ScoredPoint>> out;
  out.reserve(requests.size());
  // Unfiltered requests with the same parameters share one pass over the
  // codes (the index's cache-blocked batch kernels).
  bool shared = requests.size() > 1 && (flat_ != nullptr || ivf_ != nullptr);
  for (const auto& r : requests) {
    shared = shared && !(r.filter && !r.filter->empty()) && !r.params.ignore_quantization &&
             r.limit + r.offset == requests[0].limit + requests[0].offset &&
             r.params.nprobe == requests[0].params.nprobe &&
             r.params.target_recall == requests[0].params.target_recall &&
             r.params.exact == requests[0].params.exact &&
             r.params.rescore == requests[0].params.rescore &&
             r.params.oversampling == requests[0].params.oversampling;
  }
  if (!shared) {
    for (const auto& r : requests) {
      QVEC_ASSIGN_OR_RETURN(auto one, SearchLocked(r));
      out.push_back(std::move(one));
    }
    return out;
  }
  const size_t dim = config_.dimension;
  std::vector<float> queries(requests.size() * dim);
  for (size_t i = 0; i < requests.size(); ++i) {
    std::copy(requests[i].vector.begin(), requests[i].vector.end(), queries.begin() + i * dim);
    QVEC_RETURN_IF_ERROR(preprocessor_.Preprocess(queries.data() + i * dim));
  }
  const index::IvfSearchParams p = IndexParams(requests[0]);
  StoredOriginals originals(store_, cid_, dim, &label_to_id_);
  const index::OriginalsSource* source = p.rescore ? &originals : nullptr;
  std::vector<std::vector<index::Hit>> raw;
  if (flat_ != nullptr) {
    QVEC_ASSIGN_OR_RETURN(raw, flat_->SearchBatch(queries.data(), requests.size(), p, source));
  } else {
    QVEC_ASSIGN_OR_RETURN(raw, ivf_->SearchBatch(queries.data(), requests.size(), p, source));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    std::vector<std::pair<uint64_t, float>> hits;
    hits.reserve(raw[i].size());
    for (const auto& h : raw[i]) hits.emplace_back(h.label, h.score);
    QVEC_ASSIGN_OR_RETURN(auto one, Finalize(requests[i], hits));
    out.push_back(std::move(one));
  }
  return out;
}

QualityReport CollectionImpl::QualityLocked(size_t points) {
  std::lock_guard lock(quality_mu_);
  // Re-measured when the collection changed size by more than 10%.
  const index::Quantizer* quantizer = ActiveQuantizer();
  if (quantizer == nullptr || points == 0) return QualityReport();
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
  std::shared_lock lock(state_mu_);
  info.points_count = id_to_label_.size();
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
  info.memory_bytes = index_bytes + payload_index_.MemoryBytes() +
                      label_to_id_.capacity() * sizeof(PointId) +
                      id_to_label_.size() * (sizeof(PointId) + sizeof(uint64_t) + 32);
  info.disk_bytes = store_->ApproximateDiskBytes();
  info.quality = QualityLocked(info.points_count);
  return info;
}

}  // namespace qvec::engine
