// The stored form of a collection's config: a versioned JSON object, so that
// it stays readable by people inspecting a database and by later versions.
//
// Version 2 (written now): {"version": 2, "single_vector": bool,
//   "vectors": {"<name>": {"id": n, "dimension": .., "distance": "..",
//               "quantization": {..}, "index": {..}}, ...}}
// where the single-vector form has one field named "". Field ids are fixed
// at creation (they key the field's codes and originals in storage).
// Version 1 (read only): one vector, {"version": 1, "dimension": ..,
// "distance": .., "quantization": {..}, "index": {..}}; it is field "" with
// id 0.
#ifndef QVEC_ENGINE_COLLECTION_META_H_
#define QVEC_ENGINE_COLLECTION_META_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "qvec/options.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::engine {

struct StoredCollectionConfig {
  CollectionConfig config;
  std::map<std::string, uint16_t> field_ids;  // by field name ("" = unnamed)
  // Written by a format-1 build: its index state has the unprefixed names
  // ("generation", "calibration", "ivf_model"), migrated at load.
  bool legacy = false;
};

// Field ids for a new collection: 0, 1, ... in name order.
std::map<std::string, uint16_t> AssignFieldIds(const CollectionConfig& config);

std::string EncodeCollectionConfig(const CollectionConfig& config,
                                   const std::map<std::string, uint16_t>& field_ids);
// DataLoss for malformed metadata; FailedPrecondition for an unknown version.
[[nodiscard]] StatusOr<StoredCollectionConfig> DecodeCollectionConfig(std::string_view meta);

// The declared payload indexes as stored (index_state kPayloadIndexesState):
// {"<payload key>": "<type name>", ...}. DataLoss for malformed text.
std::string EncodePayloadIndexes(const std::map<std::string, PayloadSchemaType>& indexes);
[[nodiscard]] StatusOr<std::map<std::string, PayloadSchemaType>> DecodePayloadIndexes(
    std::string_view text);

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_META_H_
