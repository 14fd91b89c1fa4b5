// The blocked attention kernel for AVX-512F: 16 floats per vector, 6 query rows x 4 vectors
// (64 keys) of scores in 24 of the 32 zmm registers (4 rows: 1-10% slower forward,
// 17-30% backward; bench/RESULTS.md).
#include "attention_blocked.hpp"

#if defined(__x86_64__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_ps() as the unused merge source, which its
// -Wmaybe-uninitialized reports (GCC bug 105593, fixed in GCC 13): not a fault of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#define XRING_ISA_TARGET __attribute__((target("avx512f,avx2,fma")))

namespace xring::kernels::blocked_avx512 {
namespace {
struct Isa {
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kRows = 6;
  static constexpr int kPanelVectors = 4;
  XRING_ISA_TARGET static V load(const float* p) { return _mm512_loadu_ps(p); }
  XRING_ISA_TARGET static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  XRING_ISA_TARGET static V set1(float x) { return _mm512_set1_ps(x); }
  XRING_ISA_TARGET static V zero() { return _mm512_setzero_ps(); }
  XRING_ISA_TARGET static V add(V a, V b) { return _mm512_add_ps(a, b); }
  XRING_ISA_TARGET static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  XRING_ISA_TARGET static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  XRING_ISA_TARGET static V max(V a, V b) { return _mm512_max_ps(a, b); }
  XRING_ISA_TARGET static V min(V a, V b) { return _mm512_min_ps(a, b); }
  XRING_ISA_TARGET static V round_nearest(V x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  /// p · 2^n for integral n.
  XRING_ISA_TARGET static V scale_pow2(V p, V n) { return _mm512_scalef_ps(p, n); }
  /// y where x >= lowest, 0 elsewhere.
  XRING_ISA_TARGET static V zero_below(V x, V lowest, V y) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lowest, _CMP_GE_OQ), y);
  }
};
}  // namespace

#include "attention_blocked.inc"

}  // namespace xring::kernels::blocked_avx512

#else  // not x86-64: never dispatched to (cpu_supports is false); the baseline kernel

namespace xring::kernels::blocked_avx512 {
void attention_forward(const float* q, const float* k, const float* v, const Shape& shape,
                       Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l) {
  blocked_baseline::attention_forward(q, k, v, shape, q_rows, kv_rows, mask, o, l);
}
void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                        Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv) {
  blocked_baseline::attention_backward(q, k, v, l, d, d_o, shape, q_rows, kv_rows, mask, dq, dk,
                                       dv);
}
}  // namespace xring::kernels::blocked_avx512

#endif
