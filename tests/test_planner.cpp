// Planner properties: the choice follows the bytes, predictions move the right way with
// bandwidth and sequence length, pins are honoured, infeasible is a value.
#include <gtest/gtest.h>

#include <random>

#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"

using namespace xring;

namespace {

std::string set(const std::string& key, const std::string& value) { return key + "=" + value; }

const Alternative* alternative(const LayerPlan& l, Strategy s, bool recompute = false) {
  for (const auto& a : l.alternatives)
    if (a.strategy == s && a.recompute == recompute) return &a;
  return nullptr;
}

}  // namespace

// With latency 0 and a link so slow that transfers dominate, ring time is compute plus bytes
// over bandwidth, so the planner must pick query-ring exactly when it moves fewer bytes in
// total ((P-1) steps plus O returning home). Odd head counts rule out Ulysses and the hybrid.
TEST(PlannerProperties, QueryRingChosenExactlyWhenItMovesFewerBytes) {
  std::mt19937 rng(20261123);
  int query_chosen = 0, kv_chosen = 0;
  for (int trial = 0; trial < 200; ++trial) {
    int heads = std::uniform_int_distribution<int>(0, 2)(rng) * 14 + 7;  // 7, 21, 35
    int kv_heads = std::uniform_int_distribution<int>(0, 1)(rng) ? 7 : 1;
    int head_dim = std::uniform_int_distribution<int>(0, 1)(rng) ? 64 : 128;
    int s_q = std::uniform_int_distribution<int>(1, 4096)(rng);
    int s_kv = std::uniform_int_distribution<int>(1, 200000)(rng);
    int P = std::uniform_int_distribution<int>(0, 2)(rng) == 0 ? 2 : 4;
    Inputs in =
        load_inputs("tiny", "h100-sxm-8", "video-qa",
                    {"model.params=1B", set("model.heads", std::to_string(heads)),
                     set("model.kv_heads", std::to_string(kv_heads)),
                     set("model.head_dim", std::to_string(head_dim)),
                     set("workload.text_tokens", std::to_string(s_q)), "workload.frames=null",
                     set("workload.visual_tokens", std::to_string(s_kv)),
                     "cluster.intra_node.bandwidth=1MB/s", "cluster.intra_node.latency=0s"});
    PlannerOptions pin;
    pin.ranks = P;
    Plan p = plan(in, pin);
    ASSERT_TRUE(p.feasible);
    const LayerPlan& l = p.layers.front();
    LayerShape s = cross_attention_shape(in.model, in.workload, 1);
    double query_bytes = (P - 1) * query_ring_forward_bytes(s, P) +
                         static_cast<double>(block(s_q, P)) * heads * (head_dim * 2 + 4);
    double kv_bytes = (P - 1) * kv_ring_forward_bytes(s, P);
    if (query_bytes == kv_bytes) continue;
    ASSERT_TRUE(l.strategy == Strategy::query_ring || l.strategy == Strategy::kv_ring)
        << to_string(l.strategy);
    EXPECT_EQ(l.strategy == Strategy::query_ring, query_bytes < kv_bytes)
        << "S_Q=" << s_q << " S_KV=" << s_kv << " H=" << heads << " H_kv=" << kv_heads
        << " P=" << P;
    (l.strategy == Strategy::query_ring ? query_chosen : kv_chosen)++;
  }
  EXPECT_GT(query_chosen, 20);  // both sides of the crossover were exercised
  EXPECT_GT(kv_chosen, 20);
}

// Per-step bytes: query-ring sends fewer exactly when S_Q/S_KV < (H_kv/H)·d·b/(d·b+2).
TEST(PlannerProperties, CrossoverFormulaSplitsTheBytes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 1000; ++trial) {
    LayerShape s;
    s.kv_heads = 1 << std::uniform_int_distribution<int>(0, 3)(rng);
    s.heads = s.kv_heads * (1 << std::uniform_int_distribution<int>(0, 3)(rng));
    s.head_dim = std::uniform_int_distribution<int>(0, 1)(rng) ? 64 : 128;
    s.bytes = std::uniform_int_distribution<int>(0, 1)(rng) ? 2 : 4;
    int P = std::uniform_int_distribution<int>(1, 8)(rng);
    s.s_q = static_cast<long long>(P) * std::uniform_int_distribution<int>(1, 4000)(rng);
    s.s_kv = static_cast<long long>(P) * std::uniform_int_distribution<int>(1, 40000)(rng);
    double ratio = static_cast<double>(s.s_q) / s.s_kv;
    double crossover = query_ring_crossover_ratio(s);
    if (std::abs(ratio - crossover) < 1e-9) continue;
    EXPECT_EQ(query_ring_forward_bytes(s, P) < kv_ring_forward_bytes(s, P), ratio < crossover);
  }
}

