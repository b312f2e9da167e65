// Deterministic synthetic data for the index tests.
#ifndef QVEC_TESTS_INDEX_TEST_DATA_H_
#define QVEC_TESTS_INDEX_TEST_DATA_H_

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace qvec::index::testing {

// n vectors (row-major, size n * dim) from `clusters` overlapping Gaussian
// clusters whose per-dimension spread decays as 1/sqrt(1 + d) (a decaying
// spectrum, as real embeddings have). Fixed seed.
inline std::vector<float> ClusteredVectors(size_t n, size_t dim, size_t clusters, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> spread(dim), centers(clusters * dim);
  for (size_t d = 0; d < dim; ++d) spread[d] = 1.0f / std::sqrt(1.0f + static_cast<float>(d));
  for (size_t c = 0; c < clusters; ++c) {
    for (size_t d = 0; d < dim; ++d) centers[c * dim + d] = 1.5f * spread[d] * g(rng);
  }
  std::uniform_int_distribution<size_t> pick(0, clusters - 1);
  std::vector<float> out(n * dim);
  for (size_t i = 0; i < n; ++i) {
    const size_t c = pick(rng);
    for (size_t d = 0; d < dim; ++d) out[i * dim + d] = centers[c * dim + d] + spread[d] * g(rng);
  }
  return out;
}

inline std::vector<float> GaussianVectors(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> out(n * dim);
  for (float& v : out) v = g(rng);
  return out;
}

}  // namespace qvec::index::testing

#endif  // QVEC_TESTS_INDEX_TEST_DATA_H_
