// Gating: metrics from plans and run reports, rules, comparison with noise bounds,
// requirements, and the markdown / JUnit renderings.
#include "xring/planner/gate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/provenance.hpp"
#include "xring/planner/units.hpp"

namespace xring::gate {
namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& origin, const std::string& path,
                       const std::string& rule) {
  throw Error(origin + ": at \"" + path + "\": " + rule);
}

const json& field(const json& j, const std::string& key, const std::string& origin,
                  const std::string& path) {
  if (!j.is_object() || !j.contains(key))
    fail(origin, path.empty() ? key : path + "." + key, "required field is missing");
  return j[key];
}

double number_at(const json& j, const std::string& key, const std::string& origin,
                 const std::string& path) {
  const json& v = field(j, key, origin, path);
  if (!v.is_number())
    fail(origin, path.empty() ? key : path + "." + key,
         "must be a number, got " + describe_json_value(v));
  return v.get<double>();
}

/// A number that may be null (nothing predicted); the field itself must be there.
std::optional<double> nullable_at(const json& j, const std::string& key, const std::string& origin,
                                  const std::string& path) {
  if (field(j, key, origin, path).is_null()) return std::nullopt;
  return number_at(j, key, origin, path);
}

bool bool_at(const json& j, const std::string& key, const std::string& origin) {
  const json& v = field(j, key, origin, "");
  if (!v.is_boolean()) fail(origin, key, "must be a boolean, got " + describe_json_value(v));
  return v.get<bool>();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// A measured time lies between one tick of the steady clock the executor times with (1 ns on
/// Linux) and the longest time any input may hold (10^9 s, docs/limits.md); a rate of one token
/// in that longest time is the smallest meaningful rate. Bytes: at most 10^18 (docs/limits.md).
constexpr double kMinMeasuredSeconds = 1e-9, kMaxSeconds = 1e9;
constexpr double kMaxBytes = 1e18, kMaxRate = 1e21;

/// `v`, the number at `path`, unless it lies outside [min, max] (`what` says what it is).
double bounded(double v, double min, double max, const std::string& origin, const std::string& path,
               const std::string& what) {
  if (!(v >= min && v <= max)) {
    char rule[160];
    std::snprintf(rule, sizeof rule, "must be between %g and %g (%s), got %g", min, max,
                  what.c_str(), v);
    fail(origin, path, rule);
  }
  return v;
}

std::optional<double> bounded(std::optional<double> v, double min, double max,
                              const std::string& origin, const std::string& path,
                              const std::string& what) {
  if (v) bounded(*v, min, max, origin, path, what);
  return v;
}

std::vector<double> samples_at(const json& j, const std::string& key, const std::string& origin,
                               const std::string& path) {
  std::vector<double> out;
  if (!j.contains(key)) return out;
  const json& v = j[key];
  if (!v.is_array()) fail(origin, path + "." + key, "must be an array of numbers");
  for (const auto& x : v) {
    if (!x.is_number()) fail(origin, path + "." + key, "must be an array of numbers");
    out.push_back(bounded(x.get<double>(), kMinMeasuredSeconds, kMaxSeconds, origin,
                          path + "." + key + "[" + std::to_string(out.size()) + "]",
                          "a measured time in seconds"));
  }
  return out;
}

Metric number(const std::string& name, Direction d, std::optional<double> v,
              std::vector<double> samples = {}) {
  Metric m;
  m.name = name;
  m.direction = d;
  m.samples = std::move(samples);
  m.value = m.samples.empty() ? v : median(m.samples);
  return m;
}

Metric flag(const std::string& name, bool v) {
  Metric m;
  m.name = name;
  m.direction = Direction::must_hold;
  m.boolean = true;
  m.value = v ? 1 : 0;
  return m;
}

std::string unit_of(const std::string& name) {
  if (name.find("bytes") != std::string::npos) return "bytes";
  if (name.size() > 2 && name.compare(name.size() - 2, 2, "_s") == 0 &&
      name.find("_per_s") == std::string::npos)
    return "s";
  return "";
}

/// The interval of `key` from `section`.intervals (plans), when the document has one: an
/// object {value, low, high} or null (nothing predicted).
void add_interval(Metric& m, const json& section, const std::string& key, const std::string& origin,
                  const std::string& path) {
  if (!section.is_object() || !section.contains("intervals")) return;
  const json& intervals = section["intervals"];
  const std::string at = path.empty() ? "intervals" : path + ".intervals";
  if (!intervals.is_object()) fail(origin, at, "must be an object");
  if (!intervals.contains(key)) return;
  m.has_interval = true;
  const json& i = intervals[key];
  if (i.is_null()) return;
  m.low = number_at(i, "low", origin, at + "." + key);
  m.high = number_at(i, "high", origin, at + "." + key);
}

/// Why a run report's prediction error says nothing about the planner ("" when it does): the
/// cpu backend measures this machine's CPU against a plan that predicted its cluster's GPUs,
/// unless the plan was made from a device profile (of this machine).
std::string prediction_not_comparable(const json& report, const std::string& backend) {
  if (backend != "cpu") return "";
  const json& provenance = report.contains("provenance") ? report["provenance"] : json();
  if (provenance.is_object() && provenance.contains("plan_device_profile") &&
      !provenance["plan_device_profile"].is_null())
    return "";
  std::string cluster = "its cluster";
  if (provenance.is_object() && provenance.contains("plan_inputs") &&
      provenance["plan_inputs"].is_object() && provenance["plan_inputs"].contains("cluster") &&
      provenance["plan_inputs"]["cluster"].is_object() &&
      provenance["plan_inputs"]["cluster"].value("name", json()).is_string())
    cluster = provenance["plan_inputs"]["cluster"]["name"].get<std::string>();
  return "not gated: a cpu run measured against the prediction for " + cluster;
}

/// layers.N.<key> for every entry of `j`'s layers array (with its samples, when given). A
/// report's times (`samples_key` given) are measured times; N is a layer of a model (at most
/// 100,000 layers, docs/limits.md).
void add_layer_metrics(Document& d, const json& j, const std::string& key,
                       const std::string& samples_key) {
  const json& layers = field(j, "layers", d.origin, "");
  if (!layers.is_array()) fail(d.origin, "layers", "must be an array");
  const bool measured = !samples_key.empty();
  for (size_t i = 0; i < layers.size(); ++i) {
    std::string at = "layers[" + std::to_string(i) + "]";
    const double layer = bounded(number_at(layers[i], "index", d.origin, at), 0, 99999, d.origin,
                                 at + ".index", "a layer");
    if (layer != std::floor(layer))  // a layer number, never cut to one
      fail(d.origin, at + ".index", "must be a whole number (a layer), got " + json(layer).dump());
    std::string index = std::to_string(static_cast<long long>(layer));
    std::optional<double> time = nullable_at(layers[i], key, d.origin, at);
    if (measured)
      bounded(time, kMinMeasuredSeconds, kMaxSeconds, d.origin, at + "." + key,
              "a measured time in seconds; null where not measured");
    d.metrics.push_back(
        number("layers." + index + "." + key, Direction::lower_is_better, time,
               samples_at(layers[i], samples_key, d.origin, at)));  // none when absent
    add_interval(d.metrics.back(), layers[i], key, d.origin, at);
  }
}

/// A streaming run's metrics (issue 19), when the report has a streaming section:
/// streaming.peak_cache_bytes, streaming.oom_at_s (the stream second the cache passed the
/// usable memory, or the whole stream's length when it never did: higher is better either way),
/// streaming.tokens_per_s and streaming.frame_time_s (null where not measured).
void add_streaming_metrics(Document& d, const json& j) {
  if (!j.contains("streaming")) return;
  const json& s = j["streaming"];
  if (!s.is_object()) fail(d.origin, "streaming", "must be an object");
  const std::string& o = d.origin;
  d.metrics.push_back(number("streaming.peak_cache_bytes", Direction::lower_is_better,
                             bounded(number_at(s, "peak_cache_bytes", o, "streaming"), 0, kMaxBytes,
                                     o, "streaming.peak_cache_bytes", "bytes")));
  const double stream_s = bounded(number_at(s, "frames_planned", o, "streaming") *
                                      number_at(s, "seconds_per_frame", o, "streaming"),
                                  kMinMeasuredSeconds, kMaxSeconds, o, "streaming.frames_planned",
                                  "times seconds_per_frame: seconds");
  d.metrics.push_back(number("streaming.oom_at_s", Direction::higher_is_better,
                             bounded(nullable_at(s, "oom_at_s", o, "streaming"), 0, stream_s, o,
                                     "streaming.oom_at_s", "a second of the stream")
                                 .value_or(stream_s)));
  d.metrics.push_back(
      number("streaming.tokens_per_s", Direction::higher_is_better,
             bounded(nullable_at(s, "tokens_per_s", o, "streaming"), 1 / kMaxSeconds, kMaxRate, o,
                     "streaming.tokens_per_s", "tokens per second; null where not measured")));
  d.metrics.push_back(
      number("streaming.frame_time_s", Direction::lower_is_better,
             bounded(nullable_at(s, "frame_time_s", o, "streaming"), kMinMeasuredSeconds,
                     kMaxSeconds, o, "streaming.frame_time_s", "a measured time in seconds")));
}

/// A requirement's metric name split into the metric and its bound suffix (".low", ".high",
/// or "" for the value itself).
struct BoundedName {
  std::string metric;
  std::string suffix;
};

/// "iteration_time_s.high" -> {iteration_time_s, .high}. A name the document has as a
/// metric is never split (layers.3.time_s); "X.other" on a metric X is an xring::Error
/// naming the accepted suffixes.
BoundedName split_bound(const Document& doc, const std::string& name, const std::string& text) {
  if (doc.find(name)) return {name, ""};
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos) return {name, ""};
  const std::string suffix = name.substr(dot);
  // A bound on a misspelt metric: look the metric up alone, so did-you-mean finds it.
  if (suffix == ".low" || suffix == ".high") return {name.substr(0, dot), suffix};
  if (!doc.find(name.substr(0, dot))) return {name, ""};
  throw Error("--require " + quoted_excerpt(text) + ": unknown suffix \"" +
              quoted_excerpt(suffix) + "\" on " + name.substr(0, dot) +
              "; use .low or .high for the bounds of its prediction interval, or no suffix " +
              "for the value");
}

}  // namespace

