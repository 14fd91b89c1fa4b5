// Where specs come from: the built-in catalog embedded in the binary, files on disk, and
// `--set target.path=value` overrides; load_inputs() turns the three into validated specs.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "xring/planner/specs.hpp"

namespace xring {

using nlohmann::json;

enum class SpecKind { model, cluster, gpu, workload, heads, device, system, fabric };
std::string to_string(SpecKind k);

/// One spec file under profiles/, embedded at build time.
struct BuiltinSpec {
  SpecKind kind;
  std::string name;  ///< the file's stem, e.g. "llama-3.2-11b-vision"
  std::string text;  ///< the JSON text as shipped
};

const std::vector<BuiltinSpec>& builtin_specs();
std::vector<std::string> builtin_names(SpecKind kind);

/// A spec's JSON and where it came from ("builtin:NAME" or the file path).
struct SpecJson {
  json value;
  std::string origin;
};

/// `name_or_path` is a file when it exists on disk or ends in ".json", else a built-in name;
/// an unknown name lists the built-ins with a did-you-mean hint. A cluster's "gpu" given by
/// name is replaced by that built-in GPU's object, and its "system" and "fabric" names fill its
/// node and links (resolve_cluster_references in systems.hpp).
SpecJson load_spec_json(SpecKind kind, const std::string& name_or_path);

/// A `--set` override such as "workload.frames=3600" or "cluster.inter_node.bandwidth=50GB/s".
/// The value is read as JSON when it parses (numbers, true, objects), else as a string;
/// `null` removes the field (e.g. workload.frames=null to give visual_tokens instead).
struct Override {
  std::string text;
  SpecKind target;
  std::vector<std::string> path;
  json value;
};
Override parse_override(const std::string& text);
/// Applies the overrides aimed at `kind`; the origin then mentions them for error messages.
/// For a cluster, names set by an override are resolved afterwards (`cluster.gpu=h200`), and
/// `cluster.system=NAME` (`cluster.fabric=NAME`) first drops the fields that system (fabric)
/// supplies, unless another override sets them.
void apply_overrides(SpecJson& spec, SpecKind kind, const std::vector<Override>& overrides);

struct DeviceProfile;

/// The validated inputs of a plan, with the JSON they were read from.
struct Inputs {
  SpecJson model_json, cluster_json, workload_json;
  ModelSpec model;
  ClusterSpec cluster;
  WorkloadSpec workload;
  std::vector<std::string> overrides;
  /// Measured rates (`--device-profile`); null: datasheet peaks x stated efficiencies.
  std::shared_ptr<const DeviceProfile> device_profile;
  SpecJson device_profile_json;
  /// Fraction of a device each rank gets: 1 on a real cluster; 1/P when `xring validate`
  /// emulates P ranks on one device.
  double compute_share = 1;
};

/// The built-in defaults `xring plan` uses with no arguments.
inline constexpr const char* kDefaultModel = "llama-3.2-11b-vision";
inline constexpr const char* kDefaultCluster = "h100-sxm-8";
inline constexpr const char* kDefaultWorkload = "video-qa";

Inputs load_inputs(const std::string& model, const std::string& cluster,
                   const std::string& workload, const std::vector<std::string>& overrides);

/// Validates inputs already in JSON form (e.g. echoed in a plan file).
Inputs inputs_from_json(SpecJson model, SpecJson cluster, SpecJson workload,
                        std::vector<std::string> overrides);
/// The same, with the model and cluster already read from `model` and `cluster` where given
/// (a sweep reads the specs no axis varies once, not at every point).
Inputs inputs_from_json(SpecJson model, const ModelSpec* model_read, SpecJson cluster,
                        const ClusterSpec* cluster_read, SpecJson workload,
                        std::vector<std::string> overrides);

}  // namespace xring
