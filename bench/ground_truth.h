// Exact float top-k neighbors (FAISS IndexFlatIP / IndexFlatL2), cached as
// .ivecs beside the results, keyed by a hash of the data and the metric.
#ifndef QVEC_BENCH_GROUND_TRUTH_H_
#define QVEC_BENCH_GROUND_TRUTH_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/datasets.h"

namespace qvec::bench {

// Copies of base and queries as the float baselines (FAISS, hnswlib, qvec's
// float path) see them: L2-normalized under cosine, unchanged otherwise.
struct PreparedData {
  std::vector<float> base, queries;
};
PreparedData Prepare(const Dataset& data);

// Exact top-min(k, n) ids per query. Reads `cache_dir`/<name>-<key>.gt.ivecs
// when it exists, else computes with FAISS and writes it there.
std::vector<std::vector<int32_t>> ExactNeighbors(const Dataset& data, const PreparedData& prepared,
                                                 size_t k, const std::string& cache_dir);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_GROUND_TRUTH_H_
