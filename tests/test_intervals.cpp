// Prediction intervals (issue 17): the band per rate source with hand-derived numbers, interval
// ordering, residual quantiles, coverage, table rendering, plan JSON, gate and recommend bounds.
#include <gtest/gtest.h>

#include <cstdio>

#include "test_util.hpp"
#include "xring/planner/device_profile.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/intervals.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/recommend.hpp"

namespace xring {
namespace {

using test::error_of;

std::string data(const std::string& name) { return std::string(XRING_TEST_DATA) + "/" + name; }

/// The tiny model on the recorded cpu profile: rates from a profile without residuals.
Inputs profiled_tiny() {
  Inputs in = load_inputs("tiny", kDefaultCluster, kDefaultWorkload, {});
  attach_device_profile(in, load_spec_json(SpecKind::device, data("devices/cpu-epyc-2core.json")));
  return in;
}

/// A time as a requirement bound, with every digit: "1.23456789e-05s".
std::string seconds(double s) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9gs", s);
  return buf;
}

TEST(Intervals, BandPerSourceIsTheStatedOne) {
  const PredictionBand datasheet = prediction_band(RateSource::datasheet, std::nullopt);
  EXPECT_DOUBLE_EQ(datasheet.time_low_ratio, 0.65);  // 0.5/0.75 rounded down
  EXPECT_DOUBLE_EQ(datasheet.time_high_ratio, 1.5);  // 0.5/0.35 rounded up
  const PredictionBand published = prediction_band(RateSource::published, std::nullopt);
  EXPECT_DOUBLE_EQ(published.time_low_ratio, 0.8);
  EXPECT_DOUBLE_EQ(published.time_high_ratio, 1.3);
  const PredictionBand unvalidated = prediction_band(RateSource::profile, std::nullopt);
  EXPECT_DOUBLE_EQ(unvalidated.time_low_ratio, 0.8);
  EXPECT_DOUBLE_EQ(unvalidated.time_high_ratio, 1.25);
  for (const auto& b : {datasheet, published, unvalidated}) {
    EXPECT_DOUBLE_EQ(b.memory_low_ratio, 0.98);
    EXPECT_DOUBLE_EQ(b.memory_high_ratio, 1.10);
  }
  // A validated profile: its quantiles, widened to include the prediction itself.
  ResidualSpread spread;
  spread.samples = 20;
  spread.low_ratio = 0.92;
  spread.high_ratio = 1.31;
  const PredictionBand measured = prediction_band(RateSource::profile, spread);
  EXPECT_DOUBLE_EQ(measured.time_low_ratio, 0.92);
  EXPECT_DOUBLE_EQ(measured.time_high_ratio, 1.31);
  EXPECT_NE(measured.basis.find("20 validated points"), std::string::npos) << measured.basis;
  spread.low_ratio = 1.05;  // every point measured slower than predicted
  spread.high_ratio = 1.4;
  const PredictionBand biased = prediction_band(RateSource::profile, spread);
  EXPECT_DOUBLE_EQ(biased.time_low_ratio, 1.0);
  EXPECT_DOUBLE_EQ(biased.time_high_ratio, 1.4);
  // Residuals only matter for profiles.
  EXPECT_DOUBLE_EQ(prediction_band(RateSource::datasheet, spread).time_high_ratio, 1.5);
}

TEST(Intervals, RateSourceNamesRoundTrip) {
  for (RateSource s : {RateSource::profile, RateSource::published, RateSource::datasheet})
    EXPECT_EQ(rate_source_from_string(to_string(s)), s);
  EXPECT_EQ(rate_source_from_string("device_profile"), RateSource::profile);
  EXPECT_NE(error_of([] { rate_source_from_string("guess"); }).find("profile, published"),
            std::string::npos);
  // A plan's cost kind picks the band; an unknown kind gets the widest.
  EXPECT_DOUBLE_EQ(prediction_band_of("device_profile", nullptr).time_high_ratio, 1.25);
  EXPECT_DOUBLE_EQ(prediction_band_of("published", nullptr).time_high_ratio, 1.3);
  EXPECT_DOUBLE_EQ(prediction_band_of("something_new", nullptr).time_high_ratio, 1.5);
}

TEST(Intervals, TimesRatesAndMemoryScaleByTheBand) {
  const PredictionBand b = prediction_band(RateSource::datasheet, std::nullopt);
  const Interval t = *time_interval(2.0, b);
  EXPECT_DOUBLE_EQ(t.low, 1.3);  // 2 s x 0.65
  EXPECT_DOUBLE_EQ(t.value, 2.0);
  EXPECT_DOUBLE_EQ(t.high, 3.0);  // 2 s x 1.5
  // A rate is a time's inverse: the slow case is the low rate.
  const Interval r = *rate_interval(300.0, b);
  EXPECT_DOUBLE_EQ(r.low, 200.0);      // 300 / 1.5
  EXPECT_NEAR(r.high, 461.538, 1e-3);  // 300 / 0.65
  const Interval m = memory_interval(100.0, b);
  EXPECT_DOUBLE_EQ(m.low, 98.0);
  EXPECT_DOUBLE_EQ(m.high, 110.0);
  EXPECT_FALSE(time_interval(std::nullopt, b));
  EXPECT_FALSE(rate_interval(std::nullopt, b));
  for (const Interval& i : {t, r, m}) {
    EXPECT_LE(i.low, i.value);
    EXPECT_LE(i.value, i.high);
  }
}

TEST(Intervals, ResidualSpreadIsTheQuantilesOfMeasuredOverPredicted) {
  // Sorted 0.9 1.0 1.1 1.2 1.3: the 5% quantile sits 0.2 of the way from 0.9 to 1.0, the 95%
  // one 0.8 of the way from 1.2 to 1.3.
  const ResidualSpread s = residual_spread({1.2, 0.9, 1.3, 1.0, 1.1});
  EXPECT_EQ(s.samples, 5);
  EXPECT_NEAR(s.low_ratio, 0.92, 1e-12);
  EXPECT_NEAR(s.high_ratio, 1.28, 1e-12);
  const ResidualSpread one = residual_spread({1.07});
  EXPECT_DOUBLE_EQ(one.low_ratio, 1.07);
  EXPECT_DOUBLE_EQ(one.high_ratio, 1.07);
  EXPECT_NE(error_of([] { residual_spread({}); }).find("no measured points"), std::string::npos);
  EXPECT_NE(error_of([] { residual_spread({1.0, -2.0}); }).find("positive"), std::string::npos);
}

TEST(Intervals, CoverageCountsPointsInsideTheirInterval) {
  // Inside, on the lower edge, on the upper edge, above: 3 of 4.
  EXPECT_DOUBLE_EQ(coverage({{1.0, 0.9, 1.1}, {0.9, 0.9, 1.1}, {1.1, 0.9, 1.1}, {1.2, 0.9, 1.1}}),
                   0.75);
  EXPECT_DOUBLE_EQ(coverage({{0.5, 0.9, 1.1}}), 0.0);
  EXPECT_DOUBLE_EQ(coverage({}), 0.0);
}

TEST(Intervals, TableCellsShowTheBoundsInTheValuesUnit) {
  EXPECT_EQ(with_interval("9.27 ms", 9.27e-3, Interval{9.27e-3, 8.9e-3, 9.9e-3}),
            "9.27 ms (8.9–9.9)");
  // Bounds are rough: 3 significant digits; from 100 on whole numbers, unless the value has an
  // exponent.
  EXPECT_EQ(with_interval("70.5 GiB", 70.5, Interval{70.5, 69.09, 77.56}), "70.5 GiB (69.1–77.6)");
  EXPECT_EQ(with_interval("5769 frames/s", 5769, Interval{5769, 4615.2, 7211.3}),
            "5769 frames/s (4615–7211)");
  EXPECT_EQ(with_interval("7284 tokens/s", 7284, Interval{7284, 4856, 11204.4}),
            "7284 tokens/s (4856–11204)");
  EXPECT_EQ(with_interval("1.038e+05 tokens/s", 103800, Interval{103800, 83040, 129750}),
            "1.038e+05 tokens/s (8.3e+04–1.3e+05)");
  EXPECT_EQ(with_interval("—", 0, std::nullopt), "—");
  EXPECT_EQ(ratio_range(0.65, 1.5), "x0.65–1.5");
}

TEST(Intervals, PlanJsonCarriesValueLowHighBesideEachFigure) {
  Plan p = plan(profiled_tiny());
  ASSERT_TRUE(p.feasible);
  json j = to_json(p);
  const json& pr = j["predicted"];
  EXPECT_EQ(pr["interval_band"]["rate_source"], "profile");
  EXPECT_DOUBLE_EQ(pr["interval_band"]["time_low_ratio"].get<double>(), 0.8);
  EXPECT_DOUBLE_EQ(pr["interval_band"]["time_high_ratio"].get<double>(), 1.25);
  const json& it = pr["intervals"]["iteration_time_s"];
  const double t = pr["iteration_time_s"].get<double>();
  EXPECT_DOUBLE_EQ(it["value"].get<double>(), t);
  EXPECT_DOUBLE_EQ(it["low"].get<double>(), 0.8 * t);
  EXPECT_DOUBLE_EQ(it["high"].get<double>(), 1.25 * t);
  const double tps = pr["throughput_tokens_per_s"].get<double>();
  EXPECT_DOUBLE_EQ(pr["intervals"]["throughput_tokens_per_s"]["low"].get<double>(), tps / 1.25);
  EXPECT_DOUBLE_EQ(pr["intervals"]["throughput_tokens_per_s"]["high"].get<double>(), tps / 0.8);
  const double mem = pr["peak_memory_bytes_per_rank"].get<double>();
  EXPECT_DOUBLE_EQ(pr["intervals"]["peak_memory_bytes_per_rank"]["high"].get<double>(), 1.10 * mem);
  // Numbers that do not apply stay null, their intervals too (tiny prefill: no decode).
  EXPECT_TRUE(pr["decode_step_s"].is_null());
  EXPECT_TRUE(pr["intervals"]["decode_step_s"].is_null());
  ASSERT_FALSE(j["layers"].empty());
  const json& layer = j["layers"][0];
  EXPECT_DOUBLE_EQ(layer["intervals"]["time_s"]["high"].get<double>(),
                   1.25 * layer["time_s"].get<double>());
  for (const auto& [name, i] : pr["intervals"].items()) {
    if (i.is_null()) continue;
    EXPECT_LE(i["low"].get<double>(), i["value"].get<double>()) << name;
    EXPECT_LE(i["value"].get<double>(), i["high"].get<double>()) << name;
    EXPECT_EQ(i.size(), 3u) << name;
  }
  // The old fields stay; the plan reads back and writes the same.
  EXPECT_EQ(j["schema_version"], 1);
  EXPECT_EQ(to_json(plan_from_json(json::parse(j.dump()), "plan.json")), j);
}

TEST(Intervals, ADatasheetPlanUsesItsSourcesBand) {
  json j = to_json(plan(load_inputs("tiny", kDefaultCluster, kDefaultWorkload, {})));
  const json& band = j["predicted"]["interval_band"];
  const PredictionBand expected =
      prediction_band_of(j["cost_source"]["kind"].get<std::string>(), nullptr);
  EXPECT_EQ(band["rate_source"], to_string(expected.source));
  const double t = j["predicted"]["iteration_time_s"].get<double>();
  EXPECT_DOUBLE_EQ(j["predicted"]["intervals"]["iteration_time_s"]["low"].get<double>(),
                   expected.time_low_ratio * t);
}

TEST(Intervals, InfeasiblePlanHasNullIntervals) {
  Plan p =
      plan(load_inputs("llama-3.2-11b-vision", "h100-1", "video-qa", {"workload.frames=2048"}));
  ASSERT_FALSE(p.feasible);
  json j = to_json(p);
  for (const char* key : {"iteration_time_s", "cross_attention_time_s", "throughput_tokens_per_s",
                          "frames_per_s", "decode_step_s"})
    EXPECT_TRUE(j["predicted"]["intervals"][key].is_null()) << key;
  EXPECT_TRUE(j["layers"][0]["intervals"]["time_s"].is_null());
  // What it would need is still said, with the allocator band.
  EXPECT_DOUBLE_EQ(j["predicted"]["intervals"]["peak_memory_bytes_per_rank"]["low"].get<double>(),
                   0.98 * j["predicted"]["peak_memory_bytes_per_rank"].get<double>());
  EXPECT_EQ(to_json(plan_from_json(j, "plan.json")), j);
}

TEST(Intervals, CorruptIntervalsNameTheField) {
  json j = to_json(plan(profiled_tiny()));
  json bad = j;
  bad["predicted"]["intervals"]["iteration_time_s"]["low"] =
      2 * bad["predicted"]["iteration_time_s"].get<double>();
  EXPECT_NE(error_of([&] {
              plan_from_json(bad, "p.json");
            }).find("predicted.intervals.iteration_time_s.low"),
            std::string::npos);
  bad = j;
  bad["predicted"]["interval_band"]["rate_source"] = "guess";
  EXPECT_NE(error_of([&] { plan_from_json(bad, "p.json"); }).find("interval_band.rate_source"),
            std::string::npos);
  // Plans written before intervals existed still read.
  json old = j;
  old["predicted"].erase("intervals");
  old["predicted"].erase("interval_band");
  old["layers"][0].erase("intervals");
  EXPECT_DOUBLE_EQ(plan_from_json(old, "old.json").predicted.band.time_high_ratio, 1.25);
}

TEST(Intervals, ProfileResidualsRoundTripAndSetThePlansBand) {
  SpecJson profile = load_spec_json(SpecKind::device, data("devices/cpu-epyc-2core.json"));
  ResidualSpread spread;
  spread.samples = 20;
  spread.low_ratio = 0.92;
  spread.high_ratio = 1.31;
  profile.value["residuals"] = to_json(spread);
  const DeviceProfile p = device_profile_from_json(profile.value, "cpu.json");
  ASSERT_TRUE(p.residuals);
  EXPECT_EQ(p.residuals->samples, 20);
  EXPECT_DOUBLE_EQ(p.residuals->low_quantile, 0.05);
  EXPECT_DOUBLE_EQ(p.residuals->high_quantile, 0.95);
  EXPECT_DOUBLE_EQ(p.residuals->high_ratio, 1.31);
  EXPECT_EQ(to_json(device_profile_from_json(to_json(p), "again.json")), to_json(p));
  // A plan with the validated profile takes its band from the residuals.
  Inputs in = load_inputs("tiny", kDefaultCluster, kDefaultWorkload, {});
  attach_device_profile(in, profile);
  Plan planned = plan(in);
  EXPECT_DOUBLE_EQ(planned.predicted.band.time_low_ratio, 0.92);
  EXPECT_DOUBLE_EQ(planned.predicted.band.time_high_ratio, 1.31);
  EXPECT_DOUBLE_EQ(time_interval(planned.predicted.iteration_time_s, planned.predicted.band)->high,
                   1.31 * *planned.predicted.iteration_time_s);
  // And replays from the plan alone (it echoes the profile).
  EXPECT_DOUBLE_EQ(plan(plan_inputs(planned, "plan.json")).predicted.band.time_high_ratio, 1.31);
  json bad = profile.value;
  bad["residuals"]["high_ratio"] = 0.5;  // below low_ratio
  EXPECT_NE(
      error_of([&] { device_profile_from_json(bad, "cpu.json"); }).find("residuals.high_ratio"),
      std::string::npos);
  bad = profile.value;
  bad["residuals"]["spread"] = 1;
  EXPECT_NE(error_of([&] { device_profile_from_json(bad, "cpu.json"); }).find("residuals.spread"),
            std::string::npos);
}

TEST(Intervals, GateRequiresTheHighOrLowBound) {
  Plan p = plan(profiled_tiny());
  const gate::Document doc = gate::read_document(to_json(p), "plan.json");
  const double high = 1.25 * *p.predicted.iteration_time_s;
  auto verdict = [&](const std::string& requirement) {
    return gate::require(doc, {requirement}).rows.at(0).verdict;
  };
  // Bounds a little either side of the pessimistic time; the value itself passes both.
  const std::string above = seconds(high * 1.01);
  const std::string below = seconds(high * 0.99);
  EXPECT_EQ(verdict("iteration_time_s.high<=" + above), gate::Verdict::pass);
  EXPECT_EQ(verdict("iteration_time_s.high<=" + below), gate::Verdict::not_met);
  EXPECT_EQ(verdict("iteration_time_s<=" + below), gate::Verdict::pass);
  EXPECT_EQ(verdict("throughput_tokens_per_s.low>=" +
                    std::to_string(*p.predicted.throughput_tokens_per_s / 1.25 * 0.99)),
            gate::Verdict::pass);
  EXPECT_EQ(verdict("predicted.layers." + std::to_string(p.layers[0].index) + ".time_s.low>=0s"),
            gate::Verdict::pass);
  const auto row = gate::require(doc, {"iteration_time_s.high<=" + below}).rows.at(0);
  EXPECT_EQ(row.metric, "iteration_time_s.high");
  EXPECT_DOUBLE_EQ(*row.current, high);
  EXPECT_NE(error_of([&] {
              gate::require(doc, {"iteration_time_s.mid<=1s"});
            }).find("unknown suffix \".mid\" on iteration_time_s; use .low or .high"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gate::require(doc, {"feasible.high"}); }).find("no interval"),
            std::string::npos);
  EXPECT_NE(error_of([&] { gate::require(doc, {"iteration_time.high<=1s"}); })
                .find("has no metric \"iteration_time\"; did you mean \"iteration_time_s\"?"),
            std::string::npos);
}

