// Request counters and latency histograms by route, rendered in Prometheus'
// text format for GET /metrics. Thread-safe.
#ifndef QVEC_SERVER_METRICS_H_
#define QVEC_SERVER_METRICS_H_

#include <array>
#include <map>
#include <string>

#include "common/mutex.h"

namespace qvec::server {

class Metrics {
 public:
  // Records one request to `route` (a pattern like "/collections/{name}")
  // that answered `status` after `seconds`.
  void Record(const std::string& method, const std::string& route, unsigned status, double seconds);
  // Appends all series to `out` in Prometheus text format.
  void Render(std::string* out) const;
  // Per "METHOD route": total count, mean duration in microseconds and the
  // count by status, for /telemetry.
  struct RouteStats {
    uint64_t count = 0;
    double avg_micros = 0;
    std::map<unsigned, uint64_t> by_status;
  };
  std::map<std::string, RouteStats> Stats() const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  struct Series {
    std::map<unsigned, uint64_t> by_status;
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  mutable Mutex mu_;
  std::map<std::pair<std::string, std::string>, Series> series_ QVEC_GUARDED_BY(mu_);
};

}  // namespace qvec::server

#endif  // QVEC_SERVER_METRICS_H_
