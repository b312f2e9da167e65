// Decoding of Qdrant-shaped JSON request bodies into engine types.
//
// Every function reads its objects through RequestFields
// (server/request_fields.h): a field is either applied, accepted because it
// only tunes Qdrant internals (the list is in README.md, "Qdrant API
// coverage"), or refused with InvalidArgument naming its path. Bad values
// are InvalidArgument naming the field; range errors (limit 0, dimension 0,
// ...) are OutOfRange. Nothing here touches the database.
#ifndef QVEC_SERVER_JSON_REQUEST_H_
#define QVEC_SERVER_JSON_REQUEST_H_

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qvec/database.h"
#include "qvec/options.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::server {

// Deepest nesting of arrays and objects accepted in a request body.
inline constexpr size_t kMaxJsonDepth = 64;

// Parses `body` (must be one JSON object; a blank body yields an empty
// object) with `parser`. Duplicate keys at any depth are refused.
[[nodiscard]] StatusOr<simdjson::dom::element> ParseBody(simdjson::dom::parser& parser,
                                                         std::string_view body);

[[nodiscard]] StatusOr<PointId> ParsePointId(simdjson::dom::element e);
[[nodiscard]] StatusOr<PointId> ParsePointIdText(std::string_view text);
// A JSON array of numbers as float32; values beyond float range are rejected.
[[nodiscard]] Status ParseVector(simdjson::dom::element e, std::vector<float>* out);
// Qdrant's Filter. `path` names it in messages ("filter").
[[nodiscard]] StatusOr<Filter> ParseFilter(simdjson::dom::element e,
                                           const std::string& path = "filter", size_t depth = 0);

// Qdrant's with_payload: a boolean, a list of keys to include, or
// {"include": [...]} / {"exclude": [...]}. Keys select top-level fields (a
// dotted key selects the field its first segment names).
struct PayloadSelector {
  bool enabled = false;
  std::vector<std::string> include;  // empty = every field
  std::vector<std::string> exclude;

  // `payload` (a JSON object) restricted to the selected fields.
  std::string Apply(std::string_view payload) const;
};

// ---- Request bodies, one function per endpoint ----

// PUT /collections/{name}.
[[nodiscard]] StatusOr<CollectionConfig> ParseCollectionConfig(simdjson::dom::element e);
// PATCH /collections/{name} against the collection's `config`: the config it
// asks for. `quantization_config` and qvec's `qvec` options, collection-wide
// and per vector field (`vectors.<name>.…`), change the quantization and
// index options (see Database::UpdateCollection); fields that tune Qdrant
// internals (hnsw, optimizers, replication) are accepted without effect; any
// other is refused, naming it.
[[nodiscard]] StatusOr<CollectionConfig> ParseCollectionUpdate(simdjson::dom::element e,
                                                               const CollectionConfig& config);

// POST /collections/{name}/points/search.
struct ParsedSearch {
  SearchRequest request;
  PayloadSelector selector;
};
[[nodiscard]] StatusOr<ParsedSearch> ParseSearchRequest(simdjson::dom::element e,
                                                        const std::string& path = "");
// .../points/search/batch: {"searches": [...]}.
[[nodiscard]] StatusOr<std::vector<ParsedSearch>> ParseSearchBatch(simdjson::dom::element e);

// POST /collections/{name}/points/query (and each of .../query/batch): Qdrant's
// QueryRequest with nested prefetches. `lookup_from` (vectors of point
// examples taken from another collection) is returned per stage for the
// router to resolve: lookups[i] belongs to the stage found i-th in a
// pre-order walk (the request, then its prefetches depth-first).
struct LookupFrom {
  std::string collection;
  std::string vector;  // "" = the unnamed field
};
struct ParsedQuery {
  QueryRequest request;
  PayloadSelector selector;
  std::vector<std::optional<LookupFrom>> lookups;
};
[[nodiscard]] StatusOr<ParsedQuery> ParseQueryRequest(simdjson::dom::element e,
                                                      const std::string& path = "");
