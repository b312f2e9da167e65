// Tests of storage::Store (RocksDB). Every test uses its own temporary
// directory, removed at the end.
#include "storage/store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace qvec::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Pair;

#define ASSERT_OK(expr)                                     \
  do {                                                      \
    const ::qvec::Status s_ = (expr);                       \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.ToString(); \
  } while (0)

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr)                                     \
  auto QVEC_CONCAT_(sor_, __LINE__) = (rexpr);                               \
  ASSERT_TRUE(QVEC_CONCAT_(sor_, __LINE__).ok())                             \
      << #rexpr << ": " << QVEC_CONCAT_(sor_, __LINE__).status().ToString(); \
  lhs = std::move(QVEC_CONCAT_(sor_, __LINE__)).value()

// A fresh directory under the gtest temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "qvec_store_test_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

StoreOptions SmallOptions() {
  StoreOptions o;
  o.block_cache_bytes = size_t{4} << 20;
  return o;
}

std::unique_ptr<Store> MustOpen(const std::string& path, StoreOptions o = SmallOptions()) {
  auto s = Store::Open(path, o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::vector<float> Vec(size_t dim, float base) {
  std::vector<float> v(dim);
  for (size_t i = 0; i < dim; ++i) v[i] = base + 0.25f * static_cast<float>(i);
  return v;
}

std::vector<std::string> ScanCodeKeys(Store* st, uint32_t cid, uint16_t field = 0) {
  std::vector<std::string> keys;
  EXPECT_TRUE(st->ScanCodes(cid, field, [&](std::string_view k, std::string_view) {
                  keys.emplace_back(k);
                  return true;
                }).ok());
  return keys;
}

// A point with one vector (field 0) as the engine writes it: a points
// record, the code and original of field 0, and the payload.
void PutPoint(WriteBatch* b, uint32_t cid, std::string_view key, std::string_view code,
              const float* v, size_t dim, std::optional<std::string_view> payload) {
  b->PutPointRecord(cid, key, "");
  b->PutVector(cid, 0, key, code, v, dim);
  b->PutPayload(cid, key, payload);
}

constexpr uint16_t kField0[] = {0};

struct StoredPoint {
  std::string code;
  std::vector<float> original;
  std::optional<std::string> payload;
};

// Field 0's code and original and the payload of a point; NotFound if it has
// no points record.
StatusOr<StoredPoint> GetPoint(Store* st, uint32_t cid, std::string_view key) {
  bool exists = false;
  std::string code;
  QVEC_RETURN_IF_ERROR(st->ScanPoints(cid, [&](std::string_view k, std::string_view) {
    exists |= k == key;
    return true;
  }));
  if (!exists) return NotFoundError("no point");
  QVEC_RETURN_IF_ERROR(st->ScanCodes(cid, 0, [&](std::string_view k, std::string_view c) {
    if (k == key) code = c;
    return true;
  }));
  StoredPoint p;
  p.code = code;
  auto original = st->GetOriginal(cid, 0, key);
  if (original.ok()) p.original = std::move(*original);
  QVEC_ASSIGN_OR_RETURN(p.payload, st->GetPayload(cid, key));
  return p;
}

// Opens the database with raw RocksDB (all qvec column families).
struct RawDb {
  explicit RawDb(const std::string& path) {
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const char* n :
         {"default", "meta", "codes", "originals", "payloads", "index_state", "points"}) {
      descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    }
    rocksdb::DBOptions o;
    rocksdb::Status s = rocksdb::DB::Open(o, path, descs, &handles, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    delete db;
  }
  // Number of keys in CF `i`.
  size_t Count(int i) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    size_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    EXPECT_TRUE(it->status().ok());
    return n;
  }
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
};
enum { kRawDefault, kRawMeta, kRawCodes, kRawOriginals, kRawPayloads, kRawIndexState, kRawPoints };

TEST(StoreOptionsTest, ValidateRejectsTinyBlockCache) {
  StoreOptions o;
  EXPECT_TRUE(o.Validate().ok());
  o.block_cache_bytes = (size_t{1} << 20) - 1;
  EXPECT_EQ(o.Validate().code(), StatusCode::kInvalidArgument);
  o.block_cache_bytes = size_t{1} << 20;
  EXPECT_TRUE(o.Validate().ok());

  TempDir dir;
  StoreOptions bad;
  bad.block_cache_bytes = 1024;
  auto st = Store::Open(dir.Sub("db"), bad);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir.Sub("db")));
}

