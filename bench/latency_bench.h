// `qvec-bench latency`: search latency (p50/p99/p99.9) of one collection
// alone and under a steady stream of upserts to the same collection, with
// and without sync_writes, through the engine's public API. Shows whether
// writers hold up searches (the lock design of docs/ARCHITECTURE.md).
#ifndef QVEC_BENCH_LATENCY_BENCH_H_
#define QVEC_BENCH_LATENCY_BENCH_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

void AddLatencyCommand(CLI::App* app);
// Runs the command if it was parsed; returns its exit status, or -1.
int RunParsedLatencyCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_LATENCY_BENCH_H_
