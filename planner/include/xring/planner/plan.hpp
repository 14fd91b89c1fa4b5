// Plan: the planner's output as plain data, with a strict JSON round trip. The executor needs
// nothing but this file.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xring/planner/decode.hpp"
#include "xring/planner/intervals.hpp"
#include "xring/planner/strategy.hpp"

namespace xring {

using nlohmann::json;

inline constexpr int kPlanSchemaVersion = 1;

/// Per-rank bytes by category at a layer's peak.
struct MemoryBreakdown {
  double weights = 0;            ///< model weights resident on the rank
  double optimizer_states = 0;   ///< training: gradients and Adam moments (sharded)
  double visual_tokens = 0;      ///< the rank's shard of the visual input (one shared copy)
  double kv = 0;                 ///< K/V of the layer
  double kv_gradients = 0;       ///< training: dK and dV of the layer's backward
  double attention_buffers = 0;  ///< Q, O, L and in-flight blocks
  double saved_activations = 0;  ///< training: every cross-attention layer's saved tensors
  double text_activations = 0;   ///< the rest of the model's activations
  double total() const {
    return weights + optimizer_states + visual_tokens + kv + kv_gradients + attention_buffers +
           saved_activations + text_activations;
  }
  /// Every category that is not zero, largest first: {name as users read it, bytes}.
  std::vector<std::pair<std::string, double>> largest_first() const;
};

/// A candidate the planner costed for a layer: time_s is null when it was rejected outright
/// (does not fit, unsupported); a slower feasible one has both a time and a reason.
struct Alternative {
  Strategy strategy = Strategy::single;
  int ranks = 1;
  int ulysses_degree = 0;  ///< hybrid only
  bool recompute = false;
  std::optional<double> time_s;
  std::string rejected_reason;  ///< empty for the chosen one
};

struct LayerPlan {
  int index = 0;  ///< decoder layer index
  Strategy strategy = Strategy::single;
  int ranks = 1;           ///< P: ranks cooperating on one sample
  int ulysses_degree = 0;  ///< hybrid: Ulysses degree inside a node
  std::string ring_kind;   ///< hybrid: "query_ring" or "kv_ring" across nodes
  bool recompute = false;  ///< training: LV-XAttn activation recomputation
  int groups = 1;          ///< data-parallel groups of `ranks` ranks that have samples to run
  long long batch_per_group = 1;
  int idle_gpus = 0;  ///< GPUs without a sample: G − groups·ranks when the batch is small
  long long q_block = 0;      ///< largest query block per rank (tokens)
  long long kv_block = 0;     ///< largest K/V block per rank (tokens)
  int steps = 1;              ///< overlapped ring steps per pass
  double step_compute_s = 0;  ///< forward
  double step_comm_s = 0;     ///< forward
  double bytes_per_step = 0;  ///< forward
  double forward_s = 0;
  double backward_s = 0;
  double compute_s = 0;
  double comm_s = 0;
  double time_s = 0;
  MemoryBreakdown memory_bytes;
  std::string reason;  ///< why this choice won
  std::vector<Alternative> alternatives;
};

/// Everything that is not cross-attention: self-attention and MLP on the text tokens, the
/// vision encoder, weight sharding and gradient synchronisation.
struct RestOfModel {
  double flops = 0;
  double compute_s = 0;
  double comm_s = 0;  ///< training: gradient/parameter sync not hidden by compute
  double time_s = 0;
  int tensor_parallel = 1;  ///< inference: weight sharding degree (1 = replicated)
  std::string note;
};

/// What the plan predicts. Times and rates are empty (null in JSON, "—" in tables) when the
/// plan is infeasible, and where they do not apply (no cross-attention layer ran, no frames).
struct Predicted {
  std::optional<double> iteration_time_s;
  std::optional<double> cross_attention_time_s;  ///< empty when no cross-attention layer runs
  std::optional<double> rest_of_model_time_s;
  std::optional<double> throughput_tokens_per_s;  ///< input tokens (text + visual) per second
  std::optional<double> frames_per_s;             ///< empty when the workload has no frames
  double peak_memory_bytes_per_rank = 0;          ///< what it needs, feasible or not
  std::optional<double> decode_step_s;  ///< decode/streaming: one generated token, full cache
  std::optional<double> decode_tokens_per_s;
  /// How far measurements may stray from these numbers (intervals.hpp): every time, rate and
  /// memory figure above and each layer's time has [low, high] from it; JSON writes them.
  PredictionBand band;
};

/// Where the compute and link rates came from.
struct CostSource {
  std::string kind = "datasheet";   ///< "datasheet" peaks x stated efficiencies
  double attention_flop_per_s = 0;  ///< achieved per rank
  double matmul_flop_per_s = 0;
  double attention_efficiency = 0;
  double matmul_efficiency = 0;
};

struct Plan {
  int schema_version = kPlanSchemaVersion;
  std::string xring_version;
  json inputs;                       ///< {model, cluster, workload, overrides}: validated JSON
  json provenance = json::object();  ///< version, git revision, input hashes, rates, date
  std::string phase;
  CostSource cost_source;
  bool feasible = true;
  std::vector<std::string> reasons;  ///< why infeasible, when it is
  std::vector<std::string> notes;    ///< assumptions the user should know
  std::vector<LayerPlan> layers;
  RestOfModel rest_of_model;
  Predicted predicted;
  std::optional<DecodeSection> decode;        ///< decode workloads
  std::optional<StreamingSection> streaming;  ///< streaming workloads
};

/// The plan file's text: what `to_json(plan).dump(2)` printed, written without building the
/// document (a 4,000-layer plan in milliseconds). No trailing newline.
std::string plan_json_text(const Plan& plan);
/// The plan as a JSON document: the same fields as plan_json_text, from the same code.
json to_json(const Plan& plan);
/// Reads a plan written by to_json; a missing field, wrong type or other schema version is
/// an xring::Error naming `origin` and the field.
Plan plan_from_json(const json& j, const std::string& origin);

}  // namespace xring