TEST(StoreTest, PutGetRoundTripAllFields) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  const auto v = Vec(7, -1.5f);
  const std::string code("\x00\x7f\x80\xff", 4);
  const std::string key("k\x00\xff", 3);  // opaque binary key
  WriteBatch b;
  PutPoint(&b, 3, key, code, v.data(), v.size(), std::string_view("{\"a\":1}"));
  EXPECT_EQ(b.Count(), 3u);  // record, vector, payload
  ASSERT_OK(st->Write(&b));

  ASSERT_OK_AND_ASSIGN(StoredPoint p, GetPoint(st.get(), 3, key));
  EXPECT_EQ(p.code, code);
  EXPECT_EQ(p.original, v);
  EXPECT_EQ(p.payload, std::optional<std::string>("{\"a\":1}"));
  ASSERT_OK_AND_ASSIGN(std::vector<float> original, st->GetOriginal(3, 0, key));
  EXPECT_EQ(original, v);
  // Another field of the same point has nothing.
  EXPECT_EQ(st->GetOriginal(3, 1, key).status().code(), StatusCode::kNotFound);

  // Absent point / other collection.
  EXPECT_EQ(GetPoint(st.get(), 3, "nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(GetPoint(st.get(), 4, key).status().code(), StatusCode::kNotFound);

  // Index state.
  EXPECT_EQ(st->GetIndexState(3, "centroids").status().code(), StatusCode::kNotFound);
  WriteBatch b2;
  b2.PutIndexState(3, "centroids", std::string("\x01\x00\x02", 3));
  ASSERT_OK(st->Write(&b2));
  ASSERT_OK_AND_ASSIGN(std::string state, st->GetIndexState(3, "centroids"));
  EXPECT_EQ(state, std::string("\x01\x00\x02", 3));
  WriteBatch b3;
  b3.DeleteIndexState(3, "centroids");
  ASSERT_OK(st->Write(&b3));
  EXPECT_EQ(st->GetIndexState(3, "centroids").status().code(), StatusCode::kNotFound);

  // Empty batch is a no-op.
  WriteBatch empty;
  EXPECT_EQ(empty.Count(), 0u);
  ASSERT_OK(st->Write(&empty));
}

TEST(StoreTest, PayloadReplaceAndDeleteSemantics) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  const auto v = Vec(4, 1.0f);
  {
    WriteBatch b;
    PutPoint(&b, 1, "a", "ca", v.data(), v.size(), std::string_view("p1"));
    PutPoint(&b, 1, "b", "cb", v.data(), v.size(), std::nullopt);
    ASSERT_OK(st->Write(&b));
  }
  ASSERT_OK_AND_ASSIGN(auto pl, st->MultiGetPayloads(1, {"a", "b", "missing"}));
  EXPECT_THAT(pl, ElementsAre(std::optional<std::string>("p1"), std::nullopt, std::nullopt));

  // PutPayload replaces only the payload.
  {
    WriteBatch b;
    b.PutPayload(1, "a", std::string_view("p2"));
    b.PutPayload(1, "b", std::string_view("pb"));
    ASSERT_OK(st->Write(&b));
  }
  ASSERT_OK_AND_ASSIGN(pl, st->MultiGetPayloads(1, {"a", "b"}));
  EXPECT_THAT(pl, ElementsAre(std::optional<std::string>("p2"), std::optional<std::string>("pb")));
  ASSERT_OK_AND_ASSIGN(StoredPoint pa, GetPoint(st.get(), 1, "a"));
  EXPECT_EQ(pa.code, "ca");
  EXPECT_EQ(pa.original, v);

  // PutPoint with nullopt deletes an existing payload; PutPayload(nullopt) too.
  {
    WriteBatch b;
    PutPoint(&b, 1, "a", "ca2", v.data(), v.size(), std::nullopt);
    b.PutPayload(1, "b", std::nullopt);
    ASSERT_OK(st->Write(&b));
  }
  ASSERT_OK_AND_ASSIGN(pa, GetPoint(st.get(), 1, "a"));
  EXPECT_EQ(pa.code, "ca2");
  EXPECT_FALSE(pa.payload.has_value());
  ASSERT_OK_AND_ASSIGN(pl, st->MultiGetPayloads(1, {"a", "b"}));
  EXPECT_THAT(pl, ElementsAre(std::nullopt, std::nullopt));
  int n = 0;
  ASSERT_OK(st->ScanPayloads(1, [&](std::string_view, std::string_view) { return ++n, true; }));
  EXPECT_EQ(n, 0);
  ASSERT_OK_AND_ASSIGN(pl, st->MultiGetPayloads(1, {}));
  EXPECT_TRUE(pl.empty());
}

TEST(StoreTest, DeletePointRemovesFromEveryColumnFamily) {
  TempDir dir;
  const auto v = Vec(3, 0.0f);
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    WriteBatch b;
    PutPoint(&b, 9, "x", "cx", v.data(), v.size(), std::string_view("px"));
    PutPoint(&b, 9, "y", "cy", v.data(), v.size(), std::string_view("py"));
    ASSERT_OK(st->Write(&b));
    WriteBatch d;
    d.DeletePoint(9, "x", kField0);
    ASSERT_OK(st->Write(&d));
    EXPECT_EQ(GetPoint(st.get(), 9, "x").status().code(), StatusCode::kNotFound);
    std::vector<float> out(3);
    EXPECT_EQ(st->MultiGetOriginals(9, 0, {"x"}, 3, out.data()).code(), StatusCode::kNotFound);
    ASSERT_OK_AND_ASSIGN(auto pl, st->MultiGetPayloads(9, {"x"}));
    EXPECT_FALSE(pl[0].has_value());
    EXPECT_THAT(ScanCodeKeys(st.get(), 9), ElementsAre("y"));
  }
  // Check the raw column families: only "y" remains in each.
  RawDb raw(dir.Sub("db"));
  ASSERT_NE(raw.db, nullptr);
  EXPECT_EQ(raw.Count(kRawCodes), 1u);
  EXPECT_EQ(raw.Count(kRawOriginals), 1u);
  EXPECT_EQ(raw.Count(kRawPayloads), 1u);
  EXPECT_EQ(raw.Count(kRawPoints), 1u);
  std::string value;
  // Vectors are keyed BE32(cid) + BE16(field) + point key.
  const std::string key_y = std::string("\x00\x00\x00\x09\x00\x00", 6) + "y";
  EXPECT_TRUE(raw.db->Get(rocksdb::ReadOptions(), raw.handles[kRawOriginals], key_y, &value).ok());
  EXPECT_EQ(value.size(), 12u);
  EXPECT_EQ(std::memcmp(value.data(), v.data(), 12), 0);  // raw little-endian floats
}

