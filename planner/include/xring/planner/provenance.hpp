// Provenance: what a plan or report was made from (version, git revision, content hashes of
// the inputs, the rates used, the date), and the difference between two plans.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace xring {

struct Plan;

/// FNV-1a 64-bit over the JSON's canonical text (keys sorted, no whitespace), as 16 hex digits.
std::string content_hash(const nlohmann::json& j);

/// The git revision xring was configured from ("unknown" outside a checkout).
std::string git_revision();

/// The current time as ISO 8601 UTC ("2026-11-23T23:44:16Z").
std::string utc_now();

/// {xring_version, git_revision, date, rates, device_profile, inputs: {model, cluster,
/// workload: {name, hash}}, overrides}.
nlohmann::json plan_provenance(const nlohmann::json& inputs, const std::string& rates);

/// Every path at which two JSON values differ, as "path: old -> new".
std::vector<std::string> json_differences(const nlohmann::json& a, const nlohmann::json& b,
                                          const std::string& path = "");

/// What changed between two plans: inputs (by hash, then field by field), predictions, layers.
std::vector<std::string> explain_diff(const Plan& before, const Plan& after);

}  // namespace xring
