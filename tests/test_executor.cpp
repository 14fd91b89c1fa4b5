// Distributed attention equals the monolithic reference: every strategy, P in {1,2,3,4,7,8},
// lengths not divisible by P, GQA ratios, masks (including fully masked rows), fp32/fp16/bf16,
// forward (O, L) and backward (dQ, dK, dV).
//
// Tolerances: every path computes in fp32 from the same storage-precision inputs; only the
// order of the fp32 sums differs (block-wise online softmax and merges vs one pass), which moves
// results by a few fp32 ulps of the row's magnitude: we allow 1e-5 x the largest reference value
// (about 80 fp32 ulps). Outputs are then rounded to the storage type, where a value sitting near
// a rounding boundary may land one storage ulp away: we allow one storage ulp on top.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "attention_test_util.hpp"
#include "xring/executor/attention.hpp"
#include "xring/executor/decode.hpp"
#include "xring/executor/projection.hpp"
#include "xring/executor/verification.hpp"
#include "xring/planner/error.hpp"

using namespace xring;
using namespace xring::executor;
using namespace xring::test;
using kernels::Storage;


TEST(Executor, BlocksSplitEvenlyFirstRanksTakeTheRest) {
  EXPECT_EQ(block_of(10, 3, 0).rows, 4);
  EXPECT_EQ(block_of(10, 3, 1).first, 4);
  EXPECT_EQ(block_of(10, 3, 2).rows, 3);
  EXPECT_EQ(block_of(2, 4, 3).rows, 0);  // more ranks than tokens: empty blocks
}

TEST(Executor, ReferenceMatchesDirectSoftmaxByHand) {
  // One head, d = 1, one query q = 1 against keys (0, 1) with values (1, 3): scores (0, 1),
  // softmax (1, e)/(1 + e), O = (1 + 3e)/(1 + e), L = log(1 + e).
  AttentionProblem p;
  p.shape = {1, 1, 1, 1};
  p.s_q = 1;
  p.s_kv = 2;
  p.storage = Storage::fp32;
  p.q = {1};
  p.k = {0, 1};
  p.v = {1, 3};
  AttentionResult r = run_reference(p, false);
  const double e = std::exp(1.0);
  EXPECT_NEAR(r.o[0], (1 + 3 * e) / (1 + e), 1e-6);
  EXPECT_NEAR(r.l[0], std::log(1 + e), 1e-6);
}

