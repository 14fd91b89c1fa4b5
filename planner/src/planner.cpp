// The planner: candidate enumeration per cross-attention layer, memory fit, choice, and the
// end-to-end prediction (rest of the model, throughput, decode estimate).
#include "xring/planner/planner.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "xring/planner/decode.hpp"
#include "xring/planner/device_profile.hpp"
#include "xring/planner/efficiency.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/provenance.hpp"
#include "xring/planner/units.hpp"

namespace xring {
namespace {

/// Fraction of usable memory the replicated weights may take before inference shards them.
constexpr double kWeightShareBeforeSharding = 0.6;
/// Training: bytes kept per trainable parameter. Adam (mixed precision, ZeRO paper, Rajbhandari
/// et al. 2020, "2 + 2 + 12"): bf16 gradient 2 + fp32 master 4 + two fp32 moments 8 = 14; SGD
/// with momentum: gradient 2 + master 4 + momentum 4 = 10; none (a forward + backward
/// benchmark): the gradient alone, 2.
double optimizer_bytes_per_param(Optimizer o) {
  return o == Optimizer::adam ? 14 : o == Optimizer::sgd ? 10 : 2;
}
/// Training activations per text token per layer, in units of hidden·b (Korthikanti et al.,
/// 34·s·b·h bytes for 2-byte activations, i.e. 17·h·b).
constexpr double kTrainActivationPerTokenLayer = 17;
/// Inference: live activation buffers per local text token, in units of hidden·b.
constexpr double kInferActivationPerToken = 8;
/// The largest ring `does_not_fit` searches when it suggests a rank count.
constexpr int kMaxSuggestedRanks = 4096;

std::vector<int> divisors(int n) {
  std::vector<int> low, high;
  for (int d = 1; static_cast<long long>(d) * d <= n; ++d) {
    if (n % d != 0) continue;
    low.push_back(d);
    if (d != n / d) high.push_back(n / d);
  }
  low.insert(low.end(), high.rbegin(), high.rend());
  return low;
}

int node_of(const ClusterSpec& c, int rank) {
  return c.rank_order == RankOrder::node_major ? rank / c.gpus_per_node : rank % c.nodes;
}

struct Candidate {
  Strategy strategy;
  Placement placement;
  int groups = 1;  ///< groups with samples to run: min(G / P, B)
  long long batch_per_group = 1;
  int idle_gpus = 0;
  LayerShape shape;
  std::string unsupported;
  LayerCost cost;
  MemoryBreakdown memory;
  bool fits = false;
};

/// Memory that does not depend on the cross-attention strategy, per rank.
struct BaseMemory {
  double weights = 0;
  double optimizer_states = 0;
  double text_activations = 0;
  int tensor_parallel = 1;
  std::string note;
};

class Planner {
 public:
  Planner(const Inputs& in, const PlannerOptions& options) : in_(in), options_(options) {
    const ClusterSpec& c = in.cluster;
    training_ = in.workload.phase == Phase::training;
    // The flat rates (datasheet x efficiency, or the profile's GEMM rate); attention with a
    // profile is looked up per shape by attention_s(), this rate only describes the layer.
    const Placement flat = placement_for(in, Strategy::single, 1, 1, false);
    attention_flop_per_s_ = flat.attention_flop_per_s;
    matmul_flop_per_s_ = flat.matmul_flop_per_s;
    if (options.ranks && c.gpus() % *options.ranks != 0)
      throw Error("--ranks " + std::to_string(*options.ranks) + " does not divide the " +
                  std::to_string(c.gpus()) + " GPUs of cluster " + c.name +
                  "; choose one of its divisors");
    if (options.recompute && !training_)
      throw Error("--recompute applies to training workloads only (this one is " +
                  to_string(in.workload.phase) + ")");
  }

  Plan run() {
    Plan plan;
    plan.xring_version = xring_version();
    if (options_.inputs_and_provenance) {
      plan.inputs = {{"model", in_.model_json.value},
                     {"cluster", in_.cluster_json.value},
                     {"workload", in_.workload_json.value},
                     {"overrides", in_.overrides}};
      if (in_.device_profile) plan.inputs["device_profile"] = in_.device_profile_json.value;
    }
    plan.phase = to_string(in_.workload.phase);
    describe_rates(plan);
    base_ = base_memory();
    if (!base_.note.empty()) plan.notes.push_back(base_.note);
    const double base_total = base_.weights + base_.optimizer_states + base_.text_activations;
    if (base_total > in_.cluster.usable_memory_bytes()) {
      plan.feasible = false;
      plan.reasons.push_back("weights" + std::string(training_ ? ", optimizer states" : "") +
                             " and text activations need " + units::format_bytes(base_total) +
                             " per GPU (weights " + units::format_bytes(base_.weights) +
                             "), more than the " +
                             units::format_bytes(in_.cluster.usable_memory_bytes()) + " usable");
    }
    const Phase phase = in_.workload.phase;
    if (in_.workload.kv_policy.kind != KvPolicyKind::full &&
        (phase == Phase::training || phase == Phase::prefill))
      plan.notes.push_back("kv_policy " + in_.workload.kv_policy.name +
                           " applies to decode and streaming; this " + to_string(phase) +
                           " plan keeps the full cache");

    if (in_.workload.media_mask != MediaMask::none) {
      char density[32];
      std::snprintf(density, sizeof density, "%.3g",
                    media_mask_density(in_.workload, in_.model));
      plan.notes.push_back("media mask " + to_string(in_.workload.media_mask) +
                           ": cross-attention computes " + density +
                           " of the (text, visual) token pairs (text spread evenly over the frames)");
    }
    if (phase != Phase::streaming && !in_.model.cross_attention_layers.empty() &&
        visual_tokens(in_.workload, in_.model) > 0) {
      LayerPlan layer = plan_layer();
      if (!layer_feasible_) {
        plan.feasible = false;
        plan.reasons.push_back(layer_infeasible_reason_);
      }
      for (int index : in_.model.cross_attention_layers) {
        layer.index = index;
        plan.layers.push_back(layer);
      }
    } else if (!in_.model.cross_attention_layers.empty() && phase != Phase::streaming) {
      plan.notes.push_back("no visual input: the cross-attention layers are skipped");
    }
    plan.rest_of_model = rest_of_model();
    predict(plan);
    return plan;
  }