TEST(StoreTest, ScansInKeyOrderAndIsolatedPerCollection) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  constexpr size_t kDim = 5;
  std::mt19937 rng(42);
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    std::string k(1 + rng() % 6, '\0');
    for (auto& c : k) c = static_cast<char>(rng() % 256);
    keys.push_back(k);
  }
  keys.push_back(std::string("\xff\xff\xff\xff", 4));  // must not leak into cid 2
  keys.push_back("");
  std::set<std::string> uniq(keys.begin(), keys.end());
  std::vector<std::string> shuffled(uniq.begin(), uniq.end());
  std::shuffle(shuffled.begin(), shuffled.end(), rng);

  WriteBatch b;
  for (size_t i = 0; i < shuffled.size(); ++i) {
    const auto v1 = Vec(kDim, 1.0f + static_cast<float>(i));
    const auto v2 = Vec(kDim, -1.0f - static_cast<float>(i));
    std::optional<std::string_view> payload;
    if (i % 3 == 0) payload = std::string_view(shuffled[i]);
    PutPoint(&b, 1, shuffled[i], "one:" + shuffled[i], v1.data(), kDim, payload);
    PutPoint(&b, 2, shuffled[i], "two:" + shuffled[i], v2.data(), kDim, std::nullopt);
  }
  // A neighbour whose id differs only in the low byte, and cid 0x100.
  const auto v0 = Vec(kDim, 0.0f);
  PutPoint(&b, 0, "zzz", "zero", v0.data(), kDim, std::string_view("p"));
  PutPoint(&b, 3, "a", "three", v0.data(), kDim, std::string_view("p"));
  PutPoint(&b, 0x100, "a", "big", v0.data(), kDim, std::string_view("p"));
  ASSERT_OK(st->Write(&b));

  const std::vector<std::string> sorted(uniq.begin(), uniq.end());  // bytewise order
  for (uint32_t cid : {1u, 2u}) {
    std::vector<std::string> got;
    ASSERT_OK(st->ScanCodes(cid, 0, [&](std::string_view k, std::string_view code) {
      EXPECT_EQ(code, (cid == 1 ? "one:" : "two:") + std::string(k));
      got.emplace_back(k);
      return true;
    }));
    EXPECT_EQ(got, sorted) << "cid " << cid;

    std::vector<std::string> orig_keys;
    ASSERT_OK(st->ScanOriginals(cid, 0, kDim, [&](std::string_view k, const float* f) {
      EXPECT_EQ(cid == 1 ? f[0] > 0 : f[0] < 0, true);
      orig_keys.emplace_back(k);
      return true;
    }));
    EXPECT_EQ(orig_keys, sorted);
  }
  std::vector<std::string> with_payload;
  ASSERT_OK(st->ScanPayloads(1, [&](std::string_view k, std::string_view p) {
    EXPECT_EQ(k, p);
    with_payload.emplace_back(k);
    return true;
  }));
  EXPECT_EQ(with_payload.size(), (shuffled.size() + 2) / 3);
  EXPECT_TRUE(std::is_sorted(with_payload.begin(), with_payload.end()));
  int n2 = 0;
  ASSERT_OK(st->ScanPayloads(2, [&](std::string_view, std::string_view) { return ++n2, true; }));
  EXPECT_EQ(n2, 0);
  EXPECT_THAT(ScanCodeKeys(st.get(), 0), ElementsAre("zzz"));
  EXPECT_THAT(ScanCodeKeys(st.get(), 3), ElementsAre("a"));
  EXPECT_THAT(ScanCodeKeys(st.get(), 0x100), ElementsAre("a"));
  EXPECT_TRUE(ScanCodeKeys(st.get(), 4).empty());

  // Early stop.
  int seen = 0;
  ASSERT_OK(st->ScanCodes(1, 0, [&](std::string_view, std::string_view) { return ++seen < 5; }));
  EXPECT_EQ(seen, 5);

  // Wrong dim in a scan is DataLoss.
  EXPECT_EQ(
      st->ScanOriginals(1, 0, kDim + 1, [](std::string_view, const float*) { return true; }).code(),
      StatusCode::kDataLoss);
}

TEST(StoreTest, ScanSeesConsistentSnapshot) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  const auto v = Vec(2, 0.0f);
  WriteBatch b;
  for (int i = 0; i < 100; ++i) {
    PutPoint(&b, 1, std::string("k").append(std::to_string(1000 + i)), "c", v.data(), 2,
             std::nullopt);
  }
  ASSERT_OK(st->Write(&b));
  int n = 0;
  ASSERT_OK(st->ScanCodes(1, 0, [&](std::string_view, std::string_view) {
    if (n++ == 10) {  // writes during the scan are invisible to it
      WriteBatch w;
      w.DeletePoint(1, "k1050", kField0);
      PutPoint(&w, 1, "k1099x", "c", v.data(), 2, std::nullopt);
      EXPECT_TRUE(st->Write(&w).ok());
    }
    return true;
  }));
  EXPECT_EQ(n, 100);
  EXPECT_EQ(ScanCodeKeys(st.get(), 1).size(), 100u);  // -1 +1
}

TEST(StoreTest, DropCollectionRemovesEverythingAndKeepsOthers) {
  TempDir dir;
  const auto v = Vec(4, 2.0f);
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    WriteBatch b;
    b.PutCollection(1, "one", "meta1");
    b.PutCollection(2, "two", "meta2");
    for (int i = 0; i < 50; ++i) {
      const std::string k = std::string("p").append(std::to_string(i));
      PutPoint(&b, 1, k, "c1", v.data(), v.size(), std::string_view("x"));
      PutPoint(&b, 2, k, "c2", v.data(), v.size(), std::string_view("y"));
    }
    b.PutIndexState(1, "centroids", "s1");
    b.PutIndexState(2, "centroids", "s2");
    ASSERT_OK(st->Write(&b));
    ASSERT_OK(st->DropCollection(1));

    ASSERT_OK_AND_ASSIGN(auto cols, st->ListCollections());
    ASSERT_EQ(cols.size(), 1u);
    EXPECT_EQ(cols[0].id, 2u);
    EXPECT_EQ(cols[0].name, "two");
    EXPECT_EQ(cols[0].meta, "meta2");
    EXPECT_TRUE(ScanCodeKeys(st.get(), 1).empty());
    EXPECT_EQ(ScanCodeKeys(st.get(), 2).size(), 50u);
    EXPECT_EQ(GetPoint(st.get(), 1, "p1").status().code(), StatusCode::kNotFound);
    EXPECT_EQ(st->GetIndexState(1, "centroids").status().code(), StatusCode::kNotFound);
    ASSERT_OK_AND_ASSIGN(std::string s2, st->GetIndexState(2, "centroids"));
    EXPECT_EQ(s2, "s2");
    ASSERT_OK_AND_ASSIGN(auto pl, st->MultiGetPayloads(1, {"p1"}));
    EXPECT_FALSE(pl[0].has_value());
    // Dropping an absent collection is a no-op; the max cid is out of range.
    ASSERT_OK(st->DropCollection(77));
    EXPECT_EQ(st->DropCollection(UINT32_MAX).code(), StatusCode::kInvalidArgument);
  }
  // After reopen, the drop is still in effect and cid 2 intact.
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(ScanCodeKeys(st.get(), 1).empty());
  EXPECT_EQ(ScanCodeKeys(st.get(), 2).size(), 50u);
  ASSERT_OK_AND_ASSIGN(StoredPoint p, GetPoint(st.get(), 2, "p7"));
  EXPECT_EQ(p.original, v);
}

