// Strict readers of the model, GPU, cluster and workload specs.
#include "xring/planner/specs.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "xring/planner/error.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/systems.hpp"

namespace xring {
namespace {

using units::Quantity;

constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxTokens = 1ll << 40;

AttentionGeometry read_geometry(ObjectReader& r) {
  AttentionGeometry g;
  g.heads = r.int32("heads", 1, 4096);
  g.kv_heads = r.int32("kv_heads", 1, 4096);
  g.head_dim = r.int32("head_dim", 1, 1024);
  if (g.heads % g.kv_heads != 0)
    r.fail("kv_heads", "heads (" + std::to_string(g.heads) + ") must be a multiple of kv_heads (" +
                           std::to_string(g.kv_heads) + ") for grouped-query attention");
  return g;
}

LinkSpec read_link(ObjectReader r) {
  LinkSpec l;
  l.kind = r.optional_string("kind").value_or("link");
  l.bytes_per_s = r.quantity("bandwidth", Quantity::bandwidth);
  l.latency_s = r.quantity("latency", Quantity::time, /*min_exclusive=*/false);
  r.finish();
  return l;
}

/// A cluster's "system" or "fabric" once load_spec_json resolved its name into the object.
const json& resolved_reference(ObjectReader& r, const std::string& key) {
  const json& value = r.raw(key);
  if (!value.is_object())
    r.fail(key, "names a " + key + " that was not resolved; use a built-in " + key +
                    " name (see xring list " + key + "s), a .json file or an object");
  return value;
}

/// "attention_efficiency_table": [{"head_dim", "keys", "efficiency"}, ...], optional.
std::vector<AttentionEfficiencyPoint> read_attention_table(ObjectReader& r) {
  const std::string key = "attention_efficiency_table";
  std::vector<AttentionEfficiencyPoint> table;
  if (!r.has(key)) {
    r.allow(key);
    return table;
  }
  const json& list = r.raw(key);
  if (!list.is_array() || list.empty())
    r.fail(key, "must be a non-empty list of {\"head_dim\", \"keys\", \"efficiency\"} points");
  for (size_t i = 0; i < list.size(); ++i) {
    ObjectReader p(list[i], r.origin(), r.path_of(key) + "[" + std::to_string(i) + "]");
    AttentionEfficiencyPoint point;
    point.head_dim = p.int32("head_dim", 1, 1024);
    point.keys = p.integer("keys", 1, kMaxTokens);
    point.efficiency = p.number("efficiency", 0.01, 1.0);
    p.finish();
    for (const auto& q : table)
      if (q.head_dim == point.head_dim && q.keys == point.keys)
        p.fail("keys", "repeats the point at head_dim " + std::to_string(q.head_dim) + ", keys " +
                           std::to_string(q.keys) + "; give each (head_dim, keys) once");
    table.push_back(point);
  }
  return table;
}

const std::vector<std::string> kPolicyNames = {"full", "uniform", "adaptive", "inf_mllm", "a_vl"};

/// kv_policy: a name, or {"name": ..., parameters of that policy}.
KvPolicy read_kv_policy(ObjectReader& r) {
  KvPolicy p;
  if (!r.has("kv_policy") || !r.raw("kv_policy").is_object()) {
    p.name = r.optional_choice("kv_policy", kPolicyNames).value_or("full");
  } else {
    ObjectReader o = r.object("kv_policy");
    p.name = o.choice("name", kPolicyNames);
    if (p.name == "adaptive") {
      p.floor = o.optional_number("floor", 0, 1);
      if (o.has("redistribute")) {
        if (!o.raw("redistribute").is_boolean()) o.fail("redistribute", "must be true or false");
        p.redistribute = o.raw("redistribute").get<bool>();
      }
      p.window = o.optional_int32("window", 0, 1 << 20).value_or(p.window);
    } else if (p.name == "inf_mllm") {
      p.cache_tokens = o.optional_integer("cache_tokens", 1, 1ll << 40).value_or(0);
      p.recent_tokens = o.optional_integer("recent_tokens", 0, 1ll << 40).value_or(0);
      if (p.cache_tokens && p.recent_tokens > p.cache_tokens)
        o.fail("recent_tokens", "must not exceed cache_tokens");
      p.recency_bias = o.optional_number("recency_bias", 0, 1e3).value_or(p.recency_bias);
      p.saddle_radius = o.optional_int32("saddle_radius", 0, 1 << 16).value_or(p.saddle_radius);
    } else if (p.name == "a_vl") {
      p.stored_rate = o.optional_number("stored_rate", 0, 1).value_or(p.stored_rate);
      p.compute_rate = o.optional_number("compute_rate", 0, 1).value_or(p.compute_rate);
      p.update_interval =
          o.optional_int32("update_interval", 1, 1 << 20).value_or(p.update_interval);
      p.text_keep = o.optional_number("text_keep", 0, 1).value_or(p.text_keep);
    }
    o.finish();
  }
  for (size_t i = 0; i < kPolicyNames.size(); ++i)
    if (kPolicyNames[i] == p.name) p.kind = static_cast<KvPolicyKind>(i);
  return p;
}

/// optimizer, frozen, visual_features and media_mask (issue 15, item 13).
void read_training_setup(ObjectReader& r, WorkloadSpec& w) {
  const bool training = w.phase == Phase::training;
  for (const char* key : {"optimizer", "frozen"})
    if (r.has(key) && !training)
      r.fail(key, "applies to training workloads only (this one is " + to_string(w.phase) +
                      "); remove it or set phase to training");
  const std::string opt = r.optional_choice("optimizer", {"adam", "sgd", "none"}).value_or("adam");
  w.optimizer = opt == "sgd" ? Optimizer::sgd : opt == "none" ? Optimizer::none : Optimizer::adam;
  if (r.has("frozen")) {
    const json& list = r.raw("frozen");
    if (!list.is_array())
      r.fail("frozen",
             "must be a list of parts: [], [\"vision_encoder\"], [\"language_model\"] "
             "or both");
    w.frozen_vision_encoder = false;
    w.frozen_language_model = false;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string at = "frozen[" + std::to_string(i) + "]";
      const std::string part = list[i].is_string() ? list[i].get<std::string>() : "";
      bool* flag = part == "vision_encoder"   ? &w.frozen_vision_encoder
                   : part == "language_model" ? &w.frozen_language_model
                                              : nullptr;
      if (!flag) r.fail(at, "must be \"vision_encoder\" or \"language_model\"");
      if (*flag) r.fail(at, "lists " + part + " twice");
      *flag = true;
    }
  }
  w.precomputed_visual_features =
      r.optional_choice("visual_features", {"encoded", "precomputed"}).value_or("encoded") ==
      "precomputed";
  const std::string mask =
      r.optional_choice("media_mask", {"none", "same_group", "up_to_group"}).value_or("none");
  w.media_mask = mask == "same_group"    ? MediaMask::same_group
                 : mask == "up_to_group" ? MediaMask::up_to_group
                                         : MediaMask::none;
  if (w.media_mask != MediaMask::none && w.visual_tokens)
    r.fail("media_mask", "groups text by frames; give frames instead of visual_tokens");
}

}  // namespace

