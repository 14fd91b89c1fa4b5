// What-if sweeps: axis parsing, parallel planning, metric extraction.
#include "xring/planner/sweep.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/provenance.hpp"
#include "xring/planner/specs.hpp"
#include "xring/planner/workers.hpp"

namespace xring {
namespace {

json number_value(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 9e15) return json(static_cast<long long>(v));
  return json(v);
}

std::optional<double> as_number(const std::string& s) {
  json v = json::parse(s, nullptr, false);
  if (v.is_discarded() || !v.is_number()) return std::nullopt;
  return v.get<double>();
}

}  // namespace

SweepAxis parse_vary(const std::string& text) {
  auto fail = [&](const std::string& why) {
    return Error(
        "--vary " + quoted_excerpt(text) + ": " + why +
        " (forms: spec.field=a,b,c  spec.field=start..stop:xFACTOR  spec.field=start..stop:+STEP)");
  };
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw fail("missing '='");
  SweepAxis axis;
  axis.field = text.substr(0, eq);
  parse_override(axis.field + "=0");  // validates the field's form and spec name
  std::string rhs = text.substr(eq + 1);
  auto dots = rhs.find("..");
  if (dots != std::string::npos) {
    auto colon = rhs.find(':', dots);
    if (colon == std::string::npos) throw fail("a range needs a step, e.g. 16..1024:x2");
    auto start = as_number(rhs.substr(0, dots));
    auto stop = as_number(rhs.substr(dots + 2, colon - dots - 2));
    std::string step = rhs.substr(colon + 1);
    if (!start || !stop || step.size() < 2) throw fail("cannot read the range");
    auto by = as_number(step.substr(1));
    if (!by) throw fail("cannot read the step \"" + step + "\"");
    if (*stop < *start) throw fail("stop is below start");
    if (step[0] == 'x') {
      if (*by <= 1 || *start <= 0) throw fail("a geometric range needs start > 0 and a factor > 1");
      axis.geometric = true;
      for (double v = *start; v <= *stop * (1 + 1e-12); v *= *by) {
        axis.values.push_back(number_value(v));
        if (axis.values.size() > kMaxSweepPoints)
          throw fail("more than " + std::to_string(kMaxSweepPoints) + " values");
      }
    } else if (step[0] == '+') {
      if (*by <= 0) throw fail("an arithmetic step must be positive");
      for (double v = *start; v <= *stop + 1e-9 * std::fabs(*by); v += *by) {
        axis.values.push_back(number_value(v));
        if (axis.values.size() > kMaxSweepPoints)
          throw fail("more than " + std::to_string(kMaxSweepPoints) + " values");
      }
    } else {
      throw fail("the step must start with x (factor) or + (increment)");
    }
  } else {
    size_t start = 0;
    while (true) {
      size_t comma = rhs.find(',', start);
      std::string item =
          rhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (item.empty()) throw fail("empty value in the list");
      axis.values.push_back(parse_json_or_string(item, "--vary " + quoted_excerpt(axis.field)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (axis.values.empty()) throw fail("no values");
  return axis;
}

namespace {

/// The specs of a sweep as read (once) and its fixed overrides, parsed once.
struct SweepSpecs {
  SpecJson model, cluster, workload;
  std::vector<Override> base;
  std::optional<SpecJson> profile;
  /// The model and the cluster where no axis varies them: with the fixed overrides applied and
  /// read once (empty where that fails: every point then reads it and reports the error).
  std::optional<std::pair<SpecJson, ModelSpec>> model_once;
  std::optional<std::pair<SpecJson, ClusterSpec>> cluster_once;
};

/// Reads `spec` with the fixed overrides once, unless an axis varies it or it does not read.
template <typename Spec, typename Read>
std::optional<std::pair<SpecJson, Spec>> read_once(const SweepRequest& request, const SweepSpecs& s,
                                                   const SpecJson& spec, SpecKind kind, Read read) {
  for (const auto& axis : request.axes)
    if (parse_override(axis.field + "=0").target == kind) return std::nullopt;
  try {
    SpecJson applied = spec;
    apply_overrides(applied, kind, s.base);
    Spec parsed = read(applied.value, applied.origin);
    return std::make_pair(std::move(applied), std::move(parsed));
  } catch (const Error&) {
    return std::nullopt;
  }
}

SweepSpecs load_sweep_specs(const SweepRequest& request) {
  SweepSpecs s{load_spec_json(SpecKind::model, request.model),
               load_spec_json(SpecKind::cluster, request.cluster),
               load_spec_json(SpecKind::workload, request.workload),
               {},
               std::nullopt,
               std::nullopt,
               std::nullopt};
  for (const auto& text : request.overrides) s.base.push_back(parse_override(text));
  if (!request.device_profile.empty()) {
    s.profile = load_spec_json(SpecKind::device, request.device_profile);
    device_profile_from_json(s.profile->value, s.profile->origin);  // fail once, early
  }
  s.model_once = read_once<ModelSpec>(request, s, s.model, SpecKind::model, model_from_json);
  s.cluster_once =
      read_once<ClusterSpec>(request, s, s.cluster, SpecKind::cluster, cluster_from_json);
  return s;
}

size_t point_count(const std::vector<SweepAxis>& axes) {
  size_t total = 1;
  for (const auto& a : axes) {
    total *= a.values.size();
    if (total > kMaxSweepPoints)
      throw Error("--vary: " + std::to_string(total) + "+ points, more than the " +
                  std::to_string(kMaxSweepPoints) + " one sweep may have; sweep in parts");
  }
  return total;
}

Override axis_override(const SweepAxis& axis, const json& v) {
  Override o = parse_override(axis.field + "=0");
  o.text = axis.field + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  o.value = v;
  return o;
}

/// Reads every value of every axis into the spec it sets (units, ranges, names) before any
/// point is planned (the other axes at their first values), so a bad value fails at once and
/// names itself. What only a combination
/// of values can get wrong is found at its point.
void validate_axes(const SweepRequest& request, const SweepSpecs& specs) {
  for (size_t a = 0; a < request.axes.size(); ++a)
    for (const json& v : request.axes[a].values) {
      // The other axes at their first values, as the first point would have them.
      std::vector<Override> overrides = specs.base;
      for (size_t b = 0; b < request.axes.size(); ++b)
        overrides.push_back(b == a ? axis_override(request.axes[a], v)
                                   : axis_override(request.axes[b], request.axes[b].values[0]));
      const Override& o = overrides[specs.base.size() + a];
      try {
        switch (o.target) {
          case SpecKind::model: {
            SpecJson m = specs.model;
            apply_overrides(m, SpecKind::model, overrides);
            model_from_json(m.value, m.origin);
            break;
          }
          case SpecKind::cluster: {
            SpecJson c = specs.cluster;
            apply_overrides(c, SpecKind::cluster, overrides);
            cluster_from_json(c.value, c.origin);
            break;
          }
          default: {
            SpecJson w = specs.workload;
            apply_overrides(w, SpecKind::workload, overrides);
            workload_from_json(w.value, w.origin);
            break;
          }
        }
      } catch (const Error& e) {
        throw Error("--vary " + o.text + ": " + e.what());
      }
    }
}

/// Point i's value on every axis (the last axis varies fastest).
std::vector<json> point_values(const std::vector<SweepAxis>& axes, size_t i) {
  std::vector<json> values(axes.size());
  for (size_t a = axes.size(); a-- > 0;) {
    values[a] = axes[a].values[i % axes[a].values.size()];
    i /= axes[a].values.size();
  }
  return values;
}

/// Plans point i; a spec error is returned as text (the sweep stops at it, in order).
std::string plan_point(const SweepRequest& request, const SweepSpecs& specs,
                       const PlannerOptions& options, size_t i, SweepPoint& point) {
  point.values = point_values(request.axes, i);
  std::vector<Override> overrides = specs.base;
  std::vector<std::string> texts = request.overrides;
  for (size_t a = 0; a < request.axes.size(); ++a) {
    overrides.push_back(axis_override(request.axes[a], point.values[a]));
    texts.push_back(overrides.back().text);
  }
  try {
    // A spec no axis varies is the same at every point: read once (its overrides are the
    // fixed ones, applied alike).
    SpecJson m = specs.model_once ? specs.model_once->first : specs.model;
    SpecJson c = specs.cluster_once ? specs.cluster_once->first : specs.cluster;
    SpecJson w = specs.workload;
    if (!specs.model_once) apply_overrides(m, SpecKind::model, overrides);
    if (!specs.cluster_once) apply_overrides(c, SpecKind::cluster, overrides);
    apply_overrides(w, SpecKind::workload, overrides);
    Inputs in = inputs_from_json(
        std::move(m), specs.model_once ? &specs.model_once->second : nullptr, std::move(c),
        specs.cluster_once ? &specs.cluster_once->second : nullptr, std::move(w), texts);
    if (specs.profile) attach_device_profile(in, *specs.profile);
    point.plan = plan(in, options);
    point.usable_memory_bytes = in.cluster.usable_memory_bytes();
  } catch (const Error& e) {
    std::string at;
    for (size_t a = 0; a < request.axes.size(); ++a)
      at += (at.empty() ? "" : ", ") + request.axes[a].field + "=" + point.values[a].dump();
    return "sweep point " + at + ": " + e.what();
  }
  return "";
}

}  // namespace

void run_sweep(const SweepRequest& request, const std::function<void(const SweepPoint&)>& consume) {
  const size_t total = point_count(request.axes);
  const SweepSpecs specs = load_sweep_specs(request);
  validate_axes(request, specs);
  PlannerOptions options = request.options;
  options.head_detail = false;
  options.inputs_and_provenance = false;

  // Workers plan points in order into a window of slots; this thread hands them to `consume`
  // in point order and frees each slot, so at most `window` plans exist at once. It sleeps
  // until a batch of points is done, not point by point: each wake-up takes a core from the
  // workers (a tenth of a 10,000-point sweep's time on two cores).
  int threads =
      request.threads > 0 ? request.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<int>(std::min<size_t>(threads, total));
  const size_t window = 64 * static_cast<size_t>(threads);
  const size_t batch = window / 4;
  struct Slot {
    SweepPoint point;
    std::string error;
    bool ready = false;
  };
  std::vector<Slot> slots(window);
  std::mutex mutex;
  std::condition_variable slot_ready, slot_free;
  size_t next = 0, consumed = 0;
  size_t done = 0;       // points planned
  size_t wake_done = 0;  // while the consumer sleeps: the `done` it waits for
  bool consumer_waits = false;
  bool stop = false;
  std::exception_ptr fatal;  // not bad input (out of memory): ends the sweep, rethrown below
  auto worker = [&] {
    while (true) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mutex);
        slot_free.wait(lock, [&] { return stop || next >= total || next < consumed + window; });
        if (stop || next >= total) return;
        i = next++;
      }
      Slot& slot = slots[i % window];
      try {
        slot.error = plan_point(request, specs, options, i, slot.point);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!fatal) fatal = std::current_exception();
        stop = true;
        slot_ready.notify_all();
        slot_free.notify_all();
        return;
      }
      std::lock_guard<std::mutex> lock(mutex);
      slot.ready = true;
      ++done;
      // The consumer wakes once its next slot is ready and its batch is done.
      if (consumer_waits && done >= wake_done && slots[consumed % window].ready)
        slot_ready.notify_all();
    }
  };
  auto stop_workers = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    slot_free.notify_all();
  };
  std::vector<std::thread> pool;
  start_workers(
      pool, threads, [&](int) { worker(); }, stop_workers);
  auto finish = [&] {
    stop_workers();
    for (auto& t : pool) t.join();
  };
  try {
    auto last_progress = std::chrono::steady_clock::now();
    while (consumed < total) {
      Slot* slot = &slots[consumed % window];
      {
        std::unique_lock<std::mutex> lock(mutex);
        // A slot not yet ready: sleep until a batch from it is done (its points mostly are).
        wake_done = slot->ready ? 0 : consumed + std::min(batch, total - consumed);
        while (!(slot->ready && done >= wake_done) && !stop) {
          consumer_waits = true;
          slot_ready.wait_for(lock, std::chrono::milliseconds(100));
          consumer_waits = false;
          if (request.progress &&
              std::chrono::steady_clock::now() - last_progress >= std::chrono::milliseconds(100)) {
            lock.unlock();
            request.progress(consumed, total);
            last_progress = std::chrono::steady_clock::now();
            lock.lock();
          }
        }
        if (stop) break;
      }
      if (!slot->error.empty()) throw Error(slot->error);
      consume(slot->point);
      slot->point = SweepPoint{};
      {
        std::lock_guard<std::mutex> lock(mutex);
        slot->ready = false;
        ++consumed;
      }
      slot_free.notify_all();
      if (request.progress &&
          std::chrono::steady_clock::now() - last_progress >= std::chrono::milliseconds(100)) {
        request.progress(consumed, total);
        last_progress = std::chrono::steady_clock::now();
      }
    }
  } catch (...) {
    finish();
    throw;
  }
  finish();
  if (fatal) std::rethrow_exception(fatal);
  if (request.progress) request.progress(total, total);
}