TEST(StoreTest, ReopenKeepsDataAndCollectionIds) {
  TempDir dir;
  const auto v = Vec(16, 3.0f);
  uint32_t a = 0, b = 0;
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    ASSERT_OK_AND_ASSIGN(a, st->AllocateCollectionId());
    ASSERT_OK_AND_ASSIGN(b, st->AllocateCollectionId());
    EXPECT_GE(a, 1u);
    EXPECT_GT(b, a);
    WriteBatch w;
    w.PutCollection(a, "zeta", "");
    w.PutCollection(b, "alpha", std::string("m\x00m", 3));
    PutPoint(&w, a, "k", "code", v.data(), v.size(), std::string_view("{}"));
    ASSERT_OK(st->Write(&w));
    EXPECT_GT(st->ApproximateDiskBytes(), 0u);  // at least the WAL
  }
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  ASSERT_OK_AND_ASSIGN(uint32_t c, st->AllocateCollectionId());
  EXPECT_GT(c, b);  // ids are never reused
  ASSERT_OK_AND_ASSIGN(auto cols, st->ListCollections());
  ASSERT_EQ(cols.size(), 2u);  // ordered by name
  EXPECT_EQ(cols[0].name, "alpha");
  EXPECT_EQ(cols[0].id, b);
  EXPECT_EQ(cols[0].meta, std::string("m\x00m", 3));
  EXPECT_EQ(cols[1].name, "zeta");
  EXPECT_EQ(cols[1].id, a);
  ASSERT_OK_AND_ASSIGN(StoredPoint p, GetPoint(st.get(), a, "k"));
  EXPECT_EQ(p.code, "code");
  EXPECT_EQ(p.original, v);
  EXPECT_EQ(p.payload, std::optional<std::string>("{}"));
  EXPECT_GT(st->ApproximateDiskBytes(), 0u);  // flushed SSTs after clean close
}

TEST(StoreTest, UnknownFormatVersionIsRefused) {
  TempDir dir;
  { ASSERT_NE(MustOpen(dir.Sub("db")), nullptr); }
  {
    RawDb raw(dir.Sub("db"));
    ASSERT_NE(raw.db, nullptr);
    std::string v;
    ASSERT_TRUE(
        raw.db->Get(rocksdb::ReadOptions(), raw.handles[kRawMeta], "format_version", &v).ok());
    EXPECT_EQ(v, std::string("\x02\x00\x00\x00", 4));
    ASSERT_TRUE(raw.db
                    ->Put(rocksdb::WriteOptions(), raw.handles[kRawMeta], "format_version",
                          std::string("\x03\x00\x00\x00", 4))
                    .ok());
  }
  auto st = Store::Open(dir.Sub("db"), SmallOptions());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(st.status().message(),
            "database at " + dir.Sub("db") +
                " has format version 3; this build of qvec reads versions 1 and 2");
}

// A version-1 database as qvec 0.x wrote it: codes and originals keyed
// BE32(cid) + point key (9-byte integer keys here), no points records.
void WriteV1Database(const std::string& path, uint32_t cid, int points, uint32_t version,
                     int already_converted) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const char* n : {"default", "meta", "codes", "originals", "payloads", "index_state"}) {
    descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  }
  // A crashed upgrade had created the points column family.
  if (already_converted > 0) descs.emplace_back("points", rocksdb::ColumnFamilyOptions());
  rocksdb::DBOptions o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> h;
  ASSERT_TRUE(rocksdb::DB::Open(o, path, descs, &h, &db).ok());
  auto be32 = [](uint32_t x) {
    return std::string{static_cast<char>(x >> 24), static_cast<char>(x >> 16),
                       static_cast<char>(x >> 8), static_cast<char>(x)};
  };
  rocksdb::WriteBatch wb;
  std::string ver(4, '\0');
  std::memcpy(ver.data(), &version, 4);
  wb.Put(h[1], "format_version", ver);
  uint32_t next = cid + 1;
  std::string next_s(4, '\0');
  std::memcpy(next_s.data(), &next, 4);
  wb.Put(h[1], "next_collection_id", next_s);
  wb.Put(h[1], "collection/" + be32(cid), std::string("\x01", 1) + "c" + "{\"version\":1}");
  for (int i = 0; i < points; ++i) {
    std::string pk(1, '\x01');
    pk += be32(0) + be32(static_cast<uint32_t>(i));
    const auto v = Vec(4, static_cast<float>(i));
    const std::string orig(reinterpret_cast<const char*>(v.data()), 16);
    const std::string code = "code" + std::to_string(i);
    if (i < already_converted) {  // as a crashed upgrade left it
      wb.Put(h[2], be32(cid) + std::string("\x00\x00", 2) + pk, code);
      wb.Put(h[3], be32(cid) + std::string("\x00\x00", 2) + pk, orig);
      wb.Put(h[6], be32(cid) + pk, "");
    } else {
      wb.Put(h[2], be32(cid) + pk, code);
      wb.Put(h[3], be32(cid) + pk, orig);
    }
    if (i % 2 == 0) wb.Put(h[4], be32(cid) + pk, "payload" + std::to_string(i));
  }
  // An original without a code was no point in version 1.
  wb.Put(h[3], be32(cid) + std::string("\x01\x00\x00\x00\x00\xff\xff\xff\xff", 9), "junk");
  ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &wb).ok());
  for (auto* x : h) db->DestroyColumnFamilyHandle(x).PermitUncheckedError();
  delete db;
}

void ExpectUpgraded(Store* st, uint32_t cid, int points) {
  std::vector<std::string> records;
  ASSERT_OK(st->ScanPoints(cid, [&](std::string_view k, std::string_view) {
    records.emplace_back(k);
    return true;
  }));
  EXPECT_EQ(records.size(), size_t(points));
  EXPECT_EQ(ScanCodeKeys(st, cid).size(), size_t(points));
  size_t originals = 0;
  ASSERT_OK(st->ScanOriginals(cid, 0, 4, [&](std::string_view, const float*) {
    ++originals;
    return true;
  }));
  EXPECT_EQ(originals, size_t(points));  // the orphan is gone
  for (int i = 0; i < points; i += 37) {
    ASSERT_OK_AND_ASSIGN(StoredPoint p, GetPoint(st, cid, records[i]));
    ASSERT_EQ(records[i].size(), 9u);
    const uint32_t id = (uint32_t{static_cast<uint8_t>(records[i][5])} << 24) |
                        (uint32_t{static_cast<uint8_t>(records[i][6])} << 16) |
                        (uint32_t{static_cast<uint8_t>(records[i][7])} << 8) |
                        uint32_t{static_cast<uint8_t>(records[i][8])};
    EXPECT_EQ(p.code, "code" + std::to_string(id));
    EXPECT_EQ(p.original, Vec(4, static_cast<float>(id)));
    if (id % 2 == 0) {
      EXPECT_EQ(p.payload, std::optional<std::string>("payload" + std::to_string(id)));
    } else {
      EXPECT_FALSE(p.payload.has_value());
    }
  }
  ASSERT_OK_AND_ASSIGN(auto cols, st->ListCollections());
  ASSERT_EQ(cols.size(), 1u);
  EXPECT_EQ(cols[0].meta, "{\"version\":1}");  // the engine migrates its own metadata
}