std::string to_string(Optimizer o) {
  return o == Optimizer::adam ? "adam" : o == Optimizer::sgd ? "sgd" : "none";
}

std::string to_string(MediaMask m) {
  return m == MediaMask::none ? "none" : m == MediaMask::same_group ? "same_group" : "up_to_group";
}

double held_params(const ModelSpec& m, const WorkloadSpec& w) {
  return m.params + (w.precomputed_visual_features ? 0.0 : m.vision_params);
}

bool vision_encoder_trains(const WorkloadSpec& w) {
  return w.phase == Phase::training && !w.frozen_vision_encoder && !w.precomputed_visual_features;
}

bool language_model_trains(const WorkloadSpec& w) {
  return w.phase == Phase::training && !w.frozen_language_model;
}

double media_mask_density(const WorkloadSpec& w, const ModelSpec& m) {
  const double f = std::floor(frames(w, m));
  if (w.media_mask == MediaMask::none || f < 2) return 1.0;
  return w.media_mask == MediaMask::same_group ? 1.0 / f : (f + 1) / (2 * f);
}

double cross_attention_params(const ModelSpec& m) {
  const AttentionGeometry& ca = m.cross_attention;
  const double attention = 2.0 * m.hidden_size * ca.heads * ca.head_dim +
                           2.0 * m.visual_hidden_size * ca.kv_heads * ca.head_dim;
  const double mlp = m.cross_attention_kind == CrossAttentionKind::separate   ? 3.0
                     : m.cross_attention_kind == CrossAttentionKind::inserted ? 2.0
                                                                              : 0.0;
  return static_cast<double>(m.cross_attention_layers.size()) *
         (attention + mlp * m.hidden_size * m.mlp_size);
}

