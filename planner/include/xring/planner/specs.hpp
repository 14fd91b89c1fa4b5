// The planner's inputs: ModelSpec, GpuSpec, ClusterSpec, WorkloadSpec; their JSON readers
// (strict: units, ranges, unknown keys). Plans echo the validated JSON, not a re-encoding.
// Quantities are in SI base units.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xring/planner/efficiency.hpp"

namespace xring {

using nlohmann::json;

enum class DType { fp32, fp16, bf16 };
enum class Phase { training, prefill, decode, streaming };
/// How a cross-attention layer sits in the decoder: `separate` layers replace self-attention
/// (Llama-3.2-Vision); `fused` ones run beside it in the same layer (mPLUG-Owl3); `inserted`
/// blocks come before a decoder layer that keeps its self-attention (Flamingo).
enum class CrossAttentionKind { separate, fused, inserted };

/// Decoder layers with self-attention: all but the `separate` cross-attention ones.
int self_attention_layers(const struct ModelSpec& m);
enum class RankOrder { node_major, round_robin };

std::string to_string(DType d);
std::string to_string(Phase p);
std::string to_string(CrossAttentionKind k);
std::string to_string(RankOrder o);
DType dtype_from_string(const std::string& s);  ///< throws xring::Error on unknown names
int bytes_per_element(DType d);

struct AttentionGeometry {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

struct ModelSpec {
  std::string name;
  std::string source;
  int layers = 0;                           ///< decoder layers, cross-attention ones included
  std::vector<int> cross_attention_layers;  ///< 0-based indices into the decoder layers
  CrossAttentionKind cross_attention_kind = CrossAttentionKind::separate;
  int hidden_size = 0;
  AttentionGeometry self_attention;
  AttentionGeometry cross_attention;  ///< defaults to self_attention
  int mlp_size = 0;
  int vocab_size = 0;
  double params = 0;                ///< language-model parameters (count)
  double vision_params = 0;         ///< vision encoder parameters; 0 = not modelled
  int vision_tokens_per_frame = 0;  ///< tokens the vision encoder sees per frame
  DType dtype = DType::bf16;
  int tokens_per_frame = 0;    ///< visual tokens per frame reaching cross-attention
  int visual_hidden_size = 0;  ///< width of those tokens (input of Wk, Wv)
};

/// Fixed cost of launching one kernel back to back in a stream without CUDA graphs: ≈ 2.9 us
/// per short kernel (NVIDIA Technical Blog, "Getting Started with CUDA Graphs", Gray 2019).
inline constexpr double kDefaultKernelLaunchS = 3e-6;
/// Fixed cost of one ring step's handoff beyond its transfer (whose link latency is counted in
/// the transfer): the NCCL send/recv pair is a kernel launch of its own, and the next step
/// waits on its event; taken as one more kernel launch (same source).
inline constexpr double kDefaultRingStepSyncS = 3e-6;

struct GpuSpec {
  std::string name;
  std::string source;
  double memory_bytes = 0;
  double peak_bf16_flop_per_s = 0;  ///< dense tensor-core peak
  double peak_fp16_flop_per_s = 0;
  double hbm_bytes_per_s = 0;
  double attention_efficiency = 0.5;  ///< achieved / peak for attention kernels
  double matmul_efficiency = 0.6;     ///< achieved / peak for GEMMs
  /// Published forward-attention efficiencies by shape; empty = the flat attention_efficiency.
  std::vector<AttentionEfficiencyPoint> attention_efficiency_table;
  double kernel_launch_s = kDefaultKernelLaunchS;   ///< fixed cost of one kernel
  double ring_step_sync_s = kDefaultRingStepSyncS;  ///< fixed cost of one ring step's handoff
  std::string vendor;                 ///< "nvidia" or "amd"; "" when the spec does not say
  std::string form_factor;            ///< "sxm", "pcie", "oam" or "superchip"; "" when not said
  std::string default_system;  ///< the system (name or file) it is usually bought in; "" = none
  double peak_flop_per_s(DType d) const;
};

struct LinkSpec {
  std::string kind;        ///< "nvlink", "pcie", "infiniband", ... (free text)
  double bytes_per_s = 0;  ///< per GPU, one direction
  double latency_s = 0;
};

struct ClusterSpec {
  std::string name;
  std::string source;
  int nodes = 0;
  int gpus_per_node = 0;
  GpuSpec gpu;
  LinkSpec intra_node;
  LinkSpec inter_node;  ///< unused when nodes == 1
  std::string system;   ///< name of the system the node and intra-node link came from; "" = none
  std::string fabric;   ///< name of the fabric the inter-node link came from; "" = none
  RankOrder rank_order = RankOrder::node_major;
  double reserved_bytes_per_gpu = 2.0 * (1ull << 30);  ///< CUDA context, allocator slack
  int gpus() const { return nodes * gpus_per_node; }
  double usable_memory_bytes() const { return gpu.memory_bytes - reserved_bytes_per_gpu; }
};

enum class KvPolicyKind { full, uniform, adaptive, inf_mllm, a_vl };
std::string to_string(KvPolicyKind k);

/// The KV-cache policy and its parameters (KV-POLICIES.md). Parameters marked
/// "reconstructed" there are our reading of the papers, exposed so users can change them.
struct KvPolicy {
  KvPolicyKind kind = KvPolicyKind::full;
  std::string name = "full";
  /// adaptive: AdaKV's floor fraction alpha of B' every head keeps; unset = by model
  /// (adakv_floor: 0.2 for grouped-query models, 0.5 otherwise).
  std::optional<double> floor;
  bool redistribute = true;     ///< adaptive: hand a capped head's excess to the others (xring)
  int window = 32;              ///< adaptive: observation window w, always kept
  long long cache_tokens = 0;   ///< inf_mllm: cache size N per layer (0 = kv_budget, else 4096)
  long long recent_tokens = 0;  ///< inf_mllm: recent tokens r kept (0 = cache_tokens / 4)
  /// inf_mllm (reconstructed, ours): attention bias toward newer tokens when scores are
  /// accumulated, added to the logit of the token at position p as bias·(p + 1) / arrived.
  double recency_bias = 1.0;
  /// inf_mllm (reconstructed, ours): scores summed over ±radius neighbouring cached tokens.
  int saddle_radius = 1;
  double stored_rate = 0.45;    ///< a_vl: fraction of vision tokens kept after prefill
  double compute_rate = 0.5;    ///< a_vl: fraction of the kept vision tokens computed every step
  int update_interval = 5;      ///< a_vl: the rest is computed every this many steps
  double text_keep = 0.3;       ///< a_vl: 1 - T, fraction of text tokens kept (at least 20)
};

/// Training optimizer: the bytes it keeps per trainable parameter (kOptimizerBytesPerParam).
enum class Optimizer { adam, sgd, none };
/// Flamingo-style image-to-text masks (the executor's --media-mask): none; same_group (text
/// sees only its own image); up_to_group (text sees every image up to its own).
enum class MediaMask { none, same_group, up_to_group };
std::string to_string(Optimizer o);
std::string to_string(MediaMask m);

struct WorkloadSpec {
  std::string name;
  std::string description;
  Phase phase = Phase::prefill;
  int batch = 1;
  int text_tokens = 0;  ///< S_Q: text (query) tokens per sample
  std::optional<int> frames;
  std::optional<int> tokens_per_frame;     ///< overrides the model's
  std::optional<long long> visual_tokens;  ///< S_KV directly, instead of frames
  int generate_tokens = 0;
  KvPolicy kv_policy;
  std::optional<long long> kv_budget;  ///< average tokens kept per kv head (uniform, adaptive)
  std::string head_profile;            ///< head-importance profile (name or path; "" = the model's)
  std::optional<double> stream_seconds;  ///< streaming: length of the stream
  std::optional<double> fps;             ///< streaming: frames per second
  /// streaming: a text query every this many seconds of stream; unset: one, at the end (where
  /// the plan's tokens/s is predicted).
  std::optional<double> query_interval_s;
  Optimizer optimizer = Optimizer::adam;     ///< training only
  bool frozen_vision_encoder = true;         ///< training: `frozen` lists vision_encoder (default)
  bool frozen_language_model = false;        ///< training: `frozen` lists language_model
  bool precomputed_visual_features = false;  ///< visual_features: precomputed (no encoder)
  MediaMask media_mask = MediaMask::none;
};

/// Parameters a deployment holds: the language model's, and the vision encoder's unless the
/// workload's visual features are precomputed.
double held_params(const ModelSpec& m, const WorkloadSpec& w);
/// Training and the vision encoder runs in the step and is not frozen.
bool vision_encoder_trains(const WorkloadSpec& w);
/// Training and the language model (its own layers, embedding and head) is not frozen; the
/// cross-attention layers always train.
bool language_model_trains(const WorkloadSpec& w);
/// Fraction of (text, visual) token pairs the media mask leaves: text spread evenly over the
/// frames as the executor does, so same_group 1/F and up_to_group (F + 1)/(2F) for F frames;
/// 1 without a mask or with fewer than 2 frames.
double media_mask_density(const WorkloadSpec& w, const ModelSpec& m);
/// Parameters of the cross-attention layers: per layer Wq, Wo (D·H'·d' each), Wk, Wv
/// (D_v·H_kv'·d' each) and, for separate layers, a SwiGLU MLP (3·D·mlp), for inserted (Flamingo)
/// blocks a GELU feed-forward (2·D·mlp); fused ones share their layer's MLP.
double cross_attention_params(const ModelSpec& m);

/// S_KV of a workload on a model: visual_tokens, or frames x tokens per frame.
long long visual_tokens(const WorkloadSpec& w, const ModelSpec& m);
/// Frames of a workload (visual tokens / tokens per frame when only S_KV is given).
double frames(const WorkloadSpec& w, const ModelSpec& m);

/// Readers: `origin` names the file (or builtin) for error messages. They throw xring::Error.
ModelSpec model_from_json(const json& j, const std::string& origin);
GpuSpec gpu_from_json(const json& j, const std::string& origin, const std::string& path = "");
ClusterSpec cluster_from_json(const json& j, const std::string& origin);
WorkloadSpec workload_from_json(const json& j, const std::string& origin);

/// Checks that a workload makes sense for a model (e.g. it has a visual input or the model
/// has no cross-attention); throws xring::Error naming `origin`.
void check_compatible(const ModelSpec& m, const WorkloadSpec& w, const std::string& origin);

}  // namespace xring
