#include "bench/filter_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/datasets.h"
#include "qvec/database.h"

namespace qvec::bench {
namespace {

struct FilterOptions {
  size_t n = 1000000;
  size_t dim = 64;
  size_t groups = 100;  // distinct keyword values: selectivity 1 / groups
  size_t queries = 300;
  std::string path = "/var/tmp/qvec-bench-filter";
  uint64_t seed = 42;
};

FilterOptions g_options;
CLI::App* g_command = nullptr;

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double v = 0;
  in >> v;
  return v;
}

Filter TenantFilter(size_t group) {
  Filter f;
  Condition c;
  c.kind = Condition::Kind::kMatchValue;
  c.key = "tenant";
  c.value = "t" + std::to_string(group);
  f.must.push_back(std::move(c));
  return f;
}

struct Phase {
  std::vector<double> search_ms, count_ms;
  std::vector<std::vector<PointId>> answers;
  std::vector<size_t> counts;
};

Phase Measure(Collection& c, const Dataset& data, const FilterOptions& o) {
  Phase p;
  for (size_t q = 0; q < o.queries; ++q) {
    SearchRequest req;
    req.limit = 10;
    req.vector.assign(data.queries.begin() + (q % data.nq()) * data.dim,
                      data.queries.begin() + (q % data.nq() + 1) * data.dim);
    req.filter = TenantFilter(q % o.groups);
    auto t0 = Clock::now();
    auto hits = c.Search(req);
    p.search_ms.push_back(SecondsSince(t0) * 1e3);
    if (!hits.ok()) Die("search: " + hits.status().ToString());
    std::vector<PointId> ids;
    for (const ScoredPoint& h : *hits) ids.push_back(h.id);
    p.answers.push_back(std::move(ids));
    t0 = Clock::now();
    auto n = c.Count(&*req.filter);
    p.count_ms.push_back(SecondsSince(t0) * 1e3);
    if (!n.ok()) Die("count: " + n.status().ToString());
    p.counts.push_back(*n);
  }
  return p;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

int Run(const FilterOptions& o) {
  std::error_code ec;
  std::filesystem::remove_all(o.path, ec);
  const Dataset data = MakeSynthetic(o.n, 1000, o.dim, o.seed);
  auto db = Database::Open(DatabaseOptions{}, o.path);
  if (!db.ok()) Die("open: " + db.status().ToString());
  CollectionConfig config;
  config.dimension = static_cast<uint32_t>(o.dim);
  if (Status s = (*db)->CreateCollection("filter", config); !s.ok()) Die(s.ToString());
  auto c = (*db)->GetCollection("filter").value();
  for (size_t start = 0; start < data.n(); start += 1000) {
    std::vector<Point> points(std::min<size_t>(1000, data.n() - start));
    for (size_t i = 0; i < points.size(); ++i) {
      const size_t id = start + i;
      points[i].id = PointId::Num(id);
      points[i].vector.assign(data.base.begin() + id * data.dim,
                              data.base.begin() + (id + 1) * data.dim);
      points[i].payload = fmt::format(R"({{"tenant":"t{}","n":{}}})", id % o.groups, id);
    }
    if (Status s = c->Upsert(points); !s.ok()) Die("load: " + s.ToString());
    if (start % 50000 == 0) Progress::Get().Show(fmt::format("filter: loaded {}", start));
  }
  Progress::Get().Show("filter: waiting for the IVF build");
  for (int i = 0; i < 12000 && c->index_state() != IndexInfo::State::kIvf; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (c->index_state() != IndexInfo::State::kIvf) Die("the IVF index was not built in 10 minutes");
  // Warm-up: the first filter on the key builds its field cache.
  (void)c->Count(nullptr);
  {
    Filter warm = TenantFilter(0);
    (void)c->Count(&warm);
  }
  Progress::Get().Show("filter: without a payload index");
  const Phase without = Measure(*c, data, o);
  Progress::Get().Show("filter: creating the payload index");
  const auto t0 = Clock::now();
  if (Status s = c->CreatePayloadIndex("tenant", PayloadSchemaType::kKeyword); !s.ok()) {
    Die("index: " + s.ToString());
  }
  const double index_s = SecondsSince(t0);
  Progress::Get().Show("filter: with the payload index");
  const Phase with = Measure(*c, data, o);
  Progress::Get().Break();
  size_t same = 0;
  for (size_t q = 0; q < o.queries; ++q) {
    const bool equal = without.answers[q] == with.answers[q] && without.counts[q] == with.counts[q];
    same += equal;
    if (!equal) {
      std::string a, b;
      for (const PointId& id : without.answers[q]) a += id.ToString() + " ";
      for (const PointId& id : with.answers[q]) b += id.ToString() + " ";
      std::fprintf(stderr, "query %zu differs: count %zu vs %zu\n  without: %s\n  with:    %s\n", q,
                   without.counts[q], with.counts[q], a.c_str(), b.c_str());
    }
  }
  auto info = c->Info();
  c.reset();
  db->reset();
  std::filesystem::remove_all(o.path, ec);

  auto p = [](std::vector<double> v, double q) { return Percentile(v, q); };
  fmt::print(
      "### filtered search with and without a payload index\n\n"
      "{} x {} synthetic (Cosine, IVF, rescoring on), keyword field with {} values (selectivity "
      "{:.2f} %), {} queries of limit 10 each with a different value, and a count with the same "
      "filter; 1 thread; load average {:.2f} at the end. Index built in {:.2f} s ({} points).\n\n",
      o.n, o.dim, o.groups, 100.0 / static_cast<double>(o.groups), o.queries, LoadAverage(),
      index_s, info.ok() ? info->payload_schema["tenant"].points : 0);
  fmt::print(
      "| phase | search p50 ms | p99 ms | mean ms | count p50 ms | count mean ms |\n"
      "|---|--:|--:|--:|--:|--:|\n");
  fmt::print("| without index | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |\n",
             p(without.search_ms, 0.5), p(without.search_ms, 0.99), Mean(without.search_ms),
             p(without.count_ms, 0.5), Mean(without.count_ms));
  fmt::print("| with index | {:.3f} | {:.3f} | {:.3f} | {:.3f} | {:.3f} |\n",
             p(with.search_ms, 0.5), p(with.search_ms, 0.99), Mean(with.search_ms),
             p(with.count_ms, 0.5), Mean(with.count_ms));
  const double speedup = Mean(without.search_ms) / Mean(with.search_ms);
  fmt::print(
      "\nsearch speedup (mean) {:.1f}x, count speedup {:.1f}x (target >= 10x: **{}**); same "
      "results for {} of {} queries\n\n",
      speedup, Mean(without.count_ms) / Mean(with.count_ms), speedup >= 10 ? "met" : "missed",
      same, o.queries);
  return same == o.queries ? 0 : 1;
}

}  // namespace

void AddFilterCommand(CLI::App* app) {
  g_command = app->add_subcommand(
      "filter", "filtered search and count on a keyword field, without and with a payload index");
  g_command->add_option("--n", g_options.n, "points")->capture_default_str();
  g_command->add_option("--dim", g_options.dim, "dimension")->capture_default_str();
  g_command->add_option("--groups", g_options.groups,
                        "distinct keyword values (selectivity = 1 / groups)")
      ->capture_default_str();
  g_command->add_option("--queries", g_options.queries, "queries per phase")
      ->capture_default_str();
  g_command->add_option("--path", g_options.path, "database directory (removed before and after)")
      ->capture_default_str();
}

int RunParsedFilterCommand() {
  if (g_command == nullptr || !g_command->parsed()) return -1;
  return Run(g_options);
}

}  // namespace qvec::bench
