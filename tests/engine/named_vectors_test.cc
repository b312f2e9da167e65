// Named vector fields through the public API: points carrying any subset of
// a collection's fields, each field with its own distance, quantization and
// index, searched, read, updated and deleted field by field, and kept across
// reopen. Searches are compared with a float brute force over the points
// that carry the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

constexpr size_t kPoints = 900;

struct FieldSpec {
  const char* name;
  uint32_t dim;
  Distance distance;
};
constexpr FieldSpec kFields[] = {
    {"text", 12, Distance::kCosine},
    {"image", 6, Distance::kManhattan},
    {"code", 16, Distance::kDot},
    {"place", 3, Distance::kEuclid},
};

CollectionConfig NamedConfig() {
  CollectionConfig c;
  for (const FieldSpec& f : kFields) {
    VectorFieldConfig v;
    v.dimension = f.dim;
    v.distance = f.distance;
    c.vectors[f.name] = v;
  }
  // One field with its own index options: IVF from 300 points on.
  c.vectors["code"].index.ivf_threshold = 300;
  c.vectors["code"].index.nlist = 4;
  c.vectors["place"].quantization.type = QuantizationOptions::Type::kUint8;
  c.vectors["place"].quantization.granularity = QuantizationOptions::Granularity::kPerCollection;
  return c;
}

// Point i carries field f when (i + f) % 3 != 0 (every point carries some,
// no field is carried by all), except points divisible by 50, which carry none.
bool Carries(size_t i, size_t f) { return i % 50 != 0 && (i + f) % 3 != 0; }

std::vector<float> VectorOf(size_t i, size_t f, uint32_t salt = 0) {
  std::mt19937 rng(static_cast<uint32_t>(i * 31 + f * 7 + salt * 1000003));
  std::normal_distribution<float> normal;
  std::vector<float> v(kFields[f].dim);
  for (float& x : v) x = normal(rng);
  return v;
}

double FloatScore(Distance d, const std::vector<float>& q, const std::vector<float>& x) {
  double dot = 0, nq = 0, nx = 0, l2 = 0, l1 = 0;
  for (size_t j = 0; j < q.size(); ++j) {
    dot += double(q[j]) * x[j];
    nq += double(q[j]) * q[j];
    nx += double(x[j]) * x[j];
    l2 += (double(q[j]) - x[j]) * (double(q[j]) - x[j]);
    l1 += std::fabs(double(q[j]) - x[j]);
  }
  switch (d) {
    case Distance::kCosine:
      return dot / std::sqrt(nq * nx);
    case Distance::kDot:
      return dot;
    case Distance::kEuclid:
      return std::sqrt(l2);
    case Distance::kManhattan:
      return l1;
  }
  return 0;
}

std::vector<float> Normalized(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += double(x) * x;
  for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
  return v;
}

// A vector as a field returns it: normalized under Cosine.
void ExpectSameVector(const std::vector<float>& got, const std::vector<float>& want, bool cosine) {
  const std::vector<float> w = cosine ? Normalized(want) : want;
  ASSERT_EQ(got.size(), w.size());
  for (size_t j = 0; j < w.size(); ++j) EXPECT_NEAR(got[j], w[j], 1e-6);
}

bool HigherIsBetter(Distance d) { return d == Distance::kCosine || d == Distance::kDot; }

class NamedVectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Open();
    ASSERT_TRUE(db_->CreateCollection("c", NamedConfig()).ok());
    coll_ = db_->GetCollection("c").value();
    std::vector<Point> points(kPoints);
    for (size_t i = 0; i < kPoints; ++i) {
      points[i].id = PointId::Num(i);
      points[i].payload =
          "{\"i\":" + std::to_string(i) + ",\"odd\":" + (i % 2 ? "true" : "false") + "}";
      for (size_t f = 0; f < std::size(kFields); ++f) {
        if (Carries(i, f)) {
          points[i].vectors[kFields[f].name] = VectorOf(i, f);
          truth_[f][i] = VectorOf(i, f);
        }
      }
    }
    ASSERT_TRUE(coll_->Upsert(points).ok());
  }

  void Open(bool background_indexing = false) {
    coll_.reset();
    db_.reset();
    DatabaseOptions o;
    o.background_indexing = background_indexing;
    db_ = Database::Open(o, dir_.path()).value();
  }

  // The exact top 10 of field f for `query` among the points carrying it
  // (and passing `odd_only`), as the float reference ranks them.
  std::vector<uint64_t> Expected(size_t f, const std::vector<float>& query, bool odd_only) const {
    std::vector<std::pair<double, uint64_t>> all;
    for (const auto& [i, v] : truth_[f]) {
      if (odd_only && i % 2 == 0) continue;
      double s = FloatScore(kFields[f].distance, query, v);
      all.emplace_back(HigherIsBetter(kFields[f].distance) ? -s : s, i);
    }
    std::sort(all.begin(), all.end());
    std::vector<uint64_t> ids;
    for (size_t k = 0; k < std::min<size_t>(10, all.size()); ++k) ids.push_back(all[k].second);
    return ids;
  }

  // Searches every field with a few queries and compares with the reference.
  void ExpectSearchesMatch() {
    for (size_t f = 0; f < std::size(kFields); ++f) {
      for (uint32_t q = 0; q < 5; ++q) {
        SearchRequest r;
        r.vector_name = kFields[f].name;
        r.vector = VectorOf(100000 + q, f, 9);
        r.limit = 10;
        r.params.ignore_quantization = true;  // float scores: the reference's ranking
        for (bool odd_only : {false, true}) {
          if (odd_only) {
            Condition c;
            c.kind = Condition::Kind::kMatchValue;
            c.key = "odd";
            c.value = MatchValue(true);
            r.filter = Filter{};
            r.filter->must.push_back(c);
          }
          auto hits = coll_->Search(r);
          ASSERT_TRUE(hits.ok()) << hits.status().ToString();
          std::vector<uint64_t> got;
          for (const auto& h : *hits) got.push_back(h.id.num());
          EXPECT_EQ(got, Expected(f, r.vector, odd_only))
              << kFields[f].name << " query " << q << (odd_only ? " (odd)" : "");
          // Scores are the field's own metric on its float vectors.
          for (const auto& h : *hits) {
            const double want = FloatScore(kFields[f].distance, r.vector, truth_[f].at(h.id.num()));
            EXPECT_NEAR(h.score, want, 1e-3 * std::max(1.0, std::fabs(want)));
          }
        }
      }
    }
  }

  // Point `id` with payload and every vector; an empty Record if absent.
  Record One(const PointId& id) {
    auto got = coll_->Get(std::vector<PointId>{id}, true, true);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got.ok() ? got->size() : 0, 1u) << "point " << id.ToString();
    return got.ok() && got->size() == 1 ? got->front() : Record{};
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::shared_ptr<Collection> coll_;
  std::map<uint64_t, std::vector<float>> truth_[std::size(kFields)];
};

TEST_F(NamedVectorsTest, EachFieldSearchesOnlyThePointsCarryingIt) {
  EXPECT_EQ(*coll_->Count(nullptr), kPoints);
  ExpectSearchesMatch();
  // Approximate (int8) searches also keep to the field's points.
  SearchRequest r;
  r.vector_name = "image";
  r.vector = VectorOf(7, 1);
  r.limit = 50;
  auto hits = coll_->Search(r);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 50u);
  for (const auto& h : *hits) EXPECT_TRUE(truth_[1].count(h.id.num())) << h.id.num();
  EXPECT_EQ((*hits)[0].id.num(), 7u);  // its own vector, distance 0
  EXPECT_NEAR((*hits)[0].score, 0.0, 1e-4);
}

TEST_F(NamedVectorsTest, EachFieldHasItsOwnIndex) {
  // With background indexing, only "code" passes its IVF threshold (300;
  // the others keep the default 20000).
  Open(/*background_indexing=*/true);
  coll_ = db_->GetCollection("c").value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (coll_->Info()->fields.at("code").index.state != IndexInfo::State::kIvf &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto info = coll_->Info();
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->fields.size(), std::size(kFields));
  for (size_t f = 0; f < std::size(kFields); ++f) {
    const VectorFieldInfo& fi = info->fields.at(kFields[f].name);
    EXPECT_EQ(fi.vectors_count, truth_[f].size()) << kFields[f].name;
    EXPECT_EQ(fi.config.distance, kFields[f].distance);
    EXPECT_EQ(fi.index.state, std::string(kFields[f].name) == "code" ? IndexInfo::State::kIvf
                                                                     : IndexInfo::State::kFlat)
        << kFields[f].name;
  }
  EXPECT_EQ(info->fields.at("code").index.nlist, 4u);
  ExpectSearchesMatch();
  // Optimize builds every field's IVF index now.
  ASSERT_TRUE(coll_->Optimize().ok());
  info = coll_->Info();
  for (const auto& [name, fi] : info->fields) {
    EXPECT_EQ(fi.index.state, IndexInfo::State::kIvf) << name;
  }
  ExpectSearchesMatch();
  Open();
  coll_ = db_->GetCollection("c").value();
  info = coll_->Info();
  for (const auto& [name, fi] : info->fields) {
    EXPECT_EQ(fi.index.state, IndexInfo::State::kIvf) << name;
  }
  ExpectSearchesMatch();
}

