// Resource limits (docs/limits.md): each documented limit is accepted at its value and refused
// one past it with exit 2 naming the field and the range (issue 16, "make it stay fixed").
// Limits tested elsewhere: JSON nesting and file size, whatif points, --max-gpus, --timeout and
// quantity ranges in test_hostile_inputs.cpp.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_test_util.hpp"

using xring::test::CliResult;
using xring::test::run_xring;

namespace {

struct CountLimit {
  std::string field;  ///< a --set path
  long long largest;  ///< the largest value accepted
  std::string extra;  ///< further flags a plan at the limit needs
};

/// A parameter count that agrees with the largest shapes (the model reader checks that the
/// layers do not imply more parameters than `params` says).
const std::string kHugeParams = "--set model.params=1e15";

/// The counts a spec may give, at the values docs/limits.md states.
const std::vector<CountLimit>& count_limits() {
  static const std::vector<CountLimit> limits = {
      {"model.layers", 100000, kHugeParams},
      {"model.head_dim", 1024, kHugeParams},
      {"model.hidden_size", 1 << 20, kHugeParams},
      {"model.mlp_size", 1 << 20, kHugeParams},
      {"model.vocab_size", 1 << 24, kHugeParams},
      {"cluster.nodes", 65536, "--cluster h100-sxm-32"},
      {"cluster.gpus_per_node", 1024, ""},
      {"workload.batch", 1 << 20, ""},
      {"workload.text_tokens", 1 << 26, ""},
      {"workload.frames", 1 << 28, ""},
      {"workload.visual_tokens", 1ll << 40, "--set workload.frames=null"},
  };
  return limits;
}

}  // namespace

TEST(ResourceLimits, EveryCountIsAcceptedAtItsLimitAndRefusedOnePast) {
  for (const CountLimit& l : count_limits()) {
    const std::string base = "plan --model tiny " + l.extra + " --set " + l.field + "=";
    CliResult at = run_xring(base + std::to_string(l.largest));
    EXPECT_EQ(at.exit_code, 0) << l.field << "=" << l.largest << "\n" << at.output.substr(0, 2000);
    EXPECT_EQ(at.output.find("must be between"), std::string::npos) << at.output.substr(0, 2000);
    CliResult past = run_xring(base + std::to_string(l.largest + 1));
    EXPECT_EQ(past.exit_code, 2) << l.field << "=" << l.largest + 1 << "\n" << past.output;
    const std::string field = l.field.substr(l.field.find('.') + 1);
    EXPECT_NE(past.output.find("at \"" + field + "\""), std::string::npos) << past.output;
    EXPECT_NE(past.output.find("and " + std::to_string(l.largest)), std::string::npos)
        << past.output;
  }
}

TEST(ResourceLimits, HeadsAreAcceptedUpTo4096) {
  // 4096 heads of 256: hidden 2^20, the largest hidden size; kv_heads must divide heads.
  const std::string model =
      "plan --model tiny --set model.hidden_size=1048576 --set model.head_dim=256 "
      "--set model.kv_heads=8 " + kHugeParams + " ";
  CliResult at = run_xring(model + "--set model.heads=4096");
  EXPECT_EQ(at.exit_code, 0) << at.output.substr(0, 2000);
  CliResult past = run_xring(model + "--set model.heads=4097");
  EXPECT_EQ(past.exit_code, 2) << past.output;
  EXPECT_NE(past.output.find("must be between 1 and 4096, got 4097"), std::string::npos)
      << past.output;
}

TEST(ResourceLimits, AQuotedValueIsWholeUpTo80CharactersAndCutPast) {
  nlohmann::json model = nlohmann::json::parse(run_xring("show model tiny").output);
  const std::string at(80, 'a'), past(81, 'b');
  const auto model_file = xring::test::scratch_path("quoted-layers.json");
  model["layers"] = at;
  xring::test::write_text(model_file, model.dump());
  CliResult r = run_xring("plan --model " + model_file.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the string \"" + at + "\""), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("bytes)"), std::string::npos) << r.output;
  model["layers"] = past;
  xring::test::write_text(model_file, model.dump());
  r = run_xring("plan --model " + model_file.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(r.output.find(past), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(81 bytes)"), std::string::npos) << r.output;
}
