// What a user of the `xring` binary expects (issue 20): recommendations that name the closest
// miss with the value it reached, gates that refuse to compare different inputs or misspelled
// rules, numbers that say "—" or null where nothing was measured, readable magnitudes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using xring::test::CliResult;
using xring::test::read_json_at;
using xring::test::run_xring;
using xring::test::scratch_path;
using xring::test::test_data;
using xring::test::write_text;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST(CliRecommend, ClosestIsTheSmallestMissAndSaysWhatItReached) {
  // The README's own example: an hour of video on H100 nodes cannot reach 1 s per iteration.
  // The closest shape is the fastest one (the biggest cluster), not the smallest.
  CliResult r = run_xring(
      "recommend --gpu h100-sxm --set workload.frames=3600 --require \"iteration_time_s<=1s\"");
  ASSERT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "the closest is h100-sxm 8x8 (64 GPUs")) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.output, m,
      std::regex(
          R"(iteration_time_s: required iteration_time_s<=1s, best reached ([0-9.]+) s \(([0-9.]+)% off\))")))
      << r.output;
  const double reached = std::stod(m[1]), off = std::stod(m[2]);
  EXPECT_GT(reached, 1.0);
  EXPECT_NEAR(off, 100 * (reached - 1.0), 0.6);  // both printed with 3 significant digits
}

TEST(CliRecommend, DecodeKeepsTheWorkloadsKvPolicyUnlessAsked) {
  const std::string base =
      "recommend --model llama-3-70b --workload fairkv-decode --gpu h100-sxm --max-gpus 16 "
      "--objective max_throughput_per_gpu";
  CliResult kept = run_xring(base);
  ASSERT_EQ(kept.exit_code, 0) << kept.output;
  EXPECT_TRUE(contains(kept.output,
                       "KV policy: the workload's own (adaptive); give --search "
                       "kv_policy to compare policies"))
      << kept.output;
  EXPECT_FALSE(contains(kept.output, "uniform")) << kept.output;
  CliResult searched = run_xring(base + " --search kv_policy");
  ASSERT_EQ(searched.exit_code, 0) << searched.output;
  EXPECT_TRUE(contains(searched.output, "KV policy: searched")) << searched.output;
  EXPECT_EQ(run_xring(base + " --search frames").exit_code, 2);
}

TEST(CliRecommend, CsvLeavesNumbersOfPrunedShapesEmpty) {
  fs::path csv = scratch_path("pruned.csv");
  CliResult r = run_xring("recommend --gpu h100-sxm --gpu a30 --max-gpus 16 --csv " + csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(read_text(csv));
  std::string line;
  std::getline(lines, line);
  int pruned = 0;
  while (std::getline(lines, line)) {
    if (line.find(",false,false,false,") == std::string::npos) continue;  // not evaluated
    ++pruned;
    EXPECT_TRUE(contains(line, ",false,false,false,,,,,false")) << line;
  }
  EXPECT_GT(pruned, 0) << read_text(csv);
}

TEST(CliGate, RefusesPlansOfTheSameNameButDifferentContent) {
  fs::path a = scratch_path("frames3600.plan.json"), b = scratch_path("frames7200.plan.json");
  ASSERT_EQ(run_xring("plan --set workload.frames=3600 -o " + a.string()).exit_code, 0);
  ASSERT_EQ(run_xring("plan --set workload.frames=7200 -o " + b.string()).exit_code, 0);
  CliResult r = run_xring("gate --baseline " + a.string() + " --current " + b.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "mismatched inputs")) << r.output;
  EXPECT_TRUE(contains(r.output, "workload.frames: 3600 -> 7200")) << r.output;
  EXPECT_EQ(run_xring("gate --baseline " + a.string() + " --current " + a.string()).exit_code, 0);
}

TEST(CliGate, RulesNamingNoMetricAreRefusedWithDidYouMean) {
  fs::path rules = scratch_path("typo-rules.json");
  write_text(rules, R"({"metrics": {"no_such_metric": {"relative": 0.1}}})");
  const std::string plans = " --baseline " + test_data("gate/plan_base.json") + " --current " +
                            test_data("gate/plan_pass.json");
  CliResult r = run_xring("gate --rules " + rules.string() + plans);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "has no metric \"no_such_metric\"")) << r.output;

  write_text(rules, R"({"metrics": {"layers.*.time_s": {"relative": 0.1}}})");
  r = run_xring("gate --rules " + rules.string() + " --baseline " +
                test_data("gate/report_noisy_base.json") + " --current " +
                test_data("gate/report_noisy_cur.json"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean \"layers.*.measured_time_s\"")) << r.output;
  // On plans the same family exists and gates.
  EXPECT_EQ(run_xring("gate --rules " + rules.string() + plans).exit_code, 0);
}

