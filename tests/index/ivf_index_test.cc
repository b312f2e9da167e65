#include "index/ivf_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <unordered_set>

#include "index/flat_index.h"
#include "index/kmeans.h"
#include "index/recall.h"
#include "index/training.h"
#include "tests/index/ivf_test_data.h"
#include "tests/index/test_data.h"

namespace qvec::index {
namespace {

using testing::ClusteredVectors;
using testing::OverlappingClusters;

Quantizer MakeQuantizer(size_t dim, Metric metric,
                        QuantizationType type = QuantizationType::kSymmetricInt8) {
  QuantizationConfig config;
  config.type = type;
  auto q = Quantizer::Create(dim, metric, config);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return std::move(q).value();
}

// Builds an IVF and a flat index over the same encoded rows.
struct Built {
  std::unique_ptr<IvfIndex> ivf;
  std::unique_ptr<FlatIndex> flat;
};

Built Build(const Quantizer& quantizer, const IvfModel& model, const float* base, size_t n) {
  Built b;
  auto ivf = IvfIndex::Create(quantizer, model);
  EXPECT_TRUE(ivf.ok()) << ivf.status().ToString();
  b.ivf = std::make_unique<IvfIndex>(std::move(ivf).value());
  b.flat = std::make_unique<FlatIndex>(quantizer);
  const size_t dim = quantizer.dim();
  std::vector<float> pre(base, base + n * dim);
  for (size_t i = 0; i < n; ++i) EXPECT_TRUE(quantizer.Preprocess(pre.data() + i * dim).ok());
  std::vector<uint32_t> lists(n);
  b.ivf->AssignBatch(pre.data(), n, lists.data());
  std::vector<uint8_t> blob(quantizer.EncodedSize());
  for (size_t i = 0; i < n; ++i) {
    EXPECT_TRUE(quantizer.Encode(pre.data() + i * dim, blob.data()).ok());
    EXPECT_TRUE(b.ivf->Add(i, lists[i], blob.data(), blob.size()).ok());
    EXPECT_TRUE(b.flat->Add(i, blob.data(), blob.size()).ok());
  }
  return b;
}

// ---------------------------------------------------------------------------
// k-means, DefaultNlist, NprobeForRecall, model serialization
// ---------------------------------------------------------------------------

TEST(KmeansTest, ClustersAndReportsObjective) {
  const size_t n = 4000, dim = 16;
  std::vector<float> x = ClusteredVectors(n, dim, 20, 7);
  KmeansOptions o;
  o.k = 32;
  o.niter = 8;
  auto r = Kmeans(x.data(), n, dim, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->centroids.size(), 32 * dim);
  ASSERT_EQ(r->objective_per_iteration.size(), 8u);
  EXPECT_LE(r->objective_per_iteration.back(), r->objective_per_iteration.front());
  EXPECT_GT(r->objective, 0);
  EXPECT_EQ(r->points_used, n);
  // Spherical: unit centroids.
  o.spherical = o.inner_product = true;
  auto s = Kmeans(x.data(), n, dim, o);
  ASSERT_TRUE(s.ok());
  for (size_t c = 0; c < o.k; ++c) {
    double norm = 0;
    for (size_t d = 0; d < dim; ++d) norm += s->centroids[c * dim + d] * s->centroids[c * dim + d];
    EXPECT_NEAR(norm, 1.0, 1e-3);
  }
  // Deterministic for a fixed seed.
  o.spherical = o.inner_product = false;
  auto again = Kmeans(x.data(), n, dim, o);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->centroids, r->centroids);
}

TEST(KmeansTest, Int8AssignmentMatchesFloatObjective) {
  // The int8 assignment step may only move near-ties: the final objective
  // stays within 1% of FAISS's float assignment, for L2 and for spherical IP.
  const size_t n = 8000, dim = 64;
  std::vector<float> x = ClusteredVectors(n, dim, 40, 11);
  for (bool ip : {false, true}) {
    KmeansOptions o;
    o.k = 64;
    o.niter = 10;
    o.spherical = o.inner_product = ip;
    o.int8_assignment = false;
    auto exact = Kmeans(x.data(), n, dim, o);
    o.int8_assignment = true;
    auto fast = Kmeans(x.data(), n, dim, o);
    ASSERT_TRUE(exact.ok() && fast.ok());
    SCOPED_TRACE(ip ? "inner product" : "L2");
    EXPECT_NEAR(fast->objective, exact->objective, 0.01 * std::fabs(exact->objective));
    EXPECT_EQ(fast->objective_per_iteration.size(), 10u);
  }
}

TEST(KmeansTest, TwoLevelIsCloseToFlatWithContiguousChildren) {
  const size_t n = 40000, dim = 16;
  std::vector<float> x = ClusteredVectors(n, dim, 300, 5);
  for (bool ip : {false, true}) {
    SCOPED_TRACE(ip ? "spherical" : "L2");
    KmeansOptions o;
    o.k = 1024;
    o.niter = 10;
    o.max_points_per_centroid = 32;
    o.spherical = o.inner_product = ip;
    o.hierarchical_from = 0;  // flat
    auto flat = Kmeans(x.data(), n, dim, o);
    o.hierarchical_from = 512;  // two-level from k = 512 on
    auto two = Kmeans(x.data(), n, dim, o);
    ASSERT_TRUE(flat.ok() && two.ok()) << two.status().ToString();
    ASSERT_EQ(two->centroids.size(), 1024 * dim);
    EXPECT_TRUE(flat->coarse_begin.empty());
    // sqrt(1024) = 32 coarse cells; children contiguous, k in all.
    ASSERT_EQ(two->coarse_centroids.size(), 32 * dim);
    ASSERT_EQ(two->coarse_begin.size(), 33u);
    EXPECT_EQ(two->coarse_begin.front(), 0u);
    EXPECT_EQ(two->coarse_begin.back(), 1024u);
    for (size_t c = 0; c + 1 < two->coarse_begin.size(); ++c) {
      EXPECT_LE(two->coarse_begin[c], two->coarse_begin[c + 1]);
    }
    EXPECT_EQ(two->points_used, 1024u * 32);
    for (float v : two->centroids) ASSERT_TRUE(std::isfinite(v));
    // The objective (the sum over cells) within 10% of the flat one: larger
    // is better for inner products, smaller for L2 (the cells' borders are
    // fixed by the coarse level; 8% on this set).
    if (ip) {
      for (size_t c = 0; c < 1024; ++c) {
        double norm = 0;
        for (size_t d = 0; d < dim; ++d) norm += double{two->centroids[c * dim + d]} * two->centroids[c * dim + d];
        EXPECT_NEAR(norm, 1.0, 1e-3);
      }
      EXPECT_GE(two->objective, 0.9 * flat->objective);
    } else {
      EXPECT_LE(two->objective, 1.1 * flat->objective);
    }
    auto again = Kmeans(x.data(), n, dim, o);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->centroids, two->centroids);  // deterministic
  }
}

