// `qvec-bench filter`: a filtered search (and count) at a given selectivity
// on a keyword payload field, without and then with a payload index on it,
// through the engine's public API; checks that both answer the same.
#ifndef QVEC_BENCH_FILTER_BENCH_H_
#define QVEC_BENCH_FILTER_BENCH_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

void AddFilterCommand(CLI::App* app);
// Runs the command if it was parsed; returns its exit status, or -1.
int RunParsedFilterCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_FILTER_BENCH_H_
