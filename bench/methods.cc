#include "bench/methods.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <fmt/format.h>
#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>

#include "bench/bench_util.h"
#include "index/flat_index.h"
#include "index/ivf_index.h"
#include "index/kernels.h"
#include "index/quantizer.h"
#include "index/recall.h"
#include "index/thread_pool.h"
#include "index/training.h"

namespace qvec::bench {

namespace {

using index::Metric;
using index::ThreadPool;
using FaissId = faiss::Index::idx_t;

constexpr size_t kTopK = 10;      // k of the timed searches
constexpr size_t kRecallK = 100;  // k of the extra (untimed) search for recall@100
// Progress units: one unit is about one second of a loaded 2-core machine;
// a measured point takes about kPointUnits, builds are estimated from their
// arithmetic.
constexpr double kPointUnits = 1.5;

double KmeansUnits(size_t n, size_t dim, uint32_t nlist, size_t points_per_centroid) {
  const double points = static_cast<double>(std::min(n, points_per_centroid * nlist));
  return points * nlist * static_cast<double>(dim) * 2 * 10 / 1.2e10;
}

double HnswUnits(size_t n, size_t dim, size_t ef_construction) {
  // Measured: about n * ef_construction / 2e5 seconds on the loaded 2-core
  // machine, nearly independent of dim (128 vs 784).
  (void)dim;
  return static_cast<double>(n) * static_cast<double>(ef_construction) / 2.2e5;
}

// One parameter point of one method, as closures over its built index.
struct Searcher {
  std::string family, method, params, note;
  double build_s = 0;
  size_t memory_bytes = 0;
  const float* queries = nullptr;  // the query vectors it takes (raw or prepared)
  std::function<void(size_t threads)> set_threads;
  // Writes nq * k labels (-1 where fewer than k hits).
  std::function<void(const float* queries, size_t nq, size_t k, int64_t* labels)> batch;
  std::function<void(const float* query, size_t k, int64_t* labels)> one;
};

// Bounded min-heap of the best k (score, label) pairs, higher score = better.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k); }
  float threshold() const {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().first;
  }
  void Push(float score, int64_t label) {
    if (heap_.size() < k_) {
      heap_.emplace_back(score, label);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    } else if (score > heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end(), std::greater<>());
      heap_.back() = {score, label};
      std::push_heap(heap_.begin(), heap_.end(), std::greater<>());
    }
  }
  void Merge(const TopK& other) {
    for (const auto& [s, l] : other.heap_) Push(s, l);
  }
  // Best first into out[0..k), padded with -1.
  void Write(int64_t* out) {
    std::sort_heap(heap_.begin(), heap_.end(), std::greater<>());
    for (size_t i = 0; i < k_; ++i) out[i] = i < heap_.size() ? heap_[i].second : -1;
  }

 private:
  size_t k_;
  std::vector<std::pair<float, int64_t>> heap_;
};

// qvec's float path: the index kernels (dot_f32_many / l2sq_f32_many) over
// the preprocessed float originals, with a heap top-k. One query splits the
// rows over the pool; a batch goes in blocks of queries over row tiles that
// stay in L2, one block per task.
class FloatFlat {
 public:
  FloatFlat(const float* base, size_t n, size_t dim, Metric metric)
      : base_(base), n_(n), dim_(dim), l2_(metric == Metric::kEuclid) {}

  void SearchOne(ThreadPool& pool, const float* q, size_t k, int64_t* out) const {
    const size_t tasks = pool.num_threads() == 1 ? 1 : pool.num_threads() * 4;
    const size_t per = (n_ + tasks - 1) / tasks;
    std::vector<TopK> partial(tasks, TopK(k));
    pool.ParallelFor(tasks, [&](size_t t) {
      const size_t begin = t * per, end = std::min(n_, begin + per);
      if (begin < end) Scan(q, 1, begin, end, &partial[t]);
    });
    for (size_t t = 1; t < tasks; ++t) partial[0].Merge(partial[t]);
    partial[0].Write(out);
  }

  void SearchBatch(ThreadPool& pool, const float* queries, size_t nq, size_t k,
                   int64_t* out) const {
    constexpr size_t kBlock = 8;
    pool.ParallelFor((nq + kBlock - 1) / kBlock, [&](size_t b) {
      const size_t q0 = b * kBlock, count = std::min(kBlock, nq - q0);
      std::vector<TopK> tops(count, TopK(k));
      const size_t tile = std::max<size_t>(16, (256 * 1024) / (dim_ * sizeof(float)));
      for (size_t r = 0; r < n_; r += tile) {
        Scan(queries + q0 * dim_, count, r, std::min(n_, r + tile), tops.data());
      }
      for (size_t i = 0; i < count; ++i) tops[i].Write(out + (q0 + i) * k);
    });
  }