std::string to_string(KvPolicyKind k) { return kPolicyNames[static_cast<size_t>(k)]; }

std::string to_string(DType d) {
  switch (d) {
    case DType::fp32:
      return "fp32";
    case DType::fp16:
      return "fp16";
    case DType::bf16:
      return "bf16";
  }
  return "?";
}

std::string to_string(Phase p) {
  switch (p) {
    case Phase::training:
      return "training";
    case Phase::prefill:
      return "prefill";
    case Phase::decode:
      return "decode";
    case Phase::streaming:
      return "streaming";
  }
  return "?";
}

std::string to_string(CrossAttentionKind k) {
  switch (k) {
    case CrossAttentionKind::separate:
      return "separate";
    case CrossAttentionKind::fused:
      return "fused";
    case CrossAttentionKind::inserted:
      return "inserted";
  }
  return "?";
}

int self_attention_layers(const ModelSpec& m) {
  int cross = static_cast<int>(m.cross_attention_layers.size());
  return m.layers - (m.cross_attention_kind == CrossAttentionKind::separate ? cross : 0);
}

std::string to_string(RankOrder o) {
  return o == RankOrder::node_major ? "node_major" : "round_robin";
}

DType dtype_from_string(const std::string& s) {
  if (s == "fp32") return DType::fp32;
  if (s == "fp16") return DType::fp16;
  if (s == "bf16") return DType::bf16;
  throw Error("unknown dtype \"" + s + "\"; supported: fp32, fp16, bf16");
}

int bytes_per_element(DType d) { return d == DType::fp32 ? 4 : 2; }

double GpuSpec::peak_flop_per_s(DType d) const {
  switch (d) {
    case DType::fp16:
      return peak_fp16_flop_per_s;
    case DType::bf16:
      return peak_bf16_flop_per_s;
    case DType::fp32:
      return peak_bf16_flop_per_s / 2;  // TF32 tensor cores: half the bf16 rate
  }
  return peak_bf16_flop_per_s;
}

long long visual_tokens(const WorkloadSpec& w, const ModelSpec& m) {
  if (w.visual_tokens) return *w.visual_tokens;
  return static_cast<long long>(w.frames.value_or(0)) *
         w.tokens_per_frame.value_or(m.tokens_per_frame);
}

double frames(const WorkloadSpec& w, const ModelSpec& m) {
  if (w.frames) return *w.frames;
  int per_frame = w.tokens_per_frame.value_or(m.tokens_per_frame);
  return per_frame > 0 ? static_cast<double>(visual_tokens(w, m)) / per_frame : 0.0;
}

ModelSpec model_from_json(const json& j, const std::string& origin) {
  ObjectReader r(j, origin, "");
  ModelSpec m;
  m.name = r.string("name");
  m.source = r.string("source");
  r.optional_string("description");
  m.layers = r.int32("layers", 1, 100000);
  auto cross = r.integer_list("cross_attention_layers", 0, m.layers - 1);
  std::set<int64_t> seen;
  for (size_t i = 0; i < cross.size(); ++i) {
    if (!seen.insert(cross[i]).second)
      r.fail("cross_attention_layers[" + std::to_string(i) + "]",
             "layer " + std::to_string(cross[i]) + " is listed twice");
    m.cross_attention_layers.push_back(static_cast<int>(cross[i]));
  }
  std::sort(m.cross_attention_layers.begin(), m.cross_attention_layers.end());
  std::string kind = r.optional_choice("cross_attention_kind", {"separate", "fused", "inserted"})
                         .value_or("separate");
  m.cross_attention_kind = kind == "fused"      ? CrossAttentionKind::fused
                           : kind == "inserted" ? CrossAttentionKind::inserted
                                                : CrossAttentionKind::separate;
  m.hidden_size = r.int32("hidden_size", 1, kMaxDim);
  m.self_attention = read_geometry(r);
  m.cross_attention = m.self_attention;
  if (r.has("cross_attention")) {
    ObjectReader c = r.object("cross_attention");
    m.cross_attention = read_geometry(c);
    c.finish();
  } else {
    r.allow("cross_attention");
  }
  m.mlp_size = r.int32("mlp_size", 1, kMaxDim);
  m.vocab_size = r.int32("vocab_size", 1, 1 << 24);
  m.params = r.quantity("params", Quantity::count);
  m.dtype = dtype_from_string(r.choice("dtype", {"bf16", "fp16", "fp32"}));
  bool has_cross = !m.cross_attention_layers.empty();
  m.tokens_per_frame = has_cross ? r.int32("tokens_per_frame", 1, kMaxDim)
                                 : r.optional_int32("tokens_per_frame", 1, kMaxDim).value_or(0);
  m.visual_hidden_size = r.optional_int32("visual_hidden_size", 1, kMaxDim).value_or(m.hidden_size);
  if (r.has("vision_encoder")) {
    ObjectReader v = r.object("vision_encoder");
    m.vision_params = v.quantity("params", Quantity::count);
    m.vision_tokens_per_frame = v.int32("tokens_per_frame", 1, kMaxDim);
    v.optional_string("source");
    v.finish();
  } else {
    r.allow("vision_encoder");
  }
  r.finish();
  // The parameter count must at least hold the attention and MLP weights it implies; a spec
  // whose count is far smaller almost always has a unit slip ("7M" for "7B").
  double attn = 2.0 * m.hidden_size * m.self_attention.head_dim *
                (m.self_attention.heads + m.self_attention.kv_heads);
  double mlp = 3.0 * m.hidden_size * m.mlp_size;
  double implied = self_attention_layers(m) * (attn + mlp);
  if (m.params < 0.5 * implied)
    r.fail("params", "is " + std::to_string(static_cast<long long>(m.params)) +
                         " but the layers alone imply about " +
                         std::to_string(static_cast<long long>(implied)) +
                         " parameters; check the unit (e.g. \"7B\")");
  return m;
}

