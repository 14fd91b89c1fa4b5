// Machine output and honest displays (issue 20): explain, recommend and validate as one
// schema_version'd JSON object each; validate's spread and sample count; no "0 visual tokens",
// "0 ps not hidden" or "0 frames/s" where those do not apply.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
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

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// The JSON object a command printed on stdout; stderr (progress lines, which hold no braces)
/// may surround it, since run_xring merges the two.
json printed_object(const CliResult& r) {
  const size_t begin = r.output.find("{\n");
  const size_t end = r.output.rfind('}');
  if (begin == std::string::npos || end == std::string::npos || end < begin)
    ADD_FAILURE() << "no JSON object in:\n" << r.output;
  return json::parse(r.output.substr(begin, end - begin + 1));
}

const std::string kCpuProfile = test_data("devices/cpu-epyc-2core.json");

}  // namespace

TEST(CliJson, ExplainIsOneObjectWithTheHandDerivedCrossover) {
  CliResult r = run_xring("explain --model tiny --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = printed_object(r);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["command"], "explain");
  EXPECT_EQ(j["model"], "tiny");
  EXPECT_EQ(j["layer"]["index"], 1);  // tiny's first cross-attention layer
  EXPECT_EQ(j["shape"]["s_q"], 512);
  EXPECT_EQ(j["shape"]["s_kv"], 4096);
  EXPECT_EQ(j["ring"]["ranks"], 8);  // single is explained against a ring over the cluster
  // (H_kv/H)·d·b/(d·b+2) = (2/4)·64·2/(64·2+2) = 64/130.
  EXPECT_NEAR(j["crossover"]["ratio"].get<double>(), 64.0 / 130.0, 1e-12);
  // Blocks of S_Q/P = 512/8 = 64 and S_KV/P = 4096/8 = 512.
  EXPECT_DOUBLE_EQ(j["crossover"]["block_ratio"].get<double>(), 64.0 / 512.0);
  EXPECT_EQ(j["crossover"]["fewer_bytes"], "query_ring");
  ASSERT_EQ(j["strategies"].size(), 2u);
  // kv_ring moves K and V: 2·B·H_kv·(S_KV/P)·d·b = 2·1·2·512·64·2; query_ring moves Q, O and
  // two fp32 statistics per row: B·H·(S_Q/P)·(2·d·b + 4) = 4·64·260.
  EXPECT_DOUBLE_EQ(j["strategies"][0]["forward_bytes_per_step"].get<double>(), 262144.0);
  EXPECT_DOUBLE_EQ(j["strategies"][1]["forward_bytes_per_step"].get<double>(), 66560.0);
  // Inference: the backward does not apply.
  EXPECT_TRUE(j["strategies"][0]["backward_bytes_per_step"].is_null());
  EXPECT_TRUE(j["hiding"]["query_ring"]["hidden"].is_boolean());

  CliResult t = run_xring("explain --model tiny --set workload.phase=training --json");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  EXPECT_GT(printed_object(t)["strategies"][0]["backward_bytes_per_step"].get<double>(), 0);
  // The text keeps its grammar for one rank, and "—" for backward bytes of an inference.
  const std::string text = run_xring("explain --model tiny").output;
  EXPECT_TRUE(contains(text, "chosen: single on 1 rank\n")) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("kv_ring +256 KiB +— +3\\.58 us"))) << text;

  // One GPU: no ring, so no link, transfer time or hiding threshold (null, "—").
  CliResult one = run_xring("explain --model tiny --cluster h100-1 --json");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  json o = printed_object(one);
  EXPECT_EQ(o["ring"]["ranks"], 1);
  EXPECT_TRUE(o["ring"]["link_bytes_per_s"].is_null());
  EXPECT_TRUE(o["strategies"][1]["forward_comm_per_step_s"].is_null());
  EXPECT_TRUE(o["hiding"]["query_ring"].is_null());
  EXPECT_TRUE(o["strategies"][0]["forward_bytes_per_step"].is_null());  // nothing moves
  EXPECT_TRUE(o["crossover"].is_null());
  const std::string one_text = run_xring("explain --model tiny --cluster h100-1").output;
  EXPECT_TRUE(contains(one_text, "one GPU: no ring and no transfers")) << one_text;
  EXPECT_TRUE(contains(one_text, "hiding:    — (one GPU: no transfers to hide)")) << one_text;
  EXPECT_TRUE(contains(one_text, "crossover: — (one GPU: nothing moves between ranks)"))
      << one_text;
  EXPECT_TRUE(std::regex_search(one_text, std::regex("kv_ring +— +— +— +[0-9.]+ [mu]s")))
      << one_text;
  EXPECT_FALSE(contains(one_text, "ring of P=1")) << one_text;
}

