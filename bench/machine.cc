#include "bench/machine.h"

#include <immintrin.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "index/kernels.h"

namespace qvec::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Reads [p, p + bytes) with 256-bit loads into four accumulators (enough
// loads in flight to saturate a core's memory path); the sum is returned so
// the loads cannot be elided. bytes is a multiple of 128.
__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint8_t* p, size_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i < bytes; i += 128) {
    a = _mm256_add_epi64(a, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t ReadScalar(const uint8_t* p, size_t bytes) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i < bytes; i += 32) {
    uint64_t w[4];
    std::memcpy(w, p + i, 32);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
  }
  return a + b + c + d;
}

uint64_t Read(const uint8_t* p, size_t bytes) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2 ? ReadAvx2(p, bytes) : ReadScalar(p, bytes);
}

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};

}  // namespace

MachineLimits MeasureMachine(size_t threads, size_t buffer_mib) {
  MachineLimits m;
  const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  m.l3_bytes = l3 > 0 ? static_cast<size_t>(l3) : 0;
  m.threads = threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency());
  const size_t chunk = 128 * m.threads;
  const size_t bytes = std::max<size_t>(buffer_mib, 64) * (size_t{1} << 20) / chunk * chunk;
  std::unique_ptr<uint8_t, AlignedFree> buffer(static_cast<uint8_t*>(std::aligned_alloc(64, bytes)));
  if (buffer == nullptr) return m;
  // Written first (page faults and zero pages are not what is measured).
  for (size_t i = 0; i < bytes; i += 4096) std::memset(buffer.get() + i, static_cast<int>(i), 4096);
  std::atomic<uint64_t> sink{0};
  double best = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    const auto start = Clock::now();
    sink += Read(buffer.get(), bytes);
    best = std::min(best, SecondsSince(start));
  }
  m.read_gbs_one = static_cast<double>(bytes) / best / 1e9;
  // Every thread its own slice, all started together.
  const size_t slice = bytes / m.threads;
  best = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    std::barrier sync(static_cast<std::ptrdiff_t>(m.threads + 1));
    std::vector<std::thread> workers;
    for (size_t t = 0; t < m.threads; ++t) {
      workers.emplace_back([&, t] {
        sync.arrive_and_wait();
        sink += Read(buffer.get() + t * slice, slice);
        sync.arrive_and_wait();
      });
    }
    sync.arrive_and_wait();
    const auto start = Clock::now();
    sync.arrive_and_wait();
    best = std::min(best, SecondsSince(start));
    for (auto& w : workers) w.join();
  }
  m.read_gbs_all = static_cast<double>(bytes) / best / 1e9;
  // The scan kernel on 256 rows of 768 dimensions (192 KiB: in L2).
  const index::Kernels& k = index::ActiveKernels();
  m.simd = std::string(index::SimdLevelName(index::ActiveSimdLevel()));
  constexpr size_t kRows = 256, kDim = 768;
  std::vector<int8_t> codes(kRows * kDim), query(kDim);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<int8_t>((i * 2654435761u) >> 24);
  for (size_t i = 0; i < kDim; ++i) query[i] = static_cast<int8_t>((i * 40503u) >> 8);
  std::vector<int32_t> out(kRows);
  best = 1e30;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = Clock::now();
    for (int rep = 0; rep < 200; ++rep) {
      k.dot_s8_many(query.data(), codes.data(), kDim, kRows, kDim, out.data());
    }
    best = std::min(best, SecondsSince(start));
    sink += static_cast<uint64_t>(out[pass]);
  }
  m.kernel_peak_gbs = 200.0 * kRows * kDim / best / 1e9;
  (void)sink.load();
  return m;
}

std::string DescribeLimits(const MachineLimits& m) {
  return fmt::format(
      "DRAM read {:.1f} GB/s (1 thread), {:.1f} GB/s ({} threads); int8 scan kernel {} peak "
      "{:.1f} GB/s (L2-resident, 1 thread); L3 {:.0f} MB",
      m.read_gbs_one, m.read_gbs_all, m.threads, m.simd, m.kernel_peak_gbs, m.l3_bytes / 1e6);
}

}  // namespace qvec::bench