std::vector<SweepPoint> run_sweep(const SweepRequest& request) {
  std::vector<SweepPoint> points;
  run_sweep(request, [&](const SweepPoint& p) { points.push_back(p); });
  return points;
}

nlohmann::json sweep_provenance(const SweepRequest& request) {
  SweepSpecs specs = load_sweep_specs(request);
  apply_overrides(specs.model, SpecKind::model, specs.base);
  apply_overrides(specs.cluster, SpecKind::cluster, specs.base);
  apply_overrides(specs.workload, SpecKind::workload, specs.base);
  nlohmann::json inputs = {{"model", specs.model.value},
                           {"cluster", specs.cluster.value},
                           {"workload", specs.workload.value},
                           {"overrides", request.overrides}};
  nlohmann::json p = plan_provenance(
      inputs, specs.profile ? "device profile " + specs.profile->origin
                            : "datasheet peaks x default efficiencies (no device profile)");
  if (specs.profile)
    p["device_profile"] = {{"origin", specs.profile->origin},
                           {"hash", content_hash(specs.profile->value)}};
  nlohmann::json varied = nlohmann::json::array();
  for (const auto& a : request.axes) varied.push_back(a.field);
  p["varied"] = varied;
  return p;
}

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names = {
      "iteration_time_s",     "cross_attention_time_s",
      "rest_of_model_time_s", "throughput_tokens_per_s",
      "frames_per_s",         "peak_memory_bytes_per_rank",
      "decode_step_s",        "decode_tokens_per_s",
      "decode_max_batch",     "decode_gap",
      "streaming_oom_at_s"};
  return names;
}

