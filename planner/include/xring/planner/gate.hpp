// `xring gate`: compares two plans or two run reports metric by metric under per-metric
// rules, and checks capacity requirements ("frames_per_s>=4") on one document.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace xring::gate {

enum class Direction { higher_is_better, lower_is_better, must_hold };

/// One number (or boolean) taken from a plan or a run report.
struct Metric {
  std::string name;  ///< e.g. "throughput_tokens_per_s", "layers.3.time_s", "feasible"
  Direction direction = Direction::lower_is_better;
  /// The median when there are samples; 1/0 for booleans; empty where the document predicts
  /// nothing (an infeasible plan, a rate that does not apply): it meets no requirement and
  /// fails every comparison.
  std::optional<double> value;
  std::vector<double> samples;  ///< repeated measurements (run reports with --repeat)
  bool boolean = false;
  /// The prediction interval's bounds (plans: predicted.intervals, layers[].intervals);
  /// empty where the document gives none or predicts nothing. Requirements reach them as
  /// METRIC.low and METRIC.high.
  std::optional<double> low, high;
  bool has_interval = false;  ///< the document gives this metric an interval (maybe null)
  /// Why this metric is reported but never gated ("" when it is gated): prediction_error of a
  /// run on another device than the plan predicted (a cpu run against an H100 prediction).
  std::string not_gated;
};

/// A document's metrics: kind is "plan" or "report".
struct Document {
  std::string origin;
  std::string kind;
  int schema_version = 0;
  std::map<std::string, std::string>
      identity;  ///< model, cluster, workload (plans); backend (reports)
  /// Plans: each input spec's content without name, description and source, compared by
  /// content hash so that two workloads of one name but different frames are not compared.
  std::map<std::string, nlohmann::json> contents;
  std::vector<Metric> metrics;
  bool predicts = true;  ///< false for an infeasible plan: its numbers are all empty
  const Metric* find(const std::string& name) const;
};

/// Reads a plan or run report for gating; throws xring::Error (bad input) naming the file and
/// the field when it is neither, or a field the gate needs is missing or of the wrong type.
Document read_document(const nlohmann::json& j, const std::string& origin);

struct Rule {
  std::optional<double> relative;  ///< allowed change as a fraction of the baseline
  std::optional<double> absolute;  ///< allowed change in the metric's unit
  bool ignore = false;
  std::optional<Direction> direction;  ///< overrides the metric's own (higher or lower is better)
};

/// Rules: defaults plus per-metric overrides; a key with one "*" covers a family
/// ("layers.*.time_s"). Default: 5% relative on every number; booleans must hold.
struct Rules {
  Rule defaults{0.05, std::nullopt, false, std::nullopt};
  std::map<std::string, Rule> metrics;
  std::vector<std::string> given;  ///< the metric keys the rules file names (checked by compare)
  std::string origin;              ///< the rules file
  bool defaults_given = false;     ///< the rules file sets "defaults"
  const Rule& for_metric(const std::string& name) const;
  /// Where for_metric's rule comes from: "RULES metrics.KEY", "built-in default for KEY",
  /// "RULES defaults" or "built-in defaults".
  std::string source_of(const std::string& name) const;
};
Rules read_rules(const nlohmann::json& j, const std::string& origin);

enum class Verdict { pass, improved, regression, not_met };

struct Row {
  std::string metric;
  std::optional<double> baseline;  ///< absent for requirements
  std::optional<double> current;  ///< empty: the current document predicts nothing here
  double change = 0;              ///< current − baseline (medians), when both exist
  double allowed = 0;             ///< the bound the change was held to: max(threshold, noise)
  /// The noise bound from the samples' spread (noise_bound; 0 without samples): the allowed
  /// change when it exceeds the rule's threshold.
  double noise = 0;
  std::string rule;         ///< where `allowed` came from, for people ("relative 5% (defaults)")
  std::string requirement;  ///< for --require rows
  std::optional<double> bound;  ///< --require rows with a bound: the bound in the metric's unit
  Verdict verdict = Verdict::pass;
  bool boolean = false;
  std::string unit;  ///< "bytes", "s", "" — for formatting
  std::string note;  ///< why a row passes without a comparison (Metric::not_gated)
};

/// The multiple of the samples' standard deviation a change of two medians may reach before it
/// counts (kNoiseSigmas · sqrt(σ_baseline² + σ_current²)): three standard deviations, which two
/// runs differing only by normally distributed noise exceed in about 0.3% of comparisons.
constexpr double kNoiseSigmas = 3.0;
/// MAD × 1.4826 (= 1 / Φ⁻¹(3/4)) estimates the standard deviation of normal samples while one
/// outlying run barely moves it (Rousseeuw & Croux, JASA 88(424), 1993).
constexpr double kMadToSigma = 1.4826;

/// The standard deviation of `samples` estimated from their median absolute deviation
/// (kMadToSigma · MAD); 0 with fewer than two samples.
double robust_sigma(const std::vector<double>& samples);
/// The change between two documents' medians that noise alone explains:
/// kNoiseSigmas · sqrt(σ_b² + σ_c²), each σ from robust_sigma (0 for a side without samples).
double noise_bound(const std::vector<double>& baseline, const std::vector<double>& current);

struct Outcome {
  std::vector<Row> rows;
  std::vector<std::string> notes;  ///< shown above the table (inputs compared across a change)
  bool failed() const;
};

/// Compares current against baseline. Throws xring::Error (bad input) for different kinds or
/// schema versions, different identities or input contents, a rule naming a metric the
/// baseline does not have (with did-you-mean), or a baseline metric missing from current.
/// With allow_changed_inputs, inputs of the same name whose content differs (a GPU swap, a
/// longer video) are compared anyway, and the differences are listed in the outcome's notes.
Outcome compare(const Document& baseline, const Document& current, const Rules& rules,
                bool allow_changed_inputs = false);

/// Checks requirements such as "feasible", "verified", "frames_per_s>=4",
/// "peak_memory_bytes_per_rank<=70GiB" against one document. A metric with an interval takes
/// the suffix .low or .high ("iteration_time_s.high<=10s": met even in the pessimistic case);
/// another suffix, or one on a metric without an interval, is an xring::Error (bad input).
Outcome require(const Document& doc, const std::vector<std::string>& requirements);

/// A metric's value for people: bytes and seconds with prefixes ("1.22 s", "70 GiB"), other
/// numbers with 4 significant digits; "—" for NaN.
std::string format_value(double v, const std::string& unit);

/// The summary table for a job page or a pull request comment.
std::string markdown(const Outcome& o, const std::string& title);
/// JUnit XML: one testsuite of one testcase per row; a failure carries its message and, in
/// its body, the metric, baseline, current, change, bound and rule, one per line; a row that
/// is not gated is skipped. `seconds`: how long the gate took (the time attributes).
std::string junit_xml(const Outcome& o, const std::string& suite, double seconds);

}  // namespace xring::gate
