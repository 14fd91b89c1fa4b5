// Which vector instruction set the blocked attention kernel runs on; see cpu_isa.hpp.
#include "xring/kernels/cpu_isa.hpp"

#include <cstdlib>

#include "attention_blocked.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::kernels {
namespace {

/// The instruction set XRING_CPU_ISA names, or the widest when it is unset or empty.
CpuIsa chosen_cpu_isa() {
  const char* env = std::getenv("XRING_CPU_ISA");
  if (env == nullptr || *env == '\0') return widest_cpu_isa();
  const std::string name = env;
  for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512}) {
    if (name != to_string(isa)) continue;
    if (!cpu_supports(isa))
      throw Error("XRING_CPU_ISA=" + name + ": this CPU does not run " + name +
                  "; unset it or name one it runs (widest here: " + to_string(widest_cpu_isa()) +
                  ")");
    return isa;
  }
  throw Error("XRING_CPU_ISA=" + quoted_excerpt(name) +
              ": unknown instruction set; use baseline, avx2 or avx512, or unset it");
}

}  // namespace

const char* to_string(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::baseline:
      return "baseline";
    case CpuIsa::avx2:
      return "avx2";
    case CpuIsa::avx512:
      return "avx512";
  }
  return "?";
}

bool cpu_supports(CpuIsa isa) {
#if defined(__x86_64__) && defined(__GNUC__)
  // libgcc's cpuid check also requires the OS to save the ymm/zmm state (XCR0).
  switch (isa) {
    case CpuIsa::baseline:
      return true;
    case CpuIsa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CpuIsa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == CpuIsa::baseline;
#endif
}

CpuIsa widest_cpu_isa() {
  if (cpu_supports(CpuIsa::avx512)) return CpuIsa::avx512;
  if (cpu_supports(CpuIsa::avx2)) return CpuIsa::avx2;
  return CpuIsa::baseline;
}

CpuIsa active_cpu_isa() {
  static const CpuIsa active = chosen_cpu_isa();
  return active;
}

namespace {

void require_cpu_supports(CpuIsa isa) {
  if (!cpu_supports(isa))
    throw Error(std::string("attention kernel for ") + to_string(isa) +
                ": this CPU does not run it (widest here: " + to_string(widest_cpu_isa()) + ")");
}

}  // namespace

void attention_forward_on(CpuIsa isa, const float* q, const float* k, const float* v,
                          const Shape& shape, Rows q_rows, Rows kv_rows, const Mask& mask, float* o,
                          float* l) {
  require_cpu_supports(isa);
  switch (isa) {
    case CpuIsa::baseline:
      return blocked_baseline::attention_forward(q, k, v, shape, q_rows, kv_rows, mask, o, l);
    case CpuIsa::avx2:
      return blocked_avx2::attention_forward(q, k, v, shape, q_rows, kv_rows, mask, o, l);
    case CpuIsa::avx512:
      return blocked_avx512::attention_forward(q, k, v, shape, q_rows, kv_rows, mask, o, l);
  }
}

void attention_backward_on(CpuIsa isa, const float* q, const float* k, const float* v,
                           const float* l, const float* d, const float* d_o, const Shape& shape,
                           Rows q_rows, Rows kv_rows, const Mask& mask, float* dq, float* dk,
                           float* dv) {
  require_cpu_supports(isa);
  switch (isa) {
    case CpuIsa::baseline:
      return blocked_baseline::attention_backward(q, k, v, l, d, d_o, shape, q_rows, kv_rows, mask,
                                                  dq, dk, dv);
    case CpuIsa::avx2:
      return blocked_avx2::attention_backward(q, k, v, l, d, d_o, shape, q_rows, kv_rows, mask, dq,
                                              dk, dv);
    case CpuIsa::avx512:
      return blocked_avx512::attention_backward(q, k, v, l, d, d_o, shape, q_rows, kv_rows, mask,
                                                dq, dk, dv);
  }
}

}  // namespace xring::kernels
