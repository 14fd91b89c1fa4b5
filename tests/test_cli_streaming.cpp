// `xring run` on streaming plans (issue 19), end to end: a one-hour stream at a CI-sized
// --scale, the memory curve flat for inf_mllm and linear for full, the out-of-memory point of a
// full cache, the plot, and bad input exiting 2.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "cli_test_util.hpp"
#include "gpu_skip.hpp"

namespace xring::test {
namespace {

using nlohmann::json;

/// Plans the tiny model's one-hour video-stream workload with `sets` into `name`.
std::string tiny_stream_plan(const std::string& name, const std::string& sets = "") {
  const auto plan = scratch_path(name);
  CliResult p = run_xring("plan --model tiny --cluster h100-1 --workload video-stream " + sets +
                          " -o " + plan.string());
  EXPECT_EQ(p.exit_code, 0) << p.output;
  return plan.string();
}

TEST(CliStreaming, OneHourInfMllmStreamIsFlatVerifiedAndOnThePlansCurve) {
  const std::string plan = tiny_stream_plan("stream-inf.json");
  const auto report = scratch_path("stream-inf-report.json");
  CliResult r = run_xring("run " + plan + " --scale 0.1 --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("streaming  inf_mllm over 360 of 360 frames x 2 visual tokens"),
            std::string::npos)
      << r.output;
  const json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  const json& s = j["streaming"];
  // 3600 s x 1 frame/s x 0.1 = 360 frames of llround(16 x 0.1) = 2 tokens, each frame 10 s of
  // the stream; memory scale 720 / 57600 = 0.0125; N = llround(16384 x 0.0125) = 205 (hand),
  // r = llround(4096 x 0.0125) = 51.
  EXPECT_EQ(s["frames_executed"], 360);
  EXPECT_DOUBLE_EQ(s["seconds_per_frame"].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(s["memory_scale"].get<double>(), 0.0125);
  EXPECT_EQ(s["cache_tokens"], 205);
  EXPECT_EQ(s["recent_tokens"], 51);
  ASSERT_EQ(s["frames"].size(), 360u);
  // One token: 2 cross-attention layers x K,V x 2 kv heads x 64 x 2 bytes (bf16) = 1024 bytes.
  // Filling up to frame 102 (204 tokens), then flat at 205 tokens = 209,920 bytes.
  EXPECT_DOUBLE_EQ(s["frames"][0]["cache_bytes"].get<double>(), 2 * 1024.0);
  EXPECT_DOUBLE_EQ(s["frames"][101]["cache_bytes"].get<double>(), 204 * 1024.0);
  for (size_t f = 102; f < 360; ++f)
    ASSERT_DOUBLE_EQ(s["frames"][f]["cache_bytes"].get<double>(), 205 * 1024.0) << f;
  for (const auto& f : s["frames"])
    EXPECT_DOUBLE_EQ(f["cache_bytes"].get<double>(), f["predicted_cache_bytes"].get<double>());
  EXPECT_DOUBLE_EQ(s["frames"][359]["t_s"].get<double>(), 3600.0);
  EXPECT_DOUBLE_EQ(s["peak_cache_bytes"].get<double>(), 209920.0);
  EXPECT_TRUE(s["oom_at_s"].is_null());
  EXPECT_TRUE(s["predicted_oom_at_s"].is_null());
  // One query at the end (no query_interval_s), llround(128 x 0.1) = 13 decode steps.
  EXPECT_EQ(s["queries"], 1);
  EXPECT_EQ(s["decode_steps_per_query"], 13);
  EXPECT_GT(s["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(s["frame_time_s"].get<double>(), 0);
  // The gate reads the streaming numbers: never out of memory counts as the whole stream.
  CliResult g = run_xring("gate --plan " + report.string() +
                          " --require \"streaming.oom_at_s>=3600\" --require "
                          "\"streaming.peak_cache_bytes<=209920\" --require "
                          "\"streaming.tokens_per_s>0\"");
  EXPECT_EQ(g.exit_code, 0) << g.output;
  g = run_xring("gate --plan " + report.string() +
                " --require \"streaming.peak_cache_bytes<209920\"");
  EXPECT_EQ(g.exit_code, 1) << g.output;
}

TEST(CliStreaming, FullCacheGrowsLinearlyAndAVlByItsStoredFraction) {
  const std::string plan =
      tiny_stream_plan("stream-full.json", "--set workload.kv_policy=full "
                                           "--set workload.query_interval_s=900");
  const auto report = scratch_path("stream-full-report.json");
  CliResult r = run_xring("run " + plan + " --scale 0.05 --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json s = read_json_at(report)["streaming"];
  // 180 frames of llround(0.8) = 1 token, 20 s each: frame f holds f + 1 tokens of 1024 bytes.
  ASSERT_EQ(s["frames"].size(), 180u);
  for (size_t f = 0; f < 180; ++f)
    ASSERT_DOUBLE_EQ(s["frames"][f]["cache_bytes"].get<double>(), 1024.0 * (f + 1)) << f;
  EXPECT_EQ(s["queries"], 4);  // at 900, 1800, 2700, 3600 s
  EXPECT_TRUE(s["cache_tokens"].is_null());

  const std::string avl = tiny_stream_plan("stream-avl.json", "--set workload.kv_policy=a_vl");
  r = run_xring("run " + avl + " --scale 0.05 --json " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  s = read_json_at(report)["streaming"];
  // llround(0.45 x 180) = 81 tokens at the end; the plan's formula says 0.45 x 180 = 81 too.
  EXPECT_DOUBLE_EQ(s["frames"][179]["cache_bytes"].get<double>(), 81 * 1024.0);
  EXPECT_DOUBLE_EQ(s["frames"][179]["predicted_cache_bytes"].get<double>(), 81 * 1024.0);
  EXPECT_EQ(read_json_at(report)["verified"], true);
}

TEST(CliStreaming, AFullCacheThatOutgrowsTheGpuReportsWhereAndDrawsIt) {
  // llama-3.2-11b-vision on one H100: the plan's full cache runs out at 297.1 s. At --scale 0.01
  // a frame (64 tokens of 32 KiB) stands for 100 s: the third frame passes the scaled memory.
  const auto plan = scratch_path("stream-oom.json");
  CliResult p = run_xring(
      "plan --model llama-3.2-11b-vision --cluster h100-1 --workload video-stream "
      "--set workload.kv_policy=full -o " + plan.string());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  const auto report = scratch_path("stream-oom-report.json");
  const auto svg = scratch_path("stream-oom.svg");
  CliResult r = run_xring("run " + plan.string() + " --scale 0.01 --json " + report.string() +
                          " --plot " + svg.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json s = read_json_at(report)["streaming"];
  ASSERT_TRUE(s["predicted_oom_at_s"].is_number());
  EXPECT_NEAR(s["predicted_oom_at_s"].get<double>(), 297.1, 0.1);
  ASSERT_TRUE(s["oom_at_s"].is_number()) << r.output;
  EXPECT_DOUBLE_EQ(s["oom_at_s"].get<double>(), 300.0);
  EXPECT_EQ(s["frames_executed"], 3);
  // No query was due before 300 s: the final one is served where the stream stopped.
  EXPECT_EQ(s["queries"], 1);
  EXPECT_EQ(read_json_at(report)["verified"], true);
  EXPECT_GT(s["peak_cache_bytes"].get<double>(), s["usable_cache_bytes"].get<double>());
  EXPECT_NE(r.output.find("out of memory: at 300 s"), std::string::npos) << r.output;
  CliResult g = run_xring("gate --plan " + report.string() +
                          " --require \"streaming.oom_at_s>=3600\"");
  EXPECT_EQ(g.exit_code, 1) << g.output;
  EXPECT_NE(g.output.find("streaming.oom_at_s"), std::string::npos) << g.output;
  // The picture's script is written beside it whether or not gnuplot is installed.
  std::ifstream script(svg.parent_path() / "stream-oom.gp");
  std::string text((std::istreambuf_iterator<char>(script)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("predicted (plan formula)"), std::string::npos);
  EXPECT_NE(text.find("plan: out of memory"), std::string::npos);
}

TEST(CliStreaming, BadInputExitsTwoNamingWhatToDo) {
  // The full-size stream of llama-3.2-11b-vision does not fit the cpu backend: --scale asked for.
  const auto big = scratch_path("stream-big.json");
  ASSERT_EQ(run_xring("plan --model llama-3.2-11b-vision --cluster h100-1 --workload "
                      "video-stream -o " + big.string())
                .exit_code,
            0);
  CliResult r = run_xring("run " + big.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("pass --scale"), std::string::npos) << r.output;
  // A plan whose chosen policy has no row.
  const std::string plan = tiny_stream_plan("stream-edit.json");
  json edited = read_json_at(plan);
  edited["streaming"]["chosen"] = "h2o";
  const auto bad = scratch_path("stream-bad.json");
  std::ofstream(bad) << edited.dump();
  r = run_xring("run " + bad.string() + " --scale 0.1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("streaming.policies"), std::string::npos) << r.output;
  // nccl is refused before any launch: a stream runs on one GPU.
  r = run_xring("run " + plan + " --backend nccl --rank 0 --world 1 --rendezvous " +
                scratch_path("stream.rdv").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not nccl"), std::string::npos) << r.output;
  r = run_xring("run " + plan + " --scale 0.1 --repeat 3");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--repeat applies to layer plans"), std::string::npos) << r.output;
  // --plot on a plan that is not streaming.
  const auto prefill = scratch_path("prefill.json");
  ASSERT_EQ(run_xring("plan --model tiny -o " + prefill.string()).exit_code, 0);
  r = run_xring("run " + prefill.string() + " --plot " + scratch_path("x.svg").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("not a streaming plan"), std::string::npos) << r.output;
  // A query interval that is not a positive number of seconds.
  r = run_xring("plan --model tiny --cluster h100-1 --workload video-stream "
                "--set workload.query_interval_s=0");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("query_interval_s"), std::string::npos) << r.output;
}

// The cuda backend: each query step's attention on the GPU (the decode kernel over the kept
// tokens), checked against the CPU attention over the same tokens. Named Cli.CudaBackend* so
// scripts/gpu-check.sh runs it on the GPU machine, where it must not skip.
TEST(Cli, CudaBackendRunsStreamingPlansOrSaysWhyNot) {
  const std::string plan = tiny_stream_plan("stream-cuda.json", "--set workload.kv_policy=a_vl");
  const auto report = scratch_path("stream-cuda-report.json");
  std::filesystem::remove(report);
  CliResult r = run_xring("run " + plan + " --backend cuda --scale 0.1 --json " + report.string());
  XRING_SKIP_UNLESS_CUDA_RAN(r, report);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = read_json_at(report);
  EXPECT_EQ(j["verified"], true);
  EXPECT_EQ(j["backend"], "cuda");
  // The caches are the host's either way: llround(0.45 x 720) = 324 tokens of 1024 bytes.
  EXPECT_DOUBLE_EQ(j["streaming"]["frames"][359]["cache_bytes"].get<double>(), 324 * 1024.0);
  EXPECT_GT(j["streaming"]["tokens_per_s"].get<double>(), 0);
}

}  // namespace
}  // namespace xring::test
