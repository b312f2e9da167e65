// Collection::ListsOf: the IVF list sizes of a field and the list of each
// point (what the dashboard's map colours by).
#include <gtest/gtest.h>

#include <numeric>
#include <random>

#include "qvec/database.h"
#include "tests/util/temp_dir.h"

namespace qvec {
namespace {

TEST(ListsOfTest, ListsOfPointsMatchTheListSizes) {
  testing_util::TempDir dir;
  auto db = Database::Open(DatabaseOptions(), dir.path());
  ASSERT_TRUE(db.ok());
  CollectionConfig cfg;
  cfg.vectors["v"].dimension = 8;
  cfg.vectors["v"].distance = Distance::kEuclid;
  cfg.vectors["v"].index.ivf_threshold = 100;
  cfg.vectors["v"].index.nlist = 16;
  cfg.vectors["w"].dimension = 2;
  ASSERT_TRUE((*db)->CreateCollection("c", cfg).ok());
  auto c = *(*db)->GetCollection("c");
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::vector<Point> points(2000);
  for (size_t i = 0; i < points.size(); ++i) {
    points[i].id = PointId::Num(i);
    auto& v = points[i].vectors["v"];
    for (int d = 0; d < 8; ++d) v.push_back(g(rng) + (i % 4) * 3.0f);
    if (i % 2 == 0) points[i].vectors["w"] = {1.0f, g(rng)};
  }
  ASSERT_TRUE(c->Upsert(points).ok());
  ASSERT_TRUE(c->Optimize().ok());
  std::vector<PointId> ids;
  for (uint64_t i = 0; i < 2000; i += 10) ids.push_back(PointId::Num(i));
  ids.push_back(PointId::Num(999999));  // absent
  auto lists = c->ListsOf("v", ids);
  ASSERT_TRUE(lists.ok()) << lists.status().ToString();
  ASSERT_EQ(lists->list_sizes.size(), 16u);
  EXPECT_EQ(std::accumulate(lists->list_sizes.begin(), lists->list_sizes.end(), size_t{0}), 2000u);
  ASSERT_EQ(lists->point_lists.size(), ids.size());
  EXPECT_EQ(lists->point_lists.back(), -1);
  std::vector<size_t> seen(16, 0);
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    ASSERT_GE(lists->point_lists[i], 0);
    ASSERT_LT(lists->point_lists[i], 16);
    ++seen[lists->point_lists[i]];
  }
  // Every point with a list is in a list that holds vectors.
  for (size_t l = 0; l < 16; ++l) {
    if (seen[l] > 0) EXPECT_GT(lists->list_sizes[l], 0u);
  }
  // The centroids, when asked: one per list (16 * 8 floats).
  lists = c->ListsOf("v", ids, true);
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->centroids.size(), 16u * 8);
  EXPECT_TRUE(c->ListsOf("v", ids, false)->centroids.empty());

  // Field "w" is on every other point: the others get -1.
  lists = c->ListsOf("w", std::vector<PointId>{PointId::Num(0), PointId::Num(1)});
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(std::accumulate(lists->list_sizes.begin(), lists->list_sizes.end(), size_t{0}), 1000u);
  EXPECT_GE(lists->point_lists[0], 0);
  EXPECT_EQ(lists->point_lists[1], -1);
  // A flat index is one list of all its vectors.
  CollectionConfig flat;
  flat.dimension = 4;
  ASSERT_TRUE((*db)->CreateCollection("flat", flat).ok());
  auto f = *(*db)->GetCollection("flat");
  std::vector<Point> few(3);
  for (size_t i = 0; i < 3; ++i) {
    few[i].id = PointId::Num(i);
    few[i].vector = {1.0f, float(i), 0.5f, 0.25f};
  }
  ASSERT_TRUE(f->Upsert(few).ok());
  lists = f->ListsOf("", std::vector<PointId>{PointId::Num(2)});
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(lists->list_sizes, std::vector<uint32_t>{3});
  EXPECT_EQ(lists->point_lists, std::vector<int64_t>{0});
  EXPECT_EQ(c->ListsOf("nope", ids).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->ListsOf("v", std::vector<PointId>(10001)).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qvec
