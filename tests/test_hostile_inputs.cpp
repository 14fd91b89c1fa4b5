// Hostile inputs (issue 16): out-of-range integers in plans, numbers beyond the double range,
// deep nesting, oversized and non-regular files, type errors in HF configs, non-finite flags and
// outputs of failed commands. Every case must exit 2 (bad input) naming the file and field, or 3
// for a runtime failure, and never crash, hang or say "internal error".
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <string>
#include <tuple>
#include <vector>

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

/// Exit 2 with every needle in the output and no "internal error".
void expect_bad_input(const CliResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, 2) << r.output;
  for (const auto& n : needles)
    EXPECT_NE(r.output.find(n), std::string::npos) << "expected \"" << n << "\" in\n" << r.output;
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}

/// A plan file written by `xring plan ARGS -o`, read back as JSON.
json planned(const std::string& args, const fs::path& out) {
  CliResult r = run_xring("plan " + args + " -o " + out.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return read_json_at(out);
}

fs::path written(const std::string& name, const json& j) {
  fs::path p = scratch_path(name);
  write_text(p, j.dump());
  return p;
}

const char* kDecodePlanArgs =
    "--model mistral-small-24b --workload fairkv-decode --set workload.batch=6 "
    "--set workload.text_tokens=256 --set workload.kv_budget=64";

}  // namespace

// Item 1: decode.heads[].layer indexed a vector unchecked (4294967295 crashed, 2147483647
// overflowed, 1e8 allocated 2.3 GB). Every value outside the model's 40 layers is refused first.
TEST(HostileInputs, DecodeHeadLayerOutsideTheModelIsRefusedByName) {
  const json good = planned(kDecodePlanArgs, scratch_path("decode.json"));
  for (const json& layer :
       {json(4294967295u), json(4294967296u), json(2147483647), json(1e8), json(-1), json(40)}) {
    json bad = good;
    bad["decode"]["heads"][5]["layer"] = layer;
    const fs::path p = written("decode-layer.json", bad);
    CliResult r = run_xring("run " + p.string());
    expect_bad_input(r, {p.string(), "decode.heads[5].layer"});
  }
  json bad = good;  // the last valid layer passes the check (39 of 0..39), so the run goes on
  bad["decode"]["heads"][5]["head"] = 8;  // mistral-small-24b has 8 kv heads: 0..7
  CliResult r = run_xring("show plan " + written("decode-head.json", bad).string());
  expect_bad_input(r, {"decode.heads[5].head", "outside 0..7"});
  bad = good;
  bad["decode"]["heads"][0]["gpus"][0] = 8;  // 8 GPUs: 0..7
  r = run_xring("show plan " + written("decode-gpu.json", bad).string());
  expect_bad_input(r, {"decode.heads[0].gpus[0]", "outside 0..7"});
}

// Item 2: layers[].ranks = 4294967296 became 0 and divided; 4294967288 ran on -8 ranks.
TEST(HostileInputs, LayerRanksThatWrapOrExceedTheClusterAreRefused) {
  const json good =
      planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", scratch_path("t.json"));
  ASSERT_FALSE(good["layers"].empty());
  const std::vector<std::pair<json, std::string>> cases = {
      {json(4294967296u), "between 1 and 2147483647"},
      {json(4294967288u), "between 1 and 2147483647"},
      {json(18446744073709551615u), "between 1 and 2147483647"},
      {json(16), "outside 1..8"},
      {json(3), "does not divide the 8 GPUs"},
      {json(0), "between 1 and 2147483647, got 0"}};
  for (const auto& [ranks, why] : cases) {
    json bad = good;
    bad["layers"][0]["ranks"] = ranks;
    const fs::path p = written("ranks.json", bad);
    expect_bad_input(run_xring("run " + p.string()), {p.string(), "layers[0].ranks", why});
  }
  json bad = good;
  bad["layers"][0]["groups"] = 9;  // 8 GPUs / ranks >= 1
  expect_bad_input(run_xring("show plan " + written("groups.json", bad).string()),
                   {"layers[0].groups"});
}

// Item 9: a plan listing more layers than the model's cross-attention layers ran and "verified".
TEST(HostileInputs, PlanWithMoreLayersThanTheModelIsRefused) {
  json plan =
      planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", scratch_path("t.json"));
  const size_t cross = plan["layers"].size();
  while (plan["layers"].size() < 1002) plan["layers"].push_back(plan["layers"][0]);
  expect_bad_input(run_xring("run " + written("many.json", plan).string()),
                   {"layers[" + std::to_string(cross) + "].index", "planned twice"});
  plan["layers"][cross]["index"] = 1000;
  expect_bad_input(run_xring("run " + written("many.json", plan).string()),
                   {"layers[" + std::to_string(cross) + "].index", "not a cross-attention layer"});
}

// Item 7: numbers beyond the double range were an "internal error" (out_of_range.406).
TEST(HostileInputs, NumberBeyondTheDoubleRangeNamesItsPath) {
  const fs::path model = scratch_path("huge.json");
  write_text(model, R"({"name": "x", "layers": 1e400})");
  expect_bad_input(run_xring("plan --model " + model.string()),
                   {model.string(), "at \"layers\"", "outside the range of a double"});
  write_text(model, R"({"a": [1, 2, {"b": [0, -1e999]}]})");
  expect_bad_input(run_xring("plan --cluster " + model.string()), {"at \"a[2].b[1]\""});
  expect_bad_input(run_xring("plan --set workload.frames=1e400"),
                   {"--set workload.frames", "outside the range of a double"});
}