TEST(StoreTest, VersionOneDatabaseIsUpgradedInPlace) {
  TempDir dir;
  WriteV1Database(dir.Sub("db"), 7, 2500, 1, 0);
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    ExpectUpgraded(st.get(), 7, 2500);
    // Writable in the new format; another id comes after the old ones.
    ASSERT_OK_AND_ASSIGN(uint32_t next, st->AllocateCollectionId());
    EXPECT_EQ(next, 8u);
  }
  RawDb raw(dir.Sub("db"));
  std::string v;
  ASSERT_TRUE(
      raw.db->Get(rocksdb::ReadOptions(), raw.handles[kRawMeta], "format_version", &v).ok());
  EXPECT_EQ(v, std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(raw.Count(kRawCodes), 2500u);
  EXPECT_EQ(raw.Count(kRawOriginals), 2500u);
}

TEST(StoreTest, InterruptedUpgradeResumes) {
  // What a crash after 1024 converted points leaves: the upgrading marker,
  // some vectors under the new keys and the rest under the old.
  TempDir dir;
  WriteV1Database(dir.Sub("db"), 3, 1500, kFormatUpgradingToV2, 1024);
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  ExpectUpgraded(st.get(), 3, 1500);
}

TEST(StoreTest, SecondOpenWhileOpenIsUnavailable) {
  TempDir dir;
  auto first = MustOpen(dir.Sub("db"));
  ASSERT_NE(first, nullptr);
  auto second = Store::Open(dir.Sub("db"), SmallOptions());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable) << second.status().ToString();
  EXPECT_EQ(second.status().message(),
            "database at " + dir.Sub("db") + " is in use by another process");
  first.reset();
  EXPECT_NE(MustOpen(dir.Sub("db")), nullptr);  // lock released on close
}

TEST(StoreTest, MissingDatabaseWithoutCreateIsNotFound) {
  TempDir dir;
  StoreOptions o = SmallOptions();
  o.create_if_missing = false;
  fs::create_directory(dir.Sub("empty"));
  auto st = Store::Open(dir.Sub("empty"), o);
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  st = Store::Open(dir.Sub("absent"), o);
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir.Sub("absent")));
  { ASSERT_NE(MustOpen(dir.Sub("db")), nullptr); }
  EXPECT_NE(MustOpen(dir.Sub("db"), o), nullptr);  // an existing database opens
}

TEST(StoreTest, CorruptedDatabaseIsDataLoss) {
  TempDir dir;
  { ASSERT_NE(MustOpen(dir.Sub("db")), nullptr); }
  {
    FILE* f = fopen(dir.Sub("db/CURRENT").c_str(), "w");
    ASSERT_NE(f, nullptr);
    fputs("garbage", f);  // no trailing newline: RocksDB reports Corruption
    fclose(f);
  }
  auto st = Store::Open(dir.Sub("db"), SmallOptions());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kDataLoss) << st.status().ToString();
  EXPECT_THAT(st.status().message(), HasSubstr("corrupted"));
}

TEST(StoreTest, MultiGetOriginals) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  constexpr size_t kDim = 8;
  WriteBatch b;
  for (int i = 0; i < 20; ++i) {
    const auto v = Vec(kDim, static_cast<float>(i));
    PutPoint(&b, 5, "k" + std::to_string(i), "c", v.data(), kDim, std::nullopt);
  }
  ASSERT_OK(st->Write(&b));
  const std::vector<std::string> keys = {"k7", "k0", "k19", "k7"};
  std::vector<float> out(keys.size() * kDim, -99.0f);
  ASSERT_OK(st->MultiGetOriginals(5, 0, keys, kDim, out.data()));
  for (size_t i = 0; i < keys.size(); ++i) {
    const auto want = Vec(kDim, static_cast<float>(std::stoi(keys[i].substr(1))));
    EXPECT_TRUE(std::equal(want.begin(), want.end(), out.begin() + i * kDim)) << i;
  }
  const Status missing = st->MultiGetOriginals(5, 0, {"k1", "nope", "k2"}, kDim, out.data());
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("nope"));
  EXPECT_EQ(st->MultiGetOriginals(6, 0, {"k1"}, kDim, out.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ(st->MultiGetOriginals(5, 0, {"k1"}, kDim - 1, out.data()).code(),
            StatusCode::kDataLoss);
  ASSERT_OK(st->MultiGetOriginals(5, 0, {}, kDim, nullptr));
}

TEST(StoreTest, CheckpointOpensWithTheData) {
  TempDir dir;
  const auto v = Vec(6, 4.0f);
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    WriteBatch b;
    b.PutCollection(1, "c", "m");
    PutPoint(&b, 1, "a", "ca", v.data(), v.size(), std::string_view("pa"));
    b.PutIndexState(1, "s", "state");
    ASSERT_OK(st->Write(&b));
    ASSERT_OK(st->Checkpoint(dir.Sub("cp")));
    EXPECT_EQ(st->Checkpoint(dir.Sub("cp")).code(), StatusCode::kAlreadyExists);
    EXPECT_NE(st->Checkpoint(dir.Sub("no/such/parent")).code(), StatusCode::kOk);
    // Later writes do not reach the checkpoint.
    WriteBatch later;
    PutPoint(&later, 1, "b", "cb", v.data(), v.size(), std::nullopt);
    ASSERT_OK(st->Write(&later));
  }
  auto cp = MustOpen(dir.Sub("cp"));
  ASSERT_NE(cp, nullptr);
  ASSERT_OK_AND_ASSIGN(StoredPoint p, GetPoint(cp.get(), 1, "a"));
  EXPECT_EQ(p.code, "ca");
  EXPECT_EQ(p.original, v);
  EXPECT_EQ(p.payload, std::optional<std::string>("pa"));
  EXPECT_THAT(ScanCodeKeys(cp.get(), 1), ElementsAre("a"));
  ASSERT_OK_AND_ASSIGN(std::string s, cp->GetIndexState(1, "s"));
  EXPECT_EQ(s, "state");
  ASSERT_OK_AND_ASSIGN(auto cols, cp->ListCollections());
  ASSERT_EQ(cols.size(), 1u);
  EXPECT_EQ(cols[0].name, "c");
}

