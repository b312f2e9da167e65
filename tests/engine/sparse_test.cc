// Sparse vector fields: writes, searches (against brute force computed
// here), the idf modifier, filters, persistence, compaction, hybrid queries
// and the refusals.
#include <gtest/gtest.h>

#include <algorithm>
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

constexpr size_t kPoints = 2000;

SparseVector RandomSparse(std::mt19937& rng, size_t nnz) {
  std::uniform_real_distribution<double> u(0, 1);
  std::set<uint32_t> dims;
  while (dims.size() < nnz) dims.insert(static_cast<uint32_t>(std::pow(u(rng), 2.0) * 3000));
  SparseVector v;
  for (uint32_t d : dims) {
    v.indices.push_back(d);
    v.values.push_back(static_cast<float>(u(rng) + 0.05));
  }
  // Given unsorted: the engine sorts.
  std::reverse(v.indices.begin(), v.indices.end());
  std::reverse(v.values.begin(), v.values.end());
  return v;
}

std::map<uint32_t, float> AsMap(const SparseVector& v) {
  std::map<uint32_t, float> m;
  for (size_t i = 0; i < v.indices.size(); ++i) m[v.indices[i]] = v.values[i];
  return m;
}

class SparseTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    c_.reset();
    db_.reset();
    auto db = Database::Open(DatabaseOptions(), dir_.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
    if (!db_->GetCollection("c").ok()) {
      CollectionConfig cfg;
      cfg.vectors["d"].dimension = 4;
      cfg.vectors["d"].distance = Distance::kDot;
      cfg.sparse_vectors["s"];
      cfg.sparse_vectors["t"].modifier = SparseVectorConfig::Modifier::kIdf;
      ASSERT_TRUE(db_->CreateCollection("c", cfg).ok());
    }
    c_ = *db_->GetCollection("c");
  }

  void Fill() {
    std::mt19937 rng(5);
    std::normal_distribution<float> g;
    std::vector<Point> points(kPoints);
    for (size_t i = 0; i < kPoints; ++i) {
      Point& p = points[i];
      p.id = PointId::Num(i);
      p.vectors["d"] = {g(rng), g(rng), g(rng), g(rng)};
      if (i % 10 != 3) p.sparse_vectors["s"] = RandomSparse(rng, 5 + i % 30);
      if (i % 2 == 0) p.sparse_vectors["t"] = RandomSparse(rng, 8);
      p.payload = "{\"n\":" + std::to_string(i) + ",\"tag\":\"" + (i % 3 ? "x" : "y") + "\"}";
      if (p.sparse_vectors.count("s")) s_[i] = AsMap(p.sparse_vectors["s"]);
      if (p.sparse_vectors.count("t")) t_[i] = AsMap(p.sparse_vectors["t"]);
      dense_[i] = p.vectors["d"];
    }
    ASSERT_TRUE(c_->Upsert(points).ok());
  }

  // Brute force over `field`'s vectors: points sharing a dimension, by dot
  // product with `q` (weighted by idf when asked).
  std::vector<std::pair<uint64_t, float>> Expected(const std::map<uint64_t, std::map<uint32_t, float>>& field,
                                                   const SparseVector& q, size_t k, bool idf,
                                                   const std::function<bool(uint64_t)>& pass = {}) {
    std::map<uint32_t, double> weight;
    for (size_t i = 0; i < q.indices.size(); ++i) {
      double w = q.values[i];
      if (idf) {
        double df = 0;
        for (const auto& [id, m] : field) df += m.count(q.indices[i]);
        const double n = static_cast<double>(field.size());
        w *= std::log((n - df + 0.5) / (df + 0.5) + 1.0);
      }
      weight[q.indices[i]] = w;
    }
    std::vector<std::pair<uint64_t, float>> all;
    for (const auto& [id, m] : field) {
      if (pass && !pass(id)) continue;
      bool shared = false;
      double s = 0;
      for (const auto& [d, w] : weight) {
        auto it = m.find(d);
        if (it == m.end()) continue;
        shared = true;
        s += w * it->second;
      }
      if (shared) all.emplace_back(id, static_cast<float>(s));
    }
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (all.size() > k) all.resize(k);
    return all;
  }

  void ExpectHits(const std::vector<ScoredPoint>& got,
                  const std::vector<std::pair<uint64_t, float>>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].score, want[i].second, 1e-4f * std::max(1.0f, std::fabs(want[i].second)))
          << "rank " << i;
      if (got[i].id.num() != want[i].first) {
        EXPECT_NEAR(got[i].score, want[i].second, 1e-5f) << "rank " << i << ": not a near-tie";
      }
    }
  }

  StatusOr<std::vector<ScoredPoint>> Search(const std::string& field, const SparseVector& q,
                                            size_t limit, std::optional<Filter> filter = {}) {
    SearchRequest r;
    r.vector_name = field;
    r.sparse_vector = q;
    r.limit = limit;
    r.filter = std::move(filter);
    return c_->Search(r);
  }

  void CheckAll(const char* when) {
    SCOPED_TRACE(when);
    std::mt19937 rng(99);
    for (int i = 0; i < 20; ++i) {
      const SparseVector q = RandomSparse(rng, 1 + i % 12);
      auto s = Search("s", q, 10);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      ExpectHits(*s, Expected(s_, q, 10, false));
      auto t = Search("t", q, 7);
      ASSERT_TRUE(t.ok()) << t.status().ToString();
      ExpectHits(*t, Expected(t_, q, 7, true));
    }
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> c_;
  std::map<uint64_t, std::map<uint32_t, float>> s_, t_;
  std::map<uint64_t, std::vector<float>> dense_;
};

