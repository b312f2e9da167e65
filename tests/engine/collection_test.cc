// Engine tests through the public API (include/qvec/): collections, writes,
// reads, filters, search, persistence and concurrency.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <thread>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

std::vector<float> RandomVector(std::mt19937& rng, size_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(dim);
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<Point> RandomPoints(size_t n, size_t dim, uint32_t seed, uint64_t first_id = 0) {
  std::mt19937 rng(seed);
  std::vector<Point> points(n);
  for (size_t i = 0; i < n; ++i) {
    points[i].id = PointId::Num(first_id + i);
    points[i].vector = RandomVector(rng, dim);
    points[i].payload = "{\"group\":" + std::to_string((first_id + i) % 100) +
                        ",\"price\":" + std::to_string(static_cast<double>(first_id + i) / 10) +
                        ",\"tags\":[\"t" + std::to_string((first_id + i) % 3) + "\"]}";
  }
  return points;
}

CollectionConfig Config(uint32_t dim, Distance d = Distance::kCosine) {
  CollectionConfig c;
  c.dimension = dim;
  c.distance = d;
  return c;
}

class CollectionTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }
  void Reopen() {
    db_.reset();
    auto db = Database::Open(DatabaseOptions(), dir_.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }
  std::shared_ptr<Collection> Make(const std::string& name, const CollectionConfig& c) {
    EXPECT_TRUE(db_->CreateCollection(name, c).ok());
    auto coll = db_->GetCollection(name);
    EXPECT_TRUE(coll.ok());
    return *coll;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
};

TEST_F(CollectionTest, CreateListDrop) {
  EXPECT_TRUE(db_->ListCollections().empty());
  ASSERT_TRUE(db_->CreateCollection("b", Config(4)).ok());
  ASSERT_TRUE(db_->CreateCollection("a", Config(4)).ok());
  EXPECT_EQ(db_->CreateCollection("a", Config(4)).code(), StatusCode::kAlreadyExists);
  EXPECT_THAT(db_->ListCollections(), ::testing::ElementsAre("a", "b"));
  ASSERT_TRUE(db_->DropCollection("a").ok());
  EXPECT_EQ(db_->DropCollection("a").code(), StatusCode::kNotFound);
  Reopen();
  EXPECT_THAT(db_->ListCollections(), ::testing::ElementsAre("b"));
}

TEST_F(CollectionTest, RejectsBadNamesAndConfigs) {
  const std::vector<std::string> names = {
      "", ".", "..", "a/b", "a\\b", "x..y", "a\x01", std::string(256, 'n'), "\xff\xfe"};
  for (const std::string& name : names) {
    EXPECT_EQ(db_->CreateCollection(name, Config(4)).code(), StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(db_->CreateCollection("z", Config(0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->CreateCollection("z", Config(65537)).code(), StatusCode::kInvalidArgument);
  CollectionConfig c = Config(4);
  c.quantization.quantile = 0.2f;
  EXPECT_EQ(db_->CreateCollection("z", c).code(), StatusCode::kInvalidArgument);
  DatabaseOptions bad;
  bad.block_cache_bytes = 10;
  EXPECT_EQ(Database::Open(bad, dir_.Sub("other")).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CollectionTest, UpsertSearchGet) {
  auto c = Make("c", Config(32));
  auto points = RandomPoints(500, 32, 1);
  ASSERT_TRUE(c->Upsert(points).ok());
  EXPECT_EQ(*c->Count(nullptr), 500u);
  SearchRequest r;
  r.vector = points[42].vector;
  r.limit = 5;
  r.with_payload = true;
  r.with_vector = true;
  auto hits = c->Search(r);
  ASSERT_TRUE(hits.ok()) << hits.status().ToString();
  ASSERT_EQ(hits->size(), 5u);
  EXPECT_EQ((*hits)[0].id, PointId::Num(42));
  EXPECT_NEAR((*hits)[0].score, 1.0f, 0.01f);
  ASSERT_TRUE((*hits)[0].payload.has_value());
  EXPECT_THAT(*(*hits)[0].payload, ::testing::HasSubstr("\"group\":42"));
  // Cosine vectors are stored normalized.
  double norm = 0;
  for (float x : *(*hits)[0].vector) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-4);
  for (size_t i = 1; i < hits->size(); ++i) EXPECT_GE((*hits)[i - 1].score, (*hits)[i].score);

  std::vector<PointId> ids = {PointId::Num(3), PointId::Num(99999), PointId::Num(1)};
  auto got = c->Get(ids, true, false);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].id, PointId::Num(3));
  EXPECT_EQ((*got)[1].id, PointId::Num(1));
  EXPECT_FALSE((*got)[0].vector.has_value());
}

TEST_F(CollectionTest, SearchBatchEqualsSingleSearches) {
  auto c = Make("c", Config(24, Distance::kDot));
  ASSERT_TRUE(c->Upsert(RandomPoints(3000, 24, 21)).ok());
  std::mt19937 rng(22);
  for (bool rescore : {false, true}) {
    std::vector<SearchRequest> requests(17);
    for (auto& r : requests) {
      r.vector = RandomVector(rng, 24);
      r.limit = 7;
      r.offset = 2;
      r.params.rescore = rescore;
    }
    auto batch = c->SearchBatch(requests);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    ASSERT_EQ(batch->size(), requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      auto one = c->Search(requests[i]);
      ASSERT_TRUE(one.ok());
      ASSERT_EQ((*batch)[i].size(), one->size());
      for (size_t j = 0; j < one->size(); ++j) {
        EXPECT_EQ((*batch)[i][j].id, (*one)[j].id);
        EXPECT_NEAR((*batch)[i][j].score, (*one)[j].score, 1e-4);
      }
    }
  }
  auto info = c->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->quality.sample_size, 0u);
  EXPECT_GT(info->quality.sqnr_db, 20.0);
  EXPECT_GT(info->memory_bytes, 3000u * 24);
}

TEST_F(CollectionTest, RejectedBatchWritesNothing) {
  auto c = Make("c", Config(8));
  auto points = RandomPoints(10, 8, 2);
  points[7].vector[3] = std::nanf("");
  EXPECT_EQ(c->Upsert(points).code(), StatusCode::kInvalidArgument);
  points[7].vector[3] = 1;
  points[8].vector.pop_back();
  EXPECT_EQ(c->Upsert(points).code(), StatusCode::kInvalidArgument);
  points[8].vector.push_back(1);
  points[9].vector.assign(8, 0.0f);  // zero vector under Cosine
  EXPECT_EQ(c->Upsert(points).code(), StatusCode::kInvalidArgument);
  points[9].vector.assign(8, 1.0f);
  points[2].payload = "[1,2]";
  EXPECT_EQ(c->Upsert(points).code(), StatusCode::kInvalidArgument);
  points[2].payload = "{\"a\":";
  EXPECT_EQ(c->Upsert(points).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*c->Count(nullptr), 0u);
  points[2].payload = "{}";
  EXPECT_TRUE(c->Upsert(points).ok());
  EXPECT_EQ(*c->Count(nullptr), 10u);
}

TEST_F(CollectionTest, LastOccurrenceInBatchWinsAndReplaceIsAtomic) {
  auto c = Make("c", Config(4, Distance::kDot));
  std::vector<Point> points(3);
  points[0] = {PointId::Num(5), {1, 0, 0, 0}, "{\"v\":1}", {}};
  points[1] = {PointId::Num(6), {0, 1, 0, 0}, "", {}};
  points[2] = {PointId::Num(5), {0, 0, 1, 0}, "{\"v\":2}", {}};
  ASSERT_TRUE(c->Upsert(points).ok());
  EXPECT_EQ(*c->Count(nullptr), 2u);
  std::vector<PointId> ids = {PointId::Num(5)};
  auto got = c->Get(ids, true, true);
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(*(*got)[0].payload, "{\"v\":2}");
  EXPECT_THAT(*(*got)[0].vector, ::testing::ElementsAre(0, 0, 1, 0));
  // Replacing moves the point: it is found by its new vector only.
  SearchRequest r;
  r.vector = {0, 0, 1, 0};
  r.limit = 1;
  EXPECT_EQ((*c->Search(r))[0].id, PointId::Num(5));
  r.vector = {1, 0, 0, 0};
  EXPECT_NE((*c->Search(r))[0].id, PointId::Num(5));
}

TEST_F(CollectionTest, UuidIdsAndScrollOrder) {
  auto c = Make("c", Config(4));
  std::vector<Point> points;
  auto uuid = PointId::ParseUuid("5C56C793-69F3-4FBF-87E6-C4BF54C28C26");
  ASSERT_TRUE(uuid.ok());
  EXPECT_EQ(uuid->ToString(), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_FALSE(PointId::ParseUuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c2").ok());
  EXPECT_FALSE(PointId::ParseUuid("zc56c793-69f3-4fbf-87e6-c4bf54c28c26").ok());
  points.push_back({*uuid, {1, 2, 3, 4}, "", {}});
  for (uint64_t i : {30, 10, 20}) points.push_back({PointId::Num(i), {1, 1, i * 1.0f, 1}, "", {}});
  ASSERT_TRUE(c->Upsert(points).ok());
  ScrollRequest s;
  s.limit = 2;
  auto page = c->Scroll(s);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->points.size(), 2u);
  EXPECT_EQ(page->points[0].id, PointId::Num(10));
  EXPECT_EQ(page->points[1].id, PointId::Num(20));
  ASSERT_TRUE(page->next_page_offset.has_value());
  s.offset = page->next_page_offset;
  page = c->Scroll(s);
  ASSERT_EQ(page->points.size(), 2u);
  EXPECT_EQ(page->points[0].id, PointId::Num(30));
  EXPECT_EQ(page->points[1].id, *uuid);
  EXPECT_FALSE(page->next_page_offset.has_value());
  std::vector<PointId> del = {*uuid};
  EXPECT_EQ(*c->Delete(del), 1u);
  EXPECT_EQ(*c->Count(nullptr), 3u);
}

Condition Match(const std::string& key, MatchValue v) {
  Condition c;
  c.kind = Condition::Kind::kMatchValue;
  c.key = key;
  c.value = std::move(v);
  return c;
}

TEST_F(CollectionTest, Filters) {
  auto c = Make("c", Config(16));
  ASSERT_TRUE(c->Upsert(RandomPoints(1000, 16, 3)).ok());
  Filter f;
  f.must.push_back(Match("group", int64_t{7}));
  EXPECT_EQ(*c->Count(&f), 10u);
  Condition range;
  range.kind = Condition::Kind::kRange;
  range.key = "price";
  range.gte = 50.0;
  range.lt = 60.0;
  Filter fr;
  fr.must.push_back(range);
  EXPECT_EQ(*c->Count(&fr), 100u);  // ids 500..599
  Filter fany;
  Condition any;
  any.kind = Condition::Kind::kMatchAny;
  any.key = "tags";
  any.any = {std::string("t1"), std::string("t2")};
  fany.must.push_back(any);
  EXPECT_EQ(*c->Count(&fany), 666u);
  Filter fnot;
  fnot.must_not.push_back(any);
  EXPECT_EQ(*c->Count(&fnot), 334u);
  Filter fshould;
  fshould.should.push_back(Match("group", int64_t{1}));
  fshould.should.push_back(Match("group", int64_t{2}));
  EXPECT_EQ(*c->Count(&fshould), 20u);
  Filter fid;
  Condition has;
  has.kind = Condition::Kind::kHasId;
  has.ids = {PointId::Num(1), PointId::Num(2), PointId::Num(5000)};
  fid.must.push_back(has);
  EXPECT_EQ(*c->Count(&fid), 2u);
  Filter nested;
  Condition n;
  n.kind = Condition::Kind::kNested;
  n.filter = std::make_shared<Filter>(fshould);
  nested.must.push_back(n);
  nested.must.push_back(range);
  EXPECT_EQ(*c->Count(&nested), 2u);  // 501, 502
  Filter missing;
  missing.must.push_back(Match("nope", std::string("x")));
  EXPECT_EQ(*c->Count(&missing), 0u);

  // Filtered search at 1% selectivity still returns k results, all matching.
  SearchRequest r;
  std::mt19937 rng(9);
  r.vector = RandomVector(rng, 16);
  r.limit = 10;
  r.filter = f;
  r.with_payload = true;
  auto hits = c->Search(r);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 10u);
  for (const auto& h : *hits) EXPECT_EQ(h.id.num() % 100, 7u);

  // Writes after indexing keep the field index current.
  std::vector<Point> update = {{PointId::Num(7), RandomVector(rng, 16), "{\"group\":8}", {}}};
  ASSERT_TRUE(c->Upsert(update).ok());
  EXPECT_EQ(*c->Count(&f), 9u);
  std::vector<PointId> ids = {PointId::Num(107)};
  ASSERT_TRUE(c->SetPayload(ids, "{\"group\":9}", false).ok());
  EXPECT_EQ(*c->Count(&f), 8u);
  auto got = c->Get(ids, true, false);
  EXPECT_THAT(*(*got)[0].payload, ::testing::HasSubstr("\"price\":10.7"));
  EXPECT_THAT(*(*got)[0].payload, ::testing::HasSubstr("\"group\":9"));
  EXPECT_EQ(*c->DeleteByFilter(fr), 100u);
  EXPECT_EQ(*c->Count(nullptr), 900u);
}

TEST_F(CollectionTest, ReopenGivesIdenticalResults) {
  std::vector<std::vector<ScoredPoint>> before;
  std::mt19937 rng(11);
  std::vector<SearchRequest> requests(20);
  for (auto& r : requests) {
    r.vector = RandomVector(rng, 24);
    r.limit = 10;
  }
  {
    auto c = Make("c", Config(24, Distance::kEuclid));
    ASSERT_TRUE(c->Upsert(RandomPoints(2000, 24, 4)).ok());
    std::vector<PointId> del = {PointId::Num(5), PointId::Num(6)};
    ASSERT_TRUE(c->Delete(del).ok());
    ASSERT_TRUE(c->Upsert(RandomPoints(10, 24, 5, 5000)).ok());
    for (const auto& r : requests) before.push_back(*c->Search(r));
  }
  Reopen();
  auto c = db_->GetCollection("c");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*(*c)->Count(nullptr), 2008u);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto after = (*c)->Search(requests[i]);
    ASSERT_TRUE(after.ok());
    ASSERT_EQ(after->size(), before[i].size());
    for (size_t j = 0; j < after->size(); ++j) {
      EXPECT_EQ((*after)[j].id, before[i][j].id);
      EXPECT_FLOAT_EQ((*after)[j].score, before[i][j].score);
    }
  }
}

