// One libFuzzer target: XRING_FUZZ_TARGET names the parser (fuzz_entry_points.hpp); the
// `fuzz` preset builds one binary per parser from this file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "fuzz_entry_points.hpp"

#ifndef XRING_FUZZ_TARGET
#error "XRING_FUZZ_TARGET must name a parser, e.g. -DXRING_FUZZ_TARGET=\"model\""
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto target = xring::fuzz::fuzz_target_from_string(XRING_FUZZ_TARGET);
  if (!target) std::abort();
  xring::fuzz::fuzz_one_input(*target, std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
