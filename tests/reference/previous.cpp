// The implementations issue 18 replaced, kept as oracles: the plan JSON built as a document
// and printed (the new writer must print the same bytes) and the predicted trace built as a
// document (the benchmark runs both side by side). Copied from planner/src/plan_json.cpp and
// planner/src/trace.cpp at 0c74630 (the decode section as it is now: it gained `not_computed` in the
// same merge and is still built as a document); not part of any shipped binary.
#include "previous.hpp"

#include <algorithm>
#include <string>

#include "xring/planner/error.hpp"
#include "xring/planner/trace.hpp"

namespace xring::previous {
namespace {

json memory_to_json(const MemoryBreakdown& m) {
  return {{"weights", m.weights},
          {"optimizer_states", m.optimizer_states},
          {"visual_tokens", m.visual_tokens},
          {"kv", m.kv},
          {"kv_gradients", m.kv_gradients},
          {"attention_buffers", m.attention_buffers},
          {"saved_activations", m.saved_activations},
          {"text_activations", m.text_activations},
          {"total", m.total()}};
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json interval_to_json(const std::optional<Interval>& i) {
  if (!i) return nullptr;
  return {{"value", i->value}, {"low", i->low}, {"high", i->high}};
}

json band_to_json(const PredictionBand& b) {
  return {{"rate_source", to_string(b.source)},       {"time_low_ratio", b.time_low_ratio},
          {"time_high_ratio", b.time_high_ratio},     {"memory_low_ratio", b.memory_low_ratio},
          {"memory_high_ratio", b.memory_high_ratio}, {"basis", b.basis}};
}

/// The time interval of a layer: null in an infeasible plan, like its time.
json layer_intervals(const LayerPlan& l, const Plan& plan) {
  const PredictionBand& band = plan.predicted.band;
  return {{"time_s", interval_to_json(time_interval(
                         plan.feasible ? std::optional<double>(l.time_s) : std::nullopt, band))},
          {"memory_bytes", interval_to_json(memory_interval(l.memory_bytes.total(), band))}};
}

json predicted_intervals(const Predicted& p) {
  const PredictionBand& b = p.band;
  return {
      {"iteration_time_s", interval_to_json(time_interval(p.iteration_time_s, b))},
      {"cross_attention_time_s", interval_to_json(time_interval(p.cross_attention_time_s, b))},
      {"rest_of_model_time_s", interval_to_json(time_interval(p.rest_of_model_time_s, b))},
      {"throughput_tokens_per_s", interval_to_json(rate_interval(p.throughput_tokens_per_s, b))},
      {"frames_per_s", interval_to_json(rate_interval(p.frames_per_s, b))},
      {"peak_memory_bytes_per_rank",
       interval_to_json(memory_interval(p.peak_memory_bytes_per_rank, b))},
      {"decode_step_s", interval_to_json(time_interval(p.decode_step_s, b))},
      {"decode_tokens_per_s", interval_to_json(rate_interval(p.decode_tokens_per_s, b))}};
}

/// A layer's predicted time: null in an infeasible plan, which predicts nothing.
json predicted_time(double seconds, bool feasible) {
  return feasible ? json(seconds) : json(nullptr);
}

json decode_to_json(const DecodeSection& d) {
  json placements = json::array();
  for (const auto& p : d.placements) {
    if (!p.not_computed.empty()) {  // no figures: every one of them null
      json none = {{"placement", p.placement}, {"not_computed", p.not_computed}};
      for (const char* key : {"fits", "step_time_s", "tokens_per_s", "max_gpu_load_bytes",
                              "lower_bound_bytes", "gap", "peak_memory_bytes", "copies",
                              "max_batch", "tokens_per_s_at_max_batch"})
        none[key] = nullptr;
      placements.push_back(none);
      continue;
    }
    placements.push_back({{"placement", p.placement},
                          {"not_computed", nullptr},
                          {"fits", p.fits},
                          {"step_time_s", p.step_time_s},
                          {"tokens_per_s", p.tokens_per_s},
                          {"max_gpu_load_bytes", p.max_gpu_load_bytes},
                          {"lower_bound_bytes", p.lower_bound_bytes},
                          {"gap", p.gap},
                          {"peak_memory_bytes", p.peak_memory_bytes},
                          {"copies", p.copies},
                          {"max_batch", p.max_batch},
                          {"tokens_per_s_at_max_batch", p.tokens_per_s_at_max_batch}});
  }
  json heads = json::array();
  for (const auto& h : d.heads) {
    json gpus = json::array(), requests = json::array();
    for (const HeadCopy& c : d.copies(h)) {
      gpus.push_back(c.gpu);
      requests.push_back(c.requests);
    }
    heads.push_back({{"layer", h.layer},
                     {"head", h.head},
                     {"budget_tokens", h.budget_tokens},
                     {"budget_bytes", h.budget_bytes},
                     {"gpus", gpus},
                     {"requests", requests}});
  }
  json gpus = json::array();
  for (const auto& g : d.per_gpu)
    gpus.push_back(
        {{"gpu", g.gpu}, {"load_bytes", g.load_bytes}, {"memory_bytes", g.memory_bytes}});
  return {{"policy", d.policy},
          {"kv_budget", d.kv_budget},
          {"head_profile", d.head_profile},
          {"gpus", d.gpus},
          {"replicas", d.replicas},
          {"batch_per_replica", d.batch_per_replica},
          {"prompt_tokens", d.prompt_tokens},
          {"generate_tokens", d.generate_tokens},
          {"placements", placements},
          {"chosen", d.chosen},
          {"heads", heads},
          {"per_gpu", gpus}};
}

json streaming_to_json(const StreamingSection& s) {
  json policies = json::array();
  for (const auto& p : s.policies)
    policies.push_back({{"policy", p.policy},
                        {"peak_memory_bytes", p.peak_memory_bytes},
                        {"tokens_per_s", p.tokens_per_s},
                        {"oom_at_s", optional_number(p.oom_at_s)},
                        {"per_token_flops", p.per_token_flops},
                        {"cached_tokens", p.cached_tokens},
                        {"memory_over_time", p.memory_over_time}});
  return {{"stream_seconds", s.stream_seconds},
          {"fps", s.fps},
          {"visual_tokens_per_s", s.visual_tokens_per_s},
          {"policies", policies},
          {"chosen", s.chosen}};
}

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

json plan_document(const Plan& plan) {
  json layers = json::array();
  for (const auto& l : plan.layers) {
    json alternatives = json::array();
    for (const auto& a : l.alternatives)
      alternatives.push_back(
          {{"strategy", to_string(a.strategy)},
           {"ranks", a.ranks},
           {"ulysses_degree", a.ulysses_degree},
           {"recompute", a.recompute},
           {"time_s", optional_number(a.time_s)},
           {"rejected_reason",
            a.rejected_reason.empty() ? json(nullptr) : json(a.rejected_reason)}});
    layers.push_back({{"index", l.index},
                      {"strategy", to_string(l.strategy)},
                      {"ranks", l.ranks},
                      {"ulysses_degree", l.ulysses_degree},
                      {"ring_kind", l.ring_kind.empty() ? json(nullptr) : json(l.ring_kind)},
                      {"recompute", l.recompute},
                      {"groups", l.groups},
                      {"batch_per_group", l.batch_per_group},
                      {"idle_gpus", l.idle_gpus},
                      {"q_block", l.q_block},
                      {"kv_block", l.kv_block},
                      {"steps", l.steps},
                      {"step_compute_s", predicted_time(l.step_compute_s, plan.feasible)},
                      {"step_comm_s", predicted_time(l.step_comm_s, plan.feasible)},
                      {"bytes_per_step", l.bytes_per_step},
                      {"forward_s", predicted_time(l.forward_s, plan.feasible)},
                      {"backward_s", predicted_time(l.backward_s, plan.feasible)},
                      {"compute_s", predicted_time(l.compute_s, plan.feasible)},
                      {"comm_s", predicted_time(l.comm_s, plan.feasible)},
                      {"time_s", predicted_time(l.time_s, plan.feasible)},
                      {"memory_bytes", memory_to_json(l.memory_bytes)},
                      {"intervals", layer_intervals(l, plan)},
                      {"reason", l.reason},
                      {"alternatives", alternatives}});
  }
  const auto& r = plan.rest_of_model;
  const auto& p = plan.predicted;
  const auto& c = plan.cost_source;
  return {{"schema_version", plan.schema_version},
          {"xring_version", plan.xring_version},
          {"inputs", plan.inputs},
          {"provenance", plan.provenance},
          {"phase", plan.phase},
          {"cost_source",
           {{"kind", c.kind},
            {"attention_flop_per_s", c.attention_flop_per_s},
            {"matmul_flop_per_s", c.matmul_flop_per_s},
            {"attention_efficiency", c.attention_efficiency},
            {"matmul_efficiency", c.matmul_efficiency}}},
          {"feasible", plan.feasible},
          {"reasons", plan.reasons},
          {"notes", plan.notes},
          {"layers", layers},
          {"rest_of_model",
           {{"flops", r.flops},
            {"compute_s", r.compute_s},
            {"comm_s", r.comm_s},
            {"time_s", r.time_s},
            {"tensor_parallel", r.tensor_parallel},
            {"note", r.note}}},
          {"predicted",
           {{"iteration_time_s", optional_number(p.iteration_time_s)},
            {"cross_attention_time_s", optional_number(p.cross_attention_time_s)},
            {"rest_of_model_time_s", optional_number(p.rest_of_model_time_s)},
            {"throughput_tokens_per_s", optional_number(p.throughput_tokens_per_s)},
            {"frames_per_s", optional_number(p.frames_per_s)},
            {"peak_memory_bytes_per_rank", p.peak_memory_bytes_per_rank},
            {"decode_step_s", optional_number(p.decode_step_s)},
            {"decode_tokens_per_s", optional_number(p.decode_tokens_per_s)},
            {"intervals", predicted_intervals(p)},
            {"interval_band", band_to_json(p.band)}}},
          {"decode", plan.decode ? decode_to_json(*plan.decode) : json(nullptr)},
          {"streaming", plan.streaming ? streaming_to_json(*plan.streaming) : json(nullptr)}};
}

nlohmann::json trace_document(const Plan& plan, int max_ranks) {
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

}  // namespace xring::previous