 private:
  // Scores rows [begin, end) against nq consecutive queries into tops[0..nq).
  void Scan(const float* queries, size_t nq, size_t begin, size_t end, TopK* tops) const {
    const index::Kernels& kernels = index::ActiveKernels();
    thread_local std::vector<float> scores;
    const size_t chunk = 4096;
    scores.resize(chunk);
    for (size_t c = begin; c < end; c += chunk) {
      const size_t count = std::min(chunk, end - c);
      for (size_t i = 0; i < nq; ++i) {
        const float* q = queries + i * dim_;
        if (l2_) {
          kernels.l2sq_f32_many(q, base_ + c * dim_, dim_, count, dim_, scores.data());
          for (size_t j = 0; j < count; ++j) scores[j] = -scores[j];
        } else {
          kernels.dot_f32_many(q, base_ + c * dim_, dim_, count, dim_, scores.data());
        }
        TopK& top = tops[i];
        float threshold = top.threshold();
        for (size_t j = 0; j < count; ++j) {
          if (scores[j] > threshold) {
            top.Push(scores[j], static_cast<int64_t>(c + j));
            threshold = top.threshold();
          }
        }
      }
    }
  }

  const float* base_;
  size_t n_, dim_;
  bool l2_;
};

// FAISS errors become a clean exit.
template <typename Fn>
void Guarded(const std::string& what, Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    Die(what + ": " + e.what());
  } catch (...) {
    Die(what + ": unknown exception");
  }
}

template <typename T>
T OrDie(qvec::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(what + ": " + v.status().ToString());
  return std::move(*v);
}

void LabelsFromHits(const std::vector<index::Hit>& hits, size_t k, int64_t* out) {
  for (size_t i = 0; i < k; ++i)
    out[i] = i < hits.size() ? static_cast<int64_t>(hits[i].label) : -1;
}

class Runner {
 public:
  Runner(const Dataset& data, const PreparedData& prepared,
         const std::vector<std::vector<int32_t>>& truth, const BenchConfig& config)
      : data_(data),
        prepared_(prepared),
        truth_(truth),
        config_(config),
        pool_all_(config.threads),
        pool_one_(1) {}

  std::vector<Row> Run();

 private:
  // Measures one point; appends its rows and returns recall@10.
  double Measure(const Searcher& s);
  // Mean recall@k of the first `nq` queries (0 = all) whose results are
  // `width` labels each.
  double RecallAt(const std::vector<int64_t>& labels, size_t width, size_t k, size_t nq = 0) const;
  void Step(const std::string& what) {
    Progress::Get().Show(fmt::format("{}: {}", data_.name, what));
  }
  void Done(double units, const std::string& what) {
    Progress::Get().Advance(units, fmt::format("{}: {}", data_.name, what));
  }
  bool Enabled(const std::string& family) const { return config_.families.count(family) != 0; }
  const index::InMemoryOriginals& Originals();
  uint32_t Nlist() const { return config_.nlist ? config_.nlist : index::DefaultNlist(data_.n()); }

  void RunFaissFlat();
  void RunFloatFlat();
  void RunQvecFlat();
  void RunQvecIvf();
  void RunFaissIvf();
  void RunHnsw();
  // Runs `make(point)` for each point until recall@10 >= stop_recall; the
  // skipped points count as done for the ETA.
  template <typename T, typename Make>
  void Sweep(const std::vector<T>& points, const std::string& family, Make make);

  const Dataset& data_;
  const PreparedData& prepared_;
  const std::vector<std::vector<int32_t>>& truth_;
  const BenchConfig& config_;
  ThreadPool pool_all_, pool_one_;
  std::unique_ptr<index::InMemoryOriginals> originals_;
  std::vector<Row> rows_;
};

const index::InMemoryOriginals& Runner::Originals() {
  if (!originals_) {
    Step("loading float originals for rescoring");
    originals_ = std::make_unique<index::InMemoryOriginals>(data_.dim);
    for (size_t i = 0; i < data_.n(); ++i)
      originals_->Put(i, prepared_.base.data() + i * data_.dim);
  }
  return *originals_;
}

double Runner::RecallAt(const std::vector<int64_t>& labels, size_t width, size_t k,
                        size_t nq) const {
  if (truth_.empty() || truth_[0].size() < k || width < k) return std::nan("");
  return index::RecallAtK(truth_, labels, width, k, nq == 0 ? truth_.size() : nq);
}

