// Plan JSON round trips exactly; enums round-trip; corrupt plans name the field.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/provenance.hpp"

using namespace xring;
using xring::test::error_of;

TEST(PlanJson, StrategyNamesRoundTrip) {
  for (const auto& unit : strategy_table())
    EXPECT_EQ(strategy_from_string(to_string(unit.strategy)), unit.strategy);
  EXPECT_NE(
      error_of([] { strategy_from_string("query-ring"); }).find("did you mean \"query_ring\""),
      std::string::npos);
}

TEST(PlanJson, RoundTripIsExactForEveryPhase) {
  for (const char* phase : {"prefill", "training", "decode", "streaming"}) {
    Inputs in = load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa",
                            {std::string("workload.phase=") + phase, "workload.generate_tokens=16",
                             "workload.stream_seconds=600", "workload.fps=2"});
    Plan p = plan(in);
    json j = to_json(p);
    Plan back = plan_from_json(j, "plan.json");
    EXPECT_EQ(to_json(back), j) << phase;
    // And through text, as a file would carry it.
    EXPECT_EQ(to_json(plan_from_json(json::parse(j.dump()), "plan.json")), j) << phase;
  }
}

TEST(PlanJson, InfeasiblePlanRoundTripsWithNullTimes) {
  Plan p =
      plan(load_inputs("llama-3.2-11b-vision", "h100-1", "video-qa", {"workload.frames=2048"}));
  ASSERT_FALSE(p.feasible);
  json j = to_json(p);
  EXPECT_TRUE(j["layers"][0]["alternatives"][0]["time_s"].is_null());
  EXPECT_EQ(to_json(plan_from_json(j, "p")), j);
}

TEST(PlanJson, HasTheFieldsTheIssueNames) {
  json j = to_json(plan(load_inputs(kDefaultModel, kDefaultCluster, kDefaultWorkload, {})));
  for (const char* key : {"schema_version", "inputs", "feasible", "layers", "predicted"})
    EXPECT_TRUE(j.contains(key)) << key;
  for (const char* key :
       {"strategy", "ranks", "compute_s", "comm_s", "time_s", "memory_bytes", "alternatives"})
    EXPECT_TRUE(j["layers"][0].contains(key)) << key;
  for (const char* key : {"iteration_time_s", "throughput_tokens_per_s", "frames_per_s",
                          "peak_memory_bytes_per_rank"})
    EXPECT_TRUE(j["predicted"].contains(key)) << key;
  for (const char* key : {"strategy", "time_s", "rejected_reason"})
    EXPECT_TRUE(j["layers"][0]["alternatives"][0].contains(key)) << key;
}

TEST(PlanJson, CorruptPlansNameTheField) {
  json good = to_json(plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {})));
  json j = good;
  j["schema_version"] = 99;
  EXPECT_NE(error_of([&] { plan_from_json(j, "p.json"); }).find("p.json: at \"schema_version\""),
            std::string::npos);
  j = good;
  j["layers"][1]["strategy"] = "quer_ring";
  std::string e = error_of([&] { plan_from_json(j, "p.json"); });
  EXPECT_NE(e.find("at \"layers[1].strategy\""), std::string::npos) << e;
  j = good;
  j["layers"][0]["memory_bytes"].erase("kv");
  e = error_of([&] { plan_from_json(j, "p.json"); });
  EXPECT_NE(e.find("at \"layers[0].memory_bytes.kv\": required field is missing"),
            std::string::npos)
      << e;
  j = good;
  j["predicted"]["frames_per_s"] = "fast";
  EXPECT_NE(error_of([&] { plan_from_json(j, "p.json"); }).find("predicted.frames_per_s"),
            std::string::npos);
  j = good;
  j["layers"][0]["time_s"] = -1;
  EXPECT_NE(error_of([&] { plan_from_json(j, "p.json"); }).find("layers[0].time_s"),
            std::string::npos);
}

TEST(Provenance, PlansRecordVersionRevisionHashesRatesAndDate) {
  Plan p = plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {}));
  const json& pr = p.provenance;
  EXPECT_EQ(pr["xring_version"], xring_version());
  EXPECT_FALSE(pr["git_revision"].get<std::string>().empty());
  EXPECT_EQ(pr["date"].get<std::string>().size(), 20u);  // 2026-11-23T23:47:24Z
  EXPECT_NE(pr["rates"].get<std::string>().find("datasheet"), std::string::npos);
  EXPECT_TRUE(pr["device_profile"].is_null());
  for (const char* key : {"model", "cluster", "workload"})
    EXPECT_EQ(pr["inputs"][key]["hash"].get<std::string>().size(), 16u) << key;
  // The hash follows the content: a changed field changes it, the same content keeps it.
  Plan same = plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {}));
  Plan other = plan(load_inputs("tiny", "h100-sxm-8", "video-qa", {"workload.frames=300"}));
  EXPECT_EQ(same.provenance["inputs"]["workload"]["hash"], pr["inputs"]["workload"]["hash"]);
  EXPECT_NE(other.provenance["inputs"]["workload"]["hash"], pr["inputs"]["workload"]["hash"]);
  EXPECT_EQ(other.provenance["inputs"]["model"]["hash"], pr["inputs"]["model"]["hash"]);
}

TEST(Provenance, DiffNamesTheChangedInputsAndLayers) {
  Plan a = plan(load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa", {}));
  Plan b = plan(load_inputs("mplug-owl3-7b", "a100-80gb-16", "video-qa",
                            {"cluster.inter_node.bandwidth=1GB/s"}));
  std::vector<std::string> d = explain_diff(a, b);
  auto has = [&](const std::string& needle) {
    for (const auto& line : d)
      if (line.find(needle) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("input cluster changed"));
  EXPECT_TRUE(has("cluster.inter_node.bandwidth: \"25GB/s\" -> \"1GB/s\""));
  EXPECT_FALSE(has("input model changed"));
  EXPECT_TRUE(has("layer 1 time_s"));
  EXPECT_TRUE(explain_diff(a, a).empty());
}
