// The gate's noise bounds (issue 20): k·sqrt(σ_b² + σ_c²) with σ = 1.4826·MAD, floored by the
// rule's threshold, checked against hand-computed numbers.
#include <gtest/gtest.h>

#include <cmath>

#include "xring/planner/gate.hpp"

namespace xring::gate {
namespace {

/// A run report with one timed metric whose value is the median of `samples`.
Document report_with_samples(const std::string& origin, std::vector<double> samples) {
  Document d;
  d.origin = origin;
  d.kind = "report";
  d.schema_version = 1;
  d.identity["backend"] = "cpu";
  Metric m;
  m.name = "time_s";
  m.direction = Direction::lower_is_better;
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  m.value = sorted[sorted.size() / 2];
  m.samples = std::move(samples);
  d.metrics.push_back(m);
  return d;
}

TEST(GateNoise, RobustSigmaIsTheScaledMedianAbsoluteDeviation) {
  // median 0.22; |deviations| 0.02, 0, 0.04 -> MAD 0.02.
  EXPECT_NEAR(robust_sigma({0.2, 0.22, 0.26}), 1.4826 * 0.02, 1e-15);
  // One wild run does not widen it: MAD of {1,1,1,1,100} is 0.
  EXPECT_EQ(robust_sigma({1, 1, 1, 1, 100}), 0.0);
  EXPECT_EQ(robust_sigma({5}), 0.0);  // one sample: no spread
  EXPECT_EQ(robust_sigma({}), 0.0);
}

TEST(GateNoise, BoundIsThreeSigmasOfBothSides) {
  // σ_b = 1.4826·0.02, σ_c = 1.4826·0.01 ({0.4, 0.41, 0.42}).
  const double expected = 3 * std::hypot(1.4826 * 0.02, 1.4826 * 0.01);
  EXPECT_NEAR(noise_bound({0.2, 0.22, 0.26}, {0.4, 0.41, 0.42}), expected, 1e-15);
  EXPECT_NEAR(expected, 0.0994563, 1e-6);
  // A side without samples adds nothing.
  EXPECT_NEAR(noise_bound({0.2, 0.22, 0.26}, {}), 3 * 1.4826 * 0.02, 1e-15);
}

TEST(GateNoise, AllowedChangeIsTheLargerOfTheRuleAndTheNoise) {
  const Rules rules = read_rules(nlohmann::json(), "");
  // Tight samples (σ = 0): the 5% default holds, a 6% slower median regresses.
  Outcome tight = compare(report_with_samples("a", {1.0, 1.0, 1.0}),
                          report_with_samples("b", {1.06, 1.06, 1.06}), rules);
  ASSERT_EQ(tight.rows.size(), 1u);
  EXPECT_DOUBLE_EQ(tight.rows[0].allowed, 0.05);
  EXPECT_EQ(tight.rows[0].verdict, Verdict::regression);
  EXPECT_EQ(tight.rows[0].rule, "relative 5% of the baseline (built-in defaults)");
  // Loaded machine: medians 0.11 -> 0.154 (+40%) inside 3σ of the spread
  // (σ_b = 1.4826·0.02, σ_c = 1.4826·0.024): passes, the bound is the noise.
  Outcome loaded = compare(report_with_samples("a", {0.10, 0.09, 0.14, 0.11, 0.16}),
                           report_with_samples("b", {0.154, 0.13, 0.20, 0.12, 0.17}), rules);
  ASSERT_EQ(loaded.rows.size(), 1u);
  const double noise = 3 * std::hypot(1.4826 * 0.02, 1.4826 * 0.024);
  EXPECT_NEAR(loaded.rows[0].noise, noise, 1e-12);
  EXPECT_NEAR(loaded.rows[0].allowed, noise, 1e-12);
  EXPECT_EQ(loaded.rows[0].verdict, Verdict::pass);
  EXPECT_EQ(loaded.rows[0].rule.rfind("noise: 3σ of 5+5 samples (σ = 1.4826·MAD) = ±", 0), 0u)
      << loaded.rows[0].rule;
  // A rule above the noise is the bound: relative 200% of 0.11.
  Rules loose = read_rules(nlohmann::json::parse(R"({"metrics": {"time_s": {"relative": 2}}})"),
                           "loose.json");
  Outcome ruled = compare(report_with_samples("a", {0.10, 0.09, 0.14, 0.11, 0.16}),
                          report_with_samples("b", {0.154, 0.13, 0.20, 0.12, 0.17}), loose);
  EXPECT_NEAR(ruled.rows[0].allowed, 0.22, 1e-12);
  EXPECT_EQ(ruled.rows[0].rule, "relative 200% of the baseline (loose.json metrics.time_s)");
}

}  // namespace
}  // namespace xring::gate
