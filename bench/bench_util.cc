#include "bench/bench_util.h"

#include <fmt/format.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

// OpenBLAS thread control (weak: absent with other BLAS implementations).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace qvec::bench {

void NormalizeRows(std::vector<float>& x, size_t dim) {
  for (size_t i = 0; i < x.size() / dim; ++i) {
    double norm = 0;
    for (size_t d = 0; d < dim; ++d) norm += double{x[i * dim + d]} * x[i * dim + d];
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (size_t d = 0; d < dim; ++d) x[i * dim + d] *= inv;
  }
}

void Die(const std::string& message) {
  Progress::Get().Break();
  std::fprintf(stderr, "qvec-bench: %s\n", message.c_str());
  std::exit(1);
}

size_t HardwareThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

void SetLibraryThreads(int threads) {
  omp_set_num_threads(threads);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
}

double Percentile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(q * static_cast<double>(values.size()));
  const size_t at = std::clamp<size_t>(static_cast<size_t>(rank), 1, values.size()) - 1;
  return values[at];
}

uint64_t HashBytes(const void* data, size_t bytes, uint64_t seed) {
  // Word-at-a-time multiply-xorshift: fast enough for hundreds of MB.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = seed ^ (0x9E3779B97F4A7C15ull * (bytes + 1));
  size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  for (; i < bytes; ++i) h = (h ^ p[i]) * 0x94D049BB133111EBull;
  h ^= h >> 29;
  return h * 0x94D049BB133111EBull;
}

Progress& Progress::Get() {
  static Progress progress;
  return progress;
}

Progress::Progress() : start_(Clock::now()), tty_(isatty(STDERR_FILENO) != 0) {}

void Progress::Plan(double units) { planned_ += units; }

void Progress::Advance(double units, const std::string& what) {
  done_ += units;
  Print(what);
}

void Progress::Show(const std::string& what) { Print(what); }

void Progress::Break() {
  if (open_line_) std::fputc('\n', stderr);
  open_line_ = false;
}

void Progress::Print(const std::string& what) {
  const double elapsed = SecondsSince(start_);
  const double fraction = planned_ > 0 ? std::min(1.0, done_ / planned_) : 0;
  std::string eta = "?";
  if (fraction > 0.02) {
    const double left = elapsed * (1 - fraction) / fraction;
    eta = fmt::format("{}:{:02}", static_cast<int>(left) / 60, static_cast<int>(left) % 60);
  }
  const std::string line =
      fmt::format("[{:3.0f}% {}:{:02} elapsed, ETA {}] {}", 100 * fraction,
                  static_cast<int>(elapsed) / 60, static_cast<int>(elapsed) % 60, eta, what);
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    open_line_ = true;
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace qvec::bench
