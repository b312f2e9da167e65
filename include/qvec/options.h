// Options of a qvec database and of its collections. Every field has a
// default; Validate() reports the first invalid field as InvalidArgument.
#ifndef QVEC_OPTIONS_H_
#define QVEC_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "qvec/export.h"
#include "qvec/logger.h"
#include "qvec/status.h"
#include "qvec/types.h"

namespace qvec {

/// Limits, each defined here once and checked once, by the engine (index/
/// derives its own bounds from these; the server passes values through and
/// only checks that they fit the C++ types).
/// VectorFieldConfig::dimension is in [1, kMaxDimension].
inline constexpr uint32_t kMaxDimension = 65536;
/// IndexOptions::nlist, IndexOptions::default_nprobe and SearchParams::nprobe
/// are at most kMaxNlist.
inline constexpr uint32_t kMaxNlist = 65536;
/// SearchParams::oversampling is in [1, kMaxOversampling].
inline constexpr float kMaxOversampling = 100.0f;
/// Collection names are 1 to kMaxCollectionName bytes.
inline constexpr size_t kMaxCollectionName = 255;
/// SearchRequest::limit is in [1, kMaxSearchLimit].
inline constexpr size_t kMaxSearchLimit = 10000;
/// SearchRequest::offset is at most kMaxSearchOffset.
inline constexpr size_t kMaxSearchOffset = 100000;
/// ScrollRequest::limit is in [1, kMaxScrollLimit].
inline constexpr size_t kMaxScrollLimit = 100000;

/// How Database::Open opens a database; Validate() checks every field.
struct QVEC_EXPORT DatabaseOptions {
  /// fsync the write-ahead log on every write group, for power-loss
  /// durability. Without it an acknowledged write survives a crash of the
  /// process (kill -9) but not of the machine. Default: false.
  bool sync_writes = false;
  /// RocksDB block cache, shared by all collections. Default: 64 MiB.
  size_t block_cache_bytes = size_t{64} << 20;
  /// Create the database when `path` holds none. Default: true.
  bool create_if_missing = true;
  /// Train IVF indexes in the background when collections grow; when false,
  /// training happens only through Collection::Optimize(). Default: true.
  bool background_indexing = true;
  /// Threads running background index builds, shared by all collections
  /// (builds queue beyond that), in [1, 64]. Default: 1.
  size_t build_threads = 1;
  /// Disk space kept free: writes that would leave less are refused with
  /// ResourceExhausted ("disk full") until space returns, so that the
  /// database can always flush what it acknowledged; batches that only
  /// delete are let through. 0 disables the check. Default: 64 MiB.
  uint64_t min_free_disk_bytes = uint64_t{64} << 20;
  /// Receives the engine's log lines; nullptr = spdlog's default logger.
  /// Default: nullptr.
  std::shared_ptr<Logger> logger;

  [[nodiscard]] Status Validate() const;
};

/// How vectors are coded. Defaults are qvec's symmetric int8 with one scale
/// per vector, which needs no calibration.
struct QVEC_EXPORT QuantizationOptions {
  enum class Type : uint8_t {
    kInt8 = 0,   ///< symmetric: q = round(x / s), s = max|x| / 127
    kUint8 = 1,  ///< asymmetric with a zero point, for one-signed data
  };
  enum class Granularity : uint8_t {
    kPerVector = 0,      ///< one scale per vector
    kPerCollection = 1,  ///< one calibrated scale for the collection
    kPerDimension = 2,   ///< one calibrated scale per dimension
  };
  /// Default: kInt8.
  Type type = Type::kInt8;
  /// Default: kPerVector.
  Granularity granularity = Granularity::kPerVector;
  /// Calibrated ranges clip at this quantile of all values (Qdrant's
  /// `quantile`), in (0.5, 1]; 1 keeps min and max. Default: 1.
  float quantile = 1.0f;
  /// Choose the clipping quantile that maximizes recall@10 on held-out sample
  /// queries instead of using `quantile`. Default: false.
  bool recall_tuned = false;
  /// Qdrant's `always_ram`; accepted for compatibility (codes always live in
  /// RAM). Default: true.
  bool always_ram = true;

