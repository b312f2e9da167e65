// qvec-bench: benchmarks of qvec. Subcommands:
//   quick    recall/QPS suite (make bench): Fashion-MNIST + synthetic 200k x 128
//   full     the suite with 10k queries + synthetic 1M x 128 (make bench-full)
//   run      the suite on the user's .fvecs/.bvecs/.npy files or synthetic NxD
//   http     end-to-end against a running server on 127.0.0.1
//   flat     int8 flat index variants vs FAISS IndexFlatIP on Fashion-MNIST
//   kernels  single-thread kernel throughput
// See bench/README.md.
//
// FAISS runs OpenMP; its worker threads spin after each parallel region
// unless OMP_WAIT_POLICY=PASSIVE, which would steal our cores. libgomp reads
// the variable when it is loaded, so main() re-executes itself with it set.
#include <faiss/IndexFlat.h>
#include <omp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

#include "bench/machine.h"
#include "bench/bench_util.h"
#include "bench/datasets.h"
#include "bench/embedded_bench.h"
#include "bench/filter_bench.h"
#include "bench/http_bench.h"
#include "bench/ivf_benchmark.h"
#include "bench/latency_bench.h"
#include "bench/sparse_bench.h"
#include "bench/suite.h"
#include "index/flat_index.h"
#include "index/kernels.h"
#include "index/quality.h"
#include "index/recall.h"
#include "index/thread_pool.h"
#include "index/training.h"
#include "qvec/blas.h"
#include "qvec/database.h"

