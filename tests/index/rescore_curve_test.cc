// index::MeasureRescoreCurve and the oversampling picked from it.
#include <gtest/gtest.h>

#include "index/quality.h"
#include "index/quantizer.h"
#include "tests/index/test_data.h"

namespace qvec::index {
namespace {

TEST(RescoreCurveTest, RecallGrowsWithOversamplingToOne) {
  const size_t n = 3000, nq = 100, dim = 32;
  const std::vector<float> base = testing::ClusteredVectors(n, dim, 16, 1);
  const std::vector<float> queries = testing::ClusteredVectors(nq, dim, 16, 1);
  // (Manhattan needs a calibrated quantizer; the engine test covers the path.)
  for (const Metric metric : {Metric::kCosine, Metric::kDot, Metric::kEuclid}) {
    auto quantizer = Quantizer::Create(dim, metric, QuantizationConfig());
    ASSERT_TRUE(quantizer.ok()) << quantizer.status().ToString();
    auto curve = MeasureRescoreCurve(*quantizer, base.data(), n, queries.data(), nq, 10);
    ASSERT_TRUE(curve.ok()) << curve.status().ToString();
    ASSERT_EQ(curve->size(), std::size(kRescoreGrid));
    EXPECT_EQ(curve->front().oversampling, 1.0f);
    for (size_t i = 1; i < curve->size(); ++i) {
      EXPECT_GE((*curve)[i].recall, (*curve)[i - 1].recall);
      EXPECT_GT((*curve)[i].oversampling, (*curve)[i - 1].oversampling);
    }
    // Per-vector int8 on 32 dimensions ranks well, but not perfectly.
    EXPECT_GT(curve->front().recall, 0.6f);
    EXPECT_GE(curve->back().recall, 0.99f);
  }
}

TEST(RescoreCurveTest, SmallBaseStopsTheGridAtItsSize) {
  const size_t n = 25, dim = 8;
  const std::vector<float> base = testing::GaussianVectors(n, dim, 2);
  const std::vector<float> queries = testing::GaussianVectors(5, dim, 3);
  auto quantizer = Quantizer::Create(dim, Metric::kEuclid, QuantizationConfig());
  ASSERT_TRUE(quantizer.ok());
  auto curve = MeasureRescoreCurve(*quantizer, base.data(), n, queries.data(), 5, 10);
  ASSERT_TRUE(curve.ok());
  ASSERT_EQ(curve->size(), 3u);  // 10, 15, 20 candidates of 25
  EXPECT_FALSE(MeasureRescoreCurve(*quantizer, base.data(), 0, queries.data(), 5).ok());
  EXPECT_FALSE(MeasureRescoreCurve(*quantizer, base.data(), n, queries.data(), 0).ok());
}

TEST(RescoreCurveTest, OversamplingForRecall) {
  const std::vector<RescorePoint> curve = {{1, 0.85f}, {2, 0.93f}, {4, 0.97f}, {8, 0.99f}};
  EXPECT_EQ(OversamplingForRecall({}, 0.95f), 1.0f);
  EXPECT_EQ(OversamplingForRecall(curve, 0.0f), 1.0f);
  EXPECT_EQ(OversamplingForRecall(curve, 0.8f), 1.0f);
  // 0.95 aims at 0.96: 3/4 of the way from 2 to 4 = 3.5.
  EXPECT_FLOAT_EQ(OversamplingForRecall(curve, 0.95f), 3.5f);
  EXPECT_FLOAT_EQ(OversamplingForRecall(curve, 0.97f), 6.0f);  // aims at 0.98
  // Aims at best - 0.002 on the plateau, and at the end when out of reach.
  EXPECT_FLOAT_EQ(OversamplingForRecall(curve, 0.985f), 7.75f);  // 0.988
  EXPECT_FLOAT_EQ(OversamplingForRecall(curve, 0.999f), 8.0f);
  EXPECT_FLOAT_EQ(RecallAtOversampling(curve, 3.0f), 0.95f);
  EXPECT_FLOAT_EQ(RecallAtOversampling(curve, 0.5f), 0.85f);
  EXPECT_FLOAT_EQ(RecallAtOversampling(curve, 20.0f), 0.99f);
  EXPECT_FLOAT_EQ(RecallAtOversampling({}, 2.0f), 1.0f);
}

}  // namespace
}  // namespace qvec::index