std::vector<std::string> default_metrics(const std::string& phase) {
  if (phase == "decode") return {"decode_tokens_per_s", "peak_memory_bytes_per_rank", "decode_gap"};
  if (phase == "streaming")
    return {"decode_tokens_per_s", "peak_memory_bytes_per_rank", "streaming_oom_at_s"};
  return {"iteration_time_s", "throughput_tokens_per_s", "frames_per_s",
          "peak_memory_bytes_per_rank"};
}

namespace {

/// "iteration_time_s.high" and the like: a bound of a predicted figure's interval; empty for
/// a name without the suffix or a figure without an interval.
std::optional<double> interval_bound(const Plan& plan, const std::string& name) {
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return std::nullopt;
  const std::string base = name.substr(0, dot), bound = name.substr(dot + 1);
  if (bound != "low" && bound != "high") return std::nullopt;
  const Predicted& p = plan.predicted;
  std::optional<Interval> i;
  if (base == "iteration_time_s" || base == "cross_attention_time_s" ||
      base == "rest_of_model_time_s" || base == "decode_step_s")
    i = time_interval(base == "iteration_time_s"         ? p.iteration_time_s
                      : base == "cross_attention_time_s" ? p.cross_attention_time_s
                      : base == "rest_of_model_time_s"   ? p.rest_of_model_time_s
                                                         : p.decode_step_s,
                      p.band);
  else if (base == "throughput_tokens_per_s" || base == "frames_per_s" ||
           base == "decode_tokens_per_s")
    i = rate_interval(base == "throughput_tokens_per_s" ? p.throughput_tokens_per_s
                      : base == "frames_per_s"          ? p.frames_per_s
                                                        : p.decode_tokens_per_s,
                      p.band);
  else if (base == "peak_memory_bytes_per_rank")
    i = memory_interval(p.peak_memory_bytes_per_rank, p.band);
  else
    return std::nullopt;
  if (!i) return std::nan("");
  return bound == "low" ? i->low : i->high;
}

}  // namespace

