#include "index/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

#include "index/quantizer.h"

namespace qvec::index {
namespace {

// 0..n-1 shuffled, as floats.
std::vector<float> ShuffledRamp(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  std::shuffle(v.begin(), v.end(), std::mt19937(seed));
  return v;
}

TEST(CalibrationTest, PercentileClipsPerValueAcrossCollection) {
  // 2500 vectors of dim 4 = 10000 values 0..9999: the quantile counts values,
  // not vectors.
  const std::vector<float> values = ShuffledRamp(10000, 1);
  CalibrationObserver observer(4);
  ASSERT_TRUE(observer.Observe(values.data(), 2500).ok());
  auto p = observer.Compute(Granularity::kPerCollection, 0.99f);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->lo.size(), 1u);
  EXPECT_FLOAT_EQ(p->hi[0], 9899.0f);  // v[floor(0.99 * 9999)]
  EXPECT_FLOAT_EQ(p->lo[0], 100.0f);   // v[ceil(0.01 * 9999)]
  auto minmax = observer.Compute(Granularity::kPerCollection, 1.0f);
  ASSERT_TRUE(minmax.ok());
  EXPECT_FLOAT_EQ(minmax->lo[0], 0.0f);
  EXPECT_FLOAT_EQ(minmax->hi[0], 9999.0f);
}

TEST(CalibrationTest, PercentilePerDimension) {
  // Dimension 0 holds 0..999, dimension 1 holds -(0..999) * 2.
  const std::vector<float> ramp = ShuffledRamp(1000, 2);
  std::vector<float> x(2000);
  for (size_t i = 0; i < 1000; ++i) {
    x[2 * i] = ramp[i];
    x[2 * i + 1] = -2.0f * ramp[i];
  }
  CalibrationObserver observer(2);
  ASSERT_TRUE(observer.Observe(x.data(), 1000).ok());
  auto p = observer.Compute(Granularity::kPerDimension, 0.99f);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->lo.size(), 2u);
  EXPECT_FLOAT_EQ(p->hi[0], 989.0f);  // floor(0.99 * 999) = 989
  EXPECT_FLOAT_EQ(p->lo[0], 10.0f);   // ceil(0.01 * 999) = 10
  EXPECT_FLOAT_EQ(p->hi[1], -20.0f);
  EXPECT_FLOAT_EQ(p->lo[1], -1978.0f);
}

TEST(CalibrationTest, ComputeManyMatchesCompute) {
  const std::vector<float> values = ShuffledRamp(12000, 4);
  std::vector<float> x(values.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 == 0 ? -1.0f : 0.5f) * values[i];
  CalibrationObserver observer(3);
  ASSERT_TRUE(observer.Observe(x.data(), 4000).ok());
  const std::vector<float> quantiles = {1.0f, 0.999f, 0.99f, 0.95f, 0.9f};
  for (Granularity g : {Granularity::kPerCollection, Granularity::kPerDimension}) {
    auto many = observer.ComputeMany(g, quantiles);
    ASSERT_TRUE(many.ok());
    ASSERT_EQ(many->size(), quantiles.size());
    for (size_t i = 0; i < quantiles.size(); ++i) {
      auto one = observer.Compute(g, quantiles[i]);
      ASSERT_TRUE(one.ok());
      EXPECT_EQ((*many)[i], *one) << "quantile " << quantiles[i];
    }
  }
  EXPECT_FALSE(observer.ComputeMany(Granularity::kPerCollection, {0.3f}).ok());
}

TEST(CalibrationTest, QuantizerClipsToCalibratedRange) {
  const std::vector<float> values = ShuffledRamp(10000, 3);
  std::vector<float> scaled(values.size());
  for (size_t i = 0; i < values.size(); ++i) scaled[i] = values[i] / 9999.0f;  // [0, 1]
  CalibrationObserver observer(4);
  ASSERT_TRUE(observer.Observe(scaled.data(), 2500).ok());
  auto p = observer.Compute(Granularity::kPerCollection, 0.99f);
  ASSERT_TRUE(p.ok());
  QuantizationConfig config;
  config.granularity = Granularity::kPerCollection;
  config.quantile = 0.99f;
  auto q = Quantizer::Create(4, Metric::kDot, config, &*p);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  const float alpha = p->hi[0];
  const float s = alpha / 127.0f;
  const float x[4] = {1.0f, alpha, 0.5f * alpha, 0.0f};
  std::vector<uint8_t> blob(q->EncodedSize());
  ASSERT_TRUE(q->Encode(x, blob.data()).ok());
  EXPECT_EQ(static_cast<int8_t>(blob[0]), 127);  // beyond alpha: clipped
  EXPECT_EQ(static_cast<int8_t>(blob[1]), 127);
  std::vector<float> decoded(4);
  q->Decode(blob.data(), decoded.data());
  for (int i = 1; i < 4; ++i) EXPECT_LE(std::fabs(x[i] - decoded[i]), s / 2 * 1.0001f) << i;
}

