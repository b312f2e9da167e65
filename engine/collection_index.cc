// The vector indexes of a collection: creation, recovery on open, the
// write-side encoding, and the generic background build with its swap.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>
#include <unordered_set>

#include "common/point_key.h"
#include "engine/codes_value.h"
#include "engine/collection_impl.h"
#include "engine/collection_meta.h"
#include "index/training.h"

namespace qvec::engine {
namespace {

// Points read per storage round trip and encoded per write batch during a
// rebuild; also the unit of lock hand-over to concurrent writers.
constexpr size_t kRebuildChunk = 4096;
// A calibrated flat field recalibrates when it has grown 4x past the sample
// its calibration saw, while that sample was smaller than this (above it, a
// calibration is representative enough).
constexpr uint64_t kRecalibrationCap = 100000;

// Reads the originals of field `field` of `keys`; a key deleted meanwhile
// leaves its slot empty and `found[i]` false. A damaged original (wrong
// size, failed checksum) is an error, unless `damaged_as_missing` (loading
// repairs, which quarantine such points).
Status ReadOriginals(storage::Store* store, uint32_t cid, uint16_t field, size_t dim,
                     const std::vector<std::string>& keys, std::vector<float>* out,
                     std::vector<bool>* found, bool damaged_as_missing = false) {
  out->assign(keys.size() * dim, 0.0f);
  found->assign(keys.size(), true);
  Status s = store->MultiGetOriginals(cid, field, keys, dim, out->data());
  if (s.ok()) return s;
  if (s.code() != StatusCode::kNotFound &&
      !(damaged_as_missing && s.code() == StatusCode::kDataLoss))
    return s;
  for (size_t i = 0; i < keys.size(); ++i) {
    auto v = store->GetOriginal(cid, field, keys[i]);
    if (v.ok() && v->size() == dim) {
      std::copy(v->begin(), v->end(), out->begin() + i * dim);
    } else if (!v.ok() && v.status().code() == StatusCode::kNotFound) {
      (*found)[i] = false;
    } else if (damaged_as_missing) {
      (*found)[i] = false;
    } else {
      return v.ok() ? DataLossError("an original has the wrong size") : v.status();
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::shared_ptr<CollectionImpl>> CollectionImpl::Create(
    storage::Store* store, uint32_t cid, std::string name, CollectionConfig config,
    std::map<std::string, uint16_t> field_ids, bool legacy_state, BuildPool* builds,
    std::shared_ptr<Logger> logger) {
  QVEC_RETURN_IF_ERROR(config.Validate());
  for (const auto& [fname, field] : config.Fields()) {
    if (!field_ids.count(fname)) return InternalError("vector '" + fname + "' has no field id");
    QVEC_RETURN_IF_ERROR(
        ToQuantizationConfig(field.quantization, field.distance).Validate().Annotate(fname));
  }
  auto coll = std::shared_ptr<CollectionImpl>(
      new CollectionImpl(store, cid, std::move(name), std::move(config), field_ids, legacy_state,
                         builds, std::move(logger)));
  for (auto& f : coll->fields_) {
    if (!f->quant.NeedsCalibration()) {
      QVEC_ASSIGN_OR_RETURN(index::Quantizer q,
                            index::Quantizer::Create(f->config.dimension, f->metric, f->quant));
      QVEC_ASSIGN_OR_RETURN(f->index, index::CreateIndex(index::kInitialIndexKind, q, ""));
    }
  }
  {
    WriterLock state_lock(&coll->state_mu_);  // not shared yet; for the analysis
    coll->snapshot_ = store->GetSnapshot();
  }
  return coll;
}

CollectionImpl::CollectionImpl(storage::Store* store, uint32_t cid, std::string name,
                               CollectionConfig config,
                               const std::map<std::string, uint16_t>& field_ids, bool legacy_state,
                               BuildPool* builds, std::shared_ptr<Logger> logger)
    : store_(store),
      cid_(cid),
      name_(std::move(name)),
      builds_(builds),
      log_(std::move(logger)),
      legacy_state_(legacy_state),
      single_vector_(config.single_vector()),
      config_(std::move(config)) {
  for (const auto& [fname, field] : config_.Fields()) {
    fields_.push_back(std::make_unique<VectorField>(fname, field_ids.at(fname), field));
    field_by_name_[fname] = fields_.back().get();
  }
  for (const auto& [fname, field] : config_.sparse_vectors) {
    const uint64_t bit = uint64_t{1} << (fields_.size() + sparse_fields_.size());
    sparse_fields_.push_back(std::make_unique<SparseField>(fname, field_ids.at(fname), field, bit));
    sparse_by_name_[fname] = sparse_fields_.back().get();
  }
}

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
  MutexLock write_lock(&write_mu_);
  WriterLock state_lock(&state_mu_);
  snapshot_.reset();
}

Status CollectionImpl::UpdateConfig(const CollectionConfig& next) {
  QVEC_RETURN_IF_ERROR(CheckAlive());
  QVEC_RETURN_IF_ERROR(next.Validate());
  const auto next_fields = next.Fields();
  if (next.single_vector() != single_vector_ || next_fields.size() != fields_.size()) {
    return InvalidArgumentError("the vector fields of a collection cannot be added or removed");
  }
  if (next.sparse_vectors.size() != sparse_fields_.size()) {
    return InvalidArgumentError("sparse_vectors: sparse fields cannot be added or removed");
  }
  for (const auto& sf : sparse_fields_) {
    auto it = next.sparse_vectors.find(sf->name);
    if (it == next.sparse_vectors.end()) {
      return InvalidArgumentError("sparse_vectors: sparse fields cannot be added or removed");
    }
    if (it->second.modifier != sf->config.modifier ||
        it->second.full_scan_threshold != sf->config.full_scan_threshold) {
      return InvalidArgumentError("sparse_vectors." + sf->name +
                                  ": the modifier and index options of a sparse field cannot "
                                  "change yet");
    }
  }
  struct Change {
    VectorField* f;
    index::QuantizationConfig quant;
    IndexOptions index;
  };
  std::vector<Change> changes;
  for (auto& f : fields_) {
    auto it = next_fields.find(f->name);
    const std::string where = f->name.empty() ? "vectors" : "vectors." + f->name;
    if (it == next_fields.end()) {
      return InvalidArgumentError(where + ": the vector fields of a collection cannot change");
    }
    if (it->second.dimension != f->config.dimension || it->second.distance != f->config.distance) {
      return InvalidArgumentError(where + ": size and distance cannot change");
    }
    index::QuantizationConfig q = ToQuantizationConfig(it->second.quantization, f->config.distance);
    QVEC_RETURN_IF_ERROR(q.Validate().Annotate(where));
    changes.push_back({f.get(), q, it->second.index});
  }
  std::map<std::string, uint16_t> ids;
  for (const auto& f : fields_) ids[f->name] = f->id;

  MutexLock write_lock(&write_mu_);
  QVEC_RETURN_IF_ERROR(CheckAlive());
  storage::WriteBatch batch;
  batch.PutCollection(cid_, name_, EncodeCollectionConfig(next, ids));
  std::vector<bool> rebuild(changes.size(), false), empty(changes.size(), false);
  {
    WriterReads reads(this);
    for (size_t i = 0; i < changes.size(); ++i) {
      VectorField& f = *changes[i].f;
      const bool quant_changed = !SameQuant(changes[i].quant, f.quant);
      const bool ivf = f.index && f.index->kind() == index::IndexKind::kIvf;
      const size_t n = f.index ? f.index->size() : 0;
      // Also when the threshold moves the field to the other index kind, so
      // that the pending rebuild shows in Info at once.
      rebuild[i] = quant_changed || (ivf && changes[i].index.nlist != f.nlist.load()) ||
                   (ivf && static_cast<uint8_t>(changes[i].index.first_pass) !=
                               f.first_pass.load()) ||
                   (ivf && n < changes[i].index.ivf_threshold) ||
                   (!ivf && n > 0 && n >= changes[i].index.ivf_threshold);
      empty[i] = n == 0;
      if (empty[i] && quant_changed) {
        // Nothing to re-encode: the field starts over with the new quantization
        // (a calibrated one calibrates on its first vectors).
        for (std::string_view key :
             {kKindState, kIndexState, kCalibrationState, kCalibratedOnState, kQuantConfigState}) {
          batch.DeleteIndexState(cid_, StateKey(f, key));
        }
      } else if (!SameQuant(f.index_quant, changes[i].quant)) {
        // The stored index stays as it is until its rebuild: record what it
        // was made with, so that it loads after a restart too.
        batch.PutIndexState(cid_, StateKey(f, kQuantConfigState), EncodeQuantConfig(f.index_quant));
      } else {
        batch.DeleteIndexState(cid_, StateKey(f, kQuantConfigState));
      }
    }
  }
  QVEC_RETURN_IF_ERROR(store_->Write(&batch));
  {
    WriterLock state_lock(&state_mu_);
    for (size_t i = 0; i < changes.size(); ++i) {
      VectorField& f = *changes[i].f;
      const bool quant_changed = !SameQuant(changes[i].quant, f.quant);
      f.quant = changes[i].quant;
      f.nlist.store(changes[i].index.nlist);
      f.first_pass.store(static_cast<uint8_t>(changes[i].index.first_pass));
      f.ivf_threshold.store(changes[i].index.ivf_threshold);
      f.default_nprobe.store(changes[i].index.default_nprobe);
      f.default_target_recall.store(changes[i].index.default_target_recall);
      if (!rebuild[i]) continue;
      ++f.rebuild_epoch;
      if (empty[i] && quant_changed) {
        f.index.reset();
        f.calibrated_on = 0;
        if (!f.quant.NeedsCalibration()) {
          auto q = index::Quantizer::Create(f.config.dimension, f.metric, f.quant);
          if (q.ok()) {
            auto flat = index::CreateIndex(index::kInitialIndexKind, *q, "");
            if (flat.ok()) f.index = std::move(*flat);
          }
        }
        f.index_quant = f.quant;
        f.built_epoch = f.rebuild_epoch;
        f.state.store(StateOf(f.index.get()));
      }
    }
    MutexLock config_lock(&config_mu_);
    config_ = next;
  }
  return Status::Ok();
}

std::string CollectionImpl::StateKey(const VectorField& f, std::string_view name) {
  return "field/" + std::to_string(f.id) + "/" + std::string(name);
}

StatusOr<index::Quantizer> CollectionImpl::CalibratedQuantizer(
    const VectorField& f, const index::QuantizationConfig& quant, const float* vectors,
    size_t n) const {
  index::QuantizationConfig qc = quant;
  // Recall tuning needs held-out queries; a small sample is calibrated
  // plainly (a later build recalibrates on a larger sample).
  if (qc.recall_tuned && n < 200) qc.recall_tuned = false;
  return index::TrainQuantizer(f.config.dimension, f.metric, qc, vectors, n);
}

Status CollectionImpl::EncodeValue(uint64_t label, const float* vector,
                                   const index::VectorIndex& index, uint32_t generation,
                                   uint32_t slot, std::string* value) const {
  const index::Quantizer& q = index.quantizer();
  value->resize(kCodesHeaderBytes + q.EncodedSize());
  QVEC_RETURN_IF_ERROR(
      q.Encode(vector, reinterpret_cast<uint8_t*>(value->data()) + kCodesHeaderBytes));
  CodesHeader h;
  h.label = label;
  h.generation = generation;
  h.list = slot;
  WriteCodesHeader(h, value->data());
  return Status::Ok();
}

Status CollectionImpl::AddValue(VectorField& f, std::string_view value) {
  if (value.size() < kCodesHeaderBytes) return DataLossError("stored code is truncated");
  if (f.index == nullptr) return FailedPreconditionError("vector field has no index yet");
  const CodesHeader h = ReadCodesHeader(value);
  if (h.list >= f.index->num_slots()) return DataLossError("stored code names an unknown slot");
  return f.index->AddCode(h.label, h.list,
                          reinterpret_cast<const uint8_t*>(value.data()) + kCodesHeaderBytes,
                          value.size() - kCodesHeaderBytes);
}

// ---- open ----

void CollectionImpl::Quarantine(std::string_view key, const std::string& reason) {
  // Keep what can still be read (payload, originals) under the quarantine
  // entry, and remove the point, so that the collection serves everything
  // else. Best effort: a failed write leaves the point out of memory for
  // this run and it is found again at the next open.
  std::string record;
  coding::PutFixed32(&record, static_cast<uint32_t>(reason.size()));
  record += reason;
  std::string vectors;
  uint32_t count = 0;
  std::vector<uint16_t> ids;
  for (const auto& f : fields_) {
    ids.push_back(f->id);
    auto v = store_->GetOriginal(cid_, f->id, key);
    if (!v.ok()) continue;
    ++count;
    vectors.push_back(static_cast<char>(f->id));
    vectors.push_back(static_cast<char>(f->id >> 8));
    const uint32_t bytes = static_cast<uint32_t>(v->size() * sizeof(float));
    coding::PutFixed32(&vectors, bytes);
    vectors.append(reinterpret_cast<const char*>(v->data()), bytes);
  }
  coding::PutFixed32(&record, count);
  record += vectors;
  if (auto p = store_->GetPayload(cid_, key); p.ok() && *p) record += **p;
  storage::WriteBatch batch;
  batch.PutIndexState(cid_, std::string(kQuarantinePrefix) + std::string(key), record);
  batch.DeletePoint(cid_, key, ids);
  Status s = store_->Write(&batch);
  ++quarantined_;
  auto id = DecodePointKey(key);
  log_.Error("collection '{}': point {} quarantined: {}{}", name_,
             id.ok() ? id->ToString() : "with a malformed key", reason,
             s.ok() ? "" : " (not yet recorded: " + s.ToString() + ")");
}

void CollectionImpl::RegisterLoaded(const PointId& id, uint64_t label) {
  if (label >= label_to_id_.size()) {
    label_to_id_.resize(label + 1);
    label_used_.resize(label + 1, false);
    field_mask_.resize(label + 1, 0);
  }
  label_used_[label] = true;
  label_to_id_[label] = id;
  id_to_label_[id] = label;
}

Status CollectionImpl::LoadField(VectorField& f, size_t field_index, std::set<std::string>* pending,
                                 std::vector<std::string>* repair, storage::WriteBatch* fixes) {
  const size_t dim = f.config.dimension;
  const bool legacy = legacy_state_ && f.id == 0;
  bool reencode_all = false;
  auto damage = [&](const std::string& what, const Status& s) {
    log_.Error(
        "collection '{}' vector '{}': {} is damaged ({}); re-encoding every vector from "
        "its original",
        name_, f.name, what, s.ToString());
    reencode_all = true;
  };
  auto state = [&](std::string_view v2_name,
                   std::string_view v1_name) -> StatusOr<std::optional<std::string>> {
    auto v = store_->GetIndexState(cid_, legacy ? std::string(v1_name) : StateKey(f, v2_name));
    if (v.ok()) return std::optional<std::string>(std::move(*v));
    if (v.status().code() == StatusCode::kNotFound) return std::optional<std::string>();
    return v.status();
  };

  // The index kind, its state and generation (format 1: IVF iff generation > 0).
  QVEC_ASSIGN_OR_RETURN(auto gen, state(kGenerationState, kLegacyGenerationKey));
  if (gen) {
    auto g = coding::ParseFixed32(*gen);
    if (g) {
      f.generation = static_cast<uint32_t>(*g);
    } else {
      damage("the index generation", DataLossError("malformed"));
    }
  }
  index::IndexKind kind = index::kInitialIndexKind;
  std::optional<std::string> index_state;
  if (legacy) {
    // Format 1 had the flat index and IVF, whose model had its own key.
    if (f.generation > 0) {
      kind = index::IndexKind::kIvf;
      QVEC_ASSIGN_OR_RETURN(index_state, state(kIndexState, kLegacyModelKey));
    }
  } else {
    QVEC_ASSIGN_OR_RETURN(auto k, state(kKindState, kKindState));
    if (k) {
      auto parsed =
          k->size() == 1 ? index::IndexKindFromByte(static_cast<uint8_t>((*k)[0])) : std::nullopt;
      if (parsed) {
        kind = *parsed;
      } else {
        damage("the index kind", DataLossError("malformed"));
      }
    }
    QVEC_ASSIGN_OR_RETURN(index_state, state(kIndexState, kIndexState));
  }
  QVEC_ASSIGN_OR_RETURN(auto cal_on, state(kCalibratedOnState, kCalibratedOnState));
  if (cal_on && !legacy) f.calibrated_on = coding::ParseFixed64(*cal_on).value_or(0);

  // The quantization the stored index was made with: the config's, unless a
  // config change has not been rebuilt for yet (then the next build does).
  f.index_quant = f.quant;
  if (!legacy) {
    QVEC_ASSIGN_OR_RETURN(auto stored_quant, state(kQuantConfigState, kQuantConfigState));
    if (stored_quant) {
      if (auto q = DecodeQuantConfig(*stored_quant)) {
        f.index_quant = *q;
      } else {
        damage("the quantization record", DataLossError("malformed"));
      }
    }
  }
  if (!SameQuant(f.index_quant, f.quant)) ++f.rebuild_epoch;

  // The quantizer: calibrated from its stored parameters, or plain.
  std::optional<index::Quantizer> quantizer;
  bool recalibrate = false;
  if (f.index_quant.NeedsCalibration()) {
    QVEC_ASSIGN_OR_RETURN(auto calib, state(kCalibrationState, kLegacyCalibrationKey));
    if (calib) {
      auto params = index::CalibrationParams::Deserialize(*calib);
      StatusOr<index::Quantizer> q =
          params.ok() ? index::Quantizer::Create(dim, f.metric, f.index_quant, &*params)
                      : StatusOr<index::Quantizer>(params.status());
      if (q.ok()) {
        quantizer = std::move(*q);
      } else {
        damage("the calibration", q.status());
        recalibrate = true;
      }
    }
  } else {
    QVEC_ASSIGN_OR_RETURN(quantizer, index::Quantizer::Create(dim, f.metric, f.index_quant));
  }
  f.index.reset();
  if (quantizer && !reencode_all) {
    auto built = index::CreateIndex(kind, *quantizer, index_state.value_or(""));
    if (built.ok()) {
      f.index = std::move(*built);
    } else {
      damage("the " + std::string(index::IndexKindName(kind)) + " index state", built.status());
    }
  }
  if (!f.index && quantizer) {
    QVEC_ASSIGN_OR_RETURN(f.index, index::CreateIndex(index::kInitialIndexKind, *quantizer, ""));
    if (kind != index::kInitialIndexKind) reencode_all = true;
  }
  if (reencode_all) {
    // A fresh generation for the flat index every vector is re-encoded for;
    // the background build makes the index kind the field needs again.
    f.next_generation = std::max(f.next_generation, f.generation + 1);
    f.generation = f.next_generation++;
    if (recalibrate) f.index.reset();
  }
  f.state.store(StateOf(f.index.get()));

  // The field's codes. Each must belong to a point; it carries the label of
  // the points written by format 1 (whose records are empty).
  const uint64_t bit = uint64_t{1} << field_index;
  const index::VectorIndex* idx = f.index.get();
  const size_t value_size = idx ? kCodesHeaderBytes + idx->quantizer().EncodedSize() : 0;
  uint32_t max_generation = f.generation;
  Status scan = store_->ScanCodes(cid_, f.id, [&](std::string_view key, std::string_view value) {
    write_mu_.AssertHeld();  // the scan calls back synchronously, in Load
    state_mu_.AssertHeld();
    auto id = DecodePointKey(key);
    auto it = id.ok() ? id_to_label_.find(*id) : id_to_label_.end();
    const bool is_pending = pending->count(std::string(key)) != 0;
    if (!id.ok() || (it == id_to_label_.end() && !is_pending)) {
      // A vector of no point: left over, never served.
      fixes->DeleteVector(cid_, f.id, key);
      return true;
    }
    const bool whole = value.size() >= kCodesHeaderBytes;
    const CodesHeader h = whole ? ReadCodesHeader(value) : CodesHeader{};
    if (whole) max_generation = std::max(max_generation, h.generation);
    if (is_pending) {
      // Adopt the code's label if it is usable.
      if (whole && h.label <= (uint64_t{1} << 40) &&
          !(h.label < label_used_.size() && label_used_[h.label])) {
        RegisterLoaded(*id, h.label);
        pending->erase(std::string(key));
        it = id_to_label_.find(*id);
      } else {
        repair->emplace_back(key);  // labelled later, then re-encoded
        return true;
      }
    }
    field_mask_[it->second] |= bit;
    if (reencode_all || idx == nullptr || !whole || h.label != it->second ||
        h.generation != f.generation || value.size() != value_size || !AddValue(f, value).ok()) {
      repair->emplace_back(key);
    }
    return true;
  });
  QVEC_RETURN_IF_ERROR(scan);
  f.next_generation = std::max(f.next_generation, max_generation + 1);
  if (legacy) {
    // Move the field's state to its own names.
    if (gen) fixes->PutIndexState(cid_, StateKey(f, kGenerationState), *gen);
    fixes->PutIndexState(cid_, StateKey(f, kKindState), std::string(1, static_cast<char>(kind)));
    if (index_state) fixes->PutIndexState(cid_, StateKey(f, kIndexState), *index_state);
    if (f.index_quant.NeedsCalibration()) {
      auto calib = store_->GetIndexState(cid_, std::string(kLegacyCalibrationKey));
      if (calib.ok()) fixes->PutIndexState(cid_, StateKey(f, kCalibrationState), *calib);
    }
    for (std::string_view old_name :
         {kLegacyGenerationKey, kLegacyModelKey, kLegacyCalibrationKey}) {
      fixes->DeleteIndexState(cid_, std::string(old_name));
    }
  }
  if (reencode_all) {
    fixes->PutIndexState(cid_, StateKey(f, kGenerationState), coding::Fixed32(f.generation));
    fixes->PutIndexState(cid_, StateKey(f, kKindState),
                         std::string(1, static_cast<char>(index::kInitialIndexKind)));
    fixes->DeleteIndexState(cid_, StateKey(f, kIndexState));
  } else if (!legacy) {
    // The rescore curve measured for this index, so that searches after a
    // reopen or a snapshot recovery run with the same oversampling. A
    // malformed one is only measured again.
    QVEC_ASSIGN_OR_RETURN(auto curve, state(kRescoreCurveState, kRescoreCurveState));
    if (curve) {
      std::string_view in = *curve;
      if (in.size() >= 16) {
        const uint32_t generation = coding::DecodeFixed32(in.data());
        const uint64_t points = coding::DecodeFixed64(in.data() + 4);
        const uint32_t count = coding::DecodeFixed32(in.data() + 12);
        in.remove_prefix(16);
        if (generation == f.generation && count <= 64 && in.size() == size_t{count} * 8) {
          MutexLock lock(&f.rescore_mu);
          f.rescore_curve.clear();
          for (uint32_t i = 0; i < count; ++i) {
            index::RescorePoint p;
            p.oversampling = std::bit_cast<float>(coding::DecodeFixed32(in.data() + i * 8));
            p.recall = std::bit_cast<float>(coding::DecodeFixed32(in.data() + i * 8 + 4));
            f.rescore_curve.push_back(p);
          }
          f.rescore_points = points;
          f.rescore_generation = generation;
        }
      }
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<std::pair<std::string, std::string>>> CollectionImpl::RepairField(
    VectorField& f, size_t field_index, const std::vector<std::string>& repair) {
  // Requires write_mu_ and the exclusive state lock (Load). Codes are derived
  // data: they are re-encoded from the originals, which are the truth.
  std::vector<std::pair<std::string, std::string>> unusable;
  if (repair.empty()) return unusable;
  const size_t dim = f.config.dimension;
  const uint64_t bit = uint64_t{1} << field_index;
  // A field whose calibration was lost calibrates again on its originals.
  if (f.index == nullptr && f.quant.NeedsCalibration()) {
    // (Load runs before any config change can: f.quant is the config's, and
    // the new calibration is made with it.)
    std::vector<float> sample;
    for (size_t i = 0; i < repair.size() && sample.size() < 20000 * dim; ++i) {
      auto v = store_->GetOriginal(cid_, f.id, repair[i]);
      if (!v.ok() || v->size() != dim || !f.prep.Apply(v->data()).ok()) continue;
      sample.insert(sample.end(), v->begin(), v->end());
    }
    if (!sample.empty()) {
      auto q = CalibratedQuantizer(f, f.quant, sample.data(), sample.size() / dim);
      if (q.ok()) {
        QVEC_ASSIGN_OR_RETURN(f.index, index::CreateIndex(index::kInitialIndexKind, *q, ""));
        f.calibrated_on = sample.size() / dim;
        f.index_quant = f.quant;
        f.built_epoch = f.rebuild_epoch;
        storage::WriteBatch batch;
        batch.DeleteIndexState(cid_, StateKey(f, kQuantConfigState));
        batch.PutIndexState(cid_, StateKey(f, kCalibrationState), q->calibration()->Serialize());
        batch.PutIndexState(cid_, StateKey(f, kCalibratedOnState),
                            coding::Fixed64(f.calibrated_on));
        (void)store_->Write(&batch);
      }
    }
  }
  for (size_t start = 0; start < repair.size(); start += kRebuildChunk) {
    const size_t end = std::min(repair.size(), start + kRebuildChunk);
    std::vector<std::string> keys(repair.begin() + start, repair.begin() + end);
    std::vector<float> chunk;
    std::vector<bool> found;
    // One MultiGet per chunk; point by point only when it fails.
    QVEC_RETURN_IF_ERROR(ReadOriginals(store_, cid_, f.id, dim, keys, &chunk, &found,
                                       /*damaged_as_missing=*/true));
    std::vector<uint32_t> slots(keys.size(), 0);
    if (f.index) f.index->AssignSlots(chunk.data(), keys.size(), slots.data());
    storage::WriteBatch batch;
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string& key = keys[i];
      auto id = DecodePointKey(key);
      auto it = id.ok() ? id_to_label_.find(*id) : id_to_label_.end();
      if (it == id_to_label_.end()) continue;  // quarantined by another field
      std::string problem;
      std::string value;
      if (!found[i]) {
        problem = "its original of vector '" + f.name + "' cannot be read or has the wrong size";
      } else if (f.index == nullptr) {
        problem = "vector '" + f.name + "' has no calibration to encode it";
      } else {
        std::vector<float> x(chunk.begin() + i * dim, chunk.begin() + (i + 1) * dim);
        Status s = EncodeValue(it->second, x.data(), *f.index, f.generation, slots[i], &value);
        if (s.ok()) s = AddValue(f, value);
        if (!s.ok()) problem = "its vector '" + f.name + "' cannot be encoded: " + s.message();
      }
      if (!problem.empty()) {
        unusable.emplace_back(key, problem);
        continue;
      }
      field_mask_[it->second] |= bit;
      batch.PutCode(cid_, f.id, key, value);
    }
    Status written = store_->Write(&batch);
    if (!written.ok()) {
      log_.Warn(
          "collection '{}': repaired codes not written (they are repaired again at the next "
          "open): {}",
          name_, written.ToString());
    }
  }
  return unusable;
}

Status CollectionImpl::Load() {
  MutexLock write_lock(&write_mu_);
  WriterLock state_lock(&state_mu_);
  storage::WriteBatch fixes;  // records and state rewritten after loading

  // 1. The points and their labels. A record without a (usable) label is
  //    pending: its label comes from its codes, or a new one is given.
  std::set<std::string> pending;
  Status scan = store_->ScanPoints(cid_, [&](std::string_view key, std::string_view record) {
    write_mu_.AssertHeld();  // the scan calls back synchronously, in Load
    state_mu_.AssertHeld();
    auto id = DecodePointKey(key);
    if (!id.ok()) {
      Quarantine(key, "its key is not a point id");
      return true;
    }
    auto label = coding::ParseFixed64(record);
    if (!label || *label > (uint64_t{1} << 40) ||
        (*label < label_used_.size() && label_used_[*label])) {
      pending.insert(std::string(key));
      return true;
    }
    RegisterLoaded(*id, *label);
    return true;
  });
  QVEC_RETURN_IF_ERROR(scan);
  // Records the engine writes itself for the points whose record is not
  // theirs yet (format 1, or damaged).
  const std::set<std::string> rewrite_record = pending;

  // 2. Every field's index and codes.
  std::vector<std::vector<std::string>> repairs(fields_.size());
  for (size_t fi = 0; fi < fields_.size(); ++fi) {
    QVEC_RETURN_IF_ERROR(LoadField(*fields_[fi], fi, &pending, &repairs[fi], &fixes));
  }
  // 3. Points still without a label get the lowest free ones.
  uint64_t next = 0;
  for (const std::string& key : pending) {
    auto id = DecodePointKey(key);
    while (next < label_used_.size() && label_used_[next]) ++next;
    RegisterLoaded(*id, next);
  }
  // A point whose own data is unusable goes to quarantine (out of every
  // field's index).
  auto quarantine = [&](const std::string& key, const std::string& why) {
    write_mu_.AssertHeld();  // called within Load
    state_mu_.AssertHeld();
    auto id = DecodePointKey(key);
    if (!id.ok()) return;
    auto it = id_to_label_.find(*id);
    if (it == id_to_label_.end()) return;
    const uint64_t label = it->second;
    for (auto& f : fields_) {
      if (f->index) f->index->Remove(label);
    }
    for (auto& sf : sparse_fields_) sf->index.Remove(label);
    id_to_label_.erase(it);
    label_used_[label] = false;
    field_mask_[label] = 0;
    label_to_id_[label] = PointId();
    Quarantine(key, why);
  };
  // 3b. Sparse fields: their indexes from the stored vectors.
  for (auto& sf : sparse_fields_) {
    std::vector<std::pair<std::string, std::string>> unusable;
    Status scanned = store_->ScanCodes(cid_, sf->id, [&](std::string_view key, std::string_view v) {
      write_mu_.AssertHeld();  // the scan calls back synchronously, in Load
      state_mu_.AssertHeld();
      auto id = DecodePointKey(key);
      if (!id.ok()) return true;  // quarantined with its record above
      auto it = id_to_label_.find(*id);
      if (it == id_to_label_.end()) return true;  // a vector without its point: ignored
      std::optional<SparseVector> vec = DecodeSparseValue(v);
      if (!vec) {
        unusable.emplace_back(std::string(key), "its sparse vector '" + sf->name + "' is damaged");
        return true;
      }
      sf->index.Set(it->second, index::SparseView{vec->indices, vec->values});
      field_mask_[it->second] |= sf->bit;
      return true;
    });
    QVEC_RETURN_IF_ERROR(scanned);
    for (const auto& [key, why] : unusable) quarantine(key, why);
  }
  // 4. Re-encode what needs it.
  for (size_t fi = 0; fi < fields_.size(); ++fi) {
    QVEC_ASSIGN_OR_RETURN(auto unusable, RepairField(*fields_[fi], fi, repairs[fi]));
    for (const auto& [key, why] : unusable) quarantine(key, why);
  }
  // 5. The records of points whose label was not theirs yet (the
  //    quarantined ones are gone).
  for (const std::string& key : rewrite_record) {
    auto id = DecodePointKey(key);
    auto it = id_to_label_.find(*id);
    if (it == id_to_label_.end()) continue;
    uint64_t label = it->second;
    fixes.PutPointRecord(cid_, key, coding::Fixed64(label));
  }
  if (legacy_state_) {
    // Format 1 kept the config in its own shape: store it as version 2.
    std::map<std::string, uint16_t> ids;
    for (const auto& f : fields_) ids[f->name] = f->id;
    fixes.PutCollection(cid_, name_, EncodeCollectionConfig(config(), ids));
  }
  if (fixes.Count() > 0) {
    Status written = store_->Write(&fixes);
    if (!written.ok()) {
      log_.Warn("collection '{}': loading fixes not written (redone at the next open): {}", name_,
                written.ToString());
    } else {
      legacy_state_ = false;
    }
  }
  free_labels_.clear();
  for (uint64_t l = label_used_.size(); l-- > 0;) {
    if (!label_used_[l]) free_labels_.push_back(l);
  }
  quarantined_ = 0;  // counted below, with this run's entries
  Status counted =
      store_->ScanIndexState(cid_, kQuarantinePrefix, [&](std::string_view, std::string_view) {
        ++quarantined_;
        return true;
      });
  if (!counted.ok()) log_.Warn("collection '{}': {}", name_, counted.ToString());
  // The declared payload indexes (built after Load, by BuildPayloadIndexes).
  auto declared = store_->GetIndexState(cid_, std::string(kPayloadIndexesState));
  if (declared.ok()) {
    auto parsed = DecodePayloadIndexes(*declared);
    if (parsed.ok()) {
      payload_indexes_ = std::move(*parsed);
      for (const auto& [key, type] : payload_indexes_) field_cache_.Pin(key, true);
    } else {
      // Filters answer the same without them; the user can declare them again.
      log_.Error(
          "collection '{}': the declared payload indexes are unreadable ({}); they are "
          "dropped",
          name_, parsed.status().ToString());
    }
  } else if (declared.status().code() != StatusCode::kNotFound) {
    return declared.status();
  }
  snapshot_ = store_->GetSnapshot();
  return Status::Ok();
}

// ---- builds ----

std::optional<index::IndexKind> CollectionImpl::NeedsBuild(VectorField& f) {
  ReaderLock lock(&state_mu_);
  if (f.index == nullptr) return std::nullopt;
  const size_t n = f.index->size();
  index::IndexPolicy policy;
  policy.partition_threshold = f.ivf_threshold.load();
  // A config change (quantization, nlist, ivf_threshold) not built for yet:
  // the kind the threshold asks for, re-encoded with the new settings.
  if (f.built_epoch != f.rebuild_epoch && n > 0) {
    return n >= policy.partition_threshold ? index::IndexKind::kIvf : index::IndexKind::kFlat;
  }
  bool health_check = false;
  if (f.writes_since_health_check.load() >= 10000) {
    f.writes_since_health_check.store(0);
    health_check = true;
  }
  if (auto kind = index::IndexKindToBuild(*f.index, policy, health_check)) return kind;
  // A calibrated field calibrated on its first batch: once it has grown 4x
  // past that sample, calibrate again on a real sample (same index kind).
  if (f.quant.NeedsCalibration() && f.calibrated_on > 0 && f.calibrated_on < kRecalibrationCap &&
      n >= 4 * f.calibrated_on && n >= 64) {
    return f.index->kind();
  }
  return std::nullopt;
}

void CollectionImpl::MaybeStartTraining() {
  if (builds_ == nullptr || training_.load() || stop_.load()) return;
  bool any = false;
  const auto now = std::chrono::steady_clock::now();
  for (auto& f : fields_) {
    {
      MutexLock lock(&f->status_mu);
      if (now < f->next_build_attempt) continue;
    }
    if (NeedsBuild(*f) || NeedsRescoreCurve(*f)) {
      any = true;
      break;
    }
  }
  if (!any) return;
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
  for (bool built = true; built && !stop_.load();) {
    built = false;
    for (auto& f : fields_) {
      if (stop_.load()) break;
      {
        MutexLock lock(&f->status_mu);
        if (std::chrono::steady_clock::now() < f->next_build_attempt) continue;
      }
      const std::optional<index::IndexKind> kind = NeedsBuild(*f);
      if (!kind) continue;
      const Status s = BuildIndex(*f, *kind);
      MutexLock lock(&f->status_mu);
      if (!s.ok()) {
        if (stop_.load()) break;  // dropped or closing: not a failure
        ++f->build_failures;
        f->last_build_error = s.ToString();
        const int shift = static_cast<int>(std::min<size_t>(f->build_failures - 1, 6));
        const auto delay = std::min(std::chrono::seconds(10 << shift), std::chrono::seconds(600));
        f->next_build_attempt = std::chrono::steady_clock::now() + delay;
        log_.Warn(
            "collection '{}' vector '{}': index build failed ({} in a row), retrying in {} s: "
            "{}",
            name_, f->name, f->build_failures, delay.count(), f->last_build_error);
        continue;
      }
      f->build_failures = 0;
      f->last_build_error.clear();
      built = true;
    }
    for (auto& f : fields_) {
      if (stop_.load()) break;
      if (!NeedsRescoreCurve(*f)) continue;
      const Status s = MeasureRescoreCurve(*f);
      if (!s.ok()) {
        // Not retried in this task (the next write's task tries again).
        if (!stop_.load()) {
          log_.Warn("collection '{}' vector '{}': rescore curve: {}", name_, f->name,
                    s.ToString());
        }
        continue;
      }
      built = true;  // writes meanwhile may ask for a build: look again
    }
  }
  training_.store(false);
}

// ---- rescore curves ----

namespace {
// A field's rescore curve is measured from this many points on, on at most
// kRescoreBase of its vectors plus kRescoreQueries held out as queries.
constexpr size_t kRescoreMinPoints = 20;
constexpr size_t kRescoreBase = 20000;
constexpr size_t kRescoreQueries = 100;
}  // namespace

bool CollectionImpl::NeedsRescoreCurve(VectorField& f) {
  size_t n = 0;
  uint32_t generation = 0;
  {
    ReaderLock lock(&state_mu_);
    if (f.index == nullptr || f.tracking) return false;
    n = f.index->size();
    generation = f.generation;
  }
  if (n < kRescoreMinPoints) return false;
  MutexLock lock(&f.rescore_mu);
  if (f.rescore_points == 0 || f.rescore_generation != generation) return true;
  return n >= 2 * f.rescore_points || 2 * n <= f.rescore_points;
}

Status CollectionImpl::MeasureRescoreCurve(VectorField& f) {
  const size_t dim = f.config.dimension;
  std::optional<index::Quantizer> quantizer;
  uint32_t generation = 0;
  size_t n = 0;
  std::vector<PointId> ids;
  std::mt19937_64 rng(0x7e5c0000ULL + cid_ * 131 + f.id);
  {
    ReaderLock lock(&state_mu_);
    if (f.index == nullptr) return Status::Ok();
    quantizer = f.index->quantizer();
    generation = f.generation;
    n = f.index->size();
    size_t field_index = 0;
    while (fields_[field_index].get() != &f) ++field_index;
    const uint64_t bit = uint64_t{1} << field_index;
    const size_t want = std::min(n, kRescoreBase + kRescoreQueries);
    if (want == n) {
      for (const auto& [id, label] : id_to_label_) {
        if (field_mask_[label] & bit) ids.push_back(id);
      }
    } else {
      // Labels drawn at random (a sample in id order would follow however
      // the ids were assigned).
      std::unordered_set<uint64_t> taken;
      const size_t labels = label_to_id_.size();
      for (size_t draws = 0; ids.size() < want && draws < 50 * want; ++draws) {
        const uint64_t label = rng() % labels;
        if (!label_used_[label] || !(field_mask_[label] & bit) || !taken.insert(label).second) {
          continue;
        }
        ids.push_back(label_to_id_[label]);
      }
    }
  }
  std::shuffle(ids.begin(), ids.end(), rng);  // queries: a random few
  std::vector<float> vectors;
  vectors.reserve(ids.size() * dim);
  for (size_t start = 0; start < ids.size(); start += kRebuildChunk) {
    if (stop_.load()) return AbortedError("collection dropped or closing");
    const size_t end = std::min(ids.size(), start + kRebuildChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(EncodePointKey(ids[i]));
    std::vector<float> chunk;
    std::vector<bool> found;
    QVEC_RETURN_IF_ERROR(ReadOriginals(store_, cid_, f.id, dim, keys, &chunk, &found));
    for (size_t i = 0; i < keys.size(); ++i) {
      if (found[i]) vectors.insert(vectors.end(), chunk.begin() + i * dim, chunk.begin() + (i + 1) * dim);
    }
  }
  const size_t m = vectors.size() / dim;
  std::vector<index::RescorePoint> curve;
  if (m >= kRescoreMinPoints) {
    const size_t nq = std::min(kRescoreQueries, m / 5);
    const size_t nb = m - nq;
    QVEC_ASSIGN_OR_RETURN(curve, index::MeasureRescoreCurve(*quantizer, vectors.data(), nb,
                                                            vectors.data() + nb * dim, nq, 10));
  }
  std::string value;
  coding::PutFixed32(&value, generation);
  coding::PutFixed64(&value, n);
  coding::PutFixed32(&value, static_cast<uint32_t>(curve.size()));
  for (const index::RescorePoint& p : curve) {
    coding::PutFloat(&value, p.oversampling);
    coding::PutFloat(&value, p.recall);
  }
  {
    // Under write_mu_ so that a drop or a rebuild's swap cannot interleave;
    // a curve for an index already replaced is not kept.
    MutexLock write_lock(&write_mu_);
    if (stop_.load() || dropped_.load()) return AbortedError("collection dropped or closing");
    {
      ReaderLock state_lock(&state_mu_);
      if (f.generation != generation) return Status::Ok();
    }
    storage::WriteBatch batch;
    batch.PutIndexState(cid_, StateKey(f, kRescoreCurveState), value);
    QVEC_RETURN_IF_ERROR(store_->Write(&batch));
  }
  MutexLock lock(&f.rescore_mu);
  f.rescore_curve = std::move(curve);
  f.rescore_points = n;  // also when too few were read: not measured again at once
  f.rescore_generation = generation;
  return Status::Ok();
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
  Status result = Status::Ok();
  for (auto& f : fields_) {
    {
      ReaderLock lock(&state_mu_);
      if (f->index == nullptr) continue;
    }
    Status s = BuildIndex(*f, index::kOptimizedIndexKind);
    // The new index's rescore curve, so that searches after Optimize() use
    // an oversampling measured for it (a failure leaves the default).
    if (s.ok() && NeedsRescoreCurve(*f)) {
      const Status measured = MeasureRescoreCurve(*f);
      if (!measured.ok()) log_.Warn("collection '{}': rescore curve: {}", name_, measured.ToString());
    }
    MutexLock lock(&f->status_mu);
    if (s.ok()) {
      f->build_failures = 0;
      f->last_build_error.clear();
    } else if (result.ok()) {
      result = s.Annotate(f->name.empty() ? "index build" : "vector '" + f->name + "'");
    }
  }
  training_.store(false);
  return result;
}

Status CollectionImpl::BuildIndex(VectorField& f, index::IndexKind kind) {
  const size_t dim = f.config.dimension;
  const IndexInfo::State previous = f.state.load();
  f.state.store(IndexInfo::State::kTraining);
  // The one rollback, for every way out of the build but the swap: stop
  // tracking, forget the tracked labels, restore the state. The old index was
  // never touched; codes already rewritten carry a generation no index uses
  // and are re-encoded at the next open. Requires write_mu_.
  auto rollback = [&](Status s) {
    write_mu_.AssertHeld();
    f.tracking = false;
    f.changed_during_build.clear();
    f.state.store(previous);
    return s;
  };
  auto end_build = [&](Status s) {
    MutexLock write_lock(&write_mu_);
    return rollback(std::move(s));
  };

  // 1. The field's vectors, taken at the instant tracking starts, so that
  //    every later write is replayed at the swap.
  std::vector<std::pair<uint64_t, PointId>> members;
  std::optional<index::Quantizer> current;
  index::QuantizationConfig quant;  // the configured one, at the start
  uint64_t epoch = 0;               // of the config this build is for
  uint32_t generation;
  size_t field_index = 0;
  while (fields_[field_index].get() != &f) ++field_index;
  const uint64_t bit = uint64_t{1} << field_index;
  {
    MutexLock write_lock(&write_mu_);
    ReaderLock state_lock(&state_mu_);
    members.reserve(f.index ? f.index->size() : 0);
    for (const auto& [id, label] : id_to_label_) {
      if (field_mask_[label] & bit) members.emplace_back(label, id);
    }
    if (f.index) current = f.index->quantizer();
    quant = f.quant;
    epoch = f.rebuild_epoch;
    f.tracking = true;
    f.changed_during_build.clear();
    generation = f.next_generation++;
  }
  if (members.empty() || !current) return end_build(FailedPreconditionError("no vectors"));

  // 2. A seeded sample of the float originals, for training and calibration.
  index::IndexTrainOptions options;
  options.nlist = f.nlist.load();
  options.first_pass = static_cast<index::FirstPassKind>(f.first_pass.load());
  options.collection_size = members.size();
  options.cancel = &stop_;
  const size_t sample_size = index::TrainingSampleSize(kind, members.size(), options);
  std::vector<size_t> order(members.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(0x5eed0000ULL + cid_ * 131 + f.id);
  for (size_t i = 0; i < sample_size; ++i) {
    std::swap(order[i], order[i + rng() % (order.size() - i)]);
  }
  std::vector<float> sample;
  sample.reserve(sample_size * dim);
  for (size_t start = 0; start < sample_size; start += kRebuildChunk) {
    if (stop_.load()) return end_build(AbortedError("collection dropped or closing"));
    const size_t end = std::min(sample_size, start + kRebuildChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(EncodePointKey(members[order[i]].second));
    std::vector<float> chunk;
    std::vector<bool> found;
    Status s = ReadOriginals(store_, cid_, f.id, dim, keys, &chunk, &found);
    if (!s.ok()) return end_build(s);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (found[i])
        sample.insert(sample.end(), chunk.begin() + i * dim, chunk.begin() + (i + 1) * dim);
    }
  }
  const size_t sampled = sample.size() / dim;
  if (sampled == 0) return end_build(FailedPreconditionError("no vectors"));

  // 3. Calibration (if configured) and training, both on the sample.
  index::Quantizer quantizer = *current;
  uint64_t calibrated_on = f.calibrated_on;
  if (quant.NeedsCalibration()) {
    auto q = CalibratedQuantizer(f, quant, sample.data(), sampled);
    if (!q.ok()) return end_build(q.status());
    quantizer = std::move(*q);
    calibrated_on = sampled;
  } else if (current->calibration() != nullptr || !SameQuant(quant, f.index_quant)) {
    // The quantization changed to one without calibration (or another type).
    auto q = index::Quantizer::Create(dim, f.metric, quant);
    if (!q.ok()) return end_build(q.status());
    quantizer = std::move(*q);
    calibrated_on = 0;
  }
  auto trained = index::TrainIndex(kind, quantizer, sample.data(), sampled, options);
  if (!trained.ok()) return end_build(trained.status());
  std::unique_ptr<index::VectorIndex> built = std::move(trained->index);
  const std::string index_state = std::move(trained->state);
  sample.clear();
  sample.shrink_to_fit();

  // 4. Every vector, encoded and assigned for the new index and rewritten
  //    with the new generation. Vectors written meanwhile are skipped here
  //    and replayed at the swap.
  for (size_t start = 0; start < members.size(); start += kRebuildChunk) {
    if (stop_.load()) return end_build(AbortedError("collection dropped or closing"));
    const size_t end = std::min(members.size(), start + kRebuildChunk);
    std::vector<std::string> keys;
    for (size_t i = start; i < end; ++i) keys.push_back(EncodePointKey(members[i].second));
    std::vector<float> originals;
    std::vector<bool> found;
    Status s = ReadOriginals(store_, cid_, f.id, dim, keys, &originals, &found);
    if (!s.ok()) return end_build(s);
    std::vector<uint32_t> slots(keys.size());
    built->AssignSlots(originals.data(), keys.size(), slots.data());
    std::vector<std::string> values(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (!found[i]) continue;
      s = EncodeValue(members[start + i].first, originals.data() + i * dim, *built, generation,
                      slots[i], &values[i]);
      if (!s.ok()) return end_build(s);
    }
    {
      MutexLock write_lock(&write_mu_);
      AssertWriterReads();
      storage::WriteBatch batch;
      for (size_t i = 0; i < keys.size(); ++i) {
        const uint64_t label = members[start + i].first;
        if (!found[i] || f.changed_during_build.count(label) || !label_used_[label] ||
            !(label_to_id_[label] == members[start + i].second) || !(field_mask_[label] & bit)) {
          continue;
        }
        (void)built->AddCode(label, slots[i],
                             reinterpret_cast<const uint8_t*>(values[i].data()) + kCodesHeaderBytes,
                             values[i].size() - kCodesHeaderBytes);
        batch.PutCode(cid_, f.id, keys[i], values[i]);
      }
      s = store_->Write(&batch);
    }
    // end_build() takes write_mu_ itself.
    if (!s.ok()) return end_build(s);
  }

  // 5. The swap: replay the writes made during the build, then persist the
  //    new generation, index state and calibration in one batch and switch.
  MutexLock write_lock(&write_mu_);
  auto fail = [&](Status s) { return rollback(std::move(s)); };
  if (stop_.load() || dropped_.load()) return fail(AbortedError("collection dropped or closing"));
  storage::WriteBatch batch;
  std::vector<std::string> keys;
  std::vector<uint64_t> live;
  {
    WriterReads reads(this);
    for (uint64_t label : f.changed_during_build) {
      if (label < label_used_.size() && label_used_[label] && (field_mask_[label] & bit)) {
        keys.push_back(EncodePointKey(label_to_id_[label]));
        live.push_back(label);
      } else {
        built->Remove(label);
      }
    }
  }
  std::vector<float> originals;
  std::vector<bool> found;
  Status s = ReadOriginals(store_, cid_, f.id, dim, keys, &originals, &found);
  if (!s.ok()) return fail(s);
  std::vector<uint32_t> slots(live.size());
  if (!live.empty()) built->AssignSlots(originals.data(), live.size(), slots.data());
  for (size_t i = 0; i < live.size(); ++i) {
    if (!found[i]) continue;
    std::string value;
    s = EncodeValue(live[i], originals.data() + i * dim, *built, generation, slots[i], &value);
    if (s.ok()) {
      s = built->AddCode(live[i], slots[i],
                         reinterpret_cast<const uint8_t*>(value.data()) + kCodesHeaderBytes,
                         value.size() - kCodesHeaderBytes);
    }
    if (!s.ok()) return fail(s);
    batch.PutCode(cid_, f.id, keys[i], value);
  }
  batch.PutIndexState(cid_, StateKey(f, kKindState),
                      std::string(1, static_cast<char>(built->kind())));
  if (index_state.empty()) {
    batch.DeleteIndexState(cid_, StateKey(f, kIndexState));
  } else {
    batch.PutIndexState(cid_, StateKey(f, kIndexState), index_state);
  }
  batch.PutIndexState(cid_, StateKey(f, kGenerationState), coding::Fixed32(generation));
  if (const index::CalibrationParams* params = quantizer.calibration()) {
    batch.PutIndexState(cid_, StateKey(f, kCalibrationState), params->Serialize());
    batch.PutIndexState(cid_, StateKey(f, kCalibratedOnState), coding::Fixed64(calibrated_on));
  } else {
    batch.DeleteIndexState(cid_, StateKey(f, kCalibrationState));
    batch.DeleteIndexState(cid_, StateKey(f, kCalibratedOnState));
  }
  // What the index is made with, when it is not what the config says now (a
  // change arrived during the build; the next build is for it).
  if (SameQuant(quant, f.quant)) {
    batch.DeleteIndexState(cid_, StateKey(f, kQuantConfigState));
  } else {
    batch.PutIndexState(cid_, StateKey(f, kQuantConfigState), EncodeQuantConfig(quant));
  }
  s = store_->Write(&batch);
  if (!s.ok()) return fail(s);
  f.tracking = false;
  f.changed_during_build.clear();
  built->ShrinkToFit();
  const IndexInfo::State next = StateOf(built.get());
  {
    WriterLock state_lock(&state_mu_);
    f.index = std::move(built);
    f.generation = generation;
    f.calibrated_on = calibrated_on;
    f.index_quant = quant;
    f.built_epoch = epoch;
    f.writes_since_health_check.store(0);
  }
  f.state.store(next);
  return Status::Ok();
}

}  // namespace qvec::engine
