// `kv_ring` (Ring Attention): Q stays; K/V blocks rotate around the ring. In backward K, V,
// dK and dV travel, and dK/dV return home at the end.
#include "strategies.hpp"

namespace xring {
namespace {

LayerCost cost(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long q = block(s.s_q, P), kv = block(s.s_kv, P);
  const double step = attention_s(s, q, kv, s.heads, p, Pass::forward);
  LayerCost c;
  c.forward = ring_pass(P, step, kv_ring_forward_bytes(s, P), p.ring_link, 0,
                        projection_s(s, kv, p, false), p.ring_step_sync_s);
  if (p.training)
    c.backward = ring_pass(P, attention_s(s, q, kv, s.heads, p, Pass::backward),
                           kv_ring_backward_bytes(s, P), p.ring_link, kv_ring_forward_bytes(s, P),
                           projection_s(s, kv, p, true), p.ring_step_sync_s);
  return c;
}

LayerMemory memory(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long q = block(s.s_q, P), kv = block(s.s_kv, P);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  LayerMemory m;
  m.visual_tokens = static_cast<double>(s.batch) * kv * s.visual_hidden * s.bytes;
  m.kv = kv_ring_forward_bytes(s, P);
  double in_flight = p.training ? kv_ring_backward_bytes(s, P) : kv_ring_forward_bytes(s, P);
  m.attention_buffers = in_flight + static_cast<double>(s.batch) * q * s.heads * (2 * db + 4);
  m.saved_for_backward = saved_for_backward(s, q, s.heads, m.kv, p);
  return m;
}

}  // namespace

StrategyUnit kv_ring_unit() {
  return {Strategy::kv_ring, "Q stays; K/V blocks rotate around the ring (Ring Attention)",
          ring_unsupported, cost, memory};
}

}  // namespace xring
