// The recall/QPS suite: `quick` (make bench), `full` (make bench-full) and
// `run` (the user's own files or a synthetic set of any size).
#ifndef QVEC_BENCH_SUITE_H_
#define QVEC_BENCH_SUITE_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

// Adds the quick, full and run subcommands to `app`.
void AddSuiteCommands(CLI::App* app);
// After parsing: runs the suite subcommand that was given and returns its
// exit status, or -1 if none of them was given.
int RunParsedSuiteCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_SUITE_H_