double Runner::Measure(const Searcher& s) {
  const size_t nq = data_.nq(), dim = data_.dim;
  const size_t k100 = std::min(kRecallK, data_.n());
  const size_t nq100 = config_.recall100_queries ? std::min(nq, config_.recall100_queries) : nq;
  Step(fmt::format("{} {}: recall", s.method, s.params));
  s.set_threads(config_.threads);
  std::vector<int64_t> top10(nq * kTopK), top100(nq100 * k100);
  auto start = Clock::now();
  s.batch(s.queries, nq, kTopK, top10.data());
  const double first_batch_s = SecondsSince(start);
  s.batch(s.queries, nq100, k100, top100.data());
  Row base_row;
  base_row.dataset = data_.name;
  base_row.family = s.family;
  base_row.method = s.method;
  base_row.params = s.params;
  base_row.note = s.note;
  base_row.build_s = s.build_s;
  base_row.memory_bytes = s.memory_bytes;
  base_row.recall_at_1 = RecallAt(top10, kTopK, 1);
  base_row.recall_at_10 = RecallAt(top10, kTopK, 10);
  base_row.recall_at_100 = RecallAt(top100, k100, 100, nq100);

  std::vector<size_t> thread_counts = {config_.threads};
  if (config_.threads > 1) thread_counts.push_back(1);
  for (size_t threads : thread_counts) {
    Row row = base_row;
    row.threads = threads;
    s.set_threads(threads);
    Step(fmt::format("{} {}: batch QPS, {} thread(s)", s.method, s.params, threads));
    double best = 1e300, spent = 0;
    int runs = 0;
    if (threads == config_.threads) {
      best = spent = first_batch_s;
      runs = 1;
    }
    // Other thread counts time the batch on the first `timed` queries when
    // the whole set would take far beyond the budget (slow points at high
    // nprobe); at least 200, so batching still amortizes.
    size_t timed = nq;
    if (runs == 0 && first_batch_s > 2 * config_.batch_budget_s) {
      const double fit = static_cast<double>(nq) * config_.batch_budget_s / first_batch_s;
      timed = std::clamp<size_t>(static_cast<size_t>(fit), std::min<size_t>(nq, 200), nq);
    }
    double best_qps = runs ? static_cast<double>(nq) / best : 0;
    while (runs == 0 || (spent < config_.batch_budget_s && runs < 3)) {
      start = Clock::now();
      s.batch(s.queries, timed, kTopK, top10.data());
      const double t = SecondsSince(start);
      best_qps = std::max(best_qps, static_cast<double>(timed) / t);
      spent += t;
      ++runs;
    }
    row.qps_batch = best_qps;
    Step(fmt::format("{} {}: single-query QPS, {} thread(s)", s.method, s.params, threads));
    std::vector<double> latencies_us;
    int64_t labels[kTopK];
    start = Clock::now();
    double elapsed = 0;
    for (size_t i = 0;; ++i) {
      const auto t0 = Clock::now();
      s.one(s.queries + (i % nq) * dim, kTopK, labels);
      latencies_us.push_back(SecondsSince(t0) * 1e6);
      elapsed = SecondsSince(start);
      if (i + 1 >= nq) break;
      if (elapsed >= config_.single_budget_s && i + 1 >= config_.min_single_queries) break;
    }
    row.qps = static_cast<double>(latencies_us.size()) / elapsed;
    row.p50_us = Percentile(latencies_us, 0.50);
    row.p95_us = Percentile(latencies_us, 0.95);
    row.p99_us = Percentile(latencies_us, 0.99);
    rows_.push_back(row);
  }
  Done(kPointUnits,
       fmt::format("{} {}: recall@10 {:.4f}", s.method, s.params, base_row.recall_at_10));
  return base_row.recall_at_10;
}

template <typename T, typename Make>
void Runner::Sweep(const std::vector<T>& points, const std::string& family, Make make) {
  size_t done = 0;
  double previous = -1;
  for (const T& p : points) {
    ++done;
    std::optional<double> recall = make(p);
    if (!recall) {  // point skipped (e.g. nprobe > nlist)
      Done(kPointUnits, family + ": skipped a point beyond the index size");
      continue;
    }
    if (*recall >= config_.stop_recall) break;
    if (*recall >= 0.9 && *recall - previous < 0.005) break;
    previous = *recall;
  }
  if (done < points.size()) {
    Done(kPointUnits * static_cast<double>(points.size() - done),
         family + ": sweep done (recall cap or plateau)");
  }
}

void Runner::RunFaissFlat() {
  const size_t n = data_.n(), dim = data_.dim;
  std::unique_ptr<faiss::IndexFlat> index;
  Searcher s;
  Guarded("FAISS IndexFlat", [&] {
    SetLibraryThreads(static_cast<int>(config_.threads));
    if (data_.metric == Metric::kEuclid) {
      index = std::make_unique<faiss::IndexFlatL2>(dim);
    } else {
      index = std::make_unique<faiss::IndexFlatIP>(dim);
    }
    const auto start = Clock::now();
    index->add(static_cast<FaissId>(n), prepared_.base.data());
    s.build_s = SecondsSince(start);
  });
  s.family = "faiss-flat";
  s.method = data_.metric == Metric::kEuclid ? "FAISS IndexFlatL2" : "FAISS IndexFlatIP";
  s.params = "float32";
  s.memory_bytes = n * dim * sizeof(float);
  s.queries = prepared_.queries.data();
  s.set_threads = [](size_t t) { SetLibraryThreads(static_cast<int>(t)); };
  std::vector<float> distances;
  std::vector<FaissId> ids;
  s.batch = [&](const float* q, size_t nq, size_t k, int64_t* out) {
    distances.resize(nq * k);
    Guarded("FAISS search", [&] {
      index->search(static_cast<FaissId>(nq), q, static_cast<FaissId>(k), distances.data(), out);
    });
  };
  s.one = [&](const float* q, size_t k, int64_t* out) { s.batch(q, 1, k, out); };
  Measure(s);
}