TEST(CliJson, RecommendPrintsTheRankedShapesOrTheClosestMiss) {
  CliResult r = run_xring("recommend --gpu h100-sxm --top 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = printed_object(r);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["command"], "recommend");
  EXPECT_TRUE(j["met"].get<bool>());
  EXPECT_TRUE(j["closest"].is_null());
  ASSERT_FALSE(j["recommendations"].empty());
  const json& best = j["recommendations"][0];
  EXPECT_EQ(best["rank"], 1);
  EXPECT_EQ(best["gpu"], "h100-sxm");
  EXPECT_EQ(best["gpus"].get<int>(), best["nodes"].get<int>() * best["gpus_per_node"].get<int>());
  EXPECT_TRUE(best["kv_policy"].is_null());  // not a decode workload
  EXPECT_GT(best["latency_s"].get<double>(), 0);
  EXPECT_LE(best["latency_interval_s"]["low"].get<double>(), best["latency_s"].get<double>());
  EXPECT_EQ(j["shapes"]["considered"].get<int>(),
            j["shapes"]["planned"].get<int>() + j["shapes"]["pruned"].get<int>());
  EXPECT_FALSE(contains(r.output, "xring recommend:"));  // no text beside the object

  // Nothing meets 10 ms: exit 1, the closest shape with the bound and the value it reached.
  CliResult miss = run_xring(
      "recommend --gpu h100-sxm --set workload.frames=3600 --require \"iteration_time_s<=0.01s\" "
      "--json");
  ASSERT_EQ(miss.exit_code, 1) << miss.output;
  json m = printed_object(miss);
  EXPECT_FALSE(m["met"].get<bool>());
  EXPECT_TRUE(m["recommendations"].empty());
  ASSERT_TRUE(m["closest"].is_object());
  EXPECT_EQ(m["closest"]["gpus"], 64);  // the fastest shape misses least
  const json& need = m["closest"]["misses"][0];
  EXPECT_EQ(need["metric"], "iteration_time_s");
  EXPECT_DOUBLE_EQ(need["bound"].get<double>(), 0.01);
  const double reached = need["reached"].get<double>();
  EXPECT_DOUBLE_EQ(m["closest"]["relative_miss"].get<double>(), (reached - 0.01) / 0.01);
}

TEST(CliJson, ValidatePrintsOneObjectWithSamplesSpreadAndVerdict) {
  CliResult r = run_xring("validate --device-profile " + kCpuProfile +
                          " --shape 16x256 --ranks 1 --repeat 3 --max-worst-error 1e-12 --json");
  ASSERT_EQ(r.exit_code, 1) << r.output;  // no measurement meets a 1e-12 bound
  json j = printed_object(r);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["command"], "validate");
  EXPECT_EQ(j["profile"], kCpuProfile);
  EXPECT_FALSE(j["passed"].get<bool>());
  ASSERT_EQ(j["failures"].size(), 1u);
  EXPECT_TRUE(contains(j["failures"][0].get<std::string>(), "exceeds --max-worst-error"));
  EXPECT_DOUBLE_EQ(j["bounds"]["max_worst_error"].get<double>(), 1e-12);
  EXPECT_TRUE(j["bounds"]["max_median_error"].is_null());
  ASSERT_EQ(j["points"].size(), 1u);
  const json& p = j["points"][0];
  ASSERT_EQ(p["measured_samples_s"].size(), 3u);
  EXPECT_EQ(p["samples"], 3);
  std::vector<double> s = p["measured_samples_s"].get<std::vector<double>>();
  std::sort(s.begin(), s.end());
  EXPECT_DOUBLE_EQ(p["measured_s"].get<double>(), s[1]);  // the median of three
  EXPECT_DOUBLE_EQ(p["spread_s"].get<double>(), (s[2] - s[0]) / 2);
  EXPECT_FALSE(contains(r.output, "median |error|"));  // the object instead of the table
}

TEST(CliJson, ValidateTableShowsSpreadAndSampleCountAndJsonFileStaysAFile) {
  const fs::path out = scratch_path("validate-d1.json");
  fs::remove(out);
  CliResult r = run_xring("validate --device-profile " + kCpuProfile +
                          " --shape 16x256 --ranks 1 --repeat 2 --json " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "    measured      spread   n    error")) << r.output;
  // The n column: 2 between the spread and the signed error, whatever their widths.
  EXPECT_TRUE(std::regex_search(r.output, std::regex(R"(s +2 +[+-][0-9])"))) << r.output;
  json j = read_json_at(out);
  EXPECT_EQ(j["command"], "validate");
  EXPECT_TRUE(j["passed"].get<bool>());
  EXPECT_EQ(j["points"][0]["samples"], 2);
  // One sample has no spread: null, "—" in the table.
  CliResult one = run_xring("validate --device-profile " + kCpuProfile +
                            " --shape 16x256 --ranks 1 --repeat 1 --json -");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_TRUE(printed_object(one)["points"][0]["spread_s"].is_null());
}