TEST(CalibrationTest, StatsSummarizeSample) {
  const float x[6] = {-3, 1, 2, -1, 0.5f, 4};
  CalibrationObserver observer(2);
  ASSERT_TRUE(observer.Observe(x, 3).ok());
  CalibrationStats s = observer.Stats(4);
  EXPECT_EQ(s.vectors, 3u);
  EXPECT_FLOAT_EQ(s.min, -3);
  EXPECT_FLOAT_EQ(s.max, 4);
  EXPECT_FLOAT_EQ(s.abs_max, 4);
  EXPECT_FLOAT_EQ(s.dim_min[0], -3);
  EXPECT_FLOAT_EQ(s.dim_max[1], 4);
  EXPECT_FLOAT_EQ(s.dim_abs_max[0], 3);
  uint64_t total = 0;
  for (uint64_t c : s.histogram) total += c;
  EXPECT_EQ(total, 6u);
}

TEST(CalibrationTest, ObserverRejectsBadInputAndEmptyCompute) {
  CalibrationObserver observer(2);
  EXPECT_EQ(observer.Compute(Granularity::kPerCollection, 1.0f).status().code(),
            StatusCode::kFailedPrecondition);
  const float bad[2] = {1.0f, std::nanf("")};
  EXPECT_EQ(observer.Observe(bad, 1).code(), StatusCode::kInvalidArgument);
  const float good[2] = {1.0f, 2.0f};
  ASSERT_TRUE(observer.Observe(good, 1).ok());
  EXPECT_FALSE(observer.Compute(Granularity::kPerVector, 1.0f).ok());
  EXPECT_FALSE(observer.Compute(Granularity::kPerCollection, 0.4f).ok());
}

TEST(CalibrationTest, ReservoirBoundsMemory) {
  CalibrationObserver observer(3, /*max_vectors=*/10);
  const std::vector<float> x(3 * 100, 1.0f);
  ASSERT_TRUE(observer.Observe(x.data(), 100).ok());
  EXPECT_EQ(observer.observed(), 100u);
  EXPECT_EQ(observer.Stats().vectors, 10u);
}

CalibrationParams SampleParams() {
  CalibrationParams p;
  p.granularity = Granularity::kPerDimension;
  p.dim = 3;
  p.quantile = 0.995f;
  p.lo = {-1.0f, 0.0f, 0.25f};
  p.hi = {1.0f, 2.5f, 0.25f};
  return p;
}

TEST(CalibrationParamsTest, RoundTrips) {
  const CalibrationParams p = SampleParams();
  auto back = CalibrationParams::Deserialize(p.Serialize());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
}

TEST(CalibrationParamsTest, RejectsUnknownVersion) {
  std::string bytes = SampleParams().Serialize();
  bytes[4] = 2;  // version field follows the 4-byte magic
  EXPECT_EQ(CalibrationParams::Deserialize(bytes).status().code(), StatusCode::kUnimplemented);
}

TEST(CalibrationParamsTest, RejectsTruncationTrailingBytesAndBadMagic) {
  const std::string bytes = SampleParams().Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(CalibrationParams::Deserialize(bytes.substr(0, len)).ok()) << len;
  }
  EXPECT_EQ(CalibrationParams::Deserialize(bytes + "x").status().code(), StatusCode::kDataLoss);
  std::string bad = bytes;
  bad[0] = 'X';
  EXPECT_EQ(CalibrationParams::Deserialize(bad).status().code(), StatusCode::kDataLoss);
}

TEST(CalibrationParamsTest, RejectsInconsistentParams) {
  CalibrationParams p = SampleParams();
  p.lo[1] = 3.0f;  // lo > hi
  EXPECT_EQ(CalibrationParams::Deserialize(p.Serialize()).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qvec::index
