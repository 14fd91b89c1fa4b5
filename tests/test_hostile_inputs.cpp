// Hostile inputs (issue 16): out-of-range integers in plans, numbers beyond the double range,
// deep nesting, oversized and non-regular files, type errors in HF configs, non-finite flags and
// outputs of failed commands. Every case must exit 2 (bad input) naming the file and field, or 3
// for a runtime failure, and never crash, hang or say "internal error".
#include <gtest/gtest.h>

#include <string>
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
