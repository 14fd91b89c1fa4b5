// The `xring` binary end to end: every bad-input file exits 2 naming its field, outputs are
// all-or-nothing, and the good paths print and write what they promise.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_test_util.hpp"
#include "gpu_skip.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using xring::test::CliResult;
using xring::test::read_json_at;
using xring::test::run_xring;
using xring::test::scratch_path;
using xring::test::test_data;
using xring::test::xring_binary;

namespace {

/// Whether this machine has an NVIDIA GPU (the tests that expect "no GPU" skip there; the GPU
/// paths are checked by scripts/gpu-check.sh and the GPU gtests).
bool gpu_present() { return std::system("nvidia-smi -L > /dev/null 2>&1") == 0; }

}  // namespace

TEST(Cli, EveryBadInputFileExitsTwoAndNamesTheField) {
  std::ifstream manifest(test_data("bad/cases.json"));
  json cases = json::parse(manifest);
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    std::string file = test_data("bad/" + c["file"].get<std::string>());
    std::string flag = c["flag"];
    fs::path out = scratch_path("never-written.json");
    std::string args =
        flag == "plan" ? "show plan " + file : "plan " + flag + " " + file + " -o " + out.string();
    CliResult r = run_xring(args);
    EXPECT_EQ(r.exit_code, 2) << c["file"] << "\n" << r.output;
    EXPECT_NE(r.output.find(c["file"].get<std::string>()), std::string::npos)
        << "the message must name the file\n"
        << r.output;
    for (const auto& needle : c["expect"])
      EXPECT_NE(r.output.find(needle.get<std::string>()), std::string::npos)
          << c["file"] << ": expected " << needle << " in\n"
          << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "a failed plan must not leave an output file";
  }
}

TEST(Cli, DefaultPlanRunsWithNoArguments) {
  CliResult r = run_xring("plan");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("llama-3.2-11b-vision on h100-sxm-8"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("feasible: yes"), std::string::npos);
  EXPECT_NE(r.output.find("query_ring"), std::string::npos);
}

// Issue 18: the trace of a 256-rank ring (262,400 events step by step, 39 MB) is streamed with
// each layer's ring steps merged, and says so on stderr and in otherData.
TEST(Cli, TracePastTenMegabytesMergesRingStepsAndSaysSo) {
  fs::path trace = scratch_path("ring256.trace.json");
  CliResult r = run_xring(
      "plan -c h100-sxm-32 --set cluster.nodes=32 --set workload.frames=1562 --strategy "
      "query_ring --ranks 256 --trace " +
      trace.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(trace.string() +
                          ": each layer's ring steps are one slice per rank and lane (1792 "
                          "events): step by step the trace would pass 10 MB"),
            std::string::npos)
      << r.output;
  EXPECT_LT(fs::file_size(trace), 10u * 1000 * 1000);
  const json t = read_json_at(trace);
  EXPECT_TRUE(t["otherData"]["steps_merged"].get<bool>());
  EXPECT_TRUE(t["otherData"]["merge_note"].is_string());
  // 64 ranks drawn x (3 metadata + 8 layers x (projections, steps, transfer) + rest of model).
  EXPECT_EQ(t["traceEvents"].size(), 64u * (3 + 8 * 3 + 1));
  int merged = 0;
  for (const auto& e : t["traceEvents"])
    if (e["name"] == "layer 3 query_ring steps 0-255") {
      ++merged;
      EXPECT_EQ(e["args"]["count"], 256);
    }
  EXPECT_EQ(merged, 64);
}