TEST_F(CollectionTest, CalibratedCollectionPersistsItsCalibration) {
  CollectionConfig cfg = Config(16);
  cfg.quantization.granularity = QuantizationOptions::Granularity::kPerDimension;
  cfg.quantization.quantile = 0.99f;
  std::mt19937 rng(12);
  SearchRequest r;
  r.vector = RandomVector(rng, 16);
  std::vector<ScoredPoint> before;
  {
    auto c = Make("cal", cfg);
    SearchRequest empty = r;
    EXPECT_TRUE(c->Search(empty)->empty());
    ASSERT_TRUE(c->Upsert(RandomPoints(300, 16, 6)).ok());
    ASSERT_TRUE(c->Upsert(RandomPoints(300, 16, 7, 300)).ok());
    before = *c->Search(r);
    ASSERT_EQ(before.size(), 10u);
  }
  Reopen();
  auto after = (*db_->GetCollection("cal"))->Search(r);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), before.size());
  for (size_t j = 0; j < after->size(); ++j) EXPECT_EQ((*after)[j].id, before[j].id);
}

TEST_F(CollectionTest, RescoreAndExactMatchFloatOrder) {
  auto c = Make("c", Config(64));
  auto points = RandomPoints(3000, 64, 8);
  ASSERT_TRUE(c->Upsert(points).ok());
  std::mt19937 rng(13);
  SearchRequest r;
  r.vector = RandomVector(rng, 64);
  r.limit = 10;
  r.params.ignore_quantization = true;
  auto exact = c->Search(r);
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  r.params.ignore_quantization = false;
  r.params.oversampling = 4;
  auto rescored = c->Search(r);
  ASSERT_TRUE(rescored.ok()) << rescored.status().ToString();
  ASSERT_EQ(rescored->size(), 10u);
  size_t same = 0;
  for (size_t i = 0; i < 10; ++i) {
    for (size_t j = 0; j < 10; ++j) same += (*exact)[i].id == (*rescored)[j].id;
  }
  EXPECT_GE(same, 9u);
  EXPECT_NEAR((*exact)[0].score, (*rescored)[0].score, 1e-5);
}

