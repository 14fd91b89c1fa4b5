// The blocked cpu attention kernels, forward and backward (every instruction-set variant this
// machine runs) against the serial kernels they replaced, on shapes that are not whole tiles: q, k
// and d off the block sizes (d = 64, 80, 128 and small odd ones), one query, one key, GQA groups,
// every mask kind and fully masked rows. Tolerance: the cpu backend's own check (compare_cpu: 1e-5
// of max(max|O|, 1) plus one fp32 ulp), since only the order of the fp32 sums differs; L is
// compared the same way, as are dQ, dK, dV, and a row with no allowed key must give exactly
// o = 0, l = -inf.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "xring/executor/verification.hpp"
#include "xring/kernels/cpu_isa.hpp"
#include "xring/planner/error.hpp"

using namespace xring;
using kernels::CpuIsa;
using kernels::Mask;
using kernels::Rows;
using kernels::Shape;

namespace {

struct Case {
  Shape shape;
  long long q_rows, kv_rows;
  Mask::Kind mask;
};

struct Outputs {
  std::vector<float> o, l;
};

struct Inputs {
  std::vector<float> q, k, v, d_o;
  Mask mask;
  Rows qr, kr;
};

Inputs random_inputs(const Case& c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const auto fill = [&](size_t n) {
    std::vector<float> x(n);
    for (float& e : x) e = u(rng);
    return x;
  };
  const Shape& s = c.shape;
  Inputs in;
  in.q = fill(static_cast<size_t>(s.batch) * s.heads * c.q_rows * s.head_dim);
  in.k = fill(static_cast<size_t>(s.batch) * s.kv_heads * c.kv_rows * s.head_dim);
  in.v = fill(in.k.size());
  in.d_o = fill(in.q.size());
  // Offsets as a ring step sees them: queries [7, 7 + q), keys [3, 3 + k) of longer sequences.
  in.qr = {7, c.q_rows};
  in.kr = {3, c.kv_rows};
  in.mask.kind = c.mask;
  // Groups of 5 queries and 3 keys; query group 0 sees no key under same_group (group ids of
  // keys start at 1): fully masked rows.
  for (long long i = 0; i < 7 + c.q_rows; ++i) in.mask.q_group.push_back(static_cast<int>(i / 5));
  for (long long j = 0; j < 3 + c.kv_rows; ++j)
    in.mask.kv_group.push_back(1 + static_cast<int>(j / 3));
  return in;
}

Outputs run(const Inputs& in, const Shape& s,
            const std::function<void(const Inputs&, Outputs&)>& f) {
  Outputs out;
  out.o.assign(static_cast<size_t>(s.batch) * s.heads * in.qr.rows * s.head_dim, NAN);
  out.l.assign(static_cast<size_t>(s.batch) * s.heads * in.qr.rows, NAN);
  f(in, out);
  return out;
}

Outputs naive(const Inputs& in, const Shape& s) {
  return run(in, s, [&](const Inputs& x, Outputs& out) {
    kernels::attention_forward_naive(x.q.data(), x.k.data(), x.v.data(), s, x.qr, x.kr, x.mask,
                                     out.o.data(), out.l.data());
  });
}

Outputs blocked(CpuIsa isa, const Inputs& in, const Shape& s) {
  return run(in, s, [&](const Inputs& x, Outputs& out) {
    kernels::attention_forward_on(isa, x.q.data(), x.k.data(), x.v.data(), s, x.qr, x.kr, x.mask,
                                  out.o.data(), out.l.data());
  });
}

std::vector<CpuIsa> isas_here() {
  std::vector<CpuIsa> out;
  for (CpuIsa isa : {CpuIsa::baseline, CpuIsa::avx2, CpuIsa::avx512})
    if (kernels::cpu_supports(isa)) out.push_back(isa);
  return out;
}

std::string describe(CpuIsa isa, const Case& c) {
  const Shape& s = c.shape;
  return std::string(kernels::to_string(isa)) + " B=" + std::to_string(s.batch) +
         " H=" + std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) +
         " d=" + std::to_string(s.head_dim) + " q=" + std::to_string(c.q_rows) +
         " k=" + std::to_string(c.kv_rows) + " mask=" + std::to_string(static_cast<int>(c.mask));
}

struct Gradients {
  std::vector<float> dq, dk, dv;
};