TEST_F(NamedVectorsTest, ReadsReturnTheFieldsAskedFor) {
  const std::vector<PointId> ids = {PointId::Num(1), PointId::Num(2), PointId::Num(50)};
  auto all = coll_->Get(ids, true, VectorSelector(true));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  for (const Record& rec : *all) {
    const size_t i = rec.id.num();
    EXPECT_FALSE(rec.vector.has_value());  // named collection: no unnamed vector
    std::set<std::string> want, got;
    for (size_t f = 0; f < std::size(kFields); ++f) {
      if (Carries(i, f)) want.insert(kFields[f].name);
    }
    for (const auto& [name, v] : rec.vectors) got.insert(name);
    EXPECT_EQ(got, want) << i;
    ASSERT_TRUE(rec.payload.has_value());
  }
  EXPECT_TRUE((*all)[2].vectors.empty());  // point 50 carries none
  // Exactly the originals (Manhattan, Dot and Euclid are not normalized).
  EXPECT_EQ((*all)[0].vectors.at("image"), VectorOf(1, 1));
  auto some = coll_->Get(ids, false, VectorSelector(std::vector<std::string>{"image"}));
  ASSERT_TRUE(some.ok());
  for (const Record& rec : *some) {
    EXPECT_LE(rec.vectors.size(), 1u);
    if (!rec.vectors.empty()) {
      EXPECT_EQ(rec.vectors.begin()->first, "image");
    }
    EXPECT_FALSE(rec.payload.has_value());
  }
  EXPECT_EQ(
      coll_->Get(ids, false, VectorSelector(std::vector<std::string>{"nope"})).status().code(),
      StatusCode::kInvalidArgument);
  ScrollRequest sr;
  sr.limit = kPoints;
  sr.with_vector = VectorSelector(std::vector<std::string>{"text", "place"});
  auto page = coll_->Scroll(sr);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->points.size(), kPoints);
  size_t text = 0, place = 0;
  for (const Record& rec : page->points) {
    text += rec.vectors.count("text");
    place += rec.vectors.count("place");
    EXPECT_EQ(rec.vectors.count("code"), 0u);
  }
  EXPECT_EQ(text, truth_[0].size());
  EXPECT_EQ(place, truth_[3].size());
}

