// The default oversampling comes from the field's rescore curve, measured on
// its own vectors, so that a default search meets the target recall end to
// end (quantization loss included), small flat collections too.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdio>
#include <cmath>
#include <random>
#include <thread>
#include <unordered_set>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

// n points of dim around 20 centres (unit-scale noise on a spread of
// per-dimension variances), as embeddings tend to be.
std::vector<std::vector<float>> Clustered(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(1);  // the same centres for every seed
  std::normal_distribution<float> g;
  std::vector<std::vector<float>> centres(20, std::vector<float>(dim));
  for (auto& c : centres) {
    for (size_t d = 0; d < dim; ++d) c[d] = g(rng) * 2.0f / (1.0f + 0.1f * d);
  }
  std::vector<std::vector<float>> out(n, std::vector<float>(dim));
  rng.seed(seed);
  for (size_t i = 0; i < n; ++i) {
    const auto& c = centres[rng() % centres.size()];
    for (size_t d = 0; d < dim; ++d) out[i][d] = c[d] + g(rng) / (1.0f + 0.05f * d);
  }
  return out;
}

float Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t d = 0; d < a.size(); ++d) {
    ab += double{a[d]} * b[d];
    aa += double{a[d]} * a[d];
    bb += double{b[d]} * b[d];
  }
  return static_cast<float>(ab / std::sqrt(aa * bb));
}

// Waits for the build task to measure the field's rescore curve.
VectorFieldInfo WaitForRescoreCurve(Collection& c) {
  for (int t = 0; t < 600; ++t) {
    auto info = c.Info();
    EXPECT_TRUE(info.ok());
    if (info.ok() && !info->fields.at("").index.rescore_curve.empty()) return info->fields.at("");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "the rescore curve was not measured within 30 s";
  return {};
}

double RecallAt10(Collection& c, const std::vector<std::vector<float>>& data,
                  const std::vector<std::vector<float>>& queries, std::optional<float> oversampling) {
  double total = 0;
  for (const auto& q : queries) {
    std::vector<std::pair<float, size_t>> exact;
    for (size_t i = 0; i < data.size(); ++i) exact.emplace_back(Cosine(q, data[i]), i);
    std::partial_sort(exact.begin(), exact.begin() + 10, exact.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first; });
    std::unordered_set<uint64_t> truth;
    for (size_t i = 0; i < 10; ++i) truth.insert(exact[i].second);
    SearchRequest r;
    r.vector = q;
    r.limit = 10;
    r.params.oversampling = oversampling;
    auto hits = c.Search(r);
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    if (!hits.ok()) return 0;
    size_t found = 0;
    for (const ScoredPoint& h : *hits) found += truth.count(h.id.num()) ? 1 : 0;
    total += found / 10.0;
  }
  return total / static_cast<double>(queries.size());
}

// The case: a 2000-point 48-d Cosine collection with Qdrant's
// scalar int8 at quantile 0.99 answered default queries at recall@10 0.845.
TEST(RescoreCurveTest, SmallFlatCollectionMeetsTheDefaultTarget) {
  testing_util::TempDir dir;
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok());
  CollectionConfig cfg;
  cfg.dimension = 48;
  cfg.distance = Distance::kCosine;
  cfg.quantization.granularity = QuantizationOptions::Granularity::kPerCollection;
  cfg.quantization.quantile = 0.99f;
  ASSERT_TRUE((*db)->CreateCollection("c", cfg).ok());
  auto c = *(*db)->GetCollection("c");
  const auto data = Clustered(2000, 48, 5);
  const auto queries = Clustered(200, 48, 6);  // the same centres, other points
  std::vector<Point> points(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    points[i].id = PointId::Num(i);
    points[i].vectors[""] = data[i];
  }
  ASSERT_TRUE(c->Upsert(points).ok());
  const VectorFieldInfo field = WaitForRescoreCurve(*c);
  const auto& curve = field.index.rescore_curve;
  ASSERT_FALSE(curve.empty());
  EXPECT_EQ(curve.front().first, 1.0f);
  for (size_t i = 1; i < curve.size(); ++i) EXPECT_GE(curve[i].second, curve[i - 1].second);
  const double at_one = RecallAt10(*c, data, queries, 1.0f);
  const double by_default = RecallAt10(*c, data, queries, std::nullopt);
  std::printf("flat 2000 x 48, quantile 0.99: recall@10 %.3f at oversampling 1, %.3f by default "
              "(oversampling %.2f, estimated %.3f)\n",
              at_one, by_default, field.index.default_oversampling, field.index.estimated_recall);
  EXPECT_GE(by_default, 0.95) << "default oversampling " << field.index.default_oversampling
                              << ", at 1: " << at_one;
  EXPECT_GE(field.index.default_oversampling, 1.0f);
  EXPECT_LE(field.index.default_oversampling, 16.0f);
  // The estimate in the info is the one a user sees: close to what happened.
  EXPECT_NEAR(field.index.estimated_recall, by_default, 0.05);
  EXPECT_GE(by_default, at_one);
}

