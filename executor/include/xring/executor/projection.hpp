// Cross-attention with its K/V projections, for training: LV-XAttn's activation recomputation
// keeps only the layer input (the visual tokens, one shared copy), O and L through the forward,
// and recomputes K and V from the visual tokens in backward. Same results, less memory.
#pragma once

#include <vector>

#include "xring/executor/attention.hpp"

namespace xring::executor {

struct ProjectedProblem {
  AttentionProblem attention;  ///< Q, dO, shape, lengths, mask, storage (its K and V are unused)
  int visual_hidden = 1;       ///< D_v
  std::vector<float> x;        ///< [B][S_KV][D_v]: the visual tokens
  std::vector<float> wk, wv;   ///< [D_v][H_kv·d]
};

struct ProjectedResult {
  std::vector<float> o, l, dq;
  std::vector<float> dx;        ///< [B][S_KV][D_v]
  std::vector<float> dwk, dwv;  ///< [D_v][H_kv·d], summed over ranks
  /// The most elements any rank kept from its forward for its backward, beyond the layer
  /// input (Q and the visual tokens): with recomputation O and L; without, also K and V.
  long long saved_elements_max = 0;
};

/// K (or V) = X·W for rows `rows` of the visual tokens, as [B][H_kv][rows][d], rounded to storage.
std::vector<float> project(const ProjectedProblem& p, const std::vector<float>& w,
                           kernels::Rows rows);

/// Forward and backward on `ranks` threads with query_ring, kv_ring or single.
ProjectedResult run_projected(Strategy strategy, int ranks, const ProjectedProblem& p,
                              bool recompute);

}  // namespace xring::executor
