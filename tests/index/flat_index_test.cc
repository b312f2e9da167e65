#include "index/flat_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <unordered_set>
#include <vector>

#include "index/recall.h"
#include "index/training.h"
#include "tests/index/test_data.h"

namespace qvec::index {
namespace {

constexpr size_t kDim = 128;
constexpr size_t kBase = 20000;
constexpr size_t kQueries = 200;

// The fixed clustered data set shared by the recall tests (built once).
struct RecallData {
  std::vector<float> base = testing::ClusteredVectors(kBase, kDim, 100, 42);
  std::vector<float> queries = testing::ClusteredVectors(kQueries, kDim, 100, 42 + 1);
};

const RecallData& Data() {
  static const RecallData* data = new RecallData();
  return *data;
}

// Builds an index over Data().base (labels = row numbers) and in-memory
// originals (preprocessed) for rescoring.
struct Built {
  FlatIndex index;
  InMemoryOriginals originals;
};

Built Build(const Quantizer& q, const std::vector<float>& base) {
  Built b{FlatIndex(q), InMemoryOriginals(q.dim())};
  const size_t n = base.size() / q.dim();
  std::vector<float> x(q.dim());
  for (size_t i = 0; i < n; ++i) {
    std::copy_n(base.data() + i * q.dim(), q.dim(), x.begin());
    EXPECT_TRUE(q.Preprocess(x.data()).ok());
    EXPECT_TRUE(b.index.AddVector(i, x.data()).ok());
    b.originals.Put(i, x.data());
  }
  return b;
}

SearchParams WithK(size_t k) {
  SearchParams p;
  p.k = k;
  return p;
}
SearchParams Exact(size_t k) {
  SearchParams p = WithK(k);
  p.ignore_quantization = true;
  return p;
}
SearchParams Rescored(size_t k) {
  SearchParams p = WithK(k);
  p.rescore = true;
  return p;
}
SearchParams Oversampled(float oversampling) {
  SearchParams p;
  p.oversampling = oversampling;
  return p;
}

Quantizer Plain(Metric metric, size_t dim = kDim) {
  auto q = Quantizer::Create(dim, metric, {});
  EXPECT_TRUE(q.ok());
  return std::move(q).value();
}

class FlatRecallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto truth = ExactTopK(Plain(Metric::kCosine), Data().base.data(), kBase, Data().queries.data(),
                           kQueries, 10);
    ASSERT_TRUE(truth.ok());
    truth_ = new std::vector<std::vector<uint64_t>>(std::move(truth).value());
  }
  static void TearDownTestSuite() { delete truth_; }
  static std::vector<std::vector<uint64_t>>* truth_;
};
std::vector<std::vector<uint64_t>>* FlatRecallTest::truth_ = nullptr;

TEST_F(FlatRecallTest, Int8RecallWithoutAndWithRescoring) {
  Built b = Build(Plain(Metric::kCosine), Data().base);
  SearchParams params;
  auto plain = b.index.SearchBatch(Data().queries.data(), kQueries, params, &b.originals);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const double recall = RecallAtK(*truth_, *plain);
  EXPECT_GE(recall, 0.95);
  params.rescore = true;
  params.oversampling = 3.0f;
  auto rescored = b.index.SearchBatch(Data().queries.data(), kQueries, params, &b.originals);
  ASSERT_TRUE(rescored.ok());
  const double recall_rescored = RecallAtK(*truth_, *rescored);
  EXPECT_GE(recall_rescored, 0.995);
  std::printf("recall@10 int8 %.4f, rescored x3 %.4f\n", recall, recall_rescored);
}

TEST_F(FlatRecallTest, SingleSearchMatchesBatch) {
  Built b = Build(Plain(Metric::kCosine), Data().base);
  SearchParams params;
  auto batch = b.index.SearchBatch(Data().queries.data(), 20, params);
  ASSERT_TRUE(batch.ok());
  for (size_t i = 0; i < 20; ++i) {
    auto one = b.index.Search(Data().queries.data() + i * kDim, params);
    ASSERT_TRUE(one.ok());
    ASSERT_EQ(one->size(), (*batch)[i].size());
    for (size_t j = 0; j < one->size(); ++j) {
      EXPECT_EQ((*one)[j].label, (*batch)[i][j].label);
      EXPECT_FLOAT_EQ((*one)[j].score, (*batch)[i][j].score);
    }
  }
}