// Item 7: HF configs with torch_dtype not a string or tie_word_embeddings null were exit 3.
TEST(HostileInputs, HuggingFaceTypeErrorsNameTheField) {
  json cfg = read_json_at(test_data("hf/llama-3-70b.json"));
  cfg["torch_dtype"] = 16;
  fs::path p = written("hf.json", cfg);
  expect_bad_input(run_xring("import hf " + p.string()),
                   {p.string(), "at \"torch_dtype\"", "must be a string"});
  cfg = read_json_at(test_data("hf/llama-3-70b.json"));
  cfg["tie_word_embeddings"] = nullptr;
  p = written("hf.json", cfg);
  expect_bad_input(run_xring("import hf " + p.string()), {"at \"tie_word_embeddings\""});
  cfg = read_json_at(test_data("hf/llama-3-70b.json"));
  cfg["num_hidden_layers"] = 4294967296u;
  p = written("hf.json", cfg);
  expect_bad_input(run_xring("import hf " + p.string()),
                   {"at \"num_hidden_layers\"", "between 1 and 100000"});
}

// Item 6: image_size 1e10 and max_aspect_ratio_id at INT64_MAX overflowed signed arithmetic.
TEST(HostileInputs, HuggingFaceSizesThatWouldOverflowAreRefused) {
  json cfg = read_json_at(test_data("hf/llama-3.2-11b-vision.json"));
  cfg["vision_config"]["image_size"] = 1e10;
  fs::path p = written("hf.json", cfg);
  expect_bad_input(run_xring("import hf " + p.string()),
                   {"at \"vision_config.image_size\"", "between 1 and 65536"});
  cfg = read_json_at(test_data("hf/llama-3.2-11b-vision.json"));
  cfg["vision_config"]["max_aspect_ratio_id"] = 9223372036854775807LL;
  p = written("hf.json", cfg);
  expect_bad_input(run_xring("import hf " + p.string()),
                   {"at \"vision_config.max_aspect_ratio_id\""});
}

// Item 7: a spec name longer than a file name may be was "File name too long", exit 3.
TEST(HostileInputs, OverlongSpecNameIsAnUnknownNameWithAShortQuote) {
  const std::string name(100000, 'm');
  CliResult r = run_xring("plan --model " + name);
  expect_bad_input(r, {"unknown model", "(100000 bytes)"});
  EXPECT_LT(r.output.size(), 2000u) << "the message must not echo the whole name";
  r = run_xring("plan --model " + std::string(300, 'x') + ".json");
  expect_bad_input(r, {"cannot open the file"});
}

namespace {

/// The built-in tiny model with `key` set to the JSON text `value` (added or replaced).
std::string tiny_model_with(const std::string& key, const std::string& value) {
  json model = json::parse(run_xring("show model tiny").output);
  model.erase(key);
  const std::string text = model.dump();
  return text.substr(0, text.size() - 1) + ", \"" + key + "\": " + value + "}";
}

/// The tiny model with a field "x" holding arrays nested so that the document is `depth` deep
/// (the top-level object counts as 1).
std::string nested_document(int depth) {
  return tiny_model_with("x", std::string(depth - 1, '[') + "0" + std::string(depth - 1, ']'));
}

}  // namespace

// Item 3 + limits: nesting 64 deep parses (then fails as an unknown field), 65 is refused at
// parse time with the path; 200,000 deep (which crashed run, diff and show plan) likewise.
TEST(HostileInputs, NestingIsRefusedPastTheLimitForEveryInputKind) {
  const fs::path at_limit = scratch_path("deep64.json"), past = scratch_path("deep65.json");
  write_text(at_limit, nested_document(64));
  write_text(past, nested_document(65));
  expect_bad_input(run_xring("plan --model " + at_limit.string()), {"at \"x\"", "unknown field"});
  const std::string deep_path = "at \"x" + [] {
    std::string p;
    for (int i = 0; i < 63; ++i) p += "[0]";
    return p;
  }() + "\": nested more than 64";
  expect_bad_input(run_xring("plan --model " + past.string()), {past.string(), deep_path});
  for (const std::string& args :
       std::vector<std::string>{"plan --cluster ", "plan --workload ", "plan --device-profile ",
                                "import hf ", "show plan ", "diff " + past.string() + " ",
                                "gate --require feasible --plan ", "heads build "})
    expect_bad_input(run_xring(args + past.string()), {"nested more than 64"});

  json plan =
      planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", scratch_path("t.json"));
  const std::string text = plan.dump();
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  const fs::path p = scratch_path("deep-provenance.json");
  write_text(p, text.substr(0, text.size() - 1) + ", \"deep\": " + deep + "}");
  for (const std::string cmd : {"run ", "show plan ", "gate --require feasible --plan "})
    expect_bad_input(run_xring(cmd + p.string()), {"at \"deep[0]", "nested more than 64"});
  expect_bad_input(run_xring("plan --set 'model.x=" + std::string(100, '[') + "'"),
                   {"--set model.x", "nested more than 64"});
}

