// libFuzzer harness: ParseBody, ParseFilter, ParseSearchRequest, ParsePoints,
// ParseCollectionConfig of server/json_request.h. Built by `make fuzz`.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qvec::fuzz::FuzzJsonRequest(data, size);
  return 0;
}
