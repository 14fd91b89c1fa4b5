// Prediction intervals through the binary (issue 17): the plan table, gate and recommend
// bounds, whatif's NAME.high metrics, and validate's coverage and residual spread.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "cli_test_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using xring::test::read_json_at;
using xring::test::run_xring;
using xring::test::scratch_path;
using xring::test::test_data;

namespace {

const std::string kProfile = test_data("devices/cpu-epyc-2core.json");

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string seconds(double s) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9gs", s);
  return buf;
}

TEST(CliIntervals, PlanTableShowsEachFigureWithItsBounds) {
  auto r = run_xring("plan --model tiny --device-profile " + kProfile);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("predicted (interval: device profile, not validated (stated band)"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("times x0.8–1.25, memory x0.98–1.1"), std::string::npos) << r.output;
  // "iteration time      1.23 ms (0.984–1.54)": a value, then its bounds in parentheses.
  const size_t line = r.output.find("iteration time");
  ASSERT_NE(line, std::string::npos);
  const std::string text = r.output.substr(line, r.output.find('\n', line) - line);
  EXPECT_NE(text.find(" ("), std::string::npos) << text;
  EXPECT_NE(text.find("–"), std::string::npos) << text;
  // Infeasible: nothing predicted, no interval.
  auto bad = run_xring(
      "plan --model llama-3.2-11b-vision --cluster h100-1 --workload video-qa --set "
      "workload.frames=2048");
  const size_t at = bad.output.find("iteration time");
  ASSERT_NE(at, std::string::npos) << bad.output;
  EXPECT_EQ(bad.output.substr(at, bad.output.find('\n', at) - at), "iteration time      —");
}

TEST(CliIntervals, GateAndRecommendRequireABound) {
  const fs::path plan = scratch_path("interval-plan.json");
  ASSERT_EQ(run_xring("plan --model tiny --device-profile " + kProfile + " -o " + plan.string())
                .exit_code,
            0);
  const json j = read_json_at(plan);
  const double high = j["predicted"]["intervals"]["iteration_time_s"]["high"].get<double>();
  EXPECT_DOUBLE_EQ(high, 1.25 * j["predicted"]["iteration_time_s"].get<double>());
  const std::string gate = "gate --plan " + plan.string() + " --require ";
  auto pass = run_xring(gate + "\"iteration_time_s.high<=" + seconds(high * 1.01) + "\"");
  EXPECT_EQ(pass.exit_code, 0) << pass.output;
  auto fail = run_xring(gate + "\"iteration_time_s.high<=" + seconds(high * 0.99) + "\"");
  EXPECT_EQ(fail.exit_code, 1) << fail.output;
  EXPECT_NE(fail.output.find("iteration_time_s.high"), std::string::npos) << fail.output;
  auto bad = run_xring(gate + "\"iteration_time_s.p99<=1s\"");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("unknown suffix \".p99\" on iteration_time_s; use .low or .high"),
            std::string::npos)
      << bad.output;
  auto rec = run_xring(
      "recommend --model tiny --gpu h100-sxm --max-gpus 8 --require \"frames_per_s.best>=1\"");
  EXPECT_EQ(rec.exit_code, 2) << rec.output;
  EXPECT_NE(rec.output.find("unknown suffix"), std::string::npos) << rec.output;
}

