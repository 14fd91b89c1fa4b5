// The blocked attention kernel for AVX2 + FMA: 8 floats per vector, 6 query rows x 2 vectors
// (16 keys) of scores in 12 of the 16 ymm registers.
#include "attention_blocked.hpp"

#if defined(__x86_64__)
#include <immintrin.h>

#define XRING_ISA_TARGET __attribute__((target("avx2,fma")))

namespace xring::kernels::blocked_avx2 {
namespace {
struct Isa {
  using V = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kRows = 6;
  static constexpr int kPanelVectors = 2;
  XRING_ISA_TARGET static V load(const float* p) { return _mm256_loadu_ps(p); }
  XRING_ISA_TARGET static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  XRING_ISA_TARGET static V set1(float x) { return _mm256_set1_ps(x); }
  XRING_ISA_TARGET static V zero() { return _mm256_setzero_ps(); }
  XRING_ISA_TARGET static V add(V a, V b) { return _mm256_add_ps(a, b); }
  XRING_ISA_TARGET static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  XRING_ISA_TARGET static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  XRING_ISA_TARGET static V max(V a, V b) { return _mm256_max_ps(a, b); }
  XRING_ISA_TARGET static V min(V a, V b) { return _mm256_min_ps(a, b); }
  XRING_ISA_TARGET static V round_nearest(V x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  /// p · 2^n for integral n in [-126, 127]: n + 127 written into the exponent field.
  XRING_ISA_TARGET static V scale_pow2(V p, V n) {
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  /// y where x >= lowest, 0 elsewhere.
  XRING_ISA_TARGET static V zero_below(V x, V lowest, V y) {
    return _mm256_and_ps(_mm256_cmp_ps(x, lowest, _CMP_GE_OQ), y);
  }
};
}  // namespace

#include "attention_blocked.inc"

}  // namespace xring::kernels::blocked_avx2

#else  // not x86-64: never dispatched to (cpu_supports is false); the baseline kernel

namespace xring::kernels::blocked_avx2 {
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
}  // namespace xring::kernels::blocked_avx2

#endif
