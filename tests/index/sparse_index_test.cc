#include "index/sparse_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

namespace qvec::index {
namespace {

struct Vec {
  std::vector<uint32_t> idx;
  std::vector<float> val;
  SparseView view() const { return {idx, val}; }
};

// A SPLADE-like vector: `nnz` dimensions drawn with a skewed (Zipf-like)
// distribution over `dims`, positive weights (or signed ones). With
// `rarity`, weights grow with the dimension's rarity, as BM25 or SPLADE
// weigh terms (common terms weigh little).
Vec RandomVec(std::mt19937& rng, size_t dims, size_t nnz, bool signed_values,
              bool rarity = false) {
  std::set<uint32_t> chosen;
  std::uniform_real_distribution<double> u(0, 1);
  while (chosen.size() < nnz) {
    chosen.insert(static_cast<uint32_t>(std::pow(u(rng), 2.5) * dims));
  }
  Vec v;
  for (uint32_t d : chosen) {
    v.idx.push_back(d);
    float w = static_cast<float>(u(rng) * 2 + 0.01);
    if (rarity) w *= static_cast<float>(0.05 + static_cast<double>(d) / static_cast<double>(dims));
    if (signed_values && u(rng) < 0.3) w = -w;
    v.val.push_back(w);
  }
  return v;
}

// Brute force: every live vector sharing a dimension, by score then by
// insertion order (the index's tie rule); `order` gives the insertion rank.
std::vector<SparseHit> BruteForce(const std::map<uint64_t, Vec>& live,
                                  const std::map<uint64_t, uint64_t>& order, const Vec& q,
                                  size_t k, const std::function<bool(uint64_t)>* accept) {
  std::vector<SparseHit> all;
  for (const auto& [label, v] : live) {
    bool shared = false;
    for (uint32_t d : v.idx) shared |= std::binary_search(q.idx.begin(), q.idx.end(), d);
    if (!shared || (accept && !(*accept)(label))) continue;
    all.push_back({label, SparseDot(v.view(), q.view())});
  }
  std::sort(all.begin(), all.end(), [&](const SparseHit& a, const SparseHit& b) {
    if (a.score != b.score) return a.score > b.score;
    return order.at(a.label) < order.at(b.label);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

void ExpectSame(const std::vector<SparseHit>& got, const std::vector<SparseHit>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].score, want[i].score, 1e-4f * std::max(1.0f, std::fabs(want[i].score)))
        << "rank " << i;
    if (got[i].label != want[i].label) {
      // Only a near-tie (float summation order) may swap two hits.
      EXPECT_NEAR(got[i].score, want[i].score, 1e-5f) << "rank " << i;
    }
  }
}

TEST(SparseIndexTest, CanonicalizeSortsAndRejects) {
  std::vector<uint32_t> idx{5, 1, 3};
  std::vector<float> val{0.5f, 0.1f, 0.3f};
  ASSERT_TRUE(CanonicalizeSparse(&idx, &val).ok());
  EXPECT_EQ(idx, (std::vector<uint32_t>{1, 3, 5}));
  EXPECT_EQ(val, (std::vector<float>{0.1f, 0.3f, 0.5f}));
  std::vector<uint32_t> dup{1, 1};
  std::vector<float> dv{1, 2};
  EXPECT_FALSE(CanonicalizeSparse(&dup, &dv).ok());
  std::vector<uint32_t> one{1};
  std::vector<float> two{1, 2};
  EXPECT_FALSE(CanonicalizeSparse(&one, &two).ok());
  std::vector<float> nan{std::nanf("")};
  EXPECT_FALSE(CanonicalizeSparse(&one, &nan).ok());
}

class SparseIndexRandomTest : public ::testing::TestWithParam<bool> {};

TEST_P(SparseIndexRandomTest, EqualsBruteForceThroughWritesAndCompaction) {
  const bool signed_values = GetParam();
  std::mt19937 rng(7);
  SparseIndex index;
  std::map<uint64_t, Vec> live;
  std::map<uint64_t, uint64_t> order;
  uint64_t added = 0;
  auto set = [&](uint64_t label, Vec v) {
    index.Set(label, v.view());
    order[label] = added++;
    live[label] = std::move(v);
  };
  for (uint64_t label = 0; label < 3000; ++label) set(label, RandomVec(rng, 5000, 40, signed_values));
  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    EXPECT_EQ(index.size(), live.size());
    for (int qi = 0; qi < 40; ++qi) {
      const Vec q = RandomVec(rng, 5000, 1 + qi % 30, signed_values);
      for (size_t k : {1, 10, 100}) {
        ExpectSame(index.Search(q.view(), k, nullptr), BruteForce(live, order, q, k, nullptr));
      }
      std::function<bool(uint64_t)> odd = [](uint64_t l) { return l % 3 == 1; };
      ExpectSame(index.Search(q.view(), 10, &odd), BruteForce(live, order, q, 10, &odd));
    }
  };
  check("after inserts");
  // Replace a third, remove a third: most entries die, so it compacts.
  std::uniform_int_distribution<uint64_t> pick(0, 2999);
  for (int i = 0; i < 1500; ++i) {
    const uint64_t l = pick(rng);
    if (i % 2 == 0) {
      set(l, RandomVec(rng, 5000, 40, signed_values));
    } else {
      index.Remove(l);
      live.erase(l);
    }
  }
  check("after replacements and removals");
  ASSERT_TRUE(index.NeedsCompaction());
  const size_t before = index.MemoryBytes();
  index.Compact();
  EXPECT_FALSE(index.NeedsCompaction());
  EXPECT_LT(index.MemoryBytes(), before);
  check("after compaction");
  // Labels removed before the compaction come back with new vectors.
  for (uint64_t l = 0; l < 3000; ++l) {
    if (!live.count(l)) set(l, RandomVec(rng, 5000, 40, signed_values));
  }
  check("after reuse");
}

INSTANTIATE_TEST_SUITE_P(Values, SparseIndexRandomTest, ::testing::Bool());

TEST(SparseIndexTest, ScoreGetAndDocFrequency) {
  SparseIndex index;
  Vec a{{1, 4, 9}, {0.5f, 1.0f, 2.0f}};
  Vec b{{4, 7}, {3.0f, 1.0f}};
  index.Set(10, a.view());
  index.Set(11, b.view());
  EXPECT_EQ(index.DocFrequency(4), 2u);
  EXPECT_EQ(index.DocFrequency(9), 1u);
  EXPECT_EQ(index.DocFrequency(2), 0u);
  Vec q{{4, 9}, {1.0f, 1.0f}};
  float s = 0;
  ASSERT_TRUE(index.Score(10, q.view(), &s));
  EXPECT_FLOAT_EQ(s, 3.0f);
  Vec miss{{2}, {1.0f}};
  EXPECT_FALSE(index.Score(10, miss.view(), &s));
  std::vector<uint32_t> idx;
  std::vector<float> val;
  index.Get(11, &idx, &val);
  EXPECT_EQ(idx, b.idx);
  EXPECT_EQ(val, b.val);
  index.Remove(11);
  EXPECT_EQ(index.DocFrequency(4), 1u);
  EXPECT_FALSE(index.Contains(11));
  EXPECT_TRUE(index.Search(Vec{{7}, {1.0f}}.view(), 5, nullptr).empty());
  // An empty vector removes.
  index.Set(10, SparseView{});
  EXPECT_EQ(index.size(), 0u);
}

TEST(SparseIndexTest, PruningSkipsMostEntries) {
  std::mt19937 rng(3);
  SparseIndex index;
  for (uint64_t l = 0; l < 20000; ++l) {
    index.Set(l, RandomVec(rng, 30000, 60, false, true).view());
  }
  SparseSearchStats stats;
  size_t total = 0;
  for (int i = 0; i < 20; ++i) {
    const Vec q = RandomVec(rng, 30000, 20, false, true);
    for (uint32_t d : q.idx) total += index.DocFrequency(d);
    (void)index.Search(q.view(), 10, nullptr, &stats);
  }
  // MaxScore reads well under the query lists' total length.
  EXPECT_LT(stats.entries_scanned, total * 3 / 4) << stats.entries_scanned << " of " << total;
}

}  // namespace
}  // namespace qvec::index
