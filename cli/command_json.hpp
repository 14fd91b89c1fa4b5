// The machine-readable outputs of explain, recommend and validate (`--json`): one object each,
// {"schema_version": 1, "command": NAME, ...}, numbers at full precision, null where a number
// does not apply or was not predicted.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xring/executor/profile.hpp"
#include "xring/planner/explain.hpp"
#include "xring/planner/recommend.hpp"

namespace xring::cli {

/// The version of the objects below; raised when a field changes meaning or goes away.
constexpr int kCommandJsonSchemaVersion = 1;

/// `xring explain --json`: the layer, its shape, the ring, per-strategy bytes and times, the
/// crossover and the hiding thresholds. Backward bytes are null unless the workload trains.
nlohmann::json explain_json(const Explanation& e, const Inputs& in);

/// What `xring recommend` was asked, for its JSON.
struct RecommendQuery {
  const RecommendRequest& request;
  std::string objective;
  int top = 10;
  double search_seconds = 0;
};
/// `xring recommend --json`: the search, the top recommendations (empty when nothing meets)
/// and, when nothing meets, the closest shape with each miss (null otherwise).
nlohmann::json recommend_json(const Recommendation& rec, const RecommendQuery& query);

/// The bounds `xring validate` was given (empty: not given) and its verdict.
struct ValidateVerdict {
  std::optional<double> max_median_error, max_worst_error, min_coverage;
  bool verified = true;
  std::vector<std::string> failures;  ///< one line per bound exceeded or run not verified
};
/// `xring validate --json`: the validate report (executor::to_json) with command, profile,
/// bounds, passed and failures added.
nlohmann::json validate_json(const executor::ValidateReport& r, const std::string& profile,
                             const ValidateVerdict& verdict);

/// Half the range of `samples` (the "±" of run and validate tables); empty with fewer than 2.
std::optional<double> half_range(const std::vector<double>& samples);

}  // namespace xring::cli
