// Per-head budgets, head profiles, the decode section (FairKV) and streaming policies.
#include <gtest/gtest.h>

#include <numeric>

#include "test_util.hpp"
#include "xring/planner/decode.hpp"
#include "xring/planner/planner.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

HeadProfile builtin_profile(const std::string& name) {
  SpecJson j = load_spec_json(SpecKind::heads, name);
  return head_profile_from_json(j.value, j.origin);
}

KvPolicy adaptive(double floor = 0.5, int window = 32) {
  KvPolicy p;
  p.kind = KvPolicyKind::adaptive;
  p.name = "adaptive";
  p.floor = floor;
  p.window = window;
  return p;
}

const DecodePlacement& placement(const DecodeSection& d, const std::string& name) {
  for (const auto& p : d.placements)
    if (p.placement == name) return p;
  throw std::runtime_error("no placement " + name);
}

}  // namespace

TEST(Budgets, AdaptiveSumsToTheLayerTotalAndIsUnequal) {
  HeadProfile p = builtin_profile("llama-3-70b");
  for (double floor : {0.0, 0.2, 0.5, 1.0}) {
    HeadBudgets b = head_budgets(adaptive(floor), 1024, 32768, 80, 8, &p);
    ASSERT_EQ(b.tokens.size(), 80u);
    for (const auto& row : b.tokens)
      EXPECT_EQ(std::accumulate(row.begin(), row.end(), 0LL), 8 * 1024) << "floor " << floor;
    if (floor < 1.0)
      EXPECT_GT(b.max_per_head(), 1024);
    else
      EXPECT_EQ(b.max_per_head(), 1024);  // a floor of 1 is uniform
  }
}

TEST(Budgets, AdaptiveByHand) {
  // One layer, two heads, shares 0.75/0.25, budget 132 with window 32: B' = 100, floor
  // int(0.5 * 100) = 50, c = (150, 50); keep 0.5*c + 50 = (125, 75), plus the window.
  HeadProfile p;
  p.layers = 1;
  p.kv_heads = 2;
  p.shares = {{0.75, 0.25}};
  HeadBudgets b = head_budgets(adaptive(0.5, 32), 132, 10000, 1, 2, &p);
  EXPECT_EQ(b.tokens[0], (std::vector<long long>{157, 107}));
  // A short prompt caps the heavy head; what it cannot use goes to the other.
  b = head_budgets(adaptive(0.5, 32), 132, 132, 1, 2, &p);
  EXPECT_EQ(b.tokens[0],
            (std::vector<long long>{132, 132}));  // B' >= prompt - window: no compression
  b = head_budgets(adaptive(0.0, 0), 100, 120, 1, 2, &p);
  EXPECT_EQ(b.tokens[0], (std::vector<long long>{120, 80}));  // 150 capped at 120, 30 moved over
}

TEST(Budgets, UniformAndFull) {
  KvPolicy uniform;
  uniform.kind = KvPolicyKind::uniform;
  HeadBudgets b = head_budgets(uniform, 1024, 500, 3, 4, nullptr);
  EXPECT_EQ(b.total(), 3 * 4 * 500);  // capped at the prompt
  b = head_budgets(uniform, 1024, 5000, 3, 4, nullptr);
  EXPECT_EQ(b.total(), 3 * 4 * 1024);
  b = head_budgets(KvPolicy{}, 0, 5000, 3, 4, nullptr);
  EXPECT_EQ(b.total(), 3 * 4 * 5000);
}

TEST(Budgets, HistogramProfileFromMeasuredScores) {
  // Head 0 scores high on every token, head 1 low: the layer's top tokens all come from head 0.
  json scores = {{"model", "tiny"},
                 {"source", "test"},
                 {"scores", {{{9.0, 8.0, 7.0, 6.0}, {0.1, 0.2, 0.3, 0.4}}}}};
  HeadProfile p = head_profile_from_scores(scores, "scores.json", 8);
  EXPECT_EQ(p.layers, 1);
  EXPECT_EQ(p.kv_heads, 2);
  HeadProfile back = head_profile_from_json(to_json(p), "p");
  EXPECT_EQ(to_json(back), to_json(p));
  HeadBudgets b = head_budgets(adaptive(0.0, 0), 2, 4, 1, 2, &p);  // top 4 of 8 tokens
  EXPECT_EQ(b.tokens[0], (std::vector<long long>{4, 0}));
  EXPECT_NE(error_of([] {
              head_profile_from_scores(
                  {{"model", "m"}, {"source", "s"}, {"scores", {{{1.0, -2.0}}}}}, "s.json", 8);
            }).find("s.json: at \"scores[0][0]\""),
            std::string::npos);
}

