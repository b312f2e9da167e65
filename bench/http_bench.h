// End-to-end benchmark of a running qvec server over HTTP/1.1 keep-alive
// connections (127.0.0.1 only), compared with the same work in-process.
#ifndef QVEC_BENCH_HTTP_BENCH_H_
#define QVEC_BENCH_HTTP_BENCH_H_

#include <CLI/CLI.hpp>

namespace qvec::bench {

void AddHttpCommand(CLI::App* app);
// Exit status of the http subcommand, or -1 if it was not given.
int RunParsedHttpCommand();

}  // namespace qvec::bench

#endif  // QVEC_BENCH_HTTP_BENCH_H_
