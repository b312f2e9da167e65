// A collection: points of one dimension and distance, searchable by vector.
#ifndef QVEC_COLLECTION_H_
#define QVEC_COLLECTION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "qvec/export.h"
#include "qvec/options.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec {

/// How quantized vectors differ from the float originals, measured on a sample.
struct QualityReport {
  size_t sample_size = 0;           ///< vectors measured (0 = not measured yet)
  double mse = 0;                   ///< mean squared error of decoded components
  double sqnr_db = 0;               ///< signal-to-quantization-noise ratio
  double max_abs_error = 0;         ///< largest component error
  double score_mean_abs_error = 0;  ///< int8 score vs float score, over pairs
  double score_max_abs_error = 0;
};

/// The state and health of a collection's index.
struct IndexInfo {
  /// kFlat: an exhaustive index (every code scanned); kIvf: a partitioned one
  /// (lists probed); kTraining: a build runs (searches use the previous one).
  enum class State : uint8_t { kFlat, kTraining, kIvf };
  State state = State::kFlat;
  /// The index type ("flat", "ivf"); empty before a calibrated field's first
  /// vector.
  std::string kind;
  uint32_t nlist = 0;
  size_t list_min = 0, list_median = 0, list_max = 0;
  double imbalance = 0;  ///< largest list / mean list
  double kmeans_objective = 0;
  double training_seconds = 0;
  size_t trained_on_points = 0;  ///< collection size when the index was trained
  /// nprobe -> measured recall@10 on held-out sample queries (the int8 scan,
  /// before rescoring).
  std::vector<std::pair<uint32_t, float>> recall_curve;
  /// The IVF's 4-bit first pass as built ("none", "sq4", "pq4"), and its
  /// oversampling -> retention curve: the share of the int8 scan's top 10
  /// that re-ranking the 4-bit scan's top 10 * oversampling with int8 keeps.
  std::string first_pass = "none";
  std::vector<std::pair<float, float>> first_pass_curve;
  /// Oversampling -> recall@10 after rescoring an exhaustive int8 scan's
  /// best limit * oversampling candidates with the float originals: the
  /// quantization's share of the loss, measured on up to 20000 of the field's
  /// vectors with 100 of them held out as queries; re-measured when the field
  /// has doubled or halved, or its index was rebuilt. Empty until measured.
  std::vector<std::pair<float, float>> rescore_curve;
  /// The oversampling a search without its own uses at the field's
  /// default_target_recall (from rescore_curve; 4 before it is measured).
  float default_oversampling = 0;
  /// Expected recall@10 of such a default search, end to end: the rescore
  /// curve at default_oversampling times, for IVF, the share of an exhaustive
  /// scan that the automatic nprobe keeps. 0 before the curve is measured.
  float estimated_recall = 0;
  /// Why the last background build failed ("" when it succeeded or none ran);
  /// failed builds are retried with a growing delay (10 s, 20 s, ... 10 min).
  std::string last_error;
  size_t failed_builds = 0;  ///< since the last successful one
  /// A config change (quantization, nlist, ivf_threshold) that the index is
  /// not built for yet: the background rebuild re-encodes every vector, and
  /// searches use the previous codes until it is swapped in.
  bool rebuild_pending = false;
  /// The quantization of the codes the index holds (the config's once no
  /// rebuild is pending).
  QuantizationOptions codes_quantization;
};

/// One vector field's index and quantization figures.
struct VectorFieldInfo {
  VectorFieldConfig config;
  size_t vectors_count = 0;  ///< points carrying this field
  IndexInfo index;
  QualityReport quality;
  size_t memory_bytes = 0;  ///< codes and index of this field
};

/// Where a field's vectors sit in its index (Collection::IndexLists), for
/// pictures of the partition such as the dashboard's map.
struct IndexLists {
  /// Vectors per IVF list; one entry (all vectors) for a flat index.
  std::vector<uint32_t> list_sizes;
  /// Per id asked: the list its vector is in, or -1 when the point does not
  /// exist or does not carry the field.
  std::vector<int64_t> point_lists;
  /// When asked for: the lists' centroids, list_sizes.size() * dimension
  /// floats (as the index holds them: normalized under Cosine, within half
  /// an int8 step); empty for a flat index.
  std::vector<float> centroids;
};

/// A sparse vector field's inverted index.
struct SparseFieldInfo {
  size_t vectors_count = 0;  ///< points carrying a non-empty vector of it
  size_t entries = 0;        ///< nonzero entries, over all its vectors
  size_t memory_bytes = 0;   ///< posting lists and the forward table
};

