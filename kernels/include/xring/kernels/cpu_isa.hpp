// The CPU's vector instruction sets the blocked attention kernel is built for, which one this
// machine runs, and the kernel entry per instruction set (for tests and benchmarks).
//
// One binary runs on any x86-64: every variant is compiled with GCC's per-function target
// attribute and chosen at run time (cpuid, via __builtin_cpu_supports), never by build flags.
#pragma once

#include <string>

#include "xring/kernels/reference.hpp"

namespace xring::kernels {

/// baseline: SSE2, 4 floats per vector (every x86-64). avx2: AVX2 + FMA, 8 floats.
/// avx512: AVX-512F (+ AVX2, FMA), 16 floats.
enum class CpuIsa { baseline, avx2, avx512 };
const char* to_string(CpuIsa isa);

/// Whether this CPU (and its OS, for the wider registers' state) runs `isa`.
bool cpu_supports(CpuIsa isa);

/// The widest instruction set this CPU runs.
CpuIsa widest_cpu_isa();

/// The instruction set attention_forward uses: XRING_CPU_ISA (baseline, avx2 or avx512) when
/// set, otherwise the widest. Chosen once per process. Throws xring::Error (bad input) when the
/// variable names an unknown instruction set or one this CPU does not run.
CpuIsa active_cpu_isa();

/// attention_forward (reference.hpp) on the given instruction set's blocked kernel. Throws
/// xring::Error when this CPU does not run `isa`.
void attention_forward_on(CpuIsa isa, const float* q, const float* k, const float* v,
                          const Shape& shape, Rows q_rows, Rows kv_rows, const Mask& mask, float* o,
                          float* l);

/// attention_backward (reference.hpp) on the given instruction set's blocked kernel. Throws
/// xring::Error when this CPU does not run `isa`.
void attention_backward_on(CpuIsa isa, const float* q, const float* k, const float* v,
                           const float* l, const float* d, const float* d_o, const Shape& shape,
                           Rows q_rows, Rows kv_rows, const Mask& mask, float* dq, float* dk,
                           float* dv);

}  // namespace xring::kernels
