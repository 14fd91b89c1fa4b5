// The parser entry points that the libFuzzer targets (tests/fuzz/fuzz_target.cpp) and the
// default build's FuzzReplay ctest both drive: one function per kind of input the binary reads,
// doing what the command that reads it does, so that a crash found by either reproduces in the
// other (issue 16).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xring::fuzz {

/// Every kind of input xring parses.
enum class FuzzTarget {
  model,           ///< --model FILE
  cluster,         ///< --cluster FILE (names of GPUs, systems and fabrics resolved)
  workload,        ///< --workload FILE
  set_override,    ///< --set PATH=VALUE, one per line of the input
  plan,            ///< run/diff/show PLAN: the plan and the specs it echoes, cross-checked
  run_report,      ///< gate --baseline/--current REPORT
  gate_rules,      ///< gate --rules FILE
  hf_config,       ///< import hf CONFIG
  device_profile,  ///< --device-profile FILE
  head_profile,    ///< --set workload.kv_policy.head_profile=FILE
  scores,          ///< heads build SCORES
};

const std::vector<FuzzTarget>& all_fuzz_targets();
/// The target's name as in its fuzzer binary (fuzz_<name>) and corpus folder.
std::string to_string(FuzzTarget t);
std::optional<FuzzTarget> fuzz_target_from_string(const std::string& name);

/// What an input came to: the parser took it, or refused it with an xring::Error (exit 2).
enum class FuzzOutcome { accepted, bad_input };

/// Feeds `data` to the target's parser as the command that reads it would. Returns the outcome;
/// any exception other than xring::Error escapes (an "internal error", exit 3 in the binary),
/// and a crash is a crash: both are findings.
FuzzOutcome fuzz_one_input(FuzzTarget t, std::string_view data);

/// The same for a document already parsed as JSON (every target but set_override), so that a
/// replay can parse once and feed every reader. `origin` names the input in messages.
FuzzOutcome fuzz_one_document(FuzzTarget t, const nlohmann::json& j, const std::string& origin);

}  // namespace xring::fuzz