TEST(StoreTest, InvalidBatchIsRejectedWhole) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  const auto v = Vec(2, 0.0f);
  WriteBatch b;
  PutPoint(&b, 1, "ok", "c", v.data(), 2, std::nullopt);
  PutPoint(&b, UINT32_MAX, "bad", "c", v.data(), 2, std::nullopt);
  EXPECT_EQ(st->Write(&b).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(ScanCodeKeys(st.get(), 1).empty());
  WriteBatch n;
  PutPoint(&n, 1, "null", "c", nullptr, 3, std::nullopt);
  EXPECT_EQ(st->Write(&n).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st->Write(nullptr).code(), StatusCode::kInvalidArgument);
}

TEST(StoreTest, ConcurrentWritersAndIdAllocation) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  constexpr int kThreads = 4, kIds = 25, kBatches = 20;
  std::vector<std::vector<uint32_t>> ids(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto v = Vec(4, static_cast<float>(t));
      for (int i = 0; i < kIds; ++i) {
        auto id = st->AllocateCollectionId();
        if (!id.ok())
          ++failures;
        else
          ids[t].push_back(*id);
      }
      for (int i = 0; i < kBatches; ++i) {
        WriteBatch b;
        for (int j = 0; j < 10; ++j) {
          char key[32];
          snprintf(key, sizeof(key), "t%d-%d", t, i * 10 + j);
          PutPoint(&b, 1, key, "c", v.data(), 4, std::nullopt);
        }
        if (!st->Write(&b).ok()) ++failures;
        if (!st->ScanCodes(1, 0, [](std::string_view, std::string_view) { return true; }).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::set<uint32_t> all;
  for (auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), size_t{kThreads * kIds});
  EXPECT_EQ(ScanCodeKeys(st.get(), 1).size(), size_t{kThreads * kBatches * 10});
}

// ---------------------------------------------------------------------------
// kill -9 durability. The child is this test binary re-executed (fork+exec,
// so it does not inherit RocksDB's background threads in a forked state) with
// QVEC_STORE_CRASH_CHILD set; a static initializer runs the writer loop
// before gtest starts and never returns.
// ---------------------------------------------------------------------------
constexpr int kPointsPerBatch = 8;
constexpr size_t kCrashDim = 16;
constexpr const char* kChildEnv = "QVEC_STORE_CRASH_CHILD";  // "dir:cid:fd:sync"

std::string CrashKey(uint32_t batch, int j) {
  char buf[32];
  snprintf(buf, sizeof(buf), "b%08u-%d", batch, j);  // sorts by batch
  return buf;
}
std::vector<float> CrashVec(uint32_t batch, int j) {
  return Vec(kCrashDim, static_cast<float>(batch) * 100.0f + static_cast<float>(j));
}

[[noreturn]] void RunCrashChild(const char* spec) {
  char dir[4096];
  unsigned cid = 0;
  int fd = -1, sync = 0;
  if (sscanf(spec, "%4095[^:]:%u:%d:%d", dir, &cid, &fd, &sync) != 4) _exit(2);
  StoreOptions o;
  o.block_cache_bytes = size_t{4} << 20;
  o.sync_writes = sync != 0;
  auto st = Store::Open(dir, o);
  if (!st.ok()) {
    fprintf(stderr, "crash child: open failed: %s\n", st.status().ToString().c_str());
    _exit(3);
  }
  for (uint32_t batch = 0;; ++batch) {
    WriteBatch b;
    for (int j = 0; j < kPointsPerBatch; ++j) {
      const auto v = CrashVec(batch, j);
      const std::string k = CrashKey(batch, j);
      PutPoint(&b, cid, k, k, v.data(), kCrashDim, std::string_view(k));
    }
    b.PutIndexState(cid, "last", std::to_string(batch));
    const Status s = (*st)->Write(&b);
    if (!s.ok()) {
      fprintf(stderr, "crash child: write failed: %s\n", s.ToString().c_str());
      _exit(4);
    }
    if (write(fd, &batch, sizeof(batch)) != sizeof(batch)) _exit(5);  // acknowledged
  }
}

// Runs the child from a global test environment, i.e. inside main() once
// every static object (RocksDB's included) is initialized.
class CrashChildEnvironment : public ::testing::Environment {
 public:
  explicit CrashChildEnvironment(const char* spec) : spec_(spec) {}
  void SetUp() override { RunCrashChild(spec_); }

 private:
  const char* spec_;
};

[[maybe_unused]] const bool kCrashChildHook = [] {
  if (const char* spec = std::getenv(kChildEnv)) {
    ::testing::AddGlobalTestEnvironment(new CrashChildEnvironment(spec));
  }
  return true;
}();

// Starts the child; returns its pid and the read end of the ack pipe.
pid_t SpawnCrashChild(const std::string& dir, uint32_t cid, bool sync, int* read_fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  constexpr int kChildFd = 100;  // dup2 clears O_CLOEXEC on the child's copy
  const std::string env = std::string(kChildEnv) + "=" + dir + ":" + std::to_string(cid) + ":" +
                          std::to_string(kChildFd) + ":" + (sync ? "1" : "0");
  std::vector<std::string> env_strings = {env};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kChildEnv, std::strlen(kChildEnv)) != 0) env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  char filter[] = "--gtest_filter=StoreOptionsTest.*";  // environments run only with tests
  char* argv[] = {exe, filter, nullptr};
  const int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  const pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    if (dup2(fds[1], kChildFd) < 0) _exit(6);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);  // keep gtest's output clean
    execve("/proc/self/exe", argv, envp.data());
    _exit(7);
  }
  close(fds[1]);
  if (devnull >= 0) close(devnull);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  *read_fd = fds[0];
  return pid;
}

