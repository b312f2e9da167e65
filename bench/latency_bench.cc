#include "bench/latency_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/datasets.h"
#include "qvec/database.h"

namespace qvec::bench {
namespace {

struct LatencyOptions {
  size_t n = 200000;
  size_t dim = 128;
  double seconds = 8;        // per measured phase
  double write_rate = 2000;  // points per second of the upsert stream
  size_t write_batch = 100;  // points per Upsert
  size_t searchers = 1;      // threads searching back to back
  std::string path = "/var/tmp/qvec-bench-latency";
  uint64_t seed = 42;
};

LatencyOptions g_options;
CLI::App* g_command = nullptr;

struct PhaseResult {
  std::string name;
  std::vector<double> search_ms;
  std::vector<double> write_ms;
  double seconds = 0;
  size_t points_written = 0;
};

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double v = 0;
  in >> v;
  return v;
}

std::vector<Point> Batch(const Dataset& data, size_t first, size_t count) {
  std::vector<Point> points(count);
  for (size_t i = 0; i < count; ++i) {
    points[i].id = PointId::Num(first + i);
    points[i].vector.assign(data.base.begin() + (first + i) * data.dim,
                            data.base.begin() + (first + i + 1) * data.dim);
  }
  return points;
}

// Searches for o.seconds from o.searchers threads; with `write`, a writer
// thread upserts o.write_rate points per second (overwriting existing
// points with the vectors of others, so that the collection keeps its size).
PhaseResult Measure(const std::string& name, Collection& c, const Dataset& data,
                    const LatencyOptions& o, bool write) {
  PhaseResult r;
  r.name = name;
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> per_thread(o.searchers);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < o.searchers; ++t) {
    threads.emplace_back([&, t] {
      SearchRequest req;
      req.limit = 10;
      size_t q = t * 97;
      while (!stop.load(std::memory_order_relaxed)) {
        const size_t i = q++ % data.nq();
        req.vector.assign(data.queries.begin() + i * data.dim,
                          data.queries.begin() + (i + 1) * data.dim);
        const auto t0 = Clock::now();
        auto hits = c.Search(req);
        per_thread[t].push_back(SecondsSince(t0) * 1e3);
        if (!hits.ok()) Die("search: " + hits.status().ToString());
      }
    });
  }
  std::thread writer;
  if (write) {
    writer = std::thread([&] {
      std::mt19937_64 rng(o.seed + 7);
      const double interval = static_cast<double>(o.write_batch) / o.write_rate;
      auto next = Clock::now();
      while (!stop.load(std::memory_order_relaxed)) {
        std::vector<Point> points(o.write_batch);
        for (Point& p : points) {
          p.id = PointId::Num(rng() % data.n());
          const size_t from = rng() % data.n();
          p.vector.assign(data.base.begin() + from * data.dim,
                          data.base.begin() + (from + 1) * data.dim);
        }
        const auto t0 = Clock::now();
        if (Status s = c.Upsert(points); !s.ok()) Die("upsert: " + s.ToString());
        r.write_ms.push_back(SecondsSince(t0) * 1e3);
        r.points_written += points.size();
        next +=
            std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval));
        std::this_thread::sleep_until(next);  // a steady stream, not a flood
      }
    });
  }
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& th : threads) th.join();
  if (writer.joinable()) writer.join();
  r.seconds = SecondsSince(start);
  for (auto& v : per_thread) r.search_ms.insert(r.search_ms.end(), v.begin(), v.end());
  return r;
}

std::unique_ptr<Database> Open(const LatencyOptions& o, bool sync) {
  DatabaseOptions options;
  options.sync_writes = sync;
  auto db = Database::Open(options, o.path);
  if (!db.ok()) Die("open: " + db.status().ToString());
  return std::move(*db);
}