/// What Collection::Info() reports: config, sizes, index health and quality.
struct CollectionInfo {
  std::string name;
  CollectionConfig config;
  size_t points_count = 0;
  /// Points whose stored data was found damaged at open and moved out of the
  /// collection (see docs/ARCHITECTURE.md, "Quarantine").
  size_t quarantined_points = 0;
  /// Per vector field ("" for the unnamed one).
  std::map<std::string, VectorFieldInfo> fields;
  /// Per sparse field.
  std::map<std::string, SparseFieldInfo> sparse_fields;
  /// The declared payload indexes, by payload key.
  std::map<std::string, PayloadIndexInfo> payload_schema;
  /// The first field's index and quality (the unnamed field's, for a
  /// single-vector collection; defaults when there are sparse fields only).
  IndexInfo index;
  QualityReport quality;
  size_t memory_bytes = 0;  ///< RAM held by codes, ids, indexes and filters
  uint64_t disk_bytes = 0;  ///< approximate, whole database
  std::string simd_level;   ///< kernels in use: "avx512", "avx2" or "scalar"
};

/// Thread safety: every method may be called from many threads at once.
/// Consistency: writes to a collection are atomic and ordered (each one sees
/// and changes the state every earlier one left); every read answer comes
/// from one committed state: it sees each write whole or not at all, and a
/// record's payload and vector, and a hit's score, come from the same write.
/// A Collection stays usable after Database::DropCollection but then answers
/// NotFound, and after its Database is destroyed it answers FailedPrecondition.
class QVEC_EXPORT Collection {
 public:
  virtual ~Collection() = default;

  /// The collection's name (not an alias).
  virtual const std::string& name() const = 0;
  /// The current config (a copy: Database::UpdateCollection may change the
  /// quantization and index options at any time).
  virtual CollectionConfig config() const = 0;

  /// Inserts or replaces `points` atomically: once it returns ok, every point
  /// is durable (it survives kill -9). Within one batch the last occurrence of
  /// an id wins. InvalidArgument (and nothing written) if any point is invalid:
  /// wrong dimension, NaN or Inf, a zero vector under Cosine, a payload that is
  /// not a JSON object.
  [[nodiscard]] virtual Status Upsert(std::span<const Point> points) = 0;

  /// Points UpsertArrays writes per atomic chunk.
  static constexpr size_t kBulkChunkPoints = 4096;
  /// Bulk upsert from contiguous arrays, for programs that hold their data
  /// that way: point i gets id ids[i], the vector vectors[i * dim, (i + 1) *
  /// dim) of field `vector_name` ("" = the unnamed one; dim is its dimension,
  /// so vectors.size() must be ids.size() * dim) and, when `payloads` is not
  /// empty (then of size ids.size()), payload payloads[i] (JSON object text;
  /// "" = none). Every point is checked first (InvalidArgument, nothing
  /// written, for a wrong size, NaN or Inf, a zero vector under Cosine, a bad
  /// payload); then they are written in order in atomic, durable chunks of
  /// kBulkChunkPoints. A storage error stops it with the points of earlier
  /// chunks written; its message names the first id not written. Replaces
  /// whole points, as Upsert. The arrays are only read during the call.
  [[nodiscard]] virtual Status UpsertArrays(std::span<const PointId> ids,
                                            std::span<const float> vectors,
                                            std::span<const std::string> payloads = {},
                                            const std::string& vector_name = "") = 0;

  /// Sets the vector fields each point carries, keeping its payload and the
  /// fields it does not carry. Atomic and durable as Upsert; NotFound (and
  /// nothing written) if a point does not exist, InvalidArgument as Upsert.
  [[nodiscard]] virtual Status UpdateVectors(std::span<const Point> points) = 0;
  /// Removes the named vector fields from the given points (a point keeps
  /// its payload and other fields, and exists with no vector at all). NotFound
  /// if a point does not exist, InvalidArgument for an unknown field name;
  /// nothing is written then.
  [[nodiscard]] virtual Status DeleteVectors(std::span<const PointId> ids,
                                             const std::vector<std::string>& field_names) = 0;
  /// The same for every point that passes `filter`, chosen and changed in one
  /// atomic write; returns how many points lost a vector.
  [[nodiscard]] virtual StatusOr<size_t> DeleteVectorsByFilter(
      const Filter& filter, const std::vector<std::string>& field_names) = 0;

  /// Deletes the given ids (absent ids are ignored) atomically; returns how many
  /// existed.
  [[nodiscard]] virtual StatusOr<size_t> Delete(std::span<const PointId> ids) = 0;
  /// Deletes every point that passes `filter`; returns how many.
  [[nodiscard]] virtual StatusOr<size_t> DeleteByFilter(const Filter& filter) = 0;

  /// Replaces (overwrite) or merges (keys of `payload` set) the payload of the
  /// given points; NotFound if one is absent (nothing written then). The
  /// same as UpdatePayload with kOverwrite or kMerge at the top level.
  [[nodiscard]] virtual Status SetPayload(std::span<const PointId> ids, std::string_view payload,
                                          bool overwrite) = 0;
  /// Applies `update` (merge at a key, overwrite, delete keys, clear) to the
  /// payloads of the given points in one atomic, durable write. NotFound if a
  /// point is absent, InvalidArgument for a bad update; nothing is written
  /// then.
  [[nodiscard]] virtual Status UpdatePayload(std::span<const PointId> ids,
                                             const PayloadUpdate& update) = 0;
  /// Applies `update` to every point that passes `filter`; the points are
  /// chosen and written without another write in between (as
  /// DeleteByFilter). Returns how many.
  [[nodiscard]] virtual StatusOr<size_t> UpdatePayloadByFilter(const Filter& filter,
                                                               const PayloadUpdate& update) = 0;