TEST(StoreCrashTest, KillNineKeepsEveryAcknowledgedBatchAtomically) {
  TempDir dir;
  const std::string db = dir.Sub("db");
  { ASSERT_NE(MustOpen(db), nullptr); }
  std::mt19937 rng(20261126);
  constexpr int kIterations = 20;
  std::map<uint32_t, size_t> expected_points;  // cid -> points that must stay
  size_t total_acked = 0, killed_mid_batch = 0;
  for (int iter = 0; iter < kIterations; ++iter) {
    const uint32_t cid = static_cast<uint32_t>(iter + 1);
    const bool sync = iter % 2 == 1;
    int fd = -1;
    const pid_t pid = SpawnCrashChild(db, cid, sync, &fd);
    ASSERT_GT(pid, 0);
    const auto delay = std::chrono::milliseconds(40 + rng() % 200);
    const auto deadline = std::chrono::steady_clock::now() + delay;

    std::string acks;
    char buf[4096];
    bool eof = false;
    while (!eof && std::chrono::steady_clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::max<int64_t>(left, 1))) > 0) {
        const ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0)
          eof = true;
        else
          acks.append(buf, static_cast<size_t>(n));
      }
    }
    kill(pid, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
    // A child that exited on its own failed (it loops until killed).
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exit status " << WEXITSTATUS(wstatus);
    for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) acks.append(buf, static_cast<size_t>(n));
    close(fd);
    ASSERT_EQ(acks.size() % 4, 0u);
    const size_t num_acked = acks.size() / 4;
    for (size_t i = 0; i < num_acked; ++i) {  // acks arrive in order 0, 1, 2, ...
      uint32_t b;
      std::memcpy(&b, acks.data() + 4 * i, 4);
      ASSERT_EQ(b, i);
    }

    auto st = MustOpen(db);
    ASSERT_NE(st, nullptr);
    // Count the points of every batch present.
    std::map<uint32_t, int> per_batch;
    ASSERT_OK(st->ScanCodes(cid, 0, [&](std::string_view k, std::string_view code) {
      EXPECT_EQ(k, code);
      per_batch[static_cast<uint32_t>(std::stoul(std::string(k.substr(1, 8))))]++;
      return true;
    }));
    // Every acknowledged batch is present; at most one unacknowledged (the one
    // in flight) may be; each is all-or-nothing.
    const size_t present = per_batch.size();
    EXPECT_GE(present, num_acked) << "iteration " << iter;
    EXPECT_LE(present, num_acked + 1) << "iteration " << iter;
    for (const auto& [batch, count] : per_batch) {
      EXPECT_LT(batch, present);  // no gaps
      EXPECT_EQ(count, kPointsPerBatch) << "batch " << batch << " torn in iteration " << iter;
    }
    if (present > 0) {
      ASSERT_OK_AND_ASSIGN(std::string last, st->GetIndexState(cid, "last"));
      EXPECT_EQ(last, std::to_string(present - 1));
      // Spot-check the originals and payloads of the last batch.
      const uint32_t b = static_cast<uint32_t>(present - 1);
      std::vector<std::string> keys;
      for (int j = 0; j < kPointsPerBatch; ++j) keys.push_back(CrashKey(b, j));
      std::vector<float> out(keys.size() * kCrashDim);
      ASSERT_OK(st->MultiGetOriginals(cid, 0, keys, kCrashDim, out.data()));
      for (int j = 0; j < kPointsPerBatch; ++j) {
        const auto want = CrashVec(b, j);
        EXPECT_TRUE(std::equal(want.begin(), want.end(), out.begin() + j * kCrashDim));
      }
      ASSERT_OK_AND_ASSIGN(auto pl, st->MultiGetPayloads(cid, keys));
      for (int j = 0; j < kPointsPerBatch; ++j) EXPECT_EQ(pl[j], keys[j]);
    }
    // Earlier iterations' data survived this crash and recovery too.
    for (const auto& [old_cid, n] : expected_points) {
      EXPECT_EQ(ScanCodeKeys(st.get(), old_cid).size(), n) << "cid " << old_cid;
    }
    expected_points[cid] = present * kPointsPerBatch;
    total_acked += num_acked;
    killed_mid_batch += present > num_acked ? 1 : 0;
  }
  // Not vacuous: the children acknowledged many batches before being killed.
  EXPECT_GT(total_acked, size_t{kIterations});
  printf(
      "[ crash    ] %zu acknowledged batches over %d kills; %zu kills left an "
      "unacknowledged batch committed\n",
      total_acked, kIterations, killed_mid_batch);
}


// ---- snapshot files: export, import, commit, abort -------------------------

// Collection 5 ("five") with 50 points and an index state; collection 6 with
// 3 points; alias "al" -> "five".
void FillForExport(Store* st) {
  WriteBatch b;
  b.PutCollection(5, "five", "meta-of-five");
  b.PutCollection(6, "six", "meta-of-six");
  b.PutAlias("al", "five");
  for (int i = 0; i < 50; ++i) {
    const auto v = Vec(4, static_cast<float>(i));
    const std::string key = "p" + std::to_string(1000 + i);
    PutPoint(&b, 5, key, "code" + std::to_string(i), v.data(), v.size(),
             i % 2 ? std::optional<std::string_view>("{\"i\":1}") : std::nullopt);
  }
  for (int i = 0; i < 3; ++i) {
    const auto v = Vec(4, -static_cast<float>(i));
    PutPoint(&b, 6, "q" + std::to_string(i), "c", v.data(), v.size(), std::nullopt);
  }
  b.PutIndexState(5, "calibration", std::string("\x00\x01\x02", 3));
  ASSERT_OK(st->Write(&b));
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(StoreSnapshotTest, ExportImportCommitRoundTrip) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  FillForExport(st.get());
  const uint32_t five[] = {5};
  ASSERT_OK_AND_ASSIGN(SnapshotFileInfo info,
                       st->ExportCollections(five, {}, dir.Sub("five.snapshot")));
  EXPECT_EQ(info.size_bytes, fs::file_size(dir.Sub("five.snapshot")));
  EXPECT_EQ(info.sha256.size(), 64u);
  EXPECT_FALSE(fs::exists(dir.Sub("five.snapshot.tmp")));
  // The file exists: a second export to it is refused and leaves it intact.
  EXPECT_EQ(st->ExportCollections(five, {}, dir.Sub("five.snapshot")).status().code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(fs::file_size(dir.Sub("five.snapshot")), info.size_bytes);

  // Import as collection 9 in another database, invisible until committed.
  auto other = MustOpen(dir.Sub("other"));
  ASSERT_NE(other, nullptr);
  ASSERT_OK_AND_ASSIGN(auto imported, other->ImportCollection(dir.Sub("five.snapshot"), 9, "", ""));
  EXPECT_EQ(imported.first.name, "five");
  EXPECT_EQ(imported.first.meta, "meta-of-five");
  EXPECT_EQ(imported.second.sha256, info.sha256);
  ASSERT_OK_AND_ASSIGN(auto listed, other->ListCollections());
  EXPECT_TRUE(listed.empty());
  ASSERT_OK(other->CommitImport(9, "renamed", "meta-of-five", std::nullopt));
  ASSERT_OK_AND_ASSIGN(listed, other->ListCollections());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, 9u);
  EXPECT_EQ(listed[0].name, "renamed");
  EXPECT_EQ(ScanCodeKeys(other.get(), 9), ScanCodeKeys(st.get(), 5));
  for (int i = 0; i < 50; ++i) {
    const std::string key = "p" + std::to_string(1000 + i);
    ASSERT_OK_AND_ASSIGN(StoredPoint a, GetPoint(st.get(), 5, key));
    ASSERT_OK_AND_ASSIGN(StoredPoint b, GetPoint(other.get(), 9, key));
    EXPECT_EQ(a.code, b.code);
    EXPECT_EQ(a.original, b.original);
    EXPECT_EQ(a.payload, b.payload);
  }
  ASSERT_OK_AND_ASSIGN(std::string state, other->GetIndexState(9, "calibration"));
  EXPECT_EQ(state, std::string("\x00\x01\x02", 3));
  // Collection 6 was not in the file.
  EXPECT_TRUE(ScanCodeKeys(other.get(), 6).empty());
}

