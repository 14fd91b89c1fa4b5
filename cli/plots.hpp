// The gnuplot scripts of the pictures commands draw (--plot): data inline, layout fixed.
#pragma once

#include <string>
#include <vector>

#include "xring/planner/recommend.hpp"
#include "xring/planner/sweep.hpp"

namespace xring::cli {

/// What the whatif picture keeps of a sweep point (the plan itself is dropped as the sweep
/// streams): its axis values, the plotted metric, the strategy label ("(infeasible)" appended
/// where it is) and the usable memory per GPU there.
struct WhatifPlotPoint {
  std::vector<nlohmann::json> values;
  double metric = 0;
  std::string strategy;
  double usable_memory_bytes = 0;
};

/// `xring whatif --plot`: `metric_name` against the first axis, a line per combination of the
/// others, labels where the strategy changes, the usable memory per GPU for memory metrics.
std::string whatif_plot_script(const std::vector<SweepAxis>& axes,
                               const std::vector<WhatifPlotPoint>& points,
                               const std::string& metric_name, const std::string& picture);

/// `xring recommend --plot`: throughput per GPU against latency of the shapes that meet the
/// requirements, coloured by GPU type, the Pareto frontier drawn and labelled.
std::string recommend_plot_script(const Recommendation& rec, const std::string& picture);

}  // namespace xring::cli