// Item 3: a value echoed into a message is cut short, however long it is.
TEST(HostileInputs, MessagesQuoteAtMostAShortExcerpt) {
  const fs::path p = scratch_path("long-string.json");
  write_text(p, tiny_model_with("layers", "\"" + std::string(1 << 20, 'x') + "\""));
  CliResult r = run_xring("plan --model " + p.string());
  expect_bad_input(r, {"at \"layers\"", "(1048576 bytes)"});
  EXPECT_LT(r.output.size(), 1000u) << r.output.substr(0, 1000);
  write_text(p, tiny_model_with(std::string(1 << 20, 'k'), "1"));
  r = run_xring("plan --model " + p.string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_LT(r.output.size(), 2000u) << r.output.substr(0, 2000);
}

// Item 5 + limits: directories and devices are refused by name; a 64 MiB file is read, one
// byte more is refused before parsing (--model /dev/zero read 4.2 GB).
TEST(HostileInputs, NonRegularAndOversizedFilesAreRefused) {
  expect_bad_input(run_xring("plan --model /dev/zero"), {"/dev/zero", "is a device"});
  const fs::path dir = scratch_path("a-folder.json");
  fs::create_directories(dir);
  expect_bad_input(run_xring("plan --model " + dir.string()), {"is a directory"});
  expect_bad_input(run_xring("show plan " + dir.string()), {"is a directory"});

  const std::string model = run_xring("show model tiny").output;
  ASSERT_EQ(model.front(), '{');
  const size_t limit = 64u << 20;
  const fs::path big = scratch_path("big-model.json");
  write_text(big, model + std::string(limit - model.size(), ' '));
  ASSERT_EQ(fs::file_size(big), limit);
  CliResult r = run_xring("plan --model " + big.string());
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
  write_text(big, model + std::string(limit - model.size() + 1, ' '));
  expect_bad_input(run_xring("plan --model " + big.string()), {"larger than 64 MiB"});
  // A pipe has no size up front: it is read up to the limit, not to its end.
  expect_bad_input(run_xring("plan --model /dev/stdin", "cat " + big.string() + " | "),
                   {"larger than 64 MiB"});
  fs::remove(big);
}

// Item 10: an output flag that cannot be written fails before the work, and no other output of
// the command is left behind (run --json was written although --trace then failed).
TEST(HostileInputs, ABadOutputPathLeavesNoOtherOutput) {
  const std::string missing = "/nonexistent-xring-folder/out.json";
  const fs::path plan = scratch_path("t.json");
  planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", plan);
  const fs::path out = scratch_path("never-written.out");
  fs::remove(out);
  const std::vector<std::string> commands = {
      "run " + plan.string() + " --json " + out.string() + " --trace " + missing,
      "plan --model tiny -o " + out.string() + " --trace " + missing,
      "gate --baseline " + test_data("gate/plan_base.json") + " --current " +
          test_data("gate/plan_pass.json") + " --markdown " + out.string() + " --junit " + missing,
      "whatif --model tiny --vary workload.frames=1,2 --csv " + out.string() + " --plot " +
          missing + ".svg",
      "plan --model tiny -o " + scratch_path("").string()};
  for (const auto& c : commands) {
    CliResult r = run_xring(c);
    EXPECT_EQ(r.exit_code, 2) << c << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << c;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  }
  // Item 11: `-o ""` wrote nothing and exited 0.
  expect_bad_input(run_xring("plan --model tiny -o ''"), {"must not be empty"});
  for (const auto& f : fs::directory_iterator(scratch_path("").parent_path()))
    EXPECT_EQ(f.path().string().find(".tmp."), std::string::npos) << f.path();
}

// Items 8 and 9: non-finite and out-of-range flags (nan passed CLI11's positive check,
// 1e10 s overflowed the clock, --scale 0 silently meant 1, --sigma nan wrote null shares).
TEST(HostileInputs, NonFiniteAndOutOfRangeFlagsAreRefused) {
  const fs::path plan = scratch_path("t.json");
  planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", plan);
  expect_bad_input(run_xring("run " + plan.string() + " --timeout nan"), {"--timeout", "finite"});
  expect_bad_input(run_xring("run " + plan.string() + " --timeout 1e10"), {"--timeout"});
  expect_bad_input(run_xring("run " + plan.string() + " --timeout 0"), {"--timeout"});
  // The limit itself (one week) is accepted.
  EXPECT_EQ(run_xring("run " + plan.string() + " --timeout 604800").exit_code, 0);
  expect_bad_input(run_xring("run " + plan.string() + " --timeout 604801"), {"--timeout"});
  expect_bad_input(run_xring("run " + plan.string() + " --scale 0"), {"--scale", "(0, 1]"});
  expect_bad_input(run_xring("run " + plan.string() + " --scale nan"), {"--scale"});
  expect_bad_input(run_xring("heads synth --model tiny --sigma nan"), {"--sigma", "finite"});
}

// Item 9: quantities that overflow after unit scaling made every time "0 ps" and memory "inf".
TEST(HostileInputs, QuantitiesBeyondTheLargestAreRefused) {
  expect_bad_input(run_xring("plan --set cluster.gpu.peak_bf16=1e300PFLOP/s"),
                   {"at \"gpu.peak_bf16\"", "larger than 1e+21", "check the unit"});
  expect_bad_input(run_xring("plan --set model.params=1e308"),
                   {"at \"params\"", "larger than 1e+18"});
  // The largest count is accepted (the plan is infeasible, not wrong), one past it is not.
  CliResult r = run_xring("plan --set model.params=1e18");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("inf"), std::string::npos) << r.output;
  expect_bad_input(run_xring("plan --set model.params=1.1e18"), {"at \"params\""});
  expect_bad_input(run_xring("plan --set cluster.gpu.memory=2EB"), {"at \"gpu.memory\""});
}

// Item 5 + limits: recommend searched 10^9 GPUs for a minute; sweeps took 10^6 points.
TEST(HostileInputs, SearchAndSweepSizesAreBounded) {
  expect_bad_input(run_xring("recommend --model tiny --gpu h100-sxm --max-gpus 1000000000"),
                   {"--max-gpus must be between 1 and 4096"});
  expect_bad_input(run_xring("recommend --model tiny --gpu h100-sxm --max-gpus 4097"),
                   {"--max-gpus"});
  const auto started = std::chrono::steady_clock::now();
  CliResult r = run_xring(
      "recommend --model tiny --gpu h100-sxm --max-gpus 4096 --top 1 "
      "--objective max_throughput_per_gpu");
  EXPECT_LE(r.exit_code, 1) << r.output;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));
  expect_bad_input(run_xring("whatif --model tiny --vary workload.frames=1..1001:+1 --vary "
                             "workload.text_tokens=1..1000:+1"),
                   {"1001000+ points", "more than the 1000000"});
  // 10,000 points stream in seconds (the limit, 1,000,000, would take minutes here).
  r = run_xring(
      "whatif --model tiny --vary workload.frames=1..100:+1 --vary "
      "workload.text_tokens=1..100:+1 --metric iteration_time_s -j 2");
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
  expect_bad_input(run_xring("whatif --model tiny --vary workload.frames=1..2000000:+1"),
                   {"more than 1000000 values"});
}

