// `query_ring` (LV-XAttn): each rank keeps its K/V block; the small Q block travels around the
// ring with its running O and L, and O returns home at the end. In backward dK/dV stay local
// and Q, O, dO, L and dQ travel.
#include "strategies.hpp"

namespace xring {
namespace {

LayerCost cost(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long q = block(s.s_q, P), kv = block(s.s_kv, P);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  const double step = attention_s(s, q, kv, s.heads, p, Pass::forward);
  LayerCost c;
  double o_and_l_home = static_cast<double>(s.batch) * q * s.heads * (db + 4);
  c.forward = ring_pass(P, step, query_ring_forward_bytes(s, P), p.ring_link, o_and_l_home,
                        projection_s(s, kv, p, false), p.ring_step_sync_s);
  if (p.training) {
    double dq_home = static_cast<double>(s.batch) * q * s.heads * db;
    c.backward = ring_pass(P, attention_s(s, q, kv, s.heads, p, Pass::backward),
                           query_ring_backward_bytes(s, P), p.ring_link, dq_home,
                           projection_s(s, kv, p, true), p.ring_step_sync_s);
  }
  return c;
}

LayerMemory memory(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long q = block(s.s_q, P), kv = block(s.s_kv, P);
  LayerMemory m;
  m.visual_tokens = static_cast<double>(s.batch) * kv * s.visual_hidden * s.bytes;
  m.kv = 2.0 * s.batch * kv * s.kv_heads * s.head_dim * s.bytes;
  // The block being computed on and the one arriving (double buffering).
  double travelling = p.training ? query_ring_backward_bytes(s, P) : query_ring_forward_bytes(s, P);
  m.attention_buffers = 2 * travelling;
  m.saved_for_backward = saved_for_backward(s, q, s.heads, m.kv, p);
  return m;
}

}  // namespace

StrategyUnit query_ring_unit() {
  return {Strategy::query_ring,
          "K/V stay local; the small Q block rotates with its running O and L (LV-XAttn)",
          ring_unsupported, cost, memory};
}

}  // namespace xring
