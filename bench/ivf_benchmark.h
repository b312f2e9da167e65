// Benchmark of the int8 IVF index alone against FAISS
// IndexIVFScalarQuantizer (QT_8bit) and IndexIVFFlat at equal nlist and equal
// recall@k (`qvec-bench ivf`), and of their build times.
#ifndef QVEC_BENCH_IVF_BENCHMARK_H_
#define QVEC_BENCH_IVF_BENCHMARK_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/types.h"
#include "qvec/status.h"

namespace qvec::bench {

using index::Metric;

struct IvfBenchOptions {
  size_t k = 10;
  // Each index gets the smallest nprobe of a fixed sweep (1, 2, 3, 4, 5, 6,
  // 8, 10, 12, 16, 20, 24, 32, ...) whose measured recall@k >= target.
  float target_recall = 0.95f;
  uint32_t nlist = 0;  // 0 = DefaultNlist(n)
  int repeats = 3;     // timings are the best of `repeats` runs
  // Queries of the one-query-at-a-time runs (the first ones of `queries`).
  size_t single_queries = 300;
  bool run_faiss = true;
};

struct IvfBenchRow {
  std::string name;
  uint32_t nlist = 0;
  uint32_t nprobe = 0;
  double recall = 0;
  double train_seconds = 0;
  double add_seconds = 0;
  double qps_batch_1t = 0;    // whole query set in one call, 1 thread
  double qps_batch_all = 0;   // whole query set in one call, all threads
  double qps_single_1t = 0;   // one query per call, 1 thread
  double qps_single_all = 0;  // one query per call, all threads
};

struct IvfBenchReport {
  size_t n = 0, nq = 0, dim = 0, threads = 0;
  std::vector<IvfBenchRow> rows;
  // qvec with nprobe = 0 (NprobeForRecall(model, target)).
  uint32_t auto_nprobe = 0;
  double auto_recall = 0;
  std::vector<std::pair<uint32_t, float>> recall_curve;
  std::string ToString() const;
};

// base: n raw vectors, queries: nq raw vectors (row-major, `dim` floats).
// Cosine normalizes copies for FAISS (inner-product IVF); Euclid uses L2.
// For FAISS runs set OMP_WAIT_POLICY=PASSIVE in the environment (libgomp
// reads it at start-up).
[[nodiscard]] StatusOr<IvfBenchReport> RunIvfBenchmark(const float* base, size_t n,
                                                       const float* queries, size_t nq, size_t dim,
                                                       Metric metric,
                                                       const IvfBenchOptions& options = {});

// Build time only: qvec (TrainIvf + preprocess/encode/assign/add) and FAISS
// IndexIVFScalarQuantizer(QT_8bit) and IndexIVFFlat (train + add) at the same
// nlist, interleaved `rounds` times; best time of each. All threads.
struct IvfBuildTimes {
  uint32_t nlist = 0;
  double qvec_train = 0, qvec_add = 0;
  double sq8_train = 0, sq8_add = 0;
  double flat_train = 0, flat_add = 0;
  std::string ToString() const;
};
[[nodiscard]] StatusOr<IvfBuildTimes> RunIvfBuildBenchmark(const float* base, size_t n, size_t dim,
                                                           Metric metric, uint32_t nlist = 0,
                                                           int rounds = 2);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_IVF_BENCHMARK_H_
