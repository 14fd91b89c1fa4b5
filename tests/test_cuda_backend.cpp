// The cuda backend (emulated ranks on one GPU) against the CPU reference: query ring and KV
// ring, P in {1, 2, 3, 8}, forward and backward, uneven splits, masks, fp16 and bf16, head dims
// 64 and 128. Skipped with the reason where no GPU exists.
//
// Tolerance, per element: rel·max|ref| + one storage ulp of the element, rel = 2e-3 (fp16) or
// 8e-3 (bf16) for every output; L: 1e-3·max(1, |ref|). The forward kernels round P to the
// storage type before P·V (as every flash kernel does), and the running maximum they subtract
// first depends on how the keys are split, so O moves within the kernels' own forward
// tolerance (test_kernels_gpu.cpp); the backward starts from that O, so the gradients inherit it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "attention_test_util.hpp"
#include "xring/executor/cuda_ring_device.hpp"
#include "xring/executor/decode.hpp"
#include "xring/executor/emulated.hpp"
#include "xring/planner/error.hpp"

using namespace xring;
using namespace xring::executor;
using namespace xring::test;

namespace {

#define REQUIRE_GPU()                             \
  do {                                            \
    std::string why = cuda_backend_unavailable(); \
    if (!why.empty()) GTEST_SKIP() << why;        \
  } while (0)

void expect_within(const std::vector<float>& got, const std::vector<float>& want, double rel,
                   Storage storage, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double scale = max_abs(want);
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      ASSERT_EQ(got[i], want[i]) << what << " at " << i;
      continue;
    }
    const double allowed = rel * scale + kernels::ulp(storage, want[i]) + 1e-30;
    const double ratio = std::fabs(static_cast<double>(got[i]) - want[i]) / allowed;
    if (ratio > worst) {
      worst = ratio;
      at = i;
    }
  }
  EXPECT_LE(worst, 1.0) << what << ": got " << got[at] << ", want " << want[at] << " at " << at;
}

void expect_lse_within(const std::vector<float>& got, const std::vector<float>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i])) {
      ASSERT_EQ(got[i], want[i]) << what << " L at " << i;
      continue;
    }
    ASSERT_NEAR(got[i], want[i], 1e-3 * std::max(1.0f, std::fabs(want[i])))
        << what << " L at " << i;
  }
}

}  // namespace

TEST(CudaBackend, EqualsTheReference) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  const AttentionCase cases[] = {
      {{1, 4, 2, 128}, 100, 1000, Storage::bf16, kernels::Mask::Kind::none},
      {{2, 2, 1, 64}, 67, 389, Storage::fp16, kernels::Mask::Kind::same_group},
      {{1, 8, 8, 64}, 130, 517, Storage::bf16, kernels::Mask::Kind::up_to_group},
      {{1, 2, 2, 128}, 150, 150, Storage::fp16, kernels::Mask::Kind::causal},
  };
  for (const AttentionCase& c : cases) {
    const double rel = c.storage == Storage::fp16 ? 2e-3 : 8e-3;
    AttentionProblem p = random_problem(rng, c.shape, c.s_q, c.s_kv, c.storage, c.mask);
    const AttentionResult want = run_reference(p, true);
    for (Strategy s : {Strategy::query_ring, Strategy::kv_ring})
      for (int P : {1, 2, 3, 8}) {
        const std::string what = to_string(s) + " P=" + std::to_string(P) + " " +
                                 kernels::to_string(c.storage) + " " + std::to_string(c.s_q) + "x" +
                                 std::to_string(c.s_kv);
        auto device = make_cuda_ring_device(p, P);
        EmulatedRun got = run_emulated(*device, s, P, p, true);
        expect_within(got.result.o, want.o, rel, c.storage, what + " O");
        expect_lse_within(got.result.l, want.l, what);
        expect_within(got.result.dq, want.dq, rel, c.storage, what + " dQ");
        expect_within(got.result.dk, want.dk, rel, c.storage, what + " dK");
        expect_within(got.result.dv, want.dv, rel, c.storage, what + " dV");
        EXPECT_GT(got.forward.total_s, 0) << what;
        for (const OpTiming& t : got.forward.ops) EXPECT_LE(t.start_s, t.end_s) << what;
      }
  }
}

