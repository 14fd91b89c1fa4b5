// whatif through the binary (issue 18): streamed rows equal the CSV the collecting
// implementation wrote, axes are read before any point is planned, --json is one object.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using xring::test::run_xring;
using xring::test::scratch_path;
using xring::test::test_data;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// The golden files were written by whatif before it streamed (commit 0c74630, which kept every
// plan and wrote the CSV at the end). Two threads make points finish out of order; the rows
// must still come in point order with the same bytes. A change to the cost model that moves
// these numbers regenerates them with the same commands.
TEST(CliWhatif, StreamedCsvEqualsTheCollectedCsv) {
  const fs::path prefill = scratch_path("streamed-prefill.csv");
  auto r = run_xring(
      "whatif --model mplug-owl3-7b --cluster a100-80gb-16 --vary workload.frames=16..256:x4 "
      "--vary cluster.nodes=1,4 -j 2 --csv " +
      prefill.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(slurp(prefill), slurp(test_data("whatif/prefill-frames-by-nodes.csv")));
  const fs::path decode = scratch_path("streamed-decode.csv");
  r = run_xring(
      "whatif --model llama-3-70b --workload fairkv-decode --vary "
      "workload.kv_budget=256..4096:x4 --vary workload.kv_policy=uniform,adaptive -j 2 --csv " +
      decode.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(slurp(decode), slurp(test_data("whatif/decode-budget-by-policy.csv")));
}

// A bandwidth without a unit on the second axis of a 20,000-point sweep: refused before the
// first point (the table's header is never printed), no CSV and no temporary file left.
TEST(CliWhatif, AxesAreReadBeforeAnyPointIsPlanned) {
  const fs::path csv = scratch_path("never.csv");
  fs::remove(csv);
  auto r = run_xring(
      "whatif --model tiny --vary workload.frames=1..10000:+1 --vary "
      "cluster.intra_node.bandwidth=450GB/s,450 --csv " +
      csv.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--vary cluster.intra_node.bandwidth=450: "), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("at \"intra_node.bandwidth\": needs an explicit unit"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("strategy"), std::string::npos) << r.output;  // no table began
  EXPECT_FALSE(fs::exists(csv));
  for (const auto& entry : fs::directory_iterator(csv.parent_path()))
    EXPECT_EQ(entry.path().filename().string().rfind("never.csv.tmp", 0), std::string::npos)
        << entry.path();
}

TEST(CliWhatif, JsonIsOneObjectWithEveryPoint) {
  auto r = run_xring(
      "whatif --model llama-3-70b --workload fairkv-decode --vary workload.batch=1,64 --vary "
      "workload.kv_budget=256,1024 --metric decode_tokens_per_s --metric streaming_oom_at_s "
      "--json 2>/dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json j = json::parse(r.output);
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(j["command"], "whatif");
  EXPECT_EQ(j["provenance"]["inputs"]["model"]["name"], "llama-3-70b");
  EXPECT_EQ(j["provenance"]["inputs"]["model"]["hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(j["provenance"]["varied"], json({"workload.batch", "workload.kv_budget"}));
  ASSERT_EQ(j["axes"].size(), 2u);
  EXPECT_EQ(j["axes"][1]["values"], json({256, 1024}));
  EXPECT_EQ(j["metrics"], json({"decode_tokens_per_s", "streaming_oom_at_s"}));
  ASSERT_EQ(j["points"].size(), 4u);  // the last axis varies fastest
  EXPECT_EQ(j["points"][1]["values"], json({{"workload.batch", 1}, {"workload.kv_budget", 1024}}));
  EXPECT_EQ(j["points"][2]["values"], json({{"workload.batch", 64}, {"workload.kv_budget", 256}}));
  for (const auto& p : j["points"]) {
    EXPECT_TRUE(p["feasible"].get<bool>());
    EXPECT_NE(p["strategy"].get<std::string>().find("decode tp8"), std::string::npos);
    EXPECT_GT(p["metrics"]["decode_tokens_per_s"].get<double>(), 0);
    EXPECT_TRUE(p["metrics"]["streaming_oom_at_s"].is_null());  // not a streaming workload
  }
  // A larger batch decodes more tokens per second in all (same budget).
  EXPECT_GT(j["points"][2]["metrics"]["decode_tokens_per_s"].get<double>(),
            j["points"][0]["metrics"]["decode_tokens_per_s"].get<double>());
}