TEST_F(NamedVectorsTest, FieldsAreUpdatedAndDeletedOneByOne) {
  // Point 3 carries text and code (3 % 3 == 0 drops image? (3+1)%3 != 0).
  const PointId id = PointId::Num(3);
  std::vector<std::string> before;
  const Record original = One(id);
  ASSERT_EQ(original.vectors.size(), 2u);  // image and code
  for (const auto& [name, v] : original.vectors) before.push_back(name);
  ASSERT_FALSE(std::count(before.begin(), before.end(), "text"));
  // UpdateVectors adds "text" and replaces "image", keeping the rest and the payload.
  Point p;
  p.id = id;
  p.vectors["text"] = VectorOf(3, 0, 5);
  p.vectors["image"] = VectorOf(3, 1, 5);
  ASSERT_TRUE(coll_->UpdateVectors(std::vector<Point>{p}).ok());
  ASSERT_EQ(One(id).vectors.size(), 3u) << "after UpdateVectors";
  truth_[0][3] = VectorOf(3, 0, 5);
  truth_[1][3] = VectorOf(3, 1, 5);
  auto rec = One(id);
  EXPECT_EQ(rec.payload.value(), "{\"i\":3,\"odd\":true}");
  EXPECT_EQ(rec.vectors.size(), before.size() + 1);
  EXPECT_EQ(rec.vectors.at("image"), VectorOf(3, 1, 5));
  // DeleteVectors removes fields; the point stays.
  ASSERT_TRUE(coll_->DeleteVectors(std::vector<PointId>{id}, {"image", "code"}).ok());
  ASSERT_EQ(One(id).vectors.size(), 1u) << "after DeleteVectors";
  truth_[1].erase(3);
  truth_[2].erase(3);
  rec = One(id);
  EXPECT_EQ(rec.vectors.count("image") + rec.vectors.count("code"), 0u);
  EXPECT_EQ(rec.vectors.count("text"), 1u);
  // Refusals write nothing.
  Point missing;
  missing.id = PointId::Num(999999);
  missing.vectors["text"] = VectorOf(1, 0);
  EXPECT_EQ(coll_->UpdateVectors(std::vector<Point>{p, missing}).code(), StatusCode::kNotFound);
  EXPECT_EQ(coll_->DeleteVectors(std::vector<PointId>{id, PointId::Num(999999)}, {"text"}).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(coll_->DeleteVectors(std::vector<PointId>{id}, {"nope"}).code(),
            StatusCode::kInvalidArgument);
  Point bad = p;
  bad.vectors["text"] = {1, 2};
  EXPECT_EQ(coll_->UpdateVectors(std::vector<Point>{bad}).code(), StatusCode::kInvalidArgument);
  ExpectSameVector(One(id).vectors["text"], VectorOf(3, 0, 5), true);
  // Upsert replaces the whole point: fields it does not carry are removed.
  Point whole;
  whole.id = PointId::Num(4);
  whole.vectors["place"] = VectorOf(4, 3, 8);
  ASSERT_TRUE(coll_->Upsert(std::vector<Point>{whole}).ok());
  for (auto& t : truth_) t.erase(4);
  truth_[3][4] = VectorOf(4, 3, 8);
  rec = One(PointId::Num(4));
  EXPECT_EQ(rec.vectors.size(), 1u);
  EXPECT_EQ(rec.payload.value_or("?"), "{}");  // no payload: the empty one
  ExpectSearchesMatch();
  // By filter: "image" of every odd point with i < 100, in one write.
  Filter odd_low;
  Condition odd;
  odd.kind = Condition::Kind::kMatchValue;
  odd.key = "odd";
  odd.value = true;
  Condition low;
  low.kind = Condition::Kind::kRange;
  low.key = "i";
  low.lt = 100;
  odd_low.must = {odd, low};
  size_t expected = 0;
  for (uint64_t i = 1; i < 100; i += 2) expected += truth_[1].erase(i);
  auto removed = coll_->DeleteVectorsByFilter(odd_low, {"image"});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, expected);
  EXPECT_EQ(*coll_->DeleteVectorsByFilter(odd_low, {"image"}), 0u);  // nothing left to remove
  EXPECT_EQ(coll_->DeleteVectorsByFilter(odd_low, {"nope"}).status().code(),
            StatusCode::kInvalidArgument);
  ExpectSearchesMatch();
  // All of it survives reopen.
  Open();
  coll_ = db_->GetCollection("c").value();
  ExpectSearchesMatch();
  rec = One(id);
  EXPECT_EQ(rec.vectors.size(), 1u);
  ExpectSameVector(rec.vectors.at("text"), VectorOf(3, 0, 5), true);
}

TEST_F(NamedVectorsTest, WrongShapesAreRefusedAndWriteNothing) {
  Point unnamed;
  unnamed.id = PointId::Num(5000);
  unnamed.vector = {1, 2, 3};
  Point unknown;
  unknown.id = PointId::Num(5001);
  unknown.vectors["nope"] = {1, 2, 3};
  Point wrong_dim;
  wrong_dim.id = PointId::Num(5002);
  wrong_dim.vectors["text"] = {1, 2, 3};
  Point zero_cosine;
  zero_cosine.id = PointId::Num(5003);
  zero_cosine.vectors["text"] = std::vector<float>(12, 0.0f);
  Point good;
  good.id = PointId::Num(5004);
  good.vectors["image"] = VectorOf(5004, 1);
  for (const Point& bad : {unnamed, unknown, wrong_dim, zero_cosine}) {
    EXPECT_EQ(coll_->Upsert(std::vector<Point>{good, bad}).code(), StatusCode::kInvalidArgument)
        << bad.id.num();
  }
  EXPECT_EQ(*coll_->Count(nullptr), kPoints);
  SearchRequest r;
  r.vector = VectorOf(1, 0);
  EXPECT_EQ(coll_->Search(r).status().code(), StatusCode::kInvalidArgument);  // no name
  r.vector_name = "nope";
  EXPECT_EQ(coll_->Search(r).status().code(), StatusCode::kInvalidArgument);
  r.vector_name = "image";  // dimension 6, query has 12
  EXPECT_EQ(coll_->Search(r).status().code(), StatusCode::kInvalidArgument);
  // Config validation.
  CollectionConfig both = NamedConfig();
  both.dimension = 4;
  EXPECT_EQ(db_->CreateCollection("both", both).code(), StatusCode::kInvalidArgument);
  CollectionConfig empty_name;
  empty_name.vectors[""].dimension = 4;
  EXPECT_EQ(db_->CreateCollection("empty", empty_name).code(), StatusCode::kInvalidArgument);
  CollectionConfig too_many;
  for (size_t i = 0; i <= kMaxVectorFields; ++i)
    too_many.vectors[std::to_string(i)].dimension = 2;
  EXPECT_EQ(db_->CreateCollection("many", too_many).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qvec
