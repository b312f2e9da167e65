// A database always opens: damaged derived data is rebuilt from the
// originals, and a point whose own data is unusable is quarantined instead
// of failing the whole database. Values that could not be stored exactly
// enough to search are refused before they are acknowledged.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/codes_value.h"
#include "common/point_key.h"
#include "qvec/database.h"
#include "storage/store.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

using testing_util::TempDir;

std::vector<Point> Points(size_t n, size_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<Point> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i].id = PointId::Num(i + 1);
    out[i].vector.resize(dim);
    for (auto& x : out[i].vector) x = normal(rng);
    out[i].payload = "{\"i\":" + std::to_string(i) + "}";
  }
  return out;
}

uint32_t CollectionId(storage::Store& store, const std::string& name) {
  auto list = store.ListCollections();
  for (const auto& rec : *list) {
    if (rec.name == name) return rec.id;
  }
  return 0;
}

// A point of field 0 as a format upgrade leaves it: an empty points record
// (the label comes from the code), the code, the original and the payload.
void PutV1StylePoint(storage::WriteBatch* batch, uint32_t cid, const std::string& key,
                     const std::string& code, const float* v, size_t dim,
                     std::optional<std::string_view> payload) {
  batch->PutPointRecord(cid, key, "");
  batch->PutVector(cid, 0, key, code, v, dim);
  batch->PutPayload(cid, key, payload);
}

CollectionConfig Config(Distance d, size_t dim) {
  CollectionConfig c;
  c.dimension = static_cast<uint32_t>(dim);
  c.distance = d;
  return c;
}

TEST(RecoveryTest, DamagedRecordsAreQuarantinedAndTheDatabaseOpens) {
  TempDir dir;
  const size_t dim = 8;
  {
    auto db = Database::Open(DatabaseOptions(), dir.path()).value();
    ASSERT_TRUE(db->CreateCollection("c", Config(Distance::kDot, dim)).ok());
    ASSERT_TRUE(db->CreateCollection("other", Config(Distance::kCosine, dim)).ok());
    auto c = db->GetCollection("c").value();
    ASSERT_TRUE(c->Upsert(Points(50, dim, 1)).ok());
    ASSERT_TRUE(db->GetCollection("other").value()->Upsert(Points(10, dim, 2)).ok());
  }
  {
    // What an earlier version could have stored, and plain damage.
    auto store = storage::Store::Open(dir.path(), storage::StoreOptions()).value();
    const uint32_t cid = CollectionId(*store, "c");
    ASSERT_NE(cid, 0u);
    storage::WriteBatch batch;
    // 1. A huge but finite vector whose code has an infinite squared norm.
    std::vector<float> huge(dim, 0.0f);
    huge[0] = 1.9e19f;
    std::string code(engine::kCodesHeaderBytes + dim + 12, '\0');
    engine::CodesHeader h;
    h.label = 1000;
    engine::WriteCodesHeader(h, code.data());
    const float inf = std::numeric_limits<float>::infinity();
    std::memcpy(code.data() + engine::kCodesHeaderBytes + dim + 8, &inf, 4);
    PutV1StylePoint(&batch, cid, EncodePointKey(PointId::Num(1000)), code, huge.data(), dim,
                    std::string_view("{\"bad\":1}"));
    // 2. A truncated code of a good point: re-encoded from its original.
    std::vector<float> fine(dim, 0.5f);
    PutV1StylePoint(&batch, cid, EncodePointKey(PointId::Num(1001)),
                    std::string("\x01\x02", 2), fine.data(), dim, std::nullopt);
    // 3. A code whose label collides with point 1's: relabelled.
    std::string dup(engine::kCodesHeaderBytes + dim + 12, '\0');
    engine::CodesHeader hd;
    hd.label = 0;
    engine::WriteCodesHeader(hd, dup.data());
    PutV1StylePoint(&batch, cid, EncodePointKey(PointId::Num(1002)), dup, fine.data(), dim,
                    std::nullopt);
    // 4. An original of the wrong size.
    std::vector<float> short_original(dim / 2, 1.0f);
    PutV1StylePoint(&batch, cid, EncodePointKey(PointId::Num(1003)), code,
                    short_original.data(), dim / 2, std::nullopt);
    ASSERT_TRUE(store->Write(&batch).ok());
  }
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto c = (*db)->GetCollection("c").value();
  auto info = c->Info();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quarantined_points, 2u);
  EXPECT_EQ(info->points_count, 52u);  // 50 + the two repaired
  EXPECT_EQ(*c->Count(nullptr), 52u);
  // Every served point is searchable by its own vector.
  for (uint64_t id : {uint64_t{1001}, uint64_t{1002}, uint64_t{7}}) {
    auto rec = c->Get(std::vector<PointId>{PointId::Num(id)}, false, true);
    ASSERT_TRUE(rec.ok());
    ASSERT_EQ(rec->size(), 1u) << id;
    SearchRequest r;
    r.vector = *(*rec)[0].vector;
    r.limit = 52;
    r.params.exact = true;
    auto hits = c->Search(r);
    ASSERT_TRUE(hits.ok());
    bool found = false;
    for (const auto& hit : *hits) found = found || hit.id == PointId::Num(id);
    EXPECT_TRUE(found) << id;
  }
  // The quarantined points are gone, and the other collection is intact.
  EXPECT_TRUE(
      c->Get(std::vector<PointId>{PointId::Num(1000), PointId::Num(1003)}, true, true)->empty());
  EXPECT_EQ(*(*db)->GetCollection("other").value()->Count(nullptr), 10u);
  db->reset();
  // Quarantine is durable: the next open finds the same state.
  auto again = Database::Open(DatabaseOptions(), dir.path()).value();
  auto c2 = again->GetCollection("c").value();
  EXPECT_EQ(c2->Info()->quarantined_points, 2u);
  EXPECT_EQ(*c2->Count(nullptr), 52u);
}

