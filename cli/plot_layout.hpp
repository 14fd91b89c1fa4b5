// Laying out xring's gnuplot pictures: axes that choose log or linear from the data's span and
// carry units, tick labels that never repeat, and labels placed so they neither overlap nor
// run off the plot. The scripts fix the plot box, so data positions map to known pixels.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace xring::cli {

/// What a number measures, for its axis unit.
enum class AxisQuantity { time_s, bytes, rate_per_s, count, plain };

/// The quantity a metric name measures ("iteration_time_s" time, "peak_memory_bytes_per_rank"
/// bytes, "throughput_tokens_per_s" a rate).
AxisQuantity quantity_of_metric(const std::string& name);
/// "iteration time" for "iteration_time_s", "peak memory per rank" for
/// "peak_memory_bytes_per_rank": the words of a metric's name without its unit.
std::string metric_words(const std::string& name);

/// One axis: its range in display units, log or linear, and its ticks.
struct PlotAxis {
  bool log = false;
  double low = 0, high = 1;  ///< the range, in display units (values / divisor)
  double divisor = 1;        ///< display value = value / divisor
  std::string unit;          ///< "ms", "GiB", "k tokens/s"; "" for plain numbers
  std::vector<std::pair<double, std::string>> ticks;  ///< position (display units), label
  /// Where `value` (not divided) falls across the axis, 0 at low, 1 at high.
  double fraction(double value) const;
};

/// An axis for `values` (finite ones; at least one): log when every value is positive and the
/// largest is at least 10 x the smallest (a decade or more) or the values are `geometric` (a
/// --vary start..stop:xFACTOR), else linear; `per_what` names the thing of a rate ("tokens" ->
/// "k tokens/s"). Ticks: decades (with 2 and 5 between them when the span is short) on log
/// axes, 1-2-5 steps on linear ones; labels are distinct.
PlotAxis choose_axis(const std::vector<double>& values, AxisQuantity quantity,
                     const std::string& per_what = "", bool geometric = false);

/// "set xrange / logscale / xtics / xlabel" for `axis` as gnuplot's `name` ("x" or "y").
std::string axis_commands(const PlotAxis& axis, const std::string& name, const std::string& words);

/// The plot box in screen fractions; the scripts set these margins, so positions are known.
struct PlotBox {
  double left = 0.11, right = 0.97, bottom = 0.24, top = 0.90;
  int width_px = 900, height_px = 560;
};
std::string box_commands(const PlotBox& box);

/// A label for the point at (x_fraction, y_fraction) of the plot area.
struct PointLabel {
  double x_fraction = 0, y_fraction = 0;
  std::string text;
};
/// gnuplot `set label` lines (screen coordinates) for the labels that fit: each goes above,
/// below, or beside its point, inside the box and clear of the labels placed before it; a
/// label with no free place is left out (the point keeps its marker). `first_tag` numbers them.
std::string place_labels(const std::vector<PointLabel>& labels, const PlotBox& box,
                         int first_tag = 1);

}  // namespace xring::cli