TEST_F(SparseTest, SearchEqualsBruteForceAndSurvivesReopen) {
  Fill();
  CheckAll("after upsert");
  Open();
  CheckAll("after reopen");
  auto info = c_->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->sparse_fields.at("s").vectors_count, s_.size());
  EXPECT_EQ(info->sparse_fields.at("t").vectors_count, t_.size());
  EXPECT_GT(info->sparse_fields.at("s").memory_bytes, 0u);
}

TEST_F(SparseTest, FiltersOffsetThresholdAndPayloadIndexes) {
  Fill();
  std::mt19937 rng(3);
  Filter y;
  Condition c;
  c.key = "tag";
  c.value = std::string("y");
  y.must.push_back(c);
  auto is_y = [](uint64_t id) { return id % 3 == 0; };
  for (bool indexed : {false, true}) {
    SCOPED_TRACE(indexed ? "keyword index" : "no index");
    if (indexed) ASSERT_TRUE(c_->CreatePayloadIndex("tag", PayloadSchemaType::kKeyword).ok());
    for (int i = 0; i < 10; ++i) {
      const SparseVector q = RandomSparse(rng, 6);
      auto got = Search("s", q, 10, y);
      ASSERT_TRUE(got.ok());
      ExpectHits(*got, Expected(s_, q, 10, false, is_y));
    }
  }
  // A narrow indexed filter is scored point by point (below
  // full_scan_threshold); the answer is the same.
  Filter few;
  Condition ids;
  ids.kind = Condition::Kind::kHasId;
  for (uint64_t i = 0; i < 50; ++i) ids.ids.push_back(PointId::Num(i * 7));
  few.must.push_back(ids);
  const SparseVector q = RandomSparse(rng, 20);
  auto got = Search("s", q, 5, few);
  ASSERT_TRUE(got.ok());
  ExpectHits(*got, Expected(s_, q, 5, false, [](uint64_t id) { return id % 7 == 0 && id < 350; }));

  // Offset, threshold and returned vectors.
  SearchRequest r;
  r.vector_name = "s";
  r.sparse_vector = q;
  r.limit = 5;
  r.offset = 3;
  r.with_vector = VectorSelector(std::vector<std::string>{"s"});
  auto page = c_->Search(r);
  ASSERT_TRUE(page.ok());
  const auto want = Expected(s_, q, 8, false);
  ASSERT_EQ(page->size(), 5u);
  EXPECT_EQ((*page)[0].id.num(), want[3].first);
  const auto& sv = (*page)[0].sparse_vectors.at("s");
  EXPECT_EQ(AsMap(sv), s_.at(want[3].first));
  EXPECT_TRUE(std::is_sorted(sv.indices.begin(), sv.indices.end()));
  r.offset = 0;
  r.score_threshold = want[2].second;
  page = c_->Search(r);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 3u);

  // has_vector on a sparse field.
  Filter has;
  Condition hv;
  hv.kind = Condition::Kind::kHasVector;
  hv.key = "t";
  has.must.push_back(hv);
  auto n = c_->Count(&has);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, t_.size());
}