TEST(KmeansTest, RejectsBadInput) {
  std::vector<float> x = ClusteredVectors(10, 4, 2, 1);
  KmeansOptions o;
  o.k = 11;
  EXPECT_EQ(Kmeans(x.data(), 10, 4, o).status().code(), StatusCode::kFailedPrecondition);
  o.k = 0;
  EXPECT_EQ(Kmeans(x.data(), 10, 4, o).status().code(), StatusCode::kInvalidArgument);
  o.k = 2;
  x[3] = std::nanf("");
  EXPECT_EQ(Kmeans(x.data(), 10, 4, o).status().code(), StatusCode::kInvalidArgument);
  o.k = 4;
  o.hierarchical_from = 4;  // the two-level path checks its input too
  EXPECT_EQ(Kmeans(x.data(), 10, 4, o).status().code(), StatusCode::kInvalidArgument);
  x[3] = 0;
  o.k = 11;
  EXPECT_EQ(Kmeans(x.data(), 10, 4, o).status().code(), StatusCode::kFailedPrecondition);
}

TEST(IvfTest, DefaultNlist) {
  EXPECT_EQ(DefaultNlist(0), 1u);
  EXPECT_EQ(DefaultNlist(50), 1u);
  EXPECT_EQ(DefaultNlist(100), 2u);
  EXPECT_EQ(DefaultNlist(1000), 16u);
  EXPECT_EQ(DefaultNlist(20000), 512u);
  EXPECT_EQ(DefaultNlist(50000), 1024u);
  EXPECT_EQ(DefaultNlist(200000), 2048u);
  EXPECT_EQ(DefaultNlist(1000000), 4096u);
  EXPECT_EQ(DefaultNlist(100000000), 32768u);
  EXPECT_EQ(DefaultNlist(size_t{1} << 40), 65536u);
  for (size_t n : {700, 5000, 123456, 3000000}) {
    const uint32_t nlist = DefaultNlist(n);
    EXPECT_EQ(nlist & (nlist - 1), 0u) << n;
    EXPECT_LE(size_t{nlist} * 39, n) << n;
  }
}

