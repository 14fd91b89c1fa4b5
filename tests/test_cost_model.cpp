// Every cost formula against values computed by hand (shown in the comments).
#include <gtest/gtest.h>

#include "xring/planner/cost_model.hpp"
#include "xring/planner/strategy.hpp"

using namespace xring;

namespace {

/// Llama-3.2-11B-Vision cross-attention, 256 frames of 6404 tokens, 512 text tokens.
LayerShape llama_shape() {
  LayerShape s;
  s.batch = 1;
  s.heads = 32;
  s.kv_heads = 8;
  s.head_dim = 128;
  s.bytes = 2;
  s.s_q = 512;
  s.s_kv = 1639424;
  s.visual_hidden = 4096;
  return s;
}

/// A shape small enough to cost by hand: B=1 H=2 H_kv=1 d=4 b=2 S_Q=8 S_KV=16 D_v=4.
LayerShape small_shape() {
  LayerShape s;
  s.batch = 1;
  s.heads = 2;
  s.kv_heads = 1;
  s.head_dim = 4;
  s.bytes = 2;
  s.s_q = 8;
  s.s_kv = 16;
  s.visual_hidden = 4;
  return s;
}

Placement small_placement() {
  Placement p;
  p.ranks = 2;
  p.ring_link = {80, 0};  // 80 B/s, no latency
  p.all_to_all_link = {80, 0};
  p.attention_flop_per_s = 1024;  // one ring step (1024 FLOPs) takes 1 s
  p.matmul_flop_per_s = 512;      // the K/V projection of 8 tokens (512 FLOPs) takes 1 s
  return p;
}

}  // namespace

TEST(CostModel, Blocks) {
  EXPECT_EQ(block(10, 3), 4);
  EXPECT_EQ(block(9, 3), 3);
  EXPECT_EQ(block(1, 8), 1);
  EXPECT_EQ(block(512, 8), 64);
}

TEST(CostModel, AttentionFlops) {
  // 4 * 1 * 32 * 64 * 204928 * 128
  EXPECT_EQ(attention_forward_flops(llama_shape(), 64, 204928, 32), 214882582528.0);
  // 2 * 1 * 204928 * 4096 * (2 * 8 * 128)
  EXPECT_EQ(kv_projection_flops(llama_shape(), 204928), 3438121320448.0);
}

TEST(CostModel, BytesPerStep) {
  const LayerShape s = llama_shape();
  EXPECT_EQ(query_ring_forward_bytes(s, 8), 1056768.0);   // 64 * 32 * (2*128*2 + 4)
  EXPECT_EQ(query_ring_backward_bytes(s, 8), 2105344.0);  // 64 * 32 * (4*128*2 + 4)
  EXPECT_EQ(kv_ring_forward_bytes(s, 8), 839385088.0);    // 2 * 204928 * 8 * 128 * 2
  EXPECT_EQ(kv_ring_backward_bytes(s, 8), 1678770176.0);
}

TEST(CostModel, CrossoverAndHidingThresholds) {
  const LayerShape s = llama_shape();
  EXPECT_DOUBLE_EQ(query_ring_crossover_ratio(s), 0.25 * 256.0 / 258.0);
  // F = 1 TFLOP/s, BW = 1 GB/s: 1e12 * 516 / (512 * 1e9) and 1e12 * 8 * 2 / (2 * 32 * 1e9)
  EXPECT_DOUBLE_EQ(query_ring_hiding_block(s, 64, 1e12, {1e9, 0}), 1007.8125);
  EXPECT_DOUBLE_EQ(kv_ring_hiding_block(s, 204928, 1e12, {1e9, 0}), 250.0);
  // A 10 us latency must be hidden too: F·latency / (4·B·H·q·d) more keys per rank, i.e.
  // 1e7 / (4·32·64·128) = 9.5367431640625 for q = 64; for KV-ring 1e7 / (4·32·204928·128).
  EXPECT_DOUBLE_EQ(query_ring_hiding_block(s, 64, 1e12, {1e9, 1e-5}), 1017.3492431640625);
  EXPECT_NEAR(kv_ring_hiding_block(s, 204928, 1e12, {1e9, 1e-5}), 250.0029783707570, 1e-9);
}