 private:
  /// cost_source, provenance and a note: where the compute rates come from.
  void describe_rates(Plan& plan) {
    const GpuSpec& g = in_.cluster.gpu;
    const DeviceProfile* profile = in_.device_profile.get();
    std::string basis;
    if (profile && !in_.model.cross_attention_layers.empty()) {
      const LayerShape s = cross_attention_shape(in_.model, in_.workload, in_.workload.batch);
      if (auto rate = profile->attention_flop_per_s(Pass::forward, in_.model.dtype, s.head_dim,
                                                    false, double(s.batch) * s.heads * s.s_q,
                                                    double(s.s_kv), &basis))
        attention_flop_per_s_ = *rate;
    }
    if (!profile) {
      double attention = g.attention_efficiency;
      std::string how = g.attention_efficiency_table.empty()
                            ? "flat, the spec has no attention_efficiency_table"
                            : "by shape from the spec's published table";
      if (!in_.model.cross_attention_layers.empty()) {
        const LayerShape s = cross_attention_shape(in_.model, in_.workload, in_.workload.batch);
        attention = attention_efficiency(g, s.head_dim, s.s_q, s.s_kv);
        if (!g.attention_efficiency_table.empty())
          how += ", " + fmt_fraction(attention) + " at the whole layer's " + std::to_string(s.s_q) +
                 " x " + std::to_string(s.s_kv) + ", d=" + std::to_string(s.head_dim);
        attention_flop_per_s_ = g.peak_flop_per_s(in_.model.dtype) * attention;
      }
      if (options_.inputs_and_provenance)
        plan.provenance = plan_provenance(
            plan.inputs, "datasheet peaks x default efficiencies (no device profile)");
      // Published per-shape measurements earn the narrower "published" band (docs/cost-model.md,
      // "Prediction intervals"); a flat efficiency is a datasheet guess.
      const bool published =
          !g.attention_efficiency_table.empty() && !in_.model.cross_attention_layers.empty();
      plan.cost_source = {published ? "published" : "datasheet", attention_flop_per_s_,
                          matmul_flop_per_s_, attention, g.matmul_efficiency};
      plan.notes.push_back(
          "rates: datasheet peaks of " + g.name + " x efficiency (attention " + how + "; matmul " +
          fmt_fraction(g.matmul_efficiency) + ", K/V projections by GEMM shape); fixed costs " +
          units::format_time(g.kernel_launch_s) + " per kernel, " +
          units::format_time(g.ring_step_sync_s) + " per ring step; no device profile given");
      return;
    }
    const double peak = g.peak_flop_per_s(in_.model.dtype);
    if (options_.inputs_and_provenance) {
      plan.provenance =
          plan_provenance(plan.inputs, "device profile " + in_.device_profile_json.origin);
      plan.provenance["device_profile"] = {{"name", profile->device},
                                           {"origin", in_.device_profile_json.origin},
                                           {"date", profile->date},
                                           {"hash", content_hash(in_.device_profile_json.value)}};
    }
    plan.cost_source = {"device_profile", attention_flop_per_s_, matmul_flop_per_s_,
                        std::min(1.0, attention_flop_per_s_ / peak),
                        std::min(1.0, matmul_flop_per_s_ / peak)};
    plan.notes.push_back(
        "rates: measured on " + profile->device + " (" + profile->backend + ", " + profile->date +
        ", " + in_.device_profile_json.origin + "); attention interpolated by shape from the " +
        (basis.empty() ? std::string("profile (no grid for this dtype: datasheet x efficiency)")
                       : basis) +
        ", " + units::format_flop_rate(attention_flop_per_s_) +
        " at the whole layer's shape; GEMM " +
        (profile->matmul_rate(in_.model.dtype) ? "measured" : "datasheet x efficiency") +
        "; decode reads K/V at " +
        (profile->decode_bytes_per_s ? "the measured decode bandwidth" : "the datasheet HBM rate"));
  }

  static std::string fmt_fraction(double f) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.2f", f);
    return buf;
  }

