#include "index/label_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace qvec::index {
namespace {

TEST(LabelMapTest, DenseAndSparseLabelsBehaveLikeAHashMap) {
  LabelMap map;
  std::unordered_map<uint64_t, uint64_t> reference;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200000; ++i) {
    // Mostly small labels, sometimes huge ones.
    const uint64_t label = (rng() % 8 == 0) ? rng() : rng() % 50000;
    if (rng() % 4 == 0) {
      EXPECT_EQ(map.Erase(label), reference.erase(label) == 1);
    } else {
      const uint64_t value = rng() % 1000000;
      map.Set(label, value);
      reference[label] = value;
    }
  }
  EXPECT_EQ(map.size(), reference.size());
  for (const auto& [label, value] : reference) {
    const uint64_t* found = map.Find(label);
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(*found, value);
  }
  EXPECT_EQ(map.Find(123456789012ULL), nullptr);
}

TEST(LabelMapTest, DenseLabelsCostAboutEightBytes) {
  LabelMap map;
  for (uint64_t label = 0; label < 1000000; ++label) map.Set(label, label * 2);
  EXPECT_EQ(map.size(), 1000000u);
  EXPECT_LE(map.MemoryBytes(), 1000000u * 8 * 3 / 2 + 65536);
  EXPECT_TRUE(map.Erase(5));
  EXPECT_FALSE(map.Contains(5));
  EXPECT_EQ(*map.Find(999999), 1999998u);
}

}  // namespace
}  // namespace qvec::index
