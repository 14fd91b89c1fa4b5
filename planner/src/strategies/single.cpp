// `single`: the whole layer on one rank; no communication. Data parallelism over the batch
// is the planner's business (groups), not this unit's.
#include "strategies.hpp"

namespace xring {
namespace {

std::string unsupported(const LayerShape&, const Placement& p) {
  return p.ranks == 1 ? "" : "single runs on exactly one rank";
}

LayerCost cost(const LayerShape& s, const Placement& p) {
  LayerCost c;
  const double attention = attention_s(s, s.s_q, s.s_kv, s.heads, p, Pass::forward);
  c.forward = ring_pass(1, attention, 0, p.ring_link, 0, projection_s(s, s.s_kv, p, false), 0);
  if (p.training)
    c.backward = ring_pass(1, attention_s(s, s.s_q, s.s_kv, s.heads, p, Pass::backward), 0,
                           p.ring_link, 0, projection_s(s, s.s_kv, p, true), 0);
  return c;
}

LayerMemory memory(const LayerShape& s, const Placement& p) {
  LayerMemory m;
  double b = s.bytes, db = static_cast<double>(s.head_dim) * s.bytes;
  m.visual_tokens = static_cast<double>(s.batch) * s.s_kv * s.visual_hidden * b;
  m.kv = 2.0 * s.batch * s.s_kv * s.kv_heads * db;
  m.attention_buffers = static_cast<double>(s.batch) * s.s_q * s.heads * (2 * db + 4);
  m.saved_for_backward = saved_for_backward(s, s.s_q, s.heads, m.kv, p);
  return m;
}

}  // namespace

StrategyUnit single_unit() {
  return {Strategy::single, "one GPU computes the whole layer (data parallel over the batch)",
          unsupported, cost, memory};
}

}  // namespace xring
