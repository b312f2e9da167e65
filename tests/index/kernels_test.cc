// Every kernel variant available on this CPU must equal the scalar reference
// exactly (integer kernels) or within float rounding (float kernels).
#include "index/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace qvec::index {
namespace {

std::vector<const Kernels*> SimdVariants() {
  std::vector<const Kernels*> out;
  for (SimdLevel level :
       {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kAmx}) {
    if (const Kernels* k = KernelsFor(level)) out.push_back(k);
  }
  return out;
}

enum class Pattern { kRandom, kAllPlus, kAllMinus, kMixedExtreme, kZeros };

void Fill(Pattern p, std::mt19937& rng, int8_t* s8, uint8_t* u8, size_t n) {
  std::uniform_int_distribution<int> s(-127, 127), u(0, 255), bit(0, 1);
  for (size_t i = 0; i < n; ++i) {
    switch (p) {
      case Pattern::kRandom:
        s8[i] = static_cast<int8_t>(s(rng));
        u8[i] = u(rng);
        break;
      case Pattern::kAllPlus:
        s8[i] = 127;
        u8[i] = 255;
        break;
      case Pattern::kAllMinus:
        s8[i] = -127;
        u8[i] = 255;
        break;
      case Pattern::kMixedExtreme:
        s8[i] = bit(rng) ? 127 : -127;
        u8[i] = bit(rng) ? 255 : 0;
        break;
      case Pattern::kZeros:
        s8[i] = 0;
        u8[i] = 0;
        break;
    }
  }
}

// Checks every integer kernel of every variant on n codes of `dim` with
// the query and codes following the given patterns.
// nq = 5 exercises the small-batch path of every kernel table, larger counts
// the AMX tiles (which pad queries to multiples of 32).
void CheckIntegerKernels(size_t dim, size_t n, Pattern query_pattern, Pattern code_pattern,
                         uint32_t seed, size_t nq = 5, size_t stride_pad = 7) {
  std::mt19937 rng(seed);
  const size_t stride = dim + stride_pad;  // deliberately unaligned stride by default
  std::vector<int8_t> q(nq * dim), codes(n * stride);
  std::vector<uint8_t> q_unused(nq * dim), ucodes(n * stride);
  std::vector<int8_t> s_unused(n * stride);
  Fill(query_pattern, rng, q.data(), q_unused.data(), nq * dim);
  Fill(code_pattern, rng, codes.data(), ucodes.data(), n * stride);
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  std::vector<int32_t> want_s8(nq * n), want_u8(nq * n), want_sad(nq * n);
  // L1 kernels take uint8 queries: the query bytes reinterpreted.
  const uint8_t* uq = reinterpret_cast<const uint8_t*>(q.data());
  for (size_t i = 0; i < nq; ++i) {
    for (size_t j = 0; j < n; ++j) {
      want_s8[i * n + j] = ref.dot_s8(q.data() + i * dim, codes.data() + j * stride, dim);
      want_u8[i * n + j] = ref.dot_u8s8(ucodes.data() + j * stride, q.data() + i * dim, dim);
      want_sad[i * n + j] = ref.sad_u8(uq + i * dim, ucodes.data() + j * stride, dim);
    }
  }
  for (const Kernels* k : SimdVariants()) {
    SCOPED_TRACE(std::string(SimdLevelName(k->level)) + " dim=" + std::to_string(dim));
    std::vector<int32_t> got(nq * n);
    for (size_t i = 0; i < nq; ++i) {
      k->dot_s8_many(q.data() + i * dim, codes.data(), stride, n, dim, got.data() + i * n);
    }
    ASSERT_EQ(got, want_s8) << "dot_s8_many";
    for (size_t i = 0; i < nq; ++i) {
      k->dot_u8s8_many(q.data() + i * dim, ucodes.data(), stride, n, dim, got.data() + i * n);
    }
    ASSERT_EQ(got, want_u8) << "dot_u8s8_many";
    k->dot_s8_batch(q.data(), dim, nq, codes.data(), stride, n, dim, got.data());
    ASSERT_EQ(got, want_s8) << "dot_s8_batch";
    k->dot_u8s8_batch(q.data(), dim, nq, ucodes.data(), stride, n, dim, got.data());
    ASSERT_EQ(got, want_u8) << "dot_u8s8_batch";
    for (size_t i = 0; i < nq; ++i) {
      k->sad_u8_many(uq + i * dim, ucodes.data(), stride, n, dim, got.data() + i * n);
    }
    ASSERT_EQ(got, want_sad) << "sad_u8_many";
    ScoreCodesBatch(*k, CodeKernel::kSadU8, q.data(), dim, nq, ucodes.data(), stride, n, dim,
                    got.data());
    ASSERT_EQ(got, want_sad) << "ScoreCodesBatch(kSadU8)";
    for (size_t j = 0; j < n; ++j) {
      ASSERT_EQ(k->dot_s8(q.data(), codes.data() + j * stride, dim), want_s8[j]);
      ASSERT_EQ(k->dot_u8s8(ucodes.data() + j * stride, q.data(), dim), want_u8[j]);
      ASSERT_EQ(k->sad_u8(uq, ucodes.data() + j * stride, dim), want_sad[j]);
    }
  }
}

TEST(KernelsTest, IntegerKernelsMatchScalarForSmallDims) {
  for (size_t dim = 1; dim <= 300; ++dim) {
    CheckIntegerKernels(dim, 21, Pattern::kRandom, Pattern::kRandom, static_cast<uint32_t>(dim));
  }
}

TEST(KernelsTest, IntegerKernelsMatchScalarOnExtremes) {
  const Pattern patterns[] = {Pattern::kAllPlus, Pattern::kAllMinus, Pattern::kMixedExtreme,
                              Pattern::kZeros, Pattern::kRandom};
  for (size_t dim : {1u, 3u, 63u, 64u, 65u, 127u, 128u, 784u, 4099u}) {
    for (Pattern qp : patterns) {
      for (Pattern cp : patterns) CheckIntegerKernels(dim, 37, qp, cp, 7);
    }
  }
}

TEST(KernelsTest, IntegerKernelsExactAtMaxDim) {
  // Worst case for int32 accumulation: every product at its extreme.
  for (Pattern p : {Pattern::kAllPlus, Pattern::kAllMinus, Pattern::kMixedExtreme}) {
    CheckIntegerKernels(kMaxKernelDim, 5, p, p, 11);
    CheckIntegerKernels(kMaxKernelDim, 5, Pattern::kAllPlus, p, 12);
  }
  CheckIntegerKernels(kMaxKernelDim, 6, Pattern::kRandom, Pattern::kRandom, 13);
}

TEST(KernelsTest, BatchKernelsMatchScalarAcrossQueryAndCodeCounts) {
  // Query counts around the AMX tile sizes (16, 32) and the small-batch
  // cut-off; code counts around the 32-code block; tight strides (0 padding)
  // so that the last block's tile loads would run past the buffer unless the
  // kernel copies it.
  uint32_t seed = 100;
  for (size_t dim : {1u, 4u, 63u, 64u, 65u, 130u, 784u}) {
    for (size_t nq : {7u, 8u, 16u, 17u, 33u, 64u, 70u}) {
      for (size_t n : {1u, 31u, 32u, 33u, 97u}) {
        for (size_t pad : {0u, 5u, 64u}) {
          CheckIntegerKernels(dim, n, Pattern::kRandom, Pattern::kRandom, ++seed, nq, pad);
        }
      }
    }
  }
  for (Pattern p : {Pattern::kAllPlus, Pattern::kAllMinus, Pattern::kMixedExtreme}) {
    CheckIntegerKernels(kMaxKernelDim, 3, p, p, 21, 40, 0);
  }
}

TEST(KernelsTest, BatchHandlesManyCodesAndQueries) {
  // More codes than one packed block and a query count not a multiple of 4.
  std::mt19937 rng(3);
  const size_t dim = 97, n = 600, nq = 7;
  std::vector<int8_t> q(nq * dim), codes(n * dim);
  std::vector<uint8_t> u(n * dim), unused(nq * dim);
  Fill(Pattern::kRandom, rng, q.data(), unused.data(), nq * dim);
  Fill(Pattern::kRandom, rng, codes.data(), u.data(), n * dim);
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  std::vector<int32_t> want(nq * n), got(nq * n);
  ref.dot_s8_batch(q.data(), dim, nq, codes.data(), dim, n, dim, want.data());
  for (const Kernels* k : SimdVariants()) {
    k->dot_s8_batch(q.data(), dim, nq, codes.data(), dim, n, dim, got.data());
    EXPECT_EQ(got, want) << SimdLevelName(k->level);
  }
}

TEST(KernelsTest, RankSelectMatchesScalarBitForBit) {
  std::mt19937 rng(17);
  std::normal_distribution<float> g;
  std::uniform_int_distribution<int32_t> dot(-2000000, 2000000);
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t n : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 255u, 256u, 1000u}) {
    std::vector<int32_t> dots(n);
    std::vector<float> scale(n), offset(n), norm(n);
    for (size_t j = 0; j < n; ++j) {
      dots[j] = dot(rng);
      scale[j] = std::abs(g(rng)) * 1e-3f;
      offset[j] = g(rng) * 0.01f;
      norm[j] = std::abs(g(rng));
    }
    for (bool euclid : {false, true}) {
      for (float bar : {-std::numeric_limits<float>::infinity(), 0.0f, 0.5f}) {
        std::vector<float> want_ranks(n), got_ranks(n);
        std::vector<uint32_t> want_sel(n), got_sel(n);
        const float* ns = euclid ? norm.data() : nullptr;
        const size_t want = ref.rank_select(dots.data(), scale.data(), offset.data(), ns, n, 0.013f,
                                            1.7f, -0.2f, bar, want_ranks.data(), want_sel.data());
        want_sel.resize(want);
        for (const Kernels* k : SimdVariants()) {
          const size_t got = k->rank_select(dots.data(), scale.data(), offset.data(), ns, n, 0.013f,
                                            1.7f, -0.2f, bar, got_ranks.data(), got_sel.data());
          std::vector<uint32_t> sel(got_sel.begin(), got_sel.begin() + got);
          EXPECT_EQ(sel, want_sel) << SimdLevelName(k->level) << " n=" << n;
          for (size_t j = 0; j < n; ++j) {
            ASSERT_EQ(std::memcmp(&got_ranks[j], &want_ranks[j], sizeof(float)), 0)
                << SimdLevelName(k->level) << " j=" << j;
          }
        }
      }
    }
  }
}

