// Manhattan (L1) distance: int8 codes sharing one calibrated scale, scored
// by |code differences| without decoding, against an exact float reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "index/flat_index.h"
#include "index/ivf_index.h"
#include "index/metric.h"
#include "index/quantizer.h"
#include "index/training.h"
#include "tests/index/test_data.h"

namespace qvec::index {
namespace {

constexpr size_t kDim = 32;

Quantizer L1Quantizer(const std::vector<float>& sample, size_t n, QuantizationType type) {
  QuantizationConfig c;
  c.type = type;
  c.granularity = Granularity::kPerCollection;
  auto q = TrainQuantizer(kDim, Metric::kManhattan, c, sample.data(), n);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return std::move(q).value();
}

double L1(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) s += std::fabs(double(a[i]) - b[i]);
  return s;
}

std::vector<uint64_t> ExactL1TopK(const std::vector<float>& base, size_t n, const float* q,
                                  size_t k) {
  std::vector<std::pair<double, uint64_t>> all(n);
  for (size_t j = 0; j < n; ++j) all[j] = {L1(q, base.data() + j * kDim, kDim), j};
  std::partial_sort(all.begin(), all.begin() + k, all.end());
  std::vector<uint64_t> out;
  for (size_t j = 0; j < k; ++j) out.push_back(all[j].second);
  return out;
}

TEST(ManhattanTest, NeedsOneSharedScale) {
  QuantizationConfig per_vector;
  EXPECT_EQ(Quantizer::Create(kDim, Metric::kManhattan, per_vector).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(Describe(Metric::kManhattan).lower_is_better);
  EXPECT_EQ(Describe(Metric::kManhattan).int_scoring, IntScoring::kL1);
  EXPECT_EQ(Describe(Metric::kManhattan).name, "Manhattan");
}

class ManhattanFlatTest : public ::testing::TestWithParam<QuantizationType> {};

TEST_P(ManhattanFlatTest, RanksAndScoresFollowTheFloatReference) {
  const size_t n = 4000, nq = 40;
  // Queries from the same distribution (held out), so that they fall in the
  // calibrated range: values beyond it are clipped, which shortens L1.
  const std::vector<float> all = testing::ClusteredVectors(n + nq, kDim, 30, 21);
  const std::vector<float> base(all.begin(), all.begin() + n * kDim);
  const std::vector<float> queries(all.begin() + n * kDim, all.end());
  const Quantizer q = L1Quantizer(base, n, GetParam());
  FlatIndex flat(q);
  InMemoryOriginals originals(kDim);
  std::vector<uint8_t> blob(q.EncodedSize());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(q.Encode(base.data() + i * kDim, blob.data()).ok());
    ASSERT_TRUE(flat.Add(i, blob.data(), blob.size()).ok());
    originals.Put(i, base.data() + i * kDim);
  }
  double recall = 0, recall_rescored = 0;
  SearchParams plain;
  plain.k = 10;
  SearchParams rescored = plain;
  rescored.rescore = true;
  rescored.oversampling = 4;
  for (size_t i = 0; i < nq; ++i) {
    const float* query = queries.data() + i * kDim;
    const auto truth = ExactL1TopK(base, n, query, 10);
    auto hits = flat.Search(query, plain);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 10u);
    auto exact = flat.Search(query, rescored, &originals);
    ASSERT_TRUE(exact.ok());
    for (size_t j = 0; j < 10; ++j) {
      const Hit& h = (*hits)[j];
      // Approximate score: an L1 distance within quantization error.
      const double want = L1(query, base.data() + h.label * kDim, kDim);
      EXPECT_NEAR(h.score, want, 0.1 * want + 0.05);
      if (j > 0) {
        EXPECT_LE((*hits)[j - 1].score, h.score) << "smaller distance first";
      }
      // Rescored: the exact L1 distance.
      const Hit& e = (*exact)[j];
      EXPECT_NEAR(e.score, L1(query, base.data() + e.label * kDim, kDim), 1e-3);
      if (j > 0) {
        EXPECT_LE((*exact)[j - 1].score, e.score);
      }
      recall += std::count(truth.begin(), truth.end(), h.label) ? 0.1 : 0.0;
      recall_rescored += std::count(truth.begin(), truth.end(), e.label) ? 0.1 : 0.0;
    }
  }
  recall /= nq;
  recall_rescored /= nq;
  std::printf("Manhattan %s: recall@10 %.3f int8-scored, %.3f rescored\n",
              GetParam() == QuantizationType::kSymmetricInt8 ? "int8" : "uint8", recall,
              recall_rescored);
  EXPECT_GT(recall, 0.85);
  EXPECT_GT(recall_rescored, 0.99);
  // Thresholds keep distances at most the threshold.
  SearchParams cut = plain;
  cut.k = 500;
  auto ranked = flat.Search(queries.data(), cut);
  ASSERT_TRUE(ranked.ok());
  cut.score_threshold = (*ranked)[100].score;
  auto kept = flat.Search(queries.data(), cut);
  ASSERT_TRUE(kept.ok());
  for (const Hit& h : *kept) EXPECT_LE(h.score, *cut.score_threshold);
  EXPECT_GT(kept->size(), 90u);
  // Batch search equals single search.
  auto batch = flat.SearchBatch(queries.data(), nq, plain);
  ASSERT_TRUE(batch.ok());
  for (size_t i = 0; i < nq; ++i) {
    auto one = flat.Search(queries.data() + i * kDim, plain);
    ASSERT_TRUE(one.ok());
    EXPECT_EQ((*batch)[i], *one);
  }
}

INSTANTIATE_TEST_SUITE_P(Types, ManhattanFlatTest,
                         ::testing::Values(QuantizationType::kSymmetricInt8,
                                           QuantizationType::kAsymmetricUint8));

TEST(ManhattanTest, IvfExhaustiveEqualsFlatAndCurveIsMeasured) {
  const size_t n = 6000, nq = 30;
  const std::vector<float> all = testing::ClusteredVectors(n + nq, kDim, 60, 23);
  const Quantizer q = L1Quantizer(all, n, QuantizationType::kSymmetricInt8);
  IvfTrainOptions o;
  o.nlist = 64;
  auto model = TrainIvf(q, all.data(), n, o);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_GT(model->recall_curve.back().second, 0.8f);
  EXPECT_LT(model->recall_curve.front().second, model->recall_curve.back().second);
  auto ivf = IvfIndex::Create(q, *model);
  ASSERT_TRUE(ivf.ok());
  FlatIndex flat(q);
  std::vector<uint8_t> blob(q.EncodedSize());
  std::vector<uint32_t> lists(n);
  ivf->AssignBatch(all.data(), n, lists.data());
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(q.Encode(all.data() + i * kDim, blob.data()).ok());
    ASSERT_TRUE(ivf->Add(i, lists[i], blob.data(), blob.size()).ok());
    ASSERT_TRUE(flat.Add(i, blob.data(), blob.size()).ok());
  }
  IvfSearchParams p;
  p.k = 10;
  p.nprobe = o.nlist;
  for (size_t i = 0; i < nq; ++i) {
    const float* query = all.data() + (n + i) * kDim;
    auto a = ivf->Search(query, p);
    auto b = flat.Search(query, p);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(*a, *b);
  }
}

}  // namespace
}  // namespace qvec::index
