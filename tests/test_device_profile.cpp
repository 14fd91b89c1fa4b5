// Device profiles: validation, the shape interpolation, and the planner's calibrated path on a
// recorded profile (tests/data/devices/).
#include <gtest/gtest.h>

#include <cmath>

#include "test_util.hpp"
#include "xring/planner/cost_model.hpp"
#include "xring/planner/device_profile.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/plan.hpp"
#include "xring/planner/planner.hpp"

namespace xring {
namespace {

using test::error_of;

json point(const char* pass, const char* dtype, int d, long long s_q, long long s_kv, double rate) {
  return {{"pass", pass},  {"dtype", dtype}, {"head_dim", d}, {"batch", 1},        {"heads", 32},
          {"kv_heads", 8}, {"s_q", s_q},     {"s_kv", s_kv},  {"flop_per_s", rate}};
}

/// A 2x2 forward bf16 d=128 grid: rate 100 at the small corner, 400 at the large one.
json grid_profile() {
  return {{"kind", "xring-device-profile"},
          {"schema_version", 1},
          {"device", {{"name", "test"}, {"backend", "cuda"}, {"compute_units", 132}}},
          {"attention",
           {point("forward", "bf16", 128, 100, 1000, 100),
            point("forward", "bf16", 128, 100, 100000, 200),
            point("forward", "bf16", 128, 10000, 1000, 300),
            point("forward", "bf16", 128, 10000, 100000, 400)}}};
}

std::string data(const std::string& name) { return std::string(XRING_TEST_DATA) + "/" + name; }

TEST(DeviceProfile, RoundTripsThroughJson) {
  DeviceProfile p = device_profile_from_json(grid_profile(), "test.json");
  p.hbm_bytes_per_s = 3e12;
  p.copy_latency_s = 5e-6;
  p.kernel_launch_s = 2e-6;
  p.ring_step_sync_s = 4e-6;
  p.matmul_flop_per_s = {{DType::bf16, 7e14}};
  p.nccl = {{1 << 20, 1e11, 1e-5}};
  DeviceProfile q = device_profile_from_json(to_json(p), "again.json");
  EXPECT_EQ(to_json(q), to_json(p));
  EXPECT_EQ(q.attention.size(), 4u);
  EXPECT_EQ(*q.matmul_rate(DType::fp16), 7e14);  // the other 16-bit type stands in
  EXPECT_FALSE(q.matmul_rate(DType::fp32));
}

TEST(DeviceProfile, ErrorsNameFileAndField) {
  auto with = [](const std::function<void(json&)>& edit) {
    json j = grid_profile();
    edit(j);
    return error_of([&] { device_profile_from_json(j, "p.json"); });
  };
  EXPECT_NE(with([](json& j) { j.erase("device"); }).find("p.json: at \"device\""),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["attention"][0]["kv_heads"] = 5; }).find("attention[0].kv_heads"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["attention"][1]["s_qq"] = 5; }).find("did you mean \"s_q\""),
            std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["bandwidth"] = {{"hbm_bytes_per_s", "3TB/s"}};
            }).find("bandwidth.hbm_bytes_per_s"),
            std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["nccl"] = {{{"bytes", 0}, {"bytes_per_s", 1}}};
            }).find("nccl[0].bytes"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j = json::array(); }).find("p.json"), std::string::npos);
}

TEST(DeviceProfile, InterpolatesInLogSpaceAndClampsAtTheEdges) {
  const DeviceProfile p = device_profile_from_json(grid_profile(), "t");
  auto rate = [&](double q_rows, double s_kv) {
    return *p.attention_flop_per_s(Pass::forward, DType::bf16, 128, false, q_rows, s_kv);
  };
  // Grid points (q_rows = 32 heads x S_Q).
  EXPECT_DOUBLE_EQ(rate(3200, 1000), 100);
  EXPECT_DOUBLE_EQ(rate(320000, 100000), 400);
  // Geometric midpoints: halfway in log space on each axis.
  EXPECT_NEAR(rate(3200, 10000), 150, 1e-9);
  EXPECT_NEAR(rate(32000, 1000), 200, 1e-9);
  EXPECT_NEAR(rate(32000, 10000), 250, 1e-9);
  // Outside the grid the nearest edge holds.
  EXPECT_DOUBLE_EQ(rate(1, 1), 100);
  EXPECT_DOUBLE_EQ(rate(1e9, 1e9), 400);
  EXPECT_NEAR(rate(1e9, 10000), 350, 1e-9);
}

TEST(DeviceProfile, FallsBackToTheNearestMeasuredKey) {
  json j = grid_profile();
  j["attention"].push_back(point("forward", "bf16", 64, 100, 1000, 50));
  j["attention"].push_back(point("backward", "fp16", 128, 100, 1000, 70));
  const DeviceProfile p = device_profile_from_json(j, "t");
  std::string basis;
  // fp16 forward: no fp16 forward grid, so bf16's.
  EXPECT_DOUBLE_EQ(
      *p.attention_flop_per_s(Pass::forward, DType::fp16, 128, false, 3200, 1000, &basis), 100);
  EXPECT_NE(basis.find("forward bf16 d=128"), std::string::npos) << basis;
  // Head dim 96: nearest measured is 64 or 128 (equal distance: the first found, 128).
  EXPECT_DOUBLE_EQ(*p.attention_flop_per_s(Pass::forward, DType::bf16, 80, false, 3200, 1000), 50);
  // bf16 backward: fp16 backward before bf16 forward.
  EXPECT_DOUBLE_EQ(*p.attention_flop_per_s(Pass::backward, DType::bf16, 128, false, 3200, 1000),
                   70);
  // fp32 has nothing to stand in for it; causal was not measured.
  EXPECT_FALSE(p.attention_flop_per_s(Pass::forward, DType::fp32, 128, false, 3200, 1000));
  EXPECT_FALSE(p.attention_flop_per_s(Pass::forward, DType::bf16, 128, true, 3200, 1000));
}

