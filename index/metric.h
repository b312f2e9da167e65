// How vectors are compared: one enum for the whole code base and one
// descriptor per metric. Everything that depends on the metric (whether
// vectors are normalized, whether a higher score is better, which integer
// kernel scores codes, how an integer rank maps to the reported score and
// back, how k-means clusters, how floats are scored exactly) is read from
// here; docs/ARCHITECTURE.md "Adding a metric" lists what else a new one
// touches.
#ifndef QVEC_INDEX_METRIC_H_
#define QVEC_INDEX_METRIC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qvec::index {

// Cosine normalizes vectors at insert and query time and scores the inner
// product; Dot scores the raw inner product; Euclid the L2 distance; Manhattan
// the L1 distance. Scores follow Qdrant: Cosine and Dot higher is better,
// Euclid and Manhattan are distances (lower is better).
enum class Metric : uint8_t { kCosine = 0, kDot = 1, kEuclid = 2, kManhattan = 3 };
inline constexpr size_t kNumMetrics = 4;

// Which integer kernel scores codes against a query.
enum class IntScoring : uint8_t {
  // dot(query codes, codes) with per-row scale/offset (and ||x||^2 for L2).
  kInnerProduct = 0,
  // sum |query code - code| over uint8 codes that share one scale (vpsadbw).
  kL1 = 1,
};

// How k-means clusters for the IVF coarse quantizer.
enum class KmeansKind : uint8_t {
  kSphericalIp = 0,  // inner-product assignment, unit centroids (Cosine)
  kL2 = 1,           // plain L2 k-means (Dot, Euclid; Manhattan with a measured curve)
};

struct MetricInfo {
  Metric metric;
  std::string_view name;  // Qdrant's spelling: "Cosine", "Dot", "Euclid", "Manhattan"
  // Vectors are L2-normalized at insert and query time.
  bool normalize;
  // The score is a distance: lower is better.
  bool lower_is_better;
  // Vectors are refused when their squared norm exceeds kMaxSquaredNorm
  // (normalized metrics never exceed it).
  bool bounded_norm;
  IntScoring int_scoring;
  // The integer rank of a row needs its ||x||^2 (Euclid: 2 q.x - ||x||^2).
  bool rank_uses_norms;
  // Codes must share one scale (the L1 kernel sums raw code differences);
  // the quantizer then calibrates one range for the whole collection.
  bool shared_scale;
  KmeansKind kmeans;
  // The coarse quantizer ranks centroids by L2 distance (else by q . c).
  bool l2_centroids;
};

const MetricInfo& Describe(Metric m);

// Largest squared L2 norm of a vector under metrics with bounded_norm: a
// quarter of FLT_MAX, so that stored norms, |q . x|, ||q - x||^2 and L1
// sums of two such vectors stay finite in float32.
inline constexpr double kMaxSquaredNorm = 3.4028234663852886e38 / 4;

// Internal ranks are higher-is-better floats. For a query with squared norm
// `q_norm_sq`: Cosine/Dot rank = score = q . x; Euclid rank = 2 q.x - ||x||^2
// and score = sqrt(||q||^2 - rank); Manhattan rank = -L1 and score = -rank.
float RankToScore(Metric m, float rank, float q_norm_sq);
float ScoreToRank(Metric m, float score, float q_norm_sq);
// True if score `a` is at least as good as `threshold`.
bool ScorePasses(Metric m, float a, float threshold);
// True if score `a` ranks before `b` (strictly better).
inline bool ScoreBetter(Metric m, float a, float b) {
  return Describe(m).lower_is_better ? a < b : a > b;
}
// Exact float score of x (size dim) for query q, both preprocessed.
float ExactScore(Metric m, const float* q, const float* x, size_t dim);
// out[j] = exact score of x + j * stride for j < n.
void ExactScores(Metric m, const float* q, const float* x, size_t stride, size_t n, size_t dim,
                 float* out);
// The internal rank of an exact score: higher is better, comparable with
// the ranks integer scans produce.
float ExactRank(Metric m, const float* q, const float* x, size_t dim, float q_norm_sq);

}  // namespace qvec::index

#endif  // QVEC_INDEX_METRIC_H_