TEST(Cli, WritesPlanAndTraceThatReadBack) {
  fs::path plan = scratch_path("plan.json"), trace = scratch_path("plan.trace.json");
  CliResult r =
      run_xring("plan --model mplug-owl3-7b --cluster a100-80gb-16 --set workload.frames=512 -o " +
            plan.string() + " --trace " + trace.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json p = read_json_at(plan);
  EXPECT_EQ(p["schema_version"], 1);
  EXPECT_EQ(p["inputs"]["workload"]["frames"], 512);
  EXPECT_EQ(p["inputs"]["overrides"][0], "workload.frames=512");
  EXPECT_TRUE(read_json_at(trace)["traceEvents"].is_array());
  CliResult shown = run_xring("show plan " + plan.string());
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("mplug-owl3-7b on a100-80gb-16"), std::string::npos);

  // A plan with a corrupted field is refused with its path.
  p["layers"][0]["strategy"] = "quer_ring";
  fs::path bad = scratch_path("bad-plan.json");
  std::ofstream(bad) << p.dump();
  CliResult refused = run_xring("show plan " + bad.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("layers[0].strategy"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("did you mean \"query_ring\""), std::string::npos)
      << refused.output;
  // So is a plan whose echoed inputs were edited into nonsense.
  json q = read_json_at(plan);
  q["inputs"]["cluster"]["nodes"] = 0;
  std::ofstream(bad) << q.dump();
  refused = run_xring("show plan " + bad.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("inputs.cluster"), std::string::npos) << refused.output;
}

TEST(Cli, JsonGoesToStdout) {
  CliResult r = run_xring("plan --model tiny --json");
  ASSERT_EQ(r.exit_code, 0);
  json p = json::parse(r.output);
  EXPECT_EQ(p["inputs"]["model"]["name"], "tiny");
}

TEST(Cli, InfeasibleIsExitZeroWithReasons) {
  CliResult r = run_xring("plan --cluster h100-1 --set workload.frames=4096");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("feasible: NO"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not fit"), std::string::npos);
}

TEST(Cli, BadFlagsAndOverridesExitTwo) {
  for (const char* args :
       {"plan --model no-such-model", "plan --set workload.frames", "plan --set workload.frame=3",
        "plan --strategy ring", "plan --ranks 3", "plan --bogus", "plan --recompute",
        "explain --layer 4", "plan --model /nonexistent/model.json", "show model nope"}) {
    CliResult r = run_xring(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  }
}

TEST(Cli, ListShowAndExplain) {
  CliResult list = run_xring("list");
  ASSERT_EQ(list.exit_code, 0);
  for (const char* name :
       {"llama-3.2-11b-vision", "openflamingo-3b", "a30-8", "h100-sxm-32", "image-chat"})
    EXPECT_NE(list.output.find(name), std::string::npos) << name;
  CliResult show = run_xring("show cluster a30-8");
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_EQ(json::parse(show.output)["inter_node"]["bandwidth"], "1.25GB/s");
  CliResult explain = run_xring("explain --model openflamingo-9b --cluster a30-8");
  ASSERT_EQ(explain.exit_code, 0) << explain.output;
  EXPECT_NE(explain.output.find("crossover"), std::string::npos);
  EXPECT_NE(explain.output.find("hide once"), std::string::npos);
}

TEST(Cli, HelpTeachesAndExitsZero) {
  CliResult r = run_xring("plan --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--set"), std::string::npos);
  EXPECT_NE(r.output.find("Examples"), std::string::npos);
}

TEST(Cli, WhatifWritesCsvAndAPlotScript) {
  fs::path csv = scratch_path("sweep.csv"), svg = scratch_path("sweep.svg"), gp = scratch_path("sweep.gp");
  CliResult r = run_xring(
      "whatif --model mplug-owl3-7b --cluster a100-80gb-16 --vary workload.frames=16..256:x4 "
      "--vary cluster.nodes=1,4 --csv " +
      csv.string() + " --plot " + svg.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("workload.frames,cluster.nodes,strategy,feasible,iteration_time_s", 0), 0u)
      << header;
  int rows = 0;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 3 * 2);
  ASSERT_TRUE(fs::exists(gp));
  std::ifstream script(gp);
  std::string text((std::istreambuf_iterator<char>(script)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("set logscale x"), std::string::npos);
  EXPECT_NE(text.find("set label"), std::string::npos);  // strategy marks
  if (std::system("gnuplot --version > /dev/null 2>&1") == 0) {
    ASSERT_TRUE(fs::exists(svg));
    std::ifstream s(svg);
    std::string first((std::istreambuf_iterator<char>(s)), std::istreambuf_iterator<char>());
    EXPECT_NE(first.find("<svg"), std::string::npos);
  }
  // Without gnuplot the script is still written, and the command still succeeds.
  fs::remove(gp);
  CliResult fallback = run_xring("whatif --model tiny --vary workload.frames=1,2 --plot " + svg.string() +
                          " 2>&1; XRING_GNUPLOT=/nonexistent " + std::string(XRING_BINARY) +
                          " whatif --model tiny --vary workload.frames=1,2 --plot " + svg.string());
  EXPECT_EQ(fallback.exit_code, 0) << fallback.output;
  EXPECT_NE(fallback.output.find("gnuplot is not installed"), std::string::npos) << fallback.output;
  EXPECT_TRUE(fs::exists(gp));
}

TEST(Cli, WhatifBadInputExitsTwo) {
  for (const char* args :
       {"whatif", "whatif --vary workload.frames=", "whatif --vary workload.frames=1..8",
        "whatif --vary workload.frames=1,2 --metric nope", "whatif --vary cluster.nodes=0"}) {
    CliResult r = run_xring(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  }
}

TEST(Cli, DecodeAndStreamingSectionsUseTheDocumentedNames) {
  CliResult d = run_xring("plan --model llama-3-70b --workload fairkv-decode --json");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  json p = json::parse(d.output);
  EXPECT_EQ(p["decode"]["chosen"], "fair_copying");
  for (const auto& placement : p["decode"]["placements"])
    for (const char* key : {"placement", "tokens_per_s", "max_gpu_load_bytes"})
      EXPECT_TRUE(placement.contains(key)) << key;
  ASSERT_EQ(p["decode"]["heads"].size(), 80u * 8);
  for (const char* key : {"layer", "head", "budget_tokens", "gpus"})
    EXPECT_TRUE(p["decode"]["heads"][0].contains(key)) << key;
  CliResult s =
      run_xring("plan --model llama-3.2-11b-vision --cluster h100-1 --workload video-stream --json");
  ASSERT_EQ(s.exit_code, 0) << s.output;
  json q = json::parse(s.output);
  ASSERT_EQ(q["streaming"]["policies"].size(), 3u);
  for (const auto& policy : q["streaming"]["policies"])
    for (const char* key : {"policy", "peak_memory_bytes", "tokens_per_s", "oom_at_s"})
      EXPECT_TRUE(policy.contains(key)) << key;
  EXPECT_TRUE(q["streaming"]["policies"][0]["oom_at_s"].is_number());  // full runs out
  EXPECT_TRUE(q["streaming"]["policies"][1]["oom_at_s"].is_null());    // inf_mllm does not
}

TEST(Cli, HeadsSynthAndBuild) {
  fs::path out = scratch_path("synth.json");
  CliResult r = run_xring("heads synth --model mistral-small-24b --sigma 0.5 --seed 3 -o " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json p = read_json_at(out);
  EXPECT_EQ(p["layers"], 40);
  EXPECT_EQ(p["shares"].size(), 40u);
  fs::path scores = scratch_path("scores.json"), built = scratch_path("built.json");
  std::ofstream(scores)
      << R"({"model": "tiny", "source": "test", "scores": [[[3, 2, 1], [0.5, 0.25, 0.125]],)"
      << R"( [[1, 2], [4]]]})";  // tiny: 2 self-attention layers x 2 kv heads
  r = run_xring("heads build " + scores.string() + " --bins 4 -o " + built.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_json_at(built)["histograms"].size(), 2u);
  EXPECT_EQ(read_json_at(built)["model"], "tiny");
  std::ofstream(scores) << R"({"model": "tiny", "source": "test", "scores": [[[3, "x"]]]})";
  r = run_xring("heads build " + scores.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("scores[0][0]"), std::string::npos) << r.output;
}

TEST(Cli, RunExecutesVerifiesAndReports) {
  for (const char* strategy : {"query_ring", "kv_ring", "ulysses"}) {
    fs::path plan = scratch_path(std::string("run-") + strategy + ".json"),
             report = scratch_path("report.json"), trace = scratch_path("run.trace.json");
    CliResult p = run_xring(
        "plan --model tiny --cluster h100-sxm-8 --set workload.frames=7 --set "
        "workload.text_tokens=33 "
        "--set workload.phase=training --strategy " +
        std::string(strategy) + " --ranks 2 -o " + plan.string());
    ASSERT_EQ(p.exit_code, 0) << p.output;
    CliResult r = run_xring("run " + plan.string() + " --seed 3 --json " + report.string() + " --trace " +
                     trace.string());
    ASSERT_EQ(r.exit_code, 0) << r.output;
    json j = read_json_at(report);
    EXPECT_EQ(j["schema_version"], 1);
    EXPECT_EQ(j["verified"], true);
    for (const char* key : {"max_abs_error", "max_rel_error", "tolerance"})
      EXPECT_TRUE(j[key].is_number()) << key;
    ASSERT_EQ(j["layers"].size(), 2u);
    for (const auto& l : j["layers"]) {
      EXPECT_EQ(l["strategy"], strategy);
      EXPECT_EQ(l["ranks"], 2);
      EXPECT_GT(l["measured_time_s"].get<double>(), 0.0);
      EXPECT_GT(l["predicted_time_s"].get<double>(), 0.0);
      EXPECT_EQ(l["s_kv"], 7 * 16);
    }
    EXPECT_GT(j["measured"]["throughput_tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(j["predicted"]["throughput_tokens_per_s"].get<double>(), 0.0);
    EXPECT_TRUE(read_json_at(trace)["traceEvents"].is_array());
  }
}

TEST(Cli, RunVerifiesOnEveryCpuKernelVariantXringCpuIsaForces) {
  // The blocked cpu kernels per instruction set (issue 18): each one this CPU runs verifies a
  // training run (forward and backward), the header and the report's provenance name it; one it
  // lacks exits 2 saying so; an unknown name exits 2 naming the variable and the choices, writing
  // no report.
  fs::path plan = scratch_path("run-isa.json"), report = scratch_path("run-isa.report.json");
  ASSERT_EQ(run_xring("plan --model tiny --set workload.frames=5 --set workload.text_tokens=37 --set "
                  "workload.phase=training --strategy query_ring --ranks 4 -o " +
                  plan.string())
                .exit_code,
            0);
  int ran = 0;
  for (const char* isa : {"baseline", "avx2", "avx512"}) {
    ::setenv("XRING_CPU_ISA", isa, 1);
    fs::remove(report);
    CliResult r = run_xring("run " + plan.string() + " --seed 5 --json " + report.string());
    ::unsetenv("XRING_CPU_ISA");
    if (r.exit_code == 2) {
      EXPECT_NE(r.output.find(std::string("XRING_CPU_ISA=") + isa + ": this CPU does not run"),
                std::string::npos)
          << r.output;
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << isa << "\n" << r.output;
    EXPECT_NE(r.output.find(std::string("cpu backend (") + isa + " kernels, seed 5"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("verified   yes"), std::string::npos) << r.output;
    EXPECT_EQ(read_json_at(report)["provenance"]["cpu_kernels"], isa);
    ++ran;
  }
  EXPECT_GE(ran, 1);  // baseline runs on every x86-64
  fs::remove(report);
  ::setenv("XRING_CPU_ISA", "avx9000", 1);
  CliResult bad = run_xring("run " + plan.string() + " --json " + report.string());
  ::unsetenv("XRING_CPU_ISA");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("XRING_CPU_ISA=avx9000: unknown instruction set; use baseline, avx2 "
                            "or avx512"),
            std::string::npos)
      << bad.output;
  EXPECT_FALSE(fs::exists(report));
}

TEST(Cli, RunRefusesWhatItCannotRunWithoutWritingAReport) {
  fs::path big = scratch_path("big.json"), report = scratch_path("never.json");
  ASSERT_EQ(run_xring("plan -o " + big.string()).exit_code, 0);
  CliResult r = run_xring("run " + big.string() + " --json " + report.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--scale"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(report));
  r = run_xring("run " + big.string() + " --scale 1.5");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  // A plan whose ranks do not divide its cluster is refused, naming the layer.
  json p = read_json_at(big);
  p["layers"][0]["ranks"] = 3;
  fs::path bad = scratch_path("bad-ranks.json");
  std::ofstream(bad) << p.dump();
  r = run_xring("run " + bad.string() + " --scale 0.001");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("layers[0].ranks"), std::string::npos) << r.output;
  r = run_xring("run " + test_data("bad/plan_wrong_schema.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("schema_version"), std::string::npos);
}

TEST(Cli, RunExecutesADecodePlanWithItsHeadPlacement) {
  fs::path plan = scratch_path("decode.json"), report = scratch_path("decode-report.json");
  CliResult p = run_xring(
      "plan --model mistral-small-24b --workload fairkv-decode --set workload.batch=6 "
      "--set workload.text_tokens=256 --set workload.kv_budget=64 -o " +
      plan.string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  CliResult r = run_xring("run " + plan.string() + " --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  ASSERT_EQ(j["layers"].size(), 40u);
  EXPECT_EQ(j["layers"][0]["ranks"], 8);
  EXPECT_EQ(j["layers"][0]["strategy"].get<std::string>().rfind("decode/", 0), 0u);
  // A placement edited to lose requests is refused, naming the head's field (when the plan is
  // read, before the run).
  json bad = read_json_at(plan);
  bad["decode"]["heads"][3]["requests"][0] = 1;
  fs::path edited = scratch_path("decode-bad.json");
  std::ofstream(edited) << bad.dump();
  r = run_xring("run " + edited.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("at \"decode.heads[3].requests\": the copies serve 1 requests"),
            std::string::npos)
      << r.output;
}

// Issue 21: decode plans on the cuda backend, each GPU of the FairKV placement a stream on this
// one, checked against the CPU decode on the same compacted caches. Named Cli.CudaBackend* so
// scripts/gpu-check.sh runs it on the GPU machine, where it must not skip.
TEST(Cli, CudaBackendRunsDecodePlansOrSaysWhyNot) {
  fs::path plan = scratch_path("decode-cuda.json"), report = scratch_path("decode-cuda-report.json");
  CliResult p = run_xring(
      "plan --model mistral-small-24b --workload fairkv-decode --set workload.batch=6 "
      "--set workload.text_tokens=256 --set workload.kv_budget=64 -o " +
      plan.string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  fs::remove(report);
  CliResult r = run_xring("run " + plan.string() + " --backend cuda --json " + report.string());
  XRING_SKIP_UNLESS_CUDA_RAN(r, report);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["backend"], "cuda");
  ASSERT_EQ(j["layers"].size(), 40u);
  EXPECT_EQ(j["layers"][0]["ranks"], 8);
  EXPECT_GT(j["layers"][0]["measured_time_s"].get<double>(), 0);
}

TEST(Cli, RunExecutesHybridPlans) {
  fs::path plan = scratch_path("hybrid.json"), report = scratch_path("hybrid-report.json");
  CliResult p = run_xring(
      "plan --model tiny --cluster h100-sxm-8 --set workload.frames=5 --set "
      "workload.text_tokens=19 "
      "--set workload.phase=training --strategy hybrid --ranks 8 -o " +
      plan.string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  CliResult r = run_xring("run " + plan.string() + " --media-mask same_group --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["layers"][0]["strategy"], "hybrid");
  EXPECT_EQ(j["layers"][0]["ranks"], 8);
}

TEST(Cli, RunRecomputesKvFromTheVisualTokensWhenThePlanSaysSo) {
  fs::path plan = scratch_path("recompute.json"), report = scratch_path("recompute-report.json");
  CliResult p = run_xring(
      "plan --model tiny --cluster h100-sxm-8 --set workload.frames=6 --set "
      "workload.text_tokens=21 "
      "--set workload.phase=training --strategy kv_ring --ranks 4 --recompute -o " +
      plan.string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_TRUE(read_json_at(plan)["layers"][0]["recompute"].get<bool>());
  CliResult r = run_xring("run " + plan.string() + " --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["layers"][0]["strategy"], "kv_ring+recompute");
}

namespace {

std::string gate_data(const std::string& name) { return test_data("gate/" + name); }

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Gate, ExitCodesForEveryFixture) {
  const std::string base = "gate --baseline " + gate_data("plan_base.json") + " --current ";
  EXPECT_EQ(run_xring(base + gate_data("plan_pass.json")).exit_code, 0);
  EXPECT_EQ(run_xring(base + gate_data("plan_improved.json")).exit_code, 0);
  EXPECT_EQ(run_xring(base + gate_data("plan_regressed.json")).exit_code, 1);
  for (const char* bad : {"plan_other_schema.json", "plan_other_model.json",
                          "plan_missing_metric.json", "malformed.json", "report_noisy_cur.json"}) {
    CliResult r = run_xring(base + gate_data(bad));
    EXPECT_EQ(r.exit_code, 2) << bad << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos);
  }
  EXPECT_NE(run_xring(base + gate_data("plan_other_schema.json")).output.find("schema_version"),
            std::string::npos);
  EXPECT_NE(run_xring(base + gate_data("plan_other_model.json")).output.find("mismatched inputs"),
            std::string::npos);
  EXPECT_NE(
      run_xring(base + gate_data("plan_missing_metric.json")).output.find("predicted.frames_per_s"),
      std::string::npos);
  // Noise: an 8% slower median inside the samples' spread passes; a 2x slower one does not.
  const std::string reports = "gate --rules " + gate_data("rules.json") + " --baseline " +
                              gate_data("report_noisy_base.json");
  EXPECT_EQ(run_xring(reports + " --current " + gate_data("report_noisy_cur.json")).exit_code, 0);
  EXPECT_EQ(run_xring(reports + " --current " + gate_data("report_slow.json")).exit_code, 1);
}

TEST(Gate, MarkdownMatchesTheGoldenFile) {
  fs::path md = scratch_path("gate.md");
  CliResult r = run_xring("gate --baseline " + gate_data("plan_base.json") + " --current " +
                   gate_data("plan_regressed.json") + " --title golden --markdown " + md.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(read_text(md), read_text(gate_data("regressed.golden.md")));
  EXPECT_NE(read_text(md).find("▼ -20.0%"), std::string::npos);
}

TEST(Gate, JunitHasTheCommonLayout) {
  fs::path xml = scratch_path("gate.xml");
  run_xring("gate --baseline " + gate_data("plan_base.json") + " --current " +
        gate_data("plan_regressed.json") + " --junit " + xml.string());
  std::string x = read_text(xml);
  EXPECT_EQ(x.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites ", 0), 0u);
  EXPECT_EQ(occurrences(x, "<testsuites "), 1u);
  EXPECT_EQ(occurrences(x, "</testsuites>"), 1u);
  EXPECT_EQ(occurrences(x, "<testsuite "), 1u);
  EXPECT_EQ(occurrences(x, "<testcase "), 8u);
  EXPECT_EQ(occurrences(x, "<failure "), 3u);
  EXPECT_NE(x.find("tests=\"8\" failures=\"3\""), std::string::npos);
  // Every failure sits inside a testcase that sits inside the testsuite.
  EXPECT_LT(x.find("<testsuite "), x.find("<testcase "));
  EXPECT_LT(x.rfind("<failure "), x.find("</testsuite>"));
  EXPECT_EQ(occurrences(x, "<failure "), occurrences(x, "</testcase>"));
}

TEST(Gate, RequirementsOnOnePlan) {
  const std::string plan = " --plan " + gate_data("plan_base.json");
  EXPECT_EQ(run_xring("gate" + plan +
                  " --require feasible --require \"frames_per_s>=4\" --require "
                  "\"peak_memory_bytes_per_rank<=70GiB\"")
                .exit_code,
            0);
  CliResult r = run_xring("gate" + plan + " --require \"peak_memory_bytes_per_rank<=10GiB\"");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("NOT MET"), std::string::npos);
  EXPECT_EQ(
      run_xring("gate --plan " + gate_data("plan_infeasible.json") + " --require feasible").exit_code,
      1);
  r = run_xring("gate" + plan + " --require \"frames_per_sec>=4\"");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("did you mean \"frames_per_s\""), std::string::npos) << r.output;
  EXPECT_EQ(run_xring("gate" + plan + " --require \"frames_per_s>=fast\"").exit_code, 2);
  EXPECT_EQ(run_xring("gate" + plan).exit_code, 2);
}

// An infeasible plan predicts nothing: no requirement on a number is met and every number
// fails its comparison, whatever rules allow (issue 15, item 1).
TEST(Gate, AnInfeasiblePlanFailsEveryNumber) {
  const std::string infeasible = gate_data("plan_infeasible.json");
  CliResult r = run_xring("gate --plan " + infeasible + " --require \"frames_per_s>=1000\"");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("NOT MET"), std::string::npos) << r.output;
  r = run_xring("gate --plan " + infeasible + " --require \"peak_memory_bytes_per_rank<=1TiB\"");
  EXPECT_EQ(r.exit_code, 1) << "even its memory is not a prediction to rely on";
  fs::path rules = scratch_path("loose.json");
  std::ofstream(rules) << R"({"defaults": {"relative": 1e6}, "metrics": {"feasible": {"ignore": true}}})";
  r = run_xring("gate --baseline " + gate_data("plan_base.json") + " --current " + infeasible +
            " --rules " + rules.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(occurrences(r.output, "REGRESSION"), 7u) << r.output;  // 5 predicted + 2 layers
  // A hand-edited infeasible plan that still carries numbers fails the same way.
  json edited = read_json_at(gate_data("plan_regressed.json"));
  edited["feasible"] = false;
  fs::path file = scratch_path("edited_infeasible.json");
  std::ofstream(file) << edited.dump();
  EXPECT_EQ(run_xring("gate --plan " + file.string() + " --require \"frames_per_s>=1\"").exit_code, 1);
  // Gaining predictions is an improvement.
  r = run_xring("gate --baseline " + infeasible + " --current " + gate_data("plan_base.json") +
            " --rules " + rules.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(occurrences(r.output, "| improved |"), 7u) << r.output;
}

TEST(Gate, UpdateBaselineReplacesItAtomically) {
  fs::path base = scratch_path("baseline.json");
  fs::copy_file(gate_data("plan_base.json"), base, fs::copy_options::overwrite_existing);
  CliResult r = run_xring("gate --baseline " + base.string() + " --current " +
                   gate_data("plan_improved.json") + " --update-baseline");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(read_text(base), read_text(gate_data("plan_improved.json")));
  for (const auto& entry : fs::directory_iterator(base.parent_path()))
    EXPECT_EQ(entry.path().string().find(".tmp."), std::string::npos) << "left a temporary file";
}

TEST(Gate, RulesChangeThresholdsAndDirectionAndAreValidated) {
  fs::path rules = scratch_path("rules.json");
  const std::string compare = "gate --baseline " + gate_data("plan_base.json") + " --current " +
                              gate_data("plan_regressed.json") + " --rules " + rules.string();
  // Loose enough for the 20% throughput drop but not the 26% layer slowdown.
  std::ofstream(rules) << R"({"defaults": {"relative": 0.25}})";
  CliResult r = run_xring(compare);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(occurrences(r.output, "REGRESSION"), 1u) << r.output;
  std::ofstream(rules) << R"({"defaults": {"relative": 0.3}})";
  EXPECT_EQ(run_xring(compare).exit_code, 0);
  // Declaring throughput lower-is-better turns the drop into an improvement.
  std::ofstream(rules)
      << R"({"metrics": {"feasible": {"ignore": true}, "layers.*.time_s": {"relative": 0.5},
                              "throughput_tokens_per_s": {"direction": "lower"}, "frames_per_s": {"direction": "lower"}}})";
  r = run_xring(compare);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("improved"), std::string::npos);
  std::ofstream(rules) << R"({"metrics": {"frames_per_s": {"relativ": 0.1}}})";
  r = run_xring(compare);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("did you mean \"relative\""), std::string::npos) << r.output;
}

TEST(Cli, ImportWritesAPlannableSpecAndListsAssumptions) {
  fs::path out = scratch_path("imported.json");
  CliResult r = run_xring("import hf " + test_data("hf/llama-3.2-11b-vision.json") + " --name mine -o " +
                   out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("assumed tokens per image"), std::string::npos) << r.output;
  EXPECT_EQ(read_json_at(out)["name"], "mine");
  EXPECT_EQ(run_xring("plan --model " + out.string()).exit_code, 0);
  r = run_xring("import hf " + test_data("hf/unsupported.json") + " -o " + scratch_path("never.json").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("model_type"), std::string::npos);
  EXPECT_FALSE(fs::exists(scratch_path("never.json")));
}

TEST(Cli, RecommendWritesPlansCsvAndExitsOneWhenNothingMeets) {
  fs::path dir = scratch_path("plans"), csv = scratch_path("rec.csv");
  CliResult r = run_xring(
      "recommend --model mplug-owl3-7b --gpu h100-sxm --gpu a100-80gb --max-gpus 16 "
      "--require \"frames_per_s>=2000\" --top 3 --emit-plans " +
      dir.string() + " --csv " + csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int plans = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++plans;
    EXPECT_EQ(run_xring("gate --plan " + e.path().string() +
                    " --require feasible --require \"frames_per_s>=2000\"")
                  .exit_code,
              0);
  }
  EXPECT_GE(plans, 1);
  EXPECT_NE(read_text(csv).find("gpu,nodes,gpus_per_node,kv_policy,gpus,evaluated"),
            std::string::npos);
  r = run_xring(
      "recommend --model mplug-owl3-7b --gpu a30 --max-gpus 8 --require \"frames_per_s>=1e9\"");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("the closest is"), std::string::npos) << r.output;
  EXPECT_EQ(run_xring("recommend --model tiny --gpu nope").exit_code, 2);
}

TEST(Cli, PaperSetupFieldsAreCheckedAndExitTwo) {
  // Issue 15, item 13: a bad training-setup field names the workload and the field (exit 2).
  CliResult bad = run_xring("plan --set workload.phase=training --set workload.optimizer=adamw");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("builtin:video-qa"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("\"optimizer\""), std::string::npos) << bad.output;
  CliResult part = run_xring("plan --set workload.phase=training --set 'workload.frozen=[\"llm\"]'");
  EXPECT_EQ(part.exit_code, 2) << part.output;
  EXPECT_NE(part.output.find("frozen[0]"), std::string::npos) << part.output;
  CliResult good = run_xring(
      "plan --model openflamingo-3b --set workload.phase=training --set workload.optimizer=sgd "
      "--set 'workload.frozen=[\"vision_encoder\",\"language_model\"]' "
      "--set workload.media_mask=same_group");
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("language model frozen"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("optimizer sgd"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find("media mask same_group"), std::string::npos) << good.output;
}

TEST(Cli, ProfileWritesADeviceProfileThePlannerReads) {
  fs::path out = scratch_path("cpu-profile.json");
  fs::remove(out);
  CliResult r = run_xring("profile --backend cpu --quick -o " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(out);
  json j = json::parse(in);
  EXPECT_EQ(j["kind"], "xring-device-profile");
  EXPECT_EQ(j["device"]["backend"], "cpu");
  EXPECT_GE(j["attention"].size(), 4u);
  EXPECT_TRUE(j["bandwidth"].contains("decode_bytes_per_s"));
  // Fixed costs (issue 15, item 10): a reference-kernel call and a thread handoff, each > 0.
  EXPECT_GT(j["fixed_costs"]["kernel_launch_s"].get<double>(), 0.0);
  EXPECT_GT(j["fixed_costs"]["ring_step_sync_s"].get<double>(), 0.0);
  CliResult p = run_xring("plan --model tiny --device-profile " + out.string());
  EXPECT_EQ(p.exit_code, 0) << p.output;
  EXPECT_NE(p.output.find("rates: measured on"), std::string::npos) << p.output;
}

TEST(Cli, ProfileAndValidateSayWhenABackendIsMissing) {
  if (gpu_present()) GTEST_SKIP() << "a GPU is present: scripts/gpu-check.sh covers the cuda paths";
  fs::path out = scratch_path("gpu-profile.json");
  fs::remove(out);
  CliResult r = run_xring("profile --backend cuda -o " + out.string());
  EXPECT_EQ(r.exit_code, 3) << r.output;
  // Either the build has no CUDA kernels or the machine has no GPU; both say so.
  EXPECT_NE(r.output.find("xring profile --backend cuda: "), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  CliResult v =
      run_xring("validate --backend cuda --device-profile " + test_data("devices/synthetic-cuda.json"));
  EXPECT_EQ(v.exit_code, 3) << v.output;
  // A cuda profile cannot predict cpu runs.
  CliResult m = run_xring("validate --device-profile " + test_data("devices/synthetic-cuda.json"));
  EXPECT_EQ(m.exit_code, 2) << m.output;
  EXPECT_NE(m.output.find("device.backend"), std::string::npos) << m.output;
  CliResult s =
      run_xring("validate --device-profile " + test_data("devices/cpu-epyc-2core.json") + " --shape 12y40");
  EXPECT_EQ(s.exit_code, 2) << s.output;
  EXPECT_NE(s.output.find("--shape 12y40"), std::string::npos) << s.output;
}

TEST(Cli, ValidateComparesPredictedAndMeasuredPerPoint) {
  fs::path json_out = scratch_path("validate.json"), csv_out = scratch_path("validate.csv");
  CliResult r =
      run_xring("validate --device-profile " + test_data("devices/cpu-epyc-2core.json") +
            " --quick --repeat 1 --json " + json_out.string() + " --csv " + csv_out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("median |error|"), std::string::npos) << r.output;
  std::ifstream in(json_out);
  json j = json::parse(in);
  ASSERT_EQ(j["points"].size(), 6u);  // 2 shapes x (single on 1 rank + 2 rings on 2 ranks)
  for (const auto& p : j["points"]) {
    EXPECT_TRUE(p["verified"].get<bool>());
    EXPECT_GT(p["predicted_s"].get<double>(), 0);
    EXPECT_GT(p["measured_s"].get<double>(), 0);
  }
  EXPECT_TRUE(fs::exists(csv_out));
  // A bound no measurement can meet fails with exit 1 (the bound, not the timing, is tested).
  CliResult tight = run_xring("validate --device-profile " + test_data("devices/cpu-epyc-2core.json") +
                       " --quick --repeat 1 --shape 16x256 --ranks 1 --max-worst-error 1e-12");
  EXPECT_EQ(tight.exit_code, 1) << tight.output;
}

TEST(Cli, RunAbortsEveryRankOnAFaultAndWritesNoReport) {
  fs::path plan = scratch_path("fault-plan.json"), report = scratch_path("fault-report.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --strategy query_ring --ranks 4 -o " + plan.string()).exit_code, 0);
  fs::remove(report);
  // A rank that fails: every other rank stops waiting; the message says where.
  CliResult fail =
      run_xring("run " + plan.string() + " --inject-fault 1:2:fail --json " + report.string());
  EXPECT_EQ(fail.exit_code, 3) << fail.output;
  for (const char* needle : {"layer 1 (query_ring, 4 ranks)", "rank 1 on ", "step 2", "injected"})
    EXPECT_NE(fail.output.find(needle), std::string::npos) << needle << "\n" << fail.output;
  EXPECT_FALSE(fs::exists(report));
  // A lost message: the waiting rank gives up after --timeout instead of hanging.
  auto start = std::chrono::steady_clock::now();
  CliResult lost = run_xring("run " + plan.string() + " --inject-fault 0:1:drop --timeout 0.5 --json " +
                      report.string());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_EQ(lost.exit_code, 3) << lost.output;
  EXPECT_NE(lost.output.find("within 0.5 s (--timeout)"), std::string::npos) << lost.output;
  EXPECT_FALSE(fs::exists(report));
  EXPECT_EQ(run_xring("run " + plan.string() + " --inject-fault 9:1:fail").exit_code, 2);
  EXPECT_EQ(run_xring("run " + plan.string() + " --inject-fault 1:x:boom").exit_code, 2);
  EXPECT_EQ(run_xring("run " + plan.string() + " --timeout -1").exit_code, 2);
}

TEST(Cli, InterruptedRunLeavesNoFiles) {
  fs::path dir = scratch_path("interrupt");
  fs::create_directories(dir);
  fs::path plan = dir / "plan.json", report = dir / "report.json";
  ASSERT_EQ(
      run_xring("plan --model tiny --set workload.frames=2000 --strategy query_ring --ranks 2 -o " +
            plan.string())
          .exit_code,
      0);
  std::string command = "timeout -s INT 0.5 " + std::string(XRING_BINARY) + " run " +
                        plan.string() + " --json " + report.string() + " > /dev/null 2>&1";
  int status = std::system(command.c_str());
  EXPECT_NE(WEXITSTATUS(status), 0) << "the run should have been interrupted";
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path(), plan) << "left behind: " << entry.path();
}

TEST(Cli, NcclBackendChecksItsLaunchBeforeSayingThereIsNoGpu) {
  fs::path plan = scratch_path("nccl-plan.json"), report = scratch_path("nccl-report.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --strategy query_ring --ranks 4 -o " + plan.string()).exit_code, 0);
  const std::string run = "run " + plan.string() + " --backend nccl --json " + report.string();
  CliResult who = run_xring(run);
  EXPECT_EQ(who.exit_code, 2) << who.output;
  EXPECT_NE(who.output.find("--rank R --world N"), std::string::npos) << who.output;
  CliResult world = run_xring(run + " --rank 0 --world 2 --rendezvous /tmp/unused");
  EXPECT_EQ(world.exit_code, 2) << world.output;
  EXPECT_NE(world.output.find("start 4 processes"), std::string::npos) << world.output;
  // A valid launch with no peers: without a GPU (or NCCL) it says so; with both, rank 1 or 3
  // waits for rank 0 only as long as --timeout (not the default 120 s) and says for whom.
  const std::string alone =
      " --timeout 2 --rendezvous " + scratch_path("nccl-rendezvous-nobody").string();
  auto says_why = [](const CliResult& r) {
    return r.output.find("--backend nccl: ") != std::string::npos ||
           r.output.find("waited 2") != std::string::npos;
  };
  setenv("RANK", "1", 1);  // as torchrun starts it
  setenv("WORLD_SIZE", "4", 1);
  CliResult torchrun = run_xring(run + alone);
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
  EXPECT_EQ(torchrun.exit_code, 3) << torchrun.output;
  EXPECT_TRUE(says_why(torchrun)) << torchrun.output;
  CliResult ok = run_xring(run + " --rank 3 --world 4" + alone);
  EXPECT_EQ(ok.exit_code, 3) << ok.output;
  EXPECT_TRUE(says_why(ok)) << ok.output;
  EXPECT_FALSE(fs::exists(report));
  EXPECT_EQ(run_xring("run " + plan.string() + " --world 4").exit_code, 2);
}

TEST(Cli, CudaBackendRunsOrSaysWhyNot) {
  fs::path plan = scratch_path("cuda-plan.json"), report = scratch_path("cuda-report.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --strategy query_ring --ranks 4 -o " + plan.string()).exit_code, 0);
  fs::remove(report);
  CliResult r = run_xring("run " + plan.string() + " --backend cuda --json " + report.string());
  XRING_SKIP_UNLESS_CUDA_RAN(r, report);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(report);
  json j = json::parse(in);
  const json& layer = j["layers"][0];
  EXPECT_TRUE(j["verified"].get<bool>());
  EXPECT_EQ(layer["checked_against"], "reference");
  EXPECT_GT(layer["monolithic_time_s"].get<double>(), 0);
  EXPECT_GT(layer["derived_comm_s"].get<double>(), 0);
  EXPECT_GT(layer["bytes_sent"].get<double>(), 0);
  ASSERT_EQ(run_xring("plan --model tiny --strategy ulysses --ranks 4 -o " + plan.string()).exit_code,
            0);
  r = run_xring("run " + plan.string() + " --backend cuda");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("query_ring, kv_ring and single"), std::string::npos) << r.output;
}

TEST(Cli, NcclBackendRunsOneRankOrSaysWhyNot) {
  // One process: the NCCL communicator of one rank (all this machine's single GPU allows).
  fs::path plan = scratch_path("nccl-one.json"), report = scratch_path("nccl-one-report.json");
  ASSERT_EQ(run_xring("plan --model tiny --strategy single --ranks 1 -o " + plan.string()).exit_code,
            0);
  fs::remove(report);
  CliResult r = run_xring("run " + plan.string() + " --backend nccl --rank 0 --world 1 --json " +
                   report.string());
  if (r.exit_code == 3) {
    EXPECT_NE(r.output.find("--backend nccl: "), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(report));
    GTEST_SKIP() << r.output;
  }
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(report);
  json j = json::parse(in);
  EXPECT_TRUE(j["verified"].get<bool>());
  EXPECT_EQ(j["backend"], "nccl");
}

TEST(Cli, RunReportsOverlapBandwidthAndPredictionErrors) {
  fs::path plan = scratch_path("metrics-plan.json"), report = scratch_path("metrics-report.json");
  ASSERT_EQ(run_xring("plan --model tiny --strategy kv_ring --ranks 2 -o " + plan.string()).exit_code,
            0);
  CliResult r = run_xring("run " + plan.string() + " --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(report);
  json j = json::parse(in);
  for (const auto& l : j["layers"]) {
    EXPECT_GT(l["overlap_efficiency"].get<double>(), 0);
    EXPECT_LE(l["overlap_efficiency"].get<double>(), 1);
    EXPECT_GT(l["flop_per_s"].get<double>(), 0);
    EXPECT_GT(l["predicted_step_compute_s"].get<double>(), 0);
    EXPECT_GT(l["predicted_peak_memory_bytes"].get<double>(), 0);
    EXPECT_EQ(l["algbw_bytes_per_s"], l["busbw_bytes_per_s"]);  // point-to-point: equal
    const double m = l["measured_time_s"], p = l["predicted_time_s"];
    EXPECT_NEAR(l["time_error"].get<double>(), (p - m) / m, 1e-9);
  }
  EXPECT_GT(j["measured"]["frames_per_s"].get<double>(), 0);
  EXPECT_GT(j["predicted"]["frames_per_s"].get<double>(), 0);
  EXPECT_EQ(j["warmup"], 1);  // the default: one unmeasured run per layer first
  // Warm-up runs are neither samples nor trace events.
  fs::path trace = scratch_path("metrics-trace.json");
  r = run_xring("run " + plan.string() + " --repeat 3 --warmup 2 --json " + report.string() +
            " --trace " + trace.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = read_json_at(report);
  EXPECT_EQ(j["warmup"], 2);
  for (const auto& l : j["layers"]) EXPECT_EQ(l["measured_samples_s"].size(), 3u);
  size_t computes = 0;
  const json timeline = read_json_at(trace);
  for (const auto& e : timeline["traceEvents"])
    computes += e.value("ph", "") == "X" && e.value("tid", 0) == 1;
  EXPECT_EQ(computes, 3u * 2 * j["layers"].size());  // 3 runs x 2 ranks x layers
  EXPECT_EQ(run_xring("run " + plan.string() + " --warmup -1").exit_code, 2);
}

TEST(Cli, SetClusterGpuWorksInPlanExplainWhatifAndGate) {
  // These exited 2 ("names a GPU that was not resolved") although both are built-in names.
  CliResult r = run_xring("plan --set cluster.gpu=a100-80gb");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("8 A100-SXM4-80GB"), std::string::npos) << r.output;
  r = run_xring("plan --set cluster.gpu=h100-sxm");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_xring("explain --set cluster.gpu=h200 --set cluster.system=hgx-h200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("crossover"), std::string::npos) << r.output;
  fs::path csv = scratch_path("gpu-swap.csv");
  r = run_xring("whatif --vary cluster.gpu=h100-sxm,a100-80gb --csv " + csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(read_text(csv).find("a100-80gb"), std::string::npos);
  // A swapped plan gates like any other: alone, and against the plan it swaps from.
  fs::path base = scratch_path("h100.plan.json"), swapped = scratch_path("b200.plan.json");
  ASSERT_EQ(run_xring("plan -o " + base.string()).exit_code, 0);
  r = run_xring("plan --set cluster.system=dgx-b200 -o " + swapped.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("system DGX B200"), std::string::npos) << r.output;
  EXPECT_EQ(read_json_at(swapped)["inputs"]["cluster"]["gpu"]["name"], "B200-SXM-180GB");
  r = run_xring("gate --plan " + swapped.string() + " --require feasible");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // Their clusters differ in content: compared only when asked (issue 20), listing what differs.
  r = run_xring("gate --baseline " + base.string() + " --current " + swapped.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  r = run_xring("gate --allow-changed-inputs --baseline " + base.string() + " --current " +
            swapped.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;  // the B200 is faster: no regression
  EXPECT_NE(r.output.find("Note: inputs differ: cluster.gpu."), std::string::npos) << r.output;
  r = run_xring("gate --allow-changed-inputs --baseline " + swapped.string() + " --current " +
            base.string());
  EXPECT_EQ(r.exit_code, 1) << r.output;  // going back to the H100 is one
  EXPECT_EQ(run_xring("plan --set cluster.gpu=h300").exit_code, 2);
  EXPECT_EQ(run_xring("plan --set cluster.fabric=ib-ndr").exit_code, 2);
}

TEST(Cli, WhatifOverEveryCatalogueGpuHasOneRowPerGpu) {
  const std::vector<std::string> gpus = {"a100-40gb", "a100-80gb", "a30",   "l40s",  "h100-sxm",
                                         "h100-pcie", "h200",      "b200",  "gb200", "mi300x"};
  std::string list;
  for (const auto& g : gpus) list += (list.empty() ? "" : ",") + g;
  fs::path csv = scratch_path("every-gpu.csv");
  CliResult r = run_xring("whatif --vary cluster.gpu=" + list + " --csv " + csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(csv);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(in, line)) rows.push_back(line);
  ASSERT_EQ(rows.size(), gpus.size() + 1) << read_text(csv);
  for (size_t i = 0; i < gpus.size(); ++i)
    EXPECT_EQ(rows[i + 1].rfind(gpus[i] + ",", 0), 0u) << rows[i + 1];
}

TEST(Cli, ListShowAndRecommendTheHardwareCatalogue) {
  CliResult r = run_xring("list gpus");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* name : {"b200", "gb200", "h100-pcie", "l40s", "mi300x", "h200"})
    EXPECT_NE(r.output.find(name), std::string::npos) << name;
  EXPECT_EQ(r.output.find("models:"), std::string::npos) << r.output;
  r = run_xring("list systems");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gb200-nvl72"), std::string::npos) << r.output;
  r = run_xring("list fabrics");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ib-ndr-400"), std::string::npos) << r.output;
  EXPECT_EQ(run_xring("list nope").exit_code, 2);
  r = run_xring("show gpu h200");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["hbm_bandwidth"], "4800GB/s");
  r = run_xring("show system hgx-h100");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(r.output)["intra_node"]["bandwidth"], "450GB/s");
  fs::path csv = scratch_path("rec-catalogue.csv");
  r = run_xring("recommend --gpu h200 --gpu b200 --gpu mi300x --csv " + csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::string text = read_text(csv);
  for (const char* g : {"h200,", "b200,", "mi300x,"})
    EXPECT_NE(text.find(std::string("\n") + g + "1,8,"), std::string::npos) << g << "\n" << text;
  r = run_xring("recommend --gpu gb200");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("raise --max-gpus"), std::string::npos) << r.output;
  r = run_xring("recommend --gpu l40s --gpus-per-node 4 --max-gpus 8 --set cluster.fabric=roce-200");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}
