// The 4-bit first pass: codebooks (sq4, pq4), lookup tables, and the IVF
// scan that re-ranks the first pass's candidates with int8 codes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "index/ivf_index.h"
#include "index/metric.h"
#include "index/pq4.h"
#include "index/recall.h"
#include "index/training.h"
#include "tests/index/ivf_test_data.h"

namespace qvec::index {
namespace {

std::vector<float> Gaussian(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(n * dim);
  for (size_t i = 0; i < n; ++i) {
    for (size_t d = 0; d < dim; ++d) x[i * dim + d] = g(rng) / std::sqrt(1.0f + d);
  }
  return x;
}

double Mse(const Pq4Codebook& cb, const std::vector<float>& x, size_t n) {
  const size_t dim = cb.dim();
  std::vector<uint8_t> codes(cb.m());
  std::vector<float> back(dim);
  double err = 0;
  for (size_t i = 0; i < n; ++i) {
    cb.Encode(x.data() + i * dim, codes.data());
    for (uint8_t c : codes) EXPECT_LT(c, 16);
    cb.Decode(codes.data(), back.data());
    for (size_t d = 0; d < dim; ++d) {
      const double diff = back[d] - x[i * dim + d];
      err += diff * diff;
    }
  }
  return err / static_cast<double>(n);
}

TEST(Pq4CodebookTest, CodesReconstructWithFourBitError) {
  const size_t n = 4000, dim = 30;  // 30: pq4/4 pads its last sub-space
  const std::vector<float> x = Gaussian(n, dim, 1);
  double energy = 0;
  for (float v : x) energy += double{v} * v;
  energy /= n;
  auto sq4 = Pq4Codebook::Train(FirstPassKind::kSq4, dim, 1, x.data(), n);
  auto pq1 = Pq4Codebook::Train(FirstPassKind::kPq4, dim, 1, x.data(), n);
  auto pq2 = Pq4Codebook::Train(FirstPassKind::kPq4, dim, 2, x.data(), n);
  auto pq4 = Pq4Codebook::Train(FirstPassKind::kPq4, dim, 4, x.data(), n);
  ASSERT_TRUE(sq4.ok() && pq1.ok() && pq2.ok() && pq4.ok());
  EXPECT_EQ(sq4->m(), 30u);
  EXPECT_EQ(sq4->m_padded(), 32u);
  EXPECT_EQ(pq2->m(), 15u);
  EXPECT_EQ(pq4->m(), 8u);
  const double e_sq4 = Mse(*sq4, x, n), e_pq1 = Mse(*pq1, x, n), e_pq2 = Mse(*pq2, x, n),
               e_pq4 = Mse(*pq4, x, n);
  // 16 levels on Gaussian values: about 1 % of the energy (Lloyd-Max 0.95 %).
  EXPECT_LT(e_sq4, 0.015 * energy);
  EXPECT_LT(e_pq1, e_sq4 * 1.02);  // k-means levels are at least as good
  EXPECT_GT(e_pq2, e_pq1);         // half the bytes
  EXPECT_LT(e_pq2, 0.12 * energy);
  EXPECT_GT(e_pq4, e_pq2);
  EXPECT_LT(e_pq4, 0.35 * energy);
}

TEST(Pq4CodebookTest, LookupTableApproximatesInnerProducts) {
  const size_t n = 2000, dim = 64;
  const std::vector<float> x = Gaussian(n, dim, 2);
  const std::vector<float> q = Gaussian(5, dim, 3);
  for (FirstPassKind kind : {FirstPassKind::kSq4, FirstPassKind::kPq4}) {
    auto cb = Pq4Codebook::Train(kind, dim, kind == FirstPassKind::kSq4 ? 1 : 2, x.data(), n);
    ASSERT_TRUE(cb.ok()) << cb.status().ToString();
    std::vector<uint8_t> codes(cb->m());
    std::vector<float> back(dim);
    for (size_t qi = 0; qi < 5; ++qi) {
      Code4Lut lut;
      cb->BuildLut(q.data() + qi * dim, &lut);
      ASSERT_EQ(lut.table.size(), size_t{cb->m_padded()} * 16);
      for (size_t i = 0; i < 50; ++i) {
        cb->Encode(x.data() + i * dim, codes.data());
        cb->Decode(codes.data(), back.data());
        double exact = 0;
        for (size_t d = 0; d < dim; ++d) exact += double{q[qi * dim + d]} * back[d];
        uint32_t sum = 0;
        for (size_t j = 0; j < cb->m(); ++j) sum += lut.table[j * 16 + codes[j]];
        ASSERT_LT(sum, 65536u);
        const double approx = lut.bias + double{lut.scale} * sum;
        // Each entry rounds by at most half a unit.
        EXPECT_NEAR(approx, exact, 0.5 * lut.scale * cb->m() + 1e-4);
      }
    }
  }
}

TEST(Pq4CodebookTest, SerializesAndRejectsBadInput) {
  const size_t n = 1000, dim = 16;
  const std::vector<float> x = Gaussian(n, dim, 4);
  auto cb = Pq4Codebook::Train(FirstPassKind::kPq4, dim, 2, x.data(), n);
  ASSERT_TRUE(cb.ok());
  const std::string bytes = cb->Serialize();
  auto back = Pq4Codebook::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_FALSE(Pq4Codebook::Deserialize(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_FALSE(Pq4Codebook::Deserialize(bytes + "x").ok());
  EXPECT_FALSE(Pq4Codebook::Deserialize("").ok());
  EXPECT_FALSE(Pq4Codebook::Train(FirstPassKind::kSq4, dim, 2, x.data(), n).ok());
  EXPECT_FALSE(Pq4Codebook::Train(FirstPassKind::kPq4, dim, 3, x.data(), n).ok());
  EXPECT_FALSE(Pq4Codebook::Train(FirstPassKind::kPq4, dim, 2, x.data(), 8).ok());
  std::vector<float> bad = x;
  bad[7] = std::nanf("");
  EXPECT_FALSE(Pq4Codebook::Train(FirstPassKind::kSq4, dim, 1, bad.data(), n).ok());
}

// An IVF with a first pass over overlapping clusters, and the same rows
// without it.
struct FirstPassIvf {
  std::unique_ptr<IvfIndex> with, without;
  IvfModel model;
};

FirstPassIvf BuildIvf(Metric metric, FirstPassKind kind, const std::vector<float>& base, size_t n,
                      size_t dim, uint32_t nlist) {
  auto quantizer = Quantizer::Create(dim, metric, QuantizationConfig{});
  EXPECT_TRUE(quantizer.ok());
  IvfTrainOptions o;
  o.nlist = nlist;
  o.first_pass = kind;
  auto model = TrainIvf(*quantizer, base.data(), n, o);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  FirstPassIvf out;
  out.model = *model;
  IvfModel plain = *model;
  plain.first_pass = {};
  plain.first_pass_curve.clear();
  out.with = std::make_unique<IvfIndex>(IvfIndex::Create(*quantizer, *model).value());
  out.without = std::make_unique<IvfIndex>(IvfIndex::Create(*quantizer, plain).value());
  std::vector<uint8_t> blob(quantizer->EncodedSize());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(quantizer->Encode(base.data() + i * dim, blob.data()).ok());
    std::vector<float> pre(base.begin() + i * dim, base.begin() + (i + 1) * dim);
    EXPECT_TRUE(quantizer->Preprocess(pre.data()).ok());
    const uint32_t list = out.without->Assign(pre.data());
    EXPECT_TRUE(out.with->Add(i, list, blob.data(), blob.size()).ok());
    EXPECT_TRUE(out.without->Add(i, list, blob.data(), blob.size()).ok());
  }
  return out;
}

std::vector<uint64_t> Labels(const std::vector<Hit>& hits) {
  std::vector<uint64_t> out;
  for (const Hit& h : hits) out.push_back(h.label);
  return out;
}

TEST(FirstPassIvfTest, LargeOversamplingEqualsTheInt8ScanAndAutoKeepsRecall) {
  const size_t n = 12000, dim = 32, nq = 40;
  const std::vector<float> base = testing::OverlappingClusters(n, dim, 60, 3.0f, 5);
  const std::vector<float> queries = testing::OverlappingClusters(nq, dim, 60, 3.0f, 6);
  for (Metric metric : {Metric::kCosine, Metric::kEuclid, Metric::kDot}) {
    for (FirstPassKind kind : {FirstPassKind::kSq4, FirstPassKind::kPq4}) {
      SCOPED_TRACE(std::string(Describe(metric).name) + " " + std::string(FirstPassKindName(kind)));
      FirstPassIvf ivf = BuildIvf(metric, kind, base, n, dim, 64);
      ASSERT_FALSE(ivf.model.first_pass.empty());
      ASSERT_EQ(ivf.model.first_pass_curve.size(), 11u);
      // Retention rises with the oversampling and reaches ~1.
      EXPECT_GE(ivf.model.first_pass_curve.back().second, 0.99f);
      EXPECT_LE(ivf.model.first_pass_curve.front().second,
                ivf.model.first_pass_curve.back().second);
      auto quantizer = Quantizer::Create(dim, metric, QuantizationConfig{});
      auto truth = ExactTopK(*quantizer, base.data(), n, queries.data(), nq, 10);
      ASSERT_TRUE(truth.ok());
      IvfSearchParams p;
      p.k = 10;
      p.nprobe = 8;
      std::vector<std::vector<Hit>> auto_hits, int8_hits;
      for (size_t i = 0; i < nq; ++i) {
        const float* q = queries.data() + i * dim;
        auto plain = ivf.without->Search(q, p);
        ASSERT_TRUE(plain.ok());
        // A factor past every probed row keeps every candidate: the int8
        // re-ranking then sees what the int8 scan sees.
        IvfSearchParams all = p;
        all.first_pass_oversampling = 1e6f;
        auto wide = ivf.with->Search(q, all);
        ASSERT_TRUE(wide.ok());
        ASSERT_EQ(wide->size(), plain->size());
        for (size_t j = 0; j < plain->size(); ++j) {
          EXPECT_EQ((*wide)[j].label, (*plain)[j].label);
          EXPECT_EQ((*wide)[j].score, (*plain)[j].score);
        }
        auto automatic = ivf.with->Search(q, p);
        ASSERT_TRUE(automatic.ok());
        auto_hits.push_back(*automatic);
        int8_hits.push_back(*plain);
      }
      const double r_auto = RecallAtK(*truth, auto_hits), r_int8 = RecallAtK(*truth, int8_hits);
      EXPECT_GE(r_auto, r_int8 - 0.03) << "auto " << r_auto << " int8 " << r_int8;
      // Batch search takes the same path.
      auto batch = ivf.with->SearchBatch(queries.data(), nq, p);
      ASSERT_TRUE(batch.ok());
      for (size_t i = 0; i < nq; ++i) EXPECT_EQ(Labels((*batch)[i]), Labels(auto_hits[i]));
    }
  }
}

TEST(FirstPassIvfTest, RemovalsMoveCodesAndFiltersApply) {
  const size_t n = 6000, dim = 24, nq = 20;
  const std::vector<float> base = testing::OverlappingClusters(n, dim, 40, 3.0f, 7);
  const std::vector<float> queries = testing::OverlappingClusters(nq, dim, 40, 3.0f, 8);
  FirstPassIvf ivf = BuildIvf(Metric::kCosine, FirstPassKind::kPq4, base, n, dim, 32);
  for (uint64_t label = 0; label < n; label += 3) {
    EXPECT_TRUE(ivf.with->Remove(label));
    EXPECT_TRUE(ivf.without->Remove(label));
  }
  ivf.with->ShrinkToFit();
  const std::function<bool(uint64_t)> even = [](uint64_t label) { return label % 2 == 0; };
  for (size_t i = 0; i < nq; ++i) {
    const float* q = queries.data() + i * dim;
    IvfSearchParams p;
    p.k = 10;
    p.nprobe = 4;
    p.first_pass_oversampling = 1e6f;
    auto a = ivf.with->Search(q, p);
    auto b = ivf.without->Search(q, p);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(Labels(*a), Labels(*b));
    for (uint64_t label : Labels(*a)) EXPECT_NE(label % 3, 0u);
    p.first_pass_oversampling = 0;
    p.filter = &even;
    auto f = ivf.with->Search(q, p);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->size(), 10u);
    for (uint64_t label : Labels(*f)) EXPECT_EQ(label % 2, 0u);
  }
  IvfSearchParams bad;
  bad.first_pass_oversampling = 0.5f;
  EXPECT_FALSE(ivf.with->Search(queries.data(), bad).ok());
}

TEST(FirstPassIvfTest, ModelRoundTripsAndVersionOneStillReads) {
  const size_t n = 3000, dim = 16;
  const std::vector<float> base = testing::OverlappingClusters(n, dim, 20, 3.0f, 9);
  FirstPassIvf ivf = BuildIvf(Metric::kEuclid, FirstPassKind::kSq4, base, n, dim, 16);
  const std::string bytes = ivf.model.Serialize();
  auto back = IvfModel::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Serialize(), bytes);
  EXPECT_EQ(back->first_pass_curve, ivf.model.first_pass_curve);
  EXPECT_FALSE(IvfModel::Deserialize(bytes.substr(0, bytes.size() - 3)).ok());
  // A version-1 model: no first-pass section.
  IvfModel plain = ivf.model;
  plain.first_pass = {};
  plain.first_pass_curve.clear();
  std::string v1 = plain.Serialize();
  v1.resize(v1.size() - 12);  // the empty codebook (u64 0) and curve (u32 0)
  v1[4] = 1;
  v1[5] = v1[6] = v1[7] = 0;
  auto old = IvfModel::Deserialize(v1);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(old->first_pass.empty());
  EXPECT_EQ(old->recall_curve, plain.recall_curve);
}

}  // namespace
}  // namespace qvec::index
