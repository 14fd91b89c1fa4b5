// The gnuplot scripts of the pictures commands draw (--plot): data inline, layout fixed.
#pragma once

#include <string>
#include <vector>

#include "xring/planner/recommend.hpp"
#include "xring/planner/sweep.hpp"

namespace xring::cli {

/// `xring whatif --plot`: `metric_name` against the first axis, a line per combination of the
/// others, labels where the strategy changes, the usable memory per GPU for memory metrics.
std::string whatif_plot_script(const std::vector<SweepAxis>& axes,
                               const std::vector<SweepPoint>& points,
                               const std::string& metric_name, const std::string& picture);

/// `xring recommend --plot`: throughput per GPU against latency of the shapes that meet the
/// requirements, coloured by GPU type, the Pareto frontier drawn and labelled.
std::string recommend_plot_script(const Recommendation& rec, const std::string& picture);

}  // namespace xring::cli
