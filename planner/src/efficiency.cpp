// Efficiency by kernel shape: the attention table lookup and the GEMM roofline rule.
#include "xring/planner/efficiency.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "xring/planner/specs.hpp"

namespace xring {
namespace {

double tile_fraction(double n, double tile) {
  if (n <= 0) return 1.0;
  return n / (std::ceil(n / tile) * tile);
}

}  // namespace

double query_tile_fraction(long long q_rows) {
  return tile_fraction(static_cast<double>(q_rows), static_cast<double>(kAttentionQueryTileRows));
}

std::optional<double> table_attention_efficiency(const std::vector<AttentionEfficiencyPoint>& t,
                                                 int head_dim, long long keys) {
  if (t.empty()) return std::nullopt;
  int dim = t.front().head_dim;
  for (const auto& p : t) {
    const int gap = std::abs(p.head_dim - head_dim), best = std::abs(dim - head_dim);
    if (gap < best || (gap == best && p.head_dim < dim)) dim = p.head_dim;
  }
  std::vector<std::pair<double, double>> curve;  // (log keys, efficiency), sorted
  for (const auto& p : t)
    if (p.head_dim == dim) curve.push_back({std::log(static_cast<double>(p.keys)), p.efficiency});
  std::sort(curve.begin(), curve.end());
  const double x = std::log(static_cast<double>(std::max(keys, 1LL)));
  if (curve.size() == 1) return curve.front().second;
  if (x >= curve.back().first) return curve.back().second;
  size_t hi = 1;
  if (x > curve.front().first)
    while (curve[hi].first < x) ++hi;
  const auto& a = curve[hi - 1];
  const auto& b = curve[hi];
  const double e = a.second + (x - a.first) * (b.second - a.second) / (b.first - a.first);
  return std::max(kMinAttentionEfficiency, e);
}

double attention_efficiency(const GpuSpec& g, int head_dim, long long q_rows, long long keys) {
  if (auto e = table_attention_efficiency(g.attention_efficiency_table, head_dim, keys))
    return *e * query_tile_fraction(q_rows);
  return g.attention_efficiency;
}

double matmul_efficiency(const GpuSpec& g, double peak_flop_per_s, double m, double n, double k,
                         int bytes) {
  if (m <= 0 || n <= 0 || k <= 0) return g.matmul_efficiency;
  const double intensity = 2.0 * m * n * k / (bytes * (m * k + k * n + m * n));
  const double ridge = g.hbm_bytes_per_s > 0 ? peak_flop_per_s / g.hbm_bytes_per_s : 0;
  const double roofline = ridge > 0 ? std::min(1.0, intensity / ridge) : 1.0;
  return g.matmul_efficiency * tile_fraction(m, kMatmulTile) * tile_fraction(n, kMatmulTile) *
         roofline;
}

}  // namespace xring