std::string format_value(double v, const std::string& unit) {
  if (std::isnan(v)) return "—";
  if (unit == "bytes") return units::format_bytes(v);
  if (unit == "s") return units::format_time(v);
  return units::format_count(v);
}

const Metric* Document::find(const std::string& name) const {
  for (const auto& m : metrics)
    if (m.name == name) return &m;
  return nullptr;
}

Document read_document(const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(origin + ": must be a JSON object (a plan or a run report)");
  Document d;
  d.origin = origin;
  const json& version = field(j, "schema_version", origin, "");
  if (!version.is_number_integer()) fail(origin, "schema_version", "must be a whole number");
  d.schema_version = version.get<int>();
  if (j.contains("measured") && j.contains("backend")) {
    d.kind = "report";
    const json& backend = j["backend"];
    if (!backend.is_string()) fail(origin, "backend", "must be a string");
    d.identity["backend"] = backend.get<std::string>();
    d.metrics.push_back(flag("verified", bool_at(j, "verified", origin)));
    const json& measured = field(j, "measured", origin, "");
    const json& predicted = field(j, "predicted", origin, "");
    // Checked whether or not samples come with it: without them it is the value gated.
    const double time = bounded(number_at(measured, "time_s", origin, "measured"),
                                kMinMeasuredSeconds, kMaxSeconds, origin, "measured.time_s",
                                "a measured time in seconds");
    std::vector<double> time_samples = samples_at(measured, "samples_s", origin, "measured");
    const double throughput =
        bounded(number_at(measured, "throughput_tokens_per_s", origin, "measured"),
                1 / kMaxSeconds, kMaxRate, origin, "measured.throughput_tokens_per_s",
                "tokens per second");
    // Throughput is tokens / time: each time sample gives a throughput sample.
    std::vector<double> throughput_samples;
    for (double t : time_samples)
      if (t > 0) throughput_samples.push_back(throughput * time / t);
    d.metrics.push_back(number("time_s", Direction::lower_is_better, time, time_samples));
    d.metrics.push_back(number("throughput_tokens_per_s", Direction::higher_is_better, throughput,
                               throughput_samples));
    // 0 or null: nothing predicted; else a time the error can be a ratio to.
    std::optional<double> predicted_time = nullable_at(predicted, "time_s", origin, "predicted");
    if (predicted_time && *predicted_time != 0)
      bounded(*predicted_time, kMinMeasuredSeconds, kMaxSeconds, origin, "predicted.time_s",
              "seconds; 0 or null where nothing is predicted");
    if (predicted_time && *predicted_time > 0) {
      d.metrics.push_back(number("prediction_error", Direction::lower_is_better,
                                 std::fabs(time / *predicted_time - 1)));
      d.metrics.back().not_gated = prediction_not_comparable(j, d.identity["backend"]);
    }
    d.metrics.push_back(number("max_rel_error", Direction::lower_is_better,
                               number_at(j, "max_rel_error", origin, "")));
    add_layer_metrics(d, j, "measured_time_s", "measured_samples_s");
    add_streaming_metrics(d, j);
    return d;
  }
  if (j.contains("predicted") && j.contains("phase")) {
    d.kind = "plan";
    const json& inputs = field(j, "inputs", origin, "");
    for (const char* key : {"model", "cluster", "workload"}) {
      const json& spec = field(inputs, key, origin, "inputs");
      const json& name = field(spec, "name", origin, std::string("inputs.") + key);
      if (!name.is_string())
        fail(origin, std::string("inputs.") + key + ".name", "must be a string");
      d.identity[key] = name.get<std::string>();
      json content = spec;
      if (content.is_object())
        for (const char* label : {"name", "description", "source"}) content.erase(label);
      d.contents[key] = content;
    }
    const bool feasible = bool_at(j, "feasible", origin);
    d.metrics.push_back(flag("feasible", feasible));
    const json& p = field(j, "predicted", origin, "");
    const std::pair<const char*, Direction> predicted[] = {
        {"iteration_time_s", Direction::lower_is_better},
        {"cross_attention_time_s", Direction::lower_is_better},
        {"throughput_tokens_per_s", Direction::higher_is_better},
        {"frames_per_s", Direction::higher_is_better},
        {"peak_memory_bytes_per_rank", Direction::lower_is_better}};
    for (const auto& [key, direction] : predicted) {
      d.metrics.push_back(number(key, direction, nullable_at(p, key, origin, "predicted")));
      add_interval(d.metrics.back(), p, key, origin, "predicted");
    }
    const json& phase = field(j, "phase", origin, "");
    if (phase == "decode" || phase == "streaming") {
      d.metrics.push_back(number("decode_tokens_per_s", Direction::higher_is_better,
                                 nullable_at(p, "decode_tokens_per_s", origin, "predicted")));
      add_interval(d.metrics.back(), p, "decode_tokens_per_s", origin, "predicted");
    }
    add_layer_metrics(d, j, "time_s", "");
    // An infeasible plan predicts nothing, whatever numbers a file may carry: every number
    // fails its requirement and its comparison.
    d.predicts = feasible;
    if (!feasible)
      for (Metric& m : d.metrics)
        if (!m.boolean) m.value.reset(), m.low.reset(), m.high.reset();
    return d;
  }
  throw Error(origin + ": neither a plan (predicted, phase) nor a run report (measured, backend)");
}

