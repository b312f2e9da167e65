// Synthetic data for the IVF tests and benchmarks.
#ifndef QVEC_TESTS_INDEX_IVF_TEST_DATA_H_
#define QVEC_TESTS_INDEX_IVF_TEST_DATA_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace qvec::index::testing {

// Overlapping Gaussian clusters with a decaying spectrum, like
// testing::ClusteredVectors but with cluster centers spread only
// `center_scale` times the within-cluster spread, so clusters overlap about
// as much as neighbourhoods of real embeddings do (nprobe = 1 is not enough).
inline std::vector<float> OverlappingClusters(size_t n, size_t dim, size_t clusters,
                                              float center_scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> spread(dim), centers(clusters * dim);
  for (size_t d = 0; d < dim; ++d) spread[d] = 1.0f / std::sqrt(1.0f + static_cast<float>(d));
  for (float& c : centers) c = g(rng);
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t d = 0; d < dim; ++d) centers[c * dim + d] *= center_scale * spread[d];
  }
  std::uniform_int_distribution<size_t> pick(0, clusters - 1);
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = pick(rng);
    for (size_t d = 0; d < dim; ++d) out[i * dim + d] = centers[c * dim + d] + spread[d] * g(rng);
  }
  return out;
}

}  // namespace qvec::index::testing

#endif  // QVEC_TESTS_INDEX_IVF_TEST_DATA_H_