TEST_F(FlatRecallTest, CalibratedOptionsKeepRecall) {
  QuantizationConfig configs[4];
  configs[0].type = QuantizationType::kAsymmetricUint8;
  configs[1].granularity = Granularity::kPerDimension;
  configs[2].type = QuantizationType::kAsymmetricUint8;
  configs[2].granularity = Granularity::kPerDimension;
  configs[3].granularity = Granularity::kPerCollection;
  configs[3].recall_tuned = true;
  for (const QuantizationConfig& config : configs) {
    auto q = TrainQuantizer(kDim, Metric::kCosine, config, Data().base.data(), 5000);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    Built b = Build(*q, Data().base);
    auto got = b.index.SearchBatch(Data().queries.data(), kQueries, SearchParams{});
    ASSERT_TRUE(got.ok());
    const double recall = RecallAtK(*truth_, *got);
    std::printf("type=%d granularity=%d tuned=%d recall@10 %.4f\n", static_cast<int>(config.type),
                static_cast<int>(config.granularity), config.recall_tuned, recall);
    // Per-dimension scales are folded into the query before it is quantized,
    // which moves rounding error onto the query: slightly lower recall here.
    EXPECT_GE(recall, config.granularity == Granularity::kPerDimension ? 0.93 : 0.95)
        << "type=" << static_cast<int>(config.type)
        << " granularity=" << static_cast<int>(config.granularity);
  }
}

TEST_F(FlatRecallTest, IgnoreQuantizationIsExact) {
  Built b = Build(Plain(Metric::kCosine), Data().base);
  SearchParams params;
  params.ignore_quantization = true;
  auto got = b.index.SearchBatch(Data().queries.data(), 20, params, &b.originals);
  ASSERT_TRUE(got.ok());
  for (size_t i = 0; i < 20; ++i) {
    std::vector<uint64_t> labels;
    for (const Hit& h : (*got)[i]) labels.push_back(h.label);
    EXPECT_EQ(labels, (*truth_)[i]);
  }
}

TEST(FlatIndexTest, FilteredSearchReturnsKAllowedHits) {
  const std::vector<float> base = testing::ClusteredVectors(5000, 32, 10, 7);
  Built b = Build(Plain(Metric::kCosine, 32), base);
  const std::function<bool(uint64_t)> only_multiples_of_7 = [](uint64_t l) { return l % 7 == 0; };
  SearchParams params;
  params.k = 100;
  params.filter = &only_multiples_of_7;
  for (bool batch : {false, true}) {
    std::vector<Hit> hits;
    if (batch) {
      auto r = b.index.SearchBatch(base.data(), 1, params);
      ASSERT_TRUE(r.ok());
      hits = (*r)[0];
    } else {
      auto r = b.index.Search(base.data(), params);
      ASSERT_TRUE(r.ok());
      hits = *r;
    }
    ASSERT_EQ(hits.size(), 100u);
    for (const Hit& h : hits) EXPECT_EQ(h.label % 7, 0u);
    EXPECT_TRUE(std::is_sorted(hits.begin(), hits.end(),
                               [](const Hit& a, const Hit& c) { return a.score > c.score; }));
  }
  // A filter allowing fewer than k labels returns all of them.
  const std::function<bool(uint64_t)> three = [](uint64_t l) { return l < 3; };
  params.filter = &three;
  auto r = b.index.Search(base.data(), params);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 3u);
}

