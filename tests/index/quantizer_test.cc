#include "index/quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "index/quality.h"
#include "index/training.h"
#include "tests/index/test_data.h"

namespace qvec::index {
namespace {

Quantizer MakeQuantizer(size_t dim, Metric metric, QuantizationConfig config = {}) {
  auto q = Quantizer::Create(dim, metric, config);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return std::move(q).value();
}

TEST(QuantizationConfigTest, DefaultsAreValidAndBadValuesRejected) {
  QuantizationConfig config;
  EXPECT_TRUE(config.Validate().ok());
  EXPECT_EQ(config.type, QuantizationType::kSymmetricInt8);
  EXPECT_EQ(config.granularity, Granularity::kPerVector);
  EXPECT_EQ(config.quantile, 1.0f);
  EXPECT_FALSE(config.recall_tuned);
  config.quantile = 0.5f;
  EXPECT_EQ(config.Validate().code(), StatusCode::kInvalidArgument);
  config.quantile = 1.01f;
  EXPECT_FALSE(config.Validate().ok());
  config = {};
  config.recall_tuned = true;  // per-vector has no range to tune
  EXPECT_FALSE(config.Validate().ok());
}

TEST(QuantizerTest, CreateRejectsBadArguments) {
  EXPECT_FALSE(Quantizer::Create(0, Metric::kCosine, {}).ok());
  EXPECT_FALSE(Quantizer::Create(kMaxDim + 1, Metric::kCosine, {}).ok());
  QuantizationConfig calibrated;
  calibrated.granularity = Granularity::kPerDimension;
  EXPECT_EQ(Quantizer::Create(4, Metric::kDot, calibrated).status().code(),
            StatusCode::kInvalidArgument);
  CalibrationParams wrong;
  wrong.granularity = Granularity::kPerCollection;
  wrong.dim = 4;
  wrong.lo = {0};
  wrong.hi = {1};
  EXPECT_FALSE(Quantizer::Create(4, Metric::kDot, calibrated, &wrong).ok());
}

TEST(QuantizerTest, SymmetricPerVectorErrorIsAtMostHalfAStep) {
  const size_t dim = 97;
  const Quantizer q = MakeQuantizer(dim, Metric::kDot);
  const std::vector<float> x = testing::GaussianVectors(50, dim, 1);
  std::vector<uint8_t> blob(q.EncodedSize());
  EXPECT_EQ(blob.size(), dim + 12);
  for (size_t v = 0; v < 50; ++v) {
    const float* xv = x.data() + v * dim;
    ASSERT_TRUE(q.Encode(xv, blob.data()).ok());
    const VectorMeta m = Quantizer::ReadMeta(blob.data(), dim);
    float amax = 0;
    for (size_t i = 0; i < dim; ++i) amax = std::max(amax, std::fabs(xv[i]));
    EXPECT_NEAR(m.scale, amax / 127.0f, 1e-6f * amax);
    for (size_t i = 0; i < dim; ++i) {
      const int code = static_cast<int8_t>(blob[i]);
      ASSERT_GE(code, -127);
      ASSERT_LE(std::fabs(xv[i] - m.scale * code), m.scale / 2 * 1.0001f);
    }
  }
}

TEST(QuantizerTest, RoundsHalfToEvenLikeNearbyint) {
  // max |x| = 127 gives scale exactly 1, so x/s are the values themselves.
  const float x[8] = {127, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 126.5f, -126.4f};
  const int want[8] = {127, 2, 4, -2, 0, 0, 126, -126};
  const Quantizer q = MakeQuantizer(8, Metric::kDot);
  std::vector<uint8_t> blob(q.EncodedSize());
  ASSERT_TRUE(q.Encode(x, blob.data()).ok());
  EXPECT_EQ(Quantizer::ReadMeta(blob.data(), 8).scale, 1.0f);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(static_cast<int8_t>(blob[i]), want[i]) << i;
    EXPECT_EQ(want[i], static_cast<int>(std::nearbyint(x[i]))) << i;
  }
}

TEST(QuantizerTest, AsymmetricPerVectorErrorIsAtMostHalfAStep) {
  const size_t dim = 64;
  QuantizationConfig config;
  config.type = QuantizationType::kAsymmetricUint8;
  const Quantizer q = MakeQuantizer(dim, Metric::kDot, config);
  std::vector<float> x = testing::GaussianVectors(20, dim, 2);
  for (float& v : x) v = std::fabs(v) + 0.5f;  // strictly positive range
  std::vector<uint8_t> blob(q.EncodedSize());
  std::vector<float> decoded(dim);
  for (size_t v = 0; v < 20; ++v) {
    ASSERT_TRUE(q.Encode(x.data() + v * dim, blob.data()).ok());
    q.Decode(blob.data(), decoded.data());
    const float s = Quantizer::ReadMeta(blob.data(), dim).scale;
    for (size_t i = 0; i < dim; ++i) {
      EXPECT_LE(std::fabs(x[v * dim + i] - decoded[i]), s / 2 * 1.001f + 1e-6f);
    }
  }
}

TEST(QuantizerTest, RejectsNanInfAndZeroUnderCosine) {
  const Quantizer cosine = MakeQuantizer(3, Metric::kCosine);
  const Quantizer dot = MakeQuantizer(3, Metric::kDot);
  std::vector<uint8_t> blob(cosine.EncodedSize());
  const float zero[3] = {0, 0, 0};
  const float nan[3] = {1, std::nanf(""), 0};
  const float inf[3] = {1, std::numeric_limits<float>::infinity(), 0};
  EXPECT_EQ(cosine.Encode(zero, blob.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cosine.PrepareQuery(zero).status().code(), StatusCode::kInvalidArgument);
  for (const Quantizer* q : {&cosine, &dot}) {
    EXPECT_EQ(q->Encode(nan, blob.data()).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(q->Encode(inf, blob.data()).code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(q->PrepareQuery(nan).ok());
  }
  // Zero vectors are fine under Dot: scale 0, all codes 0, never divided.
  ASSERT_TRUE(dot.Encode(zero, blob.data()).ok());
  EXPECT_EQ(Quantizer::ReadMeta(blob.data(), 3).scale, 0.0f);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(blob[i], 0);
  auto q = dot.PrepareQuery(zero);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->scale, 0.0f);
}

TEST(QuantizerTest, ConstantVectorsDecodeExactly) {
  QuantizationConfig asym;
  asym.type = QuantizationType::kAsymmetricUint8;
  for (const QuantizationConfig& config : {QuantizationConfig{}, asym}) {
    const Quantizer q = MakeQuantizer(8, Metric::kDot, config);
    const std::vector<float> x(8, 0.75f);
    std::vector<uint8_t> blob(q.EncodedSize());
    std::vector<float> decoded(8);
    ASSERT_TRUE(q.Encode(x.data(), blob.data()).ok());
    q.Decode(blob.data(), decoded.data());
    for (float v : decoded) EXPECT_NEAR(v, 0.75f, 1e-6f);
  }
}

TEST(QuantizerTest, CosineNormalizesAndHandlesExtremeDims) {
  for (size_t dim : {size_t{1}, size_t{2}, kMaxDim}) {
    const Quantizer q = MakeQuantizer(dim, Metric::kCosine);
    std::vector<float> x(dim, 3.0f);
    ASSERT_TRUE(q.Preprocess(x.data()).ok());
    double norm = 0;
    for (float v : x) norm += v * v;
    EXPECT_NEAR(norm, 1.0, 1e-4);
    auto code = q.PrepareQuery(x.data());
    ASSERT_TRUE(code.ok());
    std::vector<uint8_t> blob(q.EncodedSize());
    ASSERT_TRUE(q.Encode(x.data(), blob.data()).ok());
    const VectorMeta m = Quantizer::ReadMeta(blob.data(), dim);
    EXPECT_NEAR(m.norm_sq, 1.0f, 1e-4f);
  }
}

// Integer-domain scores track float scores for every metric and option.
TEST(QuantizerTest, ScoresTrackFloatScoresForAllMetricsAndOptions) {
  const size_t dim = 128, n = 500;
  const std::vector<float> x = testing::ClusteredVectors(n, dim, 10, 3);
  struct Case {
    QuantizationType type;
    Granularity granularity;
  };
  const Case cases[] = {
      {QuantizationType::kSymmetricInt8, Granularity::kPerVector},
      {QuantizationType::kSymmetricInt8, Granularity::kPerCollection},
      {QuantizationType::kSymmetricInt8, Granularity::kPerDimension},
      {QuantizationType::kAsymmetricUint8, Granularity::kPerVector},
      {QuantizationType::kAsymmetricUint8, Granularity::kPerCollection},
      {QuantizationType::kAsymmetricUint8, Granularity::kPerDimension},
  };
  for (Metric metric : {Metric::kCosine, Metric::kDot, Metric::kEuclid}) {
    for (const Case& c : cases) {
      QuantizationConfig config;
      config.type = c.type;
      config.granularity = c.granularity;
      auto q = TrainQuantizer(dim, metric, config, x.data(), n);
      ASSERT_TRUE(q.ok()) << q.status().ToString();
      auto report = Measure(*q, x.data(), n, 2000);
      ASSERT_TRUE(report.ok()) << report.status().ToString();
      SCOPED_TRACE(::testing::Message()
                   << "metric=" << static_cast<int>(metric) << " type=" << static_cast<int>(c.type)
                   << " gran=" << static_cast<int>(c.granularity));
      // Typical score magnitude: 1 for Cosine, ~||x||^2 ~ 10 for Dot/Euclid.
      const double scale = metric == Metric::kCosine ? 1.0 : 10.0;
      EXPECT_LT(report->score_mean_abs_error, 0.01 * scale);
      EXPECT_LT(report->score_max_abs_error, 0.08 * scale);
      EXPECT_GT(report->sqnr_db, 25.0);
    }
  }
}

TEST(QuantizerTest, QualityReportOfExactlyRepresentableDataIsPerfect) {
  // Values on the int8 grid of their own max: decoding is exact.
  const float x[4] = {127, -64, 0, 1};
  const Quantizer q = MakeQuantizer(4, Metric::kDot);
  auto report = Measure(q, x, 1, 1);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->mse, 0.0);
  EXPECT_EQ(report->max_abs_error, 0.0);
  EXPECT_TRUE(std::isinf(report->sqnr_db));
}

}  // namespace
}  // namespace qvec::index
