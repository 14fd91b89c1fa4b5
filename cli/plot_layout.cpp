// Axes, ticks and label placement for xring's gnuplot pictures.
#include "plot_layout.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "commands.hpp"

namespace xring::cli {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

/// The name without an interval bound's suffix (".low", ".high").
std::string without_bound(std::string name) {
  for (const char* bound : {".low", ".high"})
    if (ends_with(name, bound)) name.resize(name.size() - std::strlen(bound));
  return name;
}

/// The display unit and divisor for values up to `largest`.
std::pair<std::string, double> display_unit(AxisQuantity q, double largest,
                                            const std::string& per_what) {
  struct Step {
    double at;
    const char* unit;
  };
  static const Step times[] = {{1, "s"}, {1e-3, "ms"}, {1e-6, "µs"}, {1e-9, "ns"}};
  static const Step bytes[] = {{1099511627776.0, "TiB"},
                               {1073741824.0, "GiB"},
                               {1048576.0, "MiB"},
                               {1024.0, "KiB"},
                               {1, "B"}};
  static const Step si[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}};
  auto pick = [&](const auto& steps) -> std::pair<std::string, double> {
    for (const Step& s : steps)
      if (largest >= s.at) return {s.unit, s.at};
    return {std::end(steps)[-1].unit, std::end(steps)[-1].at};
  };
  switch (q) {
    case AxisQuantity::time_s:
      return pick(times);
    case AxisQuantity::bytes:
      return pick(bytes);
    case AxisQuantity::rate_per_s: {
      auto [prefix, divisor] = pick(si);
      std::string unit = prefix + (per_what.empty() ? "" : (prefix.empty() ? "" : " ") + per_what);
      return {unit + "/s", divisor};
    }
    case AxisQuantity::count:
      return pick(si);
    case AxisQuantity::plain:
      break;
  }
  return {"", 1};
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
double nice_step(double raw) {
  const double decade = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * decade >= raw * (1 - 1e-9)) return m * decade;
  return 10 * decade;
}

void linear_ticks(PlotAxis& a, double lo, double hi) {
  if (hi <= lo) hi = lo + (lo == 0 ? 1 : std::fabs(lo));
  const double step = nice_step((hi - lo) / 5);
  a.low = std::floor(lo / step + 1e-9) * step;
  a.high = std::ceil(hi / step - 1e-9) * step;
  const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double t = a.low; t <= a.high + step * 1e-6; t += step)
    a.ticks.push_back({t, fmt::format("{:.{}f}", std::fabs(t) < step * 1e-6 ? 0.0 : t, decimals)});
}

void log_ticks(PlotAxis& a, double lo, double hi) {
  // The data's range with a margin (not whole decades: those leave empty bands).
  a.low = lo / 1.25;
  a.high = hi * 1.25;
  const int first = static_cast<int>(std::floor(std::log10(a.low)));
  const int last = static_cast<int>(std::ceil(std::log10(a.high)));
  const bool between = last - first <= 4;  // short spans: 2 and 5 as well
  for (int e = first; e <= last; ++e)
    for (double m : {1.0, 2.0, 5.0}) {
      const double t = m * std::pow(10, e);
      if ((m != 1 && !between) || t < a.low || t > a.high) continue;
      a.ticks.push_back({t, fmt::format("{:g}", t)});
    }
}

}  // namespace

AxisQuantity quantity_of_metric(const std::string& metric_name) {
  const std::string name = without_bound(metric_name);
  if (name.find("bytes") != std::string::npos) return AxisQuantity::bytes;
  if (ends_with(name, "_per_s")) return AxisQuantity::rate_per_s;
  if (ends_with(name, "_s")) return AxisQuantity::time_s;
  return AxisQuantity::count;
}

std::string metric_words(const std::string& metric_name) {
  std::string name = without_bound(metric_name);
  const std::string bound = ends_with(metric_name, ".low")    ? " (low bound)"
                            : ends_with(metric_name, ".high") ? " (high bound)"
                                                              : "";
  for (const char* unit : {"_per_s", "_s"})
    if (ends_with(name, unit)) {
      name.resize(name.size() - std::strlen(unit));
      break;
    }
  std::string words;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('_', start);
    if (end == std::string::npos) end = name.size();
    const std::string word = name.substr(start, end - start);
    if (!word.empty() && word != "bytes") words += (words.empty() ? "" : " ") + word;
    start = end + 1;
  }
  return words + bound;
}

double PlotAxis::fraction(double value) const {
  const double v = value / divisor;
  if (log) return (std::log10(v) - std::log10(low)) / (std::log10(high) - std::log10(low));
  return (v - low) / (high - low);
}

