// Prediction intervals: how far a measurement may stray from a predicted number, by where the
// rates behind it came from (a measured device profile, published efficiencies, datasheet peaks
// x a default efficiency), and the residual spread `xring validate` measures and stores in a
// profile. docs/cost-model.md, "Prediction intervals", states every band and its reasoning.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace xring {

/// Where the compute rates of a prediction came from; each has its own band.
enum class RateSource { profile, published, datasheet };
std::string to_string(RateSource s);
/// "profile" (also "device_profile", the plan's cost_source.kind), "published", "datasheet";
/// throws xring::Error naming the accepted names otherwise.
RateSource rate_source_from_string(const std::string& name);

/// The spread of measured / predicted over the points `xring validate` ran: its low and high
/// quantiles (by default the 5% and 95% ones). Stored in a device profile as `residuals`.
struct ResidualSpread {
  int samples = 0;
  double low_quantile = 0.05;
  double high_quantile = 0.95;
  double low_ratio = 1;   ///< measured / predicted at low_quantile
  double high_ratio = 1;  ///< measured / predicted at high_quantile
};

/// The quantiles of `measured_over_predicted` (linear between order statistics, the usual
/// "type 7" definition). Throws xring::Error when there are no samples or one is not positive.
ResidualSpread residual_spread(std::vector<double> measured_over_predicted,
                               double low_quantile = 0.05, double high_quantile = 0.95);

/// Multipliers of a predicted value: a measurement lies in [value·low, value·high] for times
/// and memory; a rate (tokens/s) is a time's inverse, so its interval is [value/high,
/// value/low] of the time ratios. low ≤ 1 ≤ high always: the prediction lies in its interval.
struct PredictionBand {
  RateSource source = RateSource::datasheet;
  double time_low_ratio = 1;
  double time_high_ratio = 1;
  double memory_low_ratio = 1;
  double memory_high_ratio = 1;
  std::string basis;  ///< where the time ratios come from, for notes and JSON
};

/// The band of `source`. For a profile with `residuals` the time ratios are its quantiles
/// (widened to include 1); without residuals (a profile never validated) the stated profile
/// default. Memory ratios are the same for every source (the allocator band).
PredictionBand prediction_band(RateSource source, const std::optional<ResidualSpread>& residuals);

/// A predicted number with its bounds, low ≤ value ≤ high.
struct Interval {
  double value = 0;
  double low = 0;
  double high = 0;
};

/// Times (seconds): [value·time_low, value·time_high]; empty when nothing was predicted.
std::optional<Interval> time_interval(const std::optional<double>& seconds,
                                      const PredictionBand& band);
/// Rates (tokens/s, frames/s): [value/time_high, value/time_low]; empty when nothing predicted.
std::optional<Interval> rate_interval(const std::optional<double>& per_s,
                                      const PredictionBand& band);
/// Memory (bytes): [value·memory_low, value·memory_high].
Interval memory_interval(double bytes, const PredictionBand& band);

/// The fraction of (measured, low, high) points with low ≤ measured ≤ high; empty input is 0.
struct CoveredPoint {
  double measured = 0;
  double low = 0;
  double high = 0;
};
double coverage(const std::vector<CoveredPoint>& points);

/// A table cell with its interval: `value_text` (the value as the table formats it, starting
/// with its number, e.g. "9.27 ms") followed by the bounds in the same unit, "9.27 ms
/// (8.9–9.9)": 3 significant digits, whole numbers from 100 up unless the value has an exponent.
/// No interval: the text.
std::string with_interval(const std::string& value_text, double value,
                          const std::optional<Interval>& interval);

/// "x0.65–1.5": a band's ratios for notes and tables.
std::string ratio_range(double low, double high);

}  // namespace xring
