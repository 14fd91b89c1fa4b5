// Parser entry points shared by the libFuzzer targets and the FuzzReplay ctest.
#include "fuzz_entry_points.hpp"

#include <sstream>
#include <stdexcept>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/heads.hpp"
#include "xring/planner/hf_import.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/specs.hpp"
#include "xring/planner/systems.hpp"

namespace xring::fuzz {
namespace {

struct TargetName {
  FuzzTarget target;
  const char* name;
};
constexpr TargetName kTargetNames[] = {
    {FuzzTarget::model, "model"},
    {FuzzTarget::cluster, "cluster"},
    {FuzzTarget::workload, "workload"},
    {FuzzTarget::set_override, "set_override"},
    {FuzzTarget::plan, "plan"},
    {FuzzTarget::run_report, "run_report"},
    {FuzzTarget::gate_rules, "gate_rules"},
    {FuzzTarget::hf_config, "hf_config"},
    {FuzzTarget::device_profile, "device_profile"},
    {FuzzTarget::head_profile, "head_profile"},
    {FuzzTarget::scores, "scores"},
};

/// The built-ins a lone spec is completed with, as `xring plan --model FILE` completes it with
/// the defaults; read once (the fuzzer runs thousands of inputs a second).
/// `text_only` picks a workload without visual input, for a model without cross-attention.
const SpecJson& builtin(SpecKind kind, bool text_only = false) {
  static const SpecJson model = load_spec_json(SpecKind::model, "tiny");
  static const SpecJson cluster = load_spec_json(SpecKind::cluster, "h100-sxm-8");
  static const SpecJson workload = load_spec_json(SpecKind::workload, "video-qa");
  static const SpecJson text_workload = load_spec_json(SpecKind::workload, "long-text");
  switch (kind) {
    case SpecKind::model:
      return model;
    case SpecKind::cluster:
      return cluster;
    default:
      return text_only ? text_workload : workload;
  }
}

/// `heads build`'s default number of bins (cli/cmd_heads.cpp).
constexpr int kScoreBins = 32;

void fuzz_overrides(std::string_view data) {
  std::vector<std::string> texts;
  std::istringstream lines{std::string(data)};
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) texts.push_back(line);
  std::vector<Override> overrides;
  for (const std::string& text : texts) overrides.push_back(parse_override(text));
  SpecJson model = builtin(SpecKind::model), cluster = builtin(SpecKind::cluster),
           workload = builtin(SpecKind::workload);
  apply_overrides(model, SpecKind::model, overrides);
  apply_overrides(cluster, SpecKind::cluster, overrides);
  apply_overrides(workload, SpecKind::workload, overrides);
  inputs_from_json(model, cluster, workload, texts);
}

void fuzz_hf_config(const nlohmann::json& j, const std::string& origin) {
  ImportedModel imported = import_hf_config(j, origin, "fuzz");
  // The importer promises a spec model_from_json takes: its refusal would be our bug.
  try {
    model_from_json(imported.spec, origin + " (imported)");
  } catch (const Error& e) {
    throw std::logic_error(std::string("import hf wrote a spec the model reader refuses: ") +
                           e.what());
  }
}

void read_document_of_kind(FuzzTarget t, const nlohmann::json& j, const std::string& origin) {
  switch (t) {
    case FuzzTarget::model: {
      const bool text_only = model_from_json(j, origin).cross_attention_layers.empty();
      inputs_from_json({j, origin}, builtin(SpecKind::cluster),
                       builtin(SpecKind::workload, text_only), {});
      return;
    }
    case FuzzTarget::cluster: {
      SpecJson cluster{j, origin};
      resolve_cluster_references(cluster);
      cluster_from_json(cluster.value, origin);
      inputs_from_json(builtin(SpecKind::model), cluster, builtin(SpecKind::workload), {});
      return;
    }
    case FuzzTarget::workload:
      workload_from_json(j, origin);
      inputs_from_json(builtin(SpecKind::model), builtin(SpecKind::cluster), {j, origin}, {});
      return;
    case FuzzTarget::set_override:  // overrides are text: a JSON string holds their lines
      if (!j.is_string()) throw Error(origin + ": --set overrides are text, not JSON");
      fuzz_overrides(j.get<std::string>());
      return;
    case FuzzTarget::plan: {
      Plan p = plan_from_json(j, origin);
      check_plan_against_inputs(p, plan_inputs(p, origin), origin);
      return;
    }
    case FuzzTarget::run_report:
      gate::read_document(j, origin);
      return;
    case FuzzTarget::gate_rules:
      gate::read_rules(j, origin);
      return;
    case FuzzTarget::hf_config:
      fuzz_hf_config(j, origin);
      return;
    case FuzzTarget::device_profile:
      device_profile_from_json(j, origin);
      return;
    case FuzzTarget::head_profile:
      head_profile_from_json(j, origin);
      return;
    case FuzzTarget::scores:
      head_profile_from_scores(j, origin, kScoreBins);
      return;
  }
}

}  // namespace

const std::vector<FuzzTarget>& all_fuzz_targets() {
  static const std::vector<FuzzTarget> targets = [] {
    std::vector<FuzzTarget> v;
    for (const TargetName& t : kTargetNames) v.push_back(t.target);
    return v;
  }();
  return targets;
}

std::string to_string(FuzzTarget t) {
  for (const TargetName& n : kTargetNames)
    if (n.target == t) return n.name;
  return "unknown";
}

std::optional<FuzzTarget> fuzz_target_from_string(const std::string& name) {
  for (const TargetName& n : kTargetNames)
    if (name == n.name) return n.target;
  return std::nullopt;
}

FuzzOutcome fuzz_one_document(FuzzTarget t, const nlohmann::json& j, const std::string& origin) {
  try {
    read_document_of_kind(t, j, origin);
    return FuzzOutcome::accepted;
  } catch (const Error&) {
    return FuzzOutcome::bad_input;
  }
}

FuzzOutcome fuzz_one_input(FuzzTarget t, std::string_view data) {
  const std::string origin = "fuzz-" + to_string(t) + ".json";
  try {
    if (t == FuzzTarget::set_override) {
      fuzz_overrides(data);
      return FuzzOutcome::accepted;
    }
    return fuzz_one_document(t, parse_json_text(std::string(data), origin), origin);
  } catch (const Error&) {
    return FuzzOutcome::bad_input;
  }
}

}  // namespace xring::fuzz
