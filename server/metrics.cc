#include "server/metrics.h"

#include <fmt/format.h>

namespace qvec::server {

void Metrics::Record(const std::string& method, const std::string& route, unsigned status,
                     double seconds) {
  MutexLock lock(&mu_);
  Series& s = series_[{method, route}];
  ++s.by_status[status];
  ++s.count;
  s.sum += seconds;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++s.buckets[i];
  }
}

void Metrics::Render(std::string* out) const {
  MutexLock lock(&mu_);
  *out += "# HELP qvec_http_requests_total HTTP requests by method, route and status.\n";
  *out += "# TYPE qvec_http_requests_total counter\n";
  for (const auto& [key, s] : series_) {
    for (const auto& [status, n] : s.by_status) {
      *out +=
          fmt::format("qvec_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                      key.first, key.second, status, n);
    }
  }
  *out += "# HELP qvec_http_request_duration_seconds HTTP request latency by method and route.\n";
  *out += "# TYPE qvec_http_request_duration_seconds histogram\n";
  for (const auto& [key, s] : series_) {
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      *out += fmt::format(
          "qvec_http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"{}\"}} {}\n",
          key.first, key.second, kBuckets[i], s.buckets[i]);
    }
    *out += fmt::format(
        "qvec_http_request_duration_seconds_bucket{{method=\"{}\",route=\"{}\",le=\"+Inf\"}} {}\n",
        key.first, key.second, s.count);
    *out += fmt::format("qvec_http_request_duration_seconds_sum{{method=\"{}\",route=\"{}\"}} {}\n",
                        key.first, key.second, s.sum);
    *out +=
        fmt::format("qvec_http_request_duration_seconds_count{{method=\"{}\",route=\"{}\"}} {}\n",
                    key.first, key.second, s.count);
  }
}

std::map<std::string, Metrics::RouteStats> Metrics::Stats() const {
  MutexLock lock(&mu_);
  std::map<std::string, RouteStats> out;
  for (const auto& [key, s] : series_) {
    RouteStats& r = out[key.first + " " + key.second];
    r.count = s.count;
    r.avg_micros = s.count ? s.sum / static_cast<double>(s.count) * 1e6 : 0;
    r.by_status = s.by_status;
  }
  return out;
}

}  // namespace qvec::server
