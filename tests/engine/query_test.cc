// Collection::Query against brute-force references computed here from the
// same vectors: prefetch, fusion, recommend, discover, context, order_by,
// sample, and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

constexpr size_t kDim = 8;
constexpr size_t kPoints = 1500;

float Dot(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
std::vector<float> Unit(std::vector<float> v) {
  const float n = std::sqrt(Dot(v, v));
  for (float& x : v) x /= n;
  return v;
}
float Sf(float x) { return 0.5f * (x / (1 + std::fabs(x)) + 1); }
float Fs(float x) { return x / (1 + std::fabs(x)); }

class QueryTest : public ::testing::TestWithParam<Distance> {
 protected:
  void SetUp() override {
    auto db = Database::Open(DatabaseOptions(), dir_.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    CollectionConfig cfg;
    cfg.dimension = kDim;
    cfg.distance = GetParam();
    ASSERT_TRUE(db_->CreateCollection("c", cfg).ok());
    c_ = *db_->GetCollection("c");
    std::mt19937 rng(17);
    std::normal_distribution<float> g;
    std::vector<Point> points(kPoints);
    for (size_t i = 0; i < kPoints; ++i) {
      points[i].id = PointId::Num(i);
      points[i].vector.resize(kDim);
      for (float& x : points[i].vector) x = g(rng);
      points[i].payload =
          "{\"n\":" + std::to_string(i) + ",\"even\":" + (i % 2 ? "false" : "true") + "}";
      vectors_[i] = GetParam() == Distance::kCosine ? Unit(points[i].vector) : points[i].vector;
    }
    ASSERT_TRUE(c_->Upsert(points).ok());
    ASSERT_TRUE(c_->CreatePayloadIndex("n", PayloadSchemaType::kInteger).ok());
  }

  // The metric's score and Qdrant's raw similarity of two stored vectors.
  float Score(const std::vector<float>& q, uint64_t id) const {
    const auto& v = vectors_.at(id);
    switch (GetParam()) {
      case Distance::kEuclid: {
        float s = 0;
        for (size_t i = 0; i < kDim; ++i) s += (q[i] - v[i]) * (q[i] - v[i]);
        return std::sqrt(s);
      }
      case Distance::kManhattan: {
        float s = 0;
        for (size_t i = 0; i < kDim; ++i) s += std::fabs(q[i] - v[i]);
        return s;
      }
      default:
        return Dot(GetParam() == Distance::kCosine ? Unit(q) : q, v);
    }
  }
  float Sim(const std::vector<float>& q, uint64_t id) const {
    const float s = Score(q, id);
    if (GetParam() == Distance::kEuclid) return -s * s;
    if (GetParam() == Distance::kManhattan) return -s;
    return s;
  }
  bool LowerFirst() const {
    return GetParam() == Distance::kEuclid || GetParam() == Distance::kManhattan;
  }
  // The top `k` of `score` over every point not in `exclude`, best first.
  template <typename Fn>
  std::vector<std::pair<uint64_t, float>> Top(size_t k, Fn score,
                                              const std::set<uint64_t>& exclude = {},
                                              bool lower_first = false) const {
    std::vector<std::pair<uint64_t, float>> all;
    for (const auto& [id, v] : vectors_) {
      if (!exclude.count(id)) all.emplace_back(id, score(id));
    }
    std::sort(all.begin(), all.end(), [&](const auto& a, const auto& b) {
      if (a.second != b.second) return lower_first ? a.second < b.second : a.second > b.second;
      return a.first < b.first;
    });
    all.resize(std::min(k, all.size()));
    return all;
  }
  void ExpectSame(const std::vector<ScoredPoint>& got,
                  const std::vector<std::pair<uint64_t, float>>& want, float tol = 2e-4f) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id.num(), want[i].first) << "rank " << i;
      EXPECT_NEAR(got[i].score, want[i].second, tol * std::max(1.0f, std::fabs(want[i].second)))
          << "rank " << i;
    }
  }
  std::vector<float> Q(uint32_t seed) const {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> q(kDim);
    for (float& x : q) x = g(rng);
    return q;
  }
  static QueryRequest Nearest(std::vector<float> v, size_t limit) {
    QueryRequest r;
    r.query = QuerySpec();
    r.query->nearest.vector = std::move(v);
    r.limit = limit;
    // Float scores over every point: the brute-force reference's order (the
    // default int8 candidates may swap neighbours at the edge).
    r.params.ignore_quantization = true;
    return r;
  }
  static VectorInput Id(uint64_t id) {
    VectorInput in;
    in.point = PointId::Num(id);
    return in;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> c_;
  std::map<uint64_t, std::vector<float>> vectors_;
};

