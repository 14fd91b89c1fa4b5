// The `xring` binary end to end: every bad-input file exits 2 naming its field, outputs are
// all-or-nothing, and the good paths print and write what they promise.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct Result {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Result xring(const std::string& args) {
  std::string command = std::string(XRING_BINARY) + " " + args + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  Result r{-1, ""};
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe.get())) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe.release());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string data(const std::string& name) { return std::string(XRING_TEST_DATA) + "/" + name; }

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("xring_cli_tests_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

}  // namespace

TEST(Cli, EveryBadInputFileExitsTwoAndNamesTheField) {
  std::ifstream manifest(data("bad/cases.json"));
  json cases = json::parse(manifest);
  ASSERT_GE(cases.size(), 20u);
  for (const auto& c : cases) {
    std::string file = data("bad/" + c["file"].get<std::string>());
    std::string flag = c["flag"];
    fs::path out = scratch("never-written.json");
    std::string args = flag == "plan" ? "show plan " + file : "plan " + flag + " " + file + " -o " + out.string();
    Result r = xring(args);
    EXPECT_EQ(r.exit_code, 2) << c["file"] << "\n" << r.output;
    EXPECT_NE(r.output.find(c["file"].get<std::string>()), std::string::npos)
        << "the message must name the file\n" << r.output;
    for (const auto& needle : c["expect"])
      EXPECT_NE(r.output.find(needle.get<std::string>()), std::string::npos)
          << c["file"] << ": expected " << needle << " in\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(out)) << "a failed plan must not leave an output file";
  }
}

TEST(Cli, DefaultPlanRunsWithNoArguments) {
  Result r = xring("plan");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("llama-3.2-11b-vision on h100-sxm-8"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("feasible: yes"), std::string::npos);
  EXPECT_NE(r.output.find("query_ring"), std::string::npos);
}

TEST(Cli, WritesPlanAndTraceThatReadBack) {
  fs::path plan = scratch("plan.json"), trace = scratch("plan.trace.json");
  Result r = xring("plan --model mplug-owl3-7b --cluster a100-80gb-16 --set workload.frames=512 -o " +
                   plan.string() + " --trace " + trace.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json p = read_json(plan);
  EXPECT_EQ(p["schema_version"], 1);
  EXPECT_EQ(p["inputs"]["workload"]["frames"], 512);
  EXPECT_EQ(p["inputs"]["overrides"][0], "workload.frames=512");
  EXPECT_TRUE(read_json(trace)["traceEvents"].is_array());
  Result shown = xring("show plan " + plan.string());
  EXPECT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("mplug-owl3-7b on a100-80gb-16"), std::string::npos);

  // A plan with a corrupted field is refused with its path.
  p["layers"][0]["strategy"] = "quer_ring";
  fs::path bad = scratch("bad-plan.json");
  std::ofstream(bad) << p.dump();
  Result refused = xring("show plan " + bad.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("layers[0].strategy"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("did you mean \"query_ring\""), std::string::npos) << refused.output;
  // So is a plan whose echoed inputs were edited into nonsense.
  json q = read_json(plan);
  q["inputs"]["cluster"]["nodes"] = 0;
  std::ofstream(bad) << q.dump();
  refused = xring("show plan " + bad.string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("inputs.cluster"), std::string::npos) << refused.output;
}

TEST(Cli, JsonGoesToStdout) {
  Result r = xring("plan --model tiny --json");
  ASSERT_EQ(r.exit_code, 0);
  json p = json::parse(r.output);
  EXPECT_EQ(p["inputs"]["model"]["name"], "tiny");
}

TEST(Cli, InfeasibleIsExitZeroWithReasons) {
  Result r = xring("plan --cluster h100-1 --set workload.frames=4096");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("feasible: NO"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("does not fit"), std::string::npos);
}

TEST(Cli, BadFlagsAndOverridesExitTwo) {
  for (const char* args : {"plan --model no-such-model", "plan --set workload.frames",
                           "plan --set workload.frame=3", "plan --strategy ring", "plan --ranks 3",
                           "plan --bogus", "plan --recompute", "explain --layer 4",
                           "plan --model /nonexistent/model.json", "show model nope"}) {
    Result r = xring(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
    EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
  }
}

TEST(Cli, ListShowAndExplain) {
  Result list = xring("list");
  ASSERT_EQ(list.exit_code, 0);
  for (const char* name : {"llama-3.2-11b-vision", "openflamingo-3b", "a30-8", "h100-sxm-32", "image-chat"})
    EXPECT_NE(list.output.find(name), std::string::npos) << name;
  Result show = xring("show cluster a30-8");
  ASSERT_EQ(show.exit_code, 0);
  EXPECT_EQ(json::parse(show.output)["inter_node"]["bandwidth"], "1.25GB/s");
  Result explain = xring("explain --model openflamingo-9b --cluster a30-8");
  ASSERT_EQ(explain.exit_code, 0) << explain.output;
  EXPECT_NE(explain.output.find("crossover"), std::string::npos);
  EXPECT_NE(explain.output.find("hide once"), std::string::npos);
}

TEST(Cli, HelpTeachesAndExitsZero) {
  Result r = xring("plan --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("--set"), std::string::npos);
  EXPECT_NE(r.output.find("Examples"), std::string::npos);
}