TEST(PlannerProperties, FasterNetworkNeverSlowsThePlan) {
  for (const char* model : {"mplug-owl3-7b", "openflamingo-9b", "llama-3.2-11b-vision"}) {
    for (const char* phase : {"prefill", "training"}) {
      double previous = 1e300;
      for (const char* bw : {"1GB/s", "5GB/s", "25GB/s", "100GB/s", "400GB/s"}) {
        Inputs in = load_inputs(model, "a100-80gb-16", "video-qa",
                                {set("cluster.inter_node.bandwidth", bw),
                                 set("workload.phase", phase), "workload.frames=64"});
        Plan p = plan(in);
        ASSERT_TRUE(p.feasible) << model << " " << bw;
        EXPECT_LE(*p.predicted.iteration_time_s, previous * (1 + 1e-12))
            << model << " " << phase << " " << bw;
        previous = *p.predicted.iteration_time_s;
      }
    }
  }
}

TEST(PlannerProperties, LongerVideoNeverSpeedsUpTheIteration) {
  for (const char* model : {"mplug-owl3-7b", "openflamingo-3b", "llama-3.2-11b-vision"}) {
    double previous = 0;
    for (int frames : {1, 4, 16, 64, 256, 1024}) {
      Inputs in = load_inputs(model, "h100-sxm-32", "video-qa",
                              {set("workload.frames", std::to_string(frames))});
      Plan p = plan(in);
      if (!p.feasible) break;
      EXPECT_GE(*p.predicted.iteration_time_s, previous) << model << " frames " << frames;
      EXPECT_GE(*p.predicted.cross_attention_time_s, 0.0);
      previous = *p.predicted.iteration_time_s;
    }
  }
}

TEST(Planner, ChosenIsTheFastestFeasibleAlternative) {
  Inputs in = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa", {"workload.phase=training"});
  Plan p = plan(in);
  ASSERT_TRUE(p.feasible);
  const LayerPlan& l = p.layers.front();
  int chosen = 0;
  for (const auto& a : l.alternatives) {
    if (a.rejected_reason.empty()) {
      ++chosen;
      EXPECT_EQ(a.strategy, l.strategy);
      EXPECT_DOUBLE_EQ(*a.time_s, l.time_s);
    } else if (a.time_s) {
      EXPECT_GE(*a.time_s, l.time_s);
      EXPECT_EQ(a.rejected_reason.rfind("slower: ", 0), 0u) << a.rejected_reason;
    }
  }
  EXPECT_EQ(chosen, 1);
  EXPECT_EQ(p.layers.size(), 4u);
  EXPECT_NEAR(*p.predicted.iteration_time_s,
              *p.predicted.cross_attention_time_s + *p.predicted.rest_of_model_time_s, 1e-12);
}

TEST(Planner, PinsAreHonoured) {
  Inputs in = load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {});
  PlannerOptions pin;
  pin.strategy = Strategy::kv_ring;
  pin.ranks = 4;
  Plan p = plan(in, pin);
  for (const auto& l : p.layers) {
    EXPECT_EQ(l.strategy, Strategy::kv_ring);
    EXPECT_EQ(l.ranks, 4);
    // Batch 1: of the 32 / 4 = 8 possible data-parallel groups only one has a sample; the
    // other 28 GPUs are idle during cross-attention.
    EXPECT_EQ(l.groups, 1);
    EXPECT_EQ(l.batch_per_group, 1);
    EXPECT_EQ(l.idle_gpus, 28);
    EXPECT_NE(l.reason.find("pinned"), std::string::npos);
  }
  pin.ranks = 5;
  EXPECT_THROW(plan(in, pin), Error);  // 5 does not divide 32
}

TEST(Planner, UnevenSplitsUseTheLargestBlock) {
  Inputs in =
      load_inputs("tiny", "h100-sxm-8", "video-qa",
                  {"workload.frames=null", "workload.visual_tokens=10", "workload.text_tokens=7"});
  PlannerOptions pin;
  pin.strategy = Strategy::query_ring;
  pin.ranks = 4;
  Plan p = plan(in, pin);
  EXPECT_EQ(p.layers.front().q_block, 2);
  EXPECT_EQ(p.layers.front().kv_block, 3);
}