  double bytes() const { return bytes_per_element(in_.model.dtype); }
  /// Parameters the step holds: the vision encoder's only when it runs in the step.
  double all_params() const { return held_params(in_.model, in_.workload); }
  /// Parameters with gradients and optimizer state: the language model's unless frozen (the
  /// cross-attention layers always train), the vision encoder's when it trains.
  double trainable_params() const {
    const ModelSpec& m = in_.model;
    const double lm = language_model_trains(in_.workload)
                          ? m.params
                          : std::min(m.params, cross_attention_params(m));
    return lm + (vision_encoder_trains(in_.workload) ? m.vision_params : 0.0);
  }
  /// Decoder layers whose backward runs: all when the language model trains, else those from
  /// the first cross-attention layer on (below it nothing trains that needs their dX).
  int layers_with_backward() const {
    const ModelSpec& m = in_.model;
    if (language_model_trains(in_.workload) || m.cross_attention_layers.empty()) return m.layers;
    return m.layers - m.cross_attention_layers.front();
  }
  /// "vision encoder frozen; adam" and the like, for the training note.
  std::string training_setup() const {
    const WorkloadSpec& w = in_.workload;
    std::string t = w.precomputed_visual_features ? "visual features precomputed (no encoder)"
                    : vision_encoder_trains(w)    ? "vision encoder trains"
                                                  : "vision encoder frozen";
    if (!language_model_trains(w)) t += ", language model frozen (cross-attention layers train)";
    return t + "; optimizer " + to_string(w.optimizer);
  }

  BaseMemory base_memory() const {
    const ModelSpec& m = in_.model;
    const ClusterSpec& c = in_.cluster;
    const WorkloadSpec& w = in_.workload;
    BaseMemory base;
    const int G = c.gpus();
    double weights = all_params() * bytes();
    // Serving workloads prefill one request at a time (chunked prefill); training and prefill
    // workloads process the whole batch in one iteration.
    const bool serving = w.phase == Phase::decode || w.phase == Phase::streaming;
    double local_tokens = std::ceil(static_cast<double>(serving ? 1 : w.batch) * w.text_tokens / G);
    if (training_) {
      // ZeRO-3 / FSDP: states sharded over every GPU, one layer gathered at a time (x2 for
      // prefetch).
      double layer_weights = m.params / m.layers * bytes();
      base.weights = weights / G + 2 * layer_weights;
      base.optimizer_states = trainable_params() * optimizer_bytes_per_param(w.optimizer) / G;
      base.text_activations = local_tokens * layers_with_backward() *
                              kTrainActivationPerTokenLayer * m.hidden_size * bytes();
      base.note = "training: parameters, gradients and optimizer states sharded over all " +
                  std::to_string(G) + " GPUs (ZeRO-3/FSDP); " + training_setup();
      return base;
    }
    base.text_activations = local_tokens * kInferActivationPerToken * m.hidden_size * bytes();
    if (serving) {
      // One layout for the whole serving plan: decode's G-way tensor parallelism (streaming:
      // one GPU per stream), so prefill and decode memory describe the same deployment.
      const int tp = w.phase == Phase::decode ? decode_tensor_parallel(m, c) : 1;
      base.tensor_parallel = tp;
      base.weights = weights / tp;
      const std::string held = "weights (" + units::format_bytes(weights) + ")";
      if (w.phase == Phase::streaming)
        base.note = "serving layout: one GPU per stream holds all the " + held;
      else
        base.note =
            "serving layout: " + held +
            (tp > 1 ? " sharded " + std::to_string(tp) + "-way tensor-parallel inside a node"
                    : " replicated on every GPU") +
            " for prefill and decode alike (decode's G = gcd(kv heads, GPUs per node))";
      return base;
    }
    int tp = 1;
    double budget = kWeightShareBeforeSharding * c.usable_memory_bytes();
    while (weights / tp > budget && tp < c.gpus_per_node && c.gpus_per_node % (tp * 2) == 0)
      tp *= 2;
    base.tensor_parallel = tp;
    base.weights = weights / tp;
    if (tp > 1)
      base.note = "weights (" + units::format_bytes(weights) + ") sharded " + std::to_string(tp) +
                  "-way tensor-parallel inside a node: replicated they would take more than " +
                  fmt_fraction(kWeightShareBeforeSharding) + " of a GPU";
    return base;
  }

  Link link_of(int first, int stride, int count) const {
    return group_link(in_.cluster, first, stride, count);
  }

  Candidate evaluate(Strategy s, int P, int ulysses_degree, bool recompute) const {
    const ClusterSpec& c = in_.cluster;
    Candidate cand;
    cand.strategy = s;
    cand.groups = static_cast<int>(std::min<long long>(c.gpus() / P, in_.workload.batch));
    cand.batch_per_group = (in_.workload.batch + cand.groups - 1) / cand.groups;
    cand.idle_gpus = c.gpus() - cand.groups * P;
    cand.shape = cross_attention_shape(in_.model, in_.workload, cand.batch_per_group);
    cand.placement = placement_for(in_, s, P, ulysses_degree, recompute);
    const Placement& p = cand.placement;
    if (s == Strategy::hybrid && ulysses_degree >= 2 &&
        node_of(c, 0) != node_of(c, ulysses_degree - 1))
      cand.unsupported =
          "its Ulysses groups of " + std::to_string(ulysses_degree) + " ranks would span nodes";
    const StrategyUnit& unit = strategy_unit(s);
    if (cand.unsupported.empty()) cand.unsupported = unit.unsupported(cand.shape, p);
    if (!cand.unsupported.empty()) return cand;
    cand.cost = unit.cost(cand.shape, p);
    cand.memory = memory_of(unit, cand.shape, p);
    cand.fits = cand.memory.total() <= in_.cluster.usable_memory_bytes();
    return cand;
  }