TEST_P(QueryTest, NearestByVectorAndByPointId) {
  const auto q = Q(1);
  auto got = c_->Query(Nearest(q, 10));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSame(*got, Top(
                       10, [&](uint64_t id) { return Score(q, id); }, {}, LowerFirst()));
  QueryRequest by_id;
  by_id.query = QuerySpec();
  by_id.query->nearest = Id(7);
  by_id.limit = 5;
  by_id.params.ignore_quantization = true;
  got = c_->Query(by_id);
  ASSERT_TRUE(got.ok());
  // The example itself is left out, as in Qdrant.
  ExpectSame(*got, Top(
                       5, [&](uint64_t id) { return Score(vectors_[7], id); }, {7}, LowerFirst()));
}

TEST_P(QueryTest, PrefetchRescoresOnlyWhatWasPrefetchedUnderTheOuterFilter) {
  const auto a = Q(2), b = Q(3);
  QueryRequest r = Nearest(b, 10);
  r.prefetch.push_back(Nearest(a, 50));
  Condition even;
  even.kind = Condition::Kind::kMatchValue;
  even.key = "even";
  even.value = true;
  r.filter = Filter();
  r.filter->must.push_back(even);
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The prefetch runs with the outer filter: its 50 are even points.
  auto pre = Top(
      50, [&](uint64_t id) { return id % 2 ? NAN : Score(a, id); }, {}, LowerFirst());
  std::erase_if(pre, [](const auto& p) { return p.first % 2; });
  std::set<uint64_t> pool;
  for (const auto& p : Top(
           kPoints, [&](uint64_t id) { return Score(a, id); }, {}, LowerFirst())) {
    if (p.first % 2 == 0 && pool.size() < 50) pool.insert(p.first);
  }
  std::set<uint64_t> outside;
  for (const auto& [id, v] : vectors_) {
    if (!pool.count(id)) outside.insert(id);
  }
  ExpectSame(*got, Top(
                       10, [&](uint64_t id) { return Score(b, id); }, outside, LowerFirst()));
}

TEST_P(QueryTest, RrfAndDbsfFuseThePrefetchLists) {
  const auto a = Q(4), b = Q(5);
  const auto la = Top(
      30, [&](uint64_t id) { return Score(a, id); }, {}, LowerFirst());
  const auto lb = Top(
      20, [&](uint64_t id) { return Score(b, id); }, {}, LowerFirst());
  QueryRequest r;
  r.prefetch = {Nearest(a, 30), Nearest(b, 20)};
  r.query = QuerySpec();
  r.query->kind = QuerySpec::Kind::kFusion;
  r.limit = 15;
  auto fuse = [&](bool rrf, uint32_t k, std::vector<float> weights) {
    std::map<uint64_t, float> s;
    const std::vector<std::pair<uint64_t, float>>* lists[] = {&la, &lb};
    for (size_t l = 0; l < 2; ++l) {
      const auto& list = *lists[l];
      const float w = l < weights.size() ? weights[l] : 1.0f;
      if (rrf) {
        for (size_t pos = 0; pos < list.size(); ++pos) {
          s[list[pos].first] += w / static_cast<float>(k + pos);
        }
        continue;
      }
      double mean = 0, var = 0;
      for (const auto& [id, sc] : list) mean += LowerFirst() ? -sc : sc;
      mean /= list.size();
      for (const auto& [id, sc] : list) var += std::pow((LowerFirst() ? -sc : sc) - mean, 2);
      const double sd = std::sqrt(var / (list.size() - 1));
      for (const auto& [id, sc] : list) {
        s[id] += static_cast<float>(((LowerFirst() ? -sc : sc) - (mean - 3 * sd)) / (6 * sd));
      }
    }
    std::vector<std::pair<uint64_t, float>> out(s.begin(), s.end());
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& x, const auto& y) { return x.second > y.second; });
    out.resize(15);
    return out;
  };
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSame(*got, fuse(true, 2, {}));
  r.query->rrf_k = 60;
  r.query->rrf_weights = {2.0f, 0.5f};
  ExpectSame(*c_->Query(r), fuse(true, 60, {2.0f, 0.5f}));
  r.query->fusion = QuerySpec::Fusion::kDbsf;
  ExpectSame(*c_->Query(r), fuse(false, 0, {}), 1e-3f);
}

