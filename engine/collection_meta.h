// The stored form of a collection's config: a versioned JSON object, so that
// it stays readable by people inspecting a database and by later versions.
#ifndef QVEC_ENGINE_COLLECTION_META_H_
#define QVEC_ENGINE_COLLECTION_META_H_

#include <string>
#include <string_view>

#include "qvec/options.h"
#include "qvec/status.h"

namespace qvec::engine {

std::string EncodeCollectionConfig(const CollectionConfig& config);
// DataLoss for malformed metadata; FailedPrecondition for an unknown version.
[[nodiscard]] StatusOr<CollectionConfig> DecodeCollectionConfig(std::string_view meta);

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_COLLECTION_META_H_
