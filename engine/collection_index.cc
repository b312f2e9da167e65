// The vector index of a collection: creation, recovery on open, the write-side
// encoding, and the background IVF (re)build with its atomic swap.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "engine/codes_value.h"
#include "engine/collection_impl.h"
#include "engine/point_key.h"
#include "index/training.h"

namespace qvec::engine {
namespace {

// Points read per storage round trip and encoded per write batch during a
// rebuild; also the unit of lock hand-over to concurrent writers.
constexpr size_t kRebuildChunk = 4096;
// Largest k-means sample, bounding training time and memory.
constexpr size_t kMaxTrainingSample = 200000;

std::string EncodeU32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

StatusOr<uint32_t> DecodeU32(std::string_view s) {
  if (s.size() != 4) return DataLossError("malformed index generation");
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(s[i])) << (8 * i);
  return v;
}

// Reads the originals of `keys`; a key deleted meanwhile leaves its slot
// empty and `found[i]` false.
Status ReadOriginals(storage::Store* store, uint32_t cid, size_t dim,
                     const std::vector<std::string>& keys, std::vector<float>* out,
                     std::vector<bool>* found) {
  out->assign(keys.size() * dim, 0.0f);
  found->assign(keys.size(), true);
  Status s = store->MultiGetOriginals(cid, keys, dim, out->data());
  if (s.ok()) return s;
  if (s.code() != StatusCode::kNotFound) return s;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto p = store->GetPoint(cid, keys[i], false, true, false);
    if (p.ok()) {
      std::copy(p->original.begin(), p->original.end(), out->begin() + i * dim);
    } else if (p.status().code() == StatusCode::kNotFound) {
      (*found)[i] = false;
    } else {
      return p.status();
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<CollectionImpl>> CollectionImpl::Create(storage::Store* store,
                                                                 uint32_t cid, std::string name,
                                                                 CollectionConfig config,
                                                                 BuildPool* builds,
                                                                 std::shared_ptr<Logger> logger) {
  QVEC_RETURN_IF_ERROR(config.Validate());
  const index::QuantizationConfig qc = ToQuantizationConfig(config.quantization, config.distance);
  QVEC_RETURN_IF_ERROR(qc.Validate());
  auto coll = std::shared_ptr<CollectionImpl>(
      new CollectionImpl(store, cid, std::move(name), config, builds, std::move(logger)));
  if (!qc.NeedsCalibration()) {
    QVEC_ASSIGN_OR_RETURN(index::Quantizer q, index::Quantizer::Create(
                                                  config.dimension, ToMetric(config.distance), qc));
    coll->flat_ = std::make_unique<index::FlatIndex>(std::move(q));
  }
  coll->snapshot_ = store->GetSnapshot();
  return coll;
}

CollectionImpl::CollectionImpl(storage::Store* store, uint32_t cid, std::string name,
                               CollectionConfig config, BuildPool* builds,
                               std::shared_ptr<Logger> logger)
    : store_(store),
      cid_(cid),
      name_(std::move(name)),
      config_(config),
      preprocessor_(config_.dimension, ToMetric(config_.distance)),
      quant_config_(ToQuantizationConfig(config_.quantization, config_.distance)),
      builds_(builds),
      log_(std::move(logger)) {}

// Background builds hold a reference to the collection while they run, so
// by the time this runs none is left.
CollectionImpl::~CollectionImpl() = default;

void CollectionImpl::MarkDropped() {
  dropped_.store(true);
  stop_.store(true);
}

void CollectionImpl::Close() {
  stop_.store(true);
  closed_.store(true);
  std::lock_guard write_lock(write_mu_);
  std::unique_lock state_lock(state_mu_);
  snapshot_.reset();
}

StatusOr<index::Quantizer> CollectionImpl::CalibratedQuantizer(const float* vectors,
                                                               size_t n) const {
  index::QuantizationConfig qc = quant_config_;
  // Recall tuning needs held-out queries; a small sample is calibrated
  // plainly (the IVF build recalibrates later on a larger sample).
  if (qc.recall_tuned && n < 200) qc.recall_tuned = false;
  return index::TrainQuantizer(config_.dimension, ToMetric(config_.distance), qc, vectors, n);
}

const index::Quantizer* CollectionImpl::ActiveQuantizer() const {
  if (flat_) return &flat_->quantizer();
  if (ivf_) return &ivf_->quantizer();
  return nullptr;
}

Status CollectionImpl::EncodeValue(uint64_t label, const float* vector,
                                   const index::Quantizer& quantizer, const index::IvfIndex* ivf,
                                   uint32_t generation, std::string* value,
                                   std::optional<uint32_t> list) const {
  value->resize(kCodesHeaderBytes + quantizer.EncodedSize());
  QVEC_RETURN_IF_ERROR(
      quantizer.Encode(vector, reinterpret_cast<uint8_t*>(value->data()) + kCodesHeaderBytes));
  CodesHeader h;
  h.label = label;
  h.generation = generation;
  h.list = ivf == nullptr ? 0 : list ? *list : ivf->Assign(vector);
  WriteCodesHeader(h, value->data());
  return Status::Ok();
}

Status CollectionImpl::AddValueToIndex(std::string_view value) {
  if (value.size() < kCodesHeaderBytes) return DataLossError("stored code is truncated");
  const CodesHeader h = ReadCodesHeader(value);
  const auto* blob = reinterpret_cast<const uint8_t*>(value.data()) + kCodesHeaderBytes;
  const size_t size = value.size() - kCodesHeaderBytes;
  if (ivf_) {
    if (h.list >= ivf_->nlist()) return DataLossError("stored code names an unknown IVF list");
    return ivf_->Add(h.label, h.list, blob, size);
  }
  if (flat_) return flat_->Add(h.label, blob, size);
  return FailedPreconditionError("collection has no index yet");
}

void CollectionImpl::RemoveFromIndex(uint64_t label) {
  if (flat_) flat_->Remove(label);
  if (ivf_) ivf_->Remove(label);
}

void CollectionImpl::Quarantine(std::string_view key, const std::string& reason) {
  // Keep what can still be read (payload, original) under the quarantine
  // entry, and remove the point, so that the collection serves everything
  // else. Best effort: a failed write leaves the point out of memory for
  // this run and it is found again at the next open.
  std::string record;
  auto append_u32 = [&record](uint32_t v) {
    for (int i = 0; i < 4; ++i) record.push_back(static_cast<char>(v >> (8 * i)));
  };
  append_u32(static_cast<uint32_t>(reason.size()));
  record += reason;
  std::string original, payload;
  if (auto p = store_->GetPoint(cid_, key, false, true, true); p.ok()) {
    original.assign(reinterpret_cast<const char*>(p->original.data()),
                    p->original.size() * sizeof(float));
    payload = p->payload.value_or("");
  } else if (auto q = store_->GetPoint(cid_, key, false, false, true); q.ok()) {
    payload = q->payload.value_or("");
  }
  append_u32(static_cast<uint32_t>(original.size()));
  record += original;
  record += payload;
  storage::WriteBatch batch;
  batch.PutIndexState(cid_, std::string(kQuarantinePrefix) + std::string(key), record);
  batch.DeletePoint(cid_, key);
  Status s = store_->Write(&batch);
  ++quarantined_;
  auto id = DecodePointKey(key);
  log_.Error("collection '{}': point {} quarantined: {}{}", name_,
             id.ok() ? id->ToString() : "with a malformed key", reason,
             s.ok() ? "" : " (not yet recorded: " + s.ToString() + ")");
}

Status CollectionImpl::RepairPoints(const std::vector<std::pair<std::string, uint64_t>>& repair) {
  // Requires write_mu_ and the exclusive state lock (Load). Codes are derived
  // data: they are re-encoded from the originals, which are the truth.
  const size_t dim = config_.dimension;
  const index::Quantizer* q = ActiveQuantizer();
  for (size_t start = 0; start < repair.size(); start += kRebuildChunk) {
    const size_t end = std::min(repair.size(), start + kRebuildChunk);
    storage::WriteBatch batch;
    // One MultiGet per chunk; point by point only when it fails, to tell
    // which original is damaged.
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(repair[i].first);
    std::vector<float> chunk(keys.size() * dim);
    const bool chunk_ok = store_->MultiGetOriginals(cid_, keys, dim, chunk.data()).ok();
    for (size_t i = start; i < end; ++i) {
      const std::string& key = repair[i].first;
      const uint64_t label = repair[i].second;
      auto id = DecodePointKey(key);
      std::string problem;
      std::vector<float> original;
      if (chunk_ok) {
        original.assign(chunk.begin() + (i - start) * dim, chunk.begin() + (i - start + 1) * dim);
      } else {
        auto point = store_->GetPoint(cid_, key, false, true, false);
        if (!point.ok()) {
          problem = "its original cannot be read: " + point.status().message();
        } else if (point->original.size() != dim) {
          problem = "its original has " + std::to_string(point->original.size()) +
                    " values, the collection's dimension is " + std::to_string(dim);
        } else {
          original = std::move(point->original);
        }
      }
      std::string value;
      if (problem.empty()) {
        Status s = q == nullptr
                       ? DataLossError("the collection has no calibration")
                       : EncodeValue(label, original.data(), *q, ivf_.get(), generation_, &value);
        if (!s.ok()) problem = "its original cannot be encoded: " + s.message();
      }
      if (problem.empty()) {
        Status s = AddValueToIndex(value);
        if (!s.ok()) problem = "its code cannot be indexed: " + s.message();
      }
      if (!problem.empty()) {
        Quarantine(key, problem);
        continue;
      }
      if (label >= label_to_id_.size()) {
        label_to_id_.resize(label + 1);
        label_used_.resize(label + 1, false);
      }
      label_used_[label] = true;
      label_to_id_[label] = *id;
      id_to_label_.emplace(*id, label);
      batch.PutCode(cid_, key, value);
    }
    Status written = store_->Write(&batch);
    if (!written.ok()) {
      log_.Warn(
          "collection '{}': repaired codes not written (they are repaired again at the next "
          "open): {}",
          name_, written.ToString());
    }
  }
  return Status::Ok();
}

Status CollectionImpl::Load() {
  std::lock_guard write_lock(write_mu_);
  std::unique_lock state_lock(state_mu_);
  const size_t dim = config_.dimension;
  // Codes, calibration and the IVF model are derived from the originals;
  // when one of them is unusable the collection is re-encoded from the
  // originals (as a flat index; the background build makes IVF again)
  // instead of refusing to open.
  bool reencode_all = false;
  auto derived_damage = [&](const std::string& what, const Status& s) {
    log_.Error("collection '{}': {} is damaged ({}); re-encoding every point from its original",
               name_, what, s.ToString());
    reencode_all = true;
  };

  auto gen = store_->GetIndexState(cid_, kGenerationStateKey);
  if (gen.ok()) {
    auto g = DecodeU32(*gen);
    if (g.ok()) {
      generation_ = *g;
    } else {
      derived_damage("the index generation", g.status());
    }
  } else if (gen.status().code() != StatusCode::kNotFound) {
    return gen.status();
  }
  std::optional<index::Quantizer> quantizer;
  if (flat_) quantizer = flat_->quantizer();
  bool recalibrate = false;
  auto calib = store_->GetIndexState(cid_, kCalibrationStateKey);
  if (calib.ok()) {
    auto params = index::CalibrationParams::Deserialize(*calib);
    StatusOr<index::Quantizer> q =
        params.ok()
            ? index::Quantizer::Create(dim, ToMetric(config_.distance), quant_config_, &*params)
            : StatusOr<index::Quantizer>(params.status());
    if (q.ok()) {
      quantizer = std::move(*q);
    } else {
      derived_damage("the calibration", q.status());
      recalibrate = true;
    }
  } else if (calib.status().code() != StatusCode::kNotFound) {
    return calib.status();
  }
  std::optional<index::IvfModel> model;
  if (generation_ > 0 && !reencode_all) {
    auto bytes = store_->GetIndexState(cid_, kModelStateKey);
    StatusOr<index::IvfModel> m = bytes.ok() ? index::IvfModel::Deserialize(*bytes)
                                             : StatusOr<index::IvfModel>(bytes.status());
    if (m.ok() && !quantizer) m = DataLossError("IVF model without calibration");
    if (m.ok()) {
      model = std::move(*m);
    } else if (m.status().code() == StatusCode::kNotFound ||
               m.status().code() == StatusCode::kDataLoss ||
               m.status().code() == StatusCode::kInvalidArgument) {
      derived_damage("the IVF model", m.status());
    } else {
      return m.status();
    }
  }
  if (model) {
    auto ivf = index::IvfIndex::Create(*quantizer, std::move(*model));
    if (ivf.ok()) {
      ivf_ = std::make_unique<index::IvfIndex>(std::move(*ivf));
      flat_.reset();
      state_.store(IndexInfo::State::kIvf);
    } else {
      derived_damage("the IVF model", ivf.status());
    }
  }
  if (!ivf_ && quantizer) flat_ = std::make_unique<index::FlatIndex>(std::move(*quantizer));

  // Points, each with the code of the active generation; others (left by a
  // crash during a rebuild, or damaged) are re-encoded from their originals.
  std::vector<std::pair<std::string, uint64_t>> repair;
  std::vector<std::string> relabel;  // repairs that need a fresh label
  uint32_t max_generation = generation_;
  Status scan = store_->ScanCodes(cid_, [&](std::string_view key, std::string_view value) {
    auto id = DecodePointKey(key);
    if (!id.ok()) {
      Quarantine(key, "its key is not a point id");
      return true;
    }
    if (value.size() < kCodesHeaderBytes) {
      relabel.emplace_back(key);
      return true;
    }
    const CodesHeader h = ReadCodesHeader(value);
    max_generation = std::max(max_generation, h.generation);
    if (h.label > (uint64_t{1} << 40) || (h.label < label_used_.size() && label_used_[h.label])) {
      relabel.emplace_back(key);
      return true;
    }
    const index::Quantizer* q = ActiveQuantizer();
    if (reencode_all || q == nullptr || h.generation != generation_ ||
        value.size() != kCodesHeaderBytes + q->EncodedSize() || !AddValueToIndex(value).ok()) {
      repair.emplace_back(std::string(key), h.label);
      // Reserve the label now so that no relabelled point takes it.
      if (h.label >= label_used_.size()) {
        label_to_id_.resize(h.label + 1);
        label_used_.resize(h.label + 1, false);
      }
      label_used_[h.label] = true;
      return true;
    }
    if (h.label >= label_to_id_.size()) {
      label_to_id_.resize(h.label + 1);
      label_used_.resize(h.label + 1, false);
    }
    label_used_[h.label] = true;
    label_to_id_[h.label] = *id;
    // Codes arrive in key order, which is id order: appending is O(1).
    id_to_label_.emplace_hint(id_to_label_.end(), *id, h.label);
    return true;
  });
  QVEC_RETURN_IF_ERROR(scan);
  next_generation_ = max_generation + 1;
  uint64_t label = 0;
  for (auto& key : relabel) {
    // The next label not in use.
    while (label < label_used_.size() && label_used_[label]) ++label;
    if (label >= label_used_.size()) {
      label_to_id_.resize(label + 1);
      label_used_.resize(label + 1, false);
    }
    label_used_[label] = true;
    repair.emplace_back(std::move(key), label);
  }
  for (const auto& [key, label] : repair) label_used_[label] = false;  // RepairPoints sets them

  if (reencode_all && !repair.empty()) {
    // A fresh generation for the flat index every point is re-encoded for.
    generation_ = next_generation_++;
    ivf_.reset();
    state_.store(IndexInfo::State::kFlat);
    if (recalibrate || (!ActiveQuantizer() && quant_config_.NeedsCalibration())) {
      // Calibrate on (up to) the first 20000 readable originals.
      std::vector<float> sample;
      for (size_t i = 0; i < repair.size() && sample.size() < 20000 * dim; ++i) {
        auto p = store_->GetPoint(cid_, repair[i].first, false, true, false);
        if (!p.ok() || p->original.size() != dim) continue;
        std::vector<float> v = p->original;
        if (!preprocessor_.Apply(v.data()).ok()) continue;
        sample.insert(sample.end(), v.begin(), v.end());
      }
      if (!sample.empty()) {
        auto q = CalibratedQuantizer(sample.data(), sample.size() / dim);
        if (q.ok()) flat_ = std::make_unique<index::FlatIndex>(std::move(*q));
      }
    } else if (!flat_ && ActiveQuantizer() == nullptr) {
      // unreachable: a quantizer exists unless calibration is missing
    }
    if (!flat_) {
      if (const index::Quantizer* q = ActiveQuantizer()) {
        flat_ = std::make_unique<index::FlatIndex>(*q);
      }
    }
    storage::WriteBatch batch;
    batch.PutIndexState(cid_, kGenerationStateKey, EncodeU32(generation_));
    batch.DeleteIndexState(cid_, kModelStateKey);
    if (flat_ && flat_->quantizer().calibration() != nullptr) {
      batch.PutIndexState(cid_, kCalibrationStateKey,
                          flat_->quantizer().calibration()->Serialize());
    }
    Status written = store_->Write(&batch);
    if (!written.ok()) {
      log_.Warn("collection '{}': new index state not written: {}", name_, written.ToString());
    }
  }
  QVEC_RETURN_IF_ERROR(RepairPoints(repair));
  free_labels_.clear();
  for (uint64_t l = label_used_.size(); l-- > 0;) {
    if (!label_used_[l]) free_labels_.push_back(l);
  }
  quarantined_ = 0;  // counted again below, with this run's entries
  Status counted =
      store_->ScanIndexState(cid_, kQuarantinePrefix, [&](std::string_view, std::string_view) {
        ++quarantined_;
        return true;
      });
  if (!counted.ok()) log_.Warn("collection '{}': {}", name_, counted.ToString());
  snapshot_ = store_->GetSnapshot();
  return Status::Ok();
}

bool CollectionImpl::NeedsTraining() {
  std::shared_lock lock(state_mu_);
  const size_t n = id_to_label_.size();
  if (flat_ != nullptr) return n >= config_.index.ivf_threshold;
  if (ivf_ == nullptr) return false;
  const uint64_t trained = ivf_->model().trained_on_points;
  if (trained > 0 && n >= 4 * trained) return true;
  if (writes_since_health_check_ < 10000) return false;
  writes_since_health_check_ = 0;
  return ivf_->size() >= 64 * size_t{ivf_->nlist()} && ivf_->Health().imbalance > 8.0;
}

void CollectionImpl::MaybeStartTraining() {
  if (builds_ == nullptr || training_.load() || stop_.load()) return;
  {
    std::lock_guard lock(build_status_mu_);
    if (std::chrono::steady_clock::now() < next_build_attempt_) return;
  }
  if (!NeedsTraining()) return;
  bool expected = false;
  if (!training_.compare_exchange_strong(expected, true)) return;
  std::weak_ptr<CollectionImpl> weak = weak_from_this();
  const bool queued = builds_->Submit([weak] {
    if (auto self = weak.lock()) {
      self->RunBackgroundBuild();
    }
  });
  if (!queued) training_.store(false);
}

void CollectionImpl::RunBackgroundBuild() {
  // Writes that arrive during a build cannot start another one, so the task
  // checks again when it is done (a collection loaded in bulk may outgrow
  // the index it just trained).
  for (;;) {
    if (stop_.load()) break;
    const Status s = TrainAndSwap();
    std::lock_guard lock(build_status_mu_);
    if (!s.ok()) {
      if (stop_.load()) break;  // dropped or closing: not a failure
      ++build_failures_;
      last_build_error_ = s.ToString();
      const int shift = static_cast<int>(std::min<size_t>(build_failures_ - 1, 6));
      const auto delay = std::min(std::chrono::seconds(10 << shift), std::chrono::seconds(600));
      next_build_attempt_ = std::chrono::steady_clock::now() + delay;
      log_.Warn("collection '{}': index build failed ({} in a row), retrying in {} s: {}", name_,
                build_failures_, delay.count(), last_build_error_);
      break;
    }
    build_failures_ = 0;
    last_build_error_.clear();
    if (!NeedsTraining()) break;
  }
  training_.store(false);
}

Status CollectionImpl::Optimize() {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  // Wait for a running background build to finish first.
  bool expected = false;
  while (!training_.compare_exchange_strong(expected, true)) {
    expected = false;
    QVEC_RETURN_IF_ERROR(CheckAlive());
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Status s = TrainAndSwap();
  {
    std::lock_guard lock(build_status_mu_);
    if (s.ok()) {
      build_failures_ = 0;
      last_build_error_.clear();
    }
  }
  training_.store(false);
  return s;
}

Status CollectionImpl::TrainAndSwap() {
  const size_t dim = config_.dimension;
  const IndexInfo::State previous = state_.load();
  state_.store(IndexInfo::State::kTraining);
  auto restore = [&](Status s) {
    {
      std::lock_guard write_lock(write_mu_);
      tracking_ = false;
      changed_during_build_.clear();
    }
    state_.store(previous);
    return s;
  };

  // 1. The points to index, taken at the instant tracking starts, so that
  //    every later write is replayed at the swap.
  std::vector<std::pair<uint64_t, PointId>> members;
  std::optional<index::Quantizer> current;
  uint32_t generation;
  {
    std::lock_guard write_lock(write_mu_);
    std::shared_lock state_lock(state_mu_);
    members.reserve(id_to_label_.size());
    for (const auto& [id, label] : id_to_label_) members.emplace_back(label, id);
    if (const index::Quantizer* q = ActiveQuantizer()) current = *q;
    tracking_ = true;
    changed_during_build_.clear();
    generation = next_generation_++;
  }
  if (members.empty() || !current) return restore(FailedPreconditionError("collection is empty"));

  // 2. A seeded sample of the float originals, for k-means and calibration.
  const uint32_t nlist = std::min<uint32_t>(
      config_.index.nlist ? config_.index.nlist : index::DefaultNlist(members.size()),
      static_cast<uint32_t>(std::max<size_t>(1, members.size())));
  const size_t sample_size =
      std::min({members.size(), std::max<size_t>(size_t{256} * nlist, 20000), kMaxTrainingSample});
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(0x5eed0000ULL + cid_);
  for (size_t i = 0; i < sample_size; ++i) {
    std::swap(order[i], order[i + rng() % (order.size() - i)]);
  }
  std::vector<float> sample;
  sample.reserve(sample_size * dim);
  for (size_t start = 0; start < sample_size; start += kRebuildChunk) {
    if (stop_.load()) return restore(AbortedError("collection dropped or closing"));
    const size_t end = std::min(sample_size, start + kRebuildChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(EncodePointKey(members[order[i]].second));
    std::vector<float> chunk;
    std::vector<bool> found;
    Status s = ReadOriginals(store_, cid_, dim, keys, &chunk, &found);
    if (!s.ok()) return restore(s);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (found[i])
        sample.insert(sample.end(), chunk.begin() + i * dim, chunk.begin() + (i + 1) * dim);
    }
  }
  const size_t sampled = sample.size() / dim;
  if (sampled == 0) return restore(FailedPreconditionError("collection is empty"));

  // 3. Calibration (if configured) and k-means, both on the sample.
  index::Quantizer quantizer = *current;
  if (quant_config_.NeedsCalibration()) {
    auto q = CalibratedQuantizer(sample.data(), sampled);
    if (!q.ok()) return restore(q.status());
    quantizer = std::move(*q);
  }
  index::IvfTrainOptions options;
  options.nlist = std::min<uint32_t>(nlist, static_cast<uint32_t>(sampled));
  options.cancel = &stop_;
  auto model = index::TrainIvf(quantizer, sample.data(), sampled, options);
  if (!model.ok()) return restore(model.status());
  model->trained_on_points = members.size();
  const std::string model_bytes = model->Serialize();
  auto built = index::IvfIndex::Create(quantizer, std::move(*model));
  if (!built.ok()) return restore(built.status());
  auto ivf = std::make_unique<index::IvfIndex>(std::move(*built));
  sample.clear();
  sample.shrink_to_fit();

  // 4. Every point, encoded and assigned for the new index and rewritten with
  //    the new generation. Points written meanwhile are skipped here and
  //    replayed at the swap.
  for (size_t start = 0; start < members.size(); start += kRebuildChunk) {
    if (stop_.load()) return restore(AbortedError("collection dropped or closing"));
    const size_t end = std::min(members.size(), start + kRebuildChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(EncodePointKey(members[i].second));
    std::vector<float> originals;
    std::vector<bool> found;
    Status s = ReadOriginals(store_, cid_, dim, keys, &originals, &found);
    if (!s.ok()) return restore(s);
    std::vector<std::string> values(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!found[i]) continue;
      s = EncodeValue(members[start + i].first, originals.data() + i * dim, quantizer, ivf.get(),
                      generation, &values[i]);
      if (!s.ok()) return restore(s);
    }
    {
      std::lock_guard write_lock(write_mu_);
      storage::WriteBatch batch;
      for (size_t i = 0; i < keys.size(); ++i) {
        const uint64_t label = members[start + i].first;
        if (!found[i] || changed_during_build_.count(label) || !label_used_[label] ||
            !(label_to_id_[label] == members[start + i].second)) {
          continue;
        }
        (void)ivf->Add(label, ReadCodesHeader(values[i]).list,
                       reinterpret_cast<const uint8_t*>(values[i].data()) + kCodesHeaderBytes,
                       values[i].size() - kCodesHeaderBytes);
        batch.PutCode(cid_, keys[i], values[i]);
      }
      s = store_->Write(&batch);
    }
    // restore() takes write_mu_ itself.
    if (!s.ok()) return restore(s);
  }

  // 5. The swap: replay the writes made during the build, then persist the
  //    new generation, model and calibration in one batch and switch.
  std::lock_guard write_lock(write_mu_);
  if (stop_.load() || dropped_.load()) {
    tracking_ = false;
    changed_during_build_.clear();
    state_.store(previous);
    return AbortedError("collection dropped or closing");
  }
  storage::WriteBatch batch;
  std::vector<uint64_t> replay(changed_during_build_.begin(), changed_during_build_.end());
  std::vector<std::string> keys;
  std::vector<uint64_t> live;
  for (uint64_t label : replay) {
    if (label < label_used_.size() && label_used_[label]) {
      keys.push_back(EncodePointKey(label_to_id_[label]));
      live.push_back(label);
    } else {
      ivf->Remove(label);
    }
  }
  std::vector<float> originals;
  std::vector<bool> found;
  Status s = ReadOriginals(store_, cid_, dim, keys, &originals, &found);
  if (!s.ok()) {
    tracking_ = false;
    changed_during_build_.clear();
    state_.store(previous);
    return s;
  }
  for (size_t i = 0; i < live.size(); ++i) {
    if (!found[i]) continue;
    std::string value;
    s = EncodeValue(live[i], originals.data() + i * dim, quantizer, ivf.get(), generation, &value);
    if (s.ok()) {
      s = ivf->Add(live[i], ReadCodesHeader(value).list,
                   reinterpret_cast<const uint8_t*>(value.data()) + kCodesHeaderBytes,
                   value.size() - kCodesHeaderBytes);
    }
    if (!s.ok()) {
      tracking_ = false;
      changed_during_build_.clear();
      state_.store(previous);
      return s;
    }
    batch.PutCode(cid_, keys[i], value);
  }
  batch.PutIndexState(cid_, kModelStateKey, model_bytes);
  batch.PutIndexState(cid_, kGenerationStateKey, EncodeU32(generation));
  if (quantizer.calibration() != nullptr) {
    batch.PutIndexState(cid_, kCalibrationStateKey, quantizer.calibration()->Serialize());
  }
  s = store_->Write(&batch);
  tracking_ = false;
  changed_during_build_.clear();
  if (!s.ok()) {
    state_.store(previous);
    return s;
  }
  ivf->ShrinkToFit();
  std::unique_lock state_lock(state_mu_);
  ivf_ = std::move(ivf);
  flat_.reset();
  generation_ = generation;
  writes_since_health_check_ = 0;
  state_.store(IndexInfo::State::kIvf);
  return Status::Ok();
}

}  // namespace qvec::engine
