// What-if sweeps: axis forms, Cartesian order, per-point plans, metrics.
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"
#include "xring/planner/sweep.hpp"

using namespace xring;
using xring::test::error_of;

TEST(Sweep, AxisForms) {
  SweepAxis list = parse_vary("workload.frames=16,64,256");
  EXPECT_EQ(list.field, "workload.frames");
  EXPECT_EQ(list.values, (std::vector<json>{16, 64, 256}));
  EXPECT_FALSE(list.geometric);
  SweepAxis geo = parse_vary("workload.frames=16..1024:x4");
  EXPECT_EQ(geo.values, (std::vector<json>{16, 64, 256, 1024}));
  EXPECT_TRUE(geo.geometric);
  SweepAxis arith = parse_vary("cluster.nodes=1..4:+1");
  EXPECT_EQ(arith.values, (std::vector<json>{1, 2, 3, 4}));
  SweepAxis strings = parse_vary("cluster.inter_node.bandwidth=12.5GB/s,25GB/s");
  EXPECT_EQ(strings.values, (std::vector<json>{"12.5GB/s", "25GB/s"}));
  EXPECT_NE(error_of([] { parse_vary("workload.frames"); }).find("missing '='"), std::string::npos);
  EXPECT_NE(error_of([] { parse_vary("workload.frames=16..1024"); }).find("needs a step"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_vary("workload.frames=16..1024:x1"); }).find("factor > 1"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_vary("workload.frames=1024..16:x2"); }).find("below start"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_vary("workoad.frames=1,2"); }).find("did you mean \"workload\""),
            std::string::npos);
}

TEST(Sweep, CartesianProductInOrderMatchesSinglePlans) {
  SweepRequest r;
  r.model = "mplug-owl3-7b";
  r.cluster = "a100-80gb-16";
  r.workload = "video-qa";
  r.axes = {parse_vary("workload.frames=16,256"), parse_vary("cluster.nodes=1,2,4")};
  r.threads = 2;
  std::vector<SweepPoint> points = run_sweep(r);
  ASSERT_EQ(points.size(), 6u);
  EXPECT_EQ(points[0].values, (std::vector<json>{16, 1}));
  EXPECT_EQ(points[1].values, (std::vector<json>{16, 2}));  // the last axis varies fastest
  EXPECT_EQ(points[5].values, (std::vector<json>{256, 4}));
  for (const auto& p : points) {
    Plan alone = plan(load_inputs(
        "mplug-owl3-7b", "a100-80gb-16", "video-qa",
        {"workload.frames=" + p.values[0].dump(), "cluster.nodes=" + p.values[1].dump()}));
    EXPECT_DOUBLE_EQ(metric(p.plan, "iteration_time_s"), *alone.predicted.iteration_time_s);
    EXPECT_EQ(strategy_label(p.plan), strategy_label(alone));
  }
}

TEST(Sweep, BadPointsAreNamed) {
  SweepRequest r;
  r.model = "tiny";
  r.cluster = "h100-sxm-8";
  r.workload = "video-qa";
  r.axes = {parse_vary("cluster.nodes=1,0")};
  // A value its spec refuses fails before any point is planned, naming the value and field.
  std::string e = error_of([&] { run_sweep(r, [](const SweepPoint&) { FAIL() << "planned"; }); });
  EXPECT_NE(e.find("--vary cluster.nodes=0: "), std::string::npos) << e;
  EXPECT_NE(e.find("at \"nodes\""), std::string::npos) << e;
  // What only the whole inputs refuse (a visual workload on a text-only model) stops the sweep
  // at its point, after the points before it were handed over.
  r.axes = {parse_vary("model.cross_attention_layers=[3],[]")};
  int planned = 0;
  e = error_of([&] { run_sweep(r, [&](const SweepPoint&) { ++planned; }); });
  EXPECT_EQ(planned, 1);
  EXPECT_NE(e.find("sweep point model.cross_attention_layers=[]: "), std::string::npos) << e;
}

TEST(Sweep, Metrics) {
  Plan prefill = plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {}));
  EXPECT_TRUE(std::isnan(metric(prefill, "decode_tokens_per_s")));
  EXPECT_GT(metric(prefill, "frames_per_s"), 0.0);
  EXPECT_NE(
      error_of([&] { metric(prefill, "frames_per_sec"); }).find("did you mean \"frames_per_s\""),
      std::string::npos);
  Plan decode = plan(load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {}));
  EXPECT_EQ(metric(decode, "decode_tokens_per_s"), *decode.predicted.decode_tokens_per_s);
  EXPECT_GE(metric(decode, "decode_gap"), 0.0);
  EXPECT_EQ(strategy_label(decode), "decode tp" + std::to_string(decode.decode->gpus) +
                                        " adaptive KV (fair_copying heads)");
  Plan trained =
      plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {"workload.phase=training"}), [] {
        PlannerOptions o;
        o.strategy = Strategy::kv_ring;
        o.ranks = 8;
        o.recompute = true;
        return o;
      }());
  EXPECT_EQ(strategy_label(trained), "kv_ring/8+recompute");
  for (const auto& name : default_metrics("decode"))
    EXPECT_FALSE(std::isnan(metric(decode, name))) << name;
}
