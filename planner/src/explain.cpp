// `xring explain`: the crossover and hiding thresholds for a layer, from the cost formulas.
#include "xring/planner/explain.hpp"

#include <algorithm>

#include "xring/planner/error.hpp"

namespace xring {

Explanation explain(const Inputs& in, const PlannerOptions& options, int layer_index) {
  const auto& cross = in.model.cross_attention_layers;
  if (cross.empty())
    throw Error("model " + in.model.name + " has no cross-attention layers to explain");
  if (layer_index < 0) layer_index = cross.front();
  if (std::find(cross.begin(), cross.end(), layer_index) == cross.end()) {
    std::string list;
    for (int i : cross) list += (list.empty() ? "" : ", ") + std::to_string(i);
    throw Error("--layer " + std::to_string(layer_index) + " is not a cross-attention layer of " +
                in.model.name + " (those are: " + list + ")");
  }
  Plan p = plan(in, options);
  Explanation e;
  bool planned = false;
  for (const auto& l : p.layers)
    if (l.index == layer_index) e.layer = l, planned = true;
  if (!planned)  // a streaming plan's stream has no cross-attention prefill to split
    throw Error("layer " + std::to_string(layer_index) + " of " + in.model.name +
                " is not planned for workload " + in.workload.name + " (phase " +
                to_string(in.workload.phase) +
                ": nothing to split across GPUs); explain a prefill, decode or training workload");
  const ClusterSpec& c = in.cluster;
  // Per-step numbers for the chosen ring size; a single-rank choice is explained against a
  // ring over the whole cluster, the alternative it beat.
  e.ring_ranks = e.layer.ranks > 1 ? e.layer.ranks : c.gpus();
  const int groups = c.gpus() / e.ring_ranks;
  e.shape = cross_attention_shape(in.model, in.workload, (in.workload.batch + groups - 1) / groups);
  e.ring_link = group_link(c, 0, 1, e.ring_ranks);
  const long long q = block(e.shape.s_q, e.ring_ranks), kv = block(e.shape.s_kv, e.ring_ranks);
  // The verdicts below use the planner's own step numbers: its rate at this step's shape (a
  // device profile's, when given) and the bytes of the blocks as split.
  const Placement ring = placement_for(in, Strategy::query_ring, e.ring_ranks, 0, false);
  e.step_compute_s = attention_s(e.shape, q, kv, e.shape.heads, ring, Pass::forward);
  e.attention_flop_per_s =
      attention_forward_flops(e.shape, q, kv, e.shape.heads) / e.step_compute_s;
  e.rows.push_back({Strategy::kv_ring, kv_ring_forward_bytes(e.shape, e.ring_ranks),
                    kv_ring_backward_bytes(e.shape, e.ring_ranks)});
  e.rows.push_back({Strategy::query_ring, query_ring_forward_bytes(e.shape, e.ring_ranks),
                    query_ring_backward_bytes(e.shape, e.ring_ranks)});
  e.block_ratio = static_cast<double>(q) / static_cast<double>(kv);
  e.crossover_ratio = query_ring_crossover_ratio(e.shape);
  e.local_kv_block = static_cast<double>(kv);
  e.local_q_block = static_cast<double>(q);
  e.query_ring_hiding_block =
      query_ring_hiding_block(e.shape, q, e.attention_flop_per_s, e.ring_link);
  e.kv_ring_hiding_block = kv_ring_hiding_block(e.shape, kv, e.attention_flop_per_s, e.ring_link);
  return e;
}

}  // namespace xring
