#include "index/kmeans.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/FaissException.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <string>

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

StatusOr<KmeansResult> Kmeans(const float* x, size_t n, size_t dim, const KmeansOptions& options,
                              ThreadPool* pool) {
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

}  // namespace qvec::index