  /// Per-rank memory of a strategy on `shape` and `p`, with the strategy-independent base.
  MemoryBreakdown memory_of(const StrategyUnit& unit, const LayerShape& shape,
                            const Placement& p) const {
    LayerMemory lm = unit.memory(shape, p);
    MemoryBreakdown mb;
    mb.weights = base_.weights;
    mb.optimizer_states = base_.optimizer_states;
    mb.text_activations = base_.text_activations;
    mb.visual_tokens = lm.visual_tokens;
    mb.kv = lm.kv;
    mb.attention_buffers = lm.attention_buffers;
    // Training peaks in a layer's backward: it holds K and V (kept from the forward, or rebuilt
    // when recomputing) and accumulates dK and dV of the same size, while every layer's saved
    // tensors wait. Without recomputation this layer's saved K/V are the `kv` above, so they are
    // not counted twice.
    const double layers = static_cast<double>(in_.model.cross_attention_layers.size());
    mb.saved_activations = lm.saved_for_backward * layers - (training_ && !p.recompute ? lm.kv : 0);
    mb.kv_gradients = training_ ? lm.kv : 0;
    return mb;
  }

  std::vector<Candidate> candidates() const {
    const ClusterSpec& c = in_.cluster;
    std::vector<Candidate> out;
    std::vector<bool> recompute_choices =
        training_ ? (options_.recompute ? std::vector<bool>{*options_.recompute}
                                        : std::vector<bool>{false, true})
                  : std::vector<bool>{false};
    for (const auto& unit : strategy_table()) {
      Strategy s = unit.strategy;
      if (options_.strategy && *options_.strategy != s) continue;
      for (int P : divisors(c.gpus())) {
        if (options_.ranks && *options_.ranks != P) continue;
        if ((s == Strategy::single) != (P == 1)) continue;
        std::vector<int> degrees = {0};
        if (s == Strategy::hybrid) {
          degrees.clear();
          for (int U : divisors(c.gpus_per_node))
            if (U >= 2 && P % U == 0 && P / U >= 2) degrees.push_back(U);
          if (degrees.empty()) continue;
        }
        for (int U : degrees)
          for (bool recompute : recompute_choices) out.push_back(evaluate(s, P, U, recompute));
      }
    }
    if (out.empty() && options_.strategy) {
      Strategy s = *options_.strategy;
      int P = options_.ranks.value_or(s == Strategy::single ? 1 : c.gpus());
      Candidate cand = evaluate(s, P, s == Strategy::hybrid ? c.gpus_per_node : 0,
                                options_.recompute.value_or(false));
      if (cand.unsupported.empty())
        cand.unsupported = to_string(s) + " cannot run on " + std::to_string(P) + " ranks here";
      out.push_back(cand);
    }
    return out;
  }

  static std::string describe(const Candidate& c) {
    std::string d = to_string(c.strategy) + " on " + std::to_string(c.placement.ranks) +
                    (c.placement.ranks == 1 ? " rank" : " ranks");
    if (c.strategy == Strategy::hybrid)
      d += " (Ulysses " + std::to_string(c.placement.ulysses_degree) + " x ring " +
           std::to_string(c.placement.ranks / c.placement.ulysses_degree) + ")";
    if (c.placement.recompute) d += " with recomputation";
    return d;
  }

  /// "does not fit: needs X per rank, has Y (every category, largest first); <what fits>".
  std::string does_not_fit(const Candidate& c) const {
    std::string parts;
    for (const auto& [name, bytes] : c.memory.largest_first())
      parts += (parts.empty() ? "" : ", ") + name + " " + units::format_bytes(bytes);
    std::string r = "does not fit: needs " + units::format_bytes(c.memory.total()) +
                    " per rank, has " + units::format_bytes(in_.cluster.usable_memory_bytes()) +
                    " (" + parts + ")";
    std::vector<std::string> fixes;
    if (auto P = smallest_fitting_ranks(c)) fixes.push_back("fits from P = " + std::to_string(*P));
    if (auto limit = largest_fitting_visual_input(c)) fixes.push_back(*limit);
    if (!fixes.empty()) r += "; " + fixes.front() + (fixes.size() > 1 ? ", or " + fixes[1] : "");
    return r;
  }

  /// The fewest ranks from which the candidate's strategy fits with the same samples per group
  /// (a larger cluster; weights and optimizer states per GPU as here), up to kMaxSuggestedRanks.
  /// Ulysses runs only where the heads divide, so its few rank counts are tried in turn; a
  /// ring's memory never grows with P, so its smallest fitting P is found by bisection.
  std::optional<int> smallest_fitting_ranks(const Candidate& c) const {
    if (c.strategy == Strategy::single || !c.unsupported.empty()) return std::nullopt;
    const StrategyUnit& unit = strategy_unit(c.strategy);
    auto fits = [&](int P) {
      Placement p = c.placement;
      p.ranks = P;
      return unit.unsupported(c.shape, p).empty() &&
             memory_of(unit, c.shape, p).total() <= in_.cluster.usable_memory_bytes();
    };
    if (c.strategy == Strategy::ulysses) {
      for (int P = c.placement.ranks + 1; P <= c.shape.heads; ++P)
        if (fits(P)) return P;
      return std::nullopt;
    }
    const int step = c.strategy == Strategy::hybrid ? c.placement.ulysses_degree : 1;
    int lo = c.placement.ranks / step, hi = kMaxSuggestedRanks / step;  // !fits(lo·step)
    if (hi <= lo || !fits(hi * step)) return std::nullopt;
    while (hi - lo > 1) {
      int mid = lo + (hi - lo) / 2;
      (fits(mid * step) ? hi : lo) = mid;
    }
    return hi * step;
  }

