// The formulas of the cross-attention cost model (DESIGN.md, "Cross-attention partitioning"),
// each in one function that the strategies, `xring explain` and the tests share.
#pragma once

#include <string>

namespace xring {

/// One data-parallel group's share of one cross-attention layer.
struct LayerShape {
  long long batch = 1;    ///< B: samples this group processes
  int heads = 1;          ///< H: query heads
  int kv_heads = 1;       ///< H_kv
  int head_dim = 1;       ///< d
  int bytes = 2;          ///< b: bytes per element of the storage dtype
  long long s_q = 1;      ///< text (query) tokens per sample
  long long s_kv = 1;     ///< visual (key/value) tokens per sample
  int visual_hidden = 1;  ///< width of the visual tokens (input of Wk, Wv)
};

/// A link as a ring step sees it: the slowest hop's bandwidth and latency.
struct Link {
  double bytes_per_s = 1;
  double latency_s = 0;
};

/// The time to move `bytes` over `link`: bytes / bandwidth + latency; 0 for no bytes.
double transfer_s(double bytes, const Link& link);

/// An all-to-all in which each of `ranks` ranks holds `local_bytes` and keeps 1/ranks of it:
/// local_bytes·(P-1)/P over the link's bandwidth plus (P-1) message latencies.
double all_to_all_s(double local_bytes, int ranks, const Link& link);

/// ceil(n / p): the largest block when n tokens are split over p ranks as evenly as possible.
long long block(long long n, int p);

/// Attention FLOPs, forward: 4·B·heads·n_q·n_kv·d (QK^T and PV, 2 FLOPs per multiply-add).
double attention_forward_flops(const LayerShape& s, long long n_q, long long n_kv, int heads);
/// Backward attention costs this multiple of the forward (dS, dP, dQ, dK, dV; FlashAttention-2).
inline constexpr double kBackwardFlopsFactor = 2.5;
/// K and V projections of the visual tokens, forward: 2·B·n_kv·D_v·(2·H_kv·d).
double kv_projection_flops(const LayerShape& s, long long n_kv);

/// Query-ring bytes a rank sends per step, forward: Q and O in the storage dtype, L in fp32:
/// B·(S_Q/P)·H·(2·d·b + 4).
double query_ring_forward_bytes(const LayerShape& s, int ranks);
/// Query-ring backward: Q, O, dO, dQ and L: B·(S_Q/P)·H·(4·d·b + 4).
double query_ring_backward_bytes(const LayerShape& s, int ranks);
/// KV-ring forward: K and V blocks, 2·B·(S_KV/P)·H_kv·d·b.
double kv_ring_forward_bytes(const LayerShape& s, int ranks);
/// KV-ring backward: K, V, dK, dV, 4·B·(S_KV/P)·H_kv·d·b.
double kv_ring_backward_bytes(const LayerShape& s, int ranks);

/// The S_Q/S_KV ratio below which query-ring moves fewer bytes than KV-ring (forward):
/// (H_kv/H)·d·b/(d·b + 2).
double query_ring_crossover_ratio(const LayerShape& s);

/// The local K/V block (tokens per rank) from which a query-ring step's compute
/// (4·B·H·q·kv·d / F) hides its transfer (B·q·H·(2·d·b + 4) / BW + latency), for a local query
/// block of q tokens: S_KV/P ≥ F·(2·d·b + 4)/(4·d·BW) + F·latency/(4·B·H·q·d).
double query_ring_hiding_block(const LayerShape& s, long long q_block, double flop_per_s,
                               const Link& link);
/// The local Q block from which a KV-ring step hides its transfer (2·B·kv·H_kv·d·b / BW +
/// latency), for a local K/V block of kv tokens: S_Q/P ≥ F·H_kv·b/(2·H·BW) + F·latency/(4·B·H·kv·d).
double kv_ring_hiding_block(const LayerShape& s, long long kv_block, double flop_per_s,
                            const Link& link);

/// Time of a P-step ring whose steps overlap compute with the transfer for the next step:
/// compute + (P - 1)·max(compute, transfer) + tail, where tail is the final, unhidden transfer
/// (e.g. O returning home). With P = 1 it is the compute alone.
double overlapped_ring_s(int steps, double compute_step_s, double comm_step_s, double tail_s);

}  // namespace xring