TEST(CostModel, TransfersAndRings) {
  EXPECT_DOUBLE_EQ(transfer_s(1e9, {1e9, 1e-6}), 1.000001);
  EXPECT_EQ(transfer_s(0, {1e9, 1e-6}), 0.0);
  EXPECT_DOUBLE_EQ(all_to_all_s(800, 4, {100, 1}), 9.0);  // 800 * 3/4 / 100 + 3 latencies
  EXPECT_EQ(all_to_all_s(800, 1, {100, 1}), 0.0);
  EXPECT_DOUBLE_EQ(overlapped_ring_s(8, 1, 2, 0.5), 15.5);  // 1 + 7 * max(1, 2) + 0.5
  EXPECT_DOUBLE_EQ(overlapped_ring_s(4, 2, 1, 0), 8.0);     // compute-bound: 2 + 3 * 2
  EXPECT_DOUBLE_EQ(overlapped_ring_s(1, 3, 5, 9), 3.0);     // one rank: compute only
}

TEST(Strategies, QueryRingByHand) {
  // q block 4, kv block 8; step 4*1*2*4*8*4 = 1024 FLOPs = 1 s; Q+O+L 4*2*(16+4) = 160 B = 2 s;
  // O+L home 4*2*(8+4) = 96 B = 1.2 s; projection 1 s. 1 + (1 + 1*max(1,2) + 1.2) = 5.2 s.
  LayerCost c = strategy_unit(Strategy::query_ring).cost(small_shape(), small_placement());
  EXPECT_EQ(c.forward.steps, 2);
  EXPECT_DOUBLE_EQ(c.forward.step_compute_s, 1.0);
  EXPECT_DOUBLE_EQ(c.forward.bytes_per_step, 160.0);
  EXPECT_DOUBLE_EQ(c.forward.step_comm_s, 2.0);
  EXPECT_DOUBLE_EQ(c.forward.fixed_comm_s, 1.2);
  EXPECT_DOUBLE_EQ(c.forward.time_s, 5.2);
  EXPECT_DOUBLE_EQ(c.comm_s(), 3.2);
  EXPECT_EQ(c.backward.time_s, 0.0);
}

TEST(Strategies, KvRingByHand) {
  // K+V block 2*8*1*4*2 = 128 B = 1.6 s; 1 + (1 + 1.6) = 3.6 s.
  LayerCost c = strategy_unit(Strategy::kv_ring).cost(small_shape(), small_placement());
  EXPECT_DOUBLE_EQ(c.forward.bytes_per_step, 128.0);
  EXPECT_DOUBLE_EQ(c.forward.time_s, 3.6);
}

TEST(Strategies, TrainingAddsBackwardAndRecomputation) {
  Placement p = small_placement();
  p.training = true;
  LayerCost c = strategy_unit(Strategy::query_ring).cost(small_shape(), p);
  // step 2.5 s; Q,O,dO,dQ,L 4*2*(32+4) = 288 B = 3.6 s; dQ home 4*2*8 = 64 B = 0.8 s;
  // projection backward 2 s. 2 + (2.5 + 3.6 + 0.8) = 8.9 s.
  EXPECT_DOUBLE_EQ(c.backward.bytes_per_step, 288.0);
  EXPECT_DOUBLE_EQ(c.backward.time_s, 8.9);
  p.recompute = true;
  LayerCost r = strategy_unit(Strategy::query_ring).cost(small_shape(), p);
  EXPECT_DOUBLE_EQ(r.backward.time_s, 9.9);  // + one K/V projection
}

TEST(Strategies, FixedCostsPerKernelAndPerRingStep) {
  // Item 10: each kernel (attention step, projection GEMM) adds kernel_launch_s, each of the
  // P - 1 handoffs ring_step_sync_s. Launch 0.5 s, sync 0.25 s on the query-ring of
  // QueryRingByHand: projection 1 + 0.5; step 1 + 0.5 = 1.5 s vs transfer 2 s; tail 1.2 s:
  // 1.5 + (1.5 + 1 x max(1.5, 2) + 1.2) + 1 x 0.25 = 6.45 s.
  Placement p = small_placement();
  p.kernel_launch_s = 0.5;
  p.ring_step_sync_s = 0.25;
  LayerCost c = strategy_unit(Strategy::query_ring).cost(small_shape(), p);
  EXPECT_DOUBLE_EQ(c.forward.step_compute_s, 1.5);
  EXPECT_DOUBLE_EQ(c.forward.sync_s, 0.25);
  EXPECT_DOUBLE_EQ(c.forward.time_s, 6.45);
  // Single: attention 4 s + 0.5, projection 2 s + 0.5, no handoff: 7 s.
  p.ranks = 1;
  EXPECT_DOUBLE_EQ(strategy_unit(Strategy::single).cost(small_shape(), p).forward.time_s, 7.0);
}