TEST(Executor, EveryStrategyEqualsTheReference) {
  std::mt19937 rng(5);
  struct Geometry {
    int heads, kv_heads, head_dim;
  };
  const Geometry geometries[] = {{4, 4, 8}, {4, 2, 16}, {8, 1, 8}, {6, 3, 4}};
  const long long lengths[][2] = {{5, 23}, {1, 9}, {17, 64}, {13, 7}};
  int checked = 0;
  for (int P : {1, 2, 3, 4, 7, 8}) {
    for (Storage storage : {Storage::fp32, Storage::fp16, Storage::bf16}) {
      const int pick = (P + static_cast<int>(storage)) % 4;
      const Geometry& g = geometries[pick];
      const auto mask = static_cast<kernels::Mask::Kind>((P + pick) % 3);
      AttentionProblem p = random_problem(rng, {2, g.heads, g.kv_heads, g.head_dim},
                                          lengths[pick][0], lengths[pick][1], storage, mask);
      AttentionResult want = run_reference(p, true);
      for (Strategy s : {Strategy::query_ring, Strategy::kv_ring, Strategy::ulysses}) {
        if (!unsupported(s, p, P).empty()) continue;
        std::string what = to_string(s) + " P=" + std::to_string(P) + " " +
                           kernels::to_string(storage) + " H=" + std::to_string(g.heads) + "/" +
                           std::to_string(g.kv_heads) + " S=" + std::to_string(p.s_q) + "x" +
                           std::to_string(p.s_kv);
        expect_same_result(run_distributed(s, P, p, true), want, storage, what);
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 40);
}

TEST(Executor, FullyMaskedRowsGiveZeroAndMinusInfinity) {
  std::mt19937 rng(9);
  AttentionProblem p =
      random_problem(rng, {1, 2, 1, 8}, 6, 12, Storage::bf16, kernels::Mask::Kind::same_group);
  for (int P : {1, 3}) {
    AttentionResult r = run_distributed(Strategy::query_ring, P, p, true);
    const long long last = p.s_q - 1;  // its group has no image
    for (int h = 0; h < 2; ++h) {
      EXPECT_EQ(r.l[h * p.s_q + last], -std::numeric_limits<float>::infinity());
      for (int c = 0; c < 8; ++c) {
        EXPECT_EQ(r.o[(h * p.s_q + last) * 8 + c], 0.0f);
        EXPECT_EQ(r.dq[(h * p.s_q + last) * 8 + c], 0.0f);
      }
    }
  }
}

TEST(Executor, RingsMoveTheBytesTheCostModelCounts) {
  // Forward query-ring, fp32 travel of O: per step Q (b = 4) + O + L, P - 1 steps, then O and L
  // home.
  std::mt19937 rng(2);
  AttentionProblem p =
      random_problem(rng, {1, 4, 2, 8}, 8, 32, Storage::fp32, kernels::Mask::Kind::none);
  const int P = 4;
  std::vector<size_t> sent(P);
  AttentionResult out = allocate_result(p, false);
  run_on_threads(P, [&](Communicator& comm) {
    run_rank(Strategy::query_ring, comm, p, false, out);
    sent[comm.rank()] = comm.bytes_sent();
  });
  LayerShape s;
  s.batch = 1;
  s.heads = 4;
  s.kv_heads = 2;
  s.head_dim = 8;
  s.bytes = 4;
  s.s_q = 8;
  s.s_kv = 32;
  const double home = 1.0 * 2 * 4 * (8 * 4 + 4);  // 2 query rows x 4 heads x (O + L)
  for (int r = 0; r < P; ++r)
    EXPECT_EQ(sent[r], (P - 1) * query_ring_forward_bytes(s, P) + home) << r;
}

TEST(Executor, AFailingRankAbortsTheOthersInsteadOfHanging) {
  try {
    run_on_threads(3, [](Communicator& comm) {
      if (comm.rank() == 1) throw Error("rank 1 broke", ExitCode::runtime);
      comm.recv(1, 7);  // would wait forever without the abort
    });
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 broke"), std::string::npos) << e.what();
  }
}

namespace {

DecodeProblem random_decode(std::mt19937& rng, int heads, int kv_heads, int d, int requests,
                            long long context, Storage storage) {
  DecodeProblem p;
  p.shape = {1, heads, kv_heads, d};
  p.requests = requests;
  p.context = context;
  p.storage = storage;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& t, size_t n) {
    t.resize(n);
    for (float& x : t) x = kernels::round_to(storage, u(rng));
  };
  fill(p.q, static_cast<size_t>(requests) * heads * d);
  fill(p.k, static_cast<size_t>(requests) * kv_heads * context * d);
  fill(p.v, p.k.size());
  fill(p.scores, static_cast<size_t>(requests) * kv_heads * context);
  std::uniform_int_distribution<long long> budget(0,
                                                  context + 2);  // empty and over-full budgets too
  for (int h = 0; h < kv_heads; ++h) p.budget.push_back(budget(rng));
  return p;
}

}  // namespace

TEST(DecodeExecutor, TopKKeepsTheHighestScoresInPositionOrder) {
  const float scores[] = {0.1f, 0.9f, 0.5f, 0.9f, 0.3f};
  EXPECT_EQ(kernels::top_k_positions(scores, 5, 2), (std::vector<long long>{1, 3}));
  EXPECT_EQ(kernels::top_k_positions(scores, 5, 3), (std::vector<long long>{1, 2, 3}));
  EXPECT_EQ(kernels::top_k_positions(scores, 5, 9).size(), 5u);
  EXPECT_TRUE(kernels::top_k_positions(scores, 5, 0).empty());
}

TEST(DecodeExecutor, CompactedDecodeEqualsMaskedAttention) {
  // Decode on the compacted cache = attention over the full cache with the dropped tokens masked.
  std::mt19937 rng(12);
  DecodeProblem p = random_decode(rng, 4, 2, 8, 1, 40, Storage::fp32);
  p.budget = {7, 13};
  DecodeResult got = run_decode_reference(p);
  for (int h = 0; h < 2; ++h) {
    auto keep = kernels::top_k_positions(p.scores.data() + h * 40, 40, p.budget[h]);
    kernels::Mask mask;
    mask.kind = kernels::Mask::Kind::same_group;
    mask.q_group = {1};
    mask.kv_group.assign(40, 0);
    for (long long j : keep) mask.kv_group[j] = 1;
    for (int j = 0; j < 2; ++j) {  // the two query heads of kv head h
      std::vector<float> o(8), l(1);
      kernels::attention_forward(p.q.data() + (h * 2 + j) * 8, p.k.data() + h * 40 * 8,
                                 p.v.data() + h * 40 * 8, {1, 1, 1, 8}, {0, 1}, {0, 40}, mask,
                                 o.data(), l.data());
      for (int c = 0; c < 8; ++c) EXPECT_NEAR(got.o[(h * 2 + j) * 8 + c], o[c], 1e-6);
      EXPECT_NEAR(got.l[h * 2 + j], l[0], 1e-6);
    }
  }
}

TEST(DecodeExecutor, PlacedHeadsWithFairCopiesEqualSingleDeviceDecode) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 12; ++trial) {
    const int gpus = 1 + trial % 4, kv_heads = gpus * (1 + trial % 2), requests = 1 + trial % 6;
    const Storage storage = static_cast<Storage>(trial % 3);
    DecodeProblem p = random_decode(rng, kv_heads * 2, kv_heads, 8, requests, 24, storage);
    // Each head on a random GPU, with a second copy taking a random share of the requests.
    HeadCopies copies(kv_heads);
    std::uniform_int_distribution<int> gpu(0, gpus - 1), share(0, requests);
    for (int h = 0; h < kv_heads; ++h) {
      int first = gpu(rng), split = share(rng);
      copies[h].push_back({first, split});
      copies[h].push_back(
          {(first + 1) % gpus == first ? first : (first + 1) % gpus, requests - split});
    }
    DecodeResult want = run_decode_reference(p);
    DecodeResult got = run_decode_distributed(p, copies, gpus);
    EXPECT_EQ(got.o, want.o) << "trial " << trial;  // same kernel, same data: bit for bit
    for (size_t i = 0; i < want.l.size(); ++i) EXPECT_EQ(got.l[i], want.l[i]) << "trial " << trial;
  }
}