void Runner::RunFloatFlat() {
  FloatFlat flat(prepared_.base.data(), data_.n(), data_.dim, data_.metric);
  Searcher s;
  s.family = "qvec-flat-f32";
  s.method = "qvec flat float32";
  s.params = fmt::format("{} kernels", index::SimdLevelName(index::ActiveSimdLevel()));
  s.memory_bytes = data_.n() * (data_.dim * sizeof(float) + sizeof(uint64_t));
  s.queries = prepared_.queries.data();
  ThreadPool* pool = &pool_all_;
  s.set_threads = [&](size_t t) { pool = t == 1 ? &pool_one_ : &pool_all_; };
  s.batch = [&](const float* q, size_t nq, size_t k, int64_t* out) {
    flat.SearchBatch(*pool, q, nq, k, out);
  };
  s.one = [&](const float* q, size_t k, int64_t* out) { flat.SearchOne(*pool, q, k, out); };
  Measure(s);
}

void Runner::RunQvecFlat() {
  const size_t n = data_.n(), dim = data_.dim;
  struct Variant {
    std::string name;
    index::QuantizationConfig config;
  };
  index::QuantizationConfig uint8_config;
  uint8_config.type = index::QuantizationType::kAsymmetricUint8;
  const std::vector<Variant> variants = {{"int8", {}}, {"uint8", uint8_config}};
  for (const Variant& v : variants) {
    Step(fmt::format("qvec flat {}: encoding", v.name));
    const auto start = Clock::now();
    index::Quantizer quantizer =
        OrDie(index::TrainQuantizer(dim, data_.metric, v.config, data_.base.data(),
                                    std::min<size_t>(n, 20000), &pool_all_),
              "TrainQuantizer");
    const size_t blob_size = quantizer.EncodedSize();
    std::vector<uint8_t> blobs(n * blob_size);
    pool_all_.ParallelFor((n + 1023) / 1024, [&](size_t t) {
      for (size_t i = t * 1024; i < std::min(n, (t + 1) * 1024); ++i) {
        if (!quantizer.Encode(data_.base.data() + i * dim, blobs.data() + i * blob_size).ok()) {
          Die(fmt::format("encode failed for row {}", i));
        }
      }
    });
    index::FlatIndex index_all(quantizer, &pool_all_);
    for (size_t i = 0; i < n; ++i) {
      if (!index_all.Add(i, blobs.data() + i * blob_size, blob_size).ok()) Die("FlatIndex::Add");
    }
    const double build_s = SecondsSince(start);
    index::FlatIndex index_one(quantizer, &pool_one_);  // same rows, 1-thread searches
    for (size_t i = 0; i < n; ++i) {
      if (!index_one.Add(i, blobs.data() + i * blob_size, blob_size).ok()) Die("FlatIndex::Add");
    }
    blobs = {};
    for (bool rescore : {false, true}) {
      const index::InMemoryOriginals* originals = rescore ? &Originals() : nullptr;
      Searcher s;
      s.family = "qvec-flat";
      s.method = fmt::format("qvec flat {}", v.name);
      index::SearchParams params;
      params.rescore = rescore;
      params.oversampling = config_.rescore_oversampling;
      s.params = v.name == "int8" ? "symmetric per-vector" : "asymmetric per-vector";
      if (rescore) {
        s.method += " + rescore";
        s.params += fmt::format(", oversampling {:g}", params.oversampling);
        s.note = "float originals for rescoring live on disk in the engine; not counted";
      }
      s.build_s = build_s;
      s.memory_bytes = index_all.MemoryBytes();
      s.queries = data_.queries.data();
      const index::FlatIndex* current = &index_all;
      s.set_threads = [&](size_t t) { current = t == 1 ? &index_one : &index_all; };
      s.batch = [&, params](const float* q, size_t nq, size_t k, int64_t* out) mutable {
        params.k = k;
        auto got = OrDie(current->SearchBatch(q, nq, params, originals), "FlatIndex::SearchBatch");
        for (size_t i = 0; i < nq; ++i) LabelsFromHits(got[i], k, out + i * k);
      };
      s.one = [&, params](const float* q, size_t k, int64_t* out) mutable {
        params.k = k;
        LabelsFromHits(OrDie(current->Search(q, params, originals), "FlatIndex::Search"), k, out);
      };
      Measure(s);
    }
  }
}

