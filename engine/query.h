// Qdrant's universal query (QueryRequest) on top of a collection's search,
// scroll and get: prefetch stages, query forms, fusion. Internal to engine/.
#ifndef QVEC_ENGINE_QUERY_H_
#define QVEC_ENGINE_QUERY_H_

#include <vector>

#include "qvec/collection.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::engine {

// Runs `request` on `collection` (see Collection::Query). Each stage's reads
// use the collection's public calls, so each reads one committed state.
[[nodiscard]] StatusOr<std::vector<ScoredPoint>> RunQuery(Collection& collection,
                                                          const QueryRequest& request);
// Collection::QueryGroups.
[[nodiscard]] StatusOr<std::vector<PointGroup>> RunQueryGroups(Collection& collection,
                                                               const QueryRequest& request,
                                                               const GroupBy& group);

// Collections up to this many points rank recommend (best_score, sum_scores
// on distance metrics), discover and context queries over every point, as
// Qdrant does; larger ones over the union of each example's nearest
// max(8 * (limit + offset), 256) points.
inline constexpr size_t kExhaustiveQueryPoints = 10000;

}  // namespace qvec::engine

#endif  // QVEC_ENGINE_QUERY_H_
