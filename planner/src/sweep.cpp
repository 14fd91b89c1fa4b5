// What-if sweeps: axis parsing, parallel planning, metric extraction.
#include "xring/planner/sweep.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

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

std::vector<SweepPoint> run_sweep(const SweepRequest& request) {
  size_t total = 1;
  for (const auto& a : request.axes) {
    total *= a.values.size();
    if (total > kMaxSweepPoints)
      throw Error("--vary: " + std::to_string(total) + "+ points, more than the " +
                  std::to_string(kMaxSweepPoints) + " one sweep may have; sweep in parts");
  }
  std::vector<Override> base;
  for (const auto& text : request.overrides) base.push_back(parse_override(text));
  const SpecJson model = load_spec_json(SpecKind::model, request.model);
  const SpecJson cluster = load_spec_json(SpecKind::cluster, request.cluster);
  const SpecJson workload = load_spec_json(SpecKind::workload, request.workload);
  std::optional<SpecJson> profile;
  if (!request.device_profile.empty())
    profile = load_spec_json(SpecKind::device, request.device_profile);
  if (profile) device_profile_from_json(profile->value, profile->origin);  // fail once, early

  PlannerOptions options = request.options;
  options.head_detail = false;
  std::vector<SweepPoint> points(total);
  std::vector<std::string> errors(total);
  std::atomic<size_t> next{0}, done{0};
  std::mutex fatal_mutex;
  std::exception_ptr fatal;  // not bad input (out of memory): ends the sweep, rethrown below
  std::atomic<bool> stopped{false};
  auto plan_point = [&](size_t i) {
    std::vector<Override> overrides = base;
    std::vector<std::string> texts = request.overrides;
    size_t rest = i;
    for (size_t a = request.axes.size(); a-- > 0;) {
      const SweepAxis& axis = request.axes[a];
      const json& v = axis.values[rest % axis.values.size()];
      rest /= axis.values.size();
      points[i].values.insert(points[i].values.begin(), v);
    }
    for (size_t a = 0; a < request.axes.size(); ++a) {
      const json& v = points[i].values[a];
      std::string text =
          request.axes[a].field + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
      Override o = parse_override(request.axes[a].field + "=0");
      o.text = text;
      o.value = v;
      overrides.push_back(o);
      texts.push_back(text);
    }
    try {
      SpecJson m = model, c = cluster, w = workload;
      apply_overrides(m, SpecKind::model, overrides);
      apply_overrides(c, SpecKind::cluster, overrides);
      apply_overrides(w, SpecKind::workload, overrides);
      Inputs in = inputs_from_json(std::move(m), std::move(c), std::move(w), texts);
      if (profile) attach_device_profile(in, *profile);
      points[i].plan = plan(in, options);
    } catch (const Error& e) {
      errors[i] = e.what();
    }
  };
  // An exception must not leave a worker thread (std::terminate) nor stop `done` short of
  // `total` (the progress loop would wait forever): the first one is kept and the rest skipped.
  auto worker = [&] {
    for (size_t i = next++; i < total; i = next++) {
      try {
        plan_point(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(fatal_mutex);
        if (!fatal) fatal = std::current_exception();
        next = total;
        stopped = true;
      }
      ++done;
    }
  };
  int threads =
      request.threads > 0 ? request.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<int>(std::min<size_t>(threads, total));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  if (request.progress) {
    std::thread own(worker);
    while (done < total && !stopped) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      request.progress(done, total);
    }
    own.join();
  } else {
    worker();
  }
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  for (size_t i = 0; i < total; ++i)
    if (!errors[i].empty()) {
      std::string at;
      for (size_t a = 0; a < request.axes.size(); ++a)
        at += (at.empty() ? "" : ", ") + request.axes[a].field + "=" + points[i].values[a].dump();
      throw Error("sweep point " + at + ": " + errors[i]);
    }
  return points;
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
    label = to_string(l.strategy) + "/" + std::to_string(l.ranks) +
            (l.recompute ? "+recompute" : "");
  }
  if (plan.decode)
    label += (label.empty() ? "" : " + ") + std::string("decode tp") +
             std::to_string(plan.decode->gpus) + " " + plan.decode->policy + " KV (" +
             plan.decode->chosen + " heads)";
  return label.empty() ? "-" : label;
}

}  // namespace xring