double metric(const Plan& plan, const std::string& name) {
  const Predicted& p = plan.predicted;
  const double none = std::nan("");
  if (auto bound = interval_bound(plan, name)) return *bound;
  if (name == "iteration_time_s") return p.iteration_time_s.value_or(none);
  if (name == "cross_attention_time_s") return p.cross_attention_time_s.value_or(none);
  if (name == "rest_of_model_time_s") return p.rest_of_model_time_s.value_or(none);
  if (name == "throughput_tokens_per_s") return p.throughput_tokens_per_s.value_or(none);
  if (name == "frames_per_s") return p.frames_per_s.value_or(none);
  if (name == "peak_memory_bytes_per_rank") return p.peak_memory_bytes_per_rank;
  if (name == "decode_step_s") return p.decode_step_s.value_or(none);
  if (name == "decode_tokens_per_s") return p.decode_tokens_per_s.value_or(none);
  if (name == "decode_max_batch" || name == "decode_gap") {
    if (!plan.decode) return none;
    for (const auto& d : plan.decode->placements)
      if (d.placement == plan.decode->chosen) return name == "decode_gap" ? d.gap : d.max_batch;
    return none;
  }
  if (name == "streaming_oom_at_s") {
    if (!plan.streaming) return none;
    for (const auto& s : plan.streaming->policies)
      if (s.policy == plan.streaming->chosen) return s.oom_at_s.value_or(none);
    return none;
  }
  auto hint = did_you_mean(name, metric_names());
  std::string list;
  for (const auto& n : metric_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown metric \"" + name + "\"" +
              (hint ? "; did you mean \"" + *hint + "\"?" : "") + " (metrics: " + list + ")");
}

std::string strategy_label(const Plan& plan) {
  std::string label;
  if (!plan.layers.empty()) {
    const LayerPlan& l = plan.layers.front();
    label =
        to_string(l.strategy) + "/" + std::to_string(l.ranks) + (l.recompute ? "+recompute" : "");
  }
  if (plan.decode)
    label += (label.empty() ? "" : " + ") + std::string("decode tp") +
             std::to_string(plan.decode->gpus) + " " + plan.decode->policy + " KV (" +
             plan.decode->chosen + " heads)";
  return label.empty() ? "-" : label;
}

}  // namespace xring
