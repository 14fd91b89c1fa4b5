// Predicted schedule -> Chrome trace events.
#include "xring/planner/trace.hpp"

#include <algorithm>
#include <string>

#include "xring/planner/error.hpp"

namespace xring {
namespace {

constexpr int kComputeLane = 1;
constexpr int kTransferLane = 2;

nlohmann::json event(const std::string& name, const char* category, int rank, int lane,
                     double start_s, double duration_s,
                     nlohmann::json args = nlohmann::json::object()) {
  return {{"name", name},
          {"cat", category},
          {"ph", "X"},
          {"pid", rank},
          {"tid", lane},
          {"ts", start_s * 1e6},
          {"dur", duration_s * 1e6},
          {"args", std::move(args)}};
}

nlohmann::json metadata(const char* what, int rank, int lane, const std::string& name) {
  nlohmann::json e = {{"name", what}, {"ph", "M"}, {"pid", rank}, {"args", {{"name", name}}}};
  if (lane) e["tid"] = lane;
  return e;
}

}  // namespace

nlohmann::json predicted_trace(const Plan& plan, int max_ranks) {
  int ranks = 1;
  for (const auto& l : plan.layers) ranks = std::max(ranks, l.ranks);
  ranks = std::min(ranks, max_ranks);
  double expected_events = 0;
  for (const auto& l : plan.layers)
    expected_events += static_cast<double>(std::min(l.ranks, ranks)) * (2.0 * l.steps + 1);
  if (expected_events > kMaxTraceEvents)
    throw Error("--trace: the timeline would hold " +
                std::to_string(static_cast<long long>(expected_events)) + " events, more than " +
                std::to_string(kMaxTraceEvents) + " (" + std::to_string(plan.layers.size()) +
                " layers); trace a smaller model or drop --trace");
  nlohmann::json events = nlohmann::json::array();
  for (int r = 0; r < ranks; ++r) {
    events.push_back(metadata("process_name", r, 0, "rank " + std::to_string(r)));
    events.push_back(metadata("thread_name", r, kComputeLane, "compute"));
    events.push_back(metadata("thread_name", r, kTransferLane, "transfer"));
  }
  double t = 0;
  for (const auto& l : plan.layers) {
    const std::string layer = "layer " + std::to_string(l.index);
    const int active = std::min(l.ranks, ranks);
    // Projections and all-to-alls (everything outside the steps) come first, then the steps.
    double fixed_compute =
        l.forward_s -
        (l.steps > 1 ? l.step_compute_s + (l.steps - 1) * std::max(l.step_compute_s, l.step_comm_s)
                     : l.step_compute_s);
    double stride = std::max(l.step_compute_s, l.step_comm_s);
    for (int r = 0; r < active; ++r) {
      double start = t;
      if (fixed_compute > 0)
        events.push_back(event(layer + " projections/all-to-all", "compute", r, kComputeLane, start,
                               fixed_compute));
      start += std::max(0.0, fixed_compute);
      for (int k = 0; k < l.steps; ++k) {
        double step_start = start + k * stride;
        events.push_back(event(layer + " " + to_string(l.strategy) + " step " + std::to_string(k),
                               "compute", r, kComputeLane, step_start, l.step_compute_s,
                               {{"layer", l.index}, {"step", k}}));
        if (k + 1 < l.steps)
          events.push_back(event(layer + " send to rank " + std::to_string((r + 1) % l.ranks),
                                 "transfer", r, kTransferLane, step_start, l.step_comm_s,
                                 {{"bytes", l.bytes_per_step}}));
      }
    }
    t += l.forward_s;
  }
  for (auto it = plan.layers.rbegin(); it != plan.layers.rend(); ++it) {
    if (it->backward_s <= 0) continue;
    for (int r = 0; r < std::min(it->ranks, ranks); ++r)
      events.push_back(event("layer " + std::to_string(it->index) + " backward", "compute", r,
                             kComputeLane, t, it->backward_s));
    t += it->backward_s;
  }
  if (plan.rest_of_model.time_s > 0)
    for (int r = 0; r < ranks; ++r)
      events.push_back(event("rest of model", "compute", r, kComputeLane, t,
                             plan.rest_of_model.time_s, {{"note", plan.rest_of_model.note}}));
  return {
      {"traceEvents", events},
      {"displayTimeUnit", "ms"},
      {"otherData", {{"generator", "xring plan " + plan.xring_version}, {"kind", "predicted"}}}};
}

}  // namespace xring
