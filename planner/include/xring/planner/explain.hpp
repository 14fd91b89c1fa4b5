// The numbers behind a layer's choice, for `xring explain`.
#pragma once

#include <vector>

#include "xring/planner/planner.hpp"

namespace xring {

struct ExplainRow {
  Strategy strategy;
  double forward_bytes_per_step = 0;  ///< per rank; all-to-all strategies: bytes sent in total
  double backward_bytes_per_step = 0;
};

struct Explanation {
  LayerPlan layer;     ///< the chosen plan for the layer
  LayerShape shape;    ///< per data-parallel group
  int ring_ranks = 1;  ///< P used for the per-step numbers below
  Link ring_link;
  double attention_flop_per_s = 0;  ///< F: the planner's rate at one ring step's shape
  double step_compute_s = 0;        ///< one forward ring step's attention, either ring
  std::vector<ExplainRow> rows;     ///< kv_ring and query_ring at ring_ranks
  double block_ratio = 0;           ///< (S_Q/P)/(S_KV/P) with the blocks as split (rounded up)
  double crossover_ratio = 0;       ///< query-ring moves fewer bytes below this block ratio
  double local_kv_block = 0;           ///< S_KV / P
  double query_ring_hiding_block = 0;  ///< S_KV/P above which query-ring hides its transfers
  double local_q_block = 0;            ///< S_Q / P
  double kv_ring_hiding_block = 0;     ///< S_Q/P above which KV-ring hides its transfers
};

/// Explains the plan of cross-attention layer `layer_index` (a decoder layer index, or -1 for
/// the first cross-attention layer). Throws xring::Error when the model has no such layer.
Explanation explain(const Inputs& in, const PlannerOptions& options, int layer_index);

}  // namespace xring