TEST(KernelsTest, QuantizeS8MatchesNearbyintAndScalar) {
  std::mt19937 rng(23);
  std::normal_distribution<float> g;
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t dim = 1; dim <= 200; ++dim) {
    std::vector<float> x(dim);
    for (float& v : x) v = g(rng);
    // Exact halves: with max|x| = 127 the scaled values are x itself.
    x[0] = 127.0f;
    for (size_t i = 1; i < dim; i += 3)
      x[i] = static_cast<float>(static_cast<int>(i % 200) - 100) + 0.5f;
    std::vector<int8_t> want(dim), got(dim);
    const float scale = ref.quantize_s8(x.data(), dim, want.data());
    EXPECT_FLOAT_EQ(scale, 1.0f);
    for (size_t i = 0; i < dim; ++i) {
      ASSERT_EQ(want[i], static_cast<int8_t>(std::nearbyint(x[i]))) << "i=" << i;
    }
    for (const Kernels* k : SimdVariants()) {
      EXPECT_EQ(k->quantize_s8(x.data(), dim, got.data()), scale) << SimdLevelName(k->level);
      EXPECT_EQ(got, want) << SimdLevelName(k->level) << " dim=" << dim;
    }
  }
  std::vector<float> zeros(37, 0.0f);
  std::vector<int8_t> out(37, 5);
  for (const Kernels* k : SimdVariants()) {
    EXPECT_EQ(k->quantize_s8(zeros.data(), zeros.size(), out.data()), 0.0f);
    EXPECT_EQ(out, std::vector<int8_t>(37, 0));
  }
}

