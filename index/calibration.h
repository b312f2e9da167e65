// Calibration: gathers value statistics from a sample of (preprocessed)
// vectors and turns them into clipping ranges for per-collection or
// per-dimension quantization.
#ifndef QVEC_INDEX_CALIBRATION_H_
#define QVEC_INDEX_CALIBRATION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/types.h"
#include "qvec/status.h"

namespace qvec::index {

// Clipping ranges chosen by calibration. Versioned and serializable so the
// engine can persist it next to the collection and replace it atomically.
struct CalibrationParams {
  static constexpr uint32_t kVersion = 1;

  Granularity granularity = Granularity::kPerCollection;  // never kPerVector
  uint32_t dim = 0;
  float quantile = 1.0f;  // the quantile the ranges were computed with
  // Range [lo[i], hi[i]] of the values; one entry for kPerCollection, `dim`
  // entries for kPerDimension. lo[i] <= hi[i].
  std::vector<float> lo;
  std::vector<float> hi;

  // Checks internal consistency (sizes, granularity, finite, lo <= hi).
  [[nodiscard]] Status Validate() const;
  // Little-endian binary encoding, starting with a magic and kVersion.
  std::string Serialize() const;
  // Errors: DataLoss for truncated or trailing bytes or a bad magic,
  // Unimplemented for an unknown version, InvalidArgument if the decoded
  // params fail Validate().
  [[nodiscard]] static StatusOr<CalibrationParams> Deserialize(std::string_view bytes);

  bool operator==(const CalibrationParams&) const = default;
};

// Summary statistics of the observed values.
struct CalibrationStats {
  size_t vectors = 0;
  std::vector<float> dim_min, dim_max, dim_abs_max;  // size dim each
  float min = 0, max = 0, abs_max = 0;               // over all values
  // Histogram of all values: `histogram.size()` equal-width bins spanning
  // [min, max] (every value counted once).
  std::vector<uint64_t> histogram;
};

// Accumulates a sample of vectors for calibration. Keeps at most
// `max_vectors` vectors (a deterministic reservoir sample beyond that), so
// memory is bounded by max_vectors * dim floats.
// Thread safety: not thread-safe; const methods may run concurrently.
class CalibrationObserver {
 public:
  explicit CalibrationObserver(size_t dim, size_t max_vectors = 20000);

  // Adds `n` vectors (size n * dim), already preprocessed as they will be
  // stored (normalized under Cosine). InvalidArgument on NaN/Inf.
  [[nodiscard]] Status Observe(const float* vectors, size_t n);

  size_t dim() const { return dim_; }
  // Number of vectors seen (including ones not kept by the reservoir).
  size_t observed() const { return observed_; }

  CalibrationStats Stats(size_t histogram_bins = 256) const;

  // Ranges for `granularity` (kPerCollection or kPerDimension): quantile 1.0
  // means min-max; q < 1 takes hi = the q-quantile and lo = the
  // (1-q)-quantile of all kept values (per dimension for kPerDimension),
  // counting every value, not every vector. Rank convention on the sorted
  // values v[0..N-1]: hi = v[floor(q*(N-1))], lo = v[ceil((1-q)*(N-1))].
  // Errors: FailedPrecondition if nothing was observed, InvalidArgument for
  // kPerVector or quantile outside (0.5, 1].
  [[nodiscard]] StatusOr<CalibrationParams> Compute(Granularity granularity, float quantile) const;
  // Compute() for several quantiles at once (same order as `quantiles`);
  // each column is partitioned once, so this is much cheaper than repeated
  // Compute() calls. Errors as Compute().
  [[nodiscard]] StatusOr<std::vector<CalibrationParams>> ComputeMany(
      Granularity granularity, const std::vector<float>& quantiles) const;

 private:
  size_t dim_;
  size_t max_vectors_;
  size_t observed_ = 0;
  uint64_t rng_state_ = 0x9E3779B97F4A7C15ull;
  std::vector<float> sample_;  // kept vectors, row-major
};

}  // namespace qvec::index

#endif  // QVEC_INDEX_CALIBRATION_H_