// An IVF field splits the loss budget: rescoring keeps half, probing the
// rest; the default search still meets the target.
TEST(RescoreCurveTest, IvfDefaultSearchMeetsTheTargetEndToEnd) {
  testing_util::TempDir dir;
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok());
  CollectionConfig cfg;
  cfg.dimension = 24;
  cfg.distance = Distance::kCosine;
  cfg.index.ivf_threshold = 2000;
  cfg.index.nlist = 32;
  ASSERT_TRUE((*db)->CreateCollection("c", cfg).ok());
  auto c = *(*db)->GetCollection("c");
  const auto data = Clustered(8000, 24, 7);
  const auto queries = Clustered(150, 24, 8);
  std::vector<Point> points(data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    points[i].id = PointId::Num(i);
    points[i].vectors[""] = data[i];
  }
  ASSERT_TRUE(c->Upsert(points).ok());
  ASSERT_TRUE(c->Optimize().ok());
  auto info = c->Info();
  ASSERT_TRUE(info.ok());
  const IndexInfo& index = info->fields.at("").index;
  ASSERT_EQ(index.state, IndexInfo::State::kIvf);
  ASSERT_FALSE(index.rescore_curve.empty());
  const double by_default = RecallAt10(*c, data, queries, std::nullopt);
  std::printf("IVF 8000 x 24, 32 lists: recall@10 %.3f by default (oversampling %.2f, "
              "estimated %.3f)\n",
              by_default, index.default_oversampling, index.estimated_recall);
  EXPECT_GE(by_default, 0.94) << "oversampling " << index.default_oversampling;
  EXPECT_NEAR(index.estimated_recall, by_default, 0.05);
}

// With a 4-bit first pass the default search still meets the target (the
// first pass's loss is made up by probing), and the first pass survives a
// reopen (its codebook is part of the persisted model).
TEST(RescoreCurveTest, IvfWithFirstPassMeetsTheTargetAndReopens) {
  testing_util::TempDir dir;
  const auto data = Clustered(8000, 32, 9);
  const auto queries = Clustered(150, 32, 10);
  double before = 0;
  for (int round = 0; round < 2; ++round) {
    auto db = Database::Open(DatabaseOptions(), dir.path());
    ASSERT_TRUE(db.ok());
    if (round == 0) {
      CollectionConfig cfg;
      cfg.dimension = 32;
      cfg.distance = Distance::kCosine;
      cfg.index.ivf_threshold = 2000;
      cfg.index.nlist = 32;
      cfg.index.first_pass = IndexOptions::FirstPass::kPq4;
      ASSERT_TRUE((*db)->CreateCollection("c", cfg).ok());
    }
    auto c = *(*db)->GetCollection("c");
    if (round == 0) {
      std::vector<Point> points(data.size());
      for (size_t i = 0; i < data.size(); ++i) {
        points[i].id = PointId::Num(i);
        points[i].vectors[""] = data[i];
      }
      ASSERT_TRUE(c->Upsert(points).ok());
      ASSERT_TRUE(c->Optimize().ok());
    }
    auto info = c->Info();
    ASSERT_TRUE(info.ok());
    const IndexInfo& index = info->fields.at("").index;
    ASSERT_EQ(index.state, IndexInfo::State::kIvf);
    EXPECT_EQ(index.first_pass, "pq4");
    ASSERT_FALSE(index.first_pass_curve.empty());
    EXPECT_EQ(info->fields.at("").config.index.first_pass, IndexOptions::FirstPass::kPq4);
    const double by_default = RecallAt10(*c, data, queries, std::nullopt);
    std::printf("IVF 8000 x 32, 32 lists, pq4 first pass (round %d): recall@10 %.3f by default\n",
                round, by_default);
    EXPECT_GE(by_default, 0.94);
    if (round == 0) {
      before = by_default;
    } else {
      EXPECT_EQ(by_default, before);  // the same codes, the same answers
    }
  }
}

}  // namespace
}  // namespace qvec
