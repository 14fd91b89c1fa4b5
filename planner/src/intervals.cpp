// Prediction bands per rate source, residual quantiles and interval coverage.
#include "xring/planner/intervals.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "xring/planner/error.hpp"

namespace xring {
namespace {

// Time bands: measured / predicted. docs/cost-model.md, "Prediction intervals", derives each.
//
// Datasheet peaks x the default efficiencies (attention 0.5, GEMM 0.6): achieved attention
// fractions of dense BF16 peak published for current kernels run from about 0.35
// (FlashAttention-2 on H100) to about 0.75 (FlashAttention-3 forward, 740 of 989 TFLOP/s; both
// from the abstract of Shah et al. 2024, FlashAttention-3), so measured / predicted =
// 0.5/0.75 = 0.67 to 0.5/0.35 = 1.43; GEMMs at 0.45-0.8 of peak give 0.75-1.33. Rounded out
// to 0.65 and 1.5, which also covers links at 80-90% of their line rate (nccl-tests busbw).
constexpr double kDatasheetTimeLow = 0.65;
constexpr double kDatasheetTimeHigh = 1.5;
// Published shape-dependent efficiencies: measured for one kernel at published shapes; the
// same kernel at neighbouring shapes and other software versions moves by about ±20% (the
// FlashAttention-3 paper's sequence-length sweeps), and a framework other than the paper's
// is slower, not faster: 1/1.25 = 0.8 to 1.3.
constexpr double kPublishedTimeLow = 0.8;
constexpr double kPublishedTimeHigh = 1.3;
// A device profile that `xring validate` has not yet measured the spread of: the shape
// interpolation and the rank emulation are validated to ±25% (xring validate's plot band and
// the H100 goal "worst <= 25%"); the cpu run of bench/RESULTS.md (2026-11-24) had 18 of 20
// points inside 0.8-1.25.
constexpr double kProfileTimeLow = 0.8;
constexpr double kProfileTimeHigh = 1.25;
// Memory, every source: the planner counts the tensors resident at the peak exactly, so a
// measurement is lower only where a buffer is freed earlier than modelled (2%); it is higher
// by the caching allocator's rounding and fragmentation, which PyTorch's memory statistics
// typically show as reserved 5-10% above allocated: 0.98 to 1.10. The CUDA context and
// library workspaces are outside it, in reserved_memory_per_gpu (2 GiB).
constexpr double kMemoryLow = 0.98;
constexpr double kMemoryHigh = 1.10;

double quantile(const std::vector<double>& sorted, double q) {
  const double at = q * static_cast<double>(sorted.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(at));
  const size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

/// A bound: 3 significant digits (bounds are rough); from 100 up a whole number unless the
/// value was written with an exponent, so a cell reads "7284 (4856–11204)" or
/// "1.04e+05 (8.3e+04–1.3e+05)".
std::string bound_text(double v, bool exponent) {
  char buf[32];
  std::snprintf(buf, sizeof buf, !exponent && std::fabs(v) >= 100 ? "%.0f" : "%.3g", v);
  return buf;
}

}  // namespace

std::string with_interval(const std::string& value_text, double value,
                          const std::optional<Interval>& interval) {
  if (!interval) return value_text;
  // The bounds are printed in the unit the value was: the text's leading number gives its scale.
  const char* begin = value_text.c_str();
  char* end = nullptr;
  const double shown = std::strtod(begin, &end);
  const double scale = end != begin && shown != 0 && value != 0 ? value / shown : 1;
  const bool exponent = value_text.substr(0, end - begin).find_first_of("eE") != std::string::npos;
  std::string text = value_text;
  text.append(" (").append(bound_text(interval->low / scale, exponent));
  text.append("–").append(bound_text(interval->high / scale, exponent)).append(")");
  return text;
}

std::string ratio_range(double low, double high) {
  std::string text = "x";
  text.append(bound_text(low, false)).append("–").append(bound_text(high, false));
  return text;
}

std::string to_string(RateSource s) {
  switch (s) {
    case RateSource::profile:
      return "profile";
    case RateSource::published:
      return "published";
    case RateSource::datasheet:
      return "datasheet";
  }
  return "datasheet";
}

RateSource rate_source_from_string(const std::string& name) {
  if (name == "profile" || name == "device_profile") return RateSource::profile;
  if (name == "published") return RateSource::published;
  if (name == "datasheet") return RateSource::datasheet;
  throw Error("unknown rate source \"" + name + "\"; use profile, published or datasheet");
}

ResidualSpread residual_spread(std::vector<double> ratios, double low_quantile,
                               double high_quantile) {
  if (ratios.empty()) throw Error("residual spread: no measured points to take it from");
  if (!(low_quantile >= 0 && low_quantile <= high_quantile && high_quantile <= 1))
    throw Error("residual spread: quantiles must satisfy 0 <= low <= high <= 1");
  for (double r : ratios)
    if (!(r > 0 && std::isfinite(r)))
      throw Error("residual spread: measured / predicted must be a positive number");
  std::sort(ratios.begin(), ratios.end());
  ResidualSpread s;
  s.samples = static_cast<int>(ratios.size());
  s.low_quantile = low_quantile;
  s.high_quantile = high_quantile;
  s.low_ratio = quantile(ratios, low_quantile);
  s.high_ratio = quantile(ratios, high_quantile);
  return s;
}

PredictionBand prediction_band(RateSource source, const std::optional<ResidualSpread>& residuals) {
  PredictionBand b;
  b.source = source;
  b.memory_low_ratio = kMemoryLow;
  b.memory_high_ratio = kMemoryHigh;
  switch (source) {
    case RateSource::datasheet:
      b.time_low_ratio = kDatasheetTimeLow;
      b.time_high_ratio = kDatasheetTimeHigh;
      b.basis = "datasheet peaks x default efficiencies (stated band)";
      break;
    case RateSource::published:
      b.time_low_ratio = kPublishedTimeLow;
      b.time_high_ratio = kPublishedTimeHigh;
      b.basis = "published efficiencies (stated band)";
      break;
    case RateSource::profile:
      if (residuals && residuals->samples > 0) {
        // The prediction itself stays inside: a profile that is low everywhere widens only
        // the high side.
        b.time_low_ratio = std::min(1.0, residuals->low_ratio);
        b.time_high_ratio = std::max(1.0, residuals->high_ratio);
        b.basis = "device profile residuals (" + std::to_string(residuals->samples) +
                  " validated points)";
      } else {
        b.time_low_ratio = kProfileTimeLow;
        b.time_high_ratio = kProfileTimeHigh;
        b.basis = "device profile, not validated (stated band)";
      }
      break;
  }
  return b;
}

std::optional<Interval> time_interval(const std::optional<double>& seconds,
                                      const PredictionBand& band) {
  if (!seconds) return std::nullopt;
  return Interval{*seconds, *seconds * band.time_low_ratio, *seconds * band.time_high_ratio};
}

std::optional<Interval> rate_interval(const std::optional<double>& per_s,
                                      const PredictionBand& band) {
  if (!per_s) return std::nullopt;
  return Interval{*per_s, *per_s / band.time_high_ratio, *per_s / band.time_low_ratio};
}

Interval memory_interval(double bytes, const PredictionBand& band) {
  return Interval{bytes, bytes * band.memory_low_ratio, bytes * band.memory_high_ratio};
}

double coverage(const std::vector<CoveredPoint>& points) {
  if (points.empty()) return 0;
  size_t inside = 0;
  for (const auto& p : points)
    if (p.low <= p.measured && p.measured <= p.high) ++inside;
  return static_cast<double>(inside) / static_cast<double>(points.size());
}

}  // namespace xring