TEST(HeadProfiles, ValidatedLikeSpecs) {
  json j = to_json(builtin_profile("mistral-small-24b"));
  j["shares"][3][0] = 0.9;
  EXPECT_NE(error_of([&] {
              head_profile_from_json(j, "h.json");
            }).find("h.json: at \"shares[3]\": must sum to 1"),
            std::string::npos);
  j = to_json(builtin_profile("mistral-small-24b"));
  j["shares"].erase(0);
  EXPECT_NE(error_of([&] { head_profile_from_json(j, "h.json"); }).find("one row per layer"),
            std::string::npos);
  // A profile for another model is refused when planning.
  std::string e = error_of([] {
    plan(load_inputs("mistral-small-24b", "h100-sxm-8", "fairkv-decode",
                     {"workload.head_profile=llama-3-70b"}));
  });
  EXPECT_NE(e.find("80 layers"), std::string::npos) << e;
  e = error_of(
      [] { plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "fairkv-decode", {})); });
  EXPECT_NE(e.find("head_profile"), std::string::npos) << e;
}

TEST(Decode, FairCopyingBeatsContiguousTensorParallelism) {
  // FairKV reports 1.66x over standard TP for LLaMA-70B and Mistral-24B. The model, with the
  // shipped synthetic profiles (lognormal sigma 1) and the fairkv-decode workload, gives:
  struct Expect {
    const char* model;
    double at_batch_lo, at_batch_hi, at_max_lo, at_max_hi;
  };
  for (const Expect& e : {Expect{"llama-3-70b", 1.15, 1.40, 1.40, 1.80},
                          Expect{"mistral-small-24b", 1.15, 1.45, 1.60, 2.10}}) {
    Plan p = plan(load_inputs(e.model, "h100-sxm-8", "fairkv-decode", {}));
    ASSERT_TRUE(p.decode.has_value());
    const DecodeSection& d = *p.decode;
    EXPECT_EQ(d.chosen, "fair_copying");
    const auto& c = placement(d, "contiguous");
    const auto& b = placement(d, "balanced");
    const auto& f = placement(d, "fair_copying");
    EXPECT_LE(f.max_gpu_load_bytes, b.max_gpu_load_bytes);
    EXPECT_LE(b.max_gpu_load_bytes, c.max_gpu_load_bytes);
    EXPECT_GE(c.max_gpu_load_bytes, c.lower_bound_bytes);
    double at_batch = f.tokens_per_s / c.tokens_per_s;
    double at_max = f.tokens_per_s_at_max_batch / c.tokens_per_s_at_max_batch;
    EXPECT_GT(at_batch, e.at_batch_lo) << e.model;
    EXPECT_LT(at_batch, e.at_batch_hi) << e.model;
    EXPECT_GT(at_max, e.at_max_lo) << e.model;
    EXPECT_LT(at_max, e.at_max_hi) << e.model;
    EXPECT_EQ(d.heads.size(), 8u * (e.model == std::string("llama-3-70b") ? 80 : 40));
    EXPECT_DOUBLE_EQ(*p.predicted.decode_tokens_per_s, f.tokens_per_s);
  }
}

TEST(Decode, UniformBudgetsGiveNothingToBalance) {
  Plan p = plan(
      load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {"workload.kv_policy=uniform"}));
  const DecodeSection& d = *p.decode;
  EXPECT_NEAR(placement(d, "contiguous").gap, 0.0, 1e-12);
  EXPECT_EQ(placement(d, "fair_copying").copies, 0);
  EXPECT_EQ(d.chosen, "contiguous");
}

TEST(Decode, TooLargeABatchIsInfeasibleWithTheBatchThatFits) {
  Plan p = plan(load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {"workload.batch=4096"}));
  EXPECT_FALSE(p.feasible);
  ASSERT_FALSE(p.reasons.empty());
  EXPECT_NE(p.reasons.back().find("requests per replica fit"), std::string::npos)
      << p.reasons.back();
}