TEST(StoreSnapshotTest, CommitReplacesTheOldCollectionAtomically) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  FillForExport(st.get());
  const uint32_t six[] = {6};
  ASSERT_OK(st->ExportCollections(six, {}, dir.Sub("six.snapshot")).status());
  ASSERT_OK(st->ImportCollection(dir.Sub("six.snapshot"), 7, "five", "").status());
  ASSERT_OK(st->CommitImport(7, "five", "meta-of-six", 5u));
  ASSERT_OK_AND_ASSIGN(auto listed, st->ListCollections());
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "five");
  EXPECT_EQ(listed[0].id, 7u);
  EXPECT_TRUE(ScanCodeKeys(st.get(), 5).empty());  // the replaced data is gone
  EXPECT_EQ(ScanCodeKeys(st.get(), 7).size(), 3u);
  EXPECT_EQ(st->GetIndexState(5, "calibration").status().code(), StatusCode::kNotFound);
}

TEST(StoreSnapshotTest, FullSnapshotImportsTheCollectionOfTheGivenName) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  FillForExport(st.get());
  const uint32_t both[] = {5, 6};
  const std::pair<std::string, std::string> aliases[] = {{"al", "five"}};
  ASSERT_OK(st->ExportCollections(both, aliases, dir.Sub("full.snapshot")).status());
  // The first collection would be taken tentatively; "six" comes second.
  ASSERT_OK_AND_ASSIGN(auto six, st->ImportCollection(dir.Sub("full.snapshot"), 20, "six", ""));
  EXPECT_EQ(six.first.meta, "meta-of-six");
  ASSERT_OK(st->CommitImport(20, "six-copy", six.first.meta, std::nullopt));
  EXPECT_EQ(ScanCodeKeys(st.get(), 20), ScanCodeKeys(st.get(), 6));
  ASSERT_OK_AND_ASSIGN(auto five, st->ImportCollection(dir.Sub("full.snapshot"), 21, "five", ""));
  EXPECT_EQ(five.first.meta, "meta-of-five");
  ASSERT_OK(st->CommitImport(21, "five-copy", five.first.meta, std::nullopt));
  EXPECT_EQ(ScanCodeKeys(st.get(), 21), ScanCodeKeys(st.get(), 5));
  // No collection of that name: NotFound naming what the file holds, and
  // nothing written.
  auto none = st->ImportCollection(dir.Sub("full.snapshot"), 22, "seven", "");
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("'five', 'six'"));
  EXPECT_TRUE(ScanCodeKeys(st.get(), 22).empty());
}

TEST(StoreSnapshotTest, DamagedTruncatedAndForeignFilesAreRefusedAndWriteNothing) {
  TempDir dir;
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  FillForExport(st.get());
  const uint32_t five[] = {5};
  ASSERT_OK_AND_ASSIGN(SnapshotFileInfo info,
                       st->ExportCollections(five, {}, dir.Sub("five.snapshot")));
  const std::string good = ReadAll(dir.Sub("five.snapshot"));
  uint32_t cid = 100;
  auto refused = [&](std::string_view bytes) {
    WriteAll(dir.Sub("bad.snapshot"), bytes);
    auto r = st->ImportCollection(dir.Sub("bad.snapshot"), cid, "", "");
    const bool ok = !r.ok() && (r.status().code() == StatusCode::kInvalidArgument ||
                                r.status().code() == StatusCode::kFailedPrecondition);
    EXPECT_TRUE(ScanCodeKeys(st.get(), cid).empty());
    ++cid;
    return ok;
  };
  // Every truncation, every single-byte change (in steps, to keep it quick).
  for (size_t n = 0; n < good.size(); n += 7) EXPECT_TRUE(refused(good.substr(0, n))) << n;
  for (size_t i = 0; i < good.size(); i += 5) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x21);
    EXPECT_TRUE(refused(bad)) << "byte " << i;
  }
  EXPECT_TRUE(refused(good + "x"));
  EXPECT_TRUE(refused(std::string(4096, '\0')));  // e.g. a tar
  // The checksum the caller expects.
  auto mismatch = st->ImportCollection(dir.Sub("five.snapshot"), cid, "", std::string(64, 'a'));
  EXPECT_EQ(mismatch.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("checksum mismatch"));
  std::string upper = info.sha256;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(st->ImportCollection(dir.Sub("five.snapshot"), cid, "", upper).ok());
  // Missing file; symlink.
  EXPECT_EQ(st->ImportCollection(dir.Sub("nope"), cid + 1, "", "").status().code(),
            StatusCode::kNotFound);
  fs::create_symlink(dir.Sub("five.snapshot"), dir.Sub("link.snapshot"));
  EXPECT_EQ(st->ImportCollection(dir.Sub("link.snapshot"), cid + 2, "", "").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(StoreSnapshotTest, AnImportNeverCommittedIsRemovedAtTheNextOpen) {
  TempDir dir;
  {
    auto st = MustOpen(dir.Sub("db"));
    ASSERT_NE(st, nullptr);
    FillForExport(st.get());
    const uint32_t five[] = {5};
    ASSERT_OK(st->ExportCollections(five, {}, dir.Sub("five.snapshot")).status());
    // As if the process died between the import and its commit.
    ASSERT_OK(st->ImportCollection(dir.Sub("five.snapshot"), 30, "", "").status());
    EXPECT_EQ(ScanCodeKeys(st.get(), 30).size(), 50u);
  }
  auto st = MustOpen(dir.Sub("db"));
  ASSERT_NE(st, nullptr);
  EXPECT_TRUE(ScanCodeKeys(st.get(), 30).empty());
  EXPECT_EQ(ScanCodeKeys(st.get(), 5).size(), 50u);  // the rest is untouched
  ASSERT_OK_AND_ASSIGN(auto listed, st->ListCollections());
  EXPECT_EQ(listed.size(), 2u);
}

}  // namespace
}  // namespace qvec::storage
