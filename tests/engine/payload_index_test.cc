// Declared payload indexes: every filter answers exactly as without the
// index (count, scroll pages, filtered search on flat and IVF, delete and
// update by filter), the index follows writes and deletes, survives a
// reopen, reports its points, and can be dropped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

constexpr size_t kPoints = 3000;
constexpr uint32_t kDim = 8;

Condition Match(const std::string& key, MatchValue v) {
  Condition c;
  c.kind = Condition::Kind::kMatchValue;
  c.key = key;
  c.value = std::move(v);
  return c;
}

Condition Range(const std::string& key, std::optional<double> gte, std::optional<double> lt) {
  Condition c;
  c.kind = Condition::Kind::kRange;
  c.key = key;
  c.gte = gte;
  c.lt = lt;
  return c;
}

// The filters compared with and without indexes.
std::vector<Filter> Filters() {
  std::vector<Filter> out;
  auto add = [&](std::vector<Condition> must, std::vector<Condition> must_not = {}) {
    Filter f;
    f.must = std::move(must);
    f.must_not = std::move(must_not);
    out.push_back(std::move(f));
  };
  add({Match("color", std::string("c3"))});
  add({Match("color", std::string("c3")), Range("n", 100, 2000)});
  add({Range("n", 250, 260)});
  add({Range("score", -0.5, 0.25)});
  add({Match("flag", true), Range("n", std::nullopt, 300)});
  add({Match("n", int64_t{42})});
  add({Match("tags", std::string("t1"))}, {Match("color", std::string("c0"))});
  Condition any;
  any.kind = Condition::Kind::kMatchAny;
  any.key = "color";
  any.any = {std::string("c1"), std::string("c7"), std::string("nope")};
  add({any});
  Condition nested;
  nested.kind = Condition::Kind::kNested;
  nested.filter = std::make_shared<Filter>(out[0]);
  add({nested, Range("n", 0, 1500)});
  add({Match("color", std::string("absent"))});
  // Geo conditions (a geo index on "loc"): radius, boxes (one across the
  // antimeridian), a polygon with a hole, and with another condition.
  Condition radius;
  radius.kind = Condition::Kind::kGeoRadius;
  radius.key = "loc";
  radius.geo = {GeoPoint{10, 20}};
  radius.geo_radius = 2'000'000;
  add({radius});
  add({radius, Match("color", std::string("c3"))});
  Condition box;
  box.kind = Condition::Kind::kGeoBoundingBox;
  box.key = "loc";
  box.geo = {GeoPoint{-30, 40}, GeoPoint{30, -10}};
  add({box});
  Condition wrap = box;
  wrap.geo = {GeoPoint{170, 30}, GeoPoint{-170, -30}};
  add({wrap}, {Match("flag", true)});
  Condition polygon;
  polygon.kind = Condition::Kind::kGeoPolygon;
  polygon.key = "loc";
  polygon.geo = {GeoPoint{-60, -40}, GeoPoint{60, -40}, GeoPoint{0, 60}, GeoPoint{-60, -40}};
  polygon.geo_holes = {{GeoPoint{-10, -10}, GeoPoint{10, -10}, GeoPoint{0, 10}, GeoPoint{-10, -10}}};
  add({polygon});
  return out;
}

class PayloadIndexTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    Open();
    CollectionConfig config;
    config.dimension = kDim;
    config.distance = Distance::kCosine;
    if (GetParam()) {  // IVF
      config.index.ivf_threshold = 1000;
      config.index.nlist = 16;
    }
    ASSERT_TRUE(db_->CreateCollection("indexed", config).ok());
    ASSERT_TRUE(db_->CreateCollection("plain", config).ok());
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<Point> points(kPoints);
    for (size_t i = 0; i < kPoints; ++i) {
      points[i].id = i % 3 == 0 ? PointId::Num(i) : PointId::Num(100000 + i * 7);
      points[i].vector.resize(kDim);
      for (float& x : points[i].vector) x = g(rng);
      const double score = std::round(g(rng) * 1000) / 1000;
      auto geo = [&] {
        return "{\"lon\":" + std::to_string(static_cast<double>(rng() % 36000) / 100 - 180) +
               ",\"lat\":" + std::to_string(static_cast<double>(rng() % 16000) / 100 - 80) + "}";
      };
      const std::string loc = i % 5 == 0 ? "[" + geo() + "," + geo() + "]" : geo();
      points[i].payload = "{\"color\":\"c" + std::to_string(rng() % 10) +
                          "\",\"n\":" + std::to_string(i % 1000) +
                          ",\"score\":" + std::to_string(score) +
                          ",\"flag\":" + (rng() % 2 ? "true" : "false") +
                          ",\"tags\":[\"t" + std::to_string(rng() % 4) + "\",\"t" +
                          std::to_string(rng() % 4) + "\"],\"loc\":" + loc + "}";
    }
    for (const char* name : {"indexed", "plain"}) {
      auto c = *db_->GetCollection(name);
      for (size_t start = 0; start < kPoints; start += 500) {
        ASSERT_TRUE(c->Upsert(std::span<const Point>(points).subspan(start, 500)).ok());
      }
      if (GetParam()) {
        ASSERT_TRUE(c->Optimize().ok());
      }
    }
    auto indexed = *db_->GetCollection("indexed");
    ASSERT_TRUE(indexed->CreatePayloadIndex("color", PayloadSchemaType::kKeyword).ok());
    ASSERT_TRUE(indexed->CreatePayloadIndex("n", PayloadSchemaType::kInteger).ok());
    ASSERT_TRUE(indexed->CreatePayloadIndex("score", PayloadSchemaType::kFloat).ok());
    ASSERT_TRUE(indexed->CreatePayloadIndex("flag", PayloadSchemaType::kBool).ok());
    ASSERT_TRUE(indexed->CreatePayloadIndex("tags", PayloadSchemaType::kKeyword).ok());
    ASSERT_TRUE(indexed->CreatePayloadIndex("loc", PayloadSchemaType::kGeo).ok());
    query_.resize(kDim);
    for (float& x : query_) x = g(rng);
  }

  void Open() {
    db_.reset();
    auto db = Database::Open(DatabaseOptions{}, dir_.Sub("db"));
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(*db);
  }

  // Every filter answers the same on both collections.
  void ExpectSameAnswers(const std::string& when) {
    auto a = *db_->GetCollection("indexed");
    auto b = *db_->GetCollection("plain");
    const auto filters = Filters();
    for (size_t i = 0; i < filters.size(); ++i) {
      const Filter& f = filters[i];
      SCOPED_TRACE(when + ", filter " + std::to_string(i));
      auto ca = a->Count(&f);
      auto cb = b->Count(&f);
      ASSERT_TRUE(ca.ok() && cb.ok());
      EXPECT_EQ(*ca, *cb);
      // Scroll page by page.
      ScrollRequest r;
      r.filter = f;
      r.limit = 37;
      r.with_payload = false;
      for (int page = 0; page < 100; ++page) {
        auto pa = a->Scroll(r);
        auto pb = b->Scroll(r);
        ASSERT_TRUE(pa.ok() && pb.ok());
        ASSERT_EQ(pa->points.size(), pb->points.size());
        for (size_t j = 0; j < pa->points.size(); ++j) {
          EXPECT_EQ(pa->points[j].id, pb->points[j].id);
        }
        EXPECT_EQ(pa->next_page_offset.has_value(), pb->next_page_offset.has_value());
        if (!pa->next_page_offset) break;
        r.offset = pa->next_page_offset;
      }
      // Exact filtered search (both answer from the same candidates).
      SearchRequest s;
      s.vector = query_;
      s.limit = 10;
      s.filter = f;
      s.params.exact = true;
      // A fixed oversampling: each collection measures its own rescore
      // curve in the background, whose default may differ between them.
      s.params.oversampling = 2.0f;
      auto sa = a->Search(s);
      auto sb = b->Search(s);
      ASSERT_TRUE(sa.ok() && sb.ok()) << sa.status().ToString() << sb.status().ToString();
      ASSERT_EQ(sa->size(), sb->size());
      for (size_t j = 0; j < sa->size(); ++j) {
        EXPECT_EQ((*sa)[j].id, (*sb)[j].id);
        EXPECT_FLOAT_EQ((*sa)[j].score, (*sb)[j].score);
      }
    }
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::vector<float> query_;
};

