// Shared helpers of qvec-bench: timing, errors, progress on stderr, thread
// control of FAISS (OpenMP) and OpenBLAS, hashing and percentiles.
#ifndef QVEC_BENCH_BENCH_UTIL_H_
#define QVEC_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qvec::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Prints "qvec-bench: <message>" to stderr and exits with status 1.
[[noreturn]] void Die(const std::string& message);

// Scales every row of x (rows of `dim` floats) to unit L2 norm; all-zero
// rows stay zero.
void NormalizeRows(std::vector<float>& x, size_t dim);

// Number of hardware threads (at least 1).
size_t HardwareThreads();

// Sets the threads FAISS (OpenMP) and OpenBLAS may use. qvec's own indexes
// take a ThreadPool instead, so this does not affect them.
void SetLibraryThreads(int threads);

// The q-quantile (q in [0, 1]) of `values` by nearest rank; 0 when empty.
// Sorts `values`.
double Percentile(std::vector<double>& values, double q);

// 64-bit hash of a byte range, chained through `seed` (not cryptographic:
// cache keys only).
uint64_t HashBytes(const void* data, size_t bytes, uint64_t seed);

// Progress of a long run on stderr: which dataset/method/step, elapsed time
// and an ETA from the fraction of planned work units done. On a terminal the
// line is rewritten in place; otherwise one line per update.
class Progress {
 public:
  static Progress& Get();
  // Adds `units` to the planned total (call when new work becomes known).
  void Plan(double units);
  // Marks `units` as done and shows `what`.
  void Advance(double units, const std::string& what);
  // Shows `what` without changing the fraction done.
  void Show(const std::string& what);
  // Ends the in-place line (before printing other output to stderr).
  void Break();

 private:
  Progress();
  void Print(const std::string& what);
  Clock::time_point start_;
  double planned_ = 0, done_ = 0;
  bool tty_ = false, open_line_ = false;
};

}  // namespace qvec::bench

#endif  // QVEC_BENCH_BENCH_UTIL_H_