TEST_F(SparseTest, WritesReplaceRemoveAndCompact) {
  Fill();
  std::mt19937 rng(11);
  // Replace most vectors of "s" several times: dead entries pile up and the
  // index compacts; answers stay exact throughout.
  for (int round = 0; round < 4; ++round) {
    std::vector<Point> update;
    for (uint64_t i = 0; i < kPoints; i += 1 + round % 2) {
      Point p;
      p.id = PointId::Num(i);
      p.sparse_vectors["s"] = RandomSparse(rng, 10);
      s_[i] = AsMap(p.sparse_vectors["s"]);
      update.push_back(std::move(p));
    }
    ASSERT_TRUE(c_->UpdateVectors(update).ok());
  }
  CheckAll("after updates");
  // Delete points, delete one sparse field of others.
  std::vector<PointId> gone;
  for (uint64_t i = 0; i < kPoints; i += 5) {
    gone.push_back(PointId::Num(i));
    s_.erase(i);
    t_.erase(i);
  }
  ASSERT_TRUE(c_->Delete(gone).ok());
  std::vector<PointId> strip;
  for (uint64_t i = 1; i < kPoints; i += 5) {
    strip.push_back(PointId::Num(i));
    t_.erase(i);
  }
  ASSERT_TRUE(c_->DeleteVectors(strip, {"t"}).ok());
  CheckAll("after deletes");
  // An upsert replaces the whole point: a sparse field it omits is removed.
  Point p;
  p.id = PointId::Num(2);
  p.vectors["d"] = {1, 0, 0, 0};
  ASSERT_TRUE(c_->Upsert(std::span<const Point>(&p, 1)).ok());
  s_.erase(2);
  t_.erase(2);
  CheckAll("after a replacing upsert");
  Open();
  CheckAll("after reopen");
}