// Item 11: an unknown --metric was reported only after the whole sweep (here: after a point's
// own error); a visual workload on a text-only model blamed only the workload.
TEST(HostileInputs, SmallerChecksComeFirstAndNameTheRightThing) {
  expect_bad_input(run_xring("whatif --model tiny --vary workload.frames=-1,2 --metric nope"),
                   {"unknown metric \"nope\""});
  expect_bad_input(run_xring("plan --model llama-3-70b --workload video-qa"),
                   {"builtin:video-qa", "at \"frames\"", "cross_attention_layers is empty"});
  expect_bad_input(run_xring("plan --model llama-3-70b --workload video-qa --set "
                             "workload.frames=null --set workload.visual_tokens=100"),
                   {"at \"visual_tokens\""});
}

// Item 4: --trace of a model with very many cross-attention layers ran out of memory (and
// unwound into a noexcept frame); the trace's size is checked before it is written. Since
// issue 18 the trace streams and merges ring steps, so the limit counts merged events:
// 20,000 layers x 32 ranks x (projections, steps, transfers) + 3 x 32 of metadata.
TEST(HostileInputs, OversizedTraceIsRefusedBeforeItIsBuilt) {
  json model = json::parse(run_xring("show model tiny").output);
  model["layers"] = 20000;
  model["cross_attention_layers"] = json::array();
  for (int i = 0; i < 20000; ++i) model["cross_attention_layers"].push_back(i);
  const fs::path p = written("many-layers.json", model);
  const std::string args = "plan --model " + p.string() +
                           " --cluster h100-sxm-32 --set workload.frames=4 --strategy query_ring "
                           "--ranks 32";
  const fs::path trace = scratch_path("never.trace.json");
  const fs::path plan = scratch_path("never.plan.json");
  CliResult r = run_xring(args + " -o " + plan.string() + " --trace " + trace.string());
  EXPECT_EQ(r.exit_code, 2) << r.output.substr(0, 2000);
  EXPECT_FALSE(fs::exists(plan));  // all outputs or none
  EXPECT_NE(r.output.find("--trace: the timeline would hold 1920096 events, more than 1000000 "
                          "(20000 layers on 32 ranks, ring steps merged)"),
            std::string::npos)
      << r.output.substr(0, 2000);
  EXPECT_FALSE(fs::exists(trace));
  r = run_xring(args);  // the plan itself is fine
  EXPECT_EQ(r.exit_code, 0) << r.output.substr(0, 2000);
}

// Item 11: a fault that can never fire ran to the end and exited 0, as if it had been tested.
TEST(HostileInputs, AnInjectedFaultThatNeverFiresIsAnError) {
  const fs::path plan = scratch_path("ring.json");
  planned(
      "--model tiny --cluster h100-sxm-8 --set workload.frames=4 --strategy query_ring "
      "--ranks 8",
      plan);
  expect_bad_input(run_xring("run " + plan.string() + " --inject-fault 1:1000:fail"),
                   {"--inject-fault", "send #1000 never happens", "choose a smaller MESSAGE"});
  CliResult r = run_xring("run " + plan.string() + " --inject-fault 1:1:fail");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("injected fault"), std::string::npos) << r.output;
}

// Features since issue 16 (streaming runs, decode placement, output flags), attacked in issue 16h.

namespace {

const char* kStreamPlanArgs =
    "--model tiny --cluster h100-1 --workload video-stream --set workload.query_interval_s=600";

}  // namespace

// A streaming plan's section disagreeing with the workload it echoes ran and "verified": fps 0
// became one frame standing for the whole hour with 312 GiB usable; fps 1e300 reported "usable
// 5.82e-294 B" and an out of memory the plan never had; a memory curve of 1e308 bytes made the
// usable memory negative; a plan whose phase said decode ran as a stream.
TEST(HostileInputs, StreamingSectionMustAgreeWithItsWorkload) {
  const json good = planned(kStreamPlanArgs, scratch_path("stream.json"));
  const std::vector<std::pair<std::string, json>> fields = {{"fps", json(0)},
                                                            {"fps", json(1e300)},
                                                            {"stream_seconds", json(0)},
                                                            {"stream_seconds", json(1e300)}};
  for (const auto& [field, value] : fields) {
    json bad = good;
    bad["streaming"][field] = value;
    const fs::path p = written("stream-section.json", bad);
    expect_bad_input(run_xring("run " + p.string() + " --scale 0.25"),
                     {p.string(), "at \"streaming." + field + "\"",
                      "differs from inputs.workload." + field, "re-run xring plan"});
  }
  json bad = good;
  bad["streaming"]["policies"][1]["memory_over_time"][0][1] = -1e300;
  expect_bad_input(
      run_xring("run " + written("curve.json", bad).string() + " --scale 0.25"),
      {"at \"streaming.policies[1].memory_over_time[0][1]\"", "-1e+300 bytes is negative"});
  bad = good;
  bad["streaming"]["policies"][1]["memory_over_time"][3][0] = -1;
  expect_bad_input(run_xring("show plan " + written("curve.json", bad).string()),
                   {"memory_over_time[3][0]", "a time of -1 s is negative"});
  // Weights and text cache of 1e308 bytes at t = 0: nothing is left for the cache (the usable
  // memory was shown as -5.684e+294 TiB and the stream stopped at its first frame, exit 0).
  bad = good;
  bad["streaming"]["policies"][1]["memory_over_time"][0][1] = 1e308;
  expect_bad_input(run_xring("run " + written("curve.json", bad).string() + " --scale 0.25"),
                   {"nothing is left for the cache", "memory_over_time[0]"});
  // So in a plan xring wrote: llama-3-70b's weights do not fit one H100 (feasible: false).
  const fs::path big = scratch_path("stream-70b.json");
  planned(
      "--model llama-3-70b --cluster h100-1 --workload video-stream --set "
      "workload.tokens_per_frame=16",
      big);
  expect_bad_input(run_xring("run " + big.string() + " --scale 0.01"),
                   {"nothing is left for the cache", "the plan is infeasible"});
  bad = good;
  bad["phase"] = "decode";
  expect_bad_input(
      run_xring("run " + written("phase.json", bad).string() + " --scale 0.25"),
      {"at \"phase\"", "\"decode\" differs from inputs.workload.phase (\"streaming\")"});
  // The curve at its bounds is accepted: 0 bytes at t = 0, any bytes at the end of the stream.
  bad = good;
  bad["streaming"]["policies"][0]["memory_over_time"] = json::array({{0, 0}, {3600, 1e300}});
  EXPECT_EQ(run_xring("show plan " + written("curve.json", bad).string()).exit_code, 0);
}