TEST(FlatIndexTest, ScoresFollowMetricConventions) {
  const size_t dim = 48, n = 3000;
  const std::vector<float> base = testing::ClusteredVectors(n, dim, 8, 9);
  const std::vector<float> queries = testing::ClusteredVectors(10, dim, 8, 10);
  for (Metric metric : {Metric::kCosine, Metric::kDot, Metric::kEuclid}) {
    const Quantizer q = Plain(metric, dim);
    Built b = Build(q, base);
    SearchParams params;
    params.k = 20;
    for (size_t i = 0; i < 10; ++i) {
      auto hits = b.index.Search(queries.data() + i * dim, params);
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), 20u);
      auto exact_hits = b.index.Search(queries.data() + i * dim, Exact(20), &b.originals);
      ASSERT_TRUE(exact_hits.ok());
      std::vector<float> qv(queries.begin() + i * dim, queries.begin() + (i + 1) * dim);
      ASSERT_TRUE(q.Preprocess(qv.data()).ok());
      for (const Hit& h : *hits) {
        std::vector<float> x(base.begin() + h.label * dim, base.begin() + (h.label + 1) * dim);
        ASSERT_TRUE(q.Preprocess(x.data()).ok());
        double dot = 0, l2 = 0;
        for (size_t d = 0; d < dim; ++d) {
          dot += qv[d] * x[d];
          l2 += (qv[d] - x[d]) * (qv[d] - x[d]);
        }
        const double exact = metric == Metric::kEuclid ? std::sqrt(l2) : dot;
        const double tol = metric == Metric::kCosine ? 0.01 : 0.05 * std::max(1.0, exact);
        EXPECT_NEAR(h.score, exact, tol) << static_cast<int>(metric);
      }
      // Best first: higher score for Cosine/Dot, smaller distance for Euclid.
      for (size_t j = 1; j < exact_hits->size(); ++j) {
        if (metric == Metric::kEuclid) {
          EXPECT_LE((*exact_hits)[j - 1].score, (*exact_hits)[j].score);
        } else {
          EXPECT_GE((*exact_hits)[j - 1].score, (*exact_hits)[j].score);
        }
      }
    }
  }
}

TEST(FlatIndexTest, ScoreThresholdCutsHits) {
  const std::vector<float> base = testing::ClusteredVectors(2000, 16, 4, 11);
  for (Metric metric : {Metric::kCosine, Metric::kEuclid}) {
    Built b = Build(Plain(metric, 16), base);
    SearchParams params;
    params.k = 2000;
    auto all = b.index.Search(base.data(), params);
    ASSERT_TRUE(all.ok());
    const float threshold = (*all)[100].score;
    params.score_threshold = threshold;
    for (bool rescore : {false, true}) {
      params.rescore = rescore;
      auto cut = b.index.Search(base.data(), params, &b.originals);
      ASSERT_TRUE(cut.ok());
      EXPECT_GT(cut->size(), 80u);
      EXPECT_LT(cut->size(), 120u);
      for (const Hit& h : *cut) {
        if (metric == Metric::kEuclid) {
          EXPECT_LE(h.score, threshold);
        } else {
          EXPECT_GE(h.score, threshold);
        }
      }
    }
  }
}

TEST(FlatIndexTest, AddReplaceRemoveSemantics) {
  const size_t dim = 8;
  const Quantizer q = Plain(Metric::kDot, dim);
  FlatIndex index(q);
  std::vector<float> a(dim, 0.0f), b(dim, 0.0f), c(dim, 0.0f);
  a[0] = 1;
  b[1] = 1;
  c[2] = 1;
  ASSERT_TRUE(index.AddVector(1, a.data()).ok());
  ASSERT_TRUE(index.AddVector(2, b.data()).ok());
  ASSERT_TRUE(index.AddVector(3, c.data()).ok());
  EXPECT_EQ(index.size(), 3u);
  EXPECT_GE(index.MemoryBytes(), 3 * index.row_stride());
  EXPECT_EQ(index.row_stride(), 64u);
  SearchParams params;
  params.k = 1;
  auto top = index.Search(a.data(), params);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].label, 1u);
  // Replace label 1 by vector c: size unchanged, the old vector is gone.
  ASSERT_TRUE(index.AddVector(1, c.data()).ok());
  EXPECT_EQ(index.size(), 3u);
  top = index.Search(a.data(), WithK(3));
  ASSERT_TRUE(top.ok());
  for (const Hit& h : *top) EXPECT_NEAR(h.score, 0.0f, 1e-6f);
  // Remove the first row: the last row moves in and stays findable.
  EXPECT_TRUE(index.Remove(1));
  EXPECT_FALSE(index.Remove(1));
  EXPECT_FALSE(index.Contains(1));
  EXPECT_EQ(index.size(), 2u);
  top = index.Search(c.data(), params);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ((*top)[0].label, 3u);
  top = index.Search(b.data(), params);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ((*top)[0].label, 2u);
  EXPECT_TRUE(index.Remove(2));
  EXPECT_TRUE(index.Remove(3));
  EXPECT_EQ(index.size(), 0u);
  top = index.Search(a.data(), params);
  ASSERT_TRUE(top.ok());
  EXPECT_TRUE(top->empty());
}