GpuSpec gpu_from_json(const json& j, const std::string& origin, const std::string& path) {
  ObjectReader r(j, origin, path);
  GpuSpec g;
  g.name = r.string("name");
  g.source = r.string("source");
  g.memory_bytes = r.quantity("memory", Quantity::bytes);
  g.peak_bf16_flop_per_s = r.quantity("peak_bf16", Quantity::flop_rate);
  g.peak_fp16_flop_per_s = r.quantity("peak_fp16", Quantity::flop_rate);
  g.hbm_bytes_per_s = r.quantity("hbm_bandwidth", Quantity::bandwidth);
  g.attention_efficiency = r.optional_number("attention_efficiency", 0.01, 1.0).value_or(0.5);
  g.matmul_efficiency = r.optional_number("matmul_efficiency", 0.01, 1.0).value_or(0.6);
  r.optional_string("efficiency_source");
  g.attention_efficiency_table = read_attention_table(r);
  g.kernel_launch_s =
      r.optional_quantity("kernel_launch", Quantity::time, false).value_or(kDefaultKernelLaunchS);
  g.ring_step_sync_s =
      r.optional_quantity("ring_step_sync", Quantity::time, false).value_or(kDefaultRingStepSyncS);
  g.vendor = r.optional_choice("vendor", {"nvidia", "amd"}).value_or("");
  g.form_factor =
      r.optional_choice("form_factor", {"sxm", "pcie", "oam", "superchip"}).value_or("");
  g.default_system = r.optional_string("default_system").value_or("");
  if (!g.default_system.empty())
    check_reference(r, "default_system", SpecKind::system, g.default_system);
  r.finish();
  return g;
}

ClusterSpec cluster_from_json(const json& j, const std::string& origin) {
  ObjectReader r(j, origin, "");
  ClusterSpec c;
  c.name = r.string("name");
  c.source = r.string("source");
  r.optional_string("description");
  c.nodes = r.int32("nodes", 1, 65536);
  c.gpus_per_node = r.int32("gpus_per_node", 1, 1024);
  const json& gpu = r.raw("gpu");
  if (gpu.is_string())
    r.fail("gpu", "names a GPU that was not resolved; use a built-in GPU name or an object");
  c.gpu = gpu_from_json(gpu, origin, r.path_of("gpu"));
  if (r.has("system"))
    c.system = system_from_json(resolved_reference(r, "system"), origin, r.path_of("system")).name;
  else
    r.allow("system");
  if (r.has("fabric"))
    c.fabric = fabric_from_json(resolved_reference(r, "fabric"), origin, r.path_of("fabric")).name;
  else
    r.allow("fabric");
  c.intra_node = read_link(r.object("intra_node"));
  if (c.nodes > 1) {
    c.inter_node = read_link(r.object("inter_node"));
  } else if (r.has("inter_node")) {
    try {
      c.inter_node = read_link(r.object("inter_node"));
    } catch (const Error& e) {
      // Typically --set cluster.inter_node.bandwidth=... on a one-node cluster.
      throw Error(std::string(e.what()) +
                  "; this cluster has one node, so no link between nodes is used: to model "
                  "several nodes give --set cluster.nodes=N with --set cluster.fabric=NAME "
                  "(xring list fabrics), or a multi-node cluster (xring list clusters)");
    }
  } else {
    r.allow("inter_node");
    c.inter_node = c.intra_node;
  }
  c.rank_order =
      r.optional_choice("rank_order", {"node_major", "round_robin"}).value_or("node_major") ==
              "round_robin"
          ? RankOrder::round_robin
          : RankOrder::node_major;
  if (auto reserved = r.optional_quantity("reserved_memory_per_gpu", Quantity::bytes, false))
    c.reserved_bytes_per_gpu = *reserved;
  if (c.reserved_bytes_per_gpu >= c.gpu.memory_bytes)
    r.fail("reserved_memory_per_gpu", "must be less than the GPU's memory");
  r.finish();
  return c;
}