// Two limits whose product was unbounded: 100,000 queries (a query every 0.036 s) of 32 steps,
// or 6 queries of 2^20 steps (generate_tokens 2^26), each ran past an hour. The queries' decode
// work is bounded as a whole, before the stream starts.
TEST(HostileInputs, StreamingDecodeWorkIsBoundedBeforeTheRun) {
  const json good = planned(kStreamPlanArgs, scratch_path("stream.json"));
  for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
           {"query_interval_s", json(0.036)}, {"generate_tokens", json(67108864)}}) {
    json bad = good;
    bad["inputs"]["workload"][field] = value;
    const fs::path p = written("stream-work.json", bad);
    const auto started = std::chrono::steady_clock::now();
    expect_bad_input(run_xring("run " + p.string() + " --scale 0.25"),
                     {p.string(), "token-steps on the cpu backend", "limit 2^28", "--scale"});
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  }
}

// A head listed twice on one GPU ran as two copies there and verified.
TEST(HostileInputs, DecodeHeadCopiedTwiceOntoOneGpuIsRefused) {
  json bad = planned(kDecodePlanArgs, scratch_path("decode.json"));
  bad["decode"]["heads"][0]["gpus"] = json::array({0, 0});
  bad["decode"]["heads"][0]["requests"] = json::array({3, 3});
  expect_bad_input(run_xring("run " + written("twice.json", bad).string()),
                   {"at \"decode.heads[0].gpus[1]\"", "GPU 0 holds a copy of this head twice"});
}

// DecodeSection::copies(h) trusts first_copy/copy_count: the reader makes them from a head's
// gpus and requests, which must agree in length. A head on no GPU, copies serving another
// batch than the replica's, or a head left out passed `show plan` (exit 0) and failed `run`
// only after its buffers were filled, naming no field. All are refused by path, by both.
TEST(HostileInputs, DecodeHeadCopiesMustServeTheBatchOnTheReplicasGpus) {
  const json good = planned(kDecodePlanArgs, scratch_path("decode.json"));
  ASSERT_EQ(good["decode"]["gpus"], 8);
  ASSERT_EQ(good["decode"]["batch_per_replica"], 6);
  ASSERT_EQ(good["decode"]["heads"].size(), 40u * 8);
  struct Case {
    json gpus, requests;
    std::string why;
  };
  const std::vector<Case> cases = {
      {json::array({0, 1}), json::array({6}),
       "at \"decode.heads[5].requests\": needs one entry per GPU in gpus"},
      {json::array({0}), json::array({3, 3}),
       "at \"decode.heads[5].requests\": needs one entry per GPU in gpus"},
      {json::array(), json::array(), "at \"decode.heads[5].gpus\": no GPU holds this head"},
      {json::array({8}), json::array({6}),
       "at \"decode.heads[5].gpus[0]\": 8 is outside 0..7 (the replica's GPUs)"},
      {json::array({0, 2147483647}), json::array({3, 3}),
       "at \"decode.heads[5].gpus[1]\": 2147483647 is outside 0..7"},
      {json::array({0}), json::array({1}),
       "at \"decode.heads[5].requests\": the copies serve 1 requests, not the replica's batch "
       "of 6"},
      {json::array({0, 1}), json::array({6, 6}),
       "at \"decode.heads[5].requests\": the copies serve 12 requests"},
      {json::array({0, 1}), json::array({2147483647, 2147483647}),
       "at \"decode.heads[5].requests[0]\": 2147483647 is outside 0..6"}};
  for (const Case& c : cases) {
    json bad = good;
    bad["decode"]["heads"][5]["gpus"] = c.gpus;
    bad["decode"]["heads"][5]["requests"] = c.requests;
    const fs::path p = written("copies.json", bad);
    for (const std::string command : {"show plan ", "run "})
      expect_bad_input(run_xring(command + p.string()), {p.string() + ": " + c.why});
  }
  json missing = good;
  missing["decode"]["heads"].erase(7);
  const fs::path p = written("missing-head.json", missing);
  for (const std::string command : {"show plan ", "run "})
    expect_bad_input(run_xring(command + p.string()),
                     {"at \"decode.heads\": places 319 heads, not the 40 self-attention layers "
                      "x 8 kv heads of mistral-small-24b"});
  // Two copies that split the batch are a plan (fair copying's).
  json split = good;
  split["decode"]["heads"][5]["gpus"] = json::array({5, 0});
  split["decode"]["heads"][5]["requests"] = json::array({2, 4});
  EXPECT_EQ(run_xring("show plan " + written("split.json", split).string()).exit_code, 0);
}