void WaitForIndex(Collection& c) {
  Progress::Get().Show("latency: waiting for the IVF build");
  for (int i = 0; i < 6000 && c.index_state() != IndexInfo::State::kIvf; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (c.index_state() != IndexInfo::State::kIvf) Die("the IVF index was not built in 5 minutes");
}

int Run(const LatencyOptions& o) {
  std::error_code ec;
  std::filesystem::remove_all(o.path, ec);
  const Dataset data = MakeSynthetic(o.n, 1000, o.dim, o.seed);
  std::vector<PhaseResult> results;
  {
    auto db = Open(o, false);
    CollectionConfig config;
    config.dimension = static_cast<uint32_t>(o.dim);
    if (Status s = db->CreateCollection("latency", config); !s.ok()) Die(s.ToString());
    auto c = db->GetCollection("latency").value();
    for (size_t start = 0; start < data.n(); start += 1000) {
      if (Status s = c->Upsert(Batch(data, start, std::min<size_t>(1000, data.n() - start)));
          !s.ok()) {
        Die("load: " + s.ToString());
      }
      if (start % 20000 == 0) Progress::Get().Show(fmt::format("latency: loaded {}", start));
    }
    WaitForIndex(*c);
    Progress::Get().Show("latency: searches alone");
    results.push_back(Measure("alone", *c, data, o, false));
    Progress::Get().Show("latency: searches under upserts");
    results.push_back(Measure("under upserts", *c, data, o, true));
  }
  {
    auto db = Open(o, true);
    auto c = db->GetCollection("latency").value();
    WaitForIndex(*c);
    Progress::Get().Show("latency: searches alone (sync_writes)");
    results.push_back(Measure("alone (sync_writes db)", *c, data, o, false));
    Progress::Get().Show("latency: searches under upserts (sync_writes)");
    results.push_back(Measure("under upserts, sync_writes", *c, data, o, true));
  }
  Progress::Get().Break();
  std::filesystem::remove_all(o.path, ec);

  fmt::print(
      "### search latency alone and under a steady upsert stream\n\n"
      "{} x {} synthetic (Cosine, IVF, rescoring on), {} search thread(s) back to back, "
      "upserts of {} points at {:.0f} points/s overwriting random points; {:.0f} s per phase; "
      "load average {:.2f} at the end.\n\n",
      o.n, o.dim, o.searchers, o.write_batch, o.write_rate, o.seconds, LoadAverage());
  fmt::print(
      "| phase | searches | search p50 ms | p99 ms | p99.9 ms | p99 / alone | upserts/s | "
      "upsert p50 ms | upsert p99 ms |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
  double alone_p99 = 0;
  for (PhaseResult& r : results) {
    const size_t searches = r.search_ms.size();
    const double p50 = Percentile(r.search_ms, 0.5), p99 = Percentile(r.search_ms, 0.99),
                 p999 = Percentile(r.search_ms, 0.999);
    if (r.write_ms.empty()) alone_p99 = p99;
    const std::string ratio = r.write_ms.empty() ? "" : fmt::format("{:.2f}", p99 / alone_p99);
    const std::string w50 =
        r.write_ms.empty() ? "" : fmt::format("{:.2f}", Percentile(r.write_ms, 0.5));
    const std::string w99 =
        r.write_ms.empty() ? "" : fmt::format("{:.2f}", Percentile(r.write_ms, 0.99));
    const std::string rate =
        r.write_ms.empty() ? "" : fmt::format("{:.0f}", r.points_written / r.seconds);
    fmt::print("| {} | {} | {:.3f} | {:.3f} | {:.3f} | {} | {} | {} | {} |\n", r.name, searches,
               p50, p99, p999, ratio, rate, w50, w99);
  }
  fmt::print("\n");
  return 0;
}

}  // namespace

void AddLatencyCommand(CLI::App* app) {
  g_command = app->add_subcommand(
      "latency",
      "search p50/p99 alone and under a steady upsert stream (with/without sync_writes)");
  g_command->add_option("--n", g_options.n, "points in the collection")->capture_default_str();
  g_command->add_option("--dim", g_options.dim, "dimension")->capture_default_str();
  g_command->add_option("--seconds", g_options.seconds, "seconds per phase")->capture_default_str();
  g_command->add_option("--write-rate", g_options.write_rate, "upserted points per second")
      ->capture_default_str();
  g_command->add_option("--write-batch", g_options.write_batch, "points per Upsert")
      ->capture_default_str();
  g_command->add_option("--searchers", g_options.searchers, "search threads")
      ->capture_default_str();
  g_command->add_option("--path", g_options.path, "database directory (removed before and after)")
      ->capture_default_str();
}

int RunParsedLatencyCommand() {
  if (g_command == nullptr || !g_command->parsed()) return -1;
  return Run(g_options);
}

}  // namespace qvec::bench