TEST(FlatIndexTest, AddsPersistedBlobsWithoutReencoding) {
  const size_t dim = 40;
  const Quantizer q = Plain(Metric::kCosine, dim);
  const std::vector<float> x = testing::GaussianVectors(1, dim, 12);
  std::vector<uint8_t> blob(q.EncodedSize());
  ASSERT_TRUE(q.Encode(x.data(), blob.data()).ok());
  FlatIndex index(q);
  ASSERT_TRUE(index.Add(5, blob.data(), blob.size()).ok());
  EXPECT_EQ(index.Add(6, blob.data(), blob.size() - 1).code(), StatusCode::kInvalidArgument);
  auto hits = index.Search(x.data(), SearchParams{});
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_NEAR((*hits)[0].score, 1.0f, 0.01f);
}

TEST(FlatIndexTest, RejectsBadParamsAndQueries) {
  const Quantizer q = Plain(Metric::kCosine, 4);
  FlatIndex index(q);
  const float x[4] = {1, 2, 3, 4};
  ASSERT_TRUE(index.AddVector(1, x).ok());
  EXPECT_EQ(index.Search(x, WithK(0)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.Search(x, WithK(kMaxSearchK + 1)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.Search(x, Rescored(1)).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(index.Search(x, Oversampled(0.5f)).status().code(), StatusCode::kInvalidArgument);
  const float zero[4] = {0, 0, 0, 0};
  EXPECT_EQ(index.Search(zero, SearchParams{}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.AddVector(2, zero).code(), StatusCode::kInvalidArgument);
  const float nan[4] = {1, std::nanf(""), 0, 0};
  EXPECT_EQ(index.SearchBatch(nan, 1, SearchParams{}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(FlatIndexTest, LargeKReturnsEverythingSorted) {
  // k = 10000 of 12000, and k = kMaxSearchK (offset + limit) beyond the size.
  const std::vector<float> base = testing::ClusteredVectors(12000, 16, 4, 13);
  Built b = Build(Plain(Metric::kDot, 16), base);
  for (size_t k : {size_t{10000}, kMaxSearchK}) {
    auto hits = b.index.Search(base.data(), WithK(k));
    ASSERT_TRUE(hits.ok());
    const size_t want = std::min<size_t>(k, 12000);
    EXPECT_EQ(hits->size(), want);
    EXPECT_TRUE(std::is_sorted(hits->begin(), hits->end(),
                               [](const Hit& a, const Hit& c) { return a.score > c.score; }));
    std::unordered_set<uint64_t> labels;
    for (const Hit& h : *hits) labels.insert(h.label);
    EXPECT_EQ(labels.size(), want);
  }
}

TEST(FlatIndexTest, ConcurrentSearchesAgree) {
  const std::vector<float> base = testing::ClusteredVectors(8000, 32, 8, 14);
  Built b = Build(Plain(Metric::kCosine, 32), base);
  auto expected = b.index.Search(base.data(), SearchParams{});
  ASSERT_TRUE(expected.ok());
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        auto got = b.index.Search(base.data(), SearchParams{});
        if (!got.ok() || *got != *expected) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(FlatIndexTest, ExtremeDimensions) {
  for (size_t dim : {size_t{1}, size_t{65}, kMaxDim}) {
    const std::vector<float> base = testing::GaussianVectors(6, dim, 15);
    for (Metric metric : {Metric::kCosine, Metric::kDot, Metric::kEuclid}) {
      Built b = Build(Plain(metric, dim), base);
      EXPECT_EQ(b.index.row_stride() % 64, 0u);
      SearchParams params;
      params.k = 3;
      // Each vector finds itself first (dim 1 Cosine: sign ties allowed).
      for (size_t i = 0; i < 6; ++i) {
        auto hits = b.index.Search(base.data() + i * dim, params);
        ASSERT_TRUE(hits.ok());
        ASSERT_EQ(hits->size(), 3u);
        if (dim > 1) {
          EXPECT_EQ((*hits)[0].label, i) << dim << " " << static_cast<int>(metric);
        }
      }
      auto batch = b.index.SearchBatch(base.data(), 6, params);
      ASSERT_TRUE(batch.ok());
      EXPECT_EQ(batch->size(), 6u);
    }
  }
}

}  // namespace
}  // namespace qvec::index
