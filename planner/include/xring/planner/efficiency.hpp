// Achieved fractions of a GPU's datasheet peak by kernel shape, when no device profile is given:
// attention from a GPU spec's table of published FlashAttention measurements, GEMMs from a
// roofline with tile quantisation. docs/cost-model.md ("Rates") states every point's source.
#pragma once

#include <optional>
#include <vector>

namespace xring {

struct GpuSpec;

/// One published forward-attention measurement: `efficiency` = achieved / datasheet peak for
/// `keys` keys per query at head dim `head_dim`, with every query tile full.
struct AttentionEfficiencyPoint {
  int head_dim = 128;
  long long keys = 0;
  double efficiency = 0;
};

/// Rows of one query tile of the FlashAttention-2/-3 forward kernels (kBlockM = 128 for head
/// dims up to 256 on sm80 and sm90): a block of q queries computes ceil(q/128) whole tiles.
inline constexpr long long kAttentionQueryTileRows = 128;
/// The lowest efficiency the table's extrapolation to few keys returns.
inline constexpr double kMinAttentionEfficiency = 0.05;
/// Tile edge of the GEMM kernels the projection rule assumes (cuBLAS CTA tiles of 128).
inline constexpr double kMatmulTile = 128;

/// The used fraction of the query tiles: q / (ceil(q / 128) · 128); 1 for q ≤ 0.
double query_tile_fraction(long long q_rows);

/// The table's efficiency for (head_dim, keys), full tiles: the nearest head dim in the table
/// (the smaller on a tie), linear in log(keys) between its points, the last point's value above
/// them, and below the first point the first segment's slope extended in log(keys), floored at
/// kMinAttentionEfficiency. nullopt for an empty table.
std::optional<double> table_attention_efficiency(const std::vector<AttentionEfficiencyPoint>& t,
                                                 int head_dim, long long keys);

/// Achieved attention FLOP/s over peak for one kernel call: q_rows queries per head over keys
/// keys at head_dim. With a table: table_attention_efficiency x query_tile_fraction(q_rows);
/// without one: the spec's flat attention_efficiency.
double attention_efficiency(const GpuSpec& g, int head_dim, long long q_rows, long long keys);

/// Achieved GEMM FLOP/s over peak for an m x n x k product of `bytes`-byte elements:
/// matmul_efficiency x (m / ceil128(m)) x (n / ceil128(n)) x min(1, intensity / ridge), with
/// intensity = 2mnk / (bytes·(mk + kn + mn)) FLOP/byte and ridge = peak / HBM bandwidth.
double matmul_efficiency(const GpuSpec& g, double peak_flop_per_s, double m, double n, double k,
                         int bytes);

}  // namespace xring
