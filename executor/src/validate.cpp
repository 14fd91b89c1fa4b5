// `xring validate`: the planner's prediction against the executor's measurement over a grid of
// shapes and rank counts, on the device a profile describes. The ranks are emulated on that
// one device, so the cluster each point is planned on is the emulation itself: one node of
// P "devices" linked at the profile's measured transfer rate, each rank getting its share of
// the device: min(1, cores / P) on the cpu backend (a rank is a thread), 1 / P on the cuda
// backend (every rank's kernels fill the GPU, so P of them share it).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "xring/executor/profile.hpp"
#include "xring/executor/run.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"

namespace xring::executor {
namespace {

std::string number(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

/// The cluster a validation point is planned on: the emulation of `ranks` ranks.
SpecJson emulation_cluster(const DeviceProfile& p, int ranks) {
  const double rate = p.copy_bytes_per_s.value_or(1e12);
  const double latency = p.copy_latency_s.value_or(0);
  json c = {{"name", "emulated-" + std::to_string(ranks) + "-on-" + p.backend},
            {"source", "xring validate: " + std::to_string(ranks) + " ranks emulated on " +
                           p.device + ", transfers at the profile's measured rate"},
            {"nodes", 1},
            {"gpus_per_node", ranks},
            {"gpu", load_spec_json(SpecKind::gpu, "h100-sxm").value},
            {"intra_node",
             {{"kind", "emulated"},
              {"bandwidth", number(rate) + "B/s"},
              {"latency", number(latency) + "s"}}}};
  return {c, "xring validate (emulation cluster)"};
}

SpecJson validation_workload(long long s_q, long long s_kv, bool training) {
  json w = {{"name", "validate"},
            {"description", "one sample, one cross-attention layer"},
            {"phase", training ? "training" : "prefill"},
            {"batch", 1},
            {"text_tokens", s_q},
            {"visual_tokens", s_kv}};
  return {w, "xring validate (workload)"};
}

/// Each repetition's time over the run's layers (the layers' samples summed by repetition);
/// empty when the layers do not all carry the same number of samples.
std::vector<double> repetition_totals(const RunReport& r) {
  if (r.layers.empty()) return {};
  std::vector<double> totals(r.layers.front().measured_samples_s.size(), 0.0);
  for (const auto& l : r.layers) {
    if (l.measured_samples_s.size() != totals.size()) return {};
    for (size_t i = 0; i < totals.size(); ++i) totals[i] += l.measured_samples_s[i];
  }
  return totals;
}

}  // namespace

ValidateReport validate_predictions(const ValidateOptions& o) {
  if (o.backend != "cpu" && o.backend != "cuda")
    throw Error("xring validate --backend " + o.backend + ": validation runs on cpu or cuda",
                ExitCode::runtime);
  const bool gpu = o.backend == "cuda";
  const DeviceProfile profile = device_profile_from_json(o.profile.value, o.profile.origin);
  if (profile.backend != o.backend)
    throw Error(o.profile.origin + ": device.backend is \"" + profile.backend +
                "\", but validation runs on the " + o.backend +
                " backend; profile that backend with xring profile --backend " + o.backend);
  std::vector<int> ranks = o.ranks;
  if (ranks.empty()) ranks = o.quick ? std::vector{1, 2} : std::vector{1, 2, 4};
  auto shapes = o.shapes;
  if (shapes.empty() && gpu)
    shapes = o.quick ? decltype(shapes){{512, 16384}, {2048, 65536}}
                     : decltype(shapes){{512, 16384},  {2048, 16384}, {512, 65536},  {2048, 65536},
                                        {8192, 65536}, {512, 262144}, {2048, 262144}};
  if (shapes.empty())
    shapes = o.quick ? decltype(shapes){{64, 2048}, {256, 4096}}
                     : decltype(shapes){{64, 2048}, {256, 4096}, {512, 8192}, {128, 16384}};
  struct Job {
    std::string strategy;
    int ranks;
    long long s_q, s_kv;
  };
  std::vector<Job> jobs;
  for (int P : ranks)
    for (const auto& [sq, skv] : shapes) {
      if (P == 1) {
        jobs.push_back({"single", 1, sq, skv});
        continue;
      }
      for (const auto& s : o.strategies) jobs.push_back({s, P, sq, skv});
    }

  // One cross-attention layer of the geometry the profile measures: the tiny model's on the
  // cpu (4 heads, 2 kv heads, d 64), Llama-3.2-11B-Vision's on the GPU (32, 8, d 128).
  SpecJson model = load_spec_json(SpecKind::model, gpu ? "llama-3.2-11b-vision" : "tiny");
  model.value["cross_attention_layers"] = json::array({gpu ? 3 : 1});
  model.origin += " (one cross-attention layer)";

  ValidateReport report;
  report.backend = o.backend;
  report.device = profile.device;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& j = jobs[i];
    if (o.progress)
      o.progress(j.strategy + " P=" + std::to_string(j.ranks) + " " + std::to_string(j.s_q) + "x" +
                     std::to_string(j.s_kv),
                 i, jobs.size());
    Inputs in = inputs_from_json(model, emulation_cluster(profile, j.ranks),
                                 validation_workload(j.s_q, j.s_kv, o.training), {});
    attach_device_profile(in, o.profile);
    in.compute_share =
        gpu ? 1.0 / j.ranks : std::min(1.0, static_cast<double>(profile.compute_units) / j.ranks);
    PlannerOptions po;
    po.strategy = strategy_from_string(j.strategy);
    po.ranks = j.ranks;
    Plan p = plan(in, po);
    RunOptions ro;
    ro.backend = o.backend;
    ro.seed = o.seed + i;
    ro.repeat = o.repeat;
    // cpu: never refuse a point; cuda: check against the CPU reference up to the default
    // budget, beyond it against the one-rank GPU run.
    if (!gpu) ro.max_gflop_per_layer = 1e9;
    RunReport r = run_plan(p, in, "xring validate", ro);
    ValidatePoint v;
    v.strategy = j.strategy;
    v.ranks = j.ranks;
    v.s_q = j.s_q;
    v.s_kv = j.s_kv;
    v.predicted_s = r.predicted_time_s;
    v.measured_s = r.measured_time_s;
    v.measured_samples_s = repetition_totals(r);
    v.error = (v.predicted_s - v.measured_s) / v.measured_s;
    v.verified = r.verified;
    report.band = p.predicted.band;
    const Interval interval = *time_interval(v.predicted_s, report.band);
    v.predicted_low_s = interval.low;
    v.predicted_high_s = interval.high;
    report.points.push_back(v);
  }
  if (o.progress) o.progress("done", jobs.size(), jobs.size());
  std::vector<double> errors, ratios;
  std::vector<CoveredPoint> covered;
  for (const auto& v : report.points) {
    errors.push_back(std::fabs(v.error));
    ratios.push_back(v.measured_s / v.predicted_s);
    covered.push_back({v.measured_s, v.predicted_low_s, v.predicted_high_s});
  }
  report.median_abs_error = median(errors);
  report.worst_abs_error = errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end());
  report.coverage = coverage(covered);
  if (!ratios.empty()) report.residuals = residual_spread(ratios);
  report.notes.push_back("each point: median of " + std::to_string(o.repeat) +
                         " runs of one cross-attention layer (" +
                         (gpu ? "Llama-3.2-11B-Vision geometry: 32 heads, 8 kv heads, d 128"
                              : "tiny geometry: 4 heads, 2 kv heads, d 64") +
                         ", bf16), batch 1, " + (o.training ? "forward + backward" : "forward"));
  report.notes.push_back(
      "predicted: the planner's cost of the layer on the emulation cluster (one node of P "
      "ranks, transfers at the profile's measured rate, each rank " +
      (gpu ? std::string("1 / P of the GPU")
           : "min(1, " + std::to_string(profile.compute_units) +
                 " compute units / P) of the device") +
      ")");
  report.notes.push_back("error = (predicted - measured) / measured");
  report.notes.push_back("interval: the prediction x the band of the profile as given (" +
                         report.band.basis + ", " +
                         ratio_range(report.band.time_low_ratio, report.band.time_high_ratio) +
                         "); coverage = points measured inside it");
  return report;
}