TEST_P(PayloadIndexTest, FiltersAnswerAsWithoutTheIndex) {
  ExpectSameAnswers("after creation");
  {
    // The filters select something (all but the one on an absent value).
    auto plain = *db_->GetCollection("plain");
    const auto filters = Filters();
    for (size_t i = 0; i < filters.size(); ++i) {
      if (i == 9) continue;
      EXPECT_GT(*plain->Count(&filters[i]), 0u) << "filter " << i;
    }
  }
  auto info = (*db_->GetCollection("indexed"))->Info();
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->payload_schema.size(), 6u);
  EXPECT_EQ(info->payload_schema["loc"].type, PayloadSchemaType::kGeo);
  EXPECT_EQ(info->payload_schema["loc"].points, kPoints);
  EXPECT_EQ(info->payload_schema["color"].type, PayloadSchemaType::kKeyword);
  EXPECT_EQ(info->payload_schema["color"].points, kPoints);
  EXPECT_EQ(info->payload_schema["n"].points, kPoints);
  EXPECT_EQ(info->payload_schema["flag"].points, kPoints);

  // Writes: overwrite some payloads, delete by an indexed filter, update
  // payloads by filter, delete some points; both collections the same way.
  for (const char* name : {"indexed", "plain"}) {
    auto c = *db_->GetCollection(name);
    std::vector<Point> changed;
    for (size_t i = 0; i < 300; ++i) {
      Point p;
      p.id = PointId::Num(i * 3);
      p.vector.assign(kDim, 0.5f);
      p.vector[i % kDim] = 1.0f;
      p.payload = "{\"color\":\"c3\",\"n\":" + std::to_string(250 + i % 10) + "}";
      changed.push_back(p);
    }
    ASSERT_TRUE(c->Upsert(changed).ok());
    Filter doomed;
    doomed.must = {Match("color", std::string("c5")), Range("n", 0, 500)};
    ASSERT_TRUE(c->DeleteByFilter(doomed).ok());
    PayloadUpdate mark;
    mark.payload = R"({"color":"c7"})";
    Filter to_mark;
    to_mark.must = {Range("score", 1.0, std::nullopt)};
    ASSERT_TRUE(c->UpdatePayloadByFilter(to_mark, mark).ok());
    std::vector<PointId> gone = {PointId::Num(3), PointId::Num(6), PointId::Num(100007)};
    ASSERT_TRUE(c->Delete(gone).ok());
  }
  ExpectSameAnswers("after writes");

  // Survives a reopen (rebuilt from the stored payloads).
  Open();
  info = (*db_->GetCollection("indexed"))->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->payload_schema.size(), 6u);
  ExpectSameAnswers("after reopen");

  // Dropped: gone from the info, and the answers stay the same.
  auto c = *db_->GetCollection("indexed");
  ASSERT_TRUE(c->DropPayloadIndex("color").ok());
  EXPECT_EQ(c->DropPayloadIndex("color").code(), StatusCode::kNotFound);
  info = c->Info();
  EXPECT_EQ(info->payload_schema.count("color"), 0u);
  ExpectSameAnswers("after drop");
  Open();
  info = (*db_->GetCollection("indexed"))->Info();
  EXPECT_EQ(info->payload_schema.size(), 5u);

  EXPECT_FALSE(c->CreatePayloadIndex("", PayloadSchemaType::kKeyword).ok());
  EXPECT_FALSE(c->CreatePayloadIndex("a[0]", PayloadSchemaType::kKeyword).ok());
}

INSTANTIATE_TEST_SUITE_P(FlatAndIvf, PayloadIndexTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Ivf" : "Flat"; });

}  // namespace
}  // namespace qvec
