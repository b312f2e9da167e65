// Value types of qvec's public API: distances, point ids, points, filters,
// search requests and results.
#ifndef QVEC_TYPES_H_
#define QVEC_TYPES_H_

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qvec/export.h"
#include "qvec/status.h"

namespace qvec {

/// How vectors are compared. Cosine normalizes vectors on insert and at query
/// time (stored vectors are returned normalized, as in Qdrant); Dot scores the
/// raw inner product; Euclid the L2 distance; Manhattan the L1 distance.
/// Higher scores are better for Cosine and Dot; for Euclid and Manhattan the
/// score is a distance and lower is better.
enum class Distance : uint8_t { kCosine = 0, kDot = 1, kEuclid = 2, kManhattan = 3 };

/// "Cosine", "Dot", "Euclid", "Manhattan" (Qdrant's spelling).
QVEC_EXPORT std::string_view DistanceName(Distance d);
/// Parses Qdrant's spelling; InvalidArgument for anything else.
QVEC_EXPORT StatusOr<Distance> ParseDistance(std::string_view name);
/// Every distance's name, for messages: "Cosine, Dot, Euclid or Manhattan".
QVEC_EXPORT std::string DistanceNames();

/// A point id: an unsigned 64-bit integer or a UUID, as in Qdrant. Integers
/// order before UUIDs; each kind orders by value.
class QVEC_EXPORT PointId {
 public:
  PointId() = default;
  static PointId Num(uint64_t n) {
    PointId id;
    id.num_ = n;
    return id;
  }
  /// Parses a UUID in its hyphenated (8-4-4-4-12) or 32-hex-digit simple form,
  /// case-insensitive. InvalidArgument otherwise.
  static StatusOr<PointId> ParseUuid(std::string_view text);
  static PointId Uuid(const std::array<uint8_t, 16>& bytes) {
    PointId id;
    id.is_uuid_ = true;
    id.uuid_ = bytes;
    return id;
  }

  bool is_uuid() const { return is_uuid_; }
  uint64_t num() const { return num_; }
  const std::array<uint8_t, 16>& uuid() const { return uuid_; }

  /// "42" or the lower-case hyphenated UUID.
  std::string ToString() const;

  auto operator<=>(const PointId& other) const {
    if (is_uuid_ != other.is_uuid_) return is_uuid_ <=> other.is_uuid_;
    if (!is_uuid_) return num_ <=> other.num_;
    return uuid_ <=> other.uuid_;
  }
  bool operator==(const PointId& other) const = default;