[[nodiscard]] StatusOr<std::vector<ParsedQuery>> ParseQueryBatch(simdjson::dom::element e);

// The *groups endpoints: the query, the grouping and with_lookup (points of
// another collection whose ids are the group values).
struct ParsedGroups {
  ParsedQuery query;
  GroupBy group;
  std::optional<LookupFrom> with_lookup;  // `vector` unused
  PayloadSelector lookup_payload;
  VectorSelector lookup_vectors;
};
// POST .../points/query/groups.
[[nodiscard]] StatusOr<ParsedGroups> ParseQueryGroupsRequest(simdjson::dom::element e);
// POST .../points/search/groups and .../points/recommend/groups.
[[nodiscard]] StatusOr<ParsedGroups> ParseSearchGroupsRequest(simdjson::dom::element e);
[[nodiscard]] StatusOr<ParsedGroups> ParseRecommendGroupsRequest(simdjson::dom::element e);
// The older POST .../points/recommend and .../points/discover (and their
// batch forms, {"searches": [...]}) as queries.
[[nodiscard]] StatusOr<ParsedQuery> ParseRecommendRequest(simdjson::dom::element e,
                                                          const std::string& path = "");
[[nodiscard]] StatusOr<ParsedQuery> ParseDiscoverRequest(simdjson::dom::element e,
                                                         const std::string& path = "");
[[nodiscard]] StatusOr<std::vector<ParsedQuery>> ParseLegacyBatch(simdjson::dom::element e,
                                                                  bool discover);

// POST .../points/search/matrix/{pairs,offsets}: {filter, sample (default
// 10, at least 2), limit (default 3), using}.
struct SearchMatrixBody {
  std::optional<Filter> filter;
  size_t sample = 10;
  size_t limit = 3;
  std::string vector_name;
};
[[nodiscard]] StatusOr<SearchMatrixBody> ParseSearchMatrix(simdjson::dom::element e);

// POST /collections/{name}/facet: {key, limit (default 10), filter, exact}.
struct FacetBody {
  std::string key;
  size_t limit = 10;
  std::optional<Filter> filter;
};
[[nodiscard]] StatusOr<FacetBody> ParseFacet(simdjson::dom::element e);

// POST /collections/{name}/qvec/lists (qvec's own): {"using": "...", "ids": [...]}.
struct ListsBody {
  std::string vector_name;
  std::vector<PointId> ids;
  bool with_centroids = false;
};
[[nodiscard]] StatusOr<ListsBody> ParseListsBody(simdjson::dom::element e);

// PUT /collections/{name}/points: {"points": [...]} or {"batch": {...}}.
[[nodiscard]] StatusOr<std::vector<Point>> ParsePoints(simdjson::dom::element e);

// POST /collections/{name}/points (retrieve by ids).
struct RetrieveBody {
  std::vector<PointId> ids;
  PayloadSelector with_payload;
  VectorSelector with_vector;
};
[[nodiscard]] StatusOr<RetrieveBody> ParseRetrieve(simdjson::dom::element e);

// POST /collections/{name}/points/delete: {"points": [...]} or {"filter"}.
struct PointsSelection {
  std::vector<PointId> ids;     // when `filter` is unset
  std::optional<Filter> filter;
};
[[nodiscard]] StatusOr<PointsSelection> ParseDeletePoints(simdjson::dom::element e);

// The payload endpoints: which points (ids, or a filter) and what change.
struct PayloadBody {
  std::vector<PointId> ids;     // when `filter` is unset
  std::optional<Filter> filter;
  PayloadUpdate update;
};
// POST (merge, optionally at `key`) / PUT (overwrite) .../points/payload.
[[nodiscard]] StatusOr<PayloadBody> ParseSetPayload(simdjson::dom::element e, bool overwrite);
// POST .../points/payload/delete: {keys, points | filter}.
[[nodiscard]] StatusOr<PayloadBody> ParseDeletePayload(simdjson::dom::element e);
// POST .../points/payload/clear: {points | filter}.
[[nodiscard]] StatusOr<PayloadBody> ParseClearPayload(simdjson::dom::element e);