TEST(CliGate, CpuRunsDoNotGatePredictionErrorAgainstAGpuPlan) {
  fs::path plan = scratch_path("pe.plan.json"), base = scratch_path("pe-base.report.json"),
           cur = scratch_path("pe-cur.report.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --strategy kv_ring --ranks 2 -o " + plan.string()).exit_code, 0);
  ASSERT_EQ(run_xring("run " + plan.string() + " --json " + base.string()).exit_code, 0);
  json j = read_json_at(base);
  // The same run, measured 3x slower: a prediction error far beyond its ±0.1 default.
  j["measured"]["time_s"] = j["measured"]["time_s"].get<double>() * 3;
  write_text(cur, j.dump());
  fs::path rules = scratch_path("loose.json");
  write_text(rules, R"({"defaults": {"relative": 100}})");
  CliResult r = run_xring("gate --rules " + rules.string() + " --baseline " + base.string() +
                          " --current " + cur.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "not gated: a cpu run measured against the prediction for "
                       "h100-sxm-8"))
      << r.output;
  // A plan made from a device profile predicts this machine: then the error is gated.
  j["provenance"]["plan_device_profile"] = "cpu-profile.json";
  write_text(cur, j.dump());
  json b = read_json_at(base);
  b["provenance"]["plan_device_profile"] = "cpu-profile.json";
  write_text(base, b.dump());
  r = run_xring("gate --rules " + rules.string() + " --baseline " + base.string() + " --current " +
                cur.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(\| prediction_error \|.*REGRESSION)")))
      << r.output;
}

TEST(CliRun, UnmeasuredNumbersAreNullAndTheTableShowsSpreadAndSamples) {
  fs::path plan = scratch_path("spread.plan.json"), report = scratch_path("spread.report.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --strategy kv_ring --ranks 2 -o " + plan.string()).exit_code, 0);
  CliResult r = run_xring("run " + plan.string() + " --repeat 3 --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, " spread ")) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(±[0-9.]+ [mun]?s +3 )"))) << r.output;
  json j = read_json_at(report);
  for (const auto& l : j["layers"]) {
    // cpu backend: no one-rank GPU comparison was made.
    EXPECT_TRUE(l["monolithic_time_s"].is_null()) << l.dump();
    EXPECT_TRUE(l["ring_overhead"].is_null()) << l.dump();
    EXPECT_TRUE(l["derived_comm_s"].is_null()) << l.dump();
    EXPECT_GT(l["flop_per_s"].get<double>(), 0);
  }
}

TEST(CliDisplay, HumanTablesUsePrefixesAndDashesNotZerosOrExponents) {
  CliResult decode =
      run_xring("plan --model llama-3-70b --cluster h100-sxm-8 --workload fairkv-decode");
  ASSERT_EQ(decode.exit_code, 0) << decode.output;
  EXPECT_FALSE(std::regex_search(decode.output, std::regex(R"([0-9]e[+-][0-9])"))) << decode.output;
  EXPECT_TRUE(contains(decode.output, "cross-attention   — (no cross-attention layers)"))
      << decode.output;
  EXPECT_FALSE(contains(decode.output, " 0 ps")) << decode.output;

  CliResult stream = run_xring("plan --cluster h100-1 --workload video-stream");
  ASSERT_EQ(stream.exit_code, 0) << stream.output;
  EXPECT_FALSE(contains(stream.output, "0 visual tokens (0 frames)")) << stream.output;
  EXPECT_TRUE(contains(stream.output, "a video stream at")) << stream.output;
  EXPECT_FALSE(std::regex_search(stream.output, std::regex(R"([0-9]e[+-][0-9])"))) << stream.output;
}

TEST(CliDisplay, WhatifCsvHasSixSignificantDigitsAndTheStrategyShowsRecomputation) {
  fs::path csv = scratch_path("digits.csv");
  CliResult r = run_xring(
      "whatif --model tiny --set workload.phase=training --recompute --vary "
      "workload.frames=16,32 --csv " +
      csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "+recompute")) << r.output;
  EXPECT_FALSE(std::regex_search(read_text(csv), std::regex(R"([0-9]{8})"))) << read_text(csv);
}

TEST(CliHints, UnknownCommandsOptionsAndNamesSayWhatWasMeant) {
  CliResult r = run_xring("plna");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "unknown command \"plna\"; did you mean \"plan\"?")) << r.output;
  r = run_xring("plan --frames 3600");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "use --set workload.frames=3600")) << r.output;
  r = run_xring("plan --kv_budget=512");
  EXPECT_TRUE(contains(r.output, "use --set workload.kv_budget=512")) << r.output;
  r = run_xring("plan --modle tiny");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean --model?")) << r.output;
  r = run_xring("plan --model llama-3.2-11b");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "did you mean \"llama-3.2-11b-vision\"?")) << r.output;
}