void Runner::RunQvecIvf() {
  const size_t n = data_.n(), dim = data_.dim;
  const uint32_t nlist = Nlist();
  Step(fmt::format("qvec IVF: training nlist={}", nlist));
  auto start = Clock::now();
  index::Quantizer quantizer =
      OrDie(index::Quantizer::Create(dim, data_.metric, {}), "Quantizer::Create");
  index::IvfTrainOptions options;
  options.nlist = nlist;
  index::IvfModel model =
      OrDie(index::TrainIvf(quantizer, data_.base.data(), n, options, &pool_all_), "TrainIvf");
  const double train_s = SecondsSince(start);
  Step(fmt::format("qvec IVF: adding {} vectors", n));
  start = Clock::now();
  index::IvfIndex index_all =
      OrDie(index::IvfIndex::Create(quantizer, model, &pool_all_), "IvfIndex::Create");
  const size_t blob_size = quantizer.EncodedSize();
  std::vector<uint8_t> blobs(n * blob_size);
  std::vector<uint32_t> lists(n);
  {
    std::vector<float> pre(data_.base);
    pool_all_.ParallelFor((n + 1023) / 1024, [&](size_t t) {
      for (size_t i = t * 1024; i < std::min(n, (t + 1) * 1024); ++i) {
        if (!quantizer.Preprocess(pre.data() + i * dim).ok() ||
            !quantizer.Encode(pre.data() + i * dim, blobs.data() + i * blob_size).ok()) {
          Die(fmt::format("encode failed for row {}", i));
        }
      }
    });
    index_all.AssignBatch(pre.data(), n, lists.data());
  }
  for (size_t i = 0; i < n; ++i) {
    if (!index_all.Add(i, lists[i], blobs.data() + i * blob_size, blob_size).ok()) {
      Die("IvfIndex::Add");
    }
  }
  index_all.ShrinkToFit();  // as the engine does after a build
  const double add_s = SecondsSince(start);
  index::IvfIndex index_one =
      OrDie(index::IvfIndex::Create(quantizer, model, &pool_one_), "IvfIndex::Create");
  for (size_t i = 0; i < n; ++i) {
    if (!index_one.Add(i, lists[i], blobs.data() + i * blob_size, blob_size).ok()) {
      Die("IvfIndex::Add");
    }
  }
  index_one.ShrinkToFit();
  Done(KmeansUnits(n, dim, nlist, 64) + 2,
       fmt::format("qvec IVF built: train {:.2f} s + add {:.2f} s", train_s, add_s));
  for (bool rescore : {false, true}) {
    const index::InMemoryOriginals* originals = rescore ? &Originals() : nullptr;
    std::optional<double> recall_at_nprobe1;
    Sweep(config_.nprobes, "qvec-ivf", [&](uint32_t nprobe) -> std::optional<double> {
      if (nprobe > nlist) return std::nullopt;
      Searcher s;
      s.family = "qvec-ivf";
      s.method = rescore ? "qvec IVF int8 + rescore" : "qvec IVF int8";
      index::IvfSearchParams params;
      params.nprobe = nprobe;
      params.rescore = rescore;
      params.oversampling = config_.rescore_oversampling;
      s.params = fmt::format("nlist={} nprobe={}", nlist, nprobe);
      if (rescore) {
        s.params += fmt::format(" oversampling={:g}", params.oversampling);
        s.note = "float originals for rescoring live on disk in the engine; not counted";
      }
      s.build_s = train_s + add_s;
      s.memory_bytes = index_all.MemoryBytes();
      s.queries = data_.queries.data();
      const index::IvfIndex* current = &index_all;
      s.set_threads = [&](size_t t) { current = t == 1 ? &index_one : &index_all; };
      s.batch = [&, params](const float* q, size_t nq, size_t k, int64_t* out) mutable {
        params.k = k;
        auto got = OrDie(current->SearchBatch(q, nq, params, originals), "IvfIndex::SearchBatch");
        for (size_t i = 0; i < nq; ++i) LabelsFromHits(got[i], k, out + i * k);
      };
      s.one = [&, params](const float* q, size_t k, int64_t* out) mutable {
        params.k = k;
        LabelsFromHits(OrDie(current->Search(q, params, originals), "IvfIndex::Search"), k, out);
      };
      const double recall = Measure(s);
      if (nprobe == 1 && !rescore) recall_at_nprobe1 = recall;
      return recall;
    });
    if (recall_at_nprobe1) {
      Progress::Get().Break();
      const bool synthetic = data_.name.rfind("synthetic", 0) == 0;
      std::fprintf(stderr, "%s: difficulty check: qvec IVF nlist=%u nprobe=1 recall@10 = %.3f%s\n",
                   data_.name.c_str(), nlist, *recall_at_nprobe1,
                   synthetic
                       ? (*recall_at_nprobe1 < 0.9 ? " (< 0.9: ok)"
                                                   : " (>= 0.9: TOO EASY, not embedding-like)")
                       : "");
    }
  }
  // The 4-bit first pass (sq4, and pq4 at 1 and 2 dimensions per sub-code:
  // sq4 and pq4/1 take the same bytes), on the same k-means model and lists.
  for (const auto& [kind, dsub] : config_.first_passes) {
    const std::string name = fmt::format("{}/{}", index::FirstPassKindName(kind), dsub);
    Step(fmt::format("qvec IVF: 4-bit first pass {}", name));
    start = Clock::now();
    index::IvfModel model4 = model;
    const size_t sample = std::min<size_t>(n, index::kMaxTrainingSample);
    if (!index::AddFirstPass(quantizer, &model4, data_.base.data(), sample, kind, dsub, &pool_all_)
             .ok()) {
      Die("AddFirstPass");
    }
    const double codebook_s = SecondsSince(start);
    start = Clock::now();
    index::IvfIndex four_all =
        OrDie(index::IvfIndex::Create(quantizer, model4, &pool_all_), "IvfIndex::Create");
    for (size_t i = 0; i < n; ++i) {
      if (!four_all.Add(i, lists[i], blobs.data() + i * blob_size, blob_size).ok()) {
        Die("IvfIndex::Add");
      }
    }
    four_all.ShrinkToFit();
    const double add4_s = SecondsSince(start);
    index::IvfIndex four_one =
        OrDie(index::IvfIndex::Create(quantizer, model4, &pool_one_), "IvfIndex::Create");
    for (size_t i = 0; i < n; ++i) {
      if (!four_one.Add(i, lists[i], blobs.data() + i * blob_size, blob_size).ok()) {
        Die("IvfIndex::Add");
      }
    }
    four_one.ShrinkToFit();
    std::string curve;
    for (const auto& [f, kept] : model4.first_pass_curve) {
      curve += fmt::format("{}{:g}:{:.3f}", curve.empty() ? "" : " ", f, kept);
    }
    Done(2, fmt::format("qvec IVF {} built: codebook {:.2f} s + add {:.2f} s; retention {}", name,
                        codebook_s, add4_s, curve));
    for (bool rescore : {false, true}) {
      const index::InMemoryOriginals* originals = rescore ? &Originals() : nullptr;
      Sweep(config_.nprobes, "qvec-ivf", [&](uint32_t nprobe) -> std::optional<double> {
        if (nprobe > nlist) return std::nullopt;
        Searcher s;
        s.family = "qvec-ivf";
        s.method = fmt::format("qvec IVF {} + int8{}", name, rescore ? " + rescore" : "");
        index::IvfSearchParams params;
        params.nprobe = nprobe;
        params.rescore = rescore;
        params.oversampling = config_.rescore_oversampling;
        float retention = 1;
        const float factor = index::FirstPassOversampling(model4, 0.95f, &retention);
        s.params = fmt::format("nlist={} nprobe={} first-pass oversampling={:g}", nlist, nprobe,
                               factor);
        if (rescore) {
          s.params += fmt::format(" oversampling={:g}", params.oversampling);
          s.note = "float originals for rescoring live on disk in the engine; not counted";
        }
        s.build_s = train_s + add_s + codebook_s + add4_s - add_s;
        s.memory_bytes = four_all.MemoryBytes();
        s.queries = data_.queries.data();
        const index::IvfIndex* current = &four_all;
        s.set_threads = [&](size_t t) { current = t == 1 ? &four_one : &four_all; };
        s.batch = [&, params](const float* q, size_t nq, size_t k, int64_t* out) mutable {
          params.k = k;
          auto got =
              OrDie(current->SearchBatch(q, nq, params, originals), "IvfIndex::SearchBatch");
          for (size_t i = 0; i < nq; ++i) LabelsFromHits(got[i], k, out + i * k);
        };
        s.one = [&, params](const float* q, size_t k, int64_t* out) mutable {
          params.k = k;
          LabelsFromHits(OrDie(current->Search(q, params, originals), "IvfIndex::Search"), k,
                         out);
        };
        return Measure(s);
      });
    }
  }
}