TEST(KernelsTest, ArgmaxScaledMatchesScalarIncludingTies) {
  std::mt19937 rng(29);
  std::uniform_int_distribution<int32_t> dot(-50, 50);  // small range: many ties
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t n : {1u, 2u, 15u, 16u, 17u, 31u, 64u, 100u, 1024u}) {
    std::vector<int32_t> dots(n);
    std::vector<float> scale(n, 0.5f), bias(n);
    for (size_t j = 0; j < n; ++j) {
      dots[j] = dot(rng);
      bias[j] = static_cast<float>(j % 3);
    }
    for (const float* b :
         {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
      for (float mul : {1.0f, 0.25f, 0.0f}) {
        float want_value = 0, got_value = 0;
        const size_t want = ref.argmax_scaled(dots.data(), scale.data(), b, n, mul, &want_value);
        for (const Kernels* k : SimdVariants()) {
          EXPECT_EQ(k->argmax_scaled(dots.data(), scale.data(), b, n, mul, &got_value), want)
              << SimdLevelName(k->level) << " n=" << n << " mul=" << mul;
          EXPECT_EQ(got_value, want_value);
        }
        // The reference returns the first maximum.
        for (size_t j = 0; j < want; ++j) {
          float v = (mul * scale[j]) * static_cast<float>(dots[j]);
          if (b != nullptr) v -= b[j];
          EXPECT_LT(v, want_value);
        }
      }
    }
  }
}

