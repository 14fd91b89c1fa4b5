// Exact distributed cross-attention, forward and backward, over a Communicator: query_ring
// (LV-XAttn), kv_ring (Ring Attention), ulysses, single. Each rank holds the blocks of rows the
// even split gives it (the first n % P ranks one more) and computes with the reference kernels.
#pragma once

#include <functional>
#include <vector>

#include "xring/executor/communicator.hpp"
#include "xring/kernels/reference.hpp"
#include "xring/planner/strategy.hpp"

namespace xring::executor {

/// The problem as the host sees it: global tensors, from which each rank takes its own rows.
struct AttentionProblem {
  kernels::Shape shape;
  long long s_q = 1;
  long long s_kv = 1;
  kernels::Mask mask;
  kernels::Storage storage = kernels::Storage::bf16;
  std::vector<float> q, k, v;  ///< [B][H][S_Q][d], [B][H_kv][S_KV][d] x2, at storage precision
  std::vector<float> d_o;      ///< [B][H][S_Q][d]: the output gradient (backward only)
};

/// Outputs, global layout; each rank writes only its own rows. O, dQ, dK, dV are rounded to
/// the storage precision; L stays fp32.
struct AttentionResult {
  std::vector<float> o, l, dq, dk, dv;
};

/// Rank r's rows when n tokens are split over `ranks` ranks.
kernels::Rows block_of(long long n, int ranks, int r);

/// How a hybrid lays out its ranks: Ulysses groups of `ulysses_degree` and the ring between
/// them (ignored by the other strategies).
struct HybridLayout {
  int ulysses_degree = 0;
  Strategy ring_kind = Strategy::query_ring;
};

/// Why `strategy` cannot run `p` on `ranks` ranks ("" when it can).
std::string unsupported(Strategy strategy, const AttentionProblem& p, int ranks,
                        HybridLayout layout = {});

/// One rank's part of a strategy's forward (and, with `backward`, backward) pass, with the
/// strategy and its layout resolved once: what every rank of a layer runs.
using RankAlgorithm = std::function<void(Communicator& comm, const AttentionProblem& p,
                                         bool backward, AttentionResult& out)>;

/// The rank algorithm of `strategy` (hybrid: with `layout`).
RankAlgorithm rank_algorithm(Strategy strategy, HybridLayout layout = {});

/// One rank's part of the forward (and, with `backward`, the backward) pass. `out` must be
/// sized by `allocate_result`; ranks write disjoint rows.
void run_rank(Strategy strategy, Communicator& comm, const AttentionProblem& p, bool backward,
              AttentionResult& out, HybridLayout layout = {});

AttentionResult allocate_result(const AttentionProblem& p, bool backward);

/// Runs the strategy on `ranks` threads. Throws xring::Error for unsupported combinations.
AttentionResult run_distributed(Strategy strategy, int ranks, const AttentionProblem& p,
                                bool backward, HybridLayout layout = {});

/// The monolithic reference: one block, no communication.
AttentionResult run_reference(const AttentionProblem& p, bool backward);

}  // namespace xring::executor
