// The IVF lifecycle of a collection: flat -> trained IVF (in the background
// or by Optimize), searches during the build, persistence and recovery.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

// Overlapping Gaussian clusters: realistic enough that IVF must probe
// several lists.
std::vector<Point> ClusteredPoints(size_t n, size_t dim, uint32_t seed, uint64_t first_id = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  constexpr size_t kClusters = 64;
  std::mt19937 center_rng(7);  // same centers for every call
  std::vector<std::vector<float>> centers(kClusters, std::vector<float>(dim));
  for (auto& c : centers) {
    for (float& x : c) x = normal(center_rng);
  }
  std::vector<Point> points(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& c = centers[rng() % kClusters];
    points[i].id = PointId::Num(first_id + i);
    points[i].vector.resize(dim);
    for (size_t d = 0; d < dim; ++d) points[i].vector[d] = c[d] + 0.8f * normal(rng);
    points[i].payload = "{\"bucket\":" + std::to_string((first_id + i) % 100) + "}";
  }
  return points;
}

CollectionConfig IvfConfig(uint32_t dim, uint32_t threshold) {
  CollectionConfig c;
  c.dimension = dim;
  c.index.ivf_threshold = threshold;
  return c;
}

double RecallAt10(Collection& c, const std::vector<Point>& queries, SearchParams params) {
  double total = 0;
  for (const auto& q : queries) {
    SearchRequest exact;
    exact.vector = q.vector;
    exact.limit = 10;
    exact.params.ignore_quantization = true;
    auto truth = c.Search(exact);
    SearchRequest approx = exact;
    approx.params = params;
    auto got = c.Search(approx);
    if (!truth.ok() || !got.ok()) return -1;
    size_t hit = 0;
    for (const auto& t : *truth) {
      for (const auto& g : *got) hit += t.id == g.id;
    }
    total += static_cast<double>(hit) / truth->size();
  }
  return total / queries.size();
}

TEST(IvfLifecycle, OptimizeTrainsIvfThatSurvivesReopen) {
  TempDir dir;
  DatabaseOptions options;
  options.background_indexing = false;
  auto queries = ClusteredPoints(50, 32, 99, 1000000);
  std::vector<std::vector<ScoredPoint>> before;
  {
    auto db = Database::Open(options, dir.path()).value();
    ASSERT_TRUE(db->CreateCollection("c", IvfConfig(32, 1000)).ok());
    auto c = *db->GetCollection("c");
    auto points = ClusteredPoints(8000, 32, 1);
    ASSERT_TRUE(c->Upsert(points).ok());
    EXPECT_EQ(c->Info()->index.state, IndexInfo::State::kFlat);
    ASSERT_TRUE(c->Optimize().ok());
    auto info = c->Info();
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->index.state, IndexInfo::State::kIvf);
    EXPECT_GE(info->index.nlist, 16u);
    EXPECT_EQ(info->index.trained_on_points, 8000u);
    EXPECT_FALSE(info->index.recall_curve.empty());
    EXPECT_GT(info->index.list_max, 0u);
    EXPECT_GE(RecallAt10(*c, queries, SearchParams()), 0.9);
    SearchParams all;
    all.exact = true;
    EXPECT_GE(RecallAt10(*c, queries, all), 0.95);
    // Writes after the build go into the IVF lists.
    ASSERT_TRUE(c->Upsert(ClusteredPoints(100, 32, 2, 50000)).ok());
    std::vector<PointId> del = {PointId::Num(3), PointId::Num(4)};
    ASSERT_TRUE(c->Delete(del).ok());
    EXPECT_EQ(*c->Count(nullptr), 8098u);
    for (const auto& q : queries) {
      SearchRequest r;
      r.vector = q.vector;
      r.limit = 10;
      before.push_back(*c->Search(r));
    }
    // Filtered search at 1% selectivity returns k results.
    Filter f;
    Condition cond;
    cond.kind = Condition::Kind::kMatchValue;
    cond.key = "bucket";
    cond.value = int64_t{42};
    f.must.push_back(cond);
    SearchRequest r;
    r.vector = queries[0].vector;
    r.limit = 10;
    r.filter = f;
    auto hits = c->Search(r);
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(hits->size(), 10u);
    for (const auto& h : *hits) EXPECT_EQ(h.id.num() % 100, 42u);
  }
  auto db = Database::Open(options, dir.path()).value();
  auto c = *db->GetCollection("c");
  auto info = c->Info();
  EXPECT_EQ(info->index.state, IndexInfo::State::kIvf);
  EXPECT_EQ(info->points_count, 8098u);
  for (size_t i = 0; i < queries.size(); ++i) {
    SearchRequest r;
    r.vector = queries[i].vector;
    r.limit = 10;
    auto after = c->Search(r);
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->size(), before[i].size());
    for (size_t j = 0; j < after->size(); ++j) EXPECT_EQ((*after)[j].id, before[i][j].id);
  }
}