void Runner::RunFaissIvf() {
  const size_t n = data_.n(), dim = data_.dim;
  const uint32_t nlist = Nlist();
  const faiss::MetricType metric =
      data_.metric == Metric::kEuclid ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
  auto make_coarse = [&]() -> std::unique_ptr<faiss::IndexFlat> {
    if (metric == faiss::METRIC_L2) return std::make_unique<faiss::IndexFlatL2>(dim);
    return std::make_unique<faiss::IndexFlatIP>(dim);
  };
  SetLibraryThreads(static_cast<int>(config_.threads));
  // IVFFlat trains the k-means; IVFSQ8 reuses its centroids (FAISS skips
  // k-means for a trained coarse quantizer), and its build time counts the
  // k-means time once more so both report full train + add.
  std::unique_ptr<faiss::IndexFlat> coarse_flat = make_coarse(), coarse_sq = make_coarse();
  std::unique_ptr<faiss::IndexIVFFlat> ivf_flat;
  std::unique_ptr<faiss::IndexIVFScalarQuantizer> ivf_sq;
  double kmeans_s = 0, flat_add_s = 0, sq_train_s = 0, sq_add_s = 0;
  Guarded("FAISS IVF build", [&] {
    Step(fmt::format("FAISS IVF: k-means nlist={}", nlist));
    ivf_flat = std::make_unique<faiss::IndexIVFFlat>(coarse_flat.get(), dim, nlist, metric);
    auto start = Clock::now();
    ivf_flat->train(static_cast<FaissId>(n), prepared_.base.data());
    kmeans_s = SecondsSince(start);
    Step("FAISS IVFFlat: adding");
    start = Clock::now();
    ivf_flat->add(static_cast<FaissId>(n), prepared_.base.data());
    flat_add_s = SecondsSince(start);
    std::vector<float> centroids(size_t{nlist} * dim);
    coarse_flat->reconstruct_n(0, nlist, centroids.data());
    coarse_sq->add(nlist, centroids.data());
    ivf_sq = std::make_unique<faiss::IndexIVFScalarQuantizer>(
        coarse_sq.get(), dim, nlist, faiss::ScalarQuantizer::QT_8bit, metric);
    Step("FAISS IVFSQ8: training + adding");
    start = Clock::now();
    ivf_sq->train(static_cast<FaissId>(n), prepared_.base.data());
    sq_train_s = SecondsSince(start);
    start = Clock::now();
    ivf_sq->add(static_cast<FaissId>(n), prepared_.base.data());
    sq_add_s = SecondsSince(start);
  });
  Done(KmeansUnits(n, dim, nlist, 256) + 2,
       fmt::format("FAISS IVF built: k-means {:.2f} s", kmeans_s));
  auto memory_of = [&](const faiss::IndexIVF& ivf) {
    size_t bytes = size_t{nlist} * dim * sizeof(float);
    for (size_t l = 0; l < nlist; ++l) {
      bytes += ivf.invlists->list_size(l) * (ivf.code_size + sizeof(FaissId));
    }
    return bytes;
  };
  struct Family {
    std::string family, method;
    faiss::IndexIVF* index;
    double build_s;
    size_t memory;
  };
  const std::vector<Family> families = {
      {"faiss-ivfflat", "FAISS IVFFlat", ivf_flat.get(), kmeans_s + flat_add_s,
       memory_of(*ivf_flat)},
      {"faiss-ivfsq8", "FAISS IVFSQ8", ivf_sq.get(), kmeans_s + sq_train_s + sq_add_s,
       memory_of(*ivf_sq) + 2 * dim * sizeof(float)},
  };
  std::vector<float> distances;
  for (const Family& f : families) {
    if (!Enabled(f.family)) continue;
    Sweep(config_.nprobes, f.family, [&](uint32_t nprobe) -> std::optional<double> {
      if (nprobe > nlist) return std::nullopt;
      Searcher s;
      s.family = f.family;
      s.method = f.method;
      s.params = fmt::format("nlist={} nprobe={}", nlist, nprobe);
      s.build_s = f.build_s;
      s.memory_bytes = f.memory;
      s.queries = prepared_.queries.data();
      s.set_threads = [](size_t t) { SetLibraryThreads(static_cast<int>(t)); };
      s.batch = [&](const float* q, size_t nq, size_t k, int64_t* out) {
        distances.resize(nq * k);
        Guarded("FAISS IVF search", [&] {
          f.index->nprobe = nprobe;
          f.index->search(static_cast<FaissId>(nq), q, static_cast<FaissId>(k), distances.data(),
                          out);
        });
      };
      s.one = [&](const float* q, size_t k, int64_t* out) { s.batch(q, 1, k, out); };
      return Measure(s);
    });
  }
}

