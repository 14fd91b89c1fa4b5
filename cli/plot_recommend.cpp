// The picture of `xring recommend --plot`: throughput per GPU against latency of every shape
// that meets the requirements, a colour per GPU type, the Pareto frontier as a line with its
// shapes labelled (only those: the other points would crowd it).
#include <fmt/core.h>

#include <algorithm>
#include <map>

#include "commands.hpp"
#include "plot_layout.hpp"
#include "plots.hpp"

namespace xring::cli {

std::string recommend_plot_script(const Recommendation& rec, const std::string& picture) {
  std::vector<double> latencies, rates;
  std::map<std::string, std::vector<const Candidate*>> by_gpu;
  std::vector<std::string> gpu_order;  // as the ranking first shows them
  std::vector<const Candidate*> front;
  for (const auto& c : rec.ranked) {
    latencies.push_back(c.latency_s);
    rates.push_back(c.throughput_per_gpu);
    if (by_gpu[c.gpu].empty()) gpu_order.push_back(c.gpu);
    by_gpu[c.gpu].push_back(&c);
    if (c.pareto) front.push_back(&c);
  }
  std::sort(front.begin(), front.end(),
            [](const Candidate* a, const Candidate* b) { return a->latency_s < b->latency_s; });
  const bool decode = !rec.ranked.empty() && rec.ranked.front().plan.decode.has_value();
  const PlotAxis x = choose_axis(latencies, AxisQuantity::time_s);
  const PlotAxis y = choose_axis(rates, AxisQuantity::rate_per_s, "tokens");
  const PlotBox box;
  std::string s = "# xring recommend plot; run: gnuplot THIS_FILE\n";
  s += gnuplot_output(picture, box.width_px, box.height_px);
  s += box_commands(box);
  s += "set title 'xring recommend: shapes that meet the requirements, Pareto frontier' "
       "noenhanced\n";
  s += axis_commands(x, "x", decode ? "decode step latency" : "iteration latency");
  s += axis_commands(y, "y", "throughput per GPU");
  s += "set grid xtics ytics\nset key outside bottom center horizontal noenhanced\n";
  std::vector<PointLabel> labels;
  for (const Candidate* c : front)
    labels.push_back({x.fraction(c->latency_s), y.fraction(c->throughput_per_gpu),
                      fmt::format("{} {}x{}{}", c->gpu, c->nodes, c->gpus_per_node,
                                  c->kv_policy.empty() ? "" : " " + c->kv_policy)});
  s += place_labels(labels, box);
  std::string data, plot = "plot ";
  for (size_t k = 0; k < gpu_order.size(); ++k) {
    data += fmt::format("$g{} << EOD\n", k);
    for (const Candidate* c : by_gpu[gpu_order[k]])
      data += fmt::format("{:.10g} {:.10g}\n", c->latency_s / x.divisor,
                          c->throughput_per_gpu / y.divisor);
    data += "EOD\n";
    plot += fmt::format("{}$g{} using 1:2 with points pt 7 ps 1.2 lc {} title {}", k ? ", " : "", k,
                        k + 1, gnuplot_text(gpu_order[k]));
  }
  data += "$front << EOD\n";
  for (const Candidate* c : front)
    data += fmt::format("{:.10g} {:.10g}\n", c->latency_s / x.divisor,
                        c->throughput_per_gpu / y.divisor);
  data += "EOD\n";
  plot += std::string(gpu_order.empty() ? "" : ", ") +
          "$front using 1:2 with linespoints lw 2 lc rgb '#404040' pt 6 ps 2 "
          "title 'Pareto frontier'";
  return s + data + plot + "\n";
}

}  // namespace xring::cli