TEST(Streaming, FullRunsOutBoundedPoliciesDoNot) {
  Inputs in = load_inputs("llama-3.2-11b-vision", "h100-1", "video-stream", {});
  Plan p = plan(in);
  ASSERT_TRUE(p.streaming.has_value());
  const StreamingSection& s = *p.streaming;
  EXPECT_DOUBLE_EQ(s.visual_tokens_per_s, 6404.0);
  const StreamingPolicy* full = nullptr;
  const StreamingPolicy* inf = nullptr;
  for (const auto& x : s.policies) {
    if (x.policy == "full") full = &x;
    if (x.policy == "inf_mllm") inf = &x;
  }
  ASSERT_TRUE(full && inf);
  // Full: weights + t * 6404 tokens/s * 8 layers * 2 * 8 * 128 * 2 B = usable memory.
  const double weights = (9.78e9 + 0.895e9) * 2, per_s = 6404.0 * 8 * 2 * 8 * 128 * 2;
  const double text = (256 + 128) * 32.0 * 2 * 8 * 128 * 2;
  ASSERT_TRUE(full->oom_at_s.has_value());
  EXPECT_NEAR(*full->oom_at_s, (in.cluster.usable_memory_bytes() - weights - text) / per_s, 1e-6);
  EXPECT_FALSE(inf->oom_at_s.has_value());
  // Inf-MLLM's memory is constant once its cache has filled (16384 tokens: within 3 s).
  for (size_t i = 2; i < inf->memory_over_time.size(); ++i)
    EXPECT_DOUBLE_EQ(inf->memory_over_time[i].second, inf->memory_over_time[1].second);
  EXPECT_TRUE(p.feasible);  // the workload's policy is inf_mllm
  Plan with_full = plan(
      load_inputs("llama-3.2-11b-vision", "h100-1", "video-stream", {"workload.kv_policy=full"}));
  EXPECT_FALSE(with_full.feasible);
  EXPECT_NE(with_full.reasons.front().find("runs out of memory after"), std::string::npos);
}

TEST(Streaming, AvlKeepsItsStoredShareAndComputesLess) {
  Plan p = plan(load_inputs("mplug-owl3-7b", "h100-1", "video-stream", {}));
  const StreamingPolicy *full = nullptr, *avl = nullptr;
  for (const auto& x : p.streaming->policies) {
    if (x.policy == "full") full = &x;
    if (x.policy == "a_vl") avl = &x;
  }
  ASSERT_TRUE(full && avl);
  double weights = full->memory_over_time.front().second;  // t = 0: weights and text
  double full_growth = full->memory_over_time.back().second - weights;
  double avl_growth = avl->memory_over_time.back().second - avl->memory_over_time.front().second;
  EXPECT_NEAR(avl_growth / full_growth, 0.45, 1e-9);  // stored_rate
  EXPECT_GT(avl->tokens_per_s, full->tokens_per_s);
  EXPECT_LT(avl->per_token_flops, full->per_token_flops);
}

TEST(Decode, ChosenPlacementAlwaysFitsWhenAnyDoes) {
  for (int batch : {1, 64, 256, 512, 600, 700, 1024, 4096}) {
    Plan p = plan(load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode",
                              {"workload.batch=" + std::to_string(batch)}));
    const DecodeSection& d = *p.decode;
    bool any = false;
    for (const auto& x : d.placements) any = any || (x.fits && x.placement != "optimal");
    const DecodePlacement& chosen = placement(d, d.chosen);
    EXPECT_EQ(chosen.fits, any) << "batch " << batch;
    EXPECT_EQ(p.feasible, any) << "batch " << batch;
    const double usable = 78.0 * (1ull << 30);  // 80 GiB less the 2 GiB reserve
    if (chosen.fits) {
      EXPECT_LE(chosen.peak_memory_bytes, usable);
    }
    for (const auto& x : d.placements) {
      EXPECT_EQ(x.fits, x.peak_memory_bytes <= usable) << x.placement << " batch " << batch;
      if (x.max_batch > 0) {
        EXPECT_EQ(x.max_batch >= batch, x.fits) << x.placement << " batch " << batch;
      }
    }
  }
}