  /// "with frames ≤ N" (or "visual tokens ≤ N"): the longest visual input with which the
  /// candidate fits as placed; empty when even no visual input would not fit.
  std::optional<std::string> largest_fitting_visual_input(const Candidate& c) const {
    if (!c.unsupported.empty()) return std::nullopt;
    const StrategyUnit& unit = strategy_unit(c.strategy);
    auto fits = [&](long long tokens) {
      LayerShape s = c.shape;
      s.s_kv = tokens;
      return memory_of(unit, s, c.placement).total() <= in_.cluster.usable_memory_bytes();
    };
    long long lo = 0, hi = c.shape.s_kv;  // fits(lo) is the invariant; !fits(hi)
    if (!fits(1)) return std::nullopt;
    lo = 1;
    while (hi - lo > 1) {
      long long mid = lo + (hi - lo) / 2;
      (fits(mid) ? lo : hi) = mid;
    }
    const WorkloadSpec& w = in_.workload;
    const int per_frame = w.tokens_per_frame.value_or(in_.model.tokens_per_frame);
    if (!w.visual_tokens && per_frame > 0) {
      if (lo < per_frame) return std::nullopt;
      return "with frames ≤ " + std::to_string(lo / per_frame);
    }
    return "with visual tokens ≤ " + std::to_string(lo);
  }

  LayerPlan plan_layer() {
    std::vector<Candidate> all = candidates();
    const Candidate* best = nullptr;
    const Candidate* smallest = nullptr;  // least memory, for infeasible layers
    for (const auto& c : all) {
      if (!c.unsupported.empty()) continue;
      if (!smallest || c.memory.total() < smallest->memory.total()) smallest = &c;
      if (!c.fits) continue;
      if (!best || c.cost.time_s() < best->cost.time_s() ||
          (c.cost.time_s() == best->cost.time_s() &&
           c.cost.forward.bytes_per_step < best->cost.forward.bytes_per_step))
        best = &c;
    }
    layer_feasible_ = best != nullptr;
    const Candidate* chosen = best ? best : smallest ? smallest : &all.front();
    if (!best) {
      layer_infeasible_reason_ =
          smallest ? "cross-attention layers: no strategy fits; the smallest, " +
                         describe(*smallest) + ", " + does_not_fit(*smallest)
                   : "cross-attention layers: no strategy can run: " + all.front().unsupported;
    }

    LayerPlan l;
    const Candidate& c = *chosen;
    l.strategy = c.strategy;
    l.ranks = c.placement.ranks;
    l.recompute = c.placement.recompute;
    l.groups = c.groups;
    l.batch_per_group = c.batch_per_group;
    l.idle_gpus = c.idle_gpus;
    if (c.strategy == Strategy::hybrid && c.unsupported.empty()) {
      l.ulysses_degree = c.placement.ulysses_degree;
      l.ring_kind = to_string(hybrid_inner_ring(c.shape, c.placement));
    }
    int ring_ranks = c.strategy == Strategy::hybrid && c.placement.ulysses_degree > 0
                         ? c.placement.ranks / c.placement.ulysses_degree
                         : c.placement.ranks;
    l.q_block = block(c.shape.s_q, c.strategy == Strategy::ulysses ? 1 : ring_ranks);
    l.kv_block = block(c.shape.s_kv, c.strategy == Strategy::ulysses ? 1 : ring_ranks);
    l.steps = c.cost.forward.steps;
    l.step_compute_s = c.cost.forward.step_compute_s;
    l.step_comm_s = c.cost.forward.step_comm_s;
    l.bytes_per_step = c.cost.forward.bytes_per_step;
    l.forward_s = c.cost.forward.time_s;
    l.backward_s = c.cost.backward.time_s;
    l.compute_s = c.cost.compute_s();
    l.comm_s = c.cost.comm_s();
    l.time_s = c.cost.time_s();
    l.memory_bytes = c.memory;

    // One alternative per (strategy, recompute): its fastest fitting rank count, or the reason
    // none works.
    const Candidate* runner_up = nullptr;
    for (const auto& unit : strategy_table()) {
      for (bool recompute : {false, true}) {
        const Candidate* fastest = nullptr;
        const Candidate* fallback = nullptr;
        for (const auto& cand : all) {
          if (cand.strategy != unit.strategy || cand.placement.recompute != recompute) continue;
          if (cand.unsupported.empty() && cand.fits) {
            if (!fastest || cand.cost.time_s() < fastest->cost.time_s()) fastest = &cand;
          } else if (!fallback || (cand.unsupported.empty() &&
                                   (!fallback->unsupported.empty() ||
                                    cand.memory.total() < fallback->memory.total()))) {
            fallback = &cand;
          }
        }
        const Candidate* shown = fastest ? fastest : fallback;
        if (!shown) continue;
        Alternative a;
        a.strategy = shown->strategy;
        a.ranks = shown->placement.ranks;
        a.ulysses_degree =
            shown->strategy == Strategy::hybrid ? shown->placement.ulysses_degree : 0;
        a.recompute = recompute;
        if (fastest) {
          a.time_s = fastest->cost.time_s();
          if (fastest != best) {
            a.rejected_reason = best ? "slower: predicted " + units::format_time(*a.time_s) +
                                           " vs " + units::format_time(best->cost.time_s())
                                     : "";
            if (best && (!runner_up || fastest->cost.time_s() < runner_up->cost.time_s()))
              runner_up = fastest;
          }
        } else {
          a.rejected_reason =
              shown->unsupported.empty() ? does_not_fit(*shown) : shown->unsupported;
        }
        l.alternatives.push_back(a);
      }
    }
    l.reason = reason_for(best, runner_up, c);
    return l;
  }