TEST(CliIntervals, WhatifReportsTheBoundsAsMetrics) {
  const fs::path csv = scratch_path("interval-whatif.csv");
  auto r = run_xring("whatif --model tiny --device-profile " + kProfile +
                     " --vary workload.batch=1,2 --metric iteration_time_s --metric "
                     "iteration_time_s.high --metric throughput_tokens_per_s.low --csv " +
                     csv.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(slurp(csv));
  std::string header, row;
  std::getline(lines, header);
  EXPECT_EQ(header,
            "workload.batch,strategy,feasible,iteration_time_s,iteration_time_s.high,"
            "throughput_tokens_per_s.low");
  int rows = 0;
  while (std::getline(lines, row)) {
    std::vector<std::string> cells;
    std::stringstream s(row);
    for (std::string c; std::getline(s, c, ',');) cells.push_back(c);
    ASSERT_EQ(cells.size(), 6u) << row;
    // The CSV keeps 6 significant digits: each cell is within half a unit of its 6th digit.
    EXPECT_NEAR(std::stod(cells[4]), 1.25 * std::stod(cells[3]), 2e-6 * std::stod(cells[4]));
    ++rows;
  }
  EXPECT_EQ(rows, 2);
}

TEST(CliIntervals, ValidateReportsCoverageAndWritesTheResidualSpread) {
  const fs::path report = scratch_path("interval-validate.json");
  const fs::path updated = scratch_path("interval-cpu.json");
  const std::string before = slurp(kProfile);
  auto r = run_xring("validate --device-profile " + kProfile +
                     " --quick --repeat 1 --shape 16x256 --ranks 1 2 --strategy query_ring "
                     "--json " +
                     report.string() + " --residuals-to " + updated.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("coverage "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("residual spread: measured/predicted x"), std::string::npos) << r.output;
  EXPECT_EQ(slurp(kProfile), before);  // --residuals-to leaves the validated profile alone
  const json v = read_json_at(report);
  ASSERT_EQ(v["points"].size(), 2u);
  int inside = 0;
  std::vector<double> ratios;
  for (const auto& p : v["points"]) {
    const double predicted = p["predicted_s"], measured = p["measured_s"];
    // The profile as given has no residuals: its interval is the stated x0.8–1.25.
    EXPECT_DOUBLE_EQ(p["predicted_interval_s"]["low"].get<double>(), 0.8 * predicted);
    EXPECT_DOUBLE_EQ(p["predicted_interval_s"]["high"].get<double>(), 1.25 * predicted);
    const bool in = 0.8 * predicted <= measured && measured <= 1.25 * predicted;
    EXPECT_EQ(p["inside"].get<bool>(), in);
    inside += in;
    ratios.push_back(measured / predicted);
  }
  EXPECT_DOUBLE_EQ(v["coverage"].get<double>(), inside / 2.0);
  // Two points: the 5% quantile is 0.05 of the way from the smaller ratio to the larger.
  const double lo = std::min(ratios[0], ratios[1]), hi = std::max(ratios[0], ratios[1]);
  const json residuals = read_json_at(updated)["residuals"];
  EXPECT_EQ(residuals["samples"], 2);
  EXPECT_NEAR(residuals["low_ratio"].get<double>(), lo + 0.05 * (hi - lo), 1e-12);
  EXPECT_NEAR(residuals["high_ratio"].get<double>(), lo + 0.95 * (hi - lo), 1e-12);
  EXPECT_EQ(v["residuals"], residuals);
  // Plans with the updated profile take their band from it.
  const fs::path plan = scratch_path("interval-validated-plan.json");
  ASSERT_EQ(
      run_xring("plan --model tiny --device-profile " + updated.string() + " -o " + plan.string())
          .exit_code,
      0);
  const json band = read_json_at(plan)["predicted"]["interval_band"];
  EXPECT_DOUBLE_EQ(band["time_high_ratio"].get<double>(),
                   std::max(1.0, residuals["high_ratio"].get<double>()));
  EXPECT_NE(band["basis"].get<std::string>().find("2 validated points"), std::string::npos);
}

TEST(CliIntervals, ValidateUpdatesTheProfileInPlaceOnlyWhenAsked) {
  const fs::path copy = scratch_path("interval-in-place.json");
  fs::copy_file(kProfile, copy, fs::copy_options::overwrite_existing);
  auto r = run_xring("validate --device-profile " + copy.string() +
                     " --quick --repeat 1 --shape 16x256 --ranks 1 --update-profile");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const json updated = read_json_at(copy);
  EXPECT_EQ(updated["residuals"]["samples"], 1);
  json without = updated;
  without.erase("residuals");
  EXPECT_EQ(without, read_json_at(kProfile));  // nothing else changed
  auto both = run_xring("validate --device-profile " + copy.string() +
                        " --update-profile --residuals-to " + scratch_path("x.json").string());
  EXPECT_EQ(both.exit_code, 2) << both.output;
  auto coverage = run_xring("validate --device-profile " + copy.string() + " --min-coverage 1.5");
  EXPECT_EQ(coverage.exit_code, 2) << coverage.output;
}

}  // namespace
