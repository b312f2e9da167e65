// The values the engine stores, and conversions between public and index
// enums shared by the collection's source files.
//
// codes (per point and field):
//   offset 0   u64 LE  label (dense id of the point inside the collection)
//   offset 8   u32 LE  generation of the index the blob was encoded for
//   offset 12  u32 LE  slot: IVF list (0 for the flat index)
//   offset 16  blob    index::Quantizer::Encode output (codes + 12 bytes metadata)
// points (per point): u64 LE label (empty: written by the format upgrade;
// the label is then the one the point's codes carry).
// codes of a sparse field (per point): u32 LE n, n u32 LE indices
// (ascending, distinct), n f32 LE values (finite). No label: the point
// record gives it.
#ifndef QVEC_ENGINE_CODES_VALUE_H_
#define QVEC_ENGINE_CODES_VALUE_H_

#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/coding.h"
#include "index/quantizer.h"
#include "index/types.h"
#include "index/vector_index.h"
#include "qvec/collection.h"
#include "qvec/options.h"

namespace qvec::engine {

inline constexpr size_t kCodesHeaderBytes = 16;

// A canonical sparse vector as its stored value.
inline std::string EncodeSparseValue(const SparseVector& v) {
  std::string out;
  out.reserve(4 + 8 * v.indices.size());
  coding::PutFixed32(&out, static_cast<uint32_t>(v.indices.size()));
  for (uint32_t i : v.indices) coding::PutFixed32(&out, i);
  for (float x : v.values) coding::PutFloat(&out, x);
  return out;
}
// nullopt for a value that is not a canonical sparse vector.
inline std::optional<SparseVector> DecodeSparseValue(std::string_view value) {
  if (value.size() < 4) return std::nullopt;
  const uint32_t n = coding::DecodeFixed32(value.data());
  if (value.size() != 4 + uint64_t{8} * n) return std::nullopt;
  SparseVector v;
  v.indices.resize(n);
  v.values.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    v.indices[i] = coding::DecodeFixed32(value.data() + 4 + 4 * i);
    v.values[i] = std::bit_cast<float>(coding::DecodeFixed32(value.data() + 4 + 4 * n + 4 * i));
    if ((i > 0 && v.indices[i] <= v.indices[i - 1]) || !std::isfinite(v.values[i])) {
      return std::nullopt;
    }
  }
  return v;
}

// index_state entries of a vector field, under "field/<id>/" (see
// CollectionImpl::StateKey). They change together, in one batch, when a
// rebuilt index is swapped in.
inline constexpr std::string_view kKindState = "kind";                   // u8: index::IndexKind
inline constexpr std::string_view kIndexState = "state";                 // TrainIndex's state
inline constexpr std::string_view kCalibrationState = "calibration";     // CalibrationParams
inline constexpr std::string_view kCalibratedOnState = "calibrated_on";  // u64 LE
inline constexpr std::string_view kGenerationState = "generation";       // u32 LE
// The field's rescore curve (CollectionImpl::MeasureRescoreCurve): u32 LE
// generation of the index it was measured on, u64 LE vectors the field had,
// u32 LE count, then count pairs of f32 LE (oversampling, recall). Written
// on its own after each measurement; ignored at load for another generation.
inline constexpr std::string_view kRescoreCurveState = "rescore_curve";
// The quantization the field's index and calibration were made with, when it
// may differ from the collection's config (after Database::UpdateCollection):
// see EncodeQuantConfig. Absent: the config's.
inline constexpr std::string_view kQuantConfigState = "quant_config";
// Format-1 names (one field, no prefix), read at load and migrated.
inline constexpr std::string_view kLegacyCalibrationKey = "calibration";
inline constexpr std::string_view kLegacyModelKey = "ivf_model";
inline constexpr std::string_view kLegacyGenerationKey = "generation";
// "quarantine/" + point key: a point whose stored data was found damaged at
// open, moved out of the collection: u32 LE length + reason text, u32 LE
// count of vectors, each u16 LE field id + u32 LE length + the original's
// bytes, then the payload.
inline constexpr std::string_view kQuarantinePrefix = "quarantine/";
// index_state key of the declared payload indexes: a JSON object
// {"<payload key>": "<type name>", ...} (PayloadSchemaTypeName).
inline constexpr std::string_view kPayloadIndexesState = "payload_indexes";

struct CodesHeader {
  uint64_t label = 0;
  uint32_t generation = 0;
  uint32_t list = 0;
};

inline void WriteCodesHeader(const CodesHeader& h, char* out) {
  coding::EncodeFixed64(out, h.label);
  coding::EncodeFixed32(out + 8, h.generation);
  coding::EncodeFixed32(out + 12, h.list);
}