TEST(IvfTest, NprobeForRecall) {
  IvfModel m;
  m.nlist = 64;
  EXPECT_EQ(NprobeForRecall(m, 0.9f), 64u);  // no curve: exhaustive
  m.recall_curve = {{1, 0.5f},   {2, 0.7f},   {4, 0.85f}, {8, 0.93f},
                    {16, 0.97f}, {32, 0.98f}, {64, 0.98f}};
  EXPECT_EQ(NprobeForRecall(m, 0.48f), 1u);  // aims at 0.48 + margin 0.015
  EXPECT_EQ(NprobeForRecall(m, 0.4f), 1u);
  EXPECT_EQ(NprobeForRecall(m, 0.68f), 2u);
  EXPECT_EQ(NprobeForRecall(m, 0.96f), 23u);      // 2^4.5 between 16 and 32
  const uint32_t p = NprobeForRecall(m, 0.935f);  // aims at 0.95: between 8 and 16
  EXPECT_GT(p, 8u);
  EXPECT_LT(p, 16u);
  EXPECT_EQ(NprobeForRecall(m, 0.97f), 23u);  // aim capped at best - 0.005 = 0.975
  EXPECT_EQ(NprobeForRecall(m, 0.98f), 32u);
  EXPECT_EQ(NprobeForRecall(m, 0.99f), 64u);  // never reached: nlist
  EXPECT_EQ(NprobeForRecall(m, 0.0f), 1u);
  // End to end with a rescoring stage keeping 0.99 of the exhaustive scan:
  // 0.95 asks the curve for 0.95 / 0.99 of its best (0.98).
  EXPECT_EQ(NprobeForRecall(m, 0.95f, 0.99f), NprobeForRecall(m, 0.95f / 0.99f * 0.98f));
  EXPECT_LT(NprobeForRecall(m, 0.95f, 0.99f), NprobeForRecall(m, 0.95f));
  EXPECT_EQ(NprobeForRecall(m, 0.995f, 0.99f), 64u);  // out of reach: every list
}

IvfModel SmallModel() {
  IvfModel m;
  m.metric = Metric::kEuclid;
  m.dim = 3;
  m.nlist = 2;
  m.centroids = {1, 2, 3, -4, 5.5f, 6};
  m.objective = 12.5f;
  m.training_seconds = 0.25;
  m.trained_on_points = 1000;
  m.recall_curve = {{1, 0.75f}, {2, 0.99f}};
  return m;
}