WorkloadSpec workload_from_json(const json& j, const std::string& origin) {
  ObjectReader r(j, origin, "");
  WorkloadSpec w;
  w.name = r.string("name");
  w.description = r.optional_string("description").value_or("");
  r.optional_string("source");
  std::string phase = r.choice("phase", {"training", "prefill", "decode", "streaming"});
  w.phase = phase == "training"  ? Phase::training
            : phase == "prefill" ? Phase::prefill
            : phase == "decode"  ? Phase::decode
                                 : Phase::streaming;
  w.batch = r.int32("batch", 1, 1 << 20);
  w.text_tokens = r.int32("text_tokens", 1, 1 << 26);
  if (auto f = r.optional_integer("frames", 0, 1 << 28)) w.frames = static_cast<int>(*f);
  if (auto t = r.optional_integer("tokens_per_frame", 1, kMaxDim))
    w.tokens_per_frame = static_cast<int>(*t);
  if (auto v = r.optional_integer("visual_tokens", 0, kMaxTokens)) w.visual_tokens = *v;
  if (w.frames && w.visual_tokens)
    r.fail("visual_tokens",
           "give either frames (with tokens_per_frame) or visual_tokens, not both");
  if (w.visual_tokens && w.tokens_per_frame)
    r.fail("tokens_per_frame", "only applies with frames; visual_tokens already counts tokens");
  w.generate_tokens = r.optional_int32("generate_tokens", 0, 1 << 26).value_or(0);
  if (w.phase == Phase::decode && w.generate_tokens == 0)
    r.fail("generate_tokens", "a decode workload must generate at least one token");
  w.kv_policy = read_kv_policy(r);
  if (auto b = r.optional_integer("kv_budget", 1, 1ll << 40)) w.kv_budget = *b;
  w.head_profile = r.optional_string("head_profile").value_or("");
  w.stream_seconds = r.optional_number("stream_seconds", 1e-3, 1e9);
  w.fps = r.optional_number("fps", 1e-6, 1e6);
  w.query_interval_s = r.optional_number("query_interval_s", 1e-3, 1e9);
  read_training_setup(r, w);
  const KvPolicyKind k = w.kv_policy.kind;
  if ((k == KvPolicyKind::uniform || k == KvPolicyKind::adaptive) && !w.kv_budget)
    r.fail("kv_budget", "kv_policy " + w.kv_policy.name +
                            " needs kv_budget, the average tokens kept per kv head (e.g. 1024)");
  if (w.phase == Phase::streaming && (k == KvPolicyKind::uniform || k == KvPolicyKind::adaptive))
    r.fail("kv_policy", "a streaming workload takes full, inf_mllm or a_vl");
  if (w.phase == Phase::streaming && (!w.stream_seconds || !w.fps))
    r.fail(w.stream_seconds ? "fps" : "stream_seconds",
           "a streaming workload needs stream_seconds and fps (e.g. 3600 and 1)");
  r.finish();
  return w;
}

void check_compatible(const ModelSpec& m, const WorkloadSpec& w, const std::string& origin) {
  bool has_visual = w.frames.value_or(0) > 0 || w.visual_tokens.value_or(0) > 0;
  const std::string field = w.visual_tokens.value_or(0) > 0 ? "visual_tokens" : "frames";
  if (m.cross_attention_layers.empty() && has_visual)
    throw Error(origin + ": at \"" + field +
                "\": the visual input does not fit the model: " + m.name +
                " has no cross-attention layers (its cross_attention_layers is empty), "
                "so it takes no visual input; use a "
                "multimodal model or set " +
                field + " to 0");
}

}  // namespace xring
