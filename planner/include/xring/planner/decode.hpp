// Decode and streaming sections of a plan: per-head budgets, FairKV placement under tensor
// parallelism, and memory over time for streaming policies (KV-POLICIES.md).
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "xring/planner/heads.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/placement.hpp"

namespace xring {

struct DecodePlacement {
  std::string placement;  ///< contiguous | balanced | fair_copying | optimal
  /// Empty when computed; else why not (the optimum where no exact method finishes at once),
  /// and the figures below do not apply (null in JSON, "—" in tables).
  std::string not_computed;
  bool fits = false;  ///< at the workload's batch
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
  int first_copy = 0;           ///< its copies: DecodeSection::copies(*this)
  int copy_count = 0;
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
  /// Every head's copies in one table (GPU within a replica, requests the copy serves).
  std::vector<HeadCopy> head_copies;
  std::span<const HeadCopy> copies(const DecodeHead& h) const {
    return {head_copies.data() + h.first_copy, static_cast<size_t>(h.copy_count)};
  }
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

/// The tensor-parallel degree of a decode replica: G = gcd(kv heads, GPUs per node), so every
/// GPU holds whole kv heads and the group stays inside a node. A serving plan uses this one
/// layout for prefill and decode memory alike.
int decode_tensor_parallel(const ModelSpec& m, const ClusterSpec& c);

/// Parameters one decode step reads and applies to each new token (count): every decoder layer
/// that runs, and the LM head (vocab x hidden, untied). Left out: the input embedding (a row
/// lookup), the cross-attention W_k and W_v (their K/V are cached at prefill) and, without
/// visual input, the separate cross-attention layers (skipped; layers taken as equal in size).
double decode_step_params(const ModelSpec& m, bool visual_input);

/// Decoder layers that end in two all-reduces of the hidden state under tensor parallelism
/// (attention output and MLP output): the self-attention layers, plus the cross-attention
/// blocks that are layers of their own (separate ones with visual input; inserted ones always).
int decode_allreduced_layers(const ModelSpec& m, bool visual_input);

/// The decode section for a decode workload; `profile` is required for adaptive budgets.
/// Without `head_detail`, heads[] stays empty (sweeps need only the totals). Layers whose
/// budgets equal an earlier layer's reuse its placements where that provably gives the same
/// result; `reuse_identical_layers` = false places every layer (tests compare the two).
DecodeSection plan_decode(const Inputs& in, const HeadProfile* profile, bool head_detail = true,
                          bool reuse_identical_layers = true);
/// The same, keeping the budgets and their bytes per layer for the thread's next plans: the
/// plans of a sweep that differ only in what the budgets do not read (batch, cluster) share
/// them. Bounded (docs/limits.md); the entries hold `profile`.
DecodeSection plan_decode(const Inputs& in, const std::shared_ptr<const HeadProfile>& profile,
                          bool head_detail);

/// The streaming section: full, inf_mllm and a_vl over the workload's stream on one GPU.
StreamingSection plan_streaming(const Inputs& in);

/// Visual tokens a streaming policy (full | inf_mllm | a_vl) keeps once `arrived` visual tokens
/// have come in: full all of them, inf_mllm at most `cache_tokens`, a_vl `stored_rate` of them.
/// One formula for the plan's memory curve and the executor's predicted column.
double streaming_kept_visual_tokens(const std::string& policy, const KvPolicy& p, double arrived,
                                    double cache_tokens);

/// K+V bytes of one visual token over every layer that holds it: the cross-attention layers
/// when the model has them, else every self-attention layer.
double streaming_visual_token_bytes(const ModelSpec& m);

/// inf_mllm's cache size N in tokens: kv_policy.cache_tokens, else kv_budget, else 4096.
double streaming_cache_tokens(const WorkloadSpec& w);

/// Loads the head profile a workload names (or the model's built-in one), read once per
/// process; null when the policy needs none. Throws xring::Error when it is missing or does
/// not match the model.
std::shared_ptr<const HeadProfile> load_head_profile(const Inputs& in);

}  // namespace xring
