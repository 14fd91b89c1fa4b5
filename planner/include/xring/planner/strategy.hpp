// The table of cross-attention strategies: each is one small unit (feasibility, cost, memory)
// in planner/src/strategies/. Adding a strategy adds a file there and a row in the table.
#pragma once

#include <string>
#include <vector>

#include "xring/planner/cost_model.hpp"
#include "xring/planner/device_profile.hpp"

namespace xring {

enum class Strategy { single, kv_ring, query_ring, ulysses, hybrid };

std::string to_string(Strategy s);
/// Throws xring::Error listing the strategies (with a did-you-mean hint) on unknown names.
Strategy strategy_from_string(const std::string& s);

/// Where and how a layer runs: P ranks, their links and achieved rates, and the phase.
struct Placement {
  int ranks = 1;                    ///< P
  int ulysses_degree = 1;           ///< hybrid: Ulysses inside a node; the ring has P / this steps
  Link ring_link;                   ///< slowest hop of the ring (hybrid: between Ulysses groups)
  Link all_to_all_link;             ///< slowest link inside the all-to-all group
  double attention_flop_per_s = 1;  ///< achieved by one rank, when there is no device profile
  double matmul_flop_per_s = 1;
  const DeviceProfile* profile = nullptr;  ///< measured attention rates by shape, when given
  DType dtype = DType::bf16;               ///< the dtype the profile is looked up for
  double compute_share = 1;  ///< fraction of a device each rank gets (< 1: emulated ranks)
  /// The GPU whose shape-dependent efficiencies apply when the profile does not measure a rate
  /// (efficiency.hpp); null: the flat attention_flop_per_s and matmul_flop_per_s.
  const GpuSpec* gpu = nullptr;
  double peak_flop_per_s = 0;    ///< the GPU's datasheet peak for dtype (with `gpu`)
  bool matmul_measured = false;  ///< the profile measured the GEMM rate: no shape rule
  double kernel_launch_s = 0;    ///< fixed cost of each kernel (attention, projection GEMMs)
  double ring_step_sync_s = 0;   ///< fixed cost of each ring step's handoff
  /// Fraction of the (query, key) pairs a media mask leaves to compute (1: no mask).
  double attention_density = 1;
  /// Something upstream of the visual tokens trains (the vision encoder): the K/V projection's
  /// backward then computes dX as well as dW.
  bool visual_input_trains = true;
  bool training = false;   ///< forward + backward instead of forward only
  bool recompute = false;  ///< LV-XAttn: recompute K/V from the layer input in backward
};

/// One pass (forward or backward) of one layer on one rank.
struct PassCost {
  int steps = 0;              ///< overlapped ring steps (1 when nothing overlaps)
  double step_compute_s = 0;  ///< attention compute of one step
  double step_comm_s = 0;     ///< the transfer overlapping a step (bytes/BW + latency)
  double bytes_per_step = 0;
  double fixed_compute_s = 0;  ///< compute outside the steps (projections)
  double fixed_comm_s = 0;     ///< transfers that nothing hides (all-to-all, return home)
  double sync_s = 0;           ///< ring-step handoffs: (steps - 1) x ring_step_sync_s
  double time_s = 0;           ///< wall time of the pass
  double compute_s() const { return steps * step_compute_s + fixed_compute_s; }
  double comm_s() const {
    return (steps > 1 ? steps - 1 : 0) * step_comm_s + fixed_comm_s + sync_s;
  }
};

struct LayerCost {
  PassCost forward;
  PassCost backward;  ///< zero unless training
  double time_s() const { return forward.time_s + backward.time_s; }
  double compute_s() const { return forward.compute_s() + backward.compute_s(); }
  double comm_s() const { return forward.comm_s() + backward.comm_s(); }
};

/// Per-rank bytes a layer needs while it runs, and what it keeps for backward.
struct LayerMemory {
  double visual_tokens = 0;       ///< this rank's shard of the visual input
  double kv = 0;                  ///< K and V of the layer held on this rank
  double attention_buffers = 0;   ///< Q, O, L and the in-flight (double) buffers
  double saved_for_backward = 0;  ///< training: what this layer keeps until its backward
};

struct StrategyUnit {
  Strategy strategy;
  const char* summary;
  /// Why the strategy cannot run on this placement at all ("" when it can).
  std::string (*unsupported)(const LayerShape&, const Placement&);
  LayerCost (*cost)(const LayerShape&, const Placement&);
  LayerMemory (*memory)(const LayerShape&, const Placement&);
};

const std::vector<StrategyUnit>& strategy_table();
const StrategyUnit& strategy_unit(Strategy s);

/// The ring a hybrid runs between its Ulysses groups: query_ring or kv_ring, whichever sends
/// fewer bytes per step on the head-sharded shape.
Strategy hybrid_inner_ring(const LayerShape& s, const Placement& p);

/// A pass of P overlapped ring steps sending `bytes_per_step` each, then an unhidden
/// `tail_bytes` transfer, plus `fixed_compute_s` outside the steps and `step_sync_s` at each of
/// the P - 1 handoffs between steps (on the critical path whether or not the transfer hides).
PassCost ring_pass(int steps, double step_compute_s, double bytes_per_step, const Link& link,
                   double tail_bytes, double fixed_compute_s, double step_sync_s);

/// Attention compute on one rank: `heads` heads of n_q queries over n_kv keys, forward or
/// backward (kBackwardFlopsFactor x the forward FLOPs) times attention_density, at the device
/// profile's rate for that shape when there is one, else at the GPU's efficiency for the shape
/// (attention_efficiency), else at attention_flop_per_s; divided by compute_share; plus one
/// kernel_launch_s.
double attention_s(const LayerShape& s, long long n_q, long long n_kv, int heads,
                   const Placement& p, Pass pass);

/// The projection compute of a pass on one rank holding `kv_tokens` visual tokens, one GEMM
/// of m = B·kv_tokens, n = 2·H_kv·d, k = D_v (at matmul_efficiency by that shape when `gpu` is
/// set and the profile measured no GEMM rate): forward once; backward dW, dX only when
/// visual_input_trains, and once more when K/V are recomputed; each GEMM adds kernel_launch_s.
double projection_s(const LayerShape& s, long long kv_tokens, const Placement& p, bool backward);

/// What a layer keeps for its backward on one rank holding `q_tokens` queries over `heads`
/// heads and `kv_bytes` of K/V: with recomputation only O and L, else K, V, Q, O and L.
double saved_for_backward(const LayerShape& s, long long q_tokens, int heads, double kv_bytes,
                          const Placement& p);

}  // namespace xring