TEST(Intervals, GateBoundsOfAnInfeasiblePlanMeetNothing) {
  Plan p =
      plan(load_inputs("llama-3.2-11b-vision", "h100-1", "video-qa", {"workload.frames=2048"}));
  const gate::Document doc = gate::read_document(to_json(p), "plan.json");
  EXPECT_EQ(gate::require(doc, {"iteration_time_s.high<=1e9s"}).rows.at(0).verdict,
            gate::Verdict::not_met);
  EXPECT_EQ(gate::require(doc, {"peak_memory_bytes_per_rank.low>=0B"}).rows.at(0).verdict,
            gate::Verdict::not_met);
}

TEST(Intervals, RecommendHoldsTheLowBoundToTheRequirement) {
  RecommendRequest r;
  r.model = "llama-3.2-11b-vision";
  r.workload = "video-qa";
  r.gpus = {"h100-sxm", "a100-80gb"};
  r.max_gpus = 16;
  r.gpus_per_node = {1, 2, 4, 8};
  r.threads = 2;
  r.prune = false;  // every shape that meets is ranked, so the two counts compare
  r.requirements = {"frames_per_s>=200"};
  const size_t on_value = recommend(r).ranked.size();
  r.requirements = {"frames_per_s.low>=200"};
  Recommendation rec = recommend(r);
  ASSERT_FALSE(rec.ranked.empty());
  for (const auto& c : rec.ranked) {
    const Interval frames = *rate_interval(c.plan.predicted.frames_per_s, c.plan.predicted.band);
    EXPECT_GE(frames.low, 200.0) << c.gpu << " " << c.nodes << "x" << c.gpus_per_node;
  }
  // The pessimistic case is harder to meet: fewer shapes than on the value.
  EXPECT_LT(rec.ranked.size(), on_value);
  r.requirements = {"frames_per_s.worst>=200"};
  EXPECT_NE(error_of([&] { recommend(r); }).find("unknown suffix"), std::string::npos);
}

}  // namespace
}  // namespace xring
