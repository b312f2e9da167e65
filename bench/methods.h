// The measured methods (qvec flat/IVF int8, qvec float, FAISS, hnswlib) and
// how one parameter point of one method is measured.
#ifndef QVEC_BENCH_METHODS_H_
#define QVEC_BENCH_METHODS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "bench/datasets.h"
#include "bench/ground_truth.h"
#include "index/pq4.h"

namespace qvec::bench {

// Method families (also the --methods names and the plot's lines).
inline constexpr const char* kFamilies[] = {"faiss-flat", "qvec-flat-f32", "qvec-flat",
                                            "qvec-ivf",   "faiss-ivfflat", "faiss-ivfsq8",
                                            "hnswlib"};

struct BenchConfig {
  size_t threads = 0;              // "all threads"; also 1 is measured
  double single_budget_s = 0.3;    // time spent on one-at-a-time queries per point/threads
  size_t min_single_queries = 10;  // ... but at least this many
  double batch_budget_s = 0.3;     // batch runs repeat until this much time is spent (max 3)
  std::set<std::string> families;  // enabled families (kFamilies)
  // Sweeps: each stops after the first point with recall@10 >= stop_recall,
  // or once recall@10 >= 0.9 gains less than 0.002 over the previous point
  // (a quantization plateau: more probes only cost time).
  std::vector<uint32_t> nprobes = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::vector<size_t> efs = {10, 20, 40, 80, 160, 320, 640};
  double stop_recall = 0.995;
  float rescore_oversampling = 2.0f;
  // qvec IVF variants with a 4-bit first pass: (kind, dimensions per
  // sub-code), each on the int8 variant's k-means model.
  std::vector<std::pair<index::FirstPassKind, uint32_t>> first_passes = {
      {index::FirstPassKind::kSq4, 1},
      {index::FirstPassKind::kPq4, 1},
      {index::FirstPassKind::kPq4, 2}};
  uint32_t nlist = 0;  // 0 = index::DefaultNlist(n)
  size_t hnsw_m = 16, hnsw_ef_construction = 200;
  // recall@100 comes from an extra k = 100 search over the first this many
  // queries (0 = all).
  size_t recall100_queries = 0;
  bool quick = false;
};

// One measured row: a method at one parameter point and thread count.
struct Row {
  std::string dataset, family, method, params;
  size_t threads = 0;
  double recall_at_1 = 0, recall_at_10 = 0, recall_at_100 = 0;
  double qps = 0;                             // one query per call
  double qps_batch = 0;                       // all queries in one call
  double p50_us = 0, p95_us = 0, p99_us = 0;  // one query per call
  double build_s = 0;
  size_t memory_bytes = 0;
  // qps / qps_batch relative to faiss-flat at the same thread count (0 when
  // faiss-flat did not run).
  double qps_vs_faiss_flat = 0, qps_batch_vs_faiss_flat = 0;
  std::string note;
};

// Runs every enabled family on `data` and returns the rows (two per point:
// `threads` and 1 thread, unless threads == 1).
std::vector<Row> RunMethods(const Dataset& data, const PreparedData& prepared,
                            const std::vector<std::vector<int32_t>>& truth,
                            const BenchConfig& config);

// Progress units RunMethods will report for n vectors of `dim` (for the
// ETA).
double PlannedUnits(size_t n, size_t dim, const BenchConfig& config);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_METHODS_H_
