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
      return fmt::format("{}, {} bf16, {}", j.value("memory", "?"), j.value("peak_bf16", "?"),
                         j.value("hbm_bandwidth", "?"));
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

}  // namespace

void attach_list(CLI::App& sub, int& exit_code) {
  sub.footer(
      "Use a name with --model/--cluster/--workload, or `xring show KIND NAME` for its JSON.");
  sub.callback([&exit_code] {
    for (SpecKind kind : {SpecKind::model, SpecKind::cluster, SpecKind::gpu, SpecKind::workload,
                          SpecKind::heads, SpecKind::device}) {
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
  sub.add_option("kind", *kind,
                 "model, cluster, gpu, workload, heads, device, or plan (a plan file to check and print)")
      ->required()
      ->check(CLI::IsMember({"model", "cluster", "gpu", "workload", "heads", "device", "plan"}));
  sub.add_option("name", *name, "A built-in name (see xring list), or the plan file")->required();
  sub.footer(
      "Examples:\n"
      "  xring show cluster a100-80gb-16 > my-cluster.json   # edit, then --cluster "
      "my-cluster.json\n"
      "  xring show plan plan.json                           # validate a plan file and print it");
  sub.callback([kind, name, &exit_code] {
    if (*kind == "plan") {
      Plan p = read_plan_file(*name);
      print_plan(p, plan_inputs(p, *name), stdout);
      exit_code = 0;
      return;
    }
    SpecKind k = *kind == "model"     ? SpecKind::model
                 : *kind == "cluster" ? SpecKind::cluster
                 : *kind == "gpu"     ? SpecKind::gpu
                 : *kind == "heads"   ? SpecKind::heads
                 : *kind == "device"  ? SpecKind::device
                                      : SpecKind::workload;
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
