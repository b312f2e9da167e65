// Output of a benchmark run: markdown table, JSON and gnuplot PNGs.
#ifndef QVEC_BENCH_REPORT_H_
#define QVEC_BENCH_REPORT_H_

#include <string>
#include <vector>

#include "bench/machine.h"
#include "bench/methods.h"

namespace qvec::bench {

struct DatasetSummary {
  std::string name, description, metric;
  size_t n = 0, nq = 0, dim = 0;
};

struct RunInfo {
  std::string mode;         // "quick", "full", "run"
  std::string machine;      // CPU model, cores, SIMD level
  std::string started;      // UTC timestamp
  std::string command;      // the command line
  double load_average = 0;  // 1-minute load average at the start
  size_t threads = 0;
  MachineLimits limits;  // measured at the start of the run
  std::vector<DatasetSummary> datasets;
};

// The markdown report: per dataset one table, thread rows merged.
std::string MarkdownReport(const RunInfo& info, const std::vector<Row>& rows);
// Checks the project's performance targets against the rows, per dataset
// (markdown: one line per target with the measured figures and met/missed).
std::string TargetsReport(const RunInfo& info, const std::vector<Row>& rows);
// The JSON document (schema in bench/README.md).
std::string JsonReport(const RunInfo& info, const std::vector<Row>& rows);
// Writes <prefix>-<dataset>.png for each dataset with gnuplot; returns the
// files written (empty and a warning on stderr if gnuplot is missing).
std::vector<std::string> PlotRecallQps(const RunInfo& info, const std::vector<Row>& rows,
                                       const std::string& prefix);

}  // namespace qvec::bench

#endif  // QVEC_BENCH_REPORT_H_