TEST(Planner, InfeasibleIsAResultWithReasons) {
  Inputs in =
      load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa", {"workload.frames=100000"});
  Plan p = plan(in);
  EXPECT_FALSE(p.feasible);
  ASSERT_FALSE(p.reasons.empty());
  EXPECT_NE(p.reasons.front().find("does not fit"), std::string::npos) << p.reasons.front();
  EXPECT_EQ(p.layers.size(), 8u);  // still shows the least-memory option
  for (const auto& a : p.layers.front().alternatives) {
    EXPECT_FALSE(a.time_s.has_value());
    EXPECT_FALSE(a.rejected_reason.empty());
  }
}

TEST(Planner, WeightsThatDoNotFitMakeThePlanInfeasible) {
  Inputs in = load_inputs("llama-3-70b", "h100-1", "long-text", {});
  Plan p = plan(in);
  EXPECT_FALSE(p.feasible);
  EXPECT_NE(p.reasons.front().find("weights"), std::string::npos);
}

TEST(Planner, TrainingRecomputesOnlyWhenMemoryForcesIt) {
  // Few frames: everything fits, recomputation only costs time.
  Inputs small = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa",
                             {"workload.phase=training", "workload.frames=64"});
  EXPECT_FALSE(plan(small).layers.front().recompute);
  // Many frames: saved K/V of all layers no longer fit; recomputation does.
  Inputs large = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa",
                             {"workload.phase=training", "workload.frames=120000"});
  Plan p = plan(large);
  ASSERT_TRUE(p.feasible) << (p.reasons.empty() ? "" : p.reasons.front());
  EXPECT_TRUE(p.layers.front().recompute);
  const Alternative* no_recompute = alternative(p.layers.front(), p.layers.front().strategy, false);
  ASSERT_NE(no_recompute, nullptr);
  EXPECT_NE(no_recompute->rejected_reason.find("does not fit"), std::string::npos);
}

TEST(Planner, RingAcrossNodesIsBoundByTheSlowestHop) {
  Inputs in = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa", {});
  Link inside = group_link(in.cluster, 0, 1, 4);
  Link across = group_link(in.cluster, 0, 1, 8);
  EXPECT_EQ(inside.bytes_per_s, 300e9);
  EXPECT_EQ(across.bytes_per_s, 25e9);
  EXPECT_EQ(group_link(in.cluster, 0, 4, 4).bytes_per_s, 25e9);  // one rank per node
  in.cluster.rank_order = RankOrder::round_robin;
  EXPECT_EQ(group_link(in.cluster, 0, 1, 2).bytes_per_s, 25e9);
}

TEST(Planner, TextOnlyWorkloadOnAMultimodalModelSkipsCrossAttention) {
  Plan p = plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "long-text", {}));
  EXPECT_TRUE(p.layers.empty());
  EXPECT_GT(*p.predicted.rest_of_model_time_s, 0.0);
  EXPECT_FALSE(p.predicted.cross_attention_time_s.has_value()) << "no cross-attention ran";
  ASSERT_TRUE(p.predicted.decode_step_s.has_value());
}

// Issue 15 item 5: with recomputation a layer's backward holds the rebuilt K, V and dK, dV.
// Hand check (Llama-3.2-11B-Vision, 700 frames x 6404 tokens, batch 8 on 8 GPUs, single):
// K+V per sample = 2 · 4,482,800 · 8 · 128 · 2 B = 18,361,548,800 B (17.1 GiB), dK/dV the same.
TEST(Planner, RecomputedBackwardCountsKvGradients) {
  Plan p = plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa",
                            {"workload.phase=training", "workload.frames=700", "workload.batch=8"}));
  EXPECT_FALSE(p.feasible);
  const MemoryBreakdown& m = p.layers.front().memory_bytes;
  EXPECT_DOUBLE_EQ(m.kv, 18361548800.0);
  EXPECT_DOUBLE_EQ(m.kv_gradients, 18361548800.0);
  EXPECT_GT(m.total(), 90.4 * (1ull << 30));
  EXPECT_FALSE(p.predicted.iteration_time_s.has_value()) << "infeasible predicts nothing";
}

// Issue 15 item 2: the reason lists every category, largest first, and what would fit.
// Hand check, query_ring on 8 ranks: each visual token costs (4096 + 2·8·128) · 2 B / 8 = 1536 B
// per rank; (78 GiB − 19.88 GiB weights − ~6 MiB) / 1536 B / 6404 tokens per frame ≈ 6343 frames.
TEST(Planner, DoesNotFitNamesTheLargestItemAndWhatFits) {
  Plan p = plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa",
                            {"workload.frames=7200"}));
  ASSERT_FALSE(p.feasible);
  const std::string& r = p.reasons.front();
  EXPECT_NE(r.find("(visual tokens 43.97 GiB, kv 21.99 GiB, weights 19.88 GiB"), std::string::npos)
      << r;
  EXPECT_NE(r.find("with frames ≤ 6343"), std::string::npos) << r;
  EXPECT_NE(r.find("fits from P = 10"), std::string::npos) << r;
}