 private:
  bool is_uuid_ = false;
  uint64_t num_ = 0;
  std::array<uint8_t, 16> uuid_{};
};

/// Hash of a PointId, for unordered containers.
struct QVEC_EXPORT PointIdHash {
  size_t operator()(const PointId& id) const;
};

/// A sparse vector (Qdrant's {"indices", "values"}): values[i] at dimension
/// indices[i]. On input the indices must be distinct (in any order) and the
/// values finite; stored and returned with the indices ascending. A vector
/// with no indices is stored (the point carries the field) but matches no
/// query.
struct SparseVector {
  std::vector<uint32_t> indices;
  std::vector<float> values;  ///< size = indices.size()
  bool operator==(const SparseVector&) const = default;
};

/// A point as written by Upsert. An upsert replaces the whole point: vector
/// fields it does not carry are removed from it.
struct Point {
  PointId id;
  /// The unnamed field's vector (size = its dimension); empty in a collection
  /// with named fields.
  std::vector<float> vector;
  /// A JSON object as text, stored and returned as given; empty = no payload.
  std::string payload;
  /// Named fields' vectors (any subset of the collection's fields; a point
  /// may carry none).
  std::map<std::string, std::vector<float>> vectors;
  /// Sparse fields' vectors (any subset of CollectionConfig::sparse_vectors).
  std::map<std::string, SparseVector> sparse_vectors;
};

/// Which vector fields a read returns: none, all, or the named ones.
/// Converts from bool (true = all).
struct VectorSelector {
  VectorSelector(bool all_fields = false) : all(all_fields) {}  // NOLINT: implicit on purpose
  explicit VectorSelector(std::vector<std::string> field_names) : names(std::move(field_names)) {}
  bool all = false;
  std::vector<std::string> names;  ///< when !all
  explicit operator bool() const { return all || !names.empty(); }
  bool Wants(const std::string& field) const {
    if (all) return true;
    for (const auto& n : names) {
      if (n == field) return true;
    }
    return false;
  }
};

/// A point as read back by Get, Scroll and Search.
struct Record {
  PointId id;
  std::optional<std::string> payload;  ///< JSON object text, when asked for
  /// The unnamed field's vector, when asked for (normalized under Cosine).
  std::optional<std::vector<float>> vector;
  /// Named fields' vectors asked for that the point carries.
  std::map<std::string, std::vector<float>> vectors;
  /// Sparse fields' vectors asked for that the point carries.
  std::map<std::string, SparseVector> sparse_vectors;
  /// The value it was ordered by (ScrollRequest::order_by).
  std::optional<double> order_value;
};

/// A search or query hit: the point, its score and what was asked for.
struct ScoredPoint {
  PointId id;
  float score = 0;
  /// The payload value it was ordered by (a query's order_by; score is 0).
  std::optional<double> order_value;
  std::optional<std::string> payload;
  std::optional<std::vector<float>> vector;
  std::map<std::string, std::vector<float>> vectors;
  std::map<std::string, SparseVector> sparse_vectors;
};

// ---------------------------------------------------------------------------
// Filters: Qdrant's must / should / must_not over payload conditions.
// ---------------------------------------------------------------------------

/// A scalar payload value that `match` compares with: string, integer or bool.
using MatchValue = std::variant<std::string, int64_t, bool>;

struct Filter;

/// A point on Earth in degrees: longitude in [-180, 180], latitude in [-90, 90].
struct GeoPoint {
  double lon = 0;
  double lat = 0;
};

/// One condition of a Filter: `kind` says which fields apply.
struct Condition {
  enum class Kind : uint8_t {
    kMatchValue,   ///< payload[key] == value (or an array containing it)
    kMatchAny,     ///< payload[key] equals any of `any`
    kMatchExcept,  ///< payload[key] has a value equal to none of `any`
    kRange,        ///< gt / gte / lt / lte on numbers
    kHasId,        ///< the point id is in `ids`
    kIsEmpty,      ///< payload[key] is missing, null or [] (not [null], {} or "")
    kIsNull,       ///< payload[key] is null
    kNested,       ///< a whole sub-filter
    /// Qdrant's match.text: a string at payload[key] contains `value` as a
    /// substring (case-sensitive), or, with a text payload index on the key,
    /// contains every word of `value` (lowercased words).
    kMatchText,
    /// match.phrase: as kMatchText without a text index; with one, the words
    /// of `value` appear in a row.
    kMatchPhrase,
    /// match.text_any: a string at payload[key] contains any whitespace-
    /// separated word of `value` as a substring, or, with a text payload
    /// index, any of its words.
    kMatchTextAny,
    /// The number of values at payload[key] (the length of an array, 1 for a
    /// scalar or an object, 0 when missing or null) is within gt / gte / lt /
    /// lte, as Qdrant counts them.
    kValuesCount,
    /// A date-time string at payload[key] (RFC 3339, as Qdrant accepts it)
    /// within time_gt / time_gte / time_lt / time_lte.
    kDatetimeRange,
    /// A geo point ({"lon": .., "lat": ..}, or an array of them) at
    /// payload[key] within geo_radius meters (haversine) of geo[0]; inside the
    /// box from geo[0] (top left) to geo[1] (bottom right), which may cross
    /// the antimeridian; or inside the polygon whose exterior ring is `geo`
    /// and outside each ring of geo_holes.
    kGeoRadius,
    kGeoBoundingBox,
    kGeoPolygon,
    /// Qdrant's nested condition: some object of the array at payload[key]
    /// (or the object there) passes `filter` on its own, its keys relative to
    /// that object. (kNested, by contrast, is a sub-filter on the point.)
    kNestedObjects,
    /// The point carries the vector field named `key`, dense or sparse
    /// (Qdrant's has_vector; "" = the unnamed field).
    kHasVector,
  };
  Kind kind = Kind::kMatchValue;
  std::string key;  ///< payload key; dots address nested objects ("a.b")
  MatchValue value;
  std::vector<MatchValue> any;
  std::optional<double> gt, gte, lt, lte;
  /// kDatetimeRange bounds, in microseconds since the Unix epoch (UTC).
  std::optional<int64_t> time_gt, time_gte, time_lt, time_lte;
  /// Geo conditions (degrees; see the kinds).
  std::vector<GeoPoint> geo;
  std::vector<std::vector<GeoPoint>> geo_holes;
  double geo_radius = 0;
  std::vector<PointId> ids;
  std::shared_ptr<Filter> filter;
};

/// A point passes when all `must`, at least one `should` (if any) and no
/// `must_not` condition holds. An empty filter passes every point.
struct Filter {
  std::vector<Condition> must;
  std::vector<Condition> should;
  std::vector<Condition> must_not;
  /// Qdrant's min_should: at least this many `should` conditions must hold
  /// (0 = Qdrant's default of one when `should` is non-empty).
  size_t min_should = 0;

