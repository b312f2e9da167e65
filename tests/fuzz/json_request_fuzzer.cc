// libFuzzer harness: ParseBody and the request parsers of server/json_request.h
// (every endpoint body, filters, ids, vectors). Built by `make fuzz`.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qvec::fuzz::FuzzJsonRequest(data, size);
  return 0;
}