// PUT .../points/vectors: {"points": [{id, vector}]}; each point's vector
// names the fields it sets ([..] for the unnamed one).
[[nodiscard]] StatusOr<std::vector<Point>> ParseUpdateVectors(simdjson::dom::element e);
// POST .../points/vectors/delete: {points, vector: [names]}.
struct DeleteVectorsBody {
  std::vector<PointId> ids;       // `points` ...
  std::optional<Filter> filter;   // ... or `filter`
  std::vector<std::string> names;
};
[[nodiscard]] StatusOr<DeleteVectorsBody> ParseDeleteVectors(simdjson::dom::element e);

// POST /collections/{name}/points/count.
[[nodiscard]] StatusOr<std::optional<Filter>> ParseCount(simdjson::dom::element e);

// POST /collections/{name}/points/scroll.
struct ScrollBody {
  ScrollRequest request;
  PayloadSelector with_payload;
};
[[nodiscard]] StatusOr<ScrollBody> ParseScroll(simdjson::dom::element e);

// PUT /collections/{name}/index: {field_name, field_schema}, the schema a
// type name or {type, ...params}. keyword, integer, float, bool and uuid are
// indexed (the params tune Qdrant's storage and are accepted without effect);
// text, geo and datetime are refused.
struct CreateFieldIndexBody {
  std::string key;
  PayloadSchemaType type = PayloadSchemaType::kKeyword;
};
[[nodiscard]] StatusOr<CreateFieldIndexBody> ParseCreateFieldIndex(simdjson::dom::element e);

// PUT /collections/{name}/snapshots/recover: {"location": "file:///..." or
// "http://127.0.0.1:.../...", "checksum": sha256 hex, "api_key": sent to the
// remote, "priority": "replica" | "snapshot" | "no_sync"}. On a single node
// the snapshot's data is always taken, so every priority has the same effect.
struct SnapshotRecoverBody {
  std::string location;
  std::string checksum;
  std::string api_key;
};
[[nodiscard]] StatusOr<SnapshotRecoverBody> ParseSnapshotRecover(simdjson::dom::element e);
// Checks a `priority` value (query parameter or body field).
[[nodiscard]] Status CheckSnapshotPriority(std::string_view priority, std::string_view where);

// POST /collections/{name}/points/batch: {"operations": [{"upsert": ...},
// {"delete": ...}, {"set_payload": ...}, {"overwrite_payload": ...},
// {"delete_payload": ...}, {"clear_payload": ...}, {"update_vectors": ...},
// {"delete_vectors": ...}]}, each body as its own endpoint's. Every
// operation is parsed before any is applied.
struct BatchOperation {
  enum class Kind : uint8_t { kUpsert, kDelete, kPayload, kUpdateVectors, kDeleteVectors };
  Kind kind = Kind::kUpsert;
  std::string name;               // "upsert", "set_payload", ... (for messages)
  std::vector<Point> points;      // kUpsert, kUpdateVectors
  PointsSelection selection;      // kDelete
  PayloadBody payload;            // kPayload
  DeleteVectorsBody vectors;      // kDeleteVectors
};
[[nodiscard]] StatusOr<std::vector<BatchOperation>> ParseUpdateBatch(simdjson::dom::element e);

// POST /collections/aliases: {"actions": [{"create_alias": {collection_name,
// alias_name}} | {"delete_alias": {alias_name}} | {"rename_alias":
// {old_alias_name, new_alias_name}}, ...]}.
[[nodiscard]] StatusOr<std::vector<AliasOperation>> ParseAliasActions(simdjson::dom::element e);

}  // namespace qvec::server

#endif  // QVEC_SERVER_JSON_REQUEST_H_
