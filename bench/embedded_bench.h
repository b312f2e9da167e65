// `qvec-bench embedded`: the engine through its public API — bulk insert
// throughput (WAL on), open time of the database and memory per vector.
#ifndef QVEC_BENCH_EMBEDDED_BENCH_H_
#define QVEC_BENCH_EMBEDDED_BENCH_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

void AddEmbeddedCommand(CLI::App* app);
// Runs the command if it was parsed; returns its exit status, or -1.
int RunParsedEmbeddedCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_EMBEDDED_BENCH_H_