// Precondition: value.size() >= kCodesHeaderBytes.
inline CodesHeader ReadCodesHeader(std::string_view value) {
  CodesHeader h;
  h.label = coding::DecodeFixed64(value.data());
  h.generation = coding::DecodeFixed32(value.data() + 8);
  h.list = coding::DecodeFixed32(value.data() + 12);
  return h;
}

// The public state of a field with `index` (not building): an exhaustive
// index reports kFlat, a partitioned one kIvf.
inline IndexInfo::State StateOf(const index::VectorIndex* index) {
  return index == nullptr || index->exhaustive() ? IndexInfo::State::kFlat : IndexInfo::State::kIvf;
}

// The one place the public Distance maps to the index's Metric (and back):
// the two enums share their values.
inline index::Metric ToMetric(Distance d) { return static_cast<index::Metric>(d); }
inline Distance ToDistance(index::Metric m) { return static_cast<Distance>(m); }
static_assert(static_cast<int>(Distance::kCosine) == static_cast<int>(index::Metric::kCosine) &&
                  static_cast<int>(Distance::kDot) == static_cast<int>(index::Metric::kDot) &&
                  static_cast<int>(Distance::kEuclid) == static_cast<int>(index::Metric::kEuclid) &&
                  static_cast<int>(Distance::kManhattan) ==
                      static_cast<int>(index::Metric::kManhattan),
              "qvec::Distance and index::Metric must share their values");

inline index::QuantizationConfig ToQuantizationConfig(const QuantizationOptions& o, Distance d);

inline QuantizationOptions ToQuantizationOptions(const index::QuantizationConfig& c) {
  QuantizationOptions o;
  o.type = c.type == index::QuantizationType::kAsymmetricUint8 ? QuantizationOptions::Type::kUint8
                                                               : QuantizationOptions::Type::kInt8;
  o.granularity = c.granularity == index::Granularity::kPerVector
                      ? QuantizationOptions::Granularity::kPerVector
                  : c.granularity == index::Granularity::kPerCollection
                      ? QuantizationOptions::Granularity::kPerCollection
                      : QuantizationOptions::Granularity::kPerDimension;
  o.quantile = c.quantile;
  o.recall_tuned = c.recall_tuned;
  return o;
}

// kQuantConfigState: u8 type, u8 granularity, u8 recall_tuned, f32 LE quantile.
inline std::string EncodeQuantConfig(const index::QuantizationConfig& q) {
  std::string out;
  out.push_back(static_cast<char>(q.type));
  out.push_back(static_cast<char>(q.granularity));
  out.push_back(static_cast<char>(q.recall_tuned ? 1 : 0));
  coding::PutFloat(&out, q.quantile);
  return out;
}
inline std::optional<index::QuantizationConfig> DecodeQuantConfig(std::string_view s) {
  if (s.size() != 7 || static_cast<uint8_t>(s[0]) > 1 || static_cast<uint8_t>(s[1]) > 2 ||
      static_cast<uint8_t>(s[2]) > 1) {
    return std::nullopt;
  }
  index::QuantizationConfig q;
  q.type = static_cast<index::QuantizationType>(s[0]);
  q.granularity = static_cast<index::Granularity>(s[1]);
  q.recall_tuned = s[2] == 1;
  q.quantile = std::bit_cast<float>(coding::DecodeFixed32(s.data() + 3));
  if (!q.Validate().ok()) return std::nullopt;
  return q;
}
inline bool SameQuant(const index::QuantizationConfig& a, const index::QuantizationConfig& b) {
  return a.type == b.type && a.granularity == b.granularity && a.quantile == b.quantile &&
         a.recall_tuned == b.recall_tuned;
}

inline index::QuantizationConfig ToQuantizationConfig(const QuantizationOptions& o) {
  index::QuantizationConfig c;
  c.type = o.type == QuantizationOptions::Type::kUint8 ? index::QuantizationType::kAsymmetricUint8
                                                       : index::QuantizationType::kSymmetricInt8;
  switch (o.granularity) {
    case QuantizationOptions::Granularity::kPerVector:
      c.granularity = index::Granularity::kPerVector;
      break;
    case QuantizationOptions::Granularity::kPerCollection:
      c.granularity = index::Granularity::kPerCollection;
      break;
    case QuantizationOptions::Granularity::kPerDimension:
      c.granularity = index::Granularity::kPerDimension;
      break;
  }
  c.quantile = o.quantile;
  c.recall_tuned = o.recall_tuned;
  return c;
}

inline index::QuantizationConfig ToQuantizationConfig(const QuantizationOptions& o, Distance d) {
  index::QuantizationConfig c = ToQuantizationConfig(o);
  if (index::Describe(ToMetric(d)).shared_scale &&
      c.granularity == index::Granularity::kPerVector) {
    c.granularity = index::Granularity::kPerCollection;
  }
  return c;
}

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_CODES_VALUE_H_