  std::string reason_for(const Candidate* best, const Candidate* runner_up,
                         const Candidate& chosen) const {
    if (!best)
      return "no strategy fits; showing the one needing the least memory, " + describe(chosen);
    std::string r = describe(*best) + " is the fastest that fits (" +
                    units::format_time(best->cost.time_s()) + " per layer";
    if (best->cost.forward.steps > 1) {
      bool hidden = best->cost.forward.step_comm_s <= best->cost.forward.step_compute_s;
      r += hidden ? "; each step's transfer hides under its compute"
                  : "; transfers exceed compute per step (" +
                        units::format_time(best->cost.forward.step_comm_s) + " vs " +
                        units::format_time(best->cost.forward.step_compute_s) + ")";
    }
    r += ")";
    if (runner_up)
      r += "; next best " + describe(*runner_up) + " at " +
           units::format_time(runner_up->cost.time_s());
    if (options_.strategy || options_.ranks) r += "; pinned by the command line";
    return r;
  }

  RestOfModel rest_of_model() const {
    const ModelSpec& m = in_.model;
    const WorkloadSpec& w = in_.workload;
    const ClusterSpec& c = in_.cluster;
    const int G = c.gpus();
    const int n_cross = static_cast<int>(m.cross_attention_layers.size());
    const int n_self = self_attention_layers(m);
    const double tokens = static_cast<double>(w.batch) * w.text_tokens;
    const AttentionGeometry& sa = m.self_attention;
    const AttentionGeometry& ca = m.cross_attention;
    // Parameters applied to text tokens: all but the input embedding and the cross-attention
    // K/V projections (those act on visual tokens and are costed with the layer).
    double cross_kv_params = 2.0 * n_cross * m.visual_hidden_size * ca.kv_heads * ca.head_dim;
    double text_params = std::max(
        0.0, m.params - static_cast<double>(m.vocab_size) * m.hidden_size - cross_kv_params);
    double self_attention = n_self * 2.0 * w.batch * static_cast<double>(w.text_tokens) *
                            w.text_tokens * sa.heads * sa.head_dim;  // causal: half of 4·S²
    double vision = w.precomputed_visual_features ? 0.0
                                                  : 2.0 * m.vision_params * w.batch * frames(w, m) *
                                                        m.vision_tokens_per_frame;
    RestOfModel r;
    r.tensor_parallel = base_.tensor_parallel;
    if (training_) {
      // Trained weights: forward, dX and dW (3x); a frozen language model's layers: forward and,
      // from the first cross-attention layer on, dX (the cross-attention layers below train).
      const double cross_text_params =
          std::clamp(cross_attention_params(m) - cross_kv_params, 0.0, text_params);
      const double frac = static_cast<double>(layers_with_backward()) / m.layers;
      const bool lm = language_model_trains(w);
      const double lm_factor = lm ? 3.0 : 1.0 + frac;
      const double dense =
          2.0 * tokens * ((text_params - cross_text_params) * lm_factor + cross_text_params * 3.0);
      const double attention_factor = 1.0 + kBackwardFlopsFactor * (lm ? 1.0 : frac);
      r.flops = dense + attention_factor * self_attention +
                vision * (vision_encoder_trains(w) ? 3.0 : 1.0);
    } else {
      r.flops = 2.0 * text_params * tokens + self_attention + vision;
    }
    r.compute_s = r.flops / (G * matmul_flop_per_s_);
    r.note =
        "self-attention and MLP on " + std::to_string(static_cast<long long>(tokens)) +
        " text tokens" +
        (m.vision_params > 0 && !w.precomputed_visual_features ? " and the vision encoder" : "") +
        ", spread evenly over " + std::to_string(G) + " GPUs";
    if (training_ && G > 1) {
      // ZeRO-3: all-gather of the language model's weights in forward and backward,
      // reduce-scatter of the trained parameters' gradients, on the slowest link; it overlaps
      // the backward compute (2/3 of the dense work).
      Link slowest = link_of(0, 1, G);
      double sync =
          (2.0 * m.params + trainable_params()) * bytes() * (G - 1) / G / slowest.bytes_per_s;
      r.comm_s = std::max(0.0, sync - r.compute_s * 2.0 / 3.0);
      r.note += "; parameter/gradient sync " + units::format_time(sync) + ", " +
                (r.comm_s > 0 ? units::format_time(r.comm_s) + " of it not hidden by backward"
                              : std::string("all of it hidden by backward"));
    }
    r.time_s = r.compute_s + r.comm_s;
    return r;
  }