TEST(CliPlot, GnuplotRunsWithoutAShellAndTheFormatFollowsTheExtension) {
  fs::path svg = scratch_path("bob's.svg"), png = scratch_path("frames.png");
  CliResult r =
      run_xring("whatif --model tiny --vary workload.frames=16,64 --plot \"" + svg.string() + "\"");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const fs::path script = scratch_path("bob's.gp");
  ASSERT_TRUE(fs::exists(script)) << r.output;
  EXPECT_TRUE(contains(read_text(script), "set output '" + scratch_path("bob''s.svg").string()))
      << read_text(script);
  r = run_xring("whatif --model tiny --vary workload.frames=16,64 --plot " + png.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(read_text(scratch_path("frames.gp")), "set terminal pngcairo"));
  if (!contains(r.output, "gnuplot is not installed")) {
    EXPECT_EQ(read_text(png).substr(1, 3), "PNG");  // the PNG signature, not an SVG
    EXPECT_TRUE(contains(read_text(svg), "<svg"));
  }
  r = run_xring("whatif --model tiny --vary workload.frames=16,64 --plot " +
                scratch_path("frames.jpg").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(contains(r.output, "give a .svg, .png or .pdf path")) << r.output;
  EXPECT_FALSE(fs::exists(scratch_path("frames.gp").replace_extension(".jpg")));
}

TEST(CliHelp, MessagesSayWhatToDo) {
  CliResult r = run_xring("--version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(^xring [0-9.]+ \(git [0-9a-z]+\))")))
      << r.output;
  r = run_xring("plan --set cluster.inter_node.bandwidth=50GB/s");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "this cluster has one node")) << r.output;
  EXPECT_TRUE(contains(r.output, "--set cluster.nodes=N")) << r.output;
  r = run_xring("show device x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "none is built in; give a path to a .json file")) << r.output;
  r = run_xring("import --help");
  EXPECT_TRUE(contains(r.output, "xring import hf config.json")) << r.output;
  EXPECT_FALSE(contains(r.output, "xring plan --model mplug-owl3-7b")) << r.output;
  r = run_xring("run --help");
  EXPECT_FALSE(contains(r.output, "not yet")) << r.output;
}

TEST(CliImport, NamesComeFromNameOrPathOrTheFlagAndVlmsAreExplained) {
  json config = read_json_at(test_data("hf/qwen2-7b.json"));
  config["_name_or_path"] = "Qwen/Qwen2-7B-Instruct";
  fs::path named = scratch_path("config.json");
  write_text(named, config.dump());
  fs::path spec = scratch_path("imported.json");
  CliResult r = run_xring("import hf " + named.string() + " -o " + spec.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json_at(spec)["name"], "qwen2-7b-instruct");
  r = run_xring("import hf " + named.string() + " --name mine -o " + spec.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json_at(spec)["name"], "mine");
  fs::path llava = scratch_path("llava.json");
  write_text(llava, R"({"model_type": "llava"})");
  r = run_xring("import hf " + llava.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "import its text_config")) << r.output;
}

TEST(CliDiff, ExitCodeAndJson) {
  fs::path a = scratch_path("diff-a.json"), b = scratch_path("diff-b.json");
  ASSERT_EQ(run_xring("plan -c a100-80gb-16 -o " + a.string()).exit_code, 0);
  ASSERT_EQ(
      run_xring("plan -c a100-80gb-16 --set cluster.inter_node.bandwidth=5GB/s -o " + b.string())
          .exit_code,
      0);
  EXPECT_EQ(run_xring("diff " + a.string() + " " + b.string()).exit_code, 0);
  EXPECT_EQ(run_xring("diff --exit-code " + a.string() + " " + b.string()).exit_code, 1);
  EXPECT_EQ(run_xring("diff --exit-code " + a.string() + " " + a.string()).exit_code, 0);
  CliResult r = run_xring("diff --json " + a.string() + " " + b.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output);
  EXPECT_EQ(j["schema_version"], 1);
  ASSERT_FALSE(j["differences"].empty());
  EXPECT_TRUE(contains(j["differences"][1].get<std::string>(),
                       "cluster.inter_node.bandwidth: \"25GB/s\" -> \"5GB/s\""))
      << j.dump();
}

TEST(CliGate, BenchmarkFormatsCarryTheCurrentNumbersAndTheirBounds) {
  const std::string plans = " --baseline " + test_data("gate/plan_base.json") + " --current " +
                            test_data("gate/plan_regressed.json") + " --title t";
  CliResult r = run_xring("gate --format bencher" + plans);
  EXPECT_EQ(r.exit_code, 1) << r.output;  // the verdict is the same whatever is printed
  json bencher = json::parse(r.output);
  const json& frames = bencher["t"]["frames_per_s"];
  // plan_regressed has 20% fewer frames/s than plan_base (4258 -> 3406), allowed ±5% of 4258.
  EXPECT_NEAR(frames["value"].get<double>(), 3406, 1);
  EXPECT_NEAR(frames["upper_value"].get<double>() - frames["lower_value"].get<double>(),
              2 * 0.05 * 4258, 1);
  r = run_xring("gate --format github-action-benchmark" + plans);
  json gab = json::parse(r.output);
  bool frames_bigger = false, time_smaller = false;
  for (const auto& e : gab["customBiggerIsBetter"]) frames_bigger |= e["name"] == "t: frames_per_s";
  for (const auto& e : gab["customSmallerIsBetter"])
    time_smaller |= e["name"] == "t: iteration_time_s";
  EXPECT_TRUE(frames_bigger) << gab.dump();
  EXPECT_TRUE(time_smaller) << gab.dump();
  EXPECT_EQ(run_xring("gate --format csv" + plans).exit_code, 2);
}
