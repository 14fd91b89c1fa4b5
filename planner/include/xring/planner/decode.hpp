// Decode and streaming sections of a plan: per-head budgets, FairKV placement under tensor
// parallelism, and memory over time for streaming policies (KV-POLICIES.md).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xring/planner/heads.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/placement.hpp"

namespace xring {

struct DecodePlacement {
  std::string placement;  ///< contiguous | balanced | fair_copying | optimal
  bool fits = false;      ///< at the workload's batch
  double step_time_s = 0;
  double tokens_per_s = 0;        ///< at the workload's batch, all replicas
  double max_gpu_load_bytes = 0;  ///< Σ over layers of the slowest GPU's KV (+copy) bytes per step
  double lower_bound_bytes = 0;   ///< Σ over layers of total KV bytes / G
  double gap = 0;                 ///< max_gpu_load_bytes / lower_bound_bytes − 1
  double peak_memory_bytes = 0;   ///< the fullest GPU
  int copies = 0;                 ///< extra head copies over all layers
  int max_batch = 0;              ///< largest batch per replica that fits
  double tokens_per_s_at_max_batch = 0;
};

struct DecodeHead {
  int layer = 0;                ///< self-attention layer (0-based among them)
  int head = 0;                 ///< kv head
  long long budget_tokens = 0;  ///< per request, at the end of prefill
  double budget_bytes = 0;      ///< K+V bytes of that budget per request
  std::vector<int> gpus;        ///< GPUs holding a copy (within a replica)
  std::vector<int> requests;    ///< requests each copy serves
};

struct DecodeGpu {
  int gpu = 0;
  double load_bytes = 0;  ///< bytes read per decode step (KV and copies, all layers)
  double memory_bytes = 0;
};

struct DecodeSection {
  std::string policy;
  long long kv_budget = 0;   ///< 0 when the policy has none
  std::string head_profile;  ///< "" when none was needed
  int gpus = 1;              ///< tensor-parallel degree G (inside a node)
  int replicas = 1;          ///< data-parallel copies of the model
  int batch_per_replica = 1;
  long long prompt_tokens = 0;
  int generate_tokens = 0;
  std::vector<DecodePlacement> placements;
  std::string chosen;
  std::vector<DecodeHead> heads;   ///< the chosen placement
  std::vector<DecodeGpu> per_gpu;  ///< the chosen placement
};

struct StreamingPolicy {
  std::string policy;              ///< full | inf_mllm | a_vl
  double peak_memory_bytes = 0;    ///< over the stream (at OOM for a policy that runs out)
  double tokens_per_s = 0;         ///< decode speed at the end of the stream (or at OOM)
  std::optional<double> oom_at_s;  ///< when it runs out of memory; null when it never does
  double per_token_flops = 0;
  double cached_tokens = 0;  ///< at the end of the stream (or at OOM)
  std::vector<std::pair<double, double>> memory_over_time;  ///< (seconds, bytes)
};

struct StreamingSection {
  double stream_seconds = 0;
  double fps = 0;
  double visual_tokens_per_s = 0;
  std::vector<StreamingPolicy> policies;
  std::string chosen;  ///< the workload's policy
};

/// Extra per-GPU bytes the decode section must account for beyond self-attention KV
/// (cross-attention K/V of the visual tokens, from the prefill plan).
struct DecodeExtras {
  double cross_kv_bytes_per_gpu = 0;
  double cross_hop_latency_s = 0;
};

/// The decode section for a decode workload; `profile` is required for adaptive budgets.
/// Without `head_detail`, heads[] stays empty (sweeps need only the totals).
DecodeSection plan_decode(const Inputs& in, const HeadProfile* profile, const DecodeExtras& extras,
                          bool head_detail = true);

/// The streaming section: full, inf_mllm and a_vl over the workload's stream on one GPU.
StreamingSection plan_streaming(const Inputs& in);

/// Loads the head profile a workload names (or the model's built-in one), read once per
/// process; null when the policy needs none. Throws xring::Error when it is missing or does
/// not match the model.
std::shared_ptr<const HeadProfile> load_head_profile(const Inputs& in);

}  // namespace xring