namespace {

/// Whether a rule key names a metric: exactly, or as a family with one "*" ("layers.*.time_s"
/// matches every name with that prefix and suffix).
bool family_matches(const std::string& key, const std::string& name) {
  auto star = key.find('*');
  if (star == std::string::npos) return false;
  std::string prefix = key.substr(0, star), suffix = key.substr(star + 1);
  return name.rfind(prefix, 0) == 0 && name.size() >= prefix.size() + suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// A document's metric names with per-layer ones folded into families ("layers.*.time_s").
std::vector<std::string> metric_names_folded(const Document& d) {
  std::vector<std::string> out;
  for (const auto& m : d.metrics) {
    std::string name = m.name;
    if (name.rfind("layers.", 0) == 0) {
      auto dot = name.find('.', 7);
      if (dot != std::string::npos) name = "layers.*" + name.substr(dot);
    }
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  }
  return out;
}

/// Every metric the rules file names exists in the baseline (a family matches at least one):
/// a misspelled rule would otherwise gate nothing.
void check_rule_names(const Rules& rules, const Document& d) {
  for (const auto& key : rules.given) {
    bool found = false;
    for (const auto& m : d.metrics) found = found || m.name == key || family_matches(key, m.name);
    if (found) continue;
    std::vector<std::string> names = metric_names_folded(d);
    auto hint = did_you_mean(key, names);
    const auto star = key.find('*');
    if (!hint && star != std::string::npos) {
      // "layers.*.time_s" on a run report: its family with the same prefix and last word
      // ("layers.*.measured_time_s").
      const std::string prefix = key.substr(0, star + 1);
      const std::string last = key.substr(key.find_last_of('.') + 1);
      for (const auto& n : names)
        if (!hint && n.rfind(prefix, 0) == 0 && n.size() >= last.size() &&
            n.compare(n.size() - last.size(), last.size(), last) == 0)
          hint = n;
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error((rules.origin.empty() ? std::string("--rules") : rules.origin) +
                ": at \"metrics." + quoted_excerpt(key) + "\": " + d.origin + " (a " + d.kind +
                ") has no metric \"" + quoted_excerpt(key) + "\"" +
                (hint ? "; did you mean \"" + *hint + "\"?" : "") + " (its metrics: " + list +
                ")");
  }
}

/// "relative 5% of the baseline (built-in defaults)": a rule's threshold and where it is set.
std::string rule_text(const Rule& rule, const std::string& source, const std::string& unit) {
  std::string relative, absolute;
  if (rule.relative) relative = "relative " + units::format_count(100 * *rule.relative) + "%";
  if (rule.absolute) absolute = "absolute " + format_value(*rule.absolute, unit);
  std::string text = !relative.empty() && !absolute.empty()
                         ? "the larger of " + relative + " and " + absolute
                     : !relative.empty() ? relative + " of the baseline"
                     : !absolute.empty() ? absolute
                                         : std::string("no change");
  return text + " (" + source + ")";
}

/// "noise: 3σ of 5+5 samples (σ = 1.4826·MAD) = ±2 ms, above the floor relative 5% ...".
std::string noise_rule_text(size_t baseline_samples, size_t current_samples, double noise,
                            const std::string& unit, const std::string& floor) {
  char constants[64];
  std::snprintf(constants, sizeof constants, "%gσ of %zu+%zu samples (σ = %g·MAD)", kNoiseSigmas,
                baseline_samples, current_samples, kMadToSigma);
  return "noise: " + std::string(constants) + " = ±" + format_value(noise, unit) +
         ", above the floor " + floor;
}

}  // namespace

double robust_sigma(const std::vector<double>& samples) {
  if (samples.size() < 2) return 0;
  const double m = median(samples);
  std::vector<double> deviations;
  for (double x : samples) deviations.push_back(std::fabs(x - m));
  return kMadToSigma * median(deviations);
}

double noise_bound(const std::vector<double>& baseline, const std::vector<double>& current) {
  return kNoiseSigmas * std::hypot(robust_sigma(baseline), robust_sigma(current));
}

std::string Rules::source_of(const std::string& name) const {
  const std::string file = origin.empty() ? std::string("--rules") : origin;
  auto named = [&](const std::string& key) {
    const bool from_file = std::find(given.begin(), given.end(), key) != given.end();
    return from_file ? file + " metrics." + key : "built-in default for " + key;
  };
  if (metrics.count(name)) return named(name);
  for (const auto& entry : metrics)
    if (family_matches(entry.first, name)) return named(entry.first);
  return defaults_given ? file + " defaults" : std::string("built-in defaults");
}

const Rule& Rules::for_metric(const std::string& name) const {
  auto exact = metrics.find(name);
  if (exact != metrics.end()) return exact->second;
  for (const auto& [key, rule] : metrics)
    if (family_matches(key, name)) return rule;
  return defaults;
}

Rules read_rules(const json& j, const std::string& origin) {
  Rules rules;
  // Built-in defaults for metrics where a relative bound makes no sense.
  rules.metrics["prediction_error"] = Rule{std::nullopt, 0.10, false, std::nullopt};
  rules.metrics["max_rel_error"] = Rule{std::nullopt, 1e-3, false, std::nullopt};
  rules.origin = origin;
  if (j.is_null()) return rules;
  ObjectReader r(j, origin, "");
  auto read_rule = [&](ObjectReader o) {
    Rule rule;
    rule.relative = o.optional_number("relative", 0, 1e9);
    rule.absolute = o.optional_number("absolute", 0, 1e300);
    if (auto d = o.optional_choice("direction", {"higher", "lower"}))
      rule.direction = *d == "higher" ? Direction::higher_is_better : Direction::lower_is_better;
    if (o.has("ignore")) {
      const json& v = o.raw("ignore");
      if (!v.is_boolean()) o.fail("ignore", "must be a boolean");
      rule.ignore = v.get<bool>();
    } else {
      o.allow("ignore");
    }
    o.finish();
    return rule;
  };
  if (r.has("defaults")) {
    rules.defaults = read_rule(r.object("defaults"));
    rules.defaults_given = true;
  } else {
    r.allow("defaults");
  }
  if (r.has("metrics")) {
    ObjectReader m = r.object("metrics");
    for (const auto& [key, value] : j["metrics"].items()) {
      m.allow(key);
      rules.metrics[key] = read_rule(m.object(key));
      rules.given.push_back(key);
    }
    m.finish();
  } else {
    r.allow("metrics");
  }
  r.finish();
  return rules;
}

bool Outcome::failed() const {
  return std::any_of(rows.begin(), rows.end(), [](const Row& r) {
    return r.verdict == Verdict::regression || r.verdict == Verdict::not_met;
  });
}

Outcome compare(const Document& baseline, const Document& current, const Rules& rules,
                bool allow_changed_inputs) {
  Outcome out;
  if (baseline.kind != current.kind)
    throw Error(baseline.origin + " is a " + baseline.kind + " but " + current.origin + " is a " +
                current.kind + "; compare plans with plans and run reports with run reports");
  if (baseline.schema_version != current.schema_version)
    throw Error(baseline.origin + " has schema_version " + std::to_string(baseline.schema_version) +
                " but " + current.origin + " has " + std::to_string(current.schema_version) +
                "; regenerate the baseline with this xring (xring gate --update-baseline)");
  for (const auto& [key, value] : baseline.identity) {
    auto other = current.identity.find(key);
    if (other == current.identity.end() || other->second != value)
      throw Error("mismatched inputs: " + baseline.origin + " has " + key + " " + value + " but " +
                  current.origin + " has " +
                  (other == current.identity.end() ? "none" : other->second));
  }
  for (const auto& [key, content] : baseline.contents) {
    auto other = current.contents.find(key);
    if (other == current.contents.end() || content_hash(content) == content_hash(other->second))
      continue;
    std::string changes;
    auto differences = json_differences(content, other->second, key);
    for (size_t i = 0; i < differences.size() && i < 5; ++i)
      changes += (i ? "; " : "") + differences[i];
    if (differences.size() > 5) changes += "; and " + std::to_string(differences.size() - 5) + " more";
    if (allow_changed_inputs) {
      out.notes.push_back("inputs differ: " + changes);
      continue;
    }
    throw Error("mismatched inputs: " + baseline.origin + " and " + current.origin + " both name " +
                key + " " + baseline.identity.at(key) + " but its content differs (" + changes +
                "); gate compares plans of the same inputs. To compare across the change (a GPU "
                "swap, a longer video) give --allow-changed-inputs; to accept it as the new "
                "baseline, --update-baseline");
  }
  check_rule_names(rules, baseline);
  for (const Metric& b : baseline.metrics) {
    const Rule& rule = rules.for_metric(b.name);
    if (rule.ignore) continue;
    const Metric* c = current.find(b.name);
    if (!c)
      throw Error(current.origin + " lacks the metric " + b.name + " that " + baseline.origin +
                  " has");
    Row row;
    row.metric = b.name;
    row.baseline = b.value;
    row.current = c->value;
    row.boolean = b.boolean;
    row.unit = unit_of(b.name);
    if (!b.not_gated.empty() || !c->not_gated.empty()) {
      row.note = !c->not_gated.empty() ? c->not_gated : b.not_gated;
      out.rows.push_back(row);
      continue;
    }
    if (b.boolean) {
      row.verdict = c->value == 1.0 ? Verdict::pass : Verdict::regression;
      out.rows.push_back(row);
      continue;
    }
    if (!c->value || !b.value) {
      // Nothing predicted on one side: losing a prediction fails, gaining one improves; a
      // number that applies to neither feasible plan (no frames, no cross-attention) passes.
      row.verdict = c->value               ? Verdict::improved
                    : b.value || !current.predicts ? Verdict::regression
                                                   : Verdict::pass;
      out.rows.push_back(row);
      continue;
    }
    row.change = *c->value - *b.value;
    double threshold = 0;
    if (rule.relative) threshold = std::max(threshold, *rule.relative * std::fabs(*b.value));
    if (rule.absolute) threshold = std::max(threshold, *rule.absolute);
    // Noise: the samples' spread sets the bound, the rule's threshold is its floor.
    row.noise = noise_bound(b.samples, c->samples);
    row.allowed = std::max(threshold, row.noise);
    row.rule = row.noise > threshold
                   ? noise_rule_text(b.samples.size(), c->samples.size(), row.noise, row.unit,
                                     rule_text(rule, rules.source_of(b.name), row.unit))
                   : rule_text(rule, rules.source_of(b.name), row.unit);
    const Direction direction = rule.direction.value_or(b.direction);
    double worse = direction == Direction::higher_is_better ? -row.change : row.change;
    row.verdict = worse > row.allowed    ? Verdict::regression
                  : -worse > row.allowed ? Verdict::improved
                                         : Verdict::pass;
    out.rows.push_back(row);
  }
  return out;
}

Outcome require(const Document& doc, const std::vector<std::string>& requirements) {
  Outcome out;
  for (const auto& text : requirements) {
    Row row;
    row.requirement = text;
    static const char* ops[] = {">=", "<=", "==", "!=", ">", "<"};
    size_t at = std::string::npos;
    std::string op;
    for (const char* o : ops) {
      size_t p = text.find(o);
      if (p != std::string::npos &&
          (at == std::string::npos || p < at || (p == at && std::string(o).size() > op.size()))) {
        at = p;
        op = o;
      }
    }
    std::string name = at == std::string::npos ? text : text.substr(0, at);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    for (const char* prefix : {"predicted.", "measured."})
      if (name.rfind(prefix, 0) == 0) name = name.substr(std::string(prefix).size());
    const BoundedName bounded = split_bound(doc, name, text);
    name = bounded.metric;
    const Metric* m = doc.find(name);
    if (!m) {
      std::vector<std::string> names;
      for (const auto& x : doc.metrics) names.push_back(x.name);
      auto hint = did_you_mean(name, names);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw Error("--require " + quoted_excerpt(text) + ": " + doc.origin + " has no metric \"" +
                  quoted_excerpt(name) + "\"" + (hint ? "; did you mean \"" + *hint + "\"?" : "") +
                  " (metrics: " + list + ")");
    }
    row.metric = name + bounded.suffix;
    row.current = bounded.suffix == ".low"    ? m->low
                  : bounded.suffix == ".high" ? m->high
                                              : m->value;
    row.boolean = m->boolean;
    row.unit = unit_of(name);
    if (!bounded.suffix.empty() && !m->has_interval)
      throw Error("--require " + quoted_excerpt(text) + ": " + doc.origin + " gives " + name +
                  " no interval (only predicted times, rates and memory have one); drop " +
                  bounded.suffix);
    bool met;
    if (at == std::string::npos) {
      if (!m->boolean)
        throw Error("--require " + quoted_excerpt(text) + ": " + name +
                    " is a number; give a bound, e.g. " + name + ">=1");
      met = m->value == 1.0;
    } else {
      std::string value = text.substr(at + op.size());
      value.erase(0, value.find_first_not_of(' '));
      value.erase(value.find_last_not_of(' ') + 1);
      std::optional<double> bound;
      for (auto q : {units::Quantity::count, units::Quantity::bytes, units::Quantity::time,
                     units::Quantity::bandwidth, units::Quantity::flop_rate})
        if (!bound) bound = units::parse(value, q);
      if (!bound)
        throw Error("--require " + quoted_excerpt(text) + ": cannot read the bound \"" +
                    quoted_excerpt(value) + "\" (a number, or with a unit: 70GiB, 2ms)");
      row.bound = bound;
      const double v = row.current.value_or(0), b = *bound;
      met = !row.current ? false  // nothing predicted meets no bound
            : op == ">=" ? v >= b
            : op == "<=" ? v <= b
            : op == ">"  ? v > b
            : op == "<"  ? v < b
            : op == "==" ? v == b
                         : v != b;
    }
    row.verdict = met ? Verdict::pass : Verdict::not_met;
    out.rows.push_back(row);
  }
  return out;
}

}  // namespace xring::gate
