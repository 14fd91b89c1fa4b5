// The picture of `xring whatif --plot`: the first metric against the first --vary field, a
// line per combination of the other fields, labels where the chosen strategy changes, and the
// usable memory per GPU when the metric is a memory figure.
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "commands.hpp"
#include "plot_layout.hpp"
#include "plots.hpp"
#include "xring/planner/planner.hpp"

namespace xring::cli {
namespace {

std::string cell(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

/// The points of one line, in the order of the sweep.
struct Series {
  std::string name;
  std::vector<const WhatifPlotPoint*> points;
};

std::vector<Series> series_of(const std::vector<SweepAxis>& axes,
                              const std::vector<WhatifPlotPoint>& points) {
  std::vector<Series> series;
  std::map<std::string, size_t> index;
  for (const auto& p : points) {
    std::string key;
    for (size_t a = 1; a < axes.size(); ++a)
      key += (key.empty() ? "" : ", ") + (axes.size() > 2 ? axes[a].field + "=" : "") +
             cell(p.values[a]);
    auto [it, added] = index.emplace(key, series.size());
    if (added) series.push_back({key, {}});
    series[it->second].points.push_back(&p);
  }
  return series;
}

/// Usable memory per GPU at each point (the planned cluster's memory less its reserve).
std::vector<double> usable_memory(const std::vector<WhatifPlotPoint>& points) {
  std::vector<double> usable;
  for (const auto& p : points)
    usable.push_back(p.usable_memory_bytes);
  return usable;
}

}  // namespace

std::string whatif_plot_script(const std::vector<SweepAxis>& axes,
                               const std::vector<WhatifPlotPoint>& points,
                               const std::string& metric_name, const std::string& picture) {
  bool numeric_x = true;
  for (const auto& v : axes[0].values) numeric_x = numeric_x && v.is_number();
  std::vector<double> xs, ys;
  for (size_t i = 0; i < points.size(); ++i) {
    xs.push_back(numeric_x ? points[i].values[0].get<double>() : 0.0);
    ys.push_back(points[i].metric);
  }
  const AxisQuantity quantity = quantity_of_metric(metric_name);
  const bool memory =
      quantity == AxisQuantity::bytes && metric_name.find("memory") != std::string::npos;
  const std::vector<double> usable = memory ? usable_memory(points) : std::vector<double>{};
  std::vector<double> y_range = ys;
  y_range.insert(y_range.end(), usable.begin(), usable.end());
  const PlotAxis y = choose_axis(y_range, quantity);
  PlotAxis x;
  std::map<std::string, double> category;  // non-numeric x: the value's index
  if (numeric_x) {
    x = choose_axis(xs, AxisQuantity::plain, "", axes[0].geometric);
    // A few swept values: tick exactly those (16, 32, ... 4096), each once.
    std::set<double> swept(xs.begin(), xs.end());
    if (swept.size() <= 12) {
      x.ticks.clear();
      for (double v : swept) x.ticks.push_back({v, fmt::format("{:g}", v)});
    }
  } else {
    for (const auto& v : axes[0].values) category.emplace(cell(v), category.size());
    x.low = -0.5;
    x.high = static_cast<double>(axes[0].values.size()) - 0.5;
    for (const auto& v : axes[0].values) x.ticks.push_back({category[cell(v)], cell(v)});
  }
  auto x_of = [&](const WhatifPlotPoint& p) {
    return numeric_x ? p.values[0].get<double>() : category[cell(p.values[0])];
  };
  const PlotBox box;
  std::string s = "# xring whatif plot; run: gnuplot THIS_FILE\n";
  s += gnuplot_output(picture, box.width_px, box.height_px);
  s += box_commands(box);
  s += "set title " +
       gnuplot_text("xring whatif: " + metric_words(metric_name) + " vs " + axes[0].field) +
       " noenhanced\n";
  s += axis_commands(x, "x", axes[0].field) + axis_commands(y, "y", metric_words(metric_name));
  s += "set grid xtics ytics\nset key outside bottom center horizontal noenhanced";
  s += axes.size() == 2 ? " title " + gnuplot_text(axes[1].field) + " noenhanced\n" : "\n";

  std::vector<PointLabel> labels;
  std::set<std::pair<double, std::string>> labelled;  // one label per (x, strategy)
  std::string data, plot;
  const std::vector<Series> series = series_of(axes, points);
  for (size_t k = 0; k < series.size(); ++k) {
    data += fmt::format("$s{} << EOD\n", k);
    std::string previous;
    for (const WhatifPlotPoint* p : series[k].points) {
      const double v = p->metric;
      if (std::isnan(v)) continue;
      data += fmt::format("{:.10g} {:.10g}\n", x_of(*p), v / y.divisor);
      const std::string& strategy = p->strategy;
      if (strategy != previous && labelled.insert({x_of(*p), strategy}).second)
        labels.push_back({x.fraction(x_of(*p)), y.fraction(v), strategy});
      previous = strategy;
    }
    data += "EOD\n";
    plot += fmt::format(
        "{}$s{} using 1:2 with linespoints lc {} pt 7 ps 0.8 lw 1.5 title {}", k ? ", " : "plot ",
        k, k + 1,
        gnuplot_text(series[k].name.empty() ? metric_words(metric_name) : series[k].name));
  }
  if (memory) {
    // One level for every point: a line across the plot; else a dashed line per series.
    const bool one_level =
        std::all_of(usable.begin(), usable.end(), [&](double u) { return u == usable.front(); });
    if (one_level) {
      s += fmt::format(
          "set arrow 1 from graph 0, first {0:.10g} to graph 1, first {0:.10g} nohead dt 2 lw 1.5 "
          "lc rgb '#b00000' front\n",
          usable.front() / y.divisor);
      labels.insert(labels.begin(),
                    {0.99, y.fraction(usable.front()),
                     "usable memory per GPU (" + fmt::format("{:.4g}", usable.front() / y.divisor) +
                         " " + y.unit + ")"});
    } else {
      for (size_t k = 0; k < series.size(); ++k) {
        data += fmt::format("$u{} << EOD\n", k);
        for (const WhatifPlotPoint* p : series[k].points)
          data += fmt::format("{:.10g} {:.10g}\n", x_of(*p),
                              usable[static_cast<size_t>(p - points.data())] / y.divisor);
        data += "EOD\n";
        plot += fmt::format(", $u{} using 1:2 with lines dt 2 lc {} {}", k, k + 1,
                            k ? "notitle" : "title 'usable memory per GPU (dashed)'");
      }
    }
  }
  s += place_labels(labels, box);
  return s + data + plot + "\n";
}

}  // namespace xring::cli
