#include "index/kmeans.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "index/centroid_assign.h"
#include "index/types.h"

namespace qvec::index {
namespace {

// Thrown out of FAISS's k-means loop by the assignment index when the
// caller cancels; FAISS runs the assignment outside its OpenMP regions, so
// the exception reaches Kmeans().
struct KmeansCancelled {};

// Wraps an assignment index and checks the cancel flag before each
// assignment pass (one per k-means iteration).
class CancellableIndex : public faiss::Index {
 public:
  CancellableIndex(faiss::Index* inner, const std::atomic<bool>* cancel)
      : faiss::Index(inner->d, inner->metric_type), inner_(inner), cancel_(cancel) {
    is_trained = true;
  }
  void add(idx_t n, const float* x) override {
    inner_->add(n, x);
    ntotal = inner_->ntotal;
  }
  void reset() override {
    inner_->reset();
    ntotal = 0;
  }
  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* params) const override {
    if (cancel_->load(std::memory_order_relaxed)) throw KmeansCancelled{};
    inner_->search(n, x, k, distances, labels, params);
  }

 private:
  faiss::Index* inner_;
  const std::atomic<bool>* cancel_;
};

// The assignment index FAISS Clustering searches in every iteration (k = 1):
// centroids are quantized when FAISS adds them, points when it searches.
class Int8AssignIndex : public faiss::Index {
 public:
  Int8AssignIndex(size_t dim, bool inner_product, ThreadPool* pool)
      : faiss::Index(static_cast<faiss::Index::idx_t>(dim),
                     inner_product ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2),
        pool_(pool) {
    is_trained = true;
  }

  void add(idx_t n, const float* x) override {
    all_.insert(all_.end(), x, x + static_cast<size_t>(n) * static_cast<size_t>(d));
    ntotal += n;
    centroids_ = Int8Centroids(all_.data(), static_cast<size_t>(ntotal), static_cast<size_t>(d),
                               metric_type == faiss::METRIC_L2);
  }

  void reset() override {
    all_.clear();
    ntotal = 0;
    centroids_ = Int8Centroids();
  }

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
              const faiss::SearchParameters* /*params*/) const override {
    FAISS_THROW_IF_NOT_MSG(k == 1, "Int8AssignIndex answers k = 1 only");
    FAISS_THROW_IF_NOT_MSG(ntotal > 0, "Int8AssignIndex: no centroids");
    std::vector<uint32_t> nearest(static_cast<size_t>(n));
    AssignNearest(centroids_.view(), x, static_cast<size_t>(n), nearest.data(), distances, pool_);
    for (idx_t i = 0; i < n; ++i) labels[i] = nearest[static_cast<size_t>(i)];
  }

 private:
  ThreadPool* pool_;
  std::vector<float> all_;  // the float centroids added since the last reset
  Int8Centroids centroids_;
};

}  // namespace

namespace {
StatusOr<KmeansResult> FlatKmeans(const float* x, size_t n, size_t dim,
                                  const KmeansOptions& options, ThreadPool* pool);
StatusOr<KmeansResult> TwoLevelKmeans(const float* x, size_t n, size_t dim,
                                      const KmeansOptions& options, ThreadPool* pool);
}  // namespace

StatusOr<KmeansResult> Kmeans(const float* x, size_t n, size_t dim, const KmeansOptions& options,
                              ThreadPool* pool) {
  // Checked once here: the internal k-means calls get valid subsets.
  if (dim == 0 || dim > kMaxDim) return InvalidArgumentError("k-means: dim out of range");
  if (options.k == 0) return InvalidArgumentError("k-means: k must be >= 1");
  if (options.niter < 1) return InvalidArgumentError("k-means: niter must be >= 1");
  if (options.max_points_per_centroid < 1) {
    return InvalidArgumentError("k-means: max_points_per_centroid must be >= 1");
  }
  if (n < options.k) return FailedPreconditionError("k-means: fewer points than centroids");
  for (size_t i = 0; i < n * dim; ++i) {
    if (!std::isfinite(x[i])) return InvalidArgumentError("k-means: non-finite input");
  }
  if (options.hierarchical_from != 0 && options.k >= options.hierarchical_from &&
      options.k >= 4) {
    return TwoLevelKmeans(x, n, dim, options, pool);
  }
  return FlatKmeans(x, n, dim, options, pool);
}