TEST(RecoveryTest, DamagedCollectionConfigLeavesTheOthersServed) {
  TempDir dir;
  {
    auto db = Database::Open(DatabaseOptions(), dir.path()).value();
    ASSERT_TRUE(db->CreateCollection("bad", Config(Distance::kDot, 4)).ok());
    ASSERT_TRUE(db->CreateCollection("good", Config(Distance::kDot, 4)).ok());
    ASSERT_TRUE(db->GetCollection("good").value()->Upsert(Points(5, 4, 3)).ok());
  }
  {
    auto store = storage::Store::Open(dir.path(), storage::StoreOptions()).value();
    storage::WriteBatch batch;
    batch.PutCollection(CollectionId(*store, "bad"), "bad", "{not json");
    ASSERT_TRUE(store->Write(&batch).ok());
  }
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(*(*db)->GetCollection("good").value()->Count(nullptr), 5u);
  auto bad = (*db)->GetCollection("bad");
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*db)->CreateCollection("bad", Config(Distance::kDot, 4)).code(),
            StatusCode::kAlreadyExists);
  // Dropping it removes it for good.
  ASSERT_TRUE((*db)->DropCollection("bad").ok());
  EXPECT_TRUE((*db)->CreateCollection("bad", Config(Distance::kDot, 4)).ok());
}