// Two outputs naming one file: plan -o a --trace a and gate --markdown a --junit a failed in
// the rename and left one of them behind; run --json a.svg --plot a.svg and whatif --csv a.svg
// --plot a.svg exited 0 with the picture in place of the data; gate --markdown over its own
// --baseline replaced the baseline with markdown. All are refused before any work.
TEST(HostileInputs, OutputsThatShareAFileAreRefusedBeforeAnyWork) {
  const fs::path dir = scratch_path("shared-outputs");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string a = (dir / "a.json").string(), svg = (dir / "a.svg").string();
  const fs::path stream = scratch_path("stream.json");
  planned(kStreamPlanArgs, stream);
  const fs::path base = dir / "base.json";
  fs::copy_file(test_data("gate/plan_base.json"), base);
  fs::create_directories(dir / "sub");
  const fs::path hf = dir / "config.json";
  fs::copy_file(test_data("hf/llama-3-70b.json"), hf);
  const std::string hf_text = read_json_at(hf).dump();
  const std::string base_text = read_json_at(base).dump();
  const std::string stream_text = read_json_at(stream).dump();
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"plan --model tiny -o " + a + " --trace " + a, {"--trace " + a, "-o names the same file"}},
      {"run " + stream.string() + " --scale 0.1 --json " + a + " --trace " + a,
       {"--trace", "--json names the same file"}},
      {"run " + stream.string() + " --scale 0.1 --json " + svg + " --plot " + svg,
       {"--plot " + svg, "--json names the same file"}},
      {"run " + stream.string() + " --scale 0.1 --json " + (dir / "a.gp").string() + " --plot " +
           svg,
       {"--plot's gnuplot script", "--json names the same file"}},
      {"run " + stream.string() + " --json " + stream.string(),
       {"--json", "the plan names the same file as its input"}},
      {"gate --baseline " + base.string() + " --current " + test_data("gate/plan_pass.json") +
           " --markdown " + a + " --junit " + a,
       {"--junit " + a, "--markdown names the same file"}},
      {"gate --baseline " + base.string() + " --current " + test_data("gate/plan_pass.json") +
           " --markdown " + (dir / "." / "base.json").string(),
       {"--markdown", "--baseline names the same file as its input"}},
      {"whatif --model tiny --vary workload.frames=1,2 --csv " + svg + " --plot " + svg,
       {"--plot " + svg, "--csv names the same file"}},
      {"plan --model tiny -o " + a + " --trace " + (dir / "sub" / ".." / "a.json").string(),
       {"-o names the same file"}},
      {"import hf " + hf.string() + " -o " + hf.string(),
       {"the config names the same file as its input"}}};
  for (const auto& [command, needles] : cases) {
    expect_bad_input(run_xring(command), needles);
    EXPECT_FALSE(fs::exists(a)) << command;
    EXPECT_FALSE(fs::exists(svg)) << command;
  }
  EXPECT_EQ(read_json_at(base).dump(), base_text);
  EXPECT_EQ(read_json_at(stream).dump(), stream_text);
  EXPECT_EQ(read_json_at(hf).dump(), hf_text);
  // Distinct paths still work together.
  CliResult r = run_xring("plan --model tiny -o " + a + " --trace " + (dir / "t.json").string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

// A run report's streaming numbers and --repeat samples were taken as they came: a sample of
// -1 s became the median, samples of 1e308 s a "+inf%" change and a "±inf s" noise bound that
// passed, a denormal baseline "+inf%", frame_time_s 0 an improvement, oom_at_s -1 a value.
TEST(HostileInputs, GateRefusesMeaninglessRunNumbers) {
  const std::string base = test_data("gate/report_noisy_base.json");
  const std::vector<std::pair<json, std::string>> samples = {
      {json::array({-1, 1, 2}), "[0]\": must be between 1e-09 and 1e+09"},
      {json::array({1e-3, 1e308}), "[1]\": must be between 1e-09 and 1e+09"},
      {json::array({5e-324}),
       "[0]\": must be between 1e-09 and 1e+09 (a measured time in seconds), got 4.94066e-324"},
      {json::array({0.1, 0}), "[1]\": must be between 1e-09 and 1e+09 (a measured time"}};
  for (const auto& [values, why] : samples) {
    json cur = read_json_at(test_data("gate/report_noisy_cur.json"));
    cur["layers"][0]["measured_samples_s"] = values;
    const fs::path p = written("noisy.json", cur);
    expect_bad_input(run_xring("gate --baseline " + base + " --current " + p.string()),
                     {p.string(), "at \"layers[0].measured_samples_s" + why});
    expect_bad_input(run_xring("gate --baseline " + p.string() + " --current " + base),
                     {"layers[0].measured_samples_s"});
  }
  const std::string stream = test_data("gate/report_streaming.json");
  const std::vector<std::tuple<std::string, json, std::string>> fields = {
      {"peak_cache_bytes", json(1e308), "between 0 and 1e+18 (bytes)"},
      {"peak_cache_bytes", json(-1), "between 0 and 1e+18"},
      {"oom_at_s", json(-1), "between 0 and 3600 (a second of the stream)"},
      {"oom_at_s", json(3601), "between 0 and 3600"},
      {"tokens_per_s", json(0), "null where not measured"},
      {"frame_time_s", json(0), "between 1e-09 and 1e+09"},
      {"frame_time_s", json(5e-324), "between 1e-09 and 1e+09"},
      {"seconds_per_frame", json(0), "streaming.frames_planned\": must be between 1e-09"}};
  for (const auto& [field, value, why] : fields) {
    json cur = read_json_at(stream);
    cur["streaming"][field] = value;
    const fs::path p = written("stream-report.json", cur);
    expect_bad_input(run_xring("gate --baseline " + stream + " --current " + p.string()),
                     {p.string(), why});
  }
  // The bounds themselves are numbers a run can report.
  json cur = read_json_at(stream);
  cur["streaming"]["oom_at_s"] = 3600;
  cur["streaming"]["frame_time_s"] = 1e-9;
  EXPECT_LE(run_xring("gate --baseline " + stream + " --current " + written("s.json", cur).string())
                .exit_code,
            1);
}

// A report without --repeat samples had its measured.time_s gated as it came (only samples were
// checked): -1 s, 0 s, a denormal or 1e308 s was a value, and a denormal predicted.time_s made
// the prediction error inf. Layer times without samples, throughput and layer indices alike.
TEST(HostileInputs, GateRefusesMeaninglessTimesWithoutSamples) {
  const std::string base = test_data("gate/report_noisy_base.json");
  json plain = read_json_at(test_data("gate/report_noisy_cur.json"));
  plain["measured"].erase("samples_s");
  for (json& layer : plain["layers"]) layer.erase("measured_samples_s");
  const std::vector<std::tuple<std::string, json, std::string>> cases = {
      {"/measured/time_s", json(-1), "at \"measured.time_s\": must be between 1e-09 and 1e+09"},
      {"/measured/time_s", json(0), "at \"measured.time_s\": must be between 1e-09"},
      {"/measured/time_s", json(5e-324), "(a measured time in seconds), got 4.94066e-324"},
      {"/measured/time_s", json(1e308), "at \"measured.time_s\": must be between 1e-09"},
      {"/measured/throughput_tokens_per_s", json(-5),
       "at \"measured.throughput_tokens_per_s\": must be between 1e-09 and 1e+21"},
      {"/measured/throughput_tokens_per_s", json(1e300), "(tokens per second), got 1e+300"},
      {"/predicted/time_s", json(5e-324),
       "at \"predicted.time_s\": must be between 1e-09 and 1e+09 (seconds; 0 or null where"},
      {"/predicted/time_s", json(-1), "at \"predicted.time_s\": must be between 1e-09"},
      {"/layers/1/measured_time_s", json(0),
       "at \"layers[1].measured_time_s\": must be between 1e-09 and 1e+09"},
      {"/layers/0/measured_time_s", json(1e300), "layers[0].measured_time_s"},
      {"/layers/0/index", json(1e300), "at \"layers[0].index\": must be between 0 and 99999"},
      {"/layers/0/index", json(-1), "at \"layers[0].index\": must be between 0 and 99999"},
      {"/layers/0/index", json(2.5), "at \"layers[0].index\": must be a whole number (a layer), got 2.5"}};
  for (const auto& [pointer, value, why] : cases) {
    json cur = plain;
    cur[json::json_pointer(pointer)] = value;
    const fs::path p = written("plain-report.json", cur);
    expect_bad_input(run_xring("gate --baseline " + base + " --current " + p.string()),
                     {p.string(), why});
    expect_bad_input(run_xring("gate --baseline " + p.string() + " --current " + base),
                     {p.string(), why});
  }
  // The bounds are values a run can report; null still means "not measured"; the streaming
  // report's empty samples_s and predicted time 0 ("nothing predicted") are still read.
  json cur = plain;
  cur["measured"]["time_s"] = 1e-9;
  cur["layers"][0]["measured_time_s"] = 1e9;
  cur["layers"][1]["measured_time_s"] = nullptr;
  cur["predicted"]["time_s"] = 1e-9;
  EXPECT_LE(run_xring("gate --baseline " + base + " --current " + written("b.json", cur).string())
                .exit_code,
            1);
  const std::string stream = test_data("gate/report_streaming.json");
  EXPECT_EQ(run_xring("gate --baseline " + stream + " --current " + stream).exit_code, 0);
}

// heads build took scores of any shape: 1 layer x 2 kv heads for tiny (2 x 2) made a profile
// that every plan then refused, and scores naming no model made one for nothing.
TEST(HostileInputs, HeadsBuildRefusesScoresThatDoNotFitTheirModel) {
  const fs::path out = scratch_path("built.heads.json");
  fs::remove(out);
  const json head = json::array({3, 2, 1});
  const json two_by_two = json::array({json::array({head, head}), json::array({head, head})});
  const json one_by_two = json::array({json::array({head, head})});
  const json two_by_three =
      json::array({json::array({head, head, head}), json::array({head, head, head})});
  const std::vector<std::tuple<json, std::string, std::vector<std::string>>> cases = {
      {one_by_two, "", {"at \"scores\": holds 1 layers x 2 kv heads but model tiny has 2 "
                        "self-attention layers x 2 kv heads"}},
      {two_by_three, "", {"at \"scores\": holds 2 layers x 3 kv heads but model tiny"}},
      {two_by_two, " --model mistral-small-24b",
       {"at \"model\": names tiny but --model mistral-small-24b is model mistral-small-24b"}}};
  for (const auto& [scores, flags, needles] : cases) {
    const fs::path p =
        written("scores.json", {{"model", "tiny"}, {"source", "test"}, {"scores", scores}});
    std::vector<std::string> all = needles;
    all.push_back(p.string() + ": at");
    expect_bad_input(run_xring("heads build " + p.string() + flags + " -o " + out.string()), all);
    EXPECT_FALSE(fs::exists(out));
  }
  const fs::path unknown =
      written("scores.json", {{"model", "tinyy"}, {"source", "t"}, {"scores", two_by_two}});
  expect_bad_input(run_xring("heads build " + unknown.string() + " -o " + out.string()),
                   {unknown.string() + ": at \"model\": unknown model \"tinyy\"",
                    "pass --model FILE for a model that is not built in"});
  EXPECT_FALSE(fs::exists(out));
  // The model's own shape is built, by its name or its file.
  const fs::path fits =
      written("scores.json", {{"model", "tiny"}, {"source", "t"}, {"scores", two_by_two}});
  const std::string tiny_file = test_data("../../profiles/models/tiny.json");
  for (const std::string& flags :
       std::vector<std::string>{"", " --model tiny", " --model " + tiny_file}) {
    CliResult r = run_xring("heads build " + fits.string() + flags + " -o " + out.string());
    EXPECT_EQ(r.exit_code, 0) << flags << r.output;
    EXPECT_EQ(read_json_at(out)["layers"], 2) << flags;
    fs::remove(out);
  }
}

// A head profile of another model with the same shape (40 layers x 8 kv heads) was used
// silently: its heads are not the plan's model's heads. A profile is used for the model it names.
TEST(HostileInputs, HeadProfileOfAnotherModelIsRefused) {
  const fs::path synth = scratch_path("mistral.heads.json");
  ASSERT_EQ(run_xring("heads synth --model mistral-small-24b -o " + synth.string()).exit_code, 0);
  json other = read_json_at(synth);
  other["model"] = "mistral-small-24b-base";
  other["name"] = "mistral-small-24b-base";
  const fs::path p = written("other.heads.json", other);
  const fs::path out = scratch_path("other-plan.json");
  fs::remove(out);
  const std::string inputs = " --model mistral-small-24b --workload fairkv-decode --set "
                             "workload.head_profile=" + p.string();
  for (const std::string& command :
       {"plan" + inputs + " -o " + out.string(),
        "whatif" + inputs + " --vary workload.batch=1,2 --csv " + out.string()}) {
    expect_bad_input(
        run_xring(command),
        {p.string() + ": at \"model\": the profile is of model mistral-small-24b-base, not of "
                      "the plan's model mistral-small-24b",
         "xring heads synth --model mistral-small-24b"});
    EXPECT_FALSE(fs::exists(out));
  }
  // The profile synth made for the model plans; so does every shipped profile for its model.
  CliResult r = run_xring("plan --model mistral-small-24b --workload fairkv-decode --set "
                          "workload.head_profile=" + synth.string() + " -o " + out.string());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const std::string model : {"llama-3-70b", "mistral-small-24b"}) {
    r = run_xring("plan --model " + model + " --workload fairkv-decode --json");
    EXPECT_EQ(r.exit_code, 0) << model << r.output;
  }
}