namespace {

StatusOr<KmeansResult> TwoLevelKmeans(const float* x, size_t n, size_t dim,
                                      const KmeansOptions& options, ThreadPool* pool) {
  const auto start = std::chrono::steady_clock::now();
  const size_t k = options.k;
  // Points used: as the flat k-means would subsample (every k-means below
  // subsamples its own cell again).
  const size_t used = std::min(n, k * static_cast<size_t>(options.max_points_per_centroid));
  std::vector<float> sample;
  const float* pts = x;
  if (used < n) {
    // A seeded subsample without replacement (partial Fisher-Yates).
    std::vector<uint32_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<uint32_t>(i);
    uint64_t state = 0x9e3779b97f4a7c15ULL ^ options.seed;
    for (size_t i = 0; i < used; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      const size_t j = i + static_cast<size_t>((state >> 33) % (n - i));
      std::swap(order[i], order[j]);
    }
    std::sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(used));
    sample.resize(used * dim);
    for (size_t i = 0; i < used; ++i) {
      std::copy(x + size_t{order[i]} * dim, x + (size_t{order[i]} + 1) * dim,
                sample.begin() + static_cast<std::ptrdiff_t>(i * dim));
    }
    pts = sample.data();
  }
  // 1. Coarse level.
  KmeansOptions coarse = options;
  coarse.hierarchical_from = 0;
  coarse.k = static_cast<uint32_t>(std::max<double>(2, std::round(std::sqrt(double(k)))));
  coarse.max_points_per_centroid = std::max(options.max_points_per_centroid, 256);
  QVEC_ASSIGN_OR_RETURN(KmeansResult top, FlatKmeans(pts, used, dim, coarse, pool));
  const size_t nc = coarse.k;
  std::vector<uint32_t> cell(used);
  {
    const Int8Centroids c8(top.centroids.data(), nc, dim, !options.inner_product);
    AssignNearest(c8.view(), pts, used, cell.data(), nullptr,
                  pool != nullptr ? pool : &ThreadPool::Default());
  }
  std::vector<std::vector<uint32_t>> members(nc);
  for (size_t i = 0; i < used; ++i) members[cell[i]].push_back(static_cast<uint32_t>(i));
  // 2. Each cell's share of the k centroids: proportional to its points,
  //    largest remainders first, never more than its points.
  std::vector<size_t> share(nc, 0);
  std::vector<std::pair<double, size_t>> remainders;
  size_t given = 0;
  for (size_t c = 0; c < nc; ++c) {
    const double exact = static_cast<double>(k) * members[c].size() / static_cast<double>(used);
    share[c] = std::min(members[c].size(), static_cast<size_t>(exact));
    given += share[c];
    remainders.emplace_back(exact - static_cast<double>(share[c]), c);
  }
  std::sort(remainders.begin(), remainders.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  // Hand out what is left, largest remainder first, to cells with room
  // (used >= k, so there is always room somewhere).
  while (given < k) {
    bool any = false;
    for (const auto& [rem, c] : remainders) {
      if (given == k) break;
      if (share[c] < members[c].size()) {
        ++share[c];
        ++given;
        any = true;
      }
    }
    if (!any) return InternalError("k-means: cannot distribute the centroids over the cells");
  }
  // 3. The cells, one after the other (each k-means is parallel inside).
  KmeansResult result;
  result.centroids.reserve(k * dim);
  result.coarse_centroids = top.centroids;
  result.coarse_begin.push_back(0);
  std::vector<float> points;
  double objective = 0;
  for (size_t c = 0; c < nc; ++c) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return AbortedError("k-means: cancelled");
    }
    const size_t m = members[c].size(), kc = share[c];
    if (kc > 0) {
      points.resize(m * dim);
      for (size_t i = 0; i < m; ++i) {
        std::copy(pts + size_t{members[c][i]} * dim, pts + (size_t{members[c][i]} + 1) * dim,
                  points.begin() + static_cast<std::ptrdiff_t>(i * dim));
      }
      if (kc == m) {
        // As many centroids as points: the points themselves (unit length
        // for spherical k-means, as FAISS leaves its centroids).
        if (options.spherical) {
          for (size_t i = 0; i < m; ++i) {
            double sq = 0;
            for (size_t d = 0; d < dim; ++d) sq += double{points[i * dim + d]} * points[i * dim + d];
            const float inv = sq > 0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 1.0f;
            for (size_t d = 0; d < dim; ++d) points[i * dim + d] *= inv;
          }
        }
        result.centroids.insert(result.centroids.end(), points.begin(), points.end());
        if (options.inner_product) {  // L2: every point on its centroid, 0
          for (size_t i = 0; i < m; ++i) {
            double sq = 0;
            for (size_t d = 0; d < dim; ++d) sq += double{points[i * dim + d]} * points[i * dim + d];
            objective += options.spherical ? std::sqrt(sq) : sq;
          }
        }
      } else {
        KmeansOptions sub = options;
        sub.hierarchical_from = 0;
        sub.k = static_cast<uint32_t>(kc);
        sub.seed = options.seed + static_cast<uint32_t>(c) * 7919u;
        QVEC_ASSIGN_OR_RETURN(KmeansResult part, FlatKmeans(points.data(), m, dim, sub, pool));
        result.centroids.insert(result.centroids.end(), part.centroids.begin(),
                                part.centroids.end());
        objective += part.objective;
      }
    }
    result.coarse_begin.push_back(static_cast<uint32_t>(result.centroids.size() / dim));
  }
  if (result.centroids.size() != k * dim) {
    return InternalError("k-means: two-level k-means made the wrong number of centroids");
  }
  // 4. Borders: the coarse level fixed every point's cell, so points near a
  //    border were clustered with the wrong neighbours (13% worse objective
  //    and 0.1-0.16 less recall at nprobe 1-4 than flat k-means on a test
  //    set). Lloyd steps where each point may join a child of any of its
  //    kRefineCells nearest coarse cells undo most of it, at about
  //    kRefineCells * k / coarse distance evaluations per point.
  constexpr size_t kRefineCells = 4, kRefineSteps = 6;
  const size_t reach = std::min(kRefineCells, nc);
  std::vector<faiss::Index::idx_t> near(used * reach);
  {
    std::vector<float> unused(used * reach);
    std::unique_ptr<faiss::Index> coarse_index;
    if (options.inner_product) {
      coarse_index = std::make_unique<faiss::IndexFlatIP>(static_cast<faiss::Index::idx_t>(dim));
    } else {
      coarse_index = std::make_unique<faiss::IndexFlatL2>(static_cast<faiss::Index::idx_t>(dim));
    }
    coarse_index->add(static_cast<faiss::Index::idx_t>(nc), top.centroids.data());
    coarse_index->search(static_cast<faiss::Index::idx_t>(used), pts,
                         static_cast<faiss::Index::idx_t>(reach), unused.data(), near.data());
  }
  std::vector<std::vector<uint32_t>> visitors(nc);  // points reaching each cell
  for (size_t i = 0; i < used; ++i) {
    for (size_t r = 0; r < reach; ++r) {
      const auto c = near[i * reach + r];
      if (c >= 0) visitors[static_cast<size_t>(c)].push_back(static_cast<uint32_t>(i));
    }
  }
  std::vector<uint32_t> best_label(used);
  std::vector<float> best_score(used);
  std::vector<uint32_t> labels;
  std::vector<float> scores;
  ThreadPool* assign_pool = pool != nullptr ? pool : &ThreadPool::Default();
  for (size_t step = 0; step < kRefineSteps; ++step) {
    if (options.cancel != nullptr && options.cancel->load()) {
      return AbortedError("k-means: cancelled");
    }
    const float worst = options.inner_product ? -std::numeric_limits<float>::infinity()
                                              : std::numeric_limits<float>::infinity();
    std::fill(best_score.begin(), best_score.end(), worst);
    for (size_t c = 0; c < nc; ++c) {
      const size_t b = result.coarse_begin[c], e = result.coarse_begin[c + 1];
      const size_t m = visitors[c].size();
      if (b == e || m == 0) continue;
      const Int8Centroids children(result.centroids.data() + b * dim, e - b, dim,
                                   !options.inner_product);
      points.resize(m * dim);
      for (size_t i = 0; i < m; ++i) {
        std::copy(pts + size_t{visitors[c][i]} * dim, pts + (size_t{visitors[c][i]} + 1) * dim,
                  points.begin() + static_cast<std::ptrdiff_t>(i * dim));
      }
      labels.resize(m);
      scores.resize(m);
      AssignNearest(children.view(), points.data(), m, labels.data(), scores.data(), assign_pool);
      for (size_t i = 0; i < m; ++i) {
        const uint32_t p = visitors[c][i];
        const bool better = options.inner_product ? scores[i] > best_score[p]
                                                  : scores[i] < best_score[p];
        if (better) {
          best_score[p] = scores[i];
          best_label[p] = static_cast<uint32_t>(b + labels[i]);
        }
      }
    }
    // New centroids: the means of their points (unit length if spherical);
    // one left without points keeps its place.
    std::vector<double> sums(k * dim, 0.0);
    std::vector<size_t> counts(k, 0);
    objective = 0;
    for (size_t i = 0; i < used; ++i) {
      const size_t l = best_label[i];
      ++counts[l];
      for (size_t d = 0; d < dim; ++d) sums[l * dim + d] += pts[i * dim + d];
      objective += best_score[i];
    }
    for (size_t l = 0; l < k; ++l) {
      if (counts[l] == 0) continue;
      double sq = 0;
      for (size_t d = 0; d < dim; ++d) {
        sums[l * dim + d] /= static_cast<double>(counts[l]);
        sq += sums[l * dim + d] * sums[l * dim + d];
      }
      const double scale = options.spherical && sq > 0 ? 1.0 / std::sqrt(sq) : 1.0;
      for (size_t d = 0; d < dim; ++d) {
        result.centroids[l * dim + d] = static_cast<float>(sums[l * dim + d] * scale);
      }
    }
  }
  result.objective = static_cast<float>(objective);
  result.objective_per_iteration.push_back(result.objective);
  result.points_used = used;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

