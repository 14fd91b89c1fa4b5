// LV-XAttn's models on LV-XAttn's clusters (arXiv 2502.02406): the planner must pick the
// query-ring family (Q rotates, the visual K/V stay) and predict a cross-attention speedup over
// Ring Attention (KV-ring over every GPU, the paper's baseline) in a stated range.
//
// Setup: training, 2048 frames, 2048 text tokens, batch 1 — long video, short text, as in the
// paper. The paper reports up to 5.58x end to end for mPLUG-Owl3 (v1) and up to 10.62x for
// Llama 3-V on 16 A100s (v3); its per-configuration tables were not available to us, so the
// ranges below are first-principles ones:
//  - On the A100 clusters KV-ring sends 2·(S_KV/P)·H_kv·d·b per step over 25 GB/s and is
//    communication-bound, while query-ring's few MB per step hide under compute; the ratio is
//    about (KV-ring step transfer) / (step compute): 3x to 30x for these shapes.
//  - On the A30 cluster (1.25 GB/s) the same ratio is 20x larger per byte; the A30 computes
//    about half as fast, so 20x to 60x.
// End to end, the rest of the model (parameter sync, the vision encoder) dilutes the gain.
#include <gtest/gtest.h>

#include "xring/planner/planner.hpp"

using namespace xring;

namespace {

struct Speedup {
  LayerPlan chosen;
  double cross_attention = 0;
  double end_to_end = 0;
};

Speedup versus_ring_attention(const std::string& model, const std::string& cluster,
                              std::vector<std::string> sets) {
  Inputs in = load_inputs(model, cluster, "video-qa", sets);
  Plan best = plan(in);
  PlannerOptions ring;
  ring.strategy = Strategy::kv_ring;
  ring.ranks = in.cluster.gpus();
  Plan baseline = plan(in, ring);
  EXPECT_TRUE(best.feasible) << model << " on " << cluster;
  EXPECT_TRUE(baseline.feasible) << model << " on " << cluster;
  return {best.layers.front(),
          *baseline.predicted.cross_attention_time_s / *best.predicted.cross_attention_time_s,
          *baseline.predicted.iteration_time_s / *best.predicted.iteration_time_s};
}

bool query_ring_family(const LayerPlan& l) {
  return l.strategy == Strategy::query_ring ||
         (l.strategy == Strategy::hybrid && l.ring_kind == "query_ring");
}

const std::vector<std::string> kLongVideoTraining = {
    "workload.phase=training", "workload.frames=2048", "workload.text_tokens=2048"};

struct Case {
  const char* model;
  const char* cluster;
  double min_speedup;
  double max_speedup;
};

}  // namespace

TEST(PaperConfigs, LvXattnModelsOnLvXattnClusters) {
  const Case cases[] = {
      {"mplug-owl3-7b", "a100-80gb-16", 3, 30},   {"mplug-owl3-7b", "a100-40gb-12", 3, 30},
      {"mplug-owl3-7b", "a30-8", 20, 60},         {"mplug-owl3-2b", "a100-80gb-16", 3, 30},
      {"mplug-owl3-2b", "a30-8", 20, 60},         {"mplug-owl3-1b", "a100-80gb-16", 3, 30},
      {"mplug-owl3-1b", "a30-8", 20, 60},         {"openflamingo-9b", "a100-80gb-16", 3, 30},
      {"openflamingo-9b", "a100-40gb-12", 3, 30}, {"openflamingo-9b", "a30-8", 20, 60},
      {"openflamingo-3b", "a100-80gb-16", 3, 30}, {"openflamingo-3b", "a30-8", 20, 60},
  };
  for (const Case& c : cases) {
    Speedup s = versus_ring_attention(c.model, c.cluster, kLongVideoTraining);
    EXPECT_TRUE(query_ring_family(s.chosen))
        << c.model << " on " << c.cluster << " chose " << to_string(s.chosen.strategy);
    EXPECT_GE(s.cross_attention, c.min_speedup) << c.model << " on " << c.cluster;
    EXPECT_LE(s.cross_attention, c.max_speedup) << c.model << " on " << c.cluster;
    EXPECT_GT(s.end_to_end, 1.0) << c.model << " on " << c.cluster;
    EXPECT_LT(s.end_to_end, s.cross_attention) << c.model << " on " << c.cluster;
  }
}

// The LV-XAttn repository's Llama-3.2-Vision benchmark on 16 GPUs: 63 text tokens and 12 images
// per GPU, i.e. S_Q = 1008 and 192 images of 6404 tokens (S_KV = 1.23M).
TEST(PaperConfigs, Llama32VisionRepositoryBenchmark) {
  Speedup s = versus_ring_attention(
      "llama-3.2-11b-vision", "a100-80gb-16",
      {"workload.phase=training", "workload.frames=192", "workload.text_tokens=1008"});
  EXPECT_EQ(s.chosen.strategy, Strategy::query_ring);
  EXPECT_EQ(s.chosen.ranks, 16);
  EXPECT_GE(s.cross_attention, 8.0);
  EXPECT_LE(s.cross_attention, 20.0);
  EXPECT_GT(s.end_to_end, 2.0);
}

// Short visual inputs with long text flip the choice: KV-ring moves fewer bytes when
// S_Q/S_KV is above the crossover (H_kv/H)·d·b/(d·b+2).
TEST(PaperConfigs, LongTextShortVisualInputPrefersKvRing) {
  Inputs in = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa",
                          {"workload.frames=16", "workload.text_tokens=65536"});
  LayerShape s = cross_attention_shape(in.model, in.workload, 1);
  ASSERT_GT(static_cast<double>(s.s_q) / s.s_kv, query_ring_crossover_ratio(s));
  const LayerPlan l = plan(in).layers.front();
  EXPECT_TRUE(l.strategy == Strategy::kv_ring ||
              (l.strategy == Strategy::hybrid && l.ring_kind == "kv_ring") ||
              l.strategy == Strategy::ulysses)
      << to_string(l.strategy);
}
