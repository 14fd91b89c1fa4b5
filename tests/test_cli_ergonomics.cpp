// The command line's manners (issue 20): --quiet and --verbose, `xring help TOPIC`, progress
// for long runs, and pictures drawn without gnuplot warnings.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using xring::test::CliResult;
using xring::test::run_xring;
using xring::test::scratch_path;

namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string read_text(const fs::path& p) {
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

bool have_gnuplot() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

/// The labels of a gnuplot `set xtics (...)` / `set ytics (...)` line of `script`.
std::vector<std::string> tick_labels(const std::string& script, const std::string& axis) {
  std::smatch m;
  std::vector<std::string> labels;
  if (!std::regex_search(script, m, std::regex("set " + axis + "tics \\(([^\\n]*)\\)\\n")))
    return labels;
  const std::string list = m[1];
  const std::regex quoted("'([^']*)'");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), quoted);
       it != std::sregex_iterator(); ++it)
    labels.push_back((*it)[1]);
  return labels;
}

/// A placed label: its text and where it starts (screen fractions).
struct Label {
  std::string text;
  double x, y;
};
std::vector<Label> labels_of(const std::string& script) {
  std::vector<Label> labels;
  const std::regex line("set label \\d+ '([^']*)' at screen ([0-9.]+),([0-9.]+) left");
  for (auto it = std::sregex_iterator(script.begin(), script.end(), line);
       it != std::sregex_iterator(); ++it)
    labels.push_back({(*it)[1], std::stod((*it)[2]), std::stod((*it)[3])});
  return labels;
}

/// Every label inside the plot box (0.11..0.97 x 0.24..0.90 of a 900 x 560 picture) and no two
/// overlapping, with 7 px per character and 12 px per line (what the layout assumes).
void expect_labels_fit(const std::vector<Label>& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const auto& a = labels[i];
    const double w = 7.0 * a.text.size() / 900, h = 12.0 / 560;
    EXPECT_GE(a.x, 0.11) << a.text;
    EXPECT_LE(a.x + w, 0.97) << a.text;
    EXPECT_GE(a.y - h / 2, 0.24) << a.text;
    EXPECT_LE(a.y + h / 2, 0.90) << a.text;
    for (size_t j = 0; j < i; ++j) {
      const auto& b = labels[j];
      const double wb = 7.0 * b.text.size() / 900;
      const bool apart = a.x + w <= b.x + 1e-4 || b.x + wb <= a.x + 1e-4 || a.y + h <= b.y + 1e-4 ||
                         b.y + h <= a.y + 1e-4;
      EXPECT_TRUE(apart) << "\"" << a.text << "\" overlaps \"" << b.text << "\"";
    }
  }
}

void expect_distinct(const std::vector<std::string>& ticks, const std::string& what) {
  EXPECT_GE(ticks.size(), 2u) << what;
  EXPECT_EQ(std::set<std::string>(ticks.begin(), ticks.end()).size(), ticks.size()) << what;
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
  const std::string sweep =
      "whatif --model tiny --vary workload.frames=2,4,8 --plot " + svg.string();
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
       {"xring: plan --cluster = h100-sxm-8 (the built-in default",
        "xring: read builtin:tiny (content hash ", "xring: read builtin:h100-sxm-8 (content hash ",
        "xring: applied --set workload.frames=8", "xring: rates: the GPU's datasheet peaks",
        "xring: planned in ", "; cost source published (attention at ", "xring: xring plan took "})
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

TEST(CliHelp, EveryTopicPointsAtADocThatExists) {
  const fs::path repo =
      fs::path(xring::test::test_data("")).parent_path().parent_path().parent_path();
  for (const char* topic :
       {"strategies", "kv-policies", "units", "files", "exit-codes", "limits", "output"}) {
    CliResult r = run_xring(std::string("help ") + topic);
    EXPECT_EQ(r.exit_code, 0) << topic;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.output, m, std::regex("See: .*?(docs/[a-z-]+\\.md)")))
        << r.output;
    EXPECT_TRUE(fs::exists(repo / m[1].str())) << topic << ": " << m[1] << " under " << repo;
  }
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

TEST(CliPlot, WhatifHasLogAxesWithUnitsAndStrategyLabelsThatFit) {
  const fs::path png = scratch_path("whatif-frames.png"), gp = scratch_path("whatif-frames.gp");
  // stderr only: with --quiet nothing but gnuplot's warnings could be there.
  CliResult r = stderr_of(
      "whatif --quiet --model mplug-owl3-7b --cluster a100-80gb-16 --vary "
      "workload.frames=16..4096:x2 --vary cluster.inter_node.bandwidth=12.5GB/s,25GB/s,100GB/s "
      "--plot " +
      png.string());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "") << "gnuplot said something";
  const std::string script = read_text(gp);
  // Frames are swept geometrically; iteration time spans 6.7 ms .. 0.92 s (two decades).
  EXPECT_TRUE(contains(script, "set logscale x 10")) << script;
  EXPECT_TRUE(contains(script, "set logscale y 10")) << script;
  EXPECT_TRUE(contains(script, "set ylabel 'iteration time (ms)'")) << script;
  EXPECT_EQ(tick_labels(script, "x"), (std::vector<std::string>{"16", "32", "64", "128", "256",
                                                                "512", "1024", "2048", "4096"}));
  expect_distinct(tick_labels(script, "y"), "y ticks");
  // The series in the order swept, not sorted as text (12.5 before 100).
  EXPECT_LT(script.find("title '12.5GB/s'"), script.find("title '100GB/s'"));
  const auto labels = labels_of(script);
  // kv_ring/4 at 16 frames on the slow link, hybrid/16 on the faster ones, back at 32.
  ASSERT_EQ(labels.size(), 3u) << script;
  expect_labels_fit(labels);
  if (have_gnuplot()) {
    EXPECT_GT(fs::file_size(png), 10000u);
    EXPECT_EQ(read_text(png).substr(1, 3), "PNG");
  }
}