TEST(Strategies, FrozenVisionEncoderDropsTheProjectionDx) {
  // Item 13: with nothing upstream of the visual tokens training, the K/V projection's backward
  // is dW alone (1 s instead of 2 s): 1 + (2.5 + 3.6 + 0.8) = 7.9 s (8.9 s with dX).
  Placement p = small_placement();
  p.training = true;
  p.visual_input_trains = false;
  LayerCost c = strategy_unit(Strategy::query_ring).cost(small_shape(), p);
  EXPECT_DOUBLE_EQ(c.backward.time_s, 7.9);
  p.recompute = true;  // + the recomputed forward projection, 1 s
  EXPECT_DOUBLE_EQ(strategy_unit(Strategy::query_ring).cost(small_shape(), p).backward.time_s, 8.9);
}

TEST(Strategies, MediaMaskCutsAttentionFlops) {
  // Item 13: a mask leaving half of the (query, key) pairs halves the attention: single, 4096
  // FLOPs x 0.5 = 2 s, projection 2 s: 4 s.
  Placement p = small_placement();
  p.ranks = 1;
  p.attention_density = 0.5;
  EXPECT_DOUBLE_EQ(strategy_unit(Strategy::single).cost(small_shape(), p).forward.time_s, 4.0);
}

TEST(Strategies, SingleHasNoCommunication) {
  Placement p = small_placement();
  p.ranks = 1;
  LayerCost c = strategy_unit(Strategy::single).cost(small_shape(), p);
  // 4*1*2*8*16*4 = 4096 FLOPs = 4 s; projection of 16 tokens = 2 s.
  EXPECT_DOUBLE_EQ(c.forward.time_s, 6.0);
  EXPECT_EQ(c.comm_s(), 0.0);
  EXPECT_FALSE(
      strategy_unit(Strategy::single).unsupported(small_shape(), small_placement()).empty());
}

TEST(Strategies, UlyssesByHand) {
  LayerShape s = small_shape();  // H=2, H_kv=1: at P=2 the kv head is replicated twice
  Placement p = small_placement();
  EXPECT_EQ(strategy_unit(Strategy::ulysses).unsupported(s, p), "");
  // in: Q 4*2*8 = 64 B + K,V 2*8*1*2*8 = 256 B -> 320 * 1/2 / 80 = 2 s; out: O 64 * 1/2 / 80 = 0.4
  // s compute 4*1*1*8*16*4 = 2048 FLOPs = 2 s; projection 1 s. Total 5.4 s.
  LayerCost c = strategy_unit(Strategy::ulysses).cost(s, p);
  EXPECT_DOUBLE_EQ(c.forward.fixed_comm_s, 2.4);
  EXPECT_DOUBLE_EQ(c.forward.time_s, 5.4);
  p.ranks = 4;  // 2 heads over 4 ranks
  EXPECT_NE(strategy_unit(Strategy::ulysses).unsupported(s, p).find("not divisible"),
            std::string::npos);
}

TEST(Strategies, HybridPicksTheCheaperInnerRing) {
  LayerShape s = llama_shape();
  Placement p;
  p.ranks = 32;
  p.ulysses_degree = 8;
  EXPECT_EQ(hybrid_inner_ring(s, p), Strategy::query_ring);  // S_Q/S_KV far below the crossover
  s.s_q = s.s_kv;
  EXPECT_EQ(hybrid_inner_ring(s, p), Strategy::kv_ring);
}

TEST(Strategies, MemoryOfQueryRingKeepsKvLocal) {
  LayerShape s = llama_shape();
  Placement p;
  p.ranks = 8;
  LayerMemory m = strategy_unit(Strategy::query_ring).memory(s, p);
  EXPECT_DOUBLE_EQ(m.kv, 839385088.0);                   // this rank's K/V block only
  EXPECT_DOUBLE_EQ(m.attention_buffers, 2 * 1056768.0);  // current + arriving Q/O/L
  EXPECT_DOUBLE_EQ(m.visual_tokens, 204928.0 * 4096 * 2);
  EXPECT_EQ(m.saved_for_backward, 0.0);
  p.training = true;
  p.recompute = true;
  m = strategy_unit(Strategy::query_ring).memory(s, p);
  EXPECT_DOUBLE_EQ(m.saved_for_backward, 64.0 * 32 * (256 + 4));  // O and L only
}
