// `xring list` and `xring show`: the built-in specs.
#include <fmt/core.h>

#include "commands.hpp"
#include "xring/planner/error.hpp"

namespace xring::cli {
namespace {

std::string summary(const BuiltinSpec& b) {
  json j = json::parse(b.text, nullptr, false);
  if (!j.is_object()) return "";
  auto get = [&](const char* key) { return j.contains(key) ? j[key].dump() : std::string("?"); };
  switch (b.kind) {
    case SpecKind::model:
      return fmt::format("{} layers ({} cross-attention), {} heads / {} kv, {} tokens per frame",
                         get("layers"), j.value("cross_attention_layers", json::array()).size(),
                         get("heads"), get("kv_heads"), j.value("tokens_per_frame", 0));
    case SpecKind::cluster:
      return fmt::format(
          "{} x {} {}", get("nodes"), get("gpus_per_node"),
          j["gpu"].is_string() ? j["gpu"].get<std::string>() : std::string("(inline gpu)"));
    case SpecKind::gpu:
      return fmt::format("{}, {} bf16, {}{}", j.value("memory", "?"), j.value("peak_bf16", "?"),
                         j.value("hbm_bandwidth", "?"),
                         j.contains("default_system")
                             ? ", in " + j.value("default_system", std::string())
                             : std::string());
    case SpecKind::system:
      return fmt::format("{} x {}, {} {}/{} each way, fabric {}", get("gpus_per_node"),
                         j.value("gpu", "?"), j.value("interconnect", "?"),
                         j.value("intra_node", json::object()).value("bandwidth", "?"),
                         j.value("intra_node", json::object()).value("latency", "?"),
                         j.value("default_fabric", "?"));
    case SpecKind::fabric:
      return fmt::format("{} per GPU, {}; {}", j.value("bandwidth", "?"), j.value("latency", "?"),
                         j.value("description", ""));
    case SpecKind::workload:
      return j.value("description", "");
    case SpecKind::heads:
      return fmt::format("for {}, {} layers x {} kv heads", j.value("model", "?"), get("layers"),
                         get("kv_heads"));
    case SpecKind::device:
      return fmt::format("{} ({}), {} attention shapes, measured {}",
                         j.value("device", json::object()).value("name", "?"),
                         j.value("device", json::object()).value("backend", "?"),
                         j.value("attention", json::array()).size(), j.value("date", "?"));
  }
  return "";
}

const std::vector<std::pair<std::string, SpecKind>>& kinds_by_word() {
  static const std::vector<std::pair<std::string, SpecKind>> kinds = {
      {"model", SpecKind::model},   {"cluster", SpecKind::cluster},
      {"gpu", SpecKind::gpu},       {"system", SpecKind::system},
      {"fabric", SpecKind::fabric}, {"workload", SpecKind::workload},
      {"heads", SpecKind::heads},   {"device", SpecKind::device}};
  return kinds;
}

}  // namespace

void attach_list(CLI::App& sub, int& exit_code) {
  auto only = std::make_shared<std::string>();
  std::vector<std::string> words;
  for (const auto& [word, kind] : kinds_by_word()) {
    words.push_back(word);
    words.push_back(word + "s");
  }
  sub.add_option("kind", *only,
                 "List only this kind: models, clusters, gpus, systems, fabrics, "
                 "workloads, heads, devices")
      ->check(CLI::IsMember(words));
  sub.footer(
      "Use a name with --model/--cluster/--workload (or --set cluster.gpu=NAME, "
      "cluster.system=NAME, cluster.fabric=NAME), or `xring show KIND NAME` for its JSON.\n"
      "Examples:\n  xring list gpus\n  xring list systems");
  sub.callback([only, &exit_code] {
    for (const auto& [word, kind] : kinds_by_word()) {
      if (!only->empty() && *only != word && *only != word + "s") continue;
      fmt::print("{}s:\n", to_string(kind));
      if (builtin_names(kind).empty()) fmt::print("  (none shipped yet)\n");
      for (const auto& b : builtin_specs())
        if (b.kind == kind) fmt::print("  {:<22} {}\n", b.name, summary(b));
    }
    exit_code = 0;
  });
}

void attach_show(CLI::App& sub, int& exit_code) {
  auto kind = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  std::vector<std::string> words = {"plan"};
  for (const auto& [word, k] : kinds_by_word()) words.push_back(word);
  sub.add_option("kind", *kind,
                 "model, cluster, gpu, system, fabric, workload, heads, device, or plan (a plan "
                 "file to check and print)")
      ->required()
      ->check(CLI::IsMember(words));
  sub.add_option("name", *name, "A built-in name (see xring list), or the plan file")->required();
  sub.footer(
      "Examples:\n"
      "  xring show cluster a100-80gb-16 > my-cluster.json   # edit, then --cluster "
      "my-cluster.json\n"
      "  xring show gpu h200                                 # datasheet figures and their source\n"
      "  xring show plan plan.json                           # validate a plan file and print it");
  sub.callback([kind, name, &exit_code] {
    if (*kind == "plan") {
      Plan p = read_plan_file(*name);
      print_plan(p, plan_inputs(p, *name), stdout);
      exit_code = 0;
      return;
    }
    SpecKind k = SpecKind::model;
    for (const auto& [word, each] : kinds_by_word())
      if (word == *kind) k = each;
    for (const auto& b : builtin_specs())
      if (b.kind == k && b.name == *name) {
        std::fputs(b.text.c_str(), stdout);
        exit_code = 0;
        return;
      }
    load_spec_json(k, *name);  // throws the unknown-name error with its did-you-mean hint
    throw Error("\"" + *name + "\" is a file, not a built-in " + *kind);
  });
}

}  // namespace xring::cli