  void predict(Plan& plan) const {
    const ModelSpec& m = in_.model;
    const WorkloadSpec& w = in_.workload;
    Predicted& p = plan.predicted;
    double cross_attention_s = 0;
    for (const auto& l : plan.layers) cross_attention_s += l.time_s;
    if (!plan.layers.empty()) p.cross_attention_time_s = cross_attention_s;
    p.rest_of_model_time_s = plan.rest_of_model.time_s;
    const double iteration_s = cross_attention_s + plan.rest_of_model.time_s;
    if (iteration_s > 0) {
      p.iteration_time_s = iteration_s;
      double input_tokens = static_cast<double>(w.batch) *
                            (w.text_tokens + static_cast<double>(visual_tokens(w, m)));
      p.throughput_tokens_per_s = input_tokens / iteration_s;
      if (frames(w, m) > 0) p.frames_per_s = w.batch * frames(w, m) / iteration_s;
    }
    p.peak_memory_bytes_per_rank = base_.weights + base_.optimizer_states + base_.text_activations;
    for (const auto& l : plan.layers)
      p.peak_memory_bytes_per_rank = std::max(p.peak_memory_bytes_per_rank, l.memory_bytes.total());
    if (w.phase == Phase::decode) predict_decode(plan);
    if (w.phase == Phase::streaming) predict_streaming(plan);
    if (!plan.feasible) {
      // An infeasible plan predicts nothing but the memory it would need.
      const double peak = p.peak_memory_bytes_per_rank;
      p = Predicted{};
      p.peak_memory_bytes_per_rank = peak;
    }
    p.band = prediction_band_of(plan.cost_source.kind, in_.device_profile.get());
  }

  /// Decode: per-head budgets, FairKV placement and the cross-attention K/V of the visual
  /// tokens over the tensor-parallel group (decode.cpp).
  void predict_decode(Plan& plan) const {
    const ClusterSpec& c = in_.cluster;
    std::shared_ptr<const HeadProfile> profile = load_head_profile(in_);
    plan.decode = plan_decode(in_, profile, options_.head_detail);
    const DecodeSection& d = *plan.decode;
    for (const auto& p : d.placements) {
      if (p.placement != d.chosen) continue;
      plan.predicted.decode_step_s = p.step_time_s;
      plan.predicted.decode_tokens_per_s = p.tokens_per_s;
      plan.predicted.peak_memory_bytes_per_rank =
          std::max(plan.predicted.peak_memory_bytes_per_rank, p.peak_memory_bytes);
      if (!p.fits) {
        plan.feasible = false;
        plan.reasons.push_back(
            "decode: the weights and KV cache need " + units::format_bytes(p.peak_memory_bytes) +
            " on the fullest GPU, more than the " + units::format_bytes(c.usable_memory_bytes()) +
            " usable; at most " + std::to_string(p.max_batch) + " requests per replica fit");
      }
    }
    plan.notes.push_back(
        "decode: " + std::to_string(d.gpus) + "-way tensor parallel x " +
        std::to_string(d.replicas) + (d.replicas == 1 ? " replica, " : " replicas, ") + d.policy +
        " KV cache" +
        (d.kv_budget ? " (" + std::to_string(d.kv_budget) + " tokens per kv head)" : "") +
        ", placement " + d.chosen);
    const KvPolicy& policy = in_.workload.kv_policy;
    if (policy.kind == KvPolicyKind::adaptive) plan.notes.push_back(adaptive_note(policy));
  }

  /// Which AdaKV floor α the adaptive budgets use and why.
  std::string adaptive_note(const KvPolicy& policy) const {
    const AttentionGeometry& sa = in_.model.self_attention;
    std::string n = "adaptive budgets: floor alpha " + fmt_fraction(adakv_floor(policy, in_.model));
    if (policy.floor)
      n += " (set by the workload)";
    else if (sa.kv_heads < sa.heads)
      n += " (default for grouped-query models, " + std::to_string(sa.heads) + " heads over " +
           std::to_string(sa.kv_heads) + " kv heads: AdaKV recommends 0.2 for GQA; 0.5 otherwise)";
    else
      n += " (AdaKV's default; 0.2 for grouped-query models)";
    n += policy.redistribute
             ? "; a head capped at the prompt hands its excess to the others (xring; "
               "kv_policy.redistribute=false reproduces AdaKV's code)"
             : "; AdaKV's rounding, a capped head's excess is dropped (redistribute false)";
    return n;
  }

