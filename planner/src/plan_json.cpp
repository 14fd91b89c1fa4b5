// Plan <-> JSON. The reader is strict like the spec readers: a corrupt plan names its field.
#include <limits>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/json_text.hpp"
#include "xring/planner/plan.hpp"

namespace xring {
namespace {

constexpr double kHuge = std::numeric_limits<double>::max();

template <typename Writer>
void write_memory(Writer& w, const MemoryBreakdown& m) {
  w.begin_object();
  w.key("attention_buffers").value(m.attention_buffers);
  w.key("kv").value(m.kv);
  w.key("kv_gradients").value(m.kv_gradients);
  w.key("optimizer_states").value(m.optimizer_states);
  w.key("saved_activations").value(m.saved_activations);
  w.key("text_activations").value(m.text_activations);
  w.key("total").value(m.total());
  w.key("visual_tokens").value(m.visual_tokens);
  w.key("weights").value(m.weights);
  w.end_object();
}

MemoryBreakdown memory_from(ObjectReader r) {
  MemoryBreakdown m;
  m.weights = r.number("weights", 0, kHuge);
  m.optimizer_states = r.number("optimizer_states", 0, kHuge);
  m.visual_tokens = r.number("visual_tokens", 0, kHuge);
  m.kv = r.number("kv", 0, kHuge);
  m.kv_gradients = r.optional_number("kv_gradients", 0, kHuge).value_or(0);  // absent before 0.x
  m.attention_buffers = r.number("attention_buffers", 0, kHuge);
  m.saved_activations = r.number("saved_activations", 0, kHuge);
  m.text_activations = r.number("text_activations", 0, kHuge);
  r.number("total", 0, kHuge);
  r.finish();
  return m;
}

json optional_number(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

std::optional<double> optional_from(ObjectReader& r, const std::string& key) {
  if (r.has(key) && r.raw(key).is_null()) return std::nullopt;
  return r.optional_number(key, 0, kHuge);
}

json interval_to_json(const std::optional<Interval>& i) {
  if (!i) return nullptr;
  return {{"value", i->value}, {"low", i->low}, {"high", i->high}};
}

json band_to_json(const PredictionBand& b) {
  return {{"rate_source", to_string(b.source)},       {"time_low_ratio", b.time_low_ratio},
          {"time_high_ratio", b.time_high_ratio},     {"memory_low_ratio", b.memory_low_ratio},
          {"memory_high_ratio", b.memory_high_ratio}, {"basis", b.basis}};
}

PredictionBand band_from(ObjectReader r) {
  PredictionBand b;
  const std::string source = r.choice("rate_source", {"profile", "published", "datasheet"});
  b.source = rate_source_from_string(source);
  b.time_low_ratio = r.number("time_low_ratio", 1e-6, 1);
  b.time_high_ratio = r.number("time_high_ratio", 1, 1e6);
  b.memory_low_ratio = r.number("memory_low_ratio", 1e-6, 1);
  b.memory_high_ratio = r.number("memory_high_ratio", 1, 1e6);
  b.basis = r.string("basis");
  r.finish();
  return b;
}

/// Checks an `intervals` object: each entry null or {value, low, high} with low <= value <=
/// high. The numbers are derived from the band, so they are checked and not kept.
void check_intervals(ObjectReader& parent, const std::string& key) {
  if (!parent.has(key)) {
    parent.allow(key);  // plans written before intervals existed
    return;
  }
  const json& all = parent.raw(key);
  if (!all.is_object()) parent.fail(key, "must be an object of {value, low, high} or null");
  ObjectReader r(all, parent.origin(), parent.path_of(key));
  for (const auto& [name, v] : all.items()) {
    if (v.is_null()) {
      r.allow(name);
      continue;
    }
    ObjectReader i = r.object(name);
    const double value = i.number("value", 0, kHuge);
    i.number("low", 0, value);
    i.number("high", value, kHuge);
    i.finish();
  }
}

template <typename Writer>
void write_interval(Writer& w, const std::optional<Interval>& i) {
  if (!i) {
    w.null();
    return;
  }
  w.begin_object();
  w.key("high").value(i->high);
  w.key("low").value(i->low);
  w.key("value").value(i->value);
  w.end_object();
}

/// The time interval of a layer: null in an infeasible plan, like its time.
template <typename Writer>
void write_layer_intervals(Writer& w, const LayerPlan& l, const Plan& plan) {
  const PredictionBand& band = plan.predicted.band;
  w.begin_object();
  w.key("memory_bytes");
  write_interval(w, memory_interval(l.memory_bytes.total(), band));
  w.key("time_s");
  write_interval(
      w, time_interval(plan.feasible ? std::optional<double>(l.time_s) : std::nullopt, band));
  w.end_object();
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
std::optional<double> predicted_time(double seconds, bool feasible) {
  return feasible ? std::optional<double>(seconds) : std::nullopt;
}

/// A field that must be present and is a number or null (a prediction that does not apply).
std::optional<double> nullable_from(ObjectReader& r, const std::string& key) {
  if (r.raw(key).is_null()) return std::nullopt;
  return r.number(key, 0, kHuge);
}

/// Reads a layer time written by predicted_time (null reads as 0: nothing was predicted).
double predicted_time_from(ObjectReader& r, const std::string& key) {
  return nullable_from(r, key).value_or(0);
}

Strategy strategy_field(ObjectReader& r, const std::string& key) {
  std::string name = r.string(key);
  try {
    return strategy_from_string(name);
  } catch (const Error& e) {
    r.fail(key, e.what());
  }
}

std::vector<std::string> strings_from(ObjectReader& r, const std::string& key) {
  const json& v = r.raw(key);
  if (!v.is_array()) r.fail(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : v) {
    if (!e.is_string()) r.fail(key, "must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

template <typename T, typename F>
std::vector<T> objects_from(ObjectReader& r, const std::string& key, F read) {
  const json& v = r.raw(key);
  if (!v.is_array()) r.fail(key, "must be an array");
  std::vector<T> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(
        read(ObjectReader(v[i], r.origin(), r.path_of(key) + "[" + std::to_string(i) + "]")));
  return out;
}

Alternative alternative_from(ObjectReader r) {
  Alternative a;
  a.strategy = strategy_field(r, "strategy");
  a.ranks = r.int32("ranks", 1);
  a.ulysses_degree = r.int32("ulysses_degree", 0);
  a.recompute = r.raw("recompute").is_boolean() ? r.raw("recompute").get<bool>()
                                                : (r.fail("recompute", "must be a boolean"), false);
  a.time_s = optional_from(r, "time_s");
  const json& reason = r.raw("rejected_reason");
  if (!reason.is_null() && !reason.is_string())
    r.fail("rejected_reason", "must be a string or null");
  a.rejected_reason = reason.is_string() ? reason.get<std::string>() : "";
  r.finish();
  return a;
}

LayerPlan layer_from(ObjectReader r) {
  LayerPlan l;
  l.index = r.int32("index", 0);
  l.strategy = strategy_field(r, "strategy");
  l.ranks = r.int32("ranks", 1);
  l.ulysses_degree = r.int32("ulysses_degree", 0);
  l.ring_kind = r.raw("ring_kind").is_string() ? r.raw("ring_kind").get<std::string>() : "";
  const json& recompute = r.raw("recompute");
  if (!recompute.is_boolean()) r.fail("recompute", "must be a boolean");
  l.recompute = recompute.get<bool>();
  l.groups = r.int32("groups", 1);
  l.batch_per_group = r.integer("batch_per_group", 1);
  l.idle_gpus = r.optional_int32("idle_gpus", 0).value_or(0);
  l.q_block = r.integer("q_block", 0);
  l.kv_block = r.integer("kv_block", 0);
  l.steps = r.int32("steps", 1);
  l.step_compute_s = predicted_time_from(r, "step_compute_s");
  l.step_comm_s = predicted_time_from(r, "step_comm_s");
  l.bytes_per_step = r.number("bytes_per_step", 0, kHuge);
  l.forward_s = predicted_time_from(r, "forward_s");
  l.backward_s = predicted_time_from(r, "backward_s");
  l.compute_s = predicted_time_from(r, "compute_s");
  l.comm_s = predicted_time_from(r, "comm_s");
  l.time_s = predicted_time_from(r, "time_s");
  l.memory_bytes = memory_from(r.object("memory_bytes"));
  check_intervals(r, "intervals");
  l.reason = r.string("reason");
  l.alternatives = objects_from<Alternative>(r, "alternatives", alternative_from);
  r.finish();
  return l;
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

std::vector<int> int_list(ObjectReader& r, const std::string& key) {
  std::vector<int> out;
  for (auto v : r.integer_list(key, 0, INT32_MAX)) out.push_back(static_cast<int>(v));
  return out;
}

DecodeSection decode_from(ObjectReader r) {
  DecodeSection d;
  d.policy = r.string("policy");
  d.kv_budget = r.integer("kv_budget", 0);
  d.head_profile = r.raw("head_profile").is_string()
                       ? r.raw("head_profile").get<std::string>()
                       : (r.fail("head_profile", "must be a string"), "");
  d.gpus = r.int32("gpus", 1);
  d.replicas = r.int32("replicas", 1);
  d.batch_per_replica = r.int32("batch_per_replica", 1);
  d.prompt_tokens = r.integer("prompt_tokens", 0);
  d.generate_tokens = r.int32("generate_tokens", 0);
  d.placements = objects_from<DecodePlacement>(r, "placements", [](ObjectReader p) {
    DecodePlacement x;
    x.placement = p.choice("placement", {"contiguous", "balanced", "fair_copying", "optimal"});
    // Absent in plans written before the optimum could be "not computed".
    if (p.has("not_computed") && !p.raw("not_computed").is_null()) {
      x.not_computed = p.string("not_computed");
      if (x.not_computed.empty()) p.fail("not_computed", "must be null or say why");
      for (const char* key : {"fits", "step_time_s", "tokens_per_s", "max_gpu_load_bytes",
                              "lower_bound_bytes", "gap", "peak_memory_bytes", "copies",
                              "max_batch", "tokens_per_s_at_max_batch"})
        if (!p.raw(key).is_null()) p.fail(key, "must be null for a placement not computed");
      p.finish();
      return x;
    }
    p.allow("not_computed");
    const json& fits = p.raw("fits");
    if (!fits.is_boolean()) p.fail("fits", "must be a boolean");
    x.fits = fits.get<bool>();
    x.step_time_s = p.number("step_time_s", 0, kHuge);
    x.tokens_per_s = p.number("tokens_per_s", 0, kHuge);
    x.max_gpu_load_bytes = p.number("max_gpu_load_bytes", 0, kHuge);
    x.lower_bound_bytes = p.number("lower_bound_bytes", 0, kHuge);
    x.gap = p.number("gap", -1, kHuge);
    x.peak_memory_bytes = p.number("peak_memory_bytes", 0, kHuge);
    x.copies = p.int32("copies", 0);
    x.max_batch = p.int32("max_batch", 0);
    x.tokens_per_s_at_max_batch = p.number("tokens_per_s_at_max_batch", 0, kHuge);
    p.finish();
    return x;
  });
  d.chosen = r.choice("chosen", {"contiguous", "balanced", "fair_copying", "optimal"});
  d.heads = objects_from<DecodeHead>(r, "heads", [&d](ObjectReader h) {
    DecodeHead x;
    x.layer = h.int32("layer", 0);
    x.head = h.int32("head", 0);
    x.budget_tokens = h.integer("budget_tokens", 0);
    x.budget_bytes = h.number("budget_bytes", 0, kHuge);
    const std::vector<int> gpus = int_list(h, "gpus"), requests = int_list(h, "requests");
    if (gpus.size() != requests.size()) h.fail("requests", "needs one entry per GPU in gpus");
    x.first_copy = static_cast<int>(d.head_copies.size());
    x.copy_count = static_cast<int>(gpus.size());
    for (size_t c = 0; c < gpus.size(); ++c) d.head_copies.push_back({gpus[c], requests[c]});
    h.finish();
    return x;
  });
  d.per_gpu = objects_from<DecodeGpu>(r, "per_gpu", [](ObjectReader g) {
    DecodeGpu x;
    x.gpu = g.int32("gpu", 0);
    x.load_bytes = g.number("load_bytes", 0, kHuge);
    x.memory_bytes = g.number("memory_bytes", 0, kHuge);
    g.finish();
    return x;
  });
  r.finish();
  return d;
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

StreamingSection streaming_from(ObjectReader r) {
  StreamingSection s;
  s.stream_seconds = r.number("stream_seconds", 0, kHuge);
  s.fps = r.number("fps", 0, kHuge);
  s.visual_tokens_per_s = r.number("visual_tokens_per_s", 0, kHuge);
  s.policies = objects_from<StreamingPolicy>(r, "policies", [](ObjectReader p) {
    StreamingPolicy x;
    x.policy = p.choice("policy", {"full", "inf_mllm", "a_vl"});
    x.peak_memory_bytes = p.number("peak_memory_bytes", 0, kHuge);
    x.tokens_per_s = p.number("tokens_per_s", 0, kHuge);
    x.oom_at_s = optional_from(p, "oom_at_s");
    x.per_token_flops = p.number("per_token_flops", 0, kHuge);
    x.cached_tokens = p.number("cached_tokens", 0, kHuge);
    const json& points = p.raw("memory_over_time");
    if (!points.is_array()) p.fail("memory_over_time", "must be an array of [seconds, bytes]");
    for (const auto& point : points) {
      if (!point.is_array() || point.size() != 2 || !point[0].is_number() || !point[1].is_number())
        p.fail("memory_over_time", "must be an array of [seconds, bytes]");
      x.memory_over_time.push_back({point[0].get<double>(), point[1].get<double>()});
    }
    p.finish();
    return x;
  });
  s.chosen = r.string("chosen");
  r.finish();
  return s;
}

template <typename Writer>
void write_alternative(Writer& w, const Alternative& a) {
  w.begin_object();
  w.key("ranks").value(a.ranks);
  w.key("recompute").value(a.recompute);
  w.key("rejected_reason");
  if (a.rejected_reason.empty())
    w.null();
  else
    w.value(a.rejected_reason);
  w.key("strategy").value(to_string(a.strategy));
  w.key("time_s").value(a.time_s);
  w.key("ulysses_degree").value(a.ulysses_degree);
  w.end_object();
}

/// One entry of `layers`, written straight to text: the part of a plan that grows with the
/// model (a 4,000-layer plan is ~11 MB).
template <typename Writer>
void write_layer(Writer& w, const LayerPlan& l, const Plan& plan) {
  const bool f = plan.feasible;
  w.begin_object();
  w.key("alternatives").begin_array();
  for (const auto& a : l.alternatives) write_alternative(w, a);
  w.end_array();
  w.key("backward_s").value(predicted_time(l.backward_s, f));
  w.key("batch_per_group").value(l.batch_per_group);
  w.key("bytes_per_step").value(l.bytes_per_step);
  w.key("comm_s").value(predicted_time(l.comm_s, f));
  w.key("compute_s").value(predicted_time(l.compute_s, f));
  w.key("forward_s").value(predicted_time(l.forward_s, f));
  w.key("groups").value(l.groups);
  w.key("idle_gpus").value(l.idle_gpus);
  w.key("index").value(l.index);
  w.key("intervals");
  write_layer_intervals(w, l, plan);
  w.key("kv_block").value(l.kv_block);
  w.key("memory_bytes");
  write_memory(w, l.memory_bytes);
  w.key("q_block").value(l.q_block);
  w.key("ranks").value(l.ranks);
  w.key("reason").value(l.reason);
  w.key("recompute").value(l.recompute);
  w.key("ring_kind");
  if (l.ring_kind.empty())
    w.null();
  else
    w.value(l.ring_kind);
  w.key("step_comm_s").value(predicted_time(l.step_comm_s, f));
  w.key("step_compute_s").value(predicted_time(l.step_compute_s, f));
  w.key("steps").value(l.steps);
  w.key("strategy").value(to_string(l.strategy));
  w.key("time_s").value(predicted_time(l.time_s, f));
  w.key("ulysses_degree").value(l.ulysses_degree);
  w.end_object();
}

json predicted_to_json(const Predicted& p) {
  return {{"iteration_time_s", optional_number(p.iteration_time_s)},
          {"cross_attention_time_s", optional_number(p.cross_attention_time_s)},
          {"rest_of_model_time_s", optional_number(p.rest_of_model_time_s)},
          {"throughput_tokens_per_s", optional_number(p.throughput_tokens_per_s)},
          {"frames_per_s", optional_number(p.frames_per_s)},
          {"peak_memory_bytes_per_rank", p.peak_memory_bytes_per_rank},
          {"decode_step_s", optional_number(p.decode_step_s)},
          {"decode_tokens_per_s", optional_number(p.decode_tokens_per_s)},
          {"intervals", predicted_intervals(p)},
          {"interval_band", band_to_json(p.band)}};
}

json cost_source_to_json(const CostSource& c) {
  return {{"kind", c.kind},
          {"attention_flop_per_s", c.attention_flop_per_s},
          {"matmul_flop_per_s", c.matmul_flop_per_s},
          {"attention_efficiency", c.attention_efficiency},
          {"matmul_efficiency", c.matmul_efficiency}};
}

json rest_of_model_to_json(const RestOfModel& r) {
  return {{"flops", r.flops},
          {"compute_s", r.compute_s},
          {"comm_s", r.comm_s},
          {"time_s", r.time_s},
          {"tensor_parallel", r.tensor_parallel},
          {"note", r.note}};
}

template <typename Writer>
void write_strings(Writer& w, const std::vector<std::string>& strings) {
  w.begin_array();
  for (const auto& s : strings) w.value(s);
  w.end_array();
}

}  // namespace

namespace {

/// The plan, key by key, into a JsonTextWriter (the file) or a JsonDocumentWriter (the
/// document): the one place that says what a plan file holds.
template <typename Writer>
void write_plan(Writer& w, const Plan& plan) {
  w.begin_object();
  w.key("cost_source").value(cost_source_to_json(plan.cost_source));
  w.key("decode").value(plan.decode ? decode_to_json(*plan.decode) : json(nullptr));
  w.key("feasible").value(plan.feasible);
  w.key("inputs").value(plan.inputs);
  w.key("layers").begin_array();
  for (const auto& l : plan.layers) write_layer(w, l, plan);
  w.end_array();
  w.key("notes");
  write_strings(w, plan.notes);
  w.key("phase").value(plan.phase);
  w.key("predicted").value(predicted_to_json(plan.predicted));
  w.key("provenance").value(plan.provenance);
  w.key("reasons");
  write_strings(w, plan.reasons);
  w.key("rest_of_model").value(rest_of_model_to_json(plan.rest_of_model));
  w.key("schema_version").value(plan.schema_version);
  w.key("streaming").value(plan.streaming ? streaming_to_json(*plan.streaming) : json(nullptr));
  w.key("xring_version").value(plan.xring_version);
  w.end_object();
}

}  // namespace

std::string plan_json_text(const Plan& plan) {
  std::string out;
  out.reserve(4096 + plan.layers.size() * 3072);  // a layer prints ~2.7 KB
  JsonTextWriter w(out, 2);
  write_plan(w, plan);
  return out;
}

json to_json(const Plan& plan) {
  JsonDocumentWriter w;
  write_plan(w, plan);
  return w.take();
}

Plan plan_from_json(const json& j, const std::string& origin) {
  ObjectReader r(j, origin, "");
  Plan plan;
  plan.schema_version = r.int32("schema_version", 0);
  if (plan.schema_version != kPlanSchemaVersion)
    r.fail("schema_version", "is " + std::to_string(plan.schema_version) +
                                 " but this xring reads " + std::to_string(kPlanSchemaVersion) +
                                 "; re-run xring plan");
  plan.xring_version = r.string("xring_version");
  ObjectReader inputs = r.object("inputs");
  inputs.object("model");
  inputs.object("cluster");
  inputs.object("workload");
  strings_from(inputs, "overrides");
  if (inputs.has("device_profile")) inputs.object("device_profile");  // checked by plan_inputs
  inputs.finish();
  plan.inputs = r.raw("inputs");
  if (r.has("provenance")) {
    if (!r.raw("provenance").is_object()) r.fail("provenance", "must be a JSON object");
    plan.provenance = r.raw("provenance");
  } else {
    r.allow("provenance");  // plans written before provenance existed
  }
  plan.phase = r.choice("phase", {"training", "prefill", "decode", "streaming"});
  {
    ObjectReader c = r.object("cost_source");
    plan.cost_source.kind = c.string("kind");
    plan.cost_source.attention_flop_per_s = c.number("attention_flop_per_s", 0, kHuge);
    plan.cost_source.matmul_flop_per_s = c.number("matmul_flop_per_s", 0, kHuge);
    plan.cost_source.attention_efficiency = c.number("attention_efficiency", 0, 1);
    plan.cost_source.matmul_efficiency = c.number("matmul_efficiency", 0, 1);
    c.finish();
  }
  const json& feasible = r.raw("feasible");
  if (!feasible.is_boolean()) r.fail("feasible", "must be a boolean");
  plan.feasible = feasible.get<bool>();
  plan.reasons = strings_from(r, "reasons");
  plan.notes = strings_from(r, "notes");
  plan.layers = objects_from<LayerPlan>(r, "layers", layer_from);
  {
    ObjectReader m = r.object("rest_of_model");
    plan.rest_of_model.flops = m.number("flops", 0, kHuge);
    plan.rest_of_model.compute_s = m.number("compute_s", 0, kHuge);
    plan.rest_of_model.comm_s = m.number("comm_s", 0, kHuge);
    plan.rest_of_model.time_s = m.number("time_s", 0, kHuge);
    plan.rest_of_model.tensor_parallel = m.int32("tensor_parallel", 1);
    plan.rest_of_model.note = m.raw("note").is_string() ? m.raw("note").get<std::string>()
                                                        : (m.fail("note", "must be a string"), "");
    m.finish();
  }
  {
    ObjectReader p = r.object("predicted");
    plan.predicted.iteration_time_s = nullable_from(p, "iteration_time_s");
    plan.predicted.cross_attention_time_s = nullable_from(p, "cross_attention_time_s");
    plan.predicted.rest_of_model_time_s = nullable_from(p, "rest_of_model_time_s");
    plan.predicted.throughput_tokens_per_s = nullable_from(p, "throughput_tokens_per_s");
    plan.predicted.frames_per_s = nullable_from(p, "frames_per_s");
    plan.predicted.peak_memory_bytes_per_rank = p.number("peak_memory_bytes_per_rank", 0, kHuge);
    plan.predicted.decode_step_s = optional_from(p, "decode_step_s");
    plan.predicted.decode_tokens_per_s = optional_from(p, "decode_tokens_per_s");
    check_intervals(p, "intervals");
    if (p.has("interval_band"))
      plan.predicted.band = band_from(p.object("interval_band"));
    else  // plans written before intervals existed: the band of their rate source
      plan.predicted.band = prediction_band_of(plan.cost_source.kind, nullptr);
    p.finish();
  }
  if (!r.raw("decode").is_null()) plan.decode = decode_from(r.object("decode"));
  if (!r.raw("streaming").is_null()) plan.streaming = streaming_from(r.object("streaming"));
  r.finish();
  return plan;
}

}  // namespace xring
