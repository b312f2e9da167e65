// Decoding of Qdrant-shaped JSON request bodies into engine types. Every
// function reports a bad field as InvalidArgument naming the field, and range
// errors (limit 0, dimension 0, ...) as OutOfRange.
#ifndef QVEC_SERVER_JSON_REQUEST_H_
#define QVEC_SERVER_JSON_REQUEST_H_

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "qvec/options.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec::server {

// Deepest nesting of arrays and objects accepted in a request body.
inline constexpr size_t kMaxJsonDepth = 64;

// Parses `body` (must be one JSON object unless `allow_empty` and body is
// blank, which yields an empty object) with `parser`.
[[nodiscard]] StatusOr<simdjson::dom::element> ParseBody(simdjson::dom::parser& parser,
                                                         std::string_view body);

[[nodiscard]] StatusOr<PointId> ParsePointId(simdjson::dom::element e);
[[nodiscard]] StatusOr<PointId> ParsePointIdText(std::string_view text);
// A JSON array of numbers as float32; values beyond float range are rejected.
[[nodiscard]] Status ParseVector(simdjson::dom::element e, std::vector<float>* out);
[[nodiscard]] StatusOr<Filter> ParseFilter(simdjson::dom::element e, size_t depth = 0);
// Qdrant's CreateCollection body.
[[nodiscard]] StatusOr<CollectionConfig> ParseCollectionConfig(simdjson::dom::element e);
// The body of /points/search (query_api = false) or /points/query (true).
[[nodiscard]] StatusOr<SearchRequest> ParseSearchRequest(simdjson::dom::element e, bool query_api);
// with_vector: a boolean, or a list of vector names ([] = none).
[[nodiscard]] StatusOr<VectorSelector> ParseVectorSelector(simdjson::dom::element obj,
                                                           std::string_view key,
                                                           bool default_value);
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
[[nodiscard]] StatusOr<PayloadSelector> ParsePayloadSelector(simdjson::dom::element obj,
                                                             bool default_enabled);

// Upsert body: {"points": [...]} or {"batch": {...}}.
[[nodiscard]] StatusOr<std::vector<Point>> ParsePoints(simdjson::dom::element e);

}  // namespace qvec::server

#endif  // QVEC_SERVER_JSON_REQUEST_H_
