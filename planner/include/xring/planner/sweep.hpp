// What-if sweeps: the Cartesian product of varied spec fields, one plan per point, planned in
// parallel threads; and the metrics a sweep reports.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xring/planner/planner.hpp"

namespace xring {

/// One `--vary spec.field=...` axis: a list ("16,64,256") or a range "start..stop:xF"
/// (geometric, factor F > 1) or "start..stop:+S" (arithmetic, step S > 0).
struct SweepAxis {
  std::string field;  ///< e.g. "workload.frames"
  std::vector<nlohmann::json> values;
  bool geometric = false;  ///< the values grow by a factor (plots use a log axis)
};
SweepAxis parse_vary(const std::string& text);

struct SweepPoint {
  std::vector<nlohmann::json> values;  ///< one per axis
  Plan plan;                           ///< without its inputs and provenance (sweep_provenance)
  double usable_memory_bytes = 0;      ///< per GPU at this point (the plot's memory line)
};

struct SweepRequest {
  std::string model, cluster, workload;
  std::vector<std::string> overrides;  ///< applied to every point, before the axes
  std::vector<SweepAxis> axes;
  std::string device_profile;  ///< file or built-in name; "" = datasheet rates
  PlannerOptions options;
  int threads = 0;  ///< 0: one per hardware thread
  /// Called from the calling thread about every 100 ms with (points done, points in all).
  std::function<void(size_t, size_t)> progress;
};

/// The most points one sweep may have (docs/limits.md): points stream (a plan is dropped once
/// its row is written), so memory does not grow with them; the bound keeps a typo
/// (`1..1e9:+1`) from running for days.
constexpr size_t kMaxSweepPoints = 1000000;

/// Plans every point and hands each to `consume` on the calling thread, in point order (the
/// last axis varies fastest), then drops it: at most 64 plans per thread exist at once. Every
/// axis value is read into its spec before the first point is planned. A spec error stops the
/// sweep at its point (xring::Error naming it); any other exception in a worker thread (out of
/// memory) stops the sweep and is rethrown here; an exception from `consume` stops it too.
void run_sweep(const SweepRequest& request, const std::function<void(const SweepPoint&)>& consume);
/// The same, keeping every point (small sweeps and tests).
std::vector<SweepPoint> run_sweep(const SweepRequest& request);

/// What a sweep was made from, once for all its points: plan_provenance of the specs with the
/// fixed overrides applied, and "varied": the fields the axes set (their values are per point).
nlohmann::json sweep_provenance(const SweepRequest& request);

/// The metrics a sweep can report: `predicted` fields of the plan, and a few derived ones;
/// a predicted time, rate or memory figure also as NAME.low and NAME.high (its interval).
const std::vector<std::string>& metric_names();
/// The metric's value for a plan (NaN when it does not apply, e.g. decode metrics of a
/// prefill plan). Throws xring::Error with a did-you-mean hint for an unknown name.
double metric(const Plan& plan, const std::string& name);
/// The default metrics for a phase.
std::vector<std::string> default_metrics(const std::string& phase);
/// The cross-attention strategy of the first layer with its ring size and recomputation
/// ("query_ring/16", "kv_ring/8+recompute"), and for decode plans the serving layout
/// ("decode tp8 adaptive KV (fair_copying heads)"), joined by " + "; "-" when neither applies.
std::string strategy_label(const Plan& plan);

}  // namespace xring
