// libFuzzer harness: the request router (JSON decoding, filters, engine calls)
// over a database in a temporary directory. Built by `make fuzz`.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qvec::fuzz::FuzzRouter(data, size);
  return 0;
}