// Bytes of an hnswlib index: level-0 block (links + vector + label per
// element), upper-level link lists, the label map and one visited list.
size_t HnswMemory(const hnswlib::HierarchicalNSW<float>& h) {
  size_t bytes = h.max_elements_ * h.size_data_per_element_;
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    bytes += static_cast<size_t>(std::max(0, h.element_levels_[i])) * h.size_links_per_element_;
    bytes += sizeof(void*);  // linkLists_ pointer
  }
  bytes += h.label_lookup_.size() * (sizeof(hnswlib::labeltype) + sizeof(hnswlib::tableint) + 16);
  bytes += h.max_elements_ * (sizeof(int) + sizeof(std::mutex));  // levels + link locks
  return bytes;
}

void Runner::RunHnsw() {
  const size_t n = data_.n(), dim = data_.dim;
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  if (data_.metric == Metric::kEuclid) {
    space = std::make_unique<hnswlib::L2Space>(dim);
  } else {
    space = std::make_unique<hnswlib::InnerProductSpace>(dim);
  }
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  double build_s = 0;
  Step(fmt::format("hnswlib: building M={} ef_construction={} on {} threads", config_.hnsw_m,
                   config_.hnsw_ef_construction, pool_all_.num_threads()));
  Guarded("hnswlib build", [&] {
    graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(space.get(), n, config_.hnsw_m,
                                                              config_.hnsw_ef_construction);
    const auto start = Clock::now();
    // The first point alone (hnswlib's Python binding does the same), then
    // the rest in parallel: addPoint is thread-safe.
    graph->addPoint(prepared_.base.data(), 0);
    const size_t chunk = 256;
    std::atomic<size_t> added{1};
    std::atomic<bool> failed{false};
    pool_all_.ParallelFor((n - 1 + chunk - 1) / chunk, [&](size_t t) {
      try {
        for (size_t i = 1 + t * chunk; i < std::min(n, 1 + (t + 1) * chunk); ++i) {
          graph->addPoint(prepared_.base.data() + i * dim, i);
        }
      } catch (...) {
        failed = true;
      }
      const size_t now = added.fetch_add(chunk) + chunk;
      if (t % 64 == 0) {
        Step(fmt::format("hnswlib: building M={} ef_construction={}: {}/{} points", config_.hnsw_m,
                         config_.hnsw_ef_construction, std::min(now, n), n));
      }
    });
    if (failed) throw std::runtime_error("addPoint failed");
    build_s = SecondsSince(start);
  });
  Done(HnswUnits(n, dim, config_.hnsw_ef_construction),
       fmt::format("hnswlib built in {:.1f} s", build_s));
  const size_t memory = HnswMemory(*graph);
  ThreadPool* pool = &pool_all_;
  Sweep(config_.efs, "hnswlib", [&](size_t ef) -> std::optional<double> {
    graph->setEf(ef);
    Searcher s;
    s.family = "hnswlib";
    s.method = "hnswlib HNSW";
    s.params = fmt::format("M={} efC={} ef={}", config_.hnsw_m, config_.hnsw_ef_construction, ef);
    s.note = "a single query runs on one thread; batch = queries in parallel";
    s.build_s = build_s;
    s.memory_bytes = memory;
    s.queries = prepared_.queries.data();
    s.set_threads = [&](size_t t) { pool = t == 1 ? &pool_one_ : &pool_all_; };
    auto search = [&](const float* q, size_t k, int64_t* out) {
      auto result = graph->searchKnn(q, k);
      for (size_t i = k; i-- > 0;) {
        if (result.empty()) {
          out[i] = -1;
          continue;
        }
        out[i] = static_cast<int64_t>(result.top().second);
        result.pop();
      }
      // Fewer than k results: shift the found ones to the front.
      const size_t missing = static_cast<size_t>(std::count(out, out + k, -1));
      if (missing) std::rotate(out, out + missing, out + k);
    };
    s.batch = [&](const float* q, size_t nq, size_t k, int64_t* out) {
      Guarded("hnswlib search", [&] {
        pool->ParallelFor((nq + 15) / 16, [&](size_t b) {
          for (size_t i = b * 16; i < std::min(nq, (b + 1) * 16); ++i)
            search(q + i * dim, k, out + i * k);
        });
      });
    };
    s.one = [&](const float* q, size_t k, int64_t* out) {
      Guarded("hnswlib search", [&] { search(q, k, out); });
    };
    return Measure(s);
  });
}