TEST(IvfTest, ModelRoundTrip) {
  const IvfModel m = SmallModel();
  const std::string bytes = m.Serialize();
  auto back = IvfModel::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->metric, m.metric);
  EXPECT_EQ(back->dim, m.dim);
  EXPECT_EQ(back->nlist, m.nlist);
  EXPECT_EQ(back->centroids, m.centroids);
  EXPECT_EQ(back->objective, m.objective);
  EXPECT_EQ(back->training_seconds, m.training_seconds);
  EXPECT_EQ(back->trained_on_points, m.trained_on_points);
  EXPECT_EQ(back->recall_curve, m.recall_curve);
  EXPECT_EQ(back->version, kIvfModelVersion);
  EXPECT_EQ(back->Serialize(), bytes);
  // Little-endian layout: magic "QVIF", then version 2.
  EXPECT_EQ(bytes.substr(0, 4), "QVIF");
  EXPECT_EQ(bytes[4], 2);
  EXPECT_EQ(bytes[5], 0);
}

TEST(IvfTest, ModelRejectsBadInput) {
  const std::string bytes = SmallModel().Serialize();
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_FALSE(IvfModel::Deserialize(std::string_view(bytes).substr(0, len)).ok()) << len;
  }
  EXPECT_FALSE(IvfModel::Deserialize(bytes + "x").ok());
  std::string bad_version = bytes;
  bad_version[4] = 3;
  EXPECT_EQ(IvfModel::Deserialize(bad_version).status().code(), StatusCode::kInvalidArgument);
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_FALSE(IvfModel::Deserialize(bad_magic).ok());
  std::string bad_metric = bytes;
  bad_metric[8] = 7;
  EXPECT_FALSE(IvfModel::Deserialize(bad_metric).ok());
  // nlist says 3 but 2 * 3 centroid floats follow.
  IvfModel m = SmallModel();
  m.nlist = 3;
  m.recall_curve.clear();
  EXPECT_FALSE(m.Validate().ok());
  EXPECT_FALSE(IvfModel::Deserialize(m.Serialize()).ok());
  m = SmallModel();
  m.recall_curve = {{2, 0.5f}, {1, 0.6f}};
  EXPECT_FALSE(IvfModel::Deserialize(m.Serialize()).ok());
  m = SmallModel();
  m.centroids[1] = std::nanf("");
  EXPECT_FALSE(IvfModel::Deserialize(m.Serialize()).ok());
  // Model and quantizer must agree.
  EXPECT_FALSE(IvfIndex::Create(MakeQuantizer(4, Metric::kEuclid), SmallModel()).ok());
  EXPECT_FALSE(IvfIndex::Create(MakeQuantizer(3, Metric::kDot), SmallModel()).ok());
  EXPECT_TRUE(IvfIndex::Create(MakeQuantizer(3, Metric::kEuclid), SmallModel()).ok());
}

// ---------------------------------------------------------------------------
// Search on realistic clustered data (trained once).
// ---------------------------------------------------------------------------

constexpr size_t kN = 30000, kDim = 96, kClusters = 300, kQueries = 300;
constexpr float kCenterScale = 0.8f;

class IvfSearchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::vector<float> all = OverlappingClusters(kN + kQueries, kDim, kClusters, kCenterScale, 42);
    base_ = new std::vector<float>(all.begin(), all.begin() + kN * kDim);
    queries_ = new std::vector<float>(all.begin() + kN * kDim, all.end());
    quantizer_ = new Quantizer(MakeQuantizer(kDim, Metric::kCosine));
    // Train on a 20k sample of the base (the engine trains on a sample).
    auto model = TrainIvf(*quantizer_, base_->data(), 20000);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    model_ = new IvfModel(std::move(model).value());
    truth_ = new std::vector<std::vector<uint64_t>>(
        ExactTopK(*quantizer_, base_->data(), kN, queries_->data(), kQueries, 10).value());
  }
  static void TearDownTestSuite() {
    delete base_;
    delete queries_;
    delete quantizer_;
    delete model_;
    delete truth_;
  }
  static std::vector<float>* base_;
  static std::vector<float>* queries_;
  static Quantizer* quantizer_;
  static IvfModel* model_;
  static std::vector<std::vector<uint64_t>>* truth_;
};
std::vector<float>* IvfSearchTest::base_ = nullptr;
std::vector<float>* IvfSearchTest::queries_ = nullptr;
Quantizer* IvfSearchTest::quantizer_ = nullptr;
IvfModel* IvfSearchTest::model_ = nullptr;
std::vector<std::vector<uint64_t>>* IvfSearchTest::truth_ = nullptr;