  [[nodiscard]] Status Validate() const;
};

/// A vector field's index policy: when it becomes IVF, its lists, its
/// default probing.
struct QVEC_EXPORT IndexOptions {
  /// IVF lists; 0 = about 4 * sqrt(N) as a power of two in [16, 65536].
  /// Default: 0.
  uint32_t nlist = 0;
  /// A collection switches from the exact flat scan to IVF once it holds this
  /// many points. Default: 20000.
  uint32_t ivf_threshold = 20000;
  /// nprobe used when a search names neither nprobe nor target_recall;
  /// 0 = pick nprobe for default_target_recall. Default: 0.
  uint32_t default_nprobe = 0;
  /// Target recall@10 when a search names neither nprobe nor target_recall,
  /// in (0, 1]. Default: 0.95.
  float default_target_recall = 0.95f;
  /// 4-bit codes scanned before the int8 codes in the IVF lists: the best
  /// candidates by 4-bit score are re-ranked with int8 (and rescored with
  /// the originals as without them); the oversampling between the two and
  /// the extra probes that make up for the 4-bit loss come from a curve
  /// measured when the index is built. They cost dim / 2 (kSq4) or dim / 4
  /// (kPq4; dim / 8 from 512 dimensions on) bytes per vector and pay off
  /// when the int8 codes outgrow the CPU caches. Not for Manhattan; sq4 up
  /// to 8192 dimensions, pq4 up to 32768. Default: kNone.
  enum class FirstPass : uint8_t {
    kNone = 0,
    kSq4 = 1,  ///< per-dimension 4-bit scalar codes
    kPq4 = 2,  ///< product quantization, 16 centroids per 2 (from 512: 4) dimensions
  };
  FirstPass first_pass = FirstPass::kNone;

  [[nodiscard]] Status Validate() const;
};

/// One vector field of a collection: every point may carry one vector of it.
struct QVEC_EXPORT VectorFieldConfig {
  /// Vector dimension, in [1, 65536]. Default: 0 (must be set).
  uint32_t dimension = 0;
  /// Default: Cosine.
  Distance distance = Distance::kCosine;
  /// Manhattan codes share one calibrated scale: per_vector means
  /// per_collection for it, and per_dimension is refused.
  QuantizationOptions quantization;
  IndexOptions index;

  [[nodiscard]] Status Validate() const;
};

/// One sparse vector field (Qdrant's sparse_vectors entry): points carry
/// {indices, values}; searches score exact dot products through an inverted
/// index.
struct QVEC_EXPORT SparseVectorConfig {
  enum class Modifier : uint8_t {
    kNone = 0,
    /// Qdrant's idf: at query time each query value is multiplied by
    /// ln((N - n + 0.5) / (n + 0.5) + 1), N the points carrying the field and n
    /// those of them holding the dimension.
    kIdf = 1,
  };
  /// Default: kNone.
  Modifier modifier = Modifier::kNone;
  /// A filtered search whose filter is answered by payload indexes with fewer
  /// than this many points scores those points one by one instead of walking
  /// posting lists (Qdrant's full_scan_threshold). Default: 5000.
  uint32_t full_scan_threshold = 5000;

  [[nodiscard]] Status Validate() const;
};

/// Fields per collection at most (dense and sparse together), and the
/// longest field name (bytes).
inline constexpr size_t kMaxVectorFields = 64;
inline constexpr size_t kMaxVectorFieldName = 255;

/// A collection's vector fields, in one of Qdrant's two forms: one unnamed
/// field (set `dimension` and optionally `distance`, `quantization`, `index`
/// here; it is the field named "") or named fields (fill `vectors`, leave
/// `dimension` 0). Points of a collection with named fields may carry any
/// subset of them. Either form may add sparse fields (`sparse_vectors`); a
/// collection may also have sparse fields only.
struct QVEC_EXPORT CollectionConfig {
  /// The unnamed field's dimension, in [1, 65536]; 0 when `vectors` is used.
  /// Default: 0.
  uint32_t dimension = 0;
  /// Default: Cosine.
  Distance distance = Distance::kCosine;
  QuantizationOptions quantization;
  IndexOptions index;
  /// Named fields (non-empty names, at most kMaxVectorFields). Default: none.
  std::map<std::string, VectorFieldConfig> vectors;
  /// Sparse fields (non-empty names distinct from the dense ones).
  /// Default: none.
  std::map<std::string, SparseVectorConfig> sparse_vectors;

  /// The dense fields by name: {"": the unnamed field}, `vectors`, or none.
  std::map<std::string, VectorFieldConfig> Fields() const;
  /// True for the unnamed form.
  bool single_vector() const { return vectors.empty() && dimension != 0; }

  /// InvalidArgument for a bad field, both forms at once, or no field at
  /// all.
  [[nodiscard]] Status Validate() const;
};

}  // namespace qvec

#endif  // QVEC_OPTIONS_H_