std::vector<Row> Runner::Run() {
  if (Enabled("faiss-flat")) RunFaissFlat();
  if (Enabled("qvec-flat-f32")) RunFloatFlat();
  if (Enabled("qvec-flat")) RunQvecFlat();
  if (Enabled("qvec-ivf")) RunQvecIvf();
  if (Enabled("faiss-ivfflat") || Enabled("faiss-ivfsq8")) RunFaissIvf();
  if (Enabled("hnswlib")) RunHnsw();
  // Speed relative to the float baseline at the same thread count.
  for (Row& row : rows_) {
    for (const Row& base : rows_) {
      if (base.family == "faiss-flat" && base.threads == row.threads) {
        row.qps_vs_faiss_flat = row.qps / base.qps;
        row.qps_batch_vs_faiss_flat = row.qps_batch / base.qps_batch;
      }
    }
  }
  return rows_;
}

}  // namespace

double PlannedUnits(size_t n, size_t dim, const BenchConfig& config) {
  auto on = [&](const char* f) { return config.families.count(f) != 0; };
  const uint32_t nlist = config.nlist ? config.nlist : index::DefaultNlist(n);
  // Sweeps usually stop around their middle; the ETA corrects itself when
  // a sweep ends.
  const double sweep = kPointUnits * static_cast<double>(config.nprobes.size());
  double units = 0;
  if (on("faiss-flat")) units += kPointUnits;
  if (on("qvec-flat-f32")) units += kPointUnits;
  if (on("qvec-flat")) units += 4 * kPointUnits;
  if (on("qvec-ivf")) {
    units += KmeansUnits(n, dim, nlist, 64) + 2 + 2 * sweep +
             static_cast<double>(config.first_passes.size()) * (2 + 2 * sweep);
  }
  if (on("faiss-ivfflat") || on("faiss-ivfsq8")) units += KmeansUnits(n, dim, nlist, 256) + 2;
  if (on("faiss-ivfflat")) units += sweep;
  if (on("faiss-ivfsq8")) units += sweep;
  if (on("hnswlib")) {
    units += HnswUnits(n, dim, config.hnsw_ef_construction) +
             kPointUnits * static_cast<double>(config.efs.size());
  }
  return units;
}

std::vector<Row> RunMethods(const Dataset& data, const PreparedData& prepared,
                            const std::vector<std::vector<int32_t>>& truth,
                            const BenchConfig& config) {
  Runner runner(data, prepared, truth, config);
  return runner.Run();
}

}  // namespace qvec::bench