TEST_F(SparseTest, BadInputIsRefusedAndWritesNothing) {
  Fill();
  auto bad = [&](Point p, const char* says) {
    std::vector<Point> batch(1);
    batch[0].id = PointId::Num(kPoints + 1);
    batch[0].sparse_vectors["s"] = SparseVector{{1}, {1.0f}};
    batch.push_back(std::move(p));
    Status s = c_->Upsert(batch);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(says), std::string::npos) << s.ToString();
  };
  Point p;
  p.id = PointId::Num(kPoints + 2);
  p.sparse_vectors["s"] = SparseVector{{4, 4}, {1, 2}};
  bad(p, "repeats index 4");
  p.sparse_vectors["s"] = SparseVector{{4, 5}, {1}};
  bad(p, "2 indices but 1 values");
  p.sparse_vectors["s"] = SparseVector{{4}, {NAN}};
  bad(p, "NaN");
  p.sparse_vectors.clear();
  p.sparse_vectors["nope"] = SparseVector{{4}, {1}};
  bad(p, "no sparse vector field 'nope'");
  p.sparse_vectors.clear();
  p.vectors["s"] = {1, 2, 3, 4};
  bad(p, "is a sparse vector field");
  const PointId first = PointId::Num(kPoints + 1);
  auto got = c_->Get(std::span<const PointId>(&first, 1), false, false, 0);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(got->empty());  // the valid point of each batch was not written either

  // Searches: a dense query on a sparse field and the reverse, mmr.
  SearchRequest r;
  r.vector_name = "s";
  r.vector = {1, 2, 3, 4};
  EXPECT_EQ(c_->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector_name = "d";
  r.vector.clear();
  r.sparse_vector = SparseVector{{1}, {1}};
  EXPECT_EQ(c_->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector_name = "s";
  r.mmr = Mmr();
  EXPECT_EQ(c_->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.mmr.reset();
  r.sparse_vector = SparseVector{{1, 1}, {1, 1}};
  EXPECT_EQ(c_->Search(r).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(SparseTest, SparseOnlyCollection) {
  CollectionConfig cfg;
  cfg.sparse_vectors["text"];
  ASSERT_TRUE(db_->CreateCollection("only", cfg).ok());
  auto c = *db_->GetCollection("only");
  std::vector<Point> points(3);
  for (size_t i = 0; i < 3; ++i) {
    points[i].id = PointId::Num(i + 1);
    points[i].sparse_vectors["text"] = SparseVector{{uint32_t(i), 10}, {1.0f, float(i)}};
  }
  ASSERT_TRUE(c->Upsert(points).ok());
  SearchRequest r;
  r.vector_name = "text";
  r.sparse_vector = SparseVector{{10}, {2.0f}};
  r.limit = 5;
  auto hits = c->Search(r);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 3u);
  EXPECT_EQ((*hits)[0].id.num(), 3u);
  EXPECT_FLOAT_EQ((*hits)[0].score, 4.0f);
  EXPECT_EQ((*hits)[2].id.num(), 1u);  // holds dimension 10 with 0: shares it, scores 0
  auto info = c->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->points_count, 3u);
  c.reset();
  c_.reset();
  Open();
  auto again = *db_->GetCollection("only");
  hits = again->Search(r);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 3u);
}

TEST_F(SparseTest, HybridQueryFusesDenseAndSparse) {
  Fill();
  std::mt19937 rng(21);
  const SparseVector sq = RandomSparse(rng, 8);
  const std::vector<float> dq = {0.5f, -1.0f, 0.25f, 2.0f};
  QueryRequest q;
  q.limit = 10;
  QueryRequest dense, sparse;
  dense.vector_name = "d";
  dense.query.emplace();
  dense.query->nearest.vector = dq;
  dense.limit = 20;
  dense.params.exact = true;
  sparse.vector_name = "s";
  sparse.query.emplace();
  sparse.query->nearest.sparse = sq;
  sparse.limit = 20;
  q.prefetch = {dense, sparse};
  q.query.emplace();
  q.query->kind = QuerySpec::Kind::kFusion;
  auto got = c_->Query(q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // The reference: RRF (k = 2) of the two lists computed here.
  std::vector<std::pair<uint64_t, float>> dl;
  for (const auto& [id, v] : dense_) {
    float s = 0;
    for (size_t i = 0; i < 4; ++i) s += v[i] * dq[i];
    dl.emplace_back(id, s);
  }
  std::sort(dl.begin(), dl.end(), [](auto& a, auto& b) { return a.second > b.second; });
  dl.resize(20);
  const auto sl = Expected(s_, sq, 20, false);
  std::map<uint64_t, float> rrf;
  for (size_t i = 0; i < dl.size(); ++i) rrf[dl[i].first] += 1.0f / (2 + i);
  for (size_t i = 0; i < sl.size(); ++i) rrf[sl[i].first] += 1.0f / (2 + i);
  std::vector<std::pair<uint64_t, float>> want(rrf.begin(), rrf.end());
  std::sort(want.begin(), want.end(), [](auto& a, auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  want.resize(10);
  ASSERT_EQ(got->size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_NEAR((*got)[i].score, want[i].second, 1e-6f) << i;

  // nearest by a point id (its stored sparse vector), and recommend by
  // average_vector on the sparse field (one search by the combined vector).
  QueryRequest by_id;
  by_id.vector_name = "s";
  by_id.query.emplace();
  by_id.query->nearest.point = PointId::Num(4);
  by_id.limit = 5;
  auto near = c_->Query(by_id);
  ASSERT_TRUE(near.ok()) << near.status().ToString();
  SparseVector own;
  for (const auto& [d, w] : s_.at(4)) {
    own.indices.push_back(d);
    own.values.push_back(w);
  }
  auto want_near = Expected(s_, own, 6, false);
  std::erase_if(want_near, [](const auto& h) { return h.first == 4; });  // the example itself
  want_near.resize(5);
  ExpectHits(*near, want_near);

  QueryRequest rec;
  rec.vector_name = "s";
  rec.query.emplace();
  rec.query->kind = QuerySpec::Kind::kRecommend;
  rec.query->positive.push_back(VectorInput{{}, PointId::Num(4), std::nullopt});
  rec.query->positive.push_back(VectorInput{{}, PointId::Num(5), std::nullopt});
  rec.query->negative.push_back(VectorInput{{}, std::nullopt, sq});
  rec.limit = 5;
  auto recommended = c_->Query(rec);
  ASSERT_TRUE(recommended.ok()) << recommended.status().ToString();
  std::map<uint32_t, float> combined;
  for (const auto& [d, w] : s_.at(4)) combined[d] += w;
  for (const auto& [d, w] : s_.at(5)) combined[d] += w;
  for (size_t i = 0; i < sq.indices.size(); ++i) combined[sq.indices[i]] -= sq.values[i];
  SparseVector cv;
  for (const auto& [d, w] : combined) {
    if (w == 0) continue;
    cv.indices.push_back(d);
    cv.values.push_back(w);
  }
  auto want_rec = Expected(s_, cv, 7, false);
  std::erase_if(want_rec, [](const auto& h) { return h.first == 4 || h.first == 5; });
  want_rec.resize(5);
  ExpectHits(*recommended, want_rec);

  // mmr on a sparse field is refused.
  QueryRequest mmr = by_id;
  mmr.query->mmr = Mmr();
  EXPECT_EQ(c_->Query(mmr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qvec