PlotAxis choose_axis(const std::vector<double>& values, AxisQuantity quantity,
                     const std::string& per_what, bool geometric) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (std::isfinite(v)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  PlotAxis a;
  std::tie(a.unit, a.divisor) =
      display_unit(quantity, std::max(std::fabs(lo), std::fabs(hi)), per_what);
  lo /= a.divisor;
  hi /= a.divisor;
  a.log = lo > 0 && (hi >= 10 * lo || (geometric && hi > lo));
  if (a.log)
    log_ticks(a, lo, hi);
  else
    linear_ticks(a, lo >= 0 && quantity != AxisQuantity::plain ? 0 : lo, hi + 0.05 * (hi - lo));
  return a;
}

std::string axis_commands(const PlotAxis& axis, const std::string& name, const std::string& words) {
  std::string s = fmt::format("set {}range [{:.10g}:{:.10g}]\n", name, axis.low, axis.high);
  s += axis.log ? "set logscale " + name + " 10\n" : "unset logscale " + name + "\n";
  s += "set " + name + "tics (";
  for (size_t i = 0; i < axis.ticks.size(); ++i)
    s += fmt::format("{}{} {:.10g}", i ? ", " : "", gnuplot_text(axis.ticks[i].second),
                     axis.ticks[i].first);
  s += ")\n";
  s += "set m" + name + "tics " + (axis.log ? "10" : "1") + "\n";
  s += "set " + name + "label " +
       gnuplot_text(axis.unit.empty() ? words : words + " (" + axis.unit + ")") + " noenhanced\n";
  return s;
}

std::string box_commands(const PlotBox& box) {
  return fmt::format(
      "set lmargin at screen {:.4f}\nset rmargin at screen {:.4f}\n"
      "set bmargin at screen {:.4f}\nset tmargin at screen {:.4f}\n",
      box.left, box.right, box.bottom, box.top);
}

std::string place_labels(const std::vector<PointLabel>& labels, const PlotBox& box, int first_tag) {
  // Sizes in pixels at font size 9: a character is at most ~7 px wide, a line 12 px high.
  constexpr double kCharPx = 7.0, kLinePx = 12.0, kGapPx = 7.0;
  struct Rect {
    double x0, y0, x1, y1;  // pixels from the picture's bottom left
  };
  std::vector<Rect> placed;
  const double bx0 = box.left * box.width_px, bx1 = box.right * box.width_px;
  const double by0 = box.bottom * box.height_px, by1 = box.top * box.height_px;
  // The labelled points' markers are taken first: no label covers another's point.
  for (const auto& l : labels) {
    const double px = bx0 + l.x_fraction * (bx1 - bx0), py = by0 + l.y_fraction * (by1 - by0);
    placed.push_back({px - 4, py - 4, px + 4, py + 4});
  }
  std::string s;
  int tag = first_tag;
  for (const auto& l : labels) {
    const double px = bx0 + l.x_fraction * (bx1 - bx0), py = by0 + l.y_fraction * (by1 - by0);
    const double w = kCharPx * static_cast<double>(l.text.size()), h = kLinePx;
    // Above, below, the four corners, beside, then further above and below.
    const std::pair<double, double> offsets[] = {
        {-w / 2, kGapPx},           {-w / 2, -kGapPx - h}, {kGapPx, kGapPx},
        {-kGapPx - w, kGapPx},      {kGapPx, -kGapPx - h}, {-kGapPx - w, -kGapPx - h},
        {kGapPx, -h / 2},           {-kGapPx - w, -h / 2}, {-w / 2, kGapPx + 1.5 * h},
        {-w / 2, -kGapPx - 2.5 * h}};
    for (auto [dx, dy] : offsets) {
      Rect r{px + dx, py + dy, px + dx + w, py + dy + h};
      if (r.x0 < bx0 + 2 || r.x1 > bx1 - 2 || r.y0 < by0 + 2 || r.y1 > by1 - 2) continue;
      bool clear = true;
      for (const Rect& o : placed)
        clear = clear && (r.x1 <= o.x0 || o.x1 <= r.x0 || r.y1 <= o.y0 || o.y1 <= r.y0);
      if (!clear) continue;
      placed.push_back(r);
      s += fmt::format("set label {} {} at screen {:.4f},{:.4f} left font ',9' noenhanced front\n",
                       tag++, gnuplot_text(l.text), r.x0 / box.width_px,
                       (r.y0 + h / 2) / box.height_px);
      break;
    }
  }
  return s;
}

}  // namespace xring::cli