TEST(DeviceProfile, PlannerUsesTheProfileRatesByShape) {
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {});
  const Plan datasheet = plan(in);  // h100-sxm has a published efficiency table
  EXPECT_EQ(datasheet.cost_source.kind, "published");
  attach_device_profile(in, load_spec_json(SpecKind::device, data("devices/cpu-epyc-2core.json")));
  const Plan calibrated = plan(in);
  EXPECT_EQ(calibrated.cost_source.kind, "device_profile");
  EXPECT_TRUE(calibrated.inputs.contains("device_profile"));
  EXPECT_EQ(calibrated.provenance["device_profile"]["name"], in.device_profile->device);
  bool noted = false;
  for (const auto& n : calibrated.notes)
    noted |= n.find("interpolated by shape") != std::string::npos;
  EXPECT_TRUE(noted);
  // The chosen layer's compute is its FLOPs at the interpolated rate of each step's shape.
  const LayerPlan& layer = calibrated.layers.at(0);
  const LayerShape s = cross_attention_shape(in.model, in.workload, layer.batch_per_group);
  const long long q = layer.strategy == Strategy::kv_ring || layer.strategy == Strategy::query_ring
                          ? block(s.s_q, layer.ranks)
                          : s.s_q;
  const long long kv = layer.strategy == Strategy::single ? s.s_kv : block(s.s_kv, layer.ranks);
  if (layer.strategy == Strategy::kv_ring || layer.strategy == Strategy::query_ring) {
    const double rate =
        *in.device_profile->attention_flop_per_s(Pass::forward, in.model.dtype, s.head_dim, false,
                                                 double(s.batch) * s.heads * q, double(kv));
    const Placement pl = placement_for(in, layer.strategy, layer.ranks, 1, false);
    EXPECT_NEAR(attention_s(s, q, kv, s.heads, pl, Pass::forward),
                attention_forward_flops(s, q, kv, s.heads) / rate, 1e-12);
  }
  // A CPU is some 10^4 times slower than an H100's datasheet x 0.5.
  EXPECT_GT(*calibrated.predicted.cross_attention_time_s,
            1000 * *datasheet.predicted.cross_attention_time_s);
}

TEST(DeviceProfile, PlanFilesReplayWithTheirProfile) {
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {});
  attach_device_profile(in, load_spec_json(SpecKind::device, data("devices/cpu-epyc-2core.json")));
  const Plan p = plan(in);
  const Plan back = plan_from_json(to_json(p), "p.json");
  const Inputs replay = plan_inputs(back, "p.json");
  ASSERT_TRUE(replay.device_profile);
  EXPECT_EQ(to_json(*replay.device_profile), to_json(*in.device_profile));
  const Plan again = plan(replay);
  EXPECT_DOUBLE_EQ(*again.predicted.iteration_time_s, *p.predicted.iteration_time_s);
}

TEST(DeviceProfile, MeasuredFixedCostsOverrideTheGpuSpec) {
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {});
  const Placement spec = placement_for(in, Strategy::query_ring, 4, 1, false);
  EXPECT_EQ(spec.kernel_launch_s, 3e-6);  // kDefaultKernelLaunchS (CUDA Graphs blog, ~2.9 us)
  EXPECT_EQ(spec.ring_step_sync_s, 3e-6);
  json j = grid_profile();
  j["fixed_costs"] = {{"kernel_launch_s", 2e-6}, {"ring_step_sync_s", 4e-6}};
  attach_device_profile(in, SpecJson{j, "p.json"});
  const Placement measured = placement_for(in, Strategy::query_ring, 4, 1, false);
  EXPECT_EQ(measured.kernel_launch_s, 2e-6);
  EXPECT_EQ(measured.ring_step_sync_s, 4e-6);
  j["fixed_costs"]["kernel_launch_s"] = -1;
  EXPECT_NE(
      error_of([&] { device_profile_from_json(j, "p.json"); }).find("fixed_costs.kernel_launch_s"),
      std::string::npos);
}

TEST(DeviceProfile, ComputeShareSlowsEveryRankAlike) {
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {});
  const Placement full = placement_for(in, Strategy::query_ring, 4, 1, false);
  in.compute_share = 0.25;
  const Placement shared = placement_for(in, Strategy::query_ring, 4, 1, false);
  const LayerShape s = cross_attention_shape(in.model, in.workload, 1);
  // The kernel's fixed launch cost is per launch, not shared: only the work scales.
  const double launch = full.kernel_launch_s;
  EXPECT_EQ(shared.kernel_launch_s, launch);
  EXPECT_NEAR(attention_s(s, 64, 512, s.heads, shared, Pass::forward) - launch,
              4 * (attention_s(s, 64, 512, s.heads, full, Pass::forward) - launch), 1e-15);
  EXPECT_NEAR(
      attention_s(s, 64, 512, s.heads, full, Pass::backward) - launch,
      kBackwardFlopsFactor * (attention_s(s, 64, 512, s.heads, full, Pass::forward) - launch),
      1e-15);
}

}  // namespace
}  // namespace xring