TEST(CliDisplays, TextOnlyDecodePlanShowsNoVisualClause) {
  CliResult r = run_xring("plan --model llama-3-70b --workload long-text");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "  decode, batch 4, 32768 text tokens\n")) << r.output;
  EXPECT_FALSE(contains(r.output, "visual tokens")) << r.output;
  EXPECT_FALSE(contains(r.output, "0 frames")) << r.output;
  EXPECT_TRUE(contains(r.output, "cross-attention   — (no cross-attention layers)")) << r.output;
  EXPECT_FALSE(contains(r.output, " 0 ps")) << r.output;
  // A video stream: its rate, not "0 visual tokens (0 frames)".
  CliResult stream = run_xring("plan --cluster h100-1 --workload video-stream");
  ASSERT_EQ(stream.exit_code, 0) << stream.output;
  EXPECT_TRUE(contains(stream.output, "256 text tokens + a video stream at 1 frames/s"))
      << stream.output;
  EXPECT_FALSE(contains(stream.output, "0 visual tokens")) << stream.output;
  // With frames the clause stays: video-qa at tiny's 16 tokens per frame.
  CliResult v = run_xring("plan --model tiny");
  EXPECT_TRUE(contains(v.output, "512 text tokens + 4096 visual tokens (256 frames)")) << v.output;
}

TEST(CliDisplays, HiddenGradientSyncIsNotZeroPicoseconds) {
  // llama-3.2-11b-vision training on 8 H100s: the ZeRO sync hides entirely behind backward.
  CliResult r = run_xring("plan --set workload.phase=training");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "all of it hidden by backward")) << r.output;
  EXPECT_FALSE(contains(r.output, "0 ps")) << r.output;
}