TEST(KernelsTest, FloatKernelsMatchScalarWithinRounding) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t dim : {1u, 2u, 7u, 15u, 16u, 17u, 31u, 33u, 100u, 784u, 4099u}) {
    const size_t n = 9;
    std::vector<float> q(dim), x(n * dim);
    for (float& v : q) v = g(rng);
    for (float& v : x) v = g(rng);
    for (const Kernels* k : SimdVariants()) {
      std::vector<float> dots(n), l2s(n);
      k->dot_f32_many(q.data(), x.data(), dim, n, dim, dots.data());
      k->l2sq_f32_many(q.data(), x.data(), dim, n, dim, l2s.data());
      for (size_t j = 0; j < n; ++j) {
        const float* xj = x.data() + j * dim;
        const float tol = 1e-4f * static_cast<float>(dim);
        EXPECT_NEAR(k->dot_f32(q.data(), xj, dim), ref.dot_f32(q.data(), xj, dim), tol);
        EXPECT_NEAR(dots[j], ref.dot_f32(q.data(), xj, dim), tol);
        EXPECT_NEAR(k->l2sq_f32(q.data(), xj, dim), ref.l2sq_f32(q.data(), xj, dim), tol);
        EXPECT_NEAR(l2s[j], ref.l2sq_f32(q.data(), xj, dim), tol);
        EXPECT_NEAR(k->l1_f32(q.data(), xj, dim), ref.l1_f32(q.data(), xj, dim), tol);
      }
    }
  }
}

// The 4-bit fast scan: random and extreme tables (sums that wrap past 2^16
// must wrap identically), every m step from 4 to 260 (beyond 256 the odd
// bytes' 16-bit partial sums wrap too).
TEST(KernelsTest, ScanU4MatchesScalarBitForBit) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255);
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t m : {4, 8, 12, 16, 32, 64, 96, 128, 196, 260}) {
    for (int extreme = 0; extreme < 2; ++extreme) {
      const size_t nblocks = 3;
      std::vector<uint8_t> lut(m * 16), blocks(nblocks * m * 16);
      for (auto& v : lut) v = extreme ? 255 : static_cast<uint8_t>(byte(rng));
      for (auto& v : blocks) v = static_cast<uint8_t>(byte(rng));
      std::vector<uint16_t> want(nblocks * 32), got(nblocks * 32);
      ref.scan_u4(lut.data(), blocks.data(), nblocks, m, want.data());
      // The reference is the definition: check one row by hand.
      uint32_t sum = 0;
      for (size_t j = 0; j < m; ++j) sum += lut[j * 16 + (blocks[m * 16 + j * 16 + 5] >> 4)];
      ASSERT_EQ(want[32 + 21], static_cast<uint16_t>(sum));
      for (const Kernels* k : SimdVariants()) {
        std::fill(got.begin(), got.end(), 0xABCD);
        k->scan_u4(lut.data(), blocks.data(), nblocks, m, got.data());
        ASSERT_EQ(got, want) << SimdLevelName(k->level) << " m=" << m << " extreme=" << extreme;
      }
    }
  }
}

TEST(KernelsTest, SelectU16MatchesScalar) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> value(0, 65535);
  const Kernels& ref = *KernelsFor(SimdLevel::kScalar);
  for (size_t n : {0, 1, 15, 16, 17, 31, 32, 33, 100, 512}) {
    std::vector<uint16_t> v(n);
    for (auto& x : v) x = static_cast<uint16_t>(value(rng));
    if (n > 3) v[1] = 65535, v[2] = 0, v[3] = 32768;
    for (int32_t above : {-5, -1, 0, 1, 32767, 32768, 40000, 65534, 65535, 70000}) {
      std::vector<uint32_t> want(n + 1), got(n + 1);
      const size_t want_count = ref.select_u16(v.data(), n, above, want.data());
      want.resize(want_count);
      for (const Kernels* k : SimdVariants()) {
        std::vector<uint32_t> out(n + 1);
        const size_t count = k->select_u16(v.data(), n, above, out.data());
        out.resize(count);
        ASSERT_EQ(out, want) << SimdLevelName(k->level) << " n=" << n << " above=" << above;
      }
    }
  }
}

TEST(KernelsTest, EnvOverrideSelectsRequestedOrBestLevel) {
  const SimdLevel best = internal::ChooseSimdLevel(nullptr);
  EXPECT_EQ(internal::ChooseSimdLevel("scalar"), SimdLevel::kScalar);
  EXPECT_EQ(internal::ChooseSimdLevel("bogus"), best);
  for (SimdLevel level : {SimdLevel::kAvx2, SimdLevel::kAvx512, SimdLevel::kAmx}) {
    const SimdLevel chosen = internal::ChooseSimdLevel(std::string(SimdLevelName(level)).c_str());
    EXPECT_EQ(chosen, KernelsFor(level) != nullptr ? level : best);
  }
  // ActiveKernels honours whatever QVEC_SIMD the test process was started with.
  EXPECT_EQ(ActiveKernels().level, ActiveSimdLevel());
  EXPECT_EQ(ActiveSimdLevel(), internal::ChooseSimdLevel(std::getenv("QVEC_SIMD")));
}

}  // namespace
}  // namespace qvec::index
