#include "bench/ivf_benchmark.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissException.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_set>

#include "index/ivf_index.h"
#include "index/quantizer.h"
#include "index/recall.h"
#include "index/thread_pool.h"
#include "index/training.h"
#include "index/vector_index.h"

// OpenBLAS thread control (weak: absent with other BLAS implementations).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace qvec::bench {

using namespace qvec::index;  // NOLINT: the benchmark drives the index module
namespace {

double Seconds(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double Best(int repeats, const std::function<void()>& fn) {
  double best = 1e300;
  for (int i = 0; i < std::max(1, repeats); ++i) best = std::min(best, Seconds(fn));
  return best;
}

std::vector<uint32_t> Sweep(uint32_t nlist) {
  std::vector<uint32_t> out;
  for (uint32_t base = 1; base <= nlist; base *= 2) {
    for (uint32_t v : {base, base + base / 4, base + base / 2}) {
      if (v <= nlist && (out.empty() || v > out.back())) out.push_back(v);
    }
  }
  if (out.back() != nlist) out.push_back(nlist);
  return out;
}

// Sets FAISS (OpenMP) and OpenBLAS to `threads` threads for the scope.
class ThreadScope {
 public:
  explicit ThreadScope(int threads) : omp_(omp_get_max_threads()) {
    omp_set_num_threads(threads);
    if (openblas_set_num_threads != nullptr && openblas_get_num_threads != nullptr) {
      blas_ = openblas_get_num_threads();
      openblas_set_num_threads(threads);
    }
  }
  ~ThreadScope() {
    omp_set_num_threads(omp_);
    if (blas_ > 0) openblas_set_num_threads(blas_);
  }

 private:
  int omp_;
  int blas_ = 0;
};

struct Runner {
  // Searches queries [0, nq) with nprobe; labels per query.
  std::function<std::vector<std::vector<int64_t>>(uint32_t nprobe, size_t nq)> batch;
  // Searches the queries one call each.
  std::function<void(uint32_t nprobe, size_t nq)> single;
};

Status Measure(const Runner& runner, uint32_t nlist, size_t nq, size_t threads,
               const std::vector<std::vector<uint64_t>>& truth, const IvfBenchOptions& o,
               const std::function<void(int)>& set_threads, IvfBenchRow* row) {
  set_threads(static_cast<int>(threads));
  row->nlist = nlist;
  row->nprobe = nlist;
  for (uint32_t nprobe : Sweep(nlist)) {
    const double recall = RecallAtK(truth, runner.batch(nprobe, nq));
    row->nprobe = nprobe;
    row->recall = recall;
    if (recall >= o.target_recall) break;
  }
  const size_t ns = std::min(nq, o.single_queries);
  row->qps_batch_all = nq / Best(o.repeats, [&] { runner.batch(row->nprobe, nq); });
  row->qps_single_all = ns / Best(o.repeats, [&] { runner.single(row->nprobe, ns); });
  set_threads(1);
  row->qps_batch_1t = nq / Best(o.repeats, [&] { runner.batch(row->nprobe, nq); });
  row->qps_single_1t = ns / Best(o.repeats, [&] { runner.single(row->nprobe, ns); });
  set_threads(static_cast<int>(threads));
  return Status::Ok();
}

// A FAISS IVFSQ8 (QT_8bit) or IVFFlat index with its flat coarse quantizer
// (L2 or inner product), which it references and must not outlive.
struct FaissIvf {
  std::unique_ptr<faiss::IndexFlat> coarse;
  std::unique_ptr<faiss::IndexIVF> index;  // declared last: destroyed first
};

FaissIvf MakeFaissIvf(bool sq8, size_t dim, uint32_t nlist, faiss::MetricType mt) {
  FaissIvf f;
  if (mt == faiss::METRIC_L2) {
    f.coarse = std::make_unique<faiss::IndexFlatL2>(dim);
  } else {
    f.coarse = std::make_unique<faiss::IndexFlatIP>(dim);
  }
  if (sq8) {
    f.index = std::make_unique<faiss::IndexIVFScalarQuantizer>(f.coarse.get(), dim, nlist,
                                                               faiss::ScalarQuantizer::QT_8bit, mt);
  } else {
    f.index = std::make_unique<faiss::IndexIVFFlat>(f.coarse.get(), dim, nlist, mt);
  }
  return f;
}

StatusOr<IvfBenchRow> RunFaiss(bool sq8, const float* base, size_t n, const float* queries,
                               size_t nq, size_t dim, Metric metric, uint32_t nlist, size_t threads,
                               const std::vector<std::vector<uint64_t>>& truth,
                               const IvfBenchOptions& o) {
  try {
    ThreadScope scope(static_cast<int>(threads));
    const faiss::MetricType mt =
        metric == Metric::kEuclid ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    FaissIvf faiss_ivf = MakeFaissIvf(sq8, dim, nlist, mt);
    faiss::IndexIVF* index = faiss_ivf.index.get();
    IvfBenchRow row;
    row.name = sq8 ? "faiss IVFSQ8" : "faiss IVFFlat";
    row.train_seconds = Seconds([&] { index->train(static_cast<faiss::Index::idx_t>(n), base); });
    row.add_seconds = Seconds([&] { index->add(static_cast<faiss::Index::idx_t>(n), base); });
    const size_t k = o.k;
    Runner runner;
    runner.batch = [&](uint32_t nprobe, size_t count) {
      index->nprobe = nprobe;
      std::vector<float> d(count * k);
      std::vector<faiss::Index::idx_t> l(count * k);
      index->search(static_cast<faiss::Index::idx_t>(count), queries, k, d.data(), l.data());
      std::vector<std::vector<int64_t>> out(count);
      for (size_t i = 0; i < count; ++i) out[i].assign(l.begin() + i * k, l.begin() + (i + 1) * k);
      return out;
    };
    runner.single = [&](uint32_t nprobe, size_t count) {
      index->nprobe = nprobe;
      std::vector<float> d(k);
      std::vector<faiss::Index::idx_t> l(k);
      for (size_t i = 0; i < count; ++i) index->search(1, queries + i * dim, k, d.data(), l.data());
    };
    auto set_threads = [](int t) {
      omp_set_num_threads(t);
      if (openblas_set_num_threads != nullptr) openblas_set_num_threads(t);
    };
    QVEC_RETURN_IF_ERROR(Measure(runner, nlist, nq, threads, truth, o, set_threads, &row));
    return row;
  } catch (const std::exception& e) {
    return InternalError(std::string("FAISS: ") + e.what());
  } catch (...) {
    return InternalError("FAISS: unknown exception");
  }
}

// Preprocesses and encodes rows [0, n) of base on `pool`, assigns their
// lists and adds them to `index` with labels 0..n-1; the encoded blobs and
// lists are left in *blobs and *lists for further indexes.
Status EncodeAssignAdd(const Quantizer& quantizer, const float* base, size_t n, ThreadPool& pool,
                       IvfIndex& index, std::vector<uint8_t>* blobs, std::vector<uint32_t>* lists) {
  const size_t dim = quantizer.dim(), blob_size = quantizer.EncodedSize();
  blobs->assign(n * blob_size, 0);
  lists->assign(n, 0);
  std::vector<float> pre(base, base + n * dim);
  std::vector<Status> errors((n + 1023) / 1024);
  pool.ParallelFor(errors.size(), [&](size_t t) {
    for (size_t i = t * 1024; i < std::min(n, (t + 1) * 1024); ++i) {
      Status s = quantizer.Preprocess(pre.data() + i * dim);
      if (s.ok()) s = quantizer.Encode(pre.data() + i * dim, blobs->data() + i * blob_size);
      if (!s.ok()) errors[t] = s;
    }
  });
  for (const Status& s : errors) QVEC_RETURN_IF_ERROR(s);
  index.AssignBatch(pre.data(), n, lists->data());
  for (size_t i = 0; i < n; ++i) {
    QVEC_RETURN_IF_ERROR(index.Add(i, (*lists)[i], blobs->data() + i * blob_size, blob_size));
  }
  return Status::Ok();
}

// qvec build: TrainIvf on all of base, then preprocess + encode (parallel),
// AssignBatch and Add.
Status BuildQvec(const Quantizer& quantizer, const float* base, size_t n, uint32_t nlist,
                 double* train_s, double* add_s, std::unique_ptr<IvfIndex>* out) {
  ThreadPool& pool = ThreadPool::Default();
  IvfTrainOptions to;
  to.nlist = nlist;
  StatusOr<IvfModel> model = Status(StatusCode::kUnknown, "not run");
  *train_s = Seconds([&] { model = TrainIvf(quantizer, base, n, to); });
  QVEC_RETURN_IF_ERROR(model.status());
  QVEC_ASSIGN_OR_RETURN(IvfIndex index, IvfIndex::Create(quantizer, std::move(*model), &pool));
  Status add_status;
  *add_s = Seconds([&] {
    std::vector<uint8_t> blobs;
    std::vector<uint32_t> lists;
    add_status = EncodeAssignAdd(quantizer, base, n, pool, index, &blobs, &lists);
  });
  QVEC_RETURN_IF_ERROR(add_status);
  if (out != nullptr) *out = std::make_unique<IvfIndex>(std::move(index));
  return Status::Ok();
}

}  // namespace

std::string IvfBuildTimes::ToString() const {
  char line[512];
  std::snprintf(line, sizeof(line),
                "build nlist=%u (best of rounds, seconds): qvec train %.2f + add %.2f = %.2f | "
                "faiss IVFSQ8 train %.2f + add %.2f = %.2f | faiss IVFFlat train %.2f + add "
                "%.2f = %.2f\n",
                nlist, qvec_train, qvec_add, qvec_train + qvec_add, sq8_train, sq8_add,
                sq8_train + sq8_add, flat_train, flat_add, flat_train + flat_add);
  return line;
}

StatusOr<IvfBuildTimes> RunIvfBuildBenchmark(const float* base, size_t n, size_t dim, Metric metric,
                                             uint32_t nlist, int rounds) {
  IvfBuildTimes t;
  t.nlist = nlist != 0 ? nlist : DefaultNlist(n);
  t.qvec_train = t.qvec_add = t.sq8_train = t.sq8_add = t.flat_train = t.flat_add = 1e300;
  QVEC_ASSIGN_OR_RETURN(Quantizer quantizer, Quantizer::Create(dim, metric, QuantizationConfig{}));
  std::vector<float> fbase(base, base + n * dim);
  if (metric == Metric::kCosine) {
    for (size_t i = 0; i < n; ++i)
      QVEC_RETURN_IF_ERROR(quantizer.Preprocess(fbase.data() + i * dim));
  }
  const faiss::MetricType mt =
      metric == Metric::kEuclid ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  for (int r = 0; r < std::max(1, rounds); ++r) {
    double train_s = 0, add_s = 0;
    QVEC_RETURN_IF_ERROR(BuildQvec(quantizer, base, n, t.nlist, &train_s, &add_s, nullptr));
    t.qvec_train = std::min(t.qvec_train, train_s);
    t.qvec_add = std::min(t.qvec_add, add_s);
    for (bool sq8 : {true, false}) {
      try {
        FaissIvf faiss_ivf = MakeFaissIvf(sq8, dim, t.nlist, mt);
        faiss::IndexIVF* index = faiss_ivf.index.get();
        const double tr =
            Seconds([&] { index->train(static_cast<faiss::Index::idx_t>(n), fbase.data()); });
        const double ad =
            Seconds([&] { index->add(static_cast<faiss::Index::idx_t>(n), fbase.data()); });
        (sq8 ? t.sq8_train : t.flat_train) = std::min(sq8 ? t.sq8_train : t.flat_train, tr);
        (sq8 ? t.sq8_add : t.flat_add) = std::min(sq8 ? t.sq8_add : t.flat_add, ad);
      } catch (const std::exception& e) {
        return InternalError(std::string("FAISS: ") + e.what());
      } catch (...) {
        return InternalError("FAISS: unknown exception");
      }
    }
  }
  return t;
}

std::string IvfBenchReport::ToString() const {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "IVF benchmark: n=%zu dim=%zu nq=%zu threads=%zu\n", n, dim, nq,
                threads);
  out += line;
  std::snprintf(line, sizeof(line), "%-14s %6s %6s %7s %8s %8s %10s %10s %10s %10s\n", "index",
                "nlist", "nprobe", "recall", "train_s", "add_s", "qps_b_1t", "qps_b_all",
                "qps_1q_1t", "qps_1q_all");
  out += line;
  for (const IvfBenchRow& r : rows) {
    std::snprintf(line, sizeof(line),
                  "%-14s %6u %6u %7.4f %8.2f %8.2f %10.0f %10.0f %10.0f %10.0f\n", r.name.c_str(),
                  r.nlist, r.nprobe, r.recall, r.train_seconds, r.add_seconds, r.qps_batch_1t,
                  r.qps_batch_all, r.qps_single_1t, r.qps_single_all);
    out += line;
  }
  std::snprintf(line, sizeof(line),
                "qvec auto nprobe (target): %u -> recall %.4f\ncurve:", auto_nprobe, auto_recall);
  out += line;
  for (const auto& [p, r] : recall_curve) {
    std::snprintf(line, sizeof(line), " %u:%.3f", p, r);
    out += line;
  }
  out += "\n";
  if (rows.size() >= 3) {
    const IvfBenchRow& q = rows[0];
    for (size_t i = 1; i < rows.size(); ++i) {
      const IvfBenchRow& f = rows[i];
      std::snprintf(line, sizeof(line),
                    "qvec vs %-13s QPS x%.1f (batch 1t) x%.1f (batch all) x%.1f (1q 1t) "
                    "x%.1f (1q all); train+add %.2fs vs %.2fs\n",
                    f.name.c_str(), q.qps_batch_1t / f.qps_batch_1t,
                    q.qps_batch_all / f.qps_batch_all, q.qps_single_1t / f.qps_single_1t,
                    q.qps_single_all / f.qps_single_all, q.train_seconds + q.add_seconds,
                    f.train_seconds + f.add_seconds);
      out += line;
    }
  }
  return out;
}