/// Backward given the serial forward's O and L; dQ, dK, dV start from `start` (the kernels
/// accumulate into them) and only the naive kernel (isa empty) or one variant runs.
Gradients backward(const Inputs& in, const Shape& s, const Outputs& fwd, const Gradients& start,
                   const CpuIsa* isa) {
  std::vector<float> term(fwd.l.size());
  kernels::backward_row_terms(fwd.o.data(), in.d_o.data(), static_cast<long long>(term.size()),
                              s.head_dim, term.data());
  Gradients g = start;
  if (isa == nullptr)
    kernels::attention_backward_naive(in.q.data(), in.k.data(), in.v.data(), fwd.l.data(),
                                      term.data(), in.d_o.data(), s, in.qr, in.kr, in.mask,
                                      g.dq.data(), g.dk.data(), g.dv.data());
  else
    kernels::attention_backward_on(*isa, in.q.data(), in.k.data(), in.v.data(), fwd.l.data(),
                                   term.data(), in.d_o.data(), s, in.qr, in.kr, in.mask,
                                   g.dq.data(), g.dk.data(), g.dv.data());
  return g;
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
  executor::Comparison c;
  executor::compare_cpu(got, want, kernels::Storage::fp32, c);
  EXPECT_LE(c.worst_ratio, 1.0) << what << " max abs " << c.max_abs;
}

/// Checks every variant, forward and backward, on `cases`; returns how many comparisons ran.
int expect_variants_match_naive(const std::vector<Case>& cases) {
  std::mt19937 rng(18);
  int checked = 0;
  for (const Case& c : cases) {
    const Inputs in = random_inputs(c, rng);
    const Outputs want = naive(in, c.shape);
    // Nonzero starting gradients: the kernels add into dQ, dK, dV.
    const Gradients start{std::vector<float>(in.q.size(), 0.25f),
                          std::vector<float>(in.k.size(), -0.5f),
                          std::vector<float>(in.v.size(), 0.125f)};
    const Gradients want_grad = backward(in, c.shape, want, start, nullptr);
    for (CpuIsa isa : isas_here()) {
      const Outputs got = blocked(isa, in, c.shape);
      expect_close(got.o, want.o, describe(isa, c) + " O");
      expect_close(got.l, want.l, describe(isa, c) + " L");
      const Gradients grad = backward(in, c.shape, want, start, &isa);
      expect_close(grad.dq, want_grad.dq, describe(isa, c) + " dQ");
      expect_close(grad.dk, want_grad.dk, describe(isa, c) + " dK");
      expect_close(grad.dv, want_grad.dv, describe(isa, c) + " dV");
      ++checked;
    }
  }
  return checked;
}

}  // namespace

TEST(CpuKernels, ThisMachineRunsItsWidestVariantAndTheBaseline) {
  EXPECT_TRUE(kernels::cpu_supports(CpuIsa::baseline));
  EXPECT_TRUE(kernels::cpu_supports(kernels::widest_cpu_isa()));
  // The dispatched kernel is the active variant, bit for bit.
  const Case c{{1, 4, 2, 80}, 9, 37, Mask::Kind::none};
  std::mt19937 rng(3);
  const Inputs in = random_inputs(c, rng);
  const Outputs dispatched = run(in, c.shape, [&](const Inputs& x, Outputs& out) {
    kernels::attention_forward(x.q.data(), x.k.data(), x.v.data(), c.shape, x.qr, x.kr, x.mask,
                               out.o.data(), out.l.data());
  });
  const Outputs active = blocked(kernels::active_cpu_isa(), in, c.shape);
  EXPECT_EQ(dispatched.o, active.o);
  EXPECT_EQ(dispatched.l, active.l);
  std::printf("variants run here:");
  for (CpuIsa isa : isas_here()) std::printf(" %s", kernels::to_string(isa));
  std::printf(" (active: %s)\n", kernels::to_string(kernels::active_cpu_isa()));
}

TEST(CpuKernels, AVariantThisCpuLacksIsRefusedNotRun) {
  for (CpuIsa isa : {CpuIsa::avx2, CpuIsa::avx512}) {
    if (kernels::cpu_supports(isa)) continue;
    float x = 0;
    EXPECT_THROW(kernels::attention_forward_on(isa, &x, &x, &x, {}, {0, 1}, {0, 1}, {}, &x, &x),
                 Error);
  }
}

TEST(CpuKernels, EveryVariantMatchesTheSerialKernelsOnHeadDims64To128) {
  std::vector<Case> cases;
  for (int d : {64, 80, 128})
    for (long long q : {1LL, 5LL, 13LL})
      for (long long k : {1LL, 63LL, 130LL, 300LL})
        cases.push_back({{1, 4, 2, d}, q, k, Mask::Kind::none});
  EXPECT_EQ(expect_variants_match_naive(cases), 36 * static_cast<int>(isas_here().size()));
}

TEST(CpuKernels, EveryVariantMatchesOnOddHeadDimsGroupsBatchesAndMasks) {
  std::vector<Case> cases;
  const Shape shapes[] = {{2, 3, 1, 1}, {1, 6, 3, 5}, {2, 8, 2, 17}, {1, 2, 2, 33}, {1, 4, 4, 96}};
  const long long lengths[][2] = {{1, 1}, {7, 129}, {11, 2}, {2, 257}, {23, 64}};
  for (int i = 0; i < 5; ++i)
    for (auto kind :
         {Mask::Kind::none, Mask::Kind::same_group, Mask::Kind::up_to_group, Mask::Kind::causal})
      cases.push_back({shapes[i], lengths[i][0], lengths[i][1], kind});
  EXPECT_EQ(expect_variants_match_naive(cases), 20 * static_cast<int>(isas_here().size()));
}