TEST(RecoveryTest, DamagedIvfModelFallsBackToFlatAndRebuilds) {
  TempDir dir;
  CollectionConfig cfg = Config(Distance::kCosine, 16);
  cfg.index.ivf_threshold = 500;
  cfg.index.nlist = 8;
  DatabaseOptions opts;
  opts.background_indexing = false;
  {
    auto db = Database::Open(opts, dir.path()).value();
    ASSERT_TRUE(db->CreateCollection("c", cfg).ok());
    auto c = db->GetCollection("c").value();
    ASSERT_TRUE(c->Upsert(Points(800, 16, 4)).ok());
    ASSERT_TRUE(c->Optimize().ok());
    ASSERT_EQ(c->Info()->index.state, IndexInfo::State::kIvf);
  }
  {
    auto store = storage::Store::Open(dir.path(), storage::StoreOptions()).value();
    storage::WriteBatch batch;
    batch.PutIndexState(CollectionId(*store, "c"), "field/0/" + std::string(engine::kIndexState),
                        "garbage");
    ASSERT_TRUE(store->Write(&batch).ok());
  }
  auto db = Database::Open(opts, dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto c = (*db)->GetCollection("c").value();
  EXPECT_EQ(c->Info()->index.state, IndexInfo::State::kFlat);
  EXPECT_EQ(*c->Count(nullptr), 800u);
  ASSERT_TRUE(c->Optimize().ok());
  EXPECT_EQ(c->Info()->index.state, IndexInfo::State::kIvf);
}

// Huge but finite components: every distance and quantization refuses what
// float32 scores cannot hold, serves the rest, and the database reopens.
TEST(RecoveryTest, EdgeValuesAreRefusedOrServedUnderEveryDistanceAndQuantization) {
  TempDir dir;
  const size_t dim = 4;
  int n = 0;
  std::vector<std::string> names;
  {
    auto db = Database::Open(DatabaseOptions(), dir.path()).value();
    for (Distance d : {Distance::kCosine, Distance::kDot, Distance::kEuclid}) {
      for (auto type : {QuantizationOptions::Type::kInt8, QuantizationOptions::Type::kUint8}) {
        for (auto g : {QuantizationOptions::Granularity::kPerVector,
                       QuantizationOptions::Granularity::kPerCollection,
                       QuantizationOptions::Granularity::kPerDimension}) {
          CollectionConfig cfg = Config(d, dim);
          cfg.quantization.type = type;
          cfg.quantization.granularity = g;
          const std::string name = "c" + std::to_string(n++);
          names.push_back(name);
          ASSERT_TRUE(db->CreateCollection(name, cfg).ok());
          auto c = db->GetCollection(name).value();
          const std::vector<std::vector<float>> values = {
              {1.9e19f, 1, 2, 3},      {3.4e38f, 0, 0, 0},     {-3.4e38f, 3.4e38f, 0, 0},
              {9e18f, 0, 0, 1},        {1e-40f, 0, 0, 0},      {1, 2, 3, 4},
              {-1e-45f, 0, 0, 1e-45f}, {0.5f, -0.5f, 0.25f, 0}};
          size_t accepted = 0;
          for (size_t i = 0; i < values.size(); ++i) {
            Point p;
            p.id = PointId::Num(i);
            p.vector = values[i];
            Status s = c->Upsert(std::vector<Point>{p});
            if (s.ok()) {
              ++accepted;
            } else {
              EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name << " " << i;
            }
          }
          // Whatever was acknowledged is counted and found by an exact search.
          ASSERT_EQ(*c->Count(nullptr), accepted) << name;
          SearchRequest r;
          r.vector = {1, 2, 3, 4};
          r.limit = 10;
          r.params.exact = true;
          auto hits = c->Search(r);
          ASSERT_TRUE(hits.ok()) << name << hits.status().ToString();
          EXPECT_EQ(hits->size(), accepted) << name;
          for (const auto& h : *hits) EXPECT_TRUE(std::isfinite(h.score)) << name;
          // Queries are held to the same bound.
          SearchRequest huge = r;
          huge.vector = {3.4e38f, 3.4e38f, 0, 0};
          auto bad = c->Search(huge);
          if (d != Distance::kCosine) {
            EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << name;
          }
        }
      }
    }
  }
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (const auto& name : names) {
    auto c = (*db)->GetCollection(name).value();
    EXPECT_EQ(c->Info()->quarantined_points, 0u) << name;
  }
}

}  // namespace
}  // namespace qvec