TEST_F(CollectionTest, SearchValidation) {
  auto c = Make("c", Config(4));
  SearchRequest r;
  r.vector = {1, 2, 3};
  EXPECT_EQ(c->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector = {1, 2, 3, INFINITY};
  EXPECT_EQ(c->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector = {1, 2, 3, 4};
  r.limit = 0;
  EXPECT_EQ(c->Search(r).status().code(), StatusCode::kOutOfRange);
  r.limit = 10001;
  EXPECT_EQ(c->Search(r).status().code(), StatusCode::kOutOfRange);
  r.limit = 3;
  EXPECT_TRUE(c->Search(r)->empty());
}

TEST_F(CollectionTest, DroppedCollectionAnswersNotFound) {
  auto c = Make("c", Config(4));
  ASSERT_TRUE(db_->DropCollection("c").ok());
  std::vector<Point> p = {{PointId::Num(1), {1, 2, 3, 4}, "", {}}};
  EXPECT_EQ(c->Upsert(p).code(), StatusCode::kNotFound);
  // A new collection of the same name starts empty.
  auto c2 = Make("c", Config(4));
  EXPECT_EQ(*c2->Count(nullptr), 0u);
}

TEST_F(CollectionTest, SnapshotOpensWithTheData) {
  auto c = Make("c", Config(8));
  ASSERT_TRUE(c->Upsert(RandomPoints(100, 8, 9)).ok());
  ASSERT_TRUE(db_->Snapshot(dir_.Sub("snap")).ok());
  EXPECT_FALSE(db_->Snapshot(dir_.Sub("snap")).ok());
  auto snap = Database::Open(DatabaseOptions(), dir_.Sub("snap"));
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(*(*(*snap)->GetCollection("c"))->Count(nullptr), 100u);
}

// A collection snapshot file recovers into a new collection and in place,
// with identical search answers (IVF index state included), and the result
// survives a reopen; bad files leave everything as it was.
TEST_F(CollectionTest, CollectionSnapshotRecoversIntoNewAndInPlace) {
  CollectionConfig cfg = Config(16, Distance::kEuclid);
  cfg.index.ivf_threshold = 500;
  cfg.index.nlist = 16;
  auto c = Make("c", cfg);
  ASSERT_TRUE(c->Upsert(RandomPoints(3000, 16, 21)).ok());
  ASSERT_TRUE(c->Optimize().ok());
  ASSERT_TRUE(c->CreatePayloadIndex("group", PayloadSchemaType::kInteger).ok());
  std::mt19937 rng(5);
  std::vector<SearchRequest> requests(10);
  for (auto& r : requests) {
    r.vector = RandomVector(rng, 16);
    r.limit = 10;
  }
  std::vector<std::vector<ScoredPoint>> before;
  for (const auto& r : requests) before.push_back(*c->Search(r));
  auto same_answers = [&](Collection& x) {
    for (size_t i = 0; i < requests.size(); ++i) {
      auto got = x.Search(requests[i]);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), before[i].size());
      for (size_t j = 0; j < got->size(); ++j) {
        EXPECT_EQ((*got)[j].id, before[i][j].id);
        EXPECT_FLOAT_EQ((*got)[j].score, before[i][j].score);
      }
    }
  };
  auto snap = db_->SnapshotCollection("c", dir_.Sub("c.snapshot"));
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  EXPECT_EQ(snap->sha256.size(), 64u);
  EXPECT_EQ(db_->SnapshotCollection("nope", dir_.Sub("x.snapshot")).status().code(),
            StatusCode::kNotFound);

  // Into a new collection.
  auto into_new = db_->RecoverCollection("copy", dir_.Sub("c.snapshot"), snap->sha256);
  ASSERT_TRUE(into_new.ok()) << into_new.status().ToString();
  auto copy = *db_->GetCollection("copy");
  EXPECT_EQ(*copy->Count(nullptr), 3000u);
  EXPECT_EQ(copy->config().index.ivf_threshold, 500u);
  same_answers(*copy);

  // In place, after changes; the old handle answers NotFound.
  std::vector<PointId> del = {PointId::Num(1), PointId::Num(2)};
  ASSERT_TRUE(c->Delete(del).ok());
  ASSERT_TRUE(db_->RecoverCollection("c", dir_.Sub("c.snapshot"), "").ok());
  EXPECT_EQ(c->Upsert(RandomPoints(1, 16, 1)).code(), StatusCode::kNotFound);
  auto c2 = *db_->GetCollection("c");
  EXPECT_EQ(*c2->Count(nullptr), 3000u);
  same_answers(*c2);

  // Bad files and checksums change nothing.
  {
    std::ofstream(dir_.Sub("bad.snapshot"), std::ios::binary) << "QVECSNAP garbage";
  }
  EXPECT_EQ(db_->RecoverCollection("c", dir_.Sub("bad.snapshot"), "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->RecoverCollection("c", dir_.Sub("c.snapshot"), std::string(64, '0'))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->RecoverCollection("bad/name", dir_.Sub("c.snapshot"), "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(db_->GetCollection("bad/name").ok());
  same_answers(**db_->GetCollection("c"));

  // Everything survives a reopen.
  c.reset();
  c2.reset();
  copy.reset();
  Reopen();
  EXPECT_EQ(db_->ListCollections(), (std::vector<std::string>{"c", "copy"}));
  same_answers(**db_->GetCollection("c"));
  same_answers(**db_->GetCollection("copy"));
  Filter f;
  Condition cond;
  cond.kind = Condition::Kind::kMatchValue;
  cond.key = "group";
  cond.value = int64_t{7};
  f.must.push_back(cond);
  EXPECT_EQ(*(*db_->GetCollection("copy"))->Count(&f), 30u);
}

// Waits (up to 60 s) until no field of `c` has a rebuild pending or running.
bool WaitRebuilt(Collection& c) {
  for (int i = 0; i < 600; ++i) {
    auto info = c.Info();
    if (!info.ok()) return false;
    bool busy = false;
    for (const auto& [name, f] : info->fields) {
      busy = busy || f.index.rebuild_pending || f.index.state == IndexInfo::State::kTraining;
    }
    if (!busy) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Database::UpdateCollection: quantization changes re-encode every vector in
// the background (the answers stay right meanwhile), index options take
// effect (IVF on and off, nlist), the change is persisted, and a restart
// before the rebuild loads the old codes and rebuilds them.
TEST_F(CollectionTest, UpdateCollectionChangesQuantizationAndIndexOptions) {
  auto c = Make("c", Config(16, Distance::kEuclid));
  ASSERT_TRUE(c->Upsert(RandomPoints(3000, 16, 31)).ok());
  std::mt19937 rng(7);
  std::vector<SearchRequest> requests(10);
  for (auto& r : requests) {
    r.vector = RandomVector(rng, 16);
    r.limit = 10;
    r.params.exact = true;
  }
  std::vector<std::vector<PointId>> before;
  for (const auto& r : requests) {
    std::vector<PointId> ids;
    auto hits = c->Search(r);  // (a temporary's * would dangle in the loop)
    for (const auto& p : *hits) ids.push_back(p.id);
    before.push_back(ids);
  }
  // The int8 scan picks the candidates the originals rescore: other codes
  // may swap a neighbour at the edge of the top 10, hardly more.
  auto same_answers = [&](Collection& x) {
    size_t found = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      auto got = x.Search(requests[i]);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), 10u);
      EXPECT_EQ((*got)[0].id, before[i][0]) << "query " << i;
      for (const auto& p : *got) {
        found += std::count(before[i].begin(), before[i].end(), p.id);
      }
    }
    EXPECT_GE(found, 95u) << "recall@10 against the first answers";
  };

  CollectionConfig next = c->config();
  next.quantization.granularity = QuantizationOptions::Granularity::kPerDimension;
  next.quantization.quantile = 0.99f;
  ASSERT_TRUE(db_->UpdateCollection("c", next).ok());
  EXPECT_EQ(c->config().quantization.quantile, 0.99f);
  same_answers(*c);  // during the rebuild too
  ASSERT_TRUE(WaitRebuilt(*c));
  auto info = c->Info();
  const IndexInfo& idx = info->fields.at("").index;
  EXPECT_EQ(idx.codes_quantization.granularity, QuantizationOptions::Granularity::kPerDimension);
  EXPECT_EQ(idx.codes_quantization.quantile, 0.99f);
  same_answers(*c);

  // Index options: IVF with 16 lists past a lowered threshold, then flat again.
  next = c->config();
  next.index.ivf_threshold = 1000;
  next.index.nlist = 16;
  ASSERT_TRUE(db_->UpdateCollection("c", next).ok());
  ASSERT_TRUE(WaitRebuilt(*c));
  EXPECT_EQ(c->Info()->fields.at("").index.kind, "ivf");
  EXPECT_EQ(c->Info()->fields.at("").index.nlist, 16u);
  next.index.nlist = 32;
  ASSERT_TRUE(db_->UpdateCollection("c", next).ok());
  ASSERT_TRUE(WaitRebuilt(*c));
  EXPECT_EQ(c->Info()->fields.at("").index.nlist, 32u);
  same_answers(*c);
  next.index.ivf_threshold = 100000;
  ASSERT_TRUE(db_->UpdateCollection("c", next).ok());
  ASSERT_TRUE(WaitRebuilt(*c));
  EXPECT_EQ(c->Info()->fields.at("").index.kind, "flat");
  same_answers(*c);

  // Only quantization and index options may change.
  CollectionConfig bad = c->config();
  bad.dimension = 17;
  EXPECT_EQ(db_->UpdateCollection("c", bad).code(), StatusCode::kInvalidArgument);
  bad = c->config();
  bad.distance = Distance::kDot;
  EXPECT_EQ(db_->UpdateCollection("c", bad).code(), StatusCode::kInvalidArgument);
  bad = c->config();
  bad.quantization.quantile = 0.2f;
  EXPECT_EQ(db_->UpdateCollection("c", bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(db_->UpdateCollection("nope", next).code(), StatusCode::kNotFound);
  EXPECT_EQ(c->config().quantization.quantile, 0.99f);

  // Persisted; then a change whose rebuild a restart interrupts.
  c.reset();
  db_.reset();
  DatabaseOptions no_builds;
  no_builds.background_indexing = false;
  {
    auto db = Database::Open(no_builds, dir_.path());
    ASSERT_TRUE(db.ok());
    auto c2 = *(*db)->GetCollection("c");
    EXPECT_EQ(c2->config().quantization.quantile, 0.99f);
    EXPECT_EQ(c2->config().index.ivf_threshold, 100000u);
    EXPECT_FALSE(c2->Info()->fields.at("").index.rebuild_pending);
    next = c2->config();
    next.quantization.type = QuantizationOptions::Type::kUint8;
    ASSERT_TRUE((*db)->UpdateCollection("c", next).ok());
    EXPECT_TRUE(c2->Info()->fields.at("").index.rebuild_pending);
  }
  {
    auto db = Database::Open(no_builds, dir_.path());
    ASSERT_TRUE(db.ok());
    auto c3 = *(*db)->GetCollection("c");
    auto i3 = c3->Info();
    EXPECT_TRUE(i3->fields.at("").index.rebuild_pending);
    EXPECT_EQ(i3->fields.at("").index.codes_quantization.type, QuantizationOptions::Type::kInt8);
    same_answers(*c3);  // the old codes, loaded with their own quantization
    ASSERT_TRUE(c3->Optimize().ok());
    i3 = c3->Info();
    EXPECT_FALSE(i3->fields.at("").index.rebuild_pending);
    EXPECT_EQ(i3->fields.at("").index.codes_quantization.type, QuantizationOptions::Type::kUint8);
    same_answers(*c3);
  }
  Reopen();
  auto c4 = *db_->GetCollection("c");
  EXPECT_FALSE(c4->Info()->fields.at("").index.rebuild_pending);
  EXPECT_EQ(c4->Info()->fields.at("").index.codes_quantization.type,
            QuantizationOptions::Type::kUint8);
  same_answers(*c4);
}

// An empty calibrated field switches quantization at once (nothing to
// re-encode) and calibrates on its first vectors with the new settings.
TEST_F(CollectionTest, UpdateCollectionOfAnEmptyCollection) {
  auto c = Make("e", Config(8));
  CollectionConfig next = c->config();
  next.quantization.granularity = QuantizationOptions::Granularity::kPerCollection;
  ASSERT_TRUE(db_->UpdateCollection("e", next).ok());
  EXPECT_FALSE(c->Info()->fields.at("").index.rebuild_pending);
  ASSERT_TRUE(c->Upsert(RandomPoints(100, 8, 3)).ok());
  EXPECT_EQ(c->Info()->fields.at("").index.codes_quantization.granularity,
            QuantizationOptions::Granularity::kPerCollection);
  SearchRequest r;
  r.vector = RandomPoints(1, 8, 3)[0].vector;
  r.limit = 1;
  EXPECT_EQ((*c->Search(r))[0].id, PointId::Num(0));
  c.reset();
  Reopen();
  auto again = *db_->GetCollection("e");
  EXPECT_EQ(again->Info()->fields.at("").index.codes_quantization.granularity,
            QuantizationOptions::Granularity::kPerCollection);
  EXPECT_EQ((*again->Search(r))[0].id, PointId::Num(0));
}

TEST_F(CollectionTest, ConcurrentReadersAndWriters) {
  auto c = Make("c", Config(16));
  ASSERT_TRUE(c->Upsert(RandomPoints(1000, 16, 10)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        auto pts = RandomPoints(20, 16, 100 + w * 1000 + i, 1000 + w * 100000 + i * 20);
        if (!c->Upsert(pts).ok()) ++errors;
        std::vector<PointId> del = {PointId::Num(w * 500 + i)};
        if (!c->Delete(del).ok()) ++errors;
      }
    });
  }
  for (int rdr = 0; rdr < 3; ++rdr) {
    threads.emplace_back([&, rdr] {
      std::mt19937 rng(rdr);
      Filter f;
      f.must.push_back(Match("group", int64_t{rdr}));
      while (!stop.load()) {
        SearchRequest r;
        r.vector = RandomVector(rng, 16);
        r.limit = 5;
        if (rdr == 1) r.filter = f;
        auto hits = c->Search(r);
        if (!hits.ok() || hits->size() != 5) ++errors;
        if (!c->Count(&f).ok()) ++errors;
      }
    });
  }
  for (int w = 0; w < 2; ++w) threads[w].join();
  stop = true;
  for (size_t t = 2; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(*c->Count(nullptr), 1000u + 2 * 50 * 20 - 100);
}

// A child process upserts batches and reports each acknowledged batch on a
// pipe; the parent SIGKILLs it at a random moment, reopens and checks that
// every acknowledged batch is present whole.
TEST(CrashTest, NoAcknowledgedWriteIsLost) {
  TempDir dir;
  std::mt19937 rng(2024);
  int acknowledged_total = 0;
  for (int iteration = 0; iteration < 8; ++iteration) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      auto db = Database::Open(DatabaseOptions(), dir.path());
      if (!db.ok()) _exit(2);
      Status s = (*db)->CreateCollection("c", Config(8));
      if (!s.ok() && s.code() != StatusCode::kAlreadyExists) _exit(3);
      auto c = *(*db)->GetCollection("c");
      for (int batch = 0;; ++batch) {
        uint64_t first = static_cast<uint64_t>(iteration) * 1000000 + batch * 10;
        if (!c->Upsert(RandomPoints(10, 8, batch, first)).ok()) _exit(4);
        int32_t b = batch;
        if (write(fds[1], &b, sizeof(b)) != sizeof(b)) _exit(5);
      }
    }
    close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 150));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    int last = -1;
    int32_t b;
    while (read(fds[0], &b, sizeof(b)) == sizeof(b)) last = b;
    close(fds[0]);
    auto db = Database::Open(DatabaseOptions(), dir.path());
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto c = (*db)->GetCollection("c");
    if (last < 0 && !c.ok()) continue;
    ASSERT_TRUE(c.ok());
    std::vector<PointId> ids;
    for (int batch = 0; batch <= last; ++batch) {
      for (int i = 0; i < 10; ++i) {
        ids.push_back(PointId::Num(static_cast<uint64_t>(iteration) * 1000000 + batch * 10 + i));
      }
    }
    auto got = (*c)->Get(ids, true, true);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->size(), ids.size()) << "iteration " << iteration;
    // Batches are atomic: the count is a multiple of the batch size.
    EXPECT_EQ(*(*c)->Count(nullptr) % 10, 0u);
    acknowledged_total += last + 1;
  }
  EXPECT_GT(acknowledged_total, 0);
}

}  // namespace
}  // namespace qvec

namespace qvec {
namespace {

TEST(VersionTest, IsTheBuildsProjectVersion) {
  EXPECT_EQ(Version(), QVEC_VERSION_STRING);
  EXPECT_EQ(std::string(Version()), std::to_string(QVEC_VERSION_MAJOR) + "." +
                                        std::to_string(QVEC_VERSION_MINOR) + "." +
                                        std::to_string(QVEC_VERSION_PATCH));
}

}  // namespace
}  // namespace qvec