TEST(CliPlot, WhatifMemoryShowsTheUsableMemoryLine) {
  const fs::path svg = scratch_path("whatif-memory.svg"), gp = scratch_path("whatif-memory.gp");
  CliResult r = stderr_of(
      "whatif --quiet --vary workload.frames=16..8192:x2 "
      "--metric peak_memory_bytes_per_rank --plot " +
      svg.string());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "");
  const std::string script = read_text(gp);
  // h100-sxm-8: 80 GiB per GPU less the 2 GiB reserve.
  EXPECT_TRUE(contains(script, "set arrow 1 from graph 0, first 78 to graph 1, first 78 nohead"))
      << script;
  EXPECT_TRUE(contains(script, "'usable memory per GPU (78 GiB)'")) << script;
  EXPECT_TRUE(contains(script, "set ylabel 'peak memory per rank (GiB)'")) << script;
  expect_labels_fit(labels_of(script));
}

TEST(CliPlot, RecommendColoursGpusAndLabelsOnlyTheFrontier) {
  const fs::path png = scratch_path("recommend.png"), gp = scratch_path("recommend.gp"),
                 csv = scratch_path("recommend.csv");
  CliResult r = stderr_of(
      "recommend --quiet --gpu h100-sxm --gpu a100-80gb --gpu b200 --set workload.frames=3600 "
      "--objective min_latency --max-gpus 64 --csv " +
      csv.string() + " --plot " + png.string());
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "") << "gnuplot said something";
  const std::string script = read_text(gp);
  // A colour (lc 1, 2, 3) and a key entry per GPU type.
  for (const char* gpu : {"h100-sxm", "a100-80gb", "b200"})
    EXPECT_TRUE(std::regex_search(
        script, std::regex(std::string("with points pt 7 ps 1.2 lc [123] title '") + gpu + "'")))
        << gpu << "\n"
        << script;
  // Latency spans 0.54 s .. 30 s: log; throughput per GPU in k tokens/s.
  EXPECT_TRUE(contains(script, "set logscale x 10")) << script;
  EXPECT_TRUE(contains(script, "set ylabel 'throughput per GPU (k tokens/s)'")) << script;
  expect_distinct(tick_labels(script, "x"), "x ticks");
  expect_distinct(tick_labels(script, "y"), "y ticks");
  // Labels: exactly the Pareto shapes of the CSV ("gpu NxG").
  std::set<std::string> frontier;
  std::istringstream rows(read_text(csv));
  std::string row;
  while (std::getline(rows, row)) {
    std::vector<std::string> cells;
    std::stringstream cellstream(row);
    for (std::string c; std::getline(cellstream, c, ',');) cells.push_back(c);
    if (cells.size() == 13 && cells[12] == "true")
      frontier.insert(cells[0] + " " + cells[1] + "x" + cells[2]);
  }
  const auto labels = labels_of(script);
  std::set<std::string> labelled;
  for (const auto& l : labels) labelled.insert(l.text);
  EXPECT_EQ(labelled, frontier);
  EXPECT_GE(frontier.size(), 4u);
  expect_labels_fit(labels);
  if (have_gnuplot()) {
    EXPECT_GT(fs::file_size(png), 10000u);
  }
}

TEST(CliPlot, ValidateSharesOneTimeAxisWithItsUnitAndWritesNothingElseWhenGnuplotFails) {
  const fs::path svg = scratch_path("validate.svg"), gp = scratch_path("validate.gp"),
                 json_out = scratch_path("validate.json");
  const std::string args = "validate --quiet --device-profile " +
                           xring::test::test_data("devices/cpu-epyc-2core.json") +
                           " --quick --repeat 1 --shape 16x256 --shape 64x4096 --ranks 1 2 "
                           "--strategy query_ring --json " +
                           json_out.string() + " --plot " + svg.string();
  CliResult r = stderr_of(args);
  ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.output;  // 1: a bound not met
  const std::string script = read_text(gp);
  // Both axes in the same display unit (so the diagonal and the interval lines hold), named.
  std::smatch x, y;
  ASSERT_TRUE(std::regex_search(script, x, std::regex("set xlabel 'measured \\((\\w+)\\)'")))
      << script;
  ASSERT_TRUE(std::regex_search(script, y, std::regex("set ylabel 'predicted \\((\\w+)\\)'")))
      << script;
  EXPECT_EQ(x[1], y[1]);
  EXPECT_EQ(tick_labels(script, "x"), tick_labels(script, "y"));
  expect_distinct(tick_labels(script, "x"), "x ticks");
  if (have_gnuplot()) {
    EXPECT_GT(fs::file_size(svg), 1000u);
  }
  // A gnuplot that fails: exit 3, and the JSON is not written.
  fs::remove(json_out);
  CliResult failed = run_xring(args, "XRING_GNUPLOT=false ");
  EXPECT_EQ(failed.exit_code, 3) << failed.output;
  EXPECT_FALSE(fs::exists(json_out));
}

TEST(CliGlobalOptions, AreAcceptedAnywhereAndKnownToTheHints) {
  CliResult typo = run_xring("plan --verbos");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_TRUE(
      contains(typo.output, "unknown option --verbos for xring plan; did you mean --verbose?"))
      << typo.output;
  CliResult command = run_xring("--verbose plna");
  EXPECT_EQ(command.exit_code, 2);
  EXPECT_TRUE(contains(command.output, "unknown command \"plna\"; did you mean \"plan\"?"))
      << command.output;
}