  bool empty() const { return must.empty() && should.empty() && must_not.empty(); }
};

/// The value type a payload index is declared for (Qdrant's payload schema
/// types that qvec indexes). Filters give the same answers with or without an
/// index; an index makes the conditions on its key (match value / any,
/// range) cost the size of their answer instead of a pass over every point.
enum class PayloadSchemaType : uint8_t {
  kKeyword = 0,  ///< strings
  kInteger = 1,  ///< integers
  kFloat = 2,    ///< numbers
  kBool = 3,     ///< booleans
  kUuid = 4,     ///< UUID strings
  /// RFC 3339 date-time strings: datetime ranges answered from the index.
  kDatetime = 5,
  /// Full text: strings split into lowercase words (Qdrant's word
  /// tokenizer); with it, match.text needs every word of the query,
  /// match.text_any one of them and match.phrase them in a row, instead of
  /// the substring tests used without an index.
  kText = 6,
  /// Geo points ({"lon", "lat"} objects, alone or in arrays): geo_radius,
  /// geo_bounding_box and geo_polygon answered from points sorted by
  /// latitude.
  kGeo = 7,
};
/// "keyword", "integer", "float", "bool", "uuid", "datetime", "text";
/// InvalidArgument otherwise.
QVEC_EXPORT std::string_view PayloadSchemaTypeName(PayloadSchemaType type);
QVEC_EXPORT StatusOr<PayloadSchemaType> ParsePayloadSchemaType(std::string_view name);

/// A declared payload index, as reported by Collection::Info.
struct PayloadIndexInfo {
  PayloadSchemaType type = PayloadSchemaType::kKeyword;
  /// Points holding at least one value of the type at the key.
  size_t points = 0;
};

/// A change to the payloads of some points: Qdrant's set, overwrite, delete
/// and clear payload operations.
struct QVEC_EXPORT PayloadUpdate {
  enum class Op : uint8_t {
    kMerge,       ///< set the keys of `payload` (at `key`), keep the others
    kOverwrite,   ///< replace the whole payload by `payload`
    kDeleteKeys,  ///< remove the dotted paths in `keys`
    kClear,       ///< remove every key
  };
  /// Default: kMerge.
  Op op = Op::kMerge;
  /// kMerge / kOverwrite: one JSON object. Default: "{}".
  std::string payload = "{}";
  /// kMerge: the dotted path of the object inside the payload that receives
  /// `payload`'s keys; kOverwrite: the path of the object `payload` replaces.
  /// Missing objects along it are created, a non-object value in the way is
  /// replaced. "" = the top level (the whole payload). Default: "".
  std::string key;
  /// kDeleteKeys: dotted paths removed where present. Default: none.
  std::vector<std::string> keys;