nlohmann::json profile_with_residuals(const nlohmann::json& profile, const ResidualSpread& spread) {
  nlohmann::json j = profile;
  j["residuals"] = to_json(spread);
  return j;
}

nlohmann::json to_json(const ValidateReport& r) {
  json points = json::array();
  for (const auto& v : r.points)
    points.push_back(
        {{"strategy", v.strategy},
         {"ranks", v.ranks},
         {"s_q", v.s_q},
         {"s_kv", v.s_kv},
         {"predicted_s", v.predicted_s},
         {"measured_s", v.measured_s},
         {"measured_samples_s", v.measured_samples_s},
         {"error", v.error},
         {"verified", v.verified},
         {"predicted_interval_s",
          {{"value", v.predicted_s}, {"low", v.predicted_low_s}, {"high", v.predicted_high_s}}},
         {"inside", v.inside()}});
  return {{"kind", "xring-validate-report"},
          {"schema_version", 1},
          {"backend", r.backend},
          {"device", r.device},
          {"median_abs_error", r.median_abs_error},
          {"worst_abs_error", r.worst_abs_error},
          {"coverage", r.coverage},
          {"interval_band",
           {{"rate_source", to_string(r.band.source)},
            {"time_low_ratio", r.band.time_low_ratio},
            {"time_high_ratio", r.band.time_high_ratio},
            {"basis", r.band.basis}}},
          {"residuals", r.points.empty() ? json(nullptr) : to_json(r.residuals)},
          {"points", points},
          {"notes", r.notes}};
}

}  // namespace xring::executor
