// `ulysses` (DeepSpeed-Ulysses): an all-to-all turns the sequence shards into head shards,
// each rank computes full attention for H/P heads, and a second all-to-all brings O back.
// Nothing overlaps. When P exceeds H_kv, kv heads are replicated P/H_kv times.
#include "strategies.hpp"

namespace xring {

std::string ulysses_unsupported(const LayerShape& s, int degree) {
  if (degree < 2) return "an all-to-all needs at least 2 ranks (use single)";
  if (s.heads % degree != 0)
    return "heads (" + std::to_string(s.heads) + ") not divisible by " + std::to_string(degree) +
           " ranks";
  if (s.kv_heads % degree != 0 && degree % s.kv_heads != 0)
    return "kv heads (" + std::to_string(s.kv_heads) + ") neither divide nor are divided by " +
           std::to_string(degree) + " ranks";
  return "";
}

int ulysses_kv_replication(const LayerShape& s, int degree) {
  return s.kv_heads % degree == 0 ? 1 : degree / s.kv_heads;
}

namespace {

std::string unsupported(const LayerShape& s, const Placement& p) {
  return ulysses_unsupported(s, p.ranks);
}

LayerCost cost(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long q = block(s.s_q, P), kv = block(s.s_kv, P);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  const double q_bytes = static_cast<double>(s.batch) * q * s.heads * db;
  const double kv_bytes = 2.0 * s.batch * kv * s.kv_heads * ulysses_kv_replication(s, P) * db;
  const double attention = attention_s(s, s.s_q, s.s_kv, s.heads / P, p, Pass::forward);
  const Link& link = p.all_to_all_link;
  LayerCost c;
  c.forward.steps = 1;
  c.forward.step_compute_s = attention;
  c.forward.fixed_compute_s = projection_s(s, kv, p, false);
  c.forward.fixed_comm_s =
      all_to_all_s(q_bytes + kv_bytes, P, link) + all_to_all_s(q_bytes, P, link);
  c.forward.time_s = c.forward.compute_s() + c.forward.fixed_comm_s;
  if (p.training) {
    // In: dO (and K/V again when they are recomputed). Out: dQ, dK, dV.
    double in = q_bytes + (p.recompute ? kv_bytes : 0);
    double out = q_bytes + kv_bytes;
    c.backward.steps = 1;
    c.backward.step_compute_s = attention_s(s, s.s_q, s.s_kv, s.heads / P, p, Pass::backward);
    c.backward.fixed_compute_s = projection_s(s, kv, p, true);
    c.backward.fixed_comm_s = all_to_all_s(in, P, link) + all_to_all_s(out, P, link);
    c.backward.time_s = c.backward.compute_s() + c.backward.fixed_comm_s;
  }
  return c;
}

LayerMemory memory(const LayerShape& s, const Placement& p) {
  const int P = p.ranks;
  const long long kv = block(s.s_kv, P);
  const double db = static_cast<double>(s.head_dim) * s.bytes;
  const int heads = s.heads / P;
  const double kv_heads = static_cast<double>(s.kv_heads) * ulysses_kv_replication(s, P) / P;
  LayerMemory m;
  m.visual_tokens = static_cast<double>(s.batch) * kv * s.visual_hidden * s.bytes;
  m.kv = 2.0 * s.batch * s.s_kv * kv_heads * db;
  double local_kv = 2.0 * s.batch * kv * s.kv_heads * db;  // before the all-to-all
  m.attention_buffers = local_kv + static_cast<double>(s.batch) * s.s_q * heads * (2 * db + 4);
  m.saved_for_backward = saved_for_backward(s, s.s_q, heads, m.kv, p);
  return m;
}

}  // namespace

StrategyUnit ulysses_unit() {
  return {Strategy::ulysses,
          "all-to-all from sequence to head shards; each rank does H/P heads (DeepSpeed-Ulysses)",
          unsupported, cost, memory};
}

}  // namespace xring