// Issue 15 item 6: a serving plan holds one layout. Decode is G = gcd(8 kv heads, 8 GPUs) = 8
// way tensor-parallel, so prefill memory holds weights/8 too: Llama-3-70B 70.6e9·2/8 B (it was
// 4-way, 33.38 GiB, under the 60 % rule), Llama-3.2-Vision (9.78e9 + 0.895e9)·2/8 B in every
// cross-attention layer's memory (it was replicated).
TEST(Planner, ServingPlansUseDecodesTensorParallelLayoutForPrefill) {
  Plan fairkv = plan(load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {}));
  EXPECT_EQ(fairkv.rest_of_model.tensor_parallel, 8);
  EXPECT_EQ(fairkv.decode->gpus, 8);
  // Peak over the phases: decode's fullest GPU (weights/8 + KV + copies) beats prefill's
  // weights/8 + the activations of one 32K-token prompt chunked over 8 GPUs.
  const double prefill = 70.6e9 * 2 / 8 + 32768 / 8 * 8 * 8192 * 2.0;
  double decode_peak = 0;
  for (const auto& x : fairkv.decode->placements)
    if (x.placement == fairkv.decode->chosen) decode_peak = x.peak_memory_bytes;
  EXPECT_GT(decode_peak, prefill);
  EXPECT_DOUBLE_EQ(fairkv.predicted.peak_memory_bytes_per_rank, decode_peak);

  Plan chat = plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "image-chat", {}));
  ASSERT_FALSE(chat.layers.empty());
  EXPECT_DOUBLE_EQ(chat.layers[0].memory_bytes.weights, (9.78e9 + 0.895e9) * 2 / 8);
  EXPECT_EQ(chat.rest_of_model.tensor_parallel, chat.decode->gpus);
  // Prefill workloads keep the 60 % rule: 21.35 GB replicated fits under 0.6 x 78 GiB.
  Plan prefill_only = plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa", {}));
  EXPECT_EQ(prefill_only.rest_of_model.tensor_parallel, 1);
}

// Issue 15, item 10: a tiny layer is no longer predicted at nanoseconds. `xring plan --model
// tiny` (video-qa: 512 text x 4096 visual tokens, one sample on H100) runs single:
//  attention 4·4·512·4096·64 = 2,147,483,648 FLOPs at 0.481 x 989 TFLOP/s (d=64, 4096 keys,
//    512 queries fill 4 tiles) = 4.51428 us, + 3 us launch = 7.51428 us;
//  K/V projection 2·4096·256·(2·2·64) = 536,870,912 FLOPs, a 4096 x 256 x 256 GEMM: intensity
//    536870912 / (2·(4096·256 + 256·256 + 256·4096)) = 124.121 FLOP/B over the ridge
//    989e12/3350e9 = 295.224: 0.6 x 0.420431 = 0.252259 of peak, 2.15193 us, + 3 us launch.
// Layer: 12.6662 us.
TEST(Planner, TinyLayerPaysItsFixedCosts) {
  Plan p = plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {}));
  ASSERT_EQ(p.layers.size(), 2u);
  const LayerPlan& l = p.layers[0];
  EXPECT_EQ(l.strategy, Strategy::single);
  const double attention = 2147483648.0 / (0.481 * 989e12) + 3e-6;
  const double intensity = 536870912.0 / (2.0 * (4096.0 * 256 + 256.0 * 256 + 256.0 * 4096));
  const double projection = 536870912.0 / (0.6 * intensity / (989e12 / 3350e9) * 989e12) + 3e-6;
  EXPECT_NEAR(l.step_compute_s, attention, 1e-15);
  EXPECT_NEAR(l.time_s, attention + projection, 1e-15);
  EXPECT_NEAR(l.time_s, 12.6662e-6, 1e-10);
  // With the fixed costs set to zero only the 6.66 us of work remains.
  Plan free = plan(load_inputs("tiny", "h100-sxm-8", "video-qa",
                               {"cluster.gpu.kernel_launch=0s", "cluster.gpu.ring_step_sync=0s"}));
  EXPECT_NEAR(free.layers[0].time_s, attention + projection - 6e-6, 1e-15);
}