  void predict_streaming(Plan& plan) const {
    plan.streaming = plan_streaming(in_);
    const StreamingSection& s = *plan.streaming;
    for (const auto& p : s.policies) {
      if (p.policy != s.chosen) continue;
      plan.predicted.decode_tokens_per_s = p.tokens_per_s;
      plan.predicted.decode_step_s = 1.0 / p.tokens_per_s;
      plan.predicted.peak_memory_bytes_per_rank = p.peak_memory_bytes;
      if (p.oom_at_s) {
        plan.feasible = false;
        plan.reasons.push_back("streaming: " + p.policy + " runs out of memory after " +
                               units::format_time(*p.oom_at_s) + " of the " +
                               units::format_time(s.stream_seconds) + " stream");
      }
    }
    plan.notes.push_back(
        "streaming: one GPU ingests " +
        std::to_string(static_cast<long long>(s.visual_tokens_per_s)) +
        " visual tokens/s; the cross-attention prefill of a stream is not planned");
  }

  const Inputs& in_;
  PlannerOptions options_;
  bool training_ = false;
  double attention_flop_per_s_ = 0;
  double matmul_flop_per_s_ = 0;
  BaseMemory base_;
  bool layer_feasible_ = true;
  std::string layer_infeasible_reason_;
};

}  // namespace

std::vector<std::pair<std::string, double>> MemoryBreakdown::largest_first() const {
  std::vector<std::pair<std::string, double>> parts = {
      {"weights", weights},
      {"optimizer states", optimizer_states},
      {"visual tokens", visual_tokens},
      {"kv", kv},
      {"dK/dV", kv_gradients},
      {"attention buffers", attention_buffers},
      {"saved activations", saved_activations},
      {"text activations", text_activations}};
  parts.erase(std::remove_if(parts.begin(), parts.end(), [](const auto& p) { return p.second <= 0; }),
              parts.end());
  std::stable_sort(parts.begin(), parts.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return parts;
}

std::string xring_version() { return XRING_VERSION; }

LayerShape cross_attention_shape(const ModelSpec& m, const WorkloadSpec& w, long long batch) {
  LayerShape s;
  s.batch = batch;
  s.heads = m.cross_attention.heads;
  s.kv_heads = m.cross_attention.kv_heads;
  s.head_dim = m.cross_attention.head_dim;
  s.bytes = bytes_per_element(m.dtype);
  s.s_q = w.text_tokens;
  s.s_kv = visual_tokens(w, m);
  s.visual_hidden = m.visual_hidden_size;
  return s;
}

Placement placement_for(const Inputs& in, Strategy s, int ranks, int ulysses_degree,
                        bool recompute) {
  const ClusterSpec& c = in.cluster;
  Placement p;
  p.ranks = ranks;
  p.ulysses_degree = ulysses_degree;
  p.attention_flop_per_s = c.gpu.peak_flop_per_s(in.model.dtype) * c.gpu.attention_efficiency;
  p.matmul_flop_per_s = c.gpu.peak_flop_per_s(in.model.dtype) * c.gpu.matmul_efficiency;
  p.profile = in.device_profile.get();
  p.dtype = in.model.dtype;
  p.compute_share = in.compute_share;
  p.gpu = &c.gpu;
  p.peak_flop_per_s = c.gpu.peak_flop_per_s(in.model.dtype);
  p.kernel_launch_s = c.gpu.kernel_launch_s;
  p.ring_step_sync_s = c.gpu.ring_step_sync_s;
  if (p.profile) {
    if (auto rate = p.profile->matmul_rate(in.model.dtype)) {
      p.matmul_flop_per_s = *rate;
      p.matmul_measured = true;
    }
    p.kernel_launch_s = p.profile->kernel_launch_s.value_or(p.kernel_launch_s);
    p.ring_step_sync_s = p.profile->ring_step_sync_s.value_or(p.ring_step_sync_s);
  }
  p.attention_density = media_mask_density(in.workload, in.model);
  p.visual_input_trains = vision_encoder_trains(in.workload);
  p.training = in.workload.phase == Phase::training;
  p.recompute = recompute;
  if (s == Strategy::hybrid) {
    p.all_to_all_link = group_link(c, 0, 1, ulysses_degree);
    p.ring_link = group_link(c, 0, ulysses_degree, ranks / std::max(ulysses_degree, 1));
  } else {
    p.ring_link = group_link(c, 0, 1, ranks);
    p.all_to_all_link = p.ring_link;
  }
  return p;
}

Link group_link(const ClusterSpec& c, int first, int stride, int count) {
  bool one_node = true;
  for (int k = 1; k < count; ++k)
    if (node_of(c, first + k * stride) != node_of(c, first)) one_node = false;
  if (one_node) return {c.intra_node.bytes_per_s, c.intra_node.latency_s};
  return {std::min(c.intra_node.bytes_per_s, c.inter_node.bytes_per_s),
          std::max(c.intra_node.latency_s, c.inter_node.latency_s)};
}

Plan plan(const Inputs& in, const PlannerOptions& options) { return Planner(in, options).run(); }

Inputs plan_inputs(const Plan& p, const std::string& origin) {
  auto spec = [&](const char* key) {
    return SpecJson{p.inputs[key], origin + " (inputs." + std::string(key) + ")"};
  };
  Inputs in = inputs_from_json(spec("model"), spec("cluster"), spec("workload"),
                               p.inputs["overrides"].get<std::vector<std::string>>());
  if (p.inputs.contains("device_profile")) attach_device_profile(in, spec("device_profile"));
  return in;
}

Plan read_plan_file(const std::string& path) {
  Plan p = plan_from_json(read_json_file(path), path);
  check_plan_against_inputs(p, plan_inputs(p, path), path);
  return p;
}

}  // namespace xring