// recommend --emit-plans naming a file was an "internal error" (exit 3) after the search.
TEST(HostileInputs, RecommendEmitPlansIntoAFileIsBadInput) {
  const fs::path file = scratch_path("emit-here");
  write_text(file, "x");
  expect_bad_input(
      run_xring("recommend --model tiny --gpu h100-sxm --max-gpus 8 --emit-plans " + file.string()),
      {"--emit-plans " + file.string(), "is a file; give a folder"});
}

// recommend --emit-plans wrote its plans one at a time: when the third could not be written
// (a folder in its place) the first two stayed, exit 2. And --emit-plans X --csv X wrote the CSV
// and then failed to make the folder. Now all plans or none, and a shared path is refused first.
TEST(HostileInputs, RecommendEmitPlansIsAllOrNone) {
  const fs::path dir = scratch_path("emit-all-or-none");
  fs::remove_all(dir);
  const std::string search =
      "recommend --model tiny --gpu h100-sxm --gpu a100-80gb --gpu h200 --max-gpus 8";
  const std::string args = search + " --top 3";
  CliResult r = run_xring(args + " --emit-plans " + dir.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<fs::path> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[2], "03-a100-80gb-1x8.plan.json");
  for (size_t blocked = 0; blocked < names.size(); ++blocked) {
    fs::remove_all(dir);
    fs::create_directories(dir / names[blocked]);
    const std::string path = (dir / names[blocked]).string();
    expect_bad_input(run_xring(args + " --emit-plans " + dir.string()),
                     {"--emit-plans " + path + " is a directory; give a file path",
                      "none of the 3 plans is left (all or none)"});
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1) << path;
  }
  // --emit-plans over --csv or --plot: refused before the search, nothing written.
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string same = (dir / "out").string();
  for (const std::string& other : {" --csv " + same, " --plot " + same + ".svg"}) {
    const std::string emit = other.find("--plot") != std::string::npos ? same + ".svg" : same;
    expect_bad_input(run_xring(args + " --emit-plans " + emit + other),
                     {"--emit-plans names the same file"});
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 0) << other;
  }
  // --top -3 printed an empty table and "wrote the top 0 plans", exit 0.
  for (const std::string top : {"0", "-3"})
    expect_bad_input(run_xring(search + " --top " + top + " --emit-plans " + same),
                     {"--top must be at least 1, got " + top});
  EXPECT_FALSE(fs::exists(same));
}

