// The strategy table, names, and the pieces the strategy units share.
#include <algorithm>

#include "strategies.hpp"
#include "xring/planner/efficiency.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/specs.hpp"

namespace xring {

const std::vector<StrategyUnit>& strategy_table() {
  static const std::vector<StrategyUnit> table = {single_unit(), kv_ring_unit(), query_ring_unit(),
                                                  ulysses_unit(), hybrid_unit()};
  return table;
}

const StrategyUnit& strategy_unit(Strategy s) {
  for (const auto& u : strategy_table())
    if (u.strategy == s) return u;
  throw Error("internal: strategy missing from the table", ExitCode::runtime);
}

std::string to_string(Strategy s) {
  switch (s) {
    case Strategy::single:
      return "single";
    case Strategy::kv_ring:
      return "kv_ring";
    case Strategy::query_ring:
      return "query_ring";
    case Strategy::ulysses:
      return "ulysses";
    case Strategy::hybrid:
      return "hybrid";
  }
  return "?";
}

Strategy strategy_from_string(const std::string& s) {
  std::vector<std::string> names;
  for (const auto& u : strategy_table()) {
    if (to_string(u.strategy) == s) return u.strategy;
    names.push_back(to_string(u.strategy));
  }
  auto hint = did_you_mean(s, names);
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  throw Error("unknown strategy \"" + s + "\"" + (hint ? "; did you mean \"" + *hint + "\"?" : "") +
              " (strategies: " + list + ")");
}

std::string ring_unsupported(const LayerShape&, const Placement& p) {
  return p.ranks >= 2 ? "" : "a ring needs at least 2 ranks (use single)";
}

PassCost ring_pass(int steps, double step_compute_s, double bytes_per_step, const Link& link,
                   double tail_bytes, double fixed_compute_s, double step_sync_s) {
  PassCost p;
  p.steps = steps;
  p.step_compute_s = step_compute_s;
  p.bytes_per_step = steps > 1 ? bytes_per_step : 0;
  p.step_comm_s = transfer_s(p.bytes_per_step, link);
  p.fixed_comm_s = steps > 1 ? transfer_s(tail_bytes, link) : 0;
  p.fixed_compute_s = fixed_compute_s;
  p.sync_s = steps > 1 ? (steps - 1) * step_sync_s : 0;
  p.time_s = fixed_compute_s +
             overlapped_ring_s(steps, step_compute_s, p.step_comm_s, p.fixed_comm_s) + p.sync_s;
  return p;
}

double attention_s(const LayerShape& s, long long n_q, long long n_kv, int heads,
                   const Placement& p, Pass pass) {
  const double flops = attention_forward_flops(s, n_q, n_kv, heads) *
                       (pass == Pass::backward ? kBackwardFlopsFactor : 1.0) * p.attention_density;
  if (flops <= 0) return 0;
  std::optional<double> rate;
  if (p.profile)
    rate = p.profile->attention_flop_per_s(pass, p.dtype, s.head_dim, false,
                                           static_cast<double>(s.batch) * heads * n_q,
                                           static_cast<double>(n_kv));
  if (!rate && p.gpu)
    rate = p.peak_flop_per_s * attention_efficiency(*p.gpu, s.head_dim, n_q, n_kv);
  return flops / (rate.value_or(p.attention_flop_per_s) * p.compute_share) + p.kernel_launch_s;
}

double projection_s(const LayerShape& s, long long kv_tokens, const Placement& p, bool backward) {
  if (kv_tokens <= 0) return 0;
  double rate = p.matmul_flop_per_s;
  if (p.gpu && !p.matmul_measured)
    rate = p.peak_flop_per_s *
           matmul_efficiency(*p.gpu, p.peak_flop_per_s, static_cast<double>(s.batch) * kv_tokens,
                             2.0 * s.kv_heads * s.head_dim, s.visual_hidden, s.bytes);
  const double gemm = kv_projection_flops(s, kv_tokens) / (rate * p.compute_share);
  if (!backward) return gemm + p.kernel_launch_s;
  const int gemms = 1 + (p.visual_input_trains ? 1 : 0) + (p.recompute ? 1 : 0);
  return gemms * (gemm + p.kernel_launch_s);
}

double saved_for_backward(const LayerShape& s, long long q_tokens, int heads, double kv_bytes,
                          const Placement& p) {
  if (!p.training) return 0;
  double db = static_cast<double>(s.head_dim) * s.bytes;
  double per_query = static_cast<double>(s.batch) * q_tokens * heads;
  if (p.recompute) return per_query * (db + 4);  // O and L
  return kv_bytes + per_query * (2 * db + 4);    // K, V, Q, O and L
}

}  // namespace xring
