// The command line's manners (issue 20): --quiet and --verbose, `xring help TOPIC`, progress
// for long runs, and pictures drawn without gnuplot warnings.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using xring::test::CliResult;
using xring::test::run_xring;
using xring::test::scratch_path;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

[[maybe_unused]] std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Runs a shell command line; what it prints on stdout (redirect stderr into it to see it).
CliResult run_shell(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  CliResult r{-1, ""};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) r.output.append(buf, n);
  const int status = pclose(pipe.release());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

/// `xring ARGS` with `env` before it: only what it prints on stderr.
CliResult stderr_of(const std::string& args, const std::string& env = "") {
  return run_shell(env + xring::test::xring_binary() + " " + args + " 2>&1 >/dev/null");
}

/// A two-layer plan of the tiny model that `xring run` executes in about a second.
fs::path tiny_plan() {
  const fs::path plan = scratch_path("ergonomics-tiny.plan.json");
  if (!fs::exists(plan)) {
    CliResult r = run_xring("plan --model tiny --cluster h100-sxm-8 -q -o " + plan.string());
    EXPECT_EQ(r.exit_code, 0) << r.output;
  }
  return plan;
}

}  // namespace

TEST(CliQuiet, ResultToAFilePrintsNothingButErrorsStillShow) {
  const fs::path out = scratch_path("quiet.plan.json");
  CliResult r = run_xring("plan --model tiny --quiet -o " + out.string());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "");
  EXPECT_TRUE(fs::exists(out));
  // Before the command as well as after it.
  CliResult before = run_xring("-q plan --model tiny -o " + out.string());
  EXPECT_EQ(before.exit_code, 0);
  EXPECT_EQ(before.output, "");
  CliResult bad = run_xring("plan --model no-such-model --quiet -o " + out.string());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_TRUE(contains(bad.output, "xring: error:")) << bad.output;
  EXPECT_TRUE(contains(bad.output, "no-such-model")) << bad.output;
}

TEST(CliQuiet, TheTableIsTheRequestedOutputWhenNoFileIsWritten) {
  CliResult table = run_xring("plan --model tiny --quiet");
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_TRUE(contains(table.output, "feasible: yes")) << table.output;
  CliResult json = run_xring("plan --model tiny --quiet --json -o " +
                             scratch_path("quiet-json.plan.json").string());
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_EQ(json.output.rfind("{", 0), 0u) << json.output.substr(0, 200);
}

TEST(CliQuiet, PlotNoticeIsQuietAndQuietExcludesVerbose) {
  const fs::path svg = scratch_path("quiet-frames.svg");
  const std::string sweep = "whatif --model tiny --vary workload.frames=2,4,8 --plot " + svg.string();
  CliResult loud = run_xring(sweep);
  ASSERT_EQ(loud.exit_code, 0) << loud.output;
  EXPECT_TRUE(contains(loud.output, "xring: wrote " + svg.string())) << loud.output;
  CliResult quiet = run_xring(sweep + " --quiet");
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.output, "");
  CliResult both = run_xring("plan --quiet --verbose");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_TRUE(contains(both.output, "excludes")) << both.output;
}

TEST(CliVerbose, SaysInputsDefaultsRatesAndTimingsOnStderr) {
  CliResult r = stderr_of("plan --verbose --model tiny --set workload.frames=8");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* line :
       {"xring: plan --cluster = h100-sxm-8 (the built-in default", "xring: read builtin:tiny (content hash ",
        "xring: read builtin:h100-sxm-8 (content hash ", "xring: applied --set workload.frames=8",
        "xring: rates: the GPU's datasheet peaks", "xring: planned in ",
        "; cost source published (attention at ", "xring: xring plan took "})
    EXPECT_TRUE(contains(r.output, line)) << line << "\n" << r.output;
  EXPECT_FALSE(contains(r.output, "plan --model =")) << "--model was given, not a default";
  CliResult normal = stderr_of("plan --model tiny");
  EXPECT_EQ(normal.output, "");
}

TEST(CliHelp, ListsTopicsAndPrintsOne) {
  CliResult list = run_xring("help");
  EXPECT_EQ(list.exit_code, 0);
  for (const char* topic : {"strategies", "kv-policies", "units", "files", "exit-codes", "limits"})
    EXPECT_TRUE(contains(list.output, std::string("\n  ") + topic + " ")) << topic << list.output;
  CliResult strategies = run_xring("help strategies");
  EXPECT_EQ(strategies.exit_code, 0);
  EXPECT_TRUE(contains(strategies.output, "query_ring  LV-XAttn")) << strategies.output;
  EXPECT_TRUE(contains(strategies.output, "docs/cost-model.md")) << strategies.output;
  CliResult codes = run_xring("help exit-codes");
  EXPECT_TRUE(contains(codes.output, "  2  bad input")) << codes.output;
  CliResult command = run_xring("help recommend");
  EXPECT_EQ(command.exit_code, 0);
  EXPECT_TRUE(contains(command.output, "--objective")) << command.output;
}

TEST(CliHelp, UnknownTopicSuggestsTheNearestAndExitsTwo) {
  CliResult r = run_xring("help strategie");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown help topic \"strategie\"; did you mean \"strategies\"?"))
      << r.output;
  CliResult far = run_xring("help zzzz");
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_TRUE(contains(far.output, "(topics: strategies, kv-policies,")) << far.output;
}

TEST(CliProgress, RunShowsProgressOnlyOnATerminalOrWhenAsked) {
  const fs::path plan = tiny_plan();
  const std::string now = "XRING_TEST_PROGRESS_AFTER_MS=0 ";
  // stderr is a pipe here: silent unless --progress.
  CliResult piped = stderr_of("run " + plan.string(), now);
  ASSERT_EQ(piped.exit_code, 0) << piped.output;
  EXPECT_EQ(piped.output, "");
  CliResult asked = stderr_of("run " + plan.string() + " --progress", now);
  ASSERT_EQ(asked.exit_code, 0) << asked.output;
  EXPECT_TRUE(contains(asked.output, "xring run: 1/2 layer ")) << asked.output;
  EXPECT_TRUE(contains(asked.output, "xring run: 2/2 done\n")) << asked.output;
  CliResult quiet = stderr_of("run " + plan.string() + " --progress --quiet", now);
  EXPECT_EQ(quiet.exit_code, 0);
  EXPECT_EQ(quiet.output, "");
  // On a terminal (script(1) gives it one): a bar rewritten in place.
  if (std::system("command -v script > /dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  const std::string command = "script -qec '" + now + xring::test::xring_binary() + " run " +
                              plan.string() + "' /dev/null 2>&1";
  CliResult tty = run_shell(command);
  EXPECT_TRUE(contains(tty.output, "\rxring run [")) << tty.output;
  EXPECT_TRUE(contains(tty.output, "2/2 done")) << tty.output;
}