TEST(IvfLifecycle, BackgroundBuildNeverHidesAPoint) {
  TempDir dir;
  auto db = Database::Open(DatabaseOptions(), dir.path()).value();
  ASSERT_TRUE(db->CreateCollection("c", IvfConfig(16, 3000)).ok());
  auto c = *db->GetCollection("c");
  std::atomic<bool> done{false};
  std::atomic<int> missing{0};
  std::atomic<uint64_t> inserted{0};
  // A searcher checks that recently acknowledged points are found by their
  // own vector with an exhaustive (all lists) int8 scan.
  auto all = ClusteredPoints(12000, 16, 5);
  std::thread searcher([&] {
    std::mt19937 rng(1);
    while (!done.load()) {
      const uint64_t n = inserted.load();
      if (n == 0) continue;
      const auto& p = all[rng() % n];
      SearchRequest r;
      r.vector = p.vector;
      r.limit = 10;
      r.params.exact = true;
      auto hits = c->Search(r);
      bool found = false;
      if (hits.ok()) {
        for (const auto& h : *hits) found = found || h.id == p.id;
      }
      if (!found) ++missing;
    }
  });
  for (size_t start = 0; start < all.size(); start += 500) {
    std::vector<Point> batch(all.begin() + start, all.begin() + start + 500);
    ASSERT_TRUE(c->Upsert(batch).ok());
    inserted.store(start + 500);
  }
  for (int i = 0; i < 600 && c->Info()->index.state != IndexInfo::State::kIvf; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  done = true;
  searcher.join();
  // A retrain for the grown collection may still be running: Optimize waits
  // for it (and trains once more), so the state below is settled.
  ASSERT_TRUE(c->Optimize().ok());
  auto info = c->Info();
  EXPECT_EQ(info->index.state, IndexInfo::State::kIvf);
  EXPECT_EQ(info->points_count, 12000u);
  EXPECT_EQ(missing.load(), 0);
  // Every point is in exactly one list: an exhaustive search finds each.
  for (size_t i = 0; i < all.size(); i += 97) {
    SearchRequest r;
    r.vector = all[i].vector;
    r.limit = 10;
    r.params.exact = true;
    auto hits = c->Search(r);
    ASSERT_TRUE(hits.ok());
    bool found = false;
    for (const auto& h : *hits) found = found || h.id == all[i].id;
    EXPECT_TRUE(found) << i;
  }
}

// A crash (SIGKILL) in the middle of an IVF build leaves a database that
// opens with every acknowledged point indexed exactly once.
TEST(IvfLifecycle, CrashDuringBuildRecovers) {
  TempDir dir;
  DatabaseOptions options;
  options.background_indexing = false;
  auto points = ClusteredPoints(20000, 32, 8);
  {
    auto db = Database::Open(options, dir.path()).value();
    ASSERT_TRUE(db->CreateCollection("c", IvfConfig(32, 1000)).ok());
    ASSERT_TRUE((*db->GetCollection("c"))->Upsert(points).ok());
  }
  std::mt19937 rng(3);
  for (int trial = 0; trial < 3; ++trial) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto db = Database::Open(options, dir.path());
      if (!db.ok()) _exit(2);
      (void)(*(*db)->GetCollection("c"))->Optimize();
      _exit(0);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + rng() % 600));
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    auto db = Database::Open(options, dir.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto c = *(*db)->GetCollection("c");
    auto info = c->Info();
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->points_count, points.size());
    for (size_t i = 0; i < points.size(); i += 499) {
      SearchRequest r;
      r.vector = points[i].vector;
      r.limit = 5;
      r.params.exact = true;
      auto hits = c->Search(r);
      ASSERT_TRUE(hits.ok());
      bool found = false;
      for (const auto& h : *hits) found = found || h.id == points[i].id;
      EXPECT_TRUE(found) << "trial " << trial << " point " << i;
    }
  }
}

}  // namespace
}  // namespace qvec