StatusOr<IvfBenchReport> RunIvfBenchmark(const float* base, size_t n, const float* queries,
                                         size_t nq, size_t dim, Metric metric,
                                         const IvfBenchOptions& o) {
  IvfBenchReport report;
  report.n = n;
  report.nq = nq;
  report.dim = dim;
  ThreadPool& pool_all = ThreadPool::Default();
  ThreadPool pool_one(1);
  report.threads = pool_all.num_threads();
  QVEC_ASSIGN_OR_RETURN(Quantizer quantizer, Quantizer::Create(dim, metric, QuantizationConfig{}));
  QVEC_ASSIGN_OR_RETURN(auto truth, ExactTopK(quantizer, base, n, queries, nq, o.k));
  const uint32_t nlist = o.nlist != 0 ? o.nlist : DefaultNlist(n);

  // qvec: train (k-means + recall curve), then preprocess, assign, encode, add.
  IvfBenchRow row;
  row.name = "qvec IVF-int8";
  IvfTrainOptions to;
  to.nlist = nlist;
  StatusOr<IvfModel> model = Status(StatusCode::kUnknown, "not run");
  row.train_seconds = Seconds([&] { model = TrainIvf(quantizer, base, n, to); });
  QVEC_RETURN_IF_ERROR(model.status());
  report.recall_curve = model->recall_curve;
  QVEC_ASSIGN_OR_RETURN(IvfIndex index, IvfIndex::Create(quantizer, *model, &pool_all));
  const size_t blob_size = quantizer.EncodedSize();
  std::vector<uint8_t> blobs;
  std::vector<uint32_t> lists;
  Status add_status;
  row.add_seconds = Seconds(
      [&] { add_status = EncodeAssignAdd(quantizer, base, n, pool_all, index, &blobs, &lists); });
  QVEC_RETURN_IF_ERROR(add_status);
  // Same rows in an index whose searches use one thread.
  QVEC_ASSIGN_OR_RETURN(IvfIndex index_one, IvfIndex::Create(quantizer, *model, &pool_one));
  for (size_t i = 0; i < n; ++i) {
    QVEC_RETURN_IF_ERROR(index_one.Add(i, lists[i], blobs.data() + i * blob_size, blob_size));
  }
  const IvfIndex* current = &index;
  Runner runner;
  Status search_status;
  auto to_labels = [](const std::vector<std::vector<Hit>>& hits) {
    std::vector<std::vector<int64_t>> out(hits.size());
    for (size_t i = 0; i < hits.size(); ++i) {
      for (const Hit& h : hits[i]) out[i].push_back(static_cast<int64_t>(h.label));
    }
    return out;
  };
  runner.batch = [&](uint32_t nprobe, size_t count) {
    IvfSearchParams p;
    p.k = o.k;
    p.nprobe = nprobe;
    auto got = current->SearchBatch(queries, count, p);
    if (!got.ok()) {
      search_status = got.status();
      return std::vector<std::vector<int64_t>>(count);
    }
    return to_labels(*got);
  };
  runner.single = [&](uint32_t nprobe, size_t count) {
    IvfSearchParams p;
    p.k = o.k;
    p.nprobe = nprobe;
    for (size_t i = 0; i < count; ++i) {
      auto got = current->Search(queries + i * dim, p);
      if (!got.ok()) search_status = got.status();
    }
  };
  auto set_threads = [&](int t) { current = t == 1 ? &index_one : &index; };
  QVEC_RETURN_IF_ERROR(Measure(runner, nlist, nq, report.threads, truth, o, set_threads, &row));
  QVEC_RETURN_IF_ERROR(search_status);
  {
    IvfSearchParams p;
    p.k = o.k;
    p.target_recall = o.target_recall;
    report.auto_nprobe = NprobeForRecall(*model, o.target_recall);
    QVEC_ASSIGN_OR_RETURN(auto got, index.SearchBatch(queries, nq, p));
    report.auto_recall = RecallAtK(truth, to_labels(got));
  }
  report.rows.push_back(row);
  // The same model and lists with a 4-bit first pass (automatic first-pass
  // oversampling for the target).
  for (const auto& [kind, dsub] : {std::pair{FirstPassKind::kSq4, 1u},
                                   std::pair{FirstPassKind::kPq4, 2u}}) {
    IvfBenchRow row4;
    row4.name = std::string("qvec IVF-") + std::string(FirstPassKindName(kind)) + "/" +
                std::to_string(dsub) + " + int8";
    IvfModel model4 = *model;
    const size_t sample = std::min<size_t>(n, kMaxTrainingSample);
    Status fp;
    row4.train_seconds = row.train_seconds + Seconds([&] {
      fp = AddFirstPass(quantizer, &model4, base, sample, kind, dsub, &pool_all);
    });
    QVEC_RETURN_IF_ERROR(fp);
    QVEC_ASSIGN_OR_RETURN(IvfIndex four, IvfIndex::Create(quantizer, model4, &pool_all));
    QVEC_ASSIGN_OR_RETURN(IvfIndex four_one, IvfIndex::Create(quantizer, model4, &pool_one));
    Status add4;
    row4.add_seconds = Seconds([&] {
      for (size_t i = 0; i < n && add4.ok(); ++i) {
        add4 = four.Add(i, lists[i], blobs.data() + i * blob_size, blob_size);
      }
    });
    QVEC_RETURN_IF_ERROR(add4);
    for (size_t i = 0; i < n; ++i) {
      QVEC_RETURN_IF_ERROR(four_one.Add(i, lists[i], blobs.data() + i * blob_size, blob_size));
    }
    current = &four;
    auto set4 = [&](int t) { current = t == 1 ? &four_one : &four; };
    QVEC_RETURN_IF_ERROR(Measure(runner, nlist, nq, report.threads, truth, o, set4, &row4));
    QVEC_RETURN_IF_ERROR(search_status);
    report.rows.push_back(row4);
  }
  if (!o.run_faiss) return report;

  std::vector<float> fbase(base, base + n * dim), fqueries(queries, queries + nq * dim);
  if (metric == Metric::kCosine) {
    for (size_t i = 0; i < n; ++i)
      QVEC_RETURN_IF_ERROR(quantizer.Preprocess(fbase.data() + i * dim));
    for (size_t i = 0; i < nq; ++i) {
      QVEC_RETURN_IF_ERROR(quantizer.Preprocess(fqueries.data() + i * dim));
    }
  }
  for (bool sq8 : {true, false}) {
    QVEC_ASSIGN_OR_RETURN(IvfBenchRow frow, RunFaiss(sq8, fbase.data(), n, fqueries.data(), nq, dim,
                                                     metric, nlist, report.threads, truth, o));
    report.rows.push_back(frow);
  }
  return report;
}

}  // namespace qvec::bench
