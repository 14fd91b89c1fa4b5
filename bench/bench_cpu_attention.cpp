// The cpu backend's attention, forward and backward (issue 18): the serial kernels (naive) beside
// the blocked kernel of every instruction set this machine runs, on the tiny model and the
// Llama-3.2-11B-Vision cross-attention geometry, and the core's FMA peak for the ratio.
// GFLOP/s counts 4·q·k·d per (batch, head): Q·Kᵀ and P·V, one multiply and one add each, per
// second of this process's CPU time (the machine is shared: wall time measures the neighbours).
#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 (kernels/src)
#endif
#include <immintrin.h>
#endif

#include "xring/kernels/cpu_isa.hpp"

namespace {

using xring::kernels::CpuIsa;
using xring::kernels::Rows;
using xring::kernels::Shape;

struct Geometry {
  const char* name;
  Shape shape;
  long long q, k;
};

/// tiny: one query_ring step of `xring run` on the docs' tiny training plan (512 x 4096 over 4
/// ranks: 128 queries against 1024 keys). llama32v: Llama-3.2-11B-Vision's cross-attention
/// (32 heads, 8 kv heads, d = 128) at `xring run --scale 0.002` of an 8192-text-token plan
/// (16 x 3279, docs/commands.md), and one rank of a 4-rank ring at --scale 0.008 (16 x 3279
/// per step: 64 queries are 16 per rank; 13,115 keys are 3279 per rank).
const Geometry kGeometries[] = {
    {"tiny", {1, 4, 2, 64}, 128, 1024},
    {"llama32v_scale0.002", {1, 32, 8, 128}, 16, 3279},
    {"llama32v_q128", {1, 32, 8, 128}, 128, 3279},
};

struct Tensors {
  std::vector<float> q, k, v, o, l, d_o, term, dq, dk, dv;
};

Tensors make_tensors(const Geometry& g) {
  std::mt19937 rng(18);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const auto fill = [&](size_t n) {
    std::vector<float> x(n);
    for (float& e : x) e = u(rng);
    return x;
  };
  const Shape& s = g.shape;
  Tensors t;
  t.q = fill(static_cast<size_t>(s.batch) * s.heads * g.q * s.head_dim);
  t.k = fill(static_cast<size_t>(s.batch) * s.kv_heads * g.k * s.head_dim);
  t.v = fill(t.k.size());
  t.o.resize(t.q.size());
  t.l.resize(static_cast<size_t>(s.batch) * s.heads * g.q);
  t.d_o = fill(t.q.size());
  t.term.resize(t.l.size());
  t.dq.resize(t.q.size());
  t.dk.resize(t.k.size());
  t.dv.resize(t.v.size());
  return t;
}

double flops(const Geometry& g) {
  return 4.0 * g.q * g.k * g.shape.head_dim * g.shape.heads * g.shape.batch;
}

/// kernel: -1 the naive serial kernel, otherwise a CpuIsa.
void attention(benchmark::State& state, const Geometry& g, int kernel) {
  if (kernel >= 0 && !xring::kernels::cpu_supports(static_cast<CpuIsa>(kernel))) {
    state.SkipWithError("this CPU does not run the variant");
    return;
  }
  Tensors t = make_tensors(g);
  const xring::kernels::Mask none;
  for (auto _ : state) {
    if (kernel < 0)
      xring::kernels::attention_forward_naive(t.q.data(), t.k.data(), t.v.data(), g.shape,
                                              Rows{0, g.q}, Rows{0, g.k}, none, t.o.data(),
                                              t.l.data());
    else
      xring::kernels::attention_forward_on(static_cast<CpuIsa>(kernel), t.q.data(), t.k.data(),
                                           t.v.data(), g.shape, Rows{0, g.q}, Rows{0, g.k}, none,
                                           t.o.data(), t.l.data());
    benchmark::DoNotOptimize(t.o.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops(g) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// Backward (kernel as for `attention`) given the forward's L and D: 10·q·k·d flops per head
/// (S = Q·Kᵀ, dP = dO·Vᵀ, dV, dQ and dK, each one q x k x d product).
void attention_backward(benchmark::State& state, const Geometry& g, int kernel) {
  if (kernel >= 0 && !xring::kernels::cpu_supports(static_cast<CpuIsa>(kernel))) {
    state.SkipWithError("this CPU does not run the variant");
    return;
  }
  Tensors t = make_tensors(g);
  const xring::kernels::Mask none;
  const Rows qr{0, g.q}, kr{0, g.k};
  xring::kernels::attention_forward_naive(t.q.data(), t.k.data(), t.v.data(), g.shape, qr, kr, none,
                                          t.o.data(), t.l.data());
  xring::kernels::backward_row_terms(t.o.data(), t.d_o.data(),
                                     static_cast<long long>(t.term.size()), g.shape.head_dim,
                                     t.term.data());
  for (auto _ : state) {
    if (kernel < 0)
      xring::kernels::attention_backward_naive(t.q.data(), t.k.data(), t.v.data(), t.l.data(),
                                               t.term.data(), t.d_o.data(), g.shape, qr, kr, none,
                                               t.dq.data(), t.dk.data(), t.dv.data());
    else
      xring::kernels::attention_backward_on(static_cast<CpuIsa>(kernel), t.q.data(), t.k.data(),
                                            t.v.data(), t.l.data(), t.term.data(), t.d_o.data(),
                                            g.shape, qr, kr, none, t.dq.data(), t.dk.data(),
                                            t.dv.data());
    benchmark::DoNotOptimize(t.dq.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.5 * flops(g) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

#if defined(__x86_64__)
/// 12 independent FMA chains (latency 4 cycles x 2 ports needs 8): the core's FMA throughput.
constexpr int kChains = 12;

__attribute__((target("avx512f"), noipa)) float fma_chains_avx512(long long n) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(0.001f * c);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long long i = 0; i < n; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  return lanes[0] + lanes[15];
}

__attribute__((target("avx2,fma"), noipa)) float fma_chains_avx2(long long n) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(0.001f * c);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long long i = 0; i < n; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  return lanes[0] + lanes[7];
}

__attribute__((noipa)) float mul_add_chains_sse2(long long n) {
  __m128 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm_set1_ps(0.001f * c);
  const __m128 a = _mm_set1_ps(0.999999f), b = _mm_set1_ps(1e-7f);
  for (long long i = 0; i < n; ++i)
    for (int c = 0; c < kChains; ++c) acc[c] = _mm_add_ps(_mm_mul_ps(acc[c], a), b);
  __m128 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm_add_ps(s, acc[c]);
  return _mm_cvtss_f32(s);
}

/// Peak of one core: kChains vectors of `width` floats, 2 flops (multiply, add) per lane.
void fma_peak(benchmark::State& state, CpuIsa isa) {
  if (!xring::kernels::cpu_supports(isa)) {
    state.SkipWithError("this CPU does not run the variant");
    return;
  }
  constexpr long long kIterations = 10'000'000;
  const int width = isa == CpuIsa::avx512 ? 16 : isa == CpuIsa::avx2 ? 8 : 4;
  for (auto _ : state) {
    float r = isa == CpuIsa::avx512 ? fma_chains_avx512(kIterations)
              : isa == CpuIsa::avx2 ? fma_chains_avx2(kIterations)
                                    : mul_add_chains_sse2(kIterations);
    benchmark::DoNotOptimize(r);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kIterations * kChains * width * 1e-9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
#endif

int register_all() {
  using Body = void (*)(benchmark::State&, const Geometry&, int);
  const std::pair<const char*, Body> passes[] = {{"attention/", attention},
                                                 {"attention_backward/", attention_backward}};
  for (const auto& [pass, body] : passes)
    for (const Geometry& g : kGeometries) {
      const std::string base = std::string(pass) + g.name + "/";
      benchmark::RegisterBenchmark((base + "naive").c_str(), body, g, -1)
          ->Unit(benchmark::kMillisecond);
      for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512})
        benchmark::RegisterBenchmark((base + xring::kernels::to_string(isa)).c_str(), body, g,
                                     static_cast<int>(isa))
            ->Unit(benchmark::kMillisecond);
    }
#if defined(__x86_64__)
  for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512})
    benchmark::RegisterBenchmark(
        (std::string("fma_peak/") + xring::kernels::to_string(isa)).c_str(), fma_peak, isa)
        ->Unit(benchmark::kMillisecond);
#endif
  return 0;
}

const int kRegistered = register_all();

}  // namespace

BENCHMARK_MAIN();
