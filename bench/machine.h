// What the machine a benchmark runs on can do, measured at the start of the
// run: every "% of bandwidth" figure of the reports divides by these, never
// by a constant (the CPU changes between sessions).
#ifndef QVEC_BENCH_MACHINE_H_
#define QVEC_BENCH_MACHINE_H_

#include <cstddef>
#include <string>

namespace qvec::bench {

struct MachineLimits {
  // Sequential DRAM read bandwidth, GB/s (10^9 bytes), over a buffer far
  // larger than the caches: one thread, and `threads` threads at once.
  double read_gbs_one = 0;
  double read_gbs_all = 0;
  size_t threads = 0;
  // The active SIMD level's int8 scan kernel (dot_s8_many) on one thread over
  // rows that stay in L2: GB/s of code rows, its compute peak.
  double kernel_peak_gbs = 0;
  std::string simd;  // the level the kernel figure is for
  size_t l3_bytes = 0;  // last-level cache, from sysconf (0 = unknown)
};

// Measures the limits (~2 s; allocates buffer_mib MiB). threads 0 = every
// hardware thread.
MachineLimits MeasureMachine(size_t threads = 0, size_t buffer_mib = 1024);

// One line for reports: "DRAM read 10.2 GB/s (1 thread), 18.1 GB/s (2
// threads); int8 kernel avx2 peak 61.0 GB/s (L2-resident)".
std::string DescribeLimits(const MachineLimits& m);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_MACHINE_H_
