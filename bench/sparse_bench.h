// `qvec-bench sparse`: exact top-10 over SPLADE-like sparse vectors, three
// ways on the same data: qvec's inverted index with MaxScore / block-max
// pruning (index::SparseIndex), the same posting lists scored exhaustively
// (term-at-a-time accumulation, no pruning), and a brute-force scan of every
// vector; then the engine's search through the public API. Checks that all
// answer the same.
#ifndef QVEC_BENCH_SPARSE_BENCH_H_
#define QVEC_BENCH_SPARSE_BENCH_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

void AddSparseCommand(CLI::App* app);
// Runs the command if it was parsed; returns its exit status, or -1.
int RunParsedSparseCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_SPARSE_BENCH_H_
