// The system and fabric catalogue: strict readers, and how a cluster spec's "gpu", "system" and
// "fabric" names become the objects and links the cluster reader validates.
#include "xring/planner/systems.hpp"

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

using units::Quantity;

LinkSpec read_link_fields(ObjectReader& r) {
  LinkSpec l;
  l.kind = r.optional_string("kind").value_or("link");
  l.bytes_per_s = r.quantity("bandwidth", Quantity::bandwidth);
  l.latency_s = r.quantity("latency", Quantity::time, /*min_exclusive=*/false);
  return l;
}

std::optional<NcclTestsFigure> read_nccl_tests(ObjectReader& r) {
  if (!r.has("nccl_tests")) {
    r.allow("nccl_tests");
    return std::nullopt;
  }
  ObjectReader o = r.object("nccl_tests");
  NcclTestsFigure f;
  f.all_reduce_busbw_bytes_per_s = o.quantity("all_reduce_busbw", Quantity::bandwidth);
  f.source = o.string("source");
  o.finish();
  return f;
}

/// Copies the link fields `from` gives into `to` where `to` lacks them.
void fill_link(json& to, const json& from) {
  if (!to.is_object() || !from.is_object()) return;
  for (const char* k : {"kind", "bandwidth", "latency"})
    if (!to.contains(k) && from.contains(k)) to[k] = from[k];
}

void resolve_by_name(SpecJson& cluster, const char* key, SpecKind kind) {
  json& v = cluster.value[key];
  if (!v.is_string()) return;
  try {
    v = load_spec_json(kind, v.get<std::string>()).value;
  } catch (const Error& e) {
    throw Error(cluster.origin + ": at \"" + key + "\": " + e.what());
  }
}

}  // namespace

void check_reference(ObjectReader& r, const std::string& key, SpecKind kind,
                     const std::string& name) {
  if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) return;
  auto names = builtin_names(kind);
  for (const auto& n : names)
    if (n == name) return;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  auto hint = did_you_mean(name, names);
  r.fail(key, "names " + to_string(kind) + " \"" + name + "\", which is not built in" +
                  (hint ? "; did you mean \"" + *hint + "\"?" : "") + " (built-in " +
                  to_string(kind) + "s: " + list + "; or a .json file)");
}

SystemSpec system_from_json(const json& j, const std::string& origin, const std::string& path) {
  ObjectReader r(j, origin, path);
  SystemSpec s;
  s.name = r.string("name");
  s.source = r.string("source");
  s.description = r.optional_string("description").value_or("");
  s.gpu = r.string("gpu");
  check_reference(r, "gpu", SpecKind::gpu, s.gpu);
  s.gpus_per_node = static_cast<int>(r.integer("gpus_per_node", 1, 1024));
  s.interconnect = r.string("interconnect");
  ObjectReader link = r.object("intra_node");
  s.intra_node = read_link_fields(link);
  link.finish();
  s.default_fabric = r.string("default_fabric");
  check_reference(r, "default_fabric", SpecKind::fabric, s.default_fabric);
  s.nccl_tests = read_nccl_tests(r);
  r.finish();
  return s;
}

FabricSpec fabric_from_json(const json& j, const std::string& origin, const std::string& path) {
  ObjectReader r(j, origin, path);
  FabricSpec f;
  f.name = r.string("name");
  f.source = r.string("source");
  f.description = r.optional_string("description").value_or("");
  f.link = read_link_fields(r);
  f.nccl_tests = read_nccl_tests(r);
  r.finish();
  return f;
}

void resolve_cluster_references(SpecJson& cluster) {
  json& c = cluster.value;
  if (!c.is_object()) return;
  if (c.contains("system")) {
    resolve_by_name(cluster, "system", SpecKind::system);
    const json s = c["system"];
    if (s.is_object()) {
      if (!c.contains("gpu") && s.contains("gpu")) c["gpu"] = s["gpu"];
      if (!c.contains("gpus_per_node") && s.contains("gpus_per_node"))
        c["gpus_per_node"] = s["gpus_per_node"];
      if (!c.contains("intra_node")) c["intra_node"] = json::object();
      if (s.contains("intra_node")) fill_link(c["intra_node"], s["intra_node"]);
      const bool multi_node = c.contains("nodes") && c["nodes"].is_number() && c["nodes"] > 1;
      if (multi_node && !c.contains("fabric") && !c.contains("inter_node") &&
          s.contains("default_fabric"))
        c["fabric"] = s["default_fabric"];
    }
  }
  if (c.contains("fabric")) {
    resolve_by_name(cluster, "fabric", SpecKind::fabric);
    if (c["fabric"].is_object()) {
      if (!c.contains("inter_node")) c["inter_node"] = json::object();
      fill_link(c["inter_node"], c["fabric"]);
    }
  }
  if (c.contains("gpu")) resolve_by_name(cluster, "gpu", SpecKind::gpu);
}

const std::vector<std::string>& fields_from_system() {
  static const std::vector<std::string> fields = {"gpu", "gpus_per_node", "intra_node"};
  return fields;
}

const std::vector<std::string>& fields_from_fabric() {
  static const std::vector<std::string> fields = {"inter_node"};
  return fields;
}

}  // namespace xring