namespace {

using qvec::index::FlatIndex;
using qvec::index::Granularity;
using qvec::index::Hit;
using qvec::index::Metric;
using qvec::index::QuantizationConfig;
using qvec::index::QuantizationType;
using qvec::index::Quantizer;
using qvec::index::SearchParams;

using qvec::bench::Clock;
using qvec::bench::Die;
using qvec::bench::NormalizeRows;

using qvec::bench::SecondsSince;

struct FlatOptions {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  size_t queries = 1000;
  size_t single_queries = 1000;
  size_t faiss_single_queries = 200;
  size_t threads = 0;
  size_t train_sample = 20000;
  int repeats = 3;
  bool quick = false;  // default + uint8 variants only, short FAISS timing
};

struct Variant {
  std::string name;
  QuantizationConfig config;
};

int RunFlat(const FlatOptions& opt) {
  const size_t k = 10;
  qvec::bench::Dataset data = qvec::bench::LoadFashionMnist(opt.data_dir, opt.queries);
  const size_t dim = data.dim;
  std::vector<float> base = std::move(data.base);
  std::vector<float> queries = std::move(data.queries);
  const size_t n = base.size() / dim, nq = queries.size() / dim;
  const std::vector<float> raw_base = base, raw_queries = queries;
  NormalizeRows(base, dim);
  NormalizeRows(queries, dim);

  const size_t threads =
      opt.threads ? opt.threads : std::max(1u, std::thread::hardware_concurrency());
  omp_set_num_threads(static_cast<int>(threads));
  qvec::index::ThreadPool pool(threads);
  std::printf(
      "fashion-mnist: %zu base x %zu dim, %zu queries, k=%zu, threads=%zu, simd=%s, "
      "OMP_WAIT_POLICY=%s\n",
      n, dim, nq, k, threads,
      std::string(qvec::index::SimdLevelName(qvec::index::ActiveSimdLevel())).c_str(),
      std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)");
  const qvec::bench::MachineLimits limits = qvec::bench::MeasureMachine(threads);
  std::printf("%s\n", qvec::bench::DescribeLimits(limits).c_str());

  // ---- FAISS baseline (also the exact ground truth) ----
  std::vector<std::vector<int64_t>> truth(nq);
  double faiss_single_qps = 0, faiss_batch_s = 0;
  try {
    faiss::IndexFlatIP faiss_index(static_cast<faiss::Index::idx_t>(dim));
    faiss_index.add(static_cast<faiss::Index::idx_t>(n), base.data());
    std::vector<float> distances(nq * k);
    std::vector<faiss::Index::idx_t> labels(nq * k);
    faiss_batch_s = 1e30;
    for (int r = 0; r < (opt.quick ? 1 : opt.repeats); ++r) {
      const auto start = Clock::now();
      faiss_index.search(static_cast<faiss::Index::idx_t>(nq), queries.data(), k, distances.data(),
                         labels.data());
      faiss_batch_s = std::min(faiss_batch_s, SecondsSince(start));
    }
    for (size_t i = 0; i < nq; ++i)
      truth[i].assign(labels.begin() + i * k, labels.begin() + (i + 1) * k);
    const size_t singles = std::min(opt.quick ? 20 : opt.faiss_single_queries, nq);
    const auto start = Clock::now();
    for (size_t i = 0; i < singles; ++i) {
      faiss_index.search(1, queries.data() + i * dim, k, distances.data(), labels.data());
    }
    faiss_single_qps = singles / SecondsSince(start);
  } catch (const std::exception& e) {
    Die(std::string("faiss: ") + e.what());
  }
  std::printf("\nFAISS IndexFlatIP (float32, %.1f MB)\n", n * dim * 4 / 1e6);
  std::printf("  single-query QPS        %10.1f\n", faiss_single_qps);
  std::printf("  batch of %zu            %10.1f ms (%.0f QPS)\n", nq, faiss_batch_s * 1e3,
              nq / faiss_batch_s);

  // ---- qvec variants ----
  std::vector<Variant> variants;
  variants.push_back({"int8 symmetric per-vector (default)", {}});
  {
    QuantizationConfig c;
    c.type = QuantizationType::kAsymmetricUint8;
    variants.push_back({"uint8 asymmetric per-vector", c});
    c.granularity = Granularity::kPerCollection;
    variants.push_back({"uint8 asymmetric per-collection", c});
    c.granularity = Granularity::kPerDimension;
    variants.push_back({"uint8 asymmetric per-dimension", c});
    c.recall_tuned = true;
    variants.push_back({"uint8 asymmetric per-dimension recall-tuned", c});
    QuantizationConfig s;
    s.granularity = Granularity::kPerCollection;
    variants.push_back({"int8 symmetric per-collection", s});
    s.quantile = 0.999f;
    variants.push_back({"int8 symmetric per-collection q=0.999", s});
    s.quantile = 1.0f;
    s.recall_tuned = true;
    variants.push_back({"int8 symmetric per-collection recall-tuned", s});
    s.granularity = Granularity::kPerDimension;
    s.recall_tuned = false;
    variants.push_back({"int8 symmetric per-dimension", s});
    s.recall_tuned = true;
    variants.push_back({"int8 symmetric per-dimension recall-tuned", s});
  }
  qvec::index::InMemoryOriginals originals(dim);
  for (size_t i = 0; i < n; ++i) originals.Put(i, base.data() + i * dim);
  const size_t sample = std::min(opt.train_sample, n);

  std::printf("\nqvec flat, recall@10 vs exact float (no rescoring)\n");
  double best_recall = 0;
  std::string best_name;
  if (opt.quick) variants.resize(2);
  for (size_t v = 0; v < variants.size(); ++v) {
    const Variant& variant = variants[v];
    const auto train_start = Clock::now();
    auto quantizer = qvec::index::TrainQuantizer(dim, Metric::kCosine, variant.config,
                                                 raw_base.data(), sample, &pool);
    if (!quantizer.ok()) Die(variant.name + ": " + quantizer.status().ToString());
    const double train_s = SecondsSince(train_start);
    FlatIndex index(*quantizer, &pool);
    std::vector<uint8_t> blob(quantizer->EncodedSize());
    const auto encode_start = Clock::now();
    for (size_t i = 0; i < n; ++i) {
      if (!quantizer->Encode(raw_base.data() + i * dim, blob.data()).ok() ||
          !index.Add(i, blob.data(), blob.size()).ok()) {
        Die("encode/add failed");
      }
    }
    const double encode_us = SecondsSince(encode_start) * 1e6 / static_cast<double>(n);
    SearchParams params;
    params.k = k;
    auto got = index.SearchBatch(raw_queries.data(), nq, params);
    if (!got.ok()) Die(got.status().ToString());
    const double recall = qvec::index::RecallAtK(truth, *got);
    const float quantile = quantizer->calibration() ? quantizer->calibration()->quantile : 1.0f;
    auto quality = qvec::index::Measure(*quantizer, raw_base.data(), 2000, 5000);
    std::printf(
        "  %-46s recall %.4f  (quantile %.5f, train %.2f s, SQNR %.1f dB, score err "
        "mean %.4f max %.4f, encode+add %.2f us/vector)\n",
        variant.name.c_str(), recall, quantile, train_s, quality.ok() ? quality->sqnr_db : 0,
        quality.ok() ? quality->score_mean_abs_error : 0,
        quality.ok() ? quality->score_max_abs_error : 0, encode_us);
    if (recall > best_recall) {
      best_recall = recall;
      best_name = variant.name;
    }
    // Timing and rescoring for the default and the uint8 per-vector option.
    if (v > 1) continue;
    double batch_s = 1e30;
    for (int r = 0; r < opt.repeats; ++r) {
      const auto start = Clock::now();
      auto res = index.SearchBatch(raw_queries.data(), nq, params);
      batch_s = std::min(batch_s, SecondsSince(start));
      if (!res.ok()) Die(res.status().ToString());
    }
    const size_t singles = std::min(opt.single_queries, nq);
    double single_s = 1e30;
    for (int r = 0; r < opt.repeats; ++r) {
      const auto start = Clock::now();
      for (size_t i = 0; i < singles; ++i) {
        auto res = index.Search(raw_queries.data() + i * dim, params);
        if (!res.ok()) Die(res.status().ToString());
      }
      single_s = std::min(single_s, SecondsSince(start));
    }
    const double qps = singles / single_s;
    const double code_gbs = qps * n * dim / 1e9;
    const double row_gbs = qps * n * index.row_stride() / 1e9;
    std::printf(
        "    single-query QPS %.1f (%.1fx FAISS), codes scanned %.1f GB/s (%.1f GB/s incl. "
        "row padding to %zu B; %.0f%% of the %.1f GB/s DRAM read measured on %zu threads)\n",
        qps, qps / faiss_single_qps, code_gbs, row_gbs, index.row_stride(),
        100 * code_gbs / limits.read_gbs_all, limits.read_gbs_all, limits.threads);
    std::printf("    batch of %zu: %.1f ms (%.1fx faster than FAISS)\n", nq, batch_s * 1e3,
                faiss_batch_s / batch_s);
    std::printf("    index memory %.1f MB\n", index.MemoryBytes() / 1e6);
    for (float over : {1.0f, 2.0f, 3.0f, 5.0f, 10.0f}) {
      params.rescore = true;
      params.oversampling = over;
      const auto start = Clock::now();
      auto res = index.SearchBatch(raw_queries.data(), nq, params, &originals);
      const double s = SecondsSince(start);
      if (!res.ok()) Die(res.status().ToString());
      std::printf("    rescored, oversampling %4.1f: recall %.4f (batch %.1f ms)\n", over,
                  qvec::index::RecallAtK(truth, *res), s * 1e3);
    }
  }
  std::printf("\nbest recall without rescoring: %.4f (%s)\n", best_recall, best_name.c_str());
  return 0;
}

struct KernelOptions {
  size_t rows = 60000;
  size_t dim = 784;
  size_t batch_queries = 256;
  size_t batch_codes = 256;
  int repeats = 5;
  bool batch_only = false;  // skip the scan kernels (for perf stat)
};

// Single-thread throughput of the scan and batch kernels of every SIMD level.
int RunKernels(const KernelOptions& opt) {
  const size_t stride = (opt.dim + 63) / 64 * 64;
  std::vector<uint8_t> codes(opt.rows * stride + 64);
  for (size_t i = 0; i < codes.size(); ++i)
    codes[i] = static_cast<uint8_t>((i * 2654435761u) >> 13) % 255;
  std::vector<int8_t> queries(opt.batch_queries * opt.dim);
  for (size_t i = 0; i < queries.size(); ++i)
    queries[i] = static_cast<int8_t>(static_cast<int>((i * 40503u) % 255) - 127);
  std::vector<int32_t> out(opt.rows * opt.batch_queries / 16 + opt.rows);
  std::printf("kernels: %zu rows x %zu dim (stride %zu), single thread\n", opt.rows, opt.dim,
              stride);
  for (auto level : {qvec::index::SimdLevel::kScalar, qvec::index::SimdLevel::kAvx2,
                     qvec::index::SimdLevel::kAvx512, qvec::index::SimdLevel::kAmx}) {
    const qvec::index::Kernels* k = qvec::index::KernelsFor(level);
    if (k == nullptr) continue;
    const std::string name(qvec::index::SimdLevelName(level));
    double best_s8 = 1e30, best_u8 = 1e30;
    for (int r = 0; r < (opt.batch_only ? 0 : opt.repeats); ++r) {
      auto start = Clock::now();
      k->dot_s8_many(queries.data(), reinterpret_cast<const int8_t*>(codes.data()), stride,
                     opt.rows, opt.dim, out.data());
      best_s8 = std::min(best_s8, SecondsSince(start));
      start = Clock::now();
      k->dot_u8s8_many(queries.data(), codes.data(), stride, opt.rows, opt.dim, out.data());
      best_u8 = std::min(best_u8, SecondsSince(start));
    }
    if (!opt.batch_only) {
      std::printf("  %-7s many s8: %.2f ms (%.1f GB/s of rows)  u8: %.2f ms (%.1f GB/s)\n",
                  name.c_str(), best_s8 * 1e3, opt.rows * stride / best_s8 / 1e9, best_u8 * 1e3,
                  opt.rows * stride / best_u8 / 1e9);
    }
    if (level == qvec::index::ActiveSimdLevel() && !opt.batch_only) {
      // Scan ceiling with all cores: rows split into 8 chunks per thread.
      for (size_t threads : {size_t{1}, size_t{0}}) {
        qvec::index::ThreadPool pool(threads);
        const size_t tasks = pool.num_threads() * 4;
        const size_t per = (opt.rows + tasks - 1) / tasks;
        double best = 1e30;
        for (int r = 0; r < opt.repeats * 4; ++r) {
          const auto start = Clock::now();
          pool.ParallelFor(tasks, [&](size_t t) {
            const size_t b = t * per, e = std::min(opt.rows, b + per);
            if (b < e) {
              k->dot_s8_many(queries.data(),
                             reinterpret_cast<const int8_t*>(codes.data() + b * stride), stride,
                             e - b, opt.dim, out.data() + b);
            }
          });
          best = std::min(best, SecondsSince(start));
        }
        std::printf("  %-7s many s8 on %zu threads: %.2f ms (%.1f GB/s of rows)\n", name.c_str(),
                    pool.num_threads(), best * 1e3, opt.rows * stride / best / 1e9);
      }
    }
    if (level == qvec::index::SimdLevel::kScalar) continue;
    if (opt.batch_only && level != qvec::index::ActiveSimdLevel()) continue;
    // Batch, as the flat index calls it: every row once, in calls of
    // batch_codes rows against all batch_queries queries.
    const size_t block = std::max<size_t>(1, std::min(opt.batch_codes, opt.rows));
    std::vector<int32_t> bout(opt.batch_queries * block);
    double best_b = 1e30, best_bu = 1e30;
    for (int r = 0; r < opt.repeats; ++r) {
      auto start = Clock::now();
      for (size_t r0 = 0; r0 < opt.rows; r0 += block) {
        k->dot_s8_batch(queries.data(), opt.dim, opt.batch_queries,
                        reinterpret_cast<const int8_t*>(codes.data() + r0 * stride), stride,
                        std::min(block, opt.rows - r0), opt.dim, bout.data());
      }
      best_b = std::min(best_b, SecondsSince(start));
      start = Clock::now();
      for (size_t r0 = 0; r0 < opt.rows; r0 += block) {
        k->dot_u8s8_batch(queries.data(), opt.dim, opt.batch_queries, codes.data() + r0 * stride,
                          stride, std::min(block, opt.rows - r0), opt.dim, bout.data());
      }
      best_bu = std::min(best_bu, SecondsSince(start));
    }
    const double macs = double(opt.batch_queries) * opt.rows * opt.dim;
    std::printf(
        "  %-7s batch %zu queries x %zu rows (calls of %zu rows) s8: %.1f GMAC/s  u8: %.1f "
        "GMAC/s\n",
        name.c_str(), opt.batch_queries, opt.rows, block, macs / best_b / 1e9,
        macs / best_bu / 1e9);
  }
  return 0;
}

struct IvfCommandOptions {
  std::string dataset = "synthetic";
  std::string metric = "cosine";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  size_t n = 200000;
  bool build_only = false;
};

int RunIvf(const IvfCommandOptions& o) {
  qvec::index::Metric metric;
  if (!qvec::bench::ParseMetric(o.metric, &metric)) Die("unknown metric " + o.metric);
  qvec::bench::Dataset data = o.dataset == "fashion-mnist"
                                  ? qvec::bench::LoadFashionMnist(o.data_dir, 1000)
                                  : qvec::bench::MakeSynthetic(o.n, 1000, 128, 2024);
  if (data.n() == 0) Die("no data for " + o.dataset);
  std::printf("%s %zu x %zu, %s\n", o.dataset.c_str(), data.n(), data.dim,
              qvec::bench::MetricName(metric).c_str());
  if (o.build_only) {
    auto times = qvec::bench::RunIvfBuildBenchmark(data.base.data(), data.n(), data.dim, metric);
    if (!times.ok()) Die(times.status().ToString());
    std::printf("%s", times->ToString().c_str());
    return 0;
  }
  auto report = qvec::bench::RunIvfBenchmark(data.base.data(), data.n(), data.queries.data(),
                                             data.nq(), data.dim, metric);
  if (!report.ok()) Die(report.status().ToString());
  std::printf("%s\n", report->ToString().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenMP and OpenBLAS read these when they load, so the process
  // re-executes itself once with them set: PASSIVE keeps idle OpenMP threads
  // from stealing the cores from OpenBLAS; the BLAS core type matters because
  // Debian's OpenBLAS falls back to generic kernels on some recent CPUs (every
  // method in the run, FAISS included, gets the same BLAS).
  bool reexec = false;
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    reexec = true;
  }
  // QVEC_SIMD=avx2 stands for an AVX2-only machine: the BLAS the baselines
  // use gets AVX2 (Haswell) kernels too, or FAISS would run AVX-512 sgemm
  // against qvec's AVX2 kernels on a machine that has both.
  const char* simd = std::getenv("QVEC_SIMD");
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && simd != nullptr &&
      std::strcmp(simd, "avx2") == 0) {
    setenv("OPENBLAS_CORETYPE", "Haswell", 1);
    reexec = true;
  }
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr && qvec::RecommendedBlasCoreType() != nullptr) {
    setenv("OPENBLAS_CORETYPE", qvec::RecommendedBlasCoreType(), 1);
    reexec = true;
  }
  if (reexec) execv("/proc/self/exe", argv);  // only returns on failure: carry on
  CLI::App app{"qvec benchmarks"};
  app.require_subcommand(1);
  FlatOptions flat;
  CLI::App* flat_cmd = app.add_subcommand("flat", "int8 flat index vs FAISS on Fashion-MNIST");
  flat_cmd->add_option("--data-dir", flat.data_dir, "directory with the Fashion-MNIST .gz files");
  flat_cmd->add_option("--queries", flat.queries, "test images used as queries");
  flat_cmd->add_option("--single-queries", flat.single_queries, "queries timed one by one (qvec)");
  flat_cmd->add_option("--faiss-single-queries", flat.faiss_single_queries,
                       "queries timed one by one (FAISS)");
  flat_cmd->add_option("--threads", flat.threads, "threads for both libraries (0 = all cores)");
  flat_cmd->add_option("--train-sample", flat.train_sample, "vectors used for calibration");
  flat_cmd->add_option("--repeats", flat.repeats, "timing repeats (best is reported)");
  flat_cmd->add_flag("--quick", flat.quick,
                     "only the default and uint8 variants, short FAISS timing");
  KernelOptions kernels;
  CLI::App* kernels_cmd = app.add_subcommand("kernels", "single-thread kernel throughput");
  kernels_cmd->add_option("--rows", kernels.rows, "codes scanned");
  kernels_cmd->add_option("--dim", kernels.dim, "dimension");
  kernels_cmd->add_option("--batch-queries", kernels.batch_queries, "queries per batch call");
  kernels_cmd->add_option("--batch-codes", kernels.batch_codes, "rows per batch call");
  kernels_cmd->add_option("--repeats", kernels.repeats, "timing repeats (best is reported)");
  kernels_cmd->add_flag("--batch-only", kernels.batch_only,
                        "only the active level's batch kernels");
  IvfCommandOptions ivf;
  CLI::App* ivf_cmd =
      app.add_subcommand("ivf", "the IVF index alone vs FAISS IVF-SQ8 / IVF-Flat at equal recall");
  ivf_cmd->add_option("--dataset", ivf.dataset, "synthetic (200k x 128) or fashion-mnist");
  ivf_cmd->add_option("--metric", ivf.metric, "cosine or l2");
  ivf_cmd->add_option("--data-dir", ivf.data_dir, "directory with the Fashion-MNIST .gz files");
  ivf_cmd->add_option("--n", ivf.n, "synthetic base vectors");
  ivf_cmd->add_flag("--build-only", ivf.build_only, "train + add times only");
  size_t machine_threads = 0;
  CLI::App* machine_cmd = app.add_subcommand(
      "machine", "DRAM read bandwidth (1 and all threads) and the int8 kernel's peak");
  machine_cmd->add_option("--threads", machine_threads, "threads for the all-thread figure (0 = all)");
  qvec::bench::AddSuiteCommands(&app);
  qvec::bench::AddHttpCommand(&app);
  qvec::bench::AddEmbeddedCommand(&app);
  qvec::bench::AddLatencyCommand(&app);
  qvec::bench::AddFilterCommand(&app);
  qvec::bench::AddSparseCommand(&app);
  CLI11_PARSE(app, argc, argv);
  if (const int status = qvec::bench::RunParsedSuiteCommand(); status >= 0) return status;
  if (const int status = qvec::bench::RunParsedHttpCommand(); status >= 0) return status;
  if (const int status = qvec::bench::RunParsedEmbeddedCommand(); status >= 0) return status;
  if (const int status = qvec::bench::RunParsedLatencyCommand(); status >= 0) return status;
  if (const int status = qvec::bench::RunParsedFilterCommand(); status >= 0) return status;
  if (const int status = qvec::bench::RunParsedSparseCommand(); status >= 0) return status;
  if (machine_cmd->parsed()) {
    std::printf("%s\n",
                qvec::bench::DescribeLimits(qvec::bench::MeasureMachine(machine_threads)).c_str());
    return 0;
  }
  if (flat_cmd->parsed()) return RunFlat(flat);
  if (kernels_cmd->parsed()) return RunKernels(kernels);
  if (ivf_cmd->parsed()) return RunIvf(ivf);
  return 0;
}