TEST_F(IvfSearchTest, TrainedModelAndCurve) {
  const IvfModel& m = *model_;
  EXPECT_EQ(m.nlist, DefaultNlist(20000 - 200));
  EXPECT_EQ(m.dim, kDim);
  EXPECT_EQ(m.centroids.size(), size_t{m.nlist} * kDim);
  EXPECT_GT(m.training_seconds, 0);
  EXPECT_EQ(m.trained_on_points, std::min<uint64_t>(20000 - 200, uint64_t{64} * m.nlist));
  ASSERT_FALSE(m.recall_curve.empty());
  EXPECT_EQ(m.recall_curve.front().first, 1u);
  EXPECT_EQ(m.recall_curve.back().first, m.nlist);
  for (size_t i = 1; i < m.recall_curve.size(); ++i) {
    EXPECT_GE(m.recall_curve[i].second + 0.02f, m.recall_curve[i - 1].second);
  }
  EXPECT_GT(m.recall_curve.back().second, 0.95f);
  for (const auto& [p, r] : m.recall_curve) std::printf("  curve nprobe=%u recall=%.3f\n", p, r);
}

TEST_F(IvfSearchTest, RecallNotTrivialAndDefaultReachesTarget) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  IvfSearchParams p;
  p.nprobe = 1;
  auto one = b.ivf->SearchBatch(queries_->data(), kQueries, p);
  ASSERT_TRUE(one.ok());
  const double r1 = RecallAtK(*truth_, *one);
  IvfSearchParams def;  // nprobe from target_recall 0.95
  auto got = b.ivf->SearchBatch(queries_->data(), kQueries, def);
  ASSERT_TRUE(got.ok());
  const double r = RecallAtK(*truth_, *got);
  const double flat =
      RecallAtK(*truth_, b.flat->SearchBatch(queries_->data(), kQueries, SearchParams{}).value());
  std::printf("  nlist=%u recall@10: nprobe=1 %.3f, default (nprobe=%u) %.3f, flat int8 %.3f\n",
              model_->nlist, r1, NprobeForRecall(*model_, 0.95f), r, flat);
  EXPECT_LT(r1, 0.9) << "data is trivially separable";
  EXPECT_GE(r, 0.95);
}

void ExpectSameAsFlat(const IvfIndex& ivf, const FlatIndex& flat, const float* queries, size_t nq,
                      size_t dim) {
  IvfSearchParams p;
  p.nprobe = ivf.nlist();
  p.k = 10;
  SearchParams fp;
  fp.k = 10;
  auto batch = ivf.SearchBatch(queries, nq, p);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  for (size_t i = 0; i < nq; ++i) {
    auto a = ivf.Search(queries + i * dim, p);
    auto b = flat.Search(queries + i * dim, fp);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(*a, *b) << "query " << i;
    ASSERT_EQ((*batch)[i], *b) << "batch query " << i;
  }
}