TEST(DecodeExecutor, PlacementsThatLoseRequestsAreRefused) {
  std::mt19937 rng(1);
  DecodeProblem p = random_decode(rng, 4, 2, 8, 3, 10, Storage::bf16);
  EXPECT_THROW(run_decode_distributed(p, {{{0, 3}}, {{0, 2}}}, 2), Error);  // head 1 serves 2 of 3
  EXPECT_THROW(run_decode_distributed(p, {{{0, 3}}, {{5, 3}}}, 2), Error);  // GPU 5 of 2
  EXPECT_THROW(run_decode_distributed(p, {{{0, 3}}}, 2), Error);            // a head missing
}

TEST(Executor, HybridEqualsTheReference) {
  std::mt19937 rng(17);
  int checked = 0;
  for (int P : {4, 6, 8}) {
    for (int U : {2, 4}) {
      if (P % U || P / U < 2) continue;
      for (Strategy ring : {Strategy::query_ring, Strategy::kv_ring}) {
        for (Storage storage : {Storage::fp32, Storage::bf16}) {
          const bool gqa = (P + U) % 2 == 0;
          AttentionProblem p =
              random_problem(rng, {2, 8, gqa ? 2 : 8, 8}, 11 + P, 29 + 3 * U, storage,
                             static_cast<kernels::Mask::Kind>((P + U) % 3));
          AttentionResult want = run_reference(p, true);
          AttentionResult got = run_distributed(Strategy::hybrid, P, p, true, {U, ring});
          std::string what = "hybrid P=" + std::to_string(P) + " U=" + std::to_string(U) + " " +
                             to_string(ring) + " " + kernels::to_string(storage) +
                             (gqa ? " GQA" : "");
          expect_same_result(got, want, storage, what);
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 16);
  std::mt19937 again(1);
  AttentionProblem p =
      random_problem(again, {1, 4, 4, 8}, 8, 8, Storage::fp32, kernels::Mask::Kind::none);
  EXPECT_NE(unsupported(Strategy::hybrid, p, 4, {3, Strategy::query_ring}),
            "");  // 4 ranks, groups of 3
  EXPECT_NE(unsupported(Strategy::hybrid, p, 4, {4, Strategy::query_ring}),
            "");  // one group is no ring
}

TEST(Executor, RecomputationGivesTheSameGradientsAndKeepsWhatThePlannerCounts) {
  std::mt19937 rng(31);
  for (int P : {1, 2, 3, 4, 7}) {
    for (Strategy strategy : {Strategy::query_ring, Strategy::kv_ring}) {
      const Storage storage = P % 2 ? Storage::bf16 : Storage::fp32;
      ProjectedProblem p;
      p.attention =
          random_problem(rng, {2, 4, 2, 8}, 9 + P, 31 + P, storage, kernels::Mask::Kind::none);
      p.visual_hidden = 12;
      std::uniform_real_distribution<float> u(-0.5f, 0.5f);
      auto fill = [&](std::vector<float>& t, size_t n) {
        t.resize(n);
        for (float& x : t) x = kernels::round_to(storage, u(rng));
      };
      fill(p.x, static_cast<size_t>(2) * p.attention.s_kv * 12);
      fill(p.wk, static_cast<size_t>(12) * 2 * 8);
      fill(p.wv, p.wk.size());
      ProjectedResult want = run_projected(Strategy::single, 1, p, false);
      ProjectedResult keep = run_projected(strategy, P, p, false);
      ProjectedResult again = run_projected(strategy, P, p, true);
      std::string what = to_string(strategy) + " P=" + std::to_string(P);
      for (const auto* got : {&keep, &again}) {
        expect_close(got->o, want.o, storage, what + " O");
        expect_close(got->dq, want.dq, storage, what + " dQ");
        expect_close(got->dx, want.dx, storage, what + " dX");
        expect_close(got->dwk, want.dwk, storage, what + " dWk");
        expect_close(got->dwv, want.dwv, storage, what + " dWv");
      }
      EXPECT_EQ(again.dx, keep.dx) << what;  // recomputing K and V is exact
      EXPECT_EQ(again.dwk, keep.dwk) << what;
      // Saved elements match the planner's saved_for_backward (counted at 4 bytes per element;
      // the planner also counts Q as saved without recomputation, the executor keeps it as input).
      LayerShape shape;
      shape.batch = 2;
      shape.heads = 4;
      shape.kv_heads = 2;
      shape.head_dim = 8;
      shape.bytes = 4;
      shape.s_q = p.attention.s_q;
      shape.s_kv = p.attention.s_kv;
      Placement placement;
      placement.ranks = P;
      placement.training = true;
      const long long q = block(shape.s_q, P), kv = block(shape.s_kv, P);
      const double kv_bytes = 2.0 * 2 * kv * 2 * 8 * 4;
      placement.recompute = true;
      EXPECT_EQ(4.0 * again.saved_elements_max,
                saved_for_backward(shape, q, 4, kv_bytes, placement))
          << what;
      placement.recompute = false;
      const double q_bytes = 2.0 * q * 4 * 8 * 4;
      EXPECT_EQ(4.0 * keep.saved_elements_max + q_bytes,
                saved_for_backward(shape, q, 4, kv_bytes, placement))
          << what;
    }
  }
}

// Issue 21: the tolerance follows the reference's own magnitude. Uniform inputs over 102,464
// keys give |O| ≈ 0.002–0.01; the old floor of 1 (8e-3·max(1, max|O|)) let an all-zero O pass.
TEST(Verification, AZeroedOutputFailsHoweverSmallTheReference) {
  const std::vector<float> want = {0.005f, -0.0031f, 0.0012f, -0.0049f};
  const std::vector<float> zeros(want.size(), 0.0f);
  xring::executor::Comparison c;
  const double bf16 = xring::executor::gpu_relative_tolerance(xring::kernels::Storage::bf16);
  ASSERT_EQ(bf16, 8e-3);
  xring::executor::compare(zeros, want, xring::kernels::Storage::bf16, c, bf16);
  // Allowed at 0.005: 8e-3 · 0.005 + ulp_bf16(0.005) = 4e-5 + 2^-15 (0.005 = 0.64 · 2^-7).
  const double allowed_at_max = 8e-3 * 0.005f + std::ldexp(1.0, -15);
  EXPECT_DOUBLE_EQ(c.tolerance, allowed_at_max);
  EXPECT_FLOAT_EQ(c.max_abs, 0.005f);
  EXPECT_NEAR(c.worst_ratio, 0.005f / allowed_at_max, 1e-9);  // ≈ 71: far outside
  EXPECT_GT(c.worst_ratio, 1.0);
}

TEST(Verification, CpuSlackIsRelativeToTheInputsScaleNotACancellingOutput) {
  // The tiny model's 4-rank query_ring: |O| ≈ 0.03 (a mean of ±1 values), fp32 merge errors
  // ≈ 1e-6. Allowed: 1e-5 · max(0.03, 1) + ulp_fp32(x) ≈ 1e-5, so 1e-6 passes ...
  const std::vector<float> want = {0.0286f, -0.0190f, 0.0071f, -0.0252f};
  std::vector<float> got = want;
  for (float& x : got) x += 1e-6f;
  xring::executor::Comparison c;
  xring::executor::compare_cpu(got, want, xring::kernels::Storage::fp32, c);
  EXPECT_LE(c.worst_ratio, 1.0);
  EXPECT_NEAR(c.tolerance, 1e-5, 1e-8);
  // ... while an all-zero output is 0.0286 / 1e-5 ≈ 2,860 tolerances off.
  const std::vector<float> zeros(want.size(), 0.0f);
  xring::executor::Comparison z;
  xring::executor::compare_cpu(zeros, want, xring::kernels::Storage::fp32, z);
  EXPECT_NEAR(z.worst_ratio, 0.0286 / 1e-5, 1.0);
}

TEST(Verification, SmallRelativeErrorsPassAndNaNsFail) {
  const std::vector<float> want = {0.005f, -0.0031f, 0.0012f, -0.0049f};
  std::vector<float> got = want;
  for (float& x : got) x *= 1.004f;  // 0.4% of each value: at most 2e-5, under 4e-5 + ulp
  xring::executor::Comparison c;
  xring::executor::compare(got, want, xring::kernels::Storage::bf16, c, 8e-3);
  EXPECT_LE(c.worst_ratio, 1.0);
  EXPECT_NEAR(c.max_rel, 0.004, 1e-6);
  got[2] = NAN;
  xring::executor::compare(got, want, xring::kernels::Storage::bf16, c, 8e-3);
  EXPECT_TRUE(std::isinf(c.worst_ratio));
}
