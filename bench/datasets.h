// Benchmark datasets: Fashion-MNIST, seeded synthetic embeddings and user
// files (.fvecs / .bvecs / .ivecs from TEXMEX, .npy float32/uint8 C order).
#ifndef QVEC_BENCH_DATASETS_H_
#define QVEC_BENCH_DATASETS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/types.h"

namespace qvec::bench {

struct Dataset {
  std::string name;         // short, file-name safe: "fashion-mnist", "synthetic-200k-128"
  std::string description;  // where it comes from, for the report
  index::Metric metric = index::Metric::kCosine;
  size_t dim = 0;
  std::vector<float> base;     // n * dim raw vectors
  std::vector<float> queries;  // nq * dim raw vectors
  // Ground truth given by the user (--gt): row i = neighbor ids of query i.
  std::vector<std::vector<int32_t>> given_truth;

  size_t n() const { return dim ? base.size() / dim : 0; }
  size_t nq() const { return dim ? queries.size() / dim : 0; }
};

// "cosine", "dot" or "l2".
std::string MetricName(index::Metric metric);
// Parses "cosine", "dot", "l2" (or "euclid"); false otherwise.
bool ParseMetric(const std::string& text, index::Metric* metric);

// Fashion-MNIST from the IDX3 .gz files in `dir` (train = base, t10k =
// queries), at most max_queries queries. Cosine.
Dataset LoadFashionMnist(const std::string& dir, size_t max_queries);

// Seeded synthetic embeddings: n base + nq query vectors of `dim`, drawn from
// overlapping Gaussian clusters whose covariance has a power-law (decaying)
// spectrum, randomly rotated, plus a shared mean direction, as sentence/image
// embeddings look (anisotropic, low intrinsic dimension, no clean clusters).
// Cosine.
Dataset MakeSynthetic(size_t n, size_t nq, size_t dim, uint64_t seed);

// Reads a vector file by extension: .fvecs, .bvecs, .npy (float32 or uint8,
// 2-D, C order). At most `limit` rows. Dies on a malformed file.
std::vector<float> ReadVectors(const std::string& path, size_t limit, size_t* dim);
// Reads an .ivecs file (or an int32/int64 .npy) of neighbor ids, `limit`
// rows at most.
std::vector<std::vector<int32_t>> ReadNeighborIds(const std::string& path, size_t limit);

// A file-name safe version of `text` (letters, digits, '-', '.').
std::string SafeName(const std::string& text);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_DATASETS_H_