TEST_F(IvfSearchTest, ExhaustiveEqualsFlatWithUpdates) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  EXPECT_EQ(b.ivf->size(), kN);
  ExpectSameAsFlat(*b.ivf, *b.flat, queries_->data(), 50, kDim);
  // Deletes, updates (re-encoded vectors moving to their new list) and inserts.
  std::mt19937 rng(5);
  std::uniform_int_distribution<size_t> pick(0, kN - 1);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<uint8_t> blob(quantizer_->EncodedSize());
  size_t moved = 0;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t victim = pick(rng);
    EXPECT_EQ(b.ivf->Remove(victim), b.flat->Remove(victim));
    const uint64_t updated = pick(rng);
    const size_t src = pick(rng);
    std::vector<float> x(base_->begin() + src * kDim, base_->begin() + (src + 1) * kDim);
    ASSERT_TRUE(quantizer_->Preprocess(x.data()).ok());
    ASSERT_TRUE(quantizer_->Encode(x.data(), blob.data()).ok());
    const uint32_t list = b.ivf->Assign(x.data());
    moved += b.ivf->Contains(updated);
    ASSERT_TRUE(b.ivf->Add(updated, list, blob.data(), blob.size()).ok());
    ASSERT_TRUE(b.flat->Add(updated, blob.data(), blob.size()).ok());
    // A fresh label with a distinct vector (duplicates would tie, and ties
    // are broken by label here but by row in the flat index).
    std::vector<float> y(queries_->begin() + (i % kQueries) * kDim,
                         queries_->begin() + (i % kQueries + 1) * kDim);
    for (size_t d = 0; d < kDim; ++d) y[d] += 0.1f * noise(rng);
    ASSERT_TRUE(quantizer_->Preprocess(y.data()).ok());
    ASSERT_TRUE(quantizer_->Encode(y.data(), blob.data()).ok());
    const uint64_t fresh = kN + i;
    ASSERT_TRUE(b.ivf->Add(fresh, b.ivf->Assign(y.data()), blob.data(), blob.size()).ok());
    ASSERT_TRUE(b.flat->Add(fresh, blob.data(), blob.size()).ok());
  }
  EXPECT_GT(moved, 1000u);
  EXPECT_EQ(b.ivf->size(), b.flat->size());
  EXPECT_FALSE(b.ivf->Remove(kN * 10));
  ExpectSameAsFlat(*b.ivf, *b.flat, queries_->data(), 50, kDim);
  size_t total = 0;
  for (uint32_t l = 0; l < b.ivf->nlist(); ++l) total += b.ivf->list_size(l);
  EXPECT_EQ(total, b.ivf->size());
}

TEST_F(IvfSearchTest, BatchEqualsSingle) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  for (uint32_t nprobe : {1u, 7u, 32u}) {
    IvfSearchParams p;
    p.nprobe = nprobe;
    p.k = 15;
    auto batch = b.ivf->SearchBatch(queries_->data(), 100, p);
    ASSERT_TRUE(batch.ok());
    for (size_t i = 0; i < 100; ++i) {
      auto one = b.ivf->Search(queries_->data() + i * kDim, p);
      ASSERT_TRUE(one.ok());
      ASSERT_EQ(*one, (*batch)[i]) << nprobe << " " << i;
    }
  }
}

TEST_F(IvfSearchTest, FilteredSearchReturnsK) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  const std::function<bool(uint64_t)> one_percent = [](uint64_t l) { return l % 100 == 37; };
  const std::function<bool(uint64_t)> tiny = [](uint64_t l) { return l % 5000 == 1; };  // 6 match
  IvfSearchParams p;
  p.nprobe = 4;
  p.filter = &one_percent;
  auto batch = b.ivf->SearchBatch(queries_->data(), 100, p);
  ASSERT_TRUE(batch.ok());
  for (size_t i = 0; i < 100; ++i) {
    auto hits = b.ivf->Search(queries_->data() + i * kDim, p);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 10u);
    for (const Hit& h : *hits) EXPECT_EQ(h.label % 100, 37u);
    EXPECT_EQ(*hits, (*batch)[i]);
  }
  p.filter = &tiny;
  auto hits = b.ivf->Search(queries_->data(), p);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 6u);
  // Exact search over an allowed set equals the flat filtered search.
  std::vector<uint64_t> allowed;
  for (uint64_t l = 37; l < kN; l += 100) allowed.push_back(l);
  allowed.push_back(kN * 5);  // unknown: skipped
  SearchParams fp;
  fp.filter = &one_percent;
  IvfSearchParams ap;
  for (size_t i = 0; i < 20; ++i) {
    auto a = b.ivf->SearchAllowed(queries_->data() + i * kDim, ap, allowed);
    auto f = b.flat->Search(queries_->data() + i * kDim, fp);
    ASSERT_TRUE(a.ok() && f.ok());
    EXPECT_EQ(*a, *f);
  }
}