TEST(CudaBackend, RefusesWhatTheKernelsCannotRun) {
  REQUIRE_GPU();
  std::mt19937 rng(2);
  AttentionProblem fp32 =
      random_problem(rng, {1, 2, 2, 64}, 4, 4, Storage::fp32, kernels::Mask::Kind::none);
  EXPECT_THROW(make_cuda_ring_device(fp32, 2), Error);
  AttentionProblem d32 =
      random_problem(rng, {1, 2, 2, 32}, 4, 4, Storage::bf16, kernels::Mask::Kind::none);
  EXPECT_THROW(make_cuda_ring_device(d32, 2), Error);
}

TEST(CudaBackend, SaysWhyItIsUnavailable) {
  // Runs everywhere: without a GPU (or without CUDA in the build) the factory throws a runtime
  // error (exit 3) that says why; with one, it builds a device.
  std::mt19937 rng(5);
  AttentionProblem p =
      random_problem(rng, {1, 2, 2, 64}, 8, 8, Storage::bf16, kernels::Mask::Kind::none);
  const std::string why = cuda_backend_unavailable();
  if (why.empty()) {
    EXPECT_NE(make_cuda_ring_device(p, 2), nullptr);
    return;
  }
  try {
    make_cuda_ring_device(p, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ExitCode::runtime);
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos);
  }
}

// Decode plans on the cuda backend: FairKV's copies on 3 emulated GPUs (one stream each) against
// the CPU decode on the same compacted caches. Budgets 0 (an empty cache: O = 0, L = -inf),
// 37 and the whole context; kv head 0 split over GPUs 0 and 1, kv head 1 on GPU 2.
TEST(CudaBackend, DecodeOnEmulatedGpusEqualsCpuDecodeOnTheSameCaches) {
  REQUIRE_GPU();
  for (Storage storage : {Storage::bf16, Storage::fp16}) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    DecodeProblem p;
    p.shape = {1, 8, 2, 128};
    p.requests = 5;
    p.context = 300;
    p.storage = storage;
    auto fill = [&](std::vector<float>& t, size_t n) {
      t.resize(n);
      for (float& x : t) x = kernels::round_to(storage, uniform(rng));
    };
    fill(p.q, size_t(5) * 8 * 128);
    fill(p.k, size_t(5) * 2 * 300 * 128);
    fill(p.v, p.k.size());
    fill(p.scores, size_t(5) * 2 * 300);
    const HeadCopies copies = {{{0, 3}, {1, 2}}, {{2, 5}}};
    for (std::vector<long long> budget : {std::vector<long long>{37, 300},
                                          std::vector<long long>{0, 37}}) {
      p.budget = budget;
      DecodeResult got = run_decode_cuda(p, copies, 3);
      DecodeResult want = run_decode_distributed(p, copies, 3);
      const double rel = storage == Storage::fp16 ? 2e-3 : 8e-3;
      expect_within(got.o, want.o, rel, storage, "decode O");
      expect_within(got.l, want.l, 1e-3, Storage::fp32, "decode L");
      // Gathered to GPU 0: kv head 0's requests 3, 4 (GPU 1) and kv head 1's five (GPU 2), each
      // its 4 query heads' O (128 values at 2 bytes) and L (4 bytes): 7 · 4 · 260 bytes.
      EXPECT_EQ(got.bytes_sent, 7 * 4 * 260.0);
      EXPECT_GT(got.device_time_s, 0);
    }
  }
}

TEST(CudaBackend, DecodeSaysWhyItIsUnavailable) {
  const std::string why = cuda_backend_unavailable();
  if (why.empty()) return;  // a GPU is here: DecodeOnEmulatedGpus... checks it (never skip:
                            // scripts/gpu-check.sh fails on any skipped GPU test)
  DecodeProblem p;
  p.shape = {1, 2, 1, 64};
  p.budget = {1};
  p.q.assign(2 * 64, 0.5f);
  p.k.assign(64, 0.5f);
  p.v.assign(64, 0.5f);
  p.scores.assign(1, 1.0f);
  try {
    run_decode_cuda(p, {{{0, 1}}}, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ExitCode::runtime);
    EXPECT_NE(std::string(e.what()).find("--backend cuda: "), std::string::npos) << e.what();
  }
}
