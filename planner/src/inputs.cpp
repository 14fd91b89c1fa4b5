// Spec resolution (built-in or file), `--set` overrides, and validation of the three inputs.
#include "xring/planner/inputs.hpp"

#include <filesystem>
#include <set>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/systems.hpp"

namespace xring {
namespace {

std::string plural(SpecKind k) {
  return k == SpecKind::heads    ? "head profiles"
         : k == SpecKind::device ? "device profiles"
                                 : to_string(k) + "s";
}

std::string ends_with_json(const std::string& s) {
  return s.size() > 5 && s.compare(s.size() - 5, 5, ".json") == 0 ? s : "";
}

/// Before a cluster's overrides apply: `cluster.system=...` (`cluster.fabric=...`) drops the
/// fields that system (fabric) supplies, so they come from it, except a field another override
/// sets whole; overrides of a field's parts (cluster.inter_node.latency) then apply on top.
void drop_fields_a_new_system_supplies(SpecJson& spec, const std::vector<Override>& overrides) {
  if (!spec.value.is_object()) return;
  std::set<std::string> set_whole;
  for (const auto& o : overrides)
    if (o.target == SpecKind::cluster && o.path.size() == 1) set_whole.insert(o.path[0]);
  for (const auto& o : overrides) {
    if (o.target != SpecKind::cluster || o.path.size() != 1 || o.value.is_null()) continue;
    if (o.path[0] != "system" && o.path[0] != "fabric") continue;
    for (const auto& f : o.path[0] == "system" ? fields_from_system() : fields_from_fabric())
      if (!set_whole.count(f)) spec.value.erase(f);
  }
}

}  // namespace

std::string to_string(SpecKind k) {
  switch (k) {
    case SpecKind::model:
      return "model";
    case SpecKind::cluster:
      return "cluster";
    case SpecKind::gpu:
      return "gpu";
    case SpecKind::workload:
      return "workload";
    case SpecKind::heads:
      return "head profile";
    case SpecKind::device:
      return "device profile";
    case SpecKind::system:
      return "system";
    case SpecKind::fabric:
      return "fabric";
  }
  return "?";
}

std::vector<std::string> builtin_names(SpecKind kind) {
  std::vector<std::string> names;
  for (const auto& b : builtin_specs())
    if (b.kind == kind) names.push_back(b.name);
  return names;
}

SpecJson load_spec_json(SpecKind kind, const std::string& name_or_path) {
  SpecJson spec;
  std::error_code no_such_file;  // e.g. a name longer than the system allows: not a file then
  if (std::filesystem::exists(name_or_path, no_such_file) ||
      !ends_with_json(name_or_path).empty()) {
    spec = {read_json_file(name_or_path), name_or_path};
  } else {
    const BuiltinSpec* found = nullptr;
    for (const auto& b : builtin_specs())
      if (b.kind == kind && b.name == name_or_path) found = &b;
    if (!found) {
      auto names = builtin_names(kind);
      auto hint = did_you_mean(name_or_path, names);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw Error("unknown " + to_string(kind) + " \"" + quoted_excerpt(name_or_path) + "\"" +
                  (hint ? "; did you mean \"" + *hint + "\"?" : "") +
                  (list.empty() ? " (none is built in; give a path to a .json file)"
                                : " (built-in " + plural(kind) + ": " + list +
                                      "; or give a path to a .json file)"));
    }
    spec = {parse_json_text(found->text, "builtin:" + found->name), "builtin:" + found->name};
  }
  if (kind == SpecKind::cluster) resolve_cluster_references(spec);
  return spec;
}

Override parse_override(const std::string& text) {
  auto eq = text.find('=');
  auto fail = [&](const std::string& why) -> Error {
    return Error("--set " + quoted_excerpt(text) + ": " + why +
                 " (form: model|cluster|workload.FIELD[.FIELD]=VALUE, e.g. workload.frames=3600)");
  };
  if (eq == std::string::npos) throw fail("missing '='");
  std::string lhs = text.substr(0, eq);
  std::string rhs = text.substr(eq + 1);
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = lhs.find('.', start);
    parts.push_back(lhs.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& p : parts)
    if (p.empty()) throw fail("empty field name");
  if (parts.size() > static_cast<size_t>(kMaxJsonDepth))
    throw fail("more than " + std::to_string(kMaxJsonDepth) + " fields deep (the nesting limit)");
  Override o;
  o.text = text;
  if (parts.front() == "model")
    o.target = SpecKind::model;
  else if (parts.front() == "cluster")
    o.target = SpecKind::cluster;
  else if (parts.front() == "workload")
    o.target = SpecKind::workload;
  else {
    auto hint = did_you_mean(parts.front(), {"model", "cluster", "workload"});
    throw fail("\"" + quoted_excerpt(parts.front()) + "\" is not a spec" +
               (hint ? "; did you mean \"" + *hint + "\"?" : ""));
  }
  if (parts.size() < 2) throw fail("name a field of the " + parts.front());
  o.path.assign(parts.begin() + 1, parts.end());
  if (rhs.empty()) throw fail("missing value");
  o.value = parse_json_or_string(rhs, "--set " + quoted_excerpt(lhs));
  return o;
}

void apply_overrides(SpecJson& spec, SpecKind kind, const std::vector<Override>& overrides) {
  if (kind == SpecKind::cluster) drop_fields_a_new_system_supplies(spec, overrides);
  std::string applied;
  for (const auto& o : overrides) {
    if (o.target != kind) continue;
    if (!spec.value.is_object())
      throw Error(spec.origin + ": must be a JSON object (applying --set " +
                  quoted_excerpt(o.text) + ")");
    json* node = &spec.value;
    for (size_t i = 0; i + 1 < o.path.size(); ++i) {
      // A missing object is created (e.g. cluster.inter_node.bandwidth on a one-node cluster);
      // validation then asks for whatever else it needs. A value in the way is an error.
      if (!node->contains(o.path[i])) (*node)[o.path[i]] = json::object();
      if (!(*node)[o.path[i]].is_object())
        throw Error("--set " + quoted_excerpt(o.text) + ": in " + spec.origin + ", \"" +
                    quoted_excerpt(o.path[i]) + "\" is not an object, so it has no field \"" +
                    quoted_excerpt(o.path[i + 1]) + "\"");
      node = &(*node)[o.path[i]];
    }
    if (o.value.is_null())
      node->erase(o.path.back());  // `--set workload.frames=null` removes the field
    else
      (*node)[o.path.back()] = o.value;
    applied += (applied.empty() ? "" : ", ") + o.text;
  }
  if (!applied.empty()) spec.origin += " (with --set " + quoted_excerpt(applied) + ")";
  if (kind == SpecKind::cluster && !applied.empty()) resolve_cluster_references(spec);
}

Inputs inputs_from_json(SpecJson model, SpecJson cluster, SpecJson workload,
                        std::vector<std::string> overrides) {
  return inputs_from_json(std::move(model), nullptr, std::move(cluster), nullptr,
                          std::move(workload), std::move(overrides));
}

Inputs inputs_from_json(SpecJson model, const ModelSpec* model_read, SpecJson cluster,
                        const ClusterSpec* cluster_read, SpecJson workload,
                        std::vector<std::string> overrides) {
  Inputs in;
  in.model = model_read ? *model_read : model_from_json(model.value, model.origin);
  in.cluster = cluster_read ? *cluster_read : cluster_from_json(cluster.value, cluster.origin);
  in.workload = workload_from_json(workload.value, workload.origin);
  check_compatible(in.model, in.workload, workload.origin);
  in.model_json = std::move(model);
  in.cluster_json = std::move(cluster);
  in.workload_json = std::move(workload);
  in.overrides = std::move(overrides);
  return in;
}

Inputs load_inputs(const std::string& model, const std::string& cluster,
                   const std::string& workload, const std::vector<std::string>& overrides) {
  std::vector<Override> parsed;
  for (const auto& text : overrides) parsed.push_back(parse_override(text));
  SpecJson m = load_spec_json(SpecKind::model, model);
  SpecJson c = load_spec_json(SpecKind::cluster, cluster);
  SpecJson w = load_spec_json(SpecKind::workload, workload);
  apply_overrides(m, SpecKind::model, parsed);
  apply_overrides(c, SpecKind::cluster, parsed);
  apply_overrides(w, SpecKind::workload, parsed);
  return inputs_from_json(std::move(m), std::move(c), std::move(w), overrides);
}

}  // namespace xring
