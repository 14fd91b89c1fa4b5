// The per-instruction-set entries of the blocked attention forward kernel (one translation unit
// each, attention_blocked_*.cpp over attention_blocked.inc). Call them through
// attention_forward / attention_forward_on (cpu_isa.hpp), which check the CPU first.
#pragma once

// attention_blocked.inc, included inside a namespace, relies on these.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "xring/kernels/reference.hpp"

namespace xring::kernels {
namespace blocked_baseline {
void attention_forward(const float* q, const float* k, const float* v, const Shape& shape,
                       Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l);
void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                        Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv);
}  // namespace blocked_baseline
namespace blocked_avx2 {
void attention_forward(const float* q, const float* k, const float* v, const Shape& shape,
                       Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l);
void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                        Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv);
}  // namespace blocked_avx2
namespace blocked_avx512 {
void attention_forward(const float* q, const float* k, const float* v, const Shape& shape,
                       Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l);
void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                        Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv);
}  // namespace blocked_avx512
}  // namespace xring::kernels