// An output over an existing device, pipe or link to one was committed by a rename that
// replaced the node itself: `plan -o /dev/full` (run as root) left a regular file in /dev, and
// `whatif --csv /dev/stdout` would replace the link. Refused by the flag, before any work.
TEST(HostileInputs, OutputsOverDevicesPipesAndLinksToThemAreRefused) {
  const fs::path fifo = scratch_path("a-fifo.json"), link = scratch_path("to-null.json");
  fs::remove(fifo);
  fs::remove(link);
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_symlink("/dev/null", link);
  const fs::path stream = scratch_path("stream.json");
  planned(kStreamPlanArgs, stream);
  for (const fs::path& p : {fifo, link}) {
    for (const std::string& command :
         {"plan --model tiny -o " + p.string(), "plan --model tiny --trace " + p.string(),
          "whatif --model tiny --vary workload.frames=1,2 --csv " + p.string(),
          "run " + stream.string() + " --scale 0.1 --json " + p.string()})
      expect_bad_input(run_xring(command), {p.string(), "is not a regular file"});
  }
  EXPECT_TRUE(fs::is_fifo(fifo));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

// explain on a streaming workload (no cross-attention layer is planned for a stream) explained
// a default layer of S_KV=0: "attention -nan FLOP/s", compute "0 s", exit 0.
TEST(HostileInputs, ExplainOfAStreamingWorkloadSaysThereIsNothingToSplit) {
  for (const std::string json_flag : {"", " --json"}) {
    CliResult r =
        run_xring("explain --model tiny --cluster h100-1 --workload video-stream" + json_flag);
    expect_bad_input(
        r, {"layer 1 of tiny is not planned for workload video-stream", "phase streaming"});
    EXPECT_EQ(r.output.find("nan"), std::string::npos) << r.output;
  }
}

// An unknown XRING_CPU_ISA was echoed whole (10,000 characters in, 10,097 out).
TEST(HostileInputs, AnUnknownCpuIsaIsQuotedShort) {
  const fs::path plan = scratch_path("t.json");
  planned("--model tiny --cluster h100-sxm-8 --set workload.frames=4", plan);
  CliResult r = run_xring("run " + plan.string(), "XRING_CPU_ISA=" + std::string(10000, 'x') + " ");
  expect_bad_input(r, {"XRING_CPU_ISA=xxx", "(10000 bytes): unknown instruction set"});
  EXPECT_LT(r.output.size(), 400u) << r.output.substr(0, 400);
}