TEST_P(QueryTest, RecommendStrategies) {
  // best_score over every point (the collection is small), examples left out.
  QueryRequest r;
  r.query = QuerySpec();
  r.query->kind = QuerySpec::Kind::kRecommend;
  r.query->positive = {Id(1), Id(2)};
  r.query->negative = {Id(3)};
  r.query->strategy = QuerySpec::Strategy::kBestScore;
  r.limit = 10;
  r.params.ignore_quantization = true;
  const std::set<uint64_t> ex = {1, 2, 3};
  auto best = [&](uint64_t id) {
    const float p = std::max(Sim(vectors_[1], id), Sim(vectors_[2], id));
    const float n = Sim(vectors_[3], id);
    return p > n ? Sf(p) : -Sf(n);
  };
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSame(*got, Top(10, best, ex));
  r.query->strategy = QuerySpec::Strategy::kSumScores;
  auto sum = [&](uint64_t id) {
    return Sim(vectors_[1], id) + Sim(vectors_[2], id) - Sim(vectors_[3], id);
  };
  ExpectSame(*c_->Query(r), Top(10, sum, ex), 1e-3f);
  // average_vector: the search by avg(pos) + avg(pos) - avg(neg).
  r.query->strategy = QuerySpec::Strategy::kAverageVector;
  std::vector<float> avg(kDim);
  for (size_t i = 0; i < kDim; ++i) {
    const float ap = (vectors_[1][i] + vectors_[2][i]) / 2;
    avg[i] = ap + ap - vectors_[3][i];
  }
  ExpectSame(*c_->Query(r), Top(
                                10, [&](uint64_t id) { return Score(avg, id); }, ex, LowerFirst()));
  // Only negatives: best_score ranks by -sf(similarity to them).
  r.query->positive.clear();
  r.query->strategy = QuerySpec::Strategy::kBestScore;
  ExpectSame(*c_->Query(r), Top(10, [&](uint64_t id) { return -Sf(Sim(vectors_[3], id)); }, {3}));
  r.query->strategy = QuerySpec::Strategy::kAverageVector;
  EXPECT_EQ(c_->Query(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(QueryTest, DiscoverAndContext) {
  QueryRequest r;
  r.query = QuerySpec();
  r.query->kind = QuerySpec::Kind::kDiscover;
  const auto t = Q(6);
  r.query->target.vector = t;
  r.query->context = {{Id(10), Id(11)}, {Id(12), Id(13)}};
  r.limit = 10;
  const std::set<uint64_t> ex = {10, 11, 12, 13};
  auto rank = [&](uint64_t id) {
    float s = 0;
    for (auto [p, n] : {std::pair<uint64_t, uint64_t>{10, 11}, {12, 13}}) {
      const float a = Sim(vectors_[p], id), b = Sim(vectors_[n], id);
      s += a > b ? 1.0f : (a < b ? -1.0f : 0.0f);
    }
    return s;
  };
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSame(*got, Top(
                       10, [&](uint64_t id) { return rank(id) + Sf(Sim(t, id)); }, ex));
  r.query->kind = QuerySpec::Kind::kContext;
  auto context = [&](uint64_t id) {
    float s = 0;
    for (auto [p, n] : {std::pair<uint64_t, uint64_t>{10, 11}, {12, 13}}) {
      s += Fs(std::min(Sim(vectors_[p], id) - Sim(vectors_[n], id) - FLT_EPSILON, 0.0f));
    }
    return s;
  };
  got = c_->Query(r);
  ASSERT_TRUE(got.ok());
  // Many points satisfy every pair (score 0): compare the scores only.
  const auto want = Top(10, context, ex);
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*got)[i].score, want[i].second, 1e-4);
}

TEST_P(QueryTest, RelevanceFeedbackNaiveStrategy) {
  QueryRequest r;
  r.query = QuerySpec();
  r.query->kind = QuerySpec::Kind::kRelevanceFeedback;
  const auto t = Q(8);
  r.query->target.vector = t;
  // Five examples: pairs (best, worst) = (20, 24) and (21, 23); 22 unpaired.
  const std::vector<std::pair<uint64_t, float>> fb = {
      {22, 0.5f}, {20, 0.9f}, {24, 0.1f}, {21, 0.8f}, {23, 0.3f}};
  for (const auto& [id, score] : fb) r.query->feedback.push_back({Id(id), score});
  r.query->feedback_a = 0.7f;
  r.query->feedback_b = 2.0f;
  r.query->feedback_c = 1.5f;
  r.limit = 10;
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto score = [&](uint64_t id) {
    float s = 0.7f * Sim(t, id);
    s += std::pow(0.9f - 0.1f, 2.0f) * 1.5f * (Sim(vectors_[20], id) - Sim(vectors_[24], id));
    s += std::pow(0.8f - 0.3f, 2.0f) * 1.5f * (Sim(vectors_[21], id) - Sim(vectors_[23], id));
    return s;
  };
  // The examples are not excluded.
  ExpectSame(*got, Top(10, score, {}));
  r.query->feedback_b = -1;
  EXPECT_EQ(c_->Query(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(QueryTest, OrderBySampleAndRefusals) {
  QueryRequest r;
  r.query = QuerySpec();
  r.query->kind = QuerySpec::Kind::kOrderBy;
  r.query->order_by.key = "n";
  r.query->order_by.descending = true;
  r.limit = 3;
  auto got = c_->Query(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].id.num(), kPoints - 1);
  EXPECT_EQ((*got)[0].order_value, static_cast<double>(kPoints - 1));
  EXPECT_EQ((*got)[0].score, 0.0f);
  r.query->kind = QuerySpec::Kind::kSample;
  r.limit = 20;
  got = c_->Query(r);
  ASSERT_TRUE(got.ok());
  std::set<uint64_t> distinct;
  for (const auto& p : *got) distinct.insert(p.id.num());
  EXPECT_EQ(distinct.size(), 20u);
  // Refused: fusion without prefetch, prefetch without query, a missing
  // example point, an unknown field.
  r.query->kind = QuerySpec::Kind::kFusion;
  EXPECT_EQ(c_->Query(r).status().code(), StatusCode::kInvalidArgument);
  QueryRequest no_query;
  no_query.prefetch.push_back(Nearest(Q(1), 5));
  EXPECT_EQ(c_->Query(no_query).status().code(), StatusCode::kInvalidArgument);
  QueryRequest missing;
  missing.query = QuerySpec();
  missing.query->nearest = Id(999999);
  EXPECT_EQ(c_->Query(missing).status().code(), StatusCode::kNotFound);
  QueryRequest field = Nearest(Q(1), 5);
  field.vector_name = "nope";
  EXPECT_EQ(c_->Query(field).status().code(), StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Metrics, QueryTest,
                         ::testing::Values(Distance::kCosine, Distance::kDot, Distance::kEuclid,
                                           Distance::kManhattan),
                         [](const auto& info) {
                           switch (info.param) {
                             case Distance::kCosine:
                               return std::string("Cosine");
                             case Distance::kDot:
                               return std::string("Dot");
                             case Distance::kEuclid:
                               return std::string("Euclid");
                             default:
                               return std::string("Manhattan");
                           }
                         });

}  // namespace
}  // namespace qvec
