// The blocked attention kernel for baseline x86-64 (SSE2, which every x86-64 has): 4 floats
// per vector, no fused multiply-add, 4 query rows x 2 vectors (8 keys) of scores in 8 of the
// 16 xmm registers. Elsewhere (not x86-64) the same code runs on one float per "vector".
#include <cmath>

#include "attention_blocked.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define XRING_ISA_TARGET

namespace xring::kernels::blocked_baseline {
namespace {
#if defined(__SSE2__)
struct Isa {
  using V = __m128;
  static constexpr int kWidth = 4;
  static constexpr int kRows = 4;
  static constexpr int kPanelVectors = 2;
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, V x) { _mm_storeu_ps(p, x); }
  static V set1(float x) { return _mm_set1_ps(x); }
  static V zero() { return _mm_setzero_ps(); }
  static V add(V a, V b) { return _mm_add_ps(a, b); }
  static V mul(V a, V b) { return _mm_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static V max(V a, V b) { return _mm_max_ps(a, b); }
  static V min(V a, V b) { return _mm_min_ps(a, b); }
  /// Nearest integer (the default rounding mode) as a float; |x| < 2^31 here.
  static V round_nearest(V x) { return _mm_cvtepi32_ps(_mm_cvtps_epi32(x)); }
  /// p · 2^n for integral n in [-126, 127]: n + 127 written into the exponent field.
  static V scale_pow2(V p, V n) {
    const __m128i bits = _mm_slli_epi32(_mm_add_epi32(_mm_cvtps_epi32(n), _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(p, _mm_castsi128_ps(bits));
  }
  /// y where x >= lowest, 0 elsewhere.
  static V zero_below(V x, V lowest, V y) { return _mm_and_ps(_mm_cmpge_ps(x, lowest), y); }
};
#else
struct Isa {
  using V = float;
  static constexpr int kWidth = 1;
  static constexpr int kRows = 4;
  static constexpr int kPanelVectors = 4;
  static V load(const float* p) { return *p; }
  static void store(float* p, V x) { *p = x; }
  static V set1(float x) { return x; }
  static V zero() { return 0.0f; }
  static V add(V a, V b) { return a + b; }
  static V mul(V a, V b) { return a * b; }
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V max(V a, V b) { return a > b ? a : b; }
  static V min(V a, V b) { return a < b ? a : b; }
  static V round_nearest(V x) { return std::nearbyint(x); }
  static V scale_pow2(V p, V n) { return std::ldexp(p, static_cast<int>(n)); }
  static V zero_below(V x, V lowest, V y) { return x >= lowest ? y : 0.0f; }
};
#endif
}  // namespace

#include "attention_blocked.inc"

}  // namespace xring::kernels::blocked_baseline
