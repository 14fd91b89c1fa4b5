// What clusters are built from: systems (a node as it is bought: GPU, GPUs per node, the link
// inside it) and fabrics (the link between nodes, per GPU); their JSON readers; and how a
// cluster spec names them ("system", "fabric", "gpu" given by name) before it is validated.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "xring/planner/inputs.hpp"
#include "xring/planner/specs.hpp"

namespace xring {

class ObjectReader;

/// A published collective bandwidth, kept for reference beside the datasheet link speed
/// (the cost model uses the link speed).
struct NcclTestsFigure {
  double all_reduce_busbw_bytes_per_s = 0;  ///< nccl-tests all_reduce_perf busbw, large messages
  std::string source;
};

/// A node as it is bought: HGX/DGX boards, NVL72 racks, PCIe servers.
struct SystemSpec {
  std::string name;
  std::string source;
  std::string description;
  std::string gpu;  ///< the GPU it ships with (built-in name or file)
  int gpus_per_node = 0;
  std::string interconnect;  ///< e.g. "NVLink 4 + NVSwitch (gen 3)"
  LinkSpec intra_node;
  std::string default_fabric;  ///< the fabric it is usually cabled with (name or file)
  std::optional<NcclTestsFigure> nccl_tests;
};

/// The link between nodes, per GPU, one direction.
struct FabricSpec {
  std::string name;
  std::string source;
  std::string description;
  LinkSpec link;
  std::optional<NcclTestsFigure> nccl_tests;
};

/// Strict readers; `origin` names the file (or builtin) for error messages.
SystemSpec system_from_json(const json& j, const std::string& origin, const std::string& path = "");
FabricSpec fabric_from_json(const json& j, const std::string& origin, const std::string& path = "");

/// Fails at `key` unless `name` is a built-in of `kind` or a .json file, listing the built-ins
/// with a did-you-mean hint.
void check_reference(ObjectReader& r, const std::string& key, SpecKind kind,
                     const std::string& name);

/// Resolves the names a cluster spec may give, in place:
/// - "gpu": a GPU name or file becomes that GPU's object;
/// - "system": a name or file becomes the system's object, and fills "gpu", "gpus_per_node" and
///   "intra_node" (field by field) where the cluster does not give them, and names the system's
///   default fabric when a multi-node cluster gives neither "fabric" nor "inter_node";
/// - "fabric": likewise fills "inter_node".
/// Objects already resolved are left alone, so resolving twice changes nothing. Errors name
/// the cluster's origin and the field.
void resolve_cluster_references(SpecJson& cluster);

/// The cluster fields a `--set cluster.system=...` (or `cluster.fabric=...`) replaces: the
/// system's GPU, GPUs per node and intra-node link (the fabric's inter-node link).
const std::vector<std::string>& fields_from_system();
const std::vector<std::string>& fields_from_fabric();

}  // namespace xring