TEST_F(IvfSearchTest, RescoreThresholdAndErrors) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  InMemoryOriginals originals(kDim);
  std::vector<float> x(kDim);
  for (size_t i = 0; i < kN; ++i) {
    std::copy(base_->begin() + i * kDim, base_->begin() + (i + 1) * kDim, x.begin());
    ASSERT_TRUE(quantizer_->Preprocess(x.data()).ok());
    originals.Put(i, x.data());
  }
  IvfSearchParams p;
  p.rescore = true;
  p.oversampling = 3;
  p.nprobe = model_->nlist;
  auto got = b.ivf->SearchBatch(queries_->data(), 100, p, &originals);
  ASSERT_TRUE(got.ok());
  std::vector<std::vector<uint64_t>> truth(truth_->begin(), truth_->begin() + 100);
  EXPECT_GE(RecallAtK(truth, *got), 0.99);
  IvfSearchParams exact;
  exact.ignore_quantization = true;
  exact.nprobe = model_->nlist;
  auto ex = b.ivf->SearchBatch(queries_->data(), 20, exact, &originals);
  ASSERT_TRUE(ex.ok());
  truth.resize(20);
  EXPECT_EQ(RecallAtK(truth, *ex), 1.0);
  // Threshold: all hits pass, fewer than k for a high bar.
  IvfSearchParams t;
  t.nprobe = 8;
  t.score_threshold = 0.9f;
  auto th = b.ivf->Search(queries_->data(), t);
  ASSERT_TRUE(th.ok());
  for (const Hit& h : *th) EXPECT_GE(h.score, 0.9f);
  for (size_t i = 1; i < th->size(); ++i) EXPECT_GE((*th)[i - 1].score, (*th)[i].score);
  // Errors.
  IvfSearchParams bad;
  bad.k = 0;
  EXPECT_EQ(b.ivf->Search(queries_->data(), bad).status().code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.target_recall = 1.5f;
  EXPECT_EQ(b.ivf->Search(queries_->data(), bad).status().code(), StatusCode::kInvalidArgument);
  bad = {};
  bad.rescore = true;
  EXPECT_EQ(b.ivf->Search(queries_->data(), bad).status().code(), StatusCode::kFailedPrecondition);
  std::vector<float> zero(kDim, 0.0f);
  EXPECT_EQ(b.ivf->Search(zero.data(), IvfSearchParams{}).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<uint8_t> blob(quantizer_->EncodedSize());
  EXPECT_FALSE(b.ivf->Add(1, model_->nlist, blob.data(), blob.size()).ok());
  EXPECT_FALSE(b.ivf->Add(1, 0, blob.data(), blob.size() - 1).ok());
}

TEST_F(IvfSearchTest, HealthIsSane) {
  Built b = Build(*quantizer_, *model_, base_->data(), kN);
  const IvfHealth h = b.ivf->Health();
  EXPECT_EQ(h.nlist, model_->nlist);
  EXPECT_EQ(h.size, kN);
  EXPECT_LE(h.min_list, h.median_list);
  EXPECT_LE(h.median_list, h.max_list);
  EXPECT_GE(h.imbalance, 1.0);
  EXPECT_LT(h.imbalance, 10.0);
  EXPECT_GT(h.median_list, 0u);
  EXPECT_EQ(h.recall_curve, model_->recall_curve);
  EXPECT_EQ(h.objective, model_->objective);
  EXPECT_GT(b.ivf->MemoryBytes(), kN * 128);
  std::printf(
      "  lists min/median/max %zu/%zu/%zu imbalance %.2f empty %zu objective %.1f "
      "train %.2fs\n",
      h.min_list, h.median_list, h.max_list, h.imbalance, h.empty_lists, h.objective,
      h.training_seconds);
}

// Two-level k-means trains lists that probe about as well as flat k-means:
// the recall curves agree within 0.05 at every nprobe, for Cosine and Euclid.
TEST(IvfTest, TwoLevelTrainingKeepsTheRecallCurve) {
  const size_t n = 30000, dim = 32;
  std::vector<float> all = ClusteredVectors(n, dim, 200, 17);
  for (Metric metric : {Metric::kCosine, Metric::kEuclid}) {
    SCOPED_TRACE(std::string(Describe(metric).name));
    const Quantizer q = MakeQuantizer(dim, metric, QuantizationType::kSymmetricInt8);
    IvfTrainOptions o;
    o.nlist = 256;
    o.hierarchical_from = 0;
    auto flat = TrainIvf(q, all.data(), n, o);
    o.hierarchical_from = 256;
    auto two = TrainIvf(q, all.data(), n, o);
    ASSERT_TRUE(flat.ok() && two.ok()) << two.status().ToString();
    ASSERT_EQ(two->nlist, 256u);
    ASSERT_EQ(flat->recall_curve.size(), two->recall_curve.size());
    for (size_t i = 0; i < flat->recall_curve.size(); ++i) {
      EXPECT_EQ(flat->recall_curve[i].first, two->recall_curve[i].first);
      EXPECT_NEAR(two->recall_curve[i].second, flat->recall_curve[i].second, 0.05)
          << "nprobe " << flat->recall_curve[i].first;
    }
  }
}

// Other metrics and code types: exhaustive IVF equals flat.
class IvfMetricTest : public ::testing::TestWithParam<std::tuple<Metric, QuantizationType>> {};

TEST_P(IvfMetricTest, ExhaustiveEqualsFlat) {
  const auto [metric, type] = GetParam();
  const size_t n = 6000, dim = 40, nq = 40;
  std::vector<float> all = ClusteredVectors(n + nq, dim, 60, 11);
  const Quantizer q = MakeQuantizer(dim, metric, type);
  IvfTrainOptions o;
  o.nlist = 64;
  auto model = TrainIvf(q, all.data(), n, o);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Built b = Build(q, *model, all.data(), n);
  ExpectSameAsFlat(*b.ivf, *b.flat, all.data() + n * dim, nq, dim);
  // Recall reaches the flat int8 level at the top of the curve.
  EXPECT_GT(model->recall_curve.back().second, 0.8f);
  const IvfHealth h = b.ivf->Health();
  EXPECT_LT(h.imbalance, 10.0);
}

INSTANTIATE_TEST_SUITE_P(
    IvfMetrics, IvfMetricTest,
    ::testing::Values(std::make_tuple(Metric::kEuclid, QuantizationType::kSymmetricInt8),
                      std::make_tuple(Metric::kDot, QuantizationType::kSymmetricInt8),
                      std::make_tuple(Metric::kCosine, QuantizationType::kAsymmetricUint8),
                      std::make_tuple(Metric::kEuclid, QuantizationType::kAsymmetricUint8)));

TEST(IvfTest, TrainRejectsBadInput) {
  const Quantizer q = MakeQuantizer(8, Metric::kCosine);
  std::vector<float> x = ClusteredVectors(500, 8, 5, 3);
  IvfTrainOptions o;
  o.nlist = 1000;
  EXPECT_EQ(TrainIvf(q, x.data(), 500, o).status().code(), StatusCode::kFailedPrecondition);
  o.nlist = 70000;
  EXPECT_EQ(TrainIvf(q, x.data(), 500, o).status().code(), StatusCode::kInvalidArgument);
  std::fill(x.begin(), x.begin() + 8, 0.0f);  // zero vector under Cosine
  EXPECT_EQ(TrainIvf(q, x.data(), 500, {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(TrainIvf(q, x.data(), 0, {}).ok());
  // Tiny sample: no curve, still usable.
  auto small = TrainIvf(q, x.data() + 8, 60, {});
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  EXPECT_TRUE(small->recall_curve.empty());
  EXPECT_EQ(small->nlist, 1u);
}

}  // namespace
}  // namespace qvec::index