TEST(CliDisplays, DecodeRunShowsNoFramesFlopOrOverlapThatDoNotApply) {
  const fs::path plan = scratch_path("d1-long-text.plan.json");
  const fs::path report = scratch_path("d1-long-text.report.json");
  ASSERT_EQ(run_xring("plan --model tiny --workload long-text -o " + plan.string()).exit_code, 0);
  CliResult r = run_xring("run " + plan.string() + " --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_FALSE(contains(r.output, "frames/s")) << r.output;
  EXPECT_FALSE(contains(r.output, "0 FLOP/s")) << r.output;
  EXPECT_FALSE(contains(r.output, " 0%")) << r.output;  // no overlap to measure in decode
  // "decode/contiguous" widens the strategy column: "ranks" ends where the rows' rank counts do.
  const size_t header = r.output.find("  layer  strategy");
  const size_t row = r.output.find("decode/contiguous");
  ASSERT_NE(header, std::string::npos) << r.output;
  ASSERT_NE(row, std::string::npos) << r.output;
  const size_t row_start = r.output.rfind('\n', row) + 1;
  const size_t ranks_end = r.output.find("ranks", header) + 5 - header;
  EXPECT_EQ(r.output.substr(row_start + ranks_end - 1, 1), "2") << r.output;
  json j = read_json_at(report);
  EXPECT_TRUE(j["measured"]["frames_per_s"].is_null());
  EXPECT_TRUE(j["predicted"]["frames_per_s"].is_null());
  EXPECT_TRUE(j["predicted"]["flop_per_s"].is_null());
  EXPECT_GT(j["measured"]["throughput_tokens_per_s"].get<double>(), 0);
  // Each layer's rate counts its own work, so a layer never shows "—" while the run has a rate.
  ASSERT_FALSE(j["layers"].empty());
  for (const auto& l : j["layers"]) EXPECT_GT(l["flop_per_s"].get<double>(), 0) << l.dump();
  EXPECT_GT(j["measured"]["flop_per_s"].get<double>(), 0);
}

TEST(CliGate, JunitFailuresCarryTheirDetailsAndSuitesTheirCounts) {
  const fs::path xml = scratch_path("d1-gate.xml");
  CliResult r =
      run_xring("gate --baseline " + test_data("gate/report_noisy_base.json") + " --current " +
                test_data("gate/report_slow.json") + " --junit " + xml.string());
  ASSERT_EQ(r.exit_code, 1) << r.output;
  std::ifstream in(xml);
  const std::string x((std::istreambuf_iterator<char>(in)), {});
  // Both levels carry tests, failures, errors, skipped and time.
  const std::regex counts(
      "<(testsuites|testsuite) name=\"[^\"]*\" tests=\"7\" failures=\"4\" errors=\"0\" "
      "skipped=\"1\" time=\"([0-9.]+)\">");
  size_t levels = 0;
  for (auto it = std::sregex_iterator(x.begin(), x.end(), counts); it != std::sregex_iterator();
       ++it) {
    ++levels;
    EXPECT_GE(std::stod((*it)[2].str()), 0.0);
  }
  EXPECT_EQ(levels, 2u) << x;
  // prediction_error of a cpu run is not gated: skipped, with the reason.
  EXPECT_TRUE(contains(x,
                       "<testcase classname=\"xring.gate\" name=\"prediction_error\">\n"
                       "      <skipped message=\"not gated: a cpu run measured against the "
                       "prediction for its cluster\"/>\n    </testcase>"))
      << x;
  // time_s: 0.22 s -> 0.41 s; bound 3·hypot(1.4826·0.02, 1.4826·0.01) s = 99.46 ms.
  const size_t open = x.find("<testcase classname=\"xring.gate\" name=\"time_s\">");
  ASSERT_NE(open, std::string::npos) << x;
  const size_t body = x.find("\">", x.find("<failure ", open)) + 2;
  const std::string details = x.substr(body, x.find("</failure>", body) - body);
  EXPECT_EQ(details,
            "metric: time_s\nbaseline: 220 ms\ncurrent: 410 ms\nchange: ▲ +86.4%\nbound: "
            "±99.46 ms\nrule: noise: 3σ of 3+3 samples (σ = 1.4826·MAD) = ±99.46 ms, above "
            "the floor relative 5% of the baseline (built-in defaults)\n");
  size_t failures = 0;
  for (size_t at = x.find("<failure "); at != std::string::npos; at = x.find("<failure ", at + 1))
    ++failures;
  EXPECT_EQ(failures, 4u);
}

TEST(CliGate, RequirementFailureNamesTheBound) {
  const fs::path xml = scratch_path("d1-require.xml");
  CliResult r =
      run_xring("gate --plan " + test_data("gate/plan_base.json") +
                " --require \"peak_memory_bytes_per_rank<=10GiB\" --junit " + xml.string());
  ASSERT_EQ(r.exit_code, 1) << r.output;
  std::ifstream in(xml);
  const std::string x((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(contains(x, "requirement: peak_memory_bytes_per_rank&lt;=10GiB\n")) << x;
  EXPECT_TRUE(contains(x, "bound: 10 GiB\n")) << x;
  EXPECT_TRUE(contains(x, "rule: --require peak_memory_bytes_per_rank&lt;=10GiB\n")) << x;
}

TEST(CliGate, LoadedMachineRunsPassOnTheirSpreadAndTightOnesDoNot) {
  // Fixed reports of five samples each: the median 40% slower, inside 3σ of the spread.
  const std::string base = test_data("gate/report_loaded_base.json");
  CliResult r = run_xring("gate --baseline " + base + " --current " +
                          test_data("gate/report_loaded_cur.json"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output,
                       "| time_s | 110 ms | 154 ms | ▲ +40.0% | ±139 ms (noise: 3σ of "
                       "the samples) | pass |"))
      << r.output;
  // The same medians measured without spread: the 5% floor holds and +40% regresses.
  json tight_base = read_json_at(base),
       tight_cur = read_json_at(test_data("gate/report_loaded_cur.json"));
  for (json* j : {&tight_base, &tight_cur}) {
    const double t = (*j)["measured"]["time_s"].get<double>();
    (*j)["measured"]["samples_s"] = {t, t, t, t, t};
    (*j)["layers"][0]["measured_samples_s"] = {t, t, t, t, t};
  }
  const fs::path b = scratch_path("d1-tight-base.json"), c = scratch_path("d1-tight-cur.json");
  xring::test::write_text(b, tight_base.dump());
  xring::test::write_text(c, tight_cur.dump());
  CliResult tight = run_xring("gate --baseline " + b.string() + " --current " + c.string());
  EXPECT_EQ(tight.exit_code, 1) << tight.output;
  EXPECT_TRUE(
      contains(tight.output, "| time_s | 110 ms | 154 ms | ▲ +40.0% | ±5.5 ms | REGRESSION |"))
      << tight.output;
}
