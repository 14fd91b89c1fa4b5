// The cross-attention cost formulas; see cost_model.hpp for each contract.
#include "xring/planner/cost_model.hpp"

#include <algorithm>

namespace xring {

double transfer_s(double bytes, const Link& link) {
  return bytes > 0 ? bytes / link.bytes_per_s + link.latency_s : 0.0;
}

double all_to_all_s(double local_bytes, int ranks, const Link& link) {
  if (ranks <= 1 || local_bytes <= 0) return 0.0;
  return local_bytes * (ranks - 1) / ranks / link.bytes_per_s + (ranks - 1) * link.latency_s;
}

long long block(long long n, int p) { return (n + p - 1) / p; }

double attention_forward_flops(const LayerShape& s, long long n_q, long long n_kv, int heads) {
  return 4.0 * static_cast<double>(s.batch) * heads * static_cast<double>(n_q) *
         static_cast<double>(n_kv) * s.head_dim;
}

double kv_projection_flops(const LayerShape& s, long long n_kv) {
  return 2.0 * static_cast<double>(s.batch) * static_cast<double>(n_kv) * s.visual_hidden *
         (2.0 * s.kv_heads * s.head_dim);
}

double query_ring_forward_bytes(const LayerShape& s, int ranks) {
  return static_cast<double>(s.batch) * block(s.s_q, ranks) * s.heads *
         (2.0 * s.head_dim * s.bytes + 4);
}

double query_ring_backward_bytes(const LayerShape& s, int ranks) {
  return static_cast<double>(s.batch) * block(s.s_q, ranks) * s.heads *
         (4.0 * s.head_dim * s.bytes + 4);
}

double kv_ring_forward_bytes(const LayerShape& s, int ranks) {
  return 2.0 * static_cast<double>(s.batch) * block(s.s_kv, ranks) * s.kv_heads * s.head_dim *
         s.bytes;
}

double kv_ring_backward_bytes(const LayerShape& s, int ranks) {
  return 2.0 * kv_ring_forward_bytes(s, ranks);
}

double query_ring_crossover_ratio(const LayerShape& s) {
  double db = static_cast<double>(s.head_dim) * s.bytes;
  return (static_cast<double>(s.kv_heads) / s.heads) * db / (db + 2.0);
}

double query_ring_hiding_block(const LayerShape& s, long long q_block, double flop_per_s,
                               const Link& link) {
  const double flops_per_kv_token = 4.0 * s.batch * s.heads * q_block * s.head_dim;
  return flop_per_s * (2.0 * s.head_dim * s.bytes + 4.0) / (4.0 * s.head_dim * link.bytes_per_s) +
         flop_per_s * link.latency_s / flops_per_kv_token;
}

double kv_ring_hiding_block(const LayerShape& s, long long kv_block, double flop_per_s,
                            const Link& link) {
  const double flops_per_q_token = 4.0 * s.batch * s.heads * kv_block * s.head_dim;
  return flop_per_s * s.kv_heads * s.bytes / (2.0 * s.heads * link.bytes_per_s) +
         flop_per_s * link.latency_s / flops_per_q_token;
}

double overlapped_ring_s(int steps, double compute_step_s, double comm_step_s, double tail_s) {
  if (steps <= 1) return compute_step_s;
  return compute_step_s + (steps - 1) * std::max(compute_step_s, comm_step_s) + tail_s;
}

}  // namespace xring