  /// Declares a payload index on `key` (a dotted path) for values of `type`,
  /// builds it from the stored payloads and keeps it up to date with every
  /// write; persisted, and rebuilt when the database opens. Creating it again
  /// with the same type is a no-op; with another type it is replaced.
  /// InvalidArgument for an empty key or a path with array indexes.
  [[nodiscard]] virtual Status CreatePayloadIndex(const std::string& key,
                                                  PayloadSchemaType type) = 0;
  /// Removes the payload index on `key`; NotFound if there is none.
  [[nodiscard]] virtual Status DropPayloadIndex(const std::string& key) = 0;

  /// Reads the given points in the order asked, skipping absent ids.
  /// `max_result_bytes` bounds the answer as SearchRequest::max_result_bytes
  /// does (0 = none).
  [[nodiscard]] virtual StatusOr<std::vector<Record>> Get(std::span<const PointId> ids,
                                                          bool with_payload,
                                                          const VectorSelector& with_vector,
                                                          size_t max_result_bytes = 0) = 0;

  /// Exact number of points passing `filter` (all points when null).
  [[nodiscard]] virtual StatusOr<size_t> Count(const Filter* filter) = 0;

  /// A page of points in id order.
  [[nodiscard]] virtual StatusOr<ScrollPage> Scroll(const ScrollRequest& request) = 0;

  /// The best `limit` points after `offset`, best first. InvalidArgument for a
  /// bad vector or out-of-range parameters.
  [[nodiscard]] virtual StatusOr<std::vector<ScoredPoint>> Search(const SearchRequest& request) = 0;
  /// Qdrant's universal query: prefetch stages, then nearest, recommend,
  /// discover, context, fusion, order_by or sample (see QueryRequest). Each
  /// stage reads one committed state; a write between stages is seen by the
  /// later ones only. InvalidArgument for a bad request (unknown field or
  /// example point, a fusion without prefetches, ...).
  [[nodiscard]] virtual StatusOr<std::vector<ScoredPoint>> Query(const QueryRequest& request) = 0;
  /// Counts per value of the keyword, integer, uuid or bool payload index on
  /// `key` among the points passing `filter` (nullptr = all), exactly: the
  /// `limit` most frequent, ties by value (strings before integers before
  /// bools). InvalidArgument without such an index.
  [[nodiscard]] virtual StatusOr<std::vector<FacetHit>> Facet(const std::string& key,
                                                              const Filter* filter,
                                                              size_t limit) = 0;
  /// The query's points grouped by a payload key (Qdrant's query/groups):
  /// groups in the order of their best hit, each with its best group_size
  /// hits; a point with several values at the key is in each of their
  /// groups. request.limit and offset are ignored (group.limit counts
  /// groups); prefetch limits are multiplied by group_size.
  [[nodiscard]] virtual StatusOr<std::vector<PointGroup>> QueryGroups(const QueryRequest& request,
                                                                      const GroupBy& group) = 0;
  /// Runs many searches, sharing work between them; results in request order.
  [[nodiscard]] virtual StatusOr<std::vector<std::vector<ScoredPoint>>> SearchBatch(
      std::span<const SearchRequest> requests) = 0;
  /// SearchBatch over a query matrix: queries.size() = n * dim (dim the
  /// dimension of common.vector_name's field), query i being row i; every
  /// search is `common` with that vector (common.vector is ignored). Without
  /// a filter, the searches share one pass over the codes (the batch
  /// kernels). InvalidArgument when queries.size() is not a multiple of dim.
  [[nodiscard]] virtual StatusOr<std::vector<std::vector<ScoredPoint>>> SearchMatrix(
      std::span<const float> queries, const SearchRequest& common) = 0;

  /// The list sizes of dense field `field`'s index, the list of each of
  /// `ids` (at most kMaxSearchLimit) and, with `with_centroids`, the lists'
  /// centroids. InvalidArgument for an unknown field or too many ids.
  [[nodiscard]] virtual StatusOr<IndexLists> ListsOf(const std::string& field,
                                                     std::span<const PointId> ids,
                                                     bool with_centroids = false) = 0;

  /// Trains (or retrains) the IVF index now, in the calling thread.
  [[nodiscard]] virtual Status Optimize() = 0;

  /// Config, size, index health and the quantization quality report (which
  /// may read a sample of originals from disk when the collection changed).
  [[nodiscard]] virtual StatusOr<CollectionInfo> Info() = 0;
  /// The index state alone; never blocks on disk.
  virtual IndexInfo::State index_state() const = 0;
};

}  // namespace qvec

#endif  // QVEC_COLLECTION_H_