  /// InvalidArgument for a payload that is not an object, an empty path
  /// segment, or a path with array indexes ("a[0]", "a[]"), which qvec does
  /// not address yet.
  [[nodiscard]] Status Validate() const;
};

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

/// How a search runs: probing, exactness, rescoring.
struct SearchParams {
  /// Lists probed by an IVF search, at most kMaxNlist; 0 = from target_recall
  /// or the collection's default. Default: 0.
  uint32_t nprobe = 0;
  /// Pick nprobe from the measured nprobe -> recall curve so that the expected
  /// recall@10 reaches this value; 0 = unused. Default: 0.
  float target_recall = 0;
  /// Scan every point instead of probing lists. Default: false.
  bool exact = false;
  /// Score with the float originals instead of int8 codes (slow; exact).
  /// Default: false.
  bool ignore_quantization = false;
  /// Re-rank limit * oversampling int8 candidates by their exact float scores
  /// (read from disk), so that returned scores are exact, as Qdrant does by
  /// default. Set false for the fastest, int8-scored answer.
  /// Default: true.
  std::optional<bool> rescore;
  /// Candidates taken by int8 score per result when rescoring, in
  /// [1, kMaxOversampling]. Unset: the smallest factor that the field's
  /// rescore curve (measured on its own vectors, see IndexInfo) expects to
  /// meet the search's target recall (the request's target_recall, else the
  /// field's default_target_recall), 4 until the curve is first measured.
  /// Default: unset.
  std::optional<float> oversampling;
};

/// Maximal marginal relevance (Qdrant's query "mmr"): from the nearest
/// `candidates_limit` points, pick one at a time the point maximizing
/// (1 - diversity) * similarity to the query - diversity * its largest
/// similarity to the points already picked (exact, with the field's metric;
/// the first pick is the nearest). Scores stay the points' query scores.
struct Mmr {
  /// In [0, 1]; 0 = plain nearest order. Default: 0.5.
  float diversity = 0.5f;
  /// Candidates considered, in [limit + offset, kMaxSearchLimit]; 0 = limit +
  /// offset (which can only reorder them). Default: 0.
  size_t candidates_limit = 0;
};

/// A nearest-neighbour search of one vector field (Collection::Search).
struct SearchRequest {
  /// The vector field searched ("" = the unnamed one). Default: "".
  std::string vector_name;
  std::vector<float> vector;             ///< size = the field's dimension
  /// A sparse query: set it (and leave `vector` empty) to search the sparse
  /// field `vector_name`. Scores are exact dot products (the query's values
  /// weighted by idf under the idf modifier) over the points sharing at least
  /// one dimension with the query; `params` and `mmr` do not apply (an mmr is
  /// refused). Default: none.
  std::optional<SparseVector> sparse_vector;
  size_t limit = 10;                     ///< in [1, 10000]. Default: 10.
  size_t offset = 0;                     ///< results skipped. Default: 0.
  std::optional<float> score_threshold;  ///< keep only scores at least this good
  std::optional<Filter> filter;
  bool with_payload = false;
  VectorSelector with_vector;
  SearchParams params;
  /// Re-rank the nearest candidates for diversity. Default: none.
  std::optional<Mmr> mmr;
  /// Bound on the answer's size, counted as 48 bytes per point plus its
  /// payload text plus 12 bytes per vector component (about its JSON size);
  /// a larger answer is refused with OutOfRange. In SearchBatch the bound of
  /// the first request applies to the whole batch. 0 = none. Default: 0.
  size_t max_result_bytes = 0;
};

/// Scroll order by a numeric payload value (Qdrant's order_by). The key must
/// have an integer or float payload index. A point appears once per value it
/// holds at the key; equal values go by id.
struct OrderBy {
  std::string key;
  bool descending = false;  ///< Default: ascending.
  /// Values from this one on (>= ascending, <= descending); for a datetime
  /// index, microseconds since the Unix epoch (UTC). Default: all.
  std::optional<double> start_from;
  /// start_from was given as a date-time (valid only on a datetime index).
  /// Default: false.
  bool start_from_datetime = false;
};

/// A page of points in id order, or by a payload value (Collection::Scroll).
struct ScrollRequest {
  std::optional<PointId> offset;  ///< first id to return (inclusive); not with order_by
  size_t limit = 10;              ///< in [1, 100000]. Default: 10.
  std::optional<Filter> filter;
  bool with_payload = true;
  VectorSelector with_vector;
  /// Order by a payload value instead of by id; the page then has no
  /// next_page_offset (continue with start_from). Default: by id.
  std::optional<OrderBy> order_by;
  /// As SearchRequest::max_result_bytes. Default: 0 (none).
  size_t max_result_bytes = 0;
};

/// One page of Collection::Scroll.
struct ScrollPage {
  std::vector<Record> points;
  std::optional<PointId> next_page_offset;  ///< unset on the last page
};

// ---------------------------------------------------------------------------
// Query: Qdrant's universal query (POST /points/query) with prefetch stages.
// ---------------------------------------------------------------------------

/// An example of a query: a raw vector, or the stored vector of a point (of
/// the field the query searches).
struct VectorInput {
  std::vector<float> vector;     ///< when `point` and `sparse` are unset
  std::optional<PointId> point;  ///< this point's vector
  std::optional<SparseVector> sparse;  ///< a sparse vector (for a sparse field)
};

/// A score formula (Qdrant's FormulaQuery "formula"): evaluated for each
/// point the stage's prefetches returned, as Qdrant evaluates it. Variables
/// are "$score" / "$score[i]" (the point's score in prefetch i; a point that
/// prefetch did not return takes defaults["$score[i]"], else 0) or a payload
/// key (its number; a one-element array counts as its element; a missing key
/// takes its default, else the query fails). Conditions count 1 when the
/// point passes them, else 0. mult stops at a 0 factor; div is 0 when left
/// is 0 and by_zero_default (else an error) when right is; sqrt, pow, exp,
/// log10, ln fail on a result that is not finite. geo_distance is the
/// haversine distance in meters from `origin` to the geo point at `key`;
/// datetime and datetime_key are seconds since the Unix epoch (UTC). The
/// decays map x (with target, default 0; scale > 0, default 1; midpoint in
/// (0, 1), default 0.5) to lin: max(0, 1 - (1 - midpoint) / scale *
/// |x - target|), exp: exp(ln(midpoint) / scale * |x - target|), gauss:
/// exp(ln(midpoint) / scale^2 * (x - target)^2).
struct Expression {
  enum class Kind : uint8_t {
    kConstant,     ///< `constant`
    kVariable,     ///< `name`
    kCondition,    ///< `condition` (1 or 0)
    kMult,         ///< product of `args`
    kSum,          ///< sum of `args`
    kNeg,          ///< -args[0]
    kAbs,          ///< |args[0]|
    kDiv,          ///< args[0] / args[1], `by_zero_default`
    kSqrt,         ///< sqrt(args[0])
    kPow,          ///< args[0] ^ args[1]
    kExp,          ///< e ^ args[0]
    kLog10,        ///< log10(args[0])
    kLn,           ///< ln(args[0])
    kGeoDistance,  ///< from `origin` to the geo point at payload key `name`
    kDatetime,     ///< the date-time text `name`
    kDatetimeKey,  ///< the date-time at payload key `name`
    kLinDecay,     ///< x = args[0], target = args[1] when given
    kExpDecay,
    kGaussDecay,
  };
  Kind kind = Kind::kConstant;
  double constant = 0;
  std::string name;
  std::shared_ptr<const Filter> condition;  ///< a filter holding the condition
  std::vector<Expression> args;
  std::optional<double> by_zero_default;
  GeoPoint origin;
  std::optional<double> scale, midpoint;
};

/// What a query stage ranks by. Scores follow Qdrant: the metric's score for
/// nearest and average_vector (distance for Euclid and Manhattan, lower
/// first); for the custom objectives, computed from raw similarities (Cosine
/// and Dot as they are, Euclid -squared distance, Manhattan -distance):
/// best_score sf(max positive) when it beats the best negative, else
/// -sf(max negative), with sf(x) = (x / (1 + |x|) + 1) / 2; sum_scores the sum
/// over positives minus the sum over negatives; discover the sum over context
/// pairs of sign(sim(positive) - sim(negative)) plus sf(sim(target)); context
/// the sum over pairs of f(min(sim(positive) - sim(negative) - FLT_EPSILON,
/// 0)), f(x) = x / (1 + |x|). Fusion: RRF (weight / (k + position), position
/// from 0) or DBSF (each list's scores mapped by mean +- 3 sample standard
/// deviations, distances negated first, summed). order_by and sample score 0
/// (order_by sets ScoredPoint::order_value).
struct QuerySpec {
  enum class Kind : uint8_t {
    kNearest,    ///< `nearest` (optionally diversified by `mmr`)
    kRecommend,  ///< `positive` / `negative` examples by `strategy`
    kDiscover,   ///< `target` constrained by `context` pairs
    kContext,    ///< only `context` pairs
    kFusion,     ///< fuse the prefetches' lists (`fusion`)
    kOrderBy,    ///< by a payload value (`order_by`)
    kSample,     ///< random points
    kFormula,    ///< the prefetched points by `formula`
    /// Qdrant's relevance feedback (naive strategy): `target` and scored
    /// `feedback` examples (see below).
    kRelevanceFeedback,
  };
  enum class Strategy : uint8_t { kAverageVector, kBestScore, kSumScores };
  enum class Fusion : uint8_t { kRrf, kDbsf };
  /// Default: kNearest.
  Kind kind = Kind::kNearest;
  VectorInput nearest;
  std::optional<Mmr> mmr;
  std::vector<VectorInput> positive, negative;
  /// Default: kAverageVector.
  Strategy strategy = Strategy::kAverageVector;
  VectorInput target;
  std::vector<std::pair<VectorInput, VectorInput>> context;  ///< (positive, negative)
  /// Default: kRrf.
  Fusion fusion = Fusion::kRrf;
  /// RRF's constant: score = sum over lists of weight / (k + rank), rank
  /// counted from 1. Default: 2.
  uint32_t rrf_k = 2;
  /// RRF weight of each prefetch's list, in prefetch order; empty = 1 each.
  std::vector<float> rrf_weights;
  OrderBy order_by;
  Expression formula;
  /// Relevance feedback: the examples with their relevance scores. The
  /// feedback is sorted by score and paired best with worst, second with
  /// second-worst, ..., at most 3 pairs; a point scores a * sim(target) +
  /// sum over pairs of (score(p) - score(n))^b * c * (sim(p) - sim(n)), sim
  /// the raw similarity of the custom objectives. Feedback examples are not
  /// excluded from the results.
  struct Feedback {
    VectorInput example;
    float score = 0;
  };
  std::vector<Feedback> feedback;
  /// The naive strategy's trained coefficients (b >= 0). Default: 1, 1, 1.
  float feedback_a = 1, feedback_b = 1, feedback_c = 1;
  /// Values of variables the payload lacks, by variable name, as JSON text (a
  /// number, a geo point object, a date-time string). Default: none.
  std::map<std::string, std::string> formula_defaults;
};

/// One value of a facet (Qdrant's /facet): how many points hold it.
struct FacetHit {
  MatchValue value;
  size_t count = 0;
};

/// Qdrant's grouping of query results by a payload key.
struct GroupBy {
  /// The payload key whose values (strings or integers; each value of an
  /// array) name the groups. Points without it are left out, as are points
  /// whose value there has another type. Default: "".
  std::string key;
  /// Hits per group, in [1, kMaxSearchLimit]. Default: 3.
  size_t group_size = 3;
  /// Groups, in [1, kMaxSearchLimit]. Default: 10.
  size_t limit = 10;
};

/// One group of Collection::QueryGroups.
struct PointGroup {
  /// The group's value: a string or an integer (MatchValue never holds a
  /// bool here).
  MatchValue id;
  std::vector<ScoredPoint> hits;  ///< best first, at most group_size
};

/// One stage: its prefetches run first (each a stage of its own); the query
/// then ranks only the points they returned (fusion merges their lists), or,
/// without prefetches, the whole collection. Without a query a stage returns
/// its (single) prefetch's points, or all points by id.
struct QueryRequest {
  std::vector<QueryRequest> prefetch;
  std::optional<QuerySpec> query;
  /// The vector field the query and its point examples use ("" = unnamed).
  /// Default: "".
  std::string vector_name;
  std::optional<Filter> filter;
  SearchParams params;
  std::optional<float> score_threshold;
  /// In [1, kMaxSearchLimit]. Default: 10.
  size_t limit = 10;
  /// At most kMaxSearchOffset; applied by the outermost stage. Default: 0.
  size_t offset = 0;
  bool with_payload = false;
  VectorSelector with_vector;
  /// As SearchRequest::max_result_bytes. Default: 0 (none).
  size_t max_result_bytes = 0;
};

}  // namespace qvec

#endif  // QVEC_TYPES_H_
