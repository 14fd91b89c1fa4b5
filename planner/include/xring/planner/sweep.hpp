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
  Plan plan;
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

/// The most points one sweep may have (docs/file-formats.md "Resource limits"): a point keeps its whole plan
/// (~20 KB), so 10,000 points stay near 200 MB.
constexpr size_t kMaxSweepPoints = 10000;

/// Plans every point. A spec error at any point is an xring::Error naming the point; any other
/// exception in a worker thread (out of memory) stops the sweep and is rethrown here.
std::vector<SweepPoint> run_sweep(const SweepRequest& request);

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