TEST(CpuKernels, RowsWithNoAllowedKeyGiveZeroOutputAndMinusInfinityL) {
  // same_group: queries 7..11 are group 1, the keys' groups start at 1: keys 3..5 are group 1,
  // so with keys [6, 6 + 4) (groups 2, 2, 2, 3) no query of group 1 sees any key.
  const Shape s{1, 2, 1, 80};
  std::mt19937 rng(9);
  Inputs in = random_inputs({s, 3, 4, Mask::Kind::same_group}, rng);
  in.kr.first = 6;
  in.mask.kv_group.resize(10, 3);
  for (CpuIsa isa : isas_here()) {
    const Outputs got = blocked(isa, in, s);
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 3; ++i) {
        const long long row = h * 3 + i;
        EXPECT_EQ(got.l[row], -INFINITY) << kernels::to_string(isa) << " row " << row;
        for (int c = 0; c < 80; ++c) ASSERT_EQ(got.o[row * 80 + c], 0.0f);
      }
  }
}

TEST(CpuKernels, ExpOfTheBlockedKernelHoldsOverScoresFrom0ToMinus80) {
  // One query (d = 1, q = 1) against keys k_j = -j/2, j = 0..160, values v_j = k_j: scores
  // -j/2 spread over [-80, 0], so the weights r^j (r = e^-1/2) span e^-80..1 and exercise the
  // vector exp over its whole used range. Geometric series (the tail past j = 160 is e^-80):
  // L = log Σ r^j = -log(1 - r) = 0.932752130, O = Σ (-j/2) r^j / Σ r^j = -r / (2(1 - r))
  // = -0.770747041. Allowed (fp32 ulp 6e-8 at both magnitudes): 4 ulps for L, 8 for O, whose
  // fp32 sums of 161 products and division add their own rounding to the weights'.
  const Shape s{1, 1, 1, 1};
  Inputs in;
  in.q = {1.0f};
  for (int j = 0; j < 161; ++j) in.k.push_back(-0.5f * j);
  in.v = in.k;
  in.qr = {0, 1};
  in.kr = {0, 161};
  const double r = std::exp(-0.5);
  for (CpuIsa isa : isas_here()) {
    const Outputs got = blocked(isa, in, s);
    EXPECT_NEAR(got.l[0], -std::log(1 - r), 2.4e-7) << kernels::to_string(isa);
    EXPECT_NEAR(got.o[0], -r / (2 * (1 - r)), 4.8e-7) << kernels::to_string(isa);
  }
}

TEST(CpuKernels, DecodeRunsEachKvHeadsQueryHeadsAsOneBlockAsTheSerialKernelPerHead) {
  // decode_attention hands the blocked kernel all query heads of a kv head at once (GQA group 3
  // here, caches of 0, 1, 129 and 300 tokens at d = 80); each head must equal the serial kernel
  // on its own, and the empty cache gives o = 0, l = -inf.
  const int heads = 12, kv_heads = 4, d = 80;
  const std::vector<long long> len = {0, 1, 129, 300};
  std::mt19937 rng(30);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> q(heads * d);
  for (float& x : q) x = u(rng);
  std::vector<std::vector<float>> k(kv_heads), v(kv_heads);
  std::vector<const float*> kp, vp;
  for (int h = 0; h < kv_heads; ++h) {
    k[h].resize(std::max<long long>(len[h], 1) * d);
    v[h].resize(k[h].size());
    for (float& x : k[h]) x = u(rng);
    for (float& x : v[h]) x = u(rng);
    kp.push_back(k[h].data());
    vp.push_back(v[h].data());
  }
  std::vector<float> o(heads * d, NAN), l(heads, NAN);
  kernels::decode_attention(q.data(), kp, vp, len, {1, heads, kv_heads, d}, o.data(), l.data());
  for (int h = 0; h < heads; ++h) {
    const int hk = h / 3;
    std::vector<float> want_o(d), want_l(1);
    kernels::attention_forward_naive(q.data() + h * d, kp[hk], vp[hk], {1, 1, 1, d}, {0, 1},
                                     {0, len[hk]}, {}, want_o.data(), want_l.data());
    const std::vector<float> got_o(o.begin() + h * d, o.begin() + (h + 1) * d);
    expect_close(got_o, want_o, "decode head " + std::to_string(h) + " O");
    if (len[hk] == 0) {
      EXPECT_EQ(l[h], -INFINITY);
      EXPECT_EQ(got_o, std::vector<float>(d, 0.0f));
    } else {
      expect_close({l[h]}, want_l, "decode head " + std::to_string(h) + " L");
    }
  }
}
