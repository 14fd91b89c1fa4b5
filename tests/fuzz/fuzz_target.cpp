// One libFuzzer target: XRING_FUZZ_TARGET names the parser (fuzz_entry_points.hpp); the
// `fuzz` preset builds one binary per parser from this file. With XRING_FUZZ_TALLY set, the
// binary prints at exit how many inputs each outcome had (accepted, bad input); anything else
// is a crash that libFuzzer reports itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz_entry_points.hpp"

#ifndef XRING_FUZZ_TARGET
#error "XRING_FUZZ_TARGET must name a parser, e.g. -DXRING_FUZZ_TARGET=\"model\""
#endif

namespace {

unsigned long long accepted_inputs = 0, bad_inputs = 0;

void print_tally() {
  std::fprintf(stderr, "xring fuzz %s: %llu inputs, %llu accepted, %llu bad input (exit 2)\n",
               XRING_FUZZ_TARGET, accepted_inputs + bad_inputs, accepted_inputs, bad_inputs);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::getenv("XRING_FUZZ_TALLY")) std::atexit(print_tally);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto target = xring::fuzz::fuzz_target_from_string(XRING_FUZZ_TARGET);
  if (!target) std::abort();
  const auto outcome = xring::fuzz::fuzz_one_input(
      *target, std::string_view(reinterpret_cast<const char*>(data), size));
  ++(outcome == xring::fuzz::FuzzOutcome::accepted ? accepted_inputs : bad_inputs);
  return 0;
}
