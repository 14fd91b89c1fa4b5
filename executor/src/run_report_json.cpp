// `xring run`'s report as JSON, and its measured timeline as Chrome trace events.
#include <algorithm>

#include "xring/executor/run.hpp"  // what this file implements (to_json, measured_trace)
#include "xring/planner/provenance.hpp"

namespace xring::executor {
namespace {

/// Per repetition, the time summed over layers (empty unless every layer has every sample).
std::vector<double> total_samples(const RunReport& r) {
  if (r.layers.empty()) return {};
  const size_t n = r.layers.front().measured_samples_s.size();
  std::vector<double> totals(n, 0.0);
  for (const auto& l : r.layers) {
    if (l.measured_samples_s.size() != n) return {};
    for (size_t i = 0; i < n; ++i) totals[i] += l.measured_samples_s[i];
  }
  return n > 1 ? totals : std::vector<double>{};
}

/// A measured or predicted number that may be missing: null, never 0.
nlohmann::json positive_or_null(double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(); }

nlohmann::json optional_or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

nlohmann::json streaming_json(const StreamingRunReport& s) {
  nlohmann::json frames = nlohmann::json::array();
  for (const auto& f : s.frames)
    frames.push_back({{"t_s", f.t_s},
                      {"cache_bytes", f.cache_bytes},
                      {"predicted_cache_bytes", f.predicted_cache_bytes}});
  const bool inf_mllm = s.policy == "inf_mllm";
  return {{"policy", s.policy},
          {"layers", s.layers},
          {"tokens_per_frame", s.tokens_per_frame},
          {"frames_planned", s.frames_planned},
          {"frames_executed", s.frames_executed},
          {"seconds_per_frame", s.seconds_per_frame},
          {"memory_scale", s.memory_scale},
          {"cache_tokens", inf_mllm ? nlohmann::json(s.cache_tokens) : nlohmann::json()},
          {"recent_tokens", inf_mllm ? nlohmann::json(s.recent_tokens) : nlohmann::json()},
          {"usable_cache_bytes", s.usable_cache_bytes},
          {"peak_cache_bytes", s.peak_cache_bytes},
          {"predicted_peak_cache_bytes", s.predicted_peak_cache_bytes},
          {"oom_at_s", optional_or_null(s.oom_at_s)},
          {"predicted_oom_at_s", optional_or_null(s.predicted_oom_at_s)},
          {"frame_time_s", positive_or_null(s.frame_time_s)},
          {"query_time_s", positive_or_null(s.query_time_s)},
          {"queries", s.queries},
          {"decode_steps_per_query", s.decode_steps},
          {"tokens_per_s", positive_or_null(s.tokens_per_s)},
          {"predicted_tokens_per_s", positive_or_null(s.predicted_tokens_per_s)},
          {"frames", frames}};
}

}  // namespace

nlohmann::json to_json(const RunReport& r) {
  // A number that was not measured (cuda-only comparisons on the cpu backend, the FLOP rate of
  // a decode layer that counts none) is null, never 0.
  auto measured = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"index", l.index},
                      {"strategy", l.strategy},
                      {"ranks", l.ranks},
                      {"batch", l.batch},
                      {"s_q", l.s_q},
                      {"s_kv", l.s_kv},
                      {"backward", l.backward},
                      {"steps", l.steps},
                      {"measured_time_s", l.measured_time_s},
                      {"measured_step_s", l.measured_step_s},
                      {"measured_samples_s", l.measured_samples_s},
                      {"measured_compute_s", l.measured_compute_s},
                      {"measured_comm_s", l.measured_comm_s},
                      {"predicted_time_s", l.predicted_time_s},
                      {"predicted_compute_s", l.predicted_compute_s},
                      {"predicted_comm_s", l.predicted_comm_s},
                      {"measured_step_compute_s", l.measured_step_compute_s},
                      {"measured_step_comm_s", l.measured_step_comm_s},
                      {"predicted_step_compute_s", l.predicted_step_compute_s},
                      {"predicted_step_comm_s", l.predicted_step_comm_s},
                      {"time_error", l.time_error},
                      {"flop_per_s", measured(l.flop_per_s)},
                      {"overlap_efficiency", l.overlap_efficiency},
                      {"algbw_bytes_per_s", l.algbw_bytes_per_s},
                      {"busbw_bytes_per_s", l.busbw_bytes_per_s},
                      {"predicted_peak_memory_bytes", l.predicted_peak_memory_bytes},
                      {"bytes_sent", l.bytes_sent},
                      {"measured_copy_s", measured(l.measured_copy_s)},
                      {"derived_comm_s", measured(l.derived_comm_s)},
                      {"monolithic_time_s", measured(l.monolithic_time_s)},
                      {"ring_overhead", l.monolithic_time_s > 0 ? nlohmann::json(l.ring_overhead)
                                                                : nlohmann::json(nullptr)},
                      {"checked_against", l.checked_against},
                      {"max_abs_error", l.max_abs_error},
                      {"max_rel_error", l.max_rel_error},
                      {"tolerance", l.tolerance},
                      {"verified", l.verified}});
  nlohmann::json out = {{"schema_version", kReportSchemaVersion},
          {"xring_version", xring_version()},
          {"provenance", r.provenance},
          {"backend", r.backend},
          {"plan", r.plan_origin},
          {"seed", r.seed},
          {"scale", r.scale},
          {"warmup", r.warmup},
          {"verified", r.verified},
          {"max_abs_error", r.max_abs_error},
          {"max_rel_error", r.max_rel_error},
          {"tolerance", r.tolerance},
          {"tolerance_rule", r.tolerance_rule},
          {"layers", layers},
          {"measured",
           {{"time_s", r.measured_time_s},
            {"throughput_tokens_per_s", r.measured_tokens_per_s},
            {"flop_per_s", measured(r.measured_flop_per_s)},
            {"frames_per_s", measured(r.measured_frames_per_s)},
            {"samples_s", total_samples(r)}}},
          {"predicted",
           {{"time_s", r.predicted_time_s},
            {"throughput_tokens_per_s", r.predicted_tokens_per_s},
            {"flop_per_s", measured(r.predicted_flop_per_s)},
            {"frames_per_s", measured(r.predicted_frames_per_s)}}},
          {"notes", r.notes}};
  if (r.streaming) out["streaming"] = streaming_json(*r.streaming);
  return out;
}

nlohmann::json measured_trace(const RunReport& r) {
  nlohmann::json events = nlohmann::json::array();
  int ranks = 0;
  for (const auto& e : r.events) ranks = std::max(ranks, e.rank + 1);
  for (int rank = 0; rank < ranks; ++rank) {
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"args", {{"name", "rank " + std::to_string(rank)}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"tid", 1},
                      {"args", {{"name", "compute"}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"tid", 2},
                      {"args",
                       {{"name", r.backend == "cuda" ? "copies (communication stream)"
                                                     : "waiting for peers"}}}});
  }
  for (const auto& e : r.events)
    events.push_back({{"name", e.name},
                      {"cat", e.lane == 1           ? "compute"
                              : r.backend == "cuda" ? "copy"
                                                    : "wait"},
                      {"ph", "X"},
                      {"pid", e.rank},
                      {"tid", e.lane},
                      {"ts", e.start_s * 1e6},
                      {"dur", (e.end_s - e.start_s) * 1e6}});
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData",
           {{"generator", "xring run " + xring_version()},
            {"kind", "measured"},
            {"backend", r.backend}}}};
}

}  // namespace xring::executor