StatusOr<KmeansResult> FlatKmeans(const float* x, size_t n, size_t dim,
                                  const KmeansOptions& options, ThreadPool* pool) {
  const auto start = std::chrono::steady_clock::now();
  try {
    faiss::ClusteringParameters cp;
    cp.niter = options.niter;
    cp.seed = static_cast<int>(options.seed & 0x7fffffff);
    cp.spherical = options.spherical;
    cp.verbose = false;
    cp.min_points_per_centroid = 1;  // the caller picks k; no stderr warnings
    cp.max_points_per_centroid = options.max_points_per_centroid;
    faiss::Clustering clustering(static_cast<int>(dim), static_cast<int>(options.k), cp);
    std::unique_ptr<faiss::Index> assign;
    if (options.int8_assignment) {
      assign = std::make_unique<Int8AssignIndex>(dim, options.inner_product,
                                                 pool != nullptr ? pool : &ThreadPool::Default());
    } else if (options.inner_product) {
      assign = std::make_unique<faiss::IndexFlatIP>(static_cast<faiss::Index::idx_t>(dim));
    } else {
      assign = std::make_unique<faiss::IndexFlatL2>(static_cast<faiss::Index::idx_t>(dim));
    }
    if (options.cancel != nullptr) {
      CancellableIndex cancellable(assign.get(), options.cancel);
      clustering.train(static_cast<faiss::Index::idx_t>(n), x, cancellable);
    } else {
      clustering.train(static_cast<faiss::Index::idx_t>(n), x, *assign);
    }
    KmeansResult result;
    result.centroids = std::move(clustering.centroids);
    for (const auto& it : clustering.iteration_stats) {
      result.objective_per_iteration.push_back(it.obj);
    }
    if (!result.objective_per_iteration.empty()) {
      result.objective = result.objective_per_iteration.back();
    }
    result.points_used =
        std::min(n, static_cast<size_t>(options.k) * options.max_points_per_centroid);
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (result.centroids.size() != static_cast<size_t>(options.k) * dim) {
      return InternalError("k-means: FAISS returned the wrong number of centroids");
    }
    return result;
  } catch (const KmeansCancelled&) {
    return AbortedError("k-means: cancelled");
  } catch (const faiss::FaissException& e) {
    return InternalError(std::string("k-means: FAISS error: ") + e.what());
  } catch (const std::bad_alloc&) {
    return UnavailableError("k-means: out of memory");
  } catch (const std::exception& e) {
    return InternalError(std::string("k-means: ") + e.what());
  } catch (...) {
    return InternalError("k-means: unknown exception");
  }
}

}  // namespace

}  // namespace qvec::index
