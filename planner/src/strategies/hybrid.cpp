// `hybrid` (2-D): Ulysses of degree U inside a node turns sequence shards into head shards,
// then a ring of P/U steps runs between nodes on the head-sharded blocks, as query-ring or
// KV-ring, whichever sends fewer bytes.
#include "strategies.hpp"

namespace xring {
namespace {

/// The shape one Ulysses group's ring works on: H/U heads and the group's kv heads.
LayerShape inner_shape(const LayerShape& s, int degree) {
  LayerShape inner = s;
  inner.heads = s.heads / degree;
  inner.kv_heads = s.kv_heads * ulysses_kv_replication(s, degree) / degree;
  return inner;
}

int ring_steps(const Placement& p) { return p.ranks / p.ulysses_degree; }

std::string unsupported(const LayerShape& s, const Placement& p) {
  const int U = p.ulysses_degree;
  if (U < 2 || p.ranks % U != 0 || p.ranks / U < 2)
    return "needs a Ulysses degree of at least 2 and at least 2 ring steps";
  return ulysses_unsupported(s, U);
}

LayerCost cost(const LayerShape& s, const Placement& p) {
  const int U = p.ulysses_degree, R = ring_steps(p);
  const LayerShape in = inner_shape(s, U);
  const long long local_q = block(s.s_q, p.ranks), local_kv = block(s.s_kv, p.ranks);
  const long long q = block(s.s_q, R), kv = block(s.s_kv, R);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  const double q_bytes = static_cast<double>(s.batch) * local_q * s.heads * db;
  const double kv_bytes = 2.0 * s.batch * local_kv * s.kv_heads * ulysses_kv_replication(s, U) * db;
  const double step = attention_s(in, q, kv, in.heads, p, Pass::forward);
  const bool query = hybrid_inner_ring(s, p) == Strategy::query_ring;
  const Link& a2a = p.all_to_all_link;

  LayerCost c;
  double fwd_bytes = query ? query_ring_forward_bytes(in, R) : kv_ring_forward_bytes(in, R);
  double fwd_tail = query ? static_cast<double>(in.batch) * q * in.heads * (db + 4) : 0;
  c.forward = ring_pass(R, step, fwd_bytes, p.ring_link, fwd_tail,
                        projection_s(s, local_kv, p, false), p.ring_step_sync_s);
  double fwd_a2a = all_to_all_s(q_bytes + kv_bytes, U, a2a) + all_to_all_s(q_bytes, U, a2a);
  c.forward.fixed_comm_s += fwd_a2a;
  c.forward.time_s += fwd_a2a;
  if (p.training) {
    double bwd_bytes = query ? query_ring_backward_bytes(in, R) : kv_ring_backward_bytes(in, R);
    double bwd_tail =
        query ? static_cast<double>(in.batch) * q * in.heads * db : kv_ring_forward_bytes(in, R);
    c.backward =
        ring_pass(R, attention_s(in, q, kv, in.heads, p, Pass::backward), bwd_bytes, p.ring_link,
                  bwd_tail, projection_s(s, local_kv, p, true), p.ring_step_sync_s);
    double bwd_a2a = all_to_all_s(q_bytes + (p.recompute ? kv_bytes : 0), U, a2a) +
                     all_to_all_s(q_bytes + kv_bytes, U, a2a);
    c.backward.fixed_comm_s += bwd_a2a;
    c.backward.time_s += bwd_a2a;
  }
  return c;
}

LayerMemory memory(const LayerShape& s, const Placement& p) {
  const int U = p.ulysses_degree, R = ring_steps(p);
  const LayerShape in = inner_shape(s, U);
  const long long local_kv = block(s.s_kv, p.ranks), q = block(s.s_q, R);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  LayerMemory m;
  m.visual_tokens = static_cast<double>(s.batch) * local_kv * s.visual_hidden * s.bytes;
  m.kv = kv_ring_forward_bytes(in, R);
  double local_kv_bytes = 2.0 * s.batch * local_kv * s.kv_heads * db;  // before the all-to-all
  bool query = hybrid_inner_ring(s, p) == Strategy::query_ring;
  double travelling =
      query ? 2 * (p.training ? query_ring_backward_bytes(in, R) : query_ring_forward_bytes(in, R))
            : (p.training ? kv_ring_backward_bytes(in, R) : kv_ring_forward_bytes(in, R)) +
                  static_cast<double>(s.batch) * q * in.heads * (2 * db + 4);
  m.attention_buffers = local_kv_bytes + travelling;
  m.saved_for_backward = saved_for_backward(s, q, in.heads, m.kv, p);
  return m;
}

}  // namespace

Strategy hybrid_inner_ring(const LayerShape& s, const Placement& p) {
  const LayerShape in = inner_shape(s, p.ulysses_degree);
  const int R = ring_steps(p);
  return query_ring_forward_bytes(in, R) <= kv_ring_forward_bytes(in, R) ? Strategy::query_ring
                                                                         : Strategy::kv_ring;
}

StrategyUnit hybrid_unit() {
  return {Strategy::hybrid, "Ulysses inside each node x a query- or KV-ring across nodes (2-D)",
          unsupported, cost, memory};
}

}  // namespace xring
