// `xring whatif`: sweep spec fields, one plan per point; table, CSV, plot.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "commands.hpp"
#include "plots.hpp"
#include "verbosity.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/sweep.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {
namespace {

std::string format_metric(std::string name, double v) {
  if (std::isnan(v)) return "—";
  for (const char* bound : {".low", ".high"})  // an interval's bound: the figure's unit
    if (name.size() > std::strlen(bound) &&
        name.compare(name.size() - std::strlen(bound), std::strlen(bound), bound) == 0)
      name.resize(name.size() - std::strlen(bound));
  if (name.find("bytes") != std::string::npos) return units::format_bytes(v);
  auto ends_with = [&](const char* suffix) {
    std::string_view n = name, x = suffix;
    return n.size() >= x.size() && n.substr(n.size() - x.size()) == x;
  };
  if (ends_with("_s") && !ends_with("_per_s")) return units::format_time(v);
  return units::format_count(v);
}

std::string cell(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    out.push_back(c);
    if (c == '"') out.push_back('"');
  }
  out.push_back('"');
  return out;
}

std::string csv(const std::vector<SweepAxis>& axes, const std::vector<SweepPoint>& points,
                const std::vector<std::string>& metrics) {
  std::string out;
  for (const auto& a : axes) out += csv_escape(a.field) + ",";
  out += "strategy,feasible";
  for (const auto& m : metrics) out += "," + m;
  out += "\n";
  for (const auto& p : points) {
    for (const auto& v : p.values) out += csv_escape(cell(v)) + ",";
    out += csv_escape(strategy_label(p.plan)) + (p.plan.feasible ? ",true" : ",false");
    for (const auto& m : metrics) {
      double v = metric(p.plan, m);
      out.push_back(',');
      // 6 significant digits: the model's inputs (datasheet rates, efficiencies) carry fewer.
      if (!std::isnan(v)) out += fmt::format("{:.6g}", v);
    }
    out += "\n";
  }
  return out;
}

}  // namespace

void attach_whatif(CLI::App& sub, int& exit_code) {
  struct Options {
    SpecOptions spec;
    std::vector<std::string> vary;
    std::vector<std::string> metrics;
    std::string csv;
    std::string plot;
    int jobs = 0;
  };
  auto o = std::make_shared<Options>();
  add_spec_options(sub, o->spec);
  sub.add_option(
         "--vary", o->vary,
         "A field and its values: spec.field=a,b,c | start..stop:xFACTOR | start..stop:+STEP; "
         "repeat for a Cartesian product")
      ->required();
  sub.add_option(
      "--metric", o->metrics, "Metrics to report (repeatable; default by phase): " + [] {
        std::string all;
        for (const auto& n : metric_names()) all += (all.empty() ? "" : ", ") + n;
        return all +
               "; a predicted time, rate or memory figure also as NAME.low, NAME.high "
               "(its prediction interval)";
      }());
  sub.add_option("--csv", o->csv, "Write one header row and one row per point")
      ->check(output_file());
  sub.add_option(
         "--plot", o->plot,
         "Plot the first metric against the first --vary field as .svg, .png or .pdf (gnuplot; "
         "without it, the .gp script is written next to the picture's path)")
      ->check(plot_file());
  sub.add_option("-j,--jobs", o->jobs, "Threads (default: one per hardware thread)")
      ->check(CLI::NonNegativeNumber);
  sub.footer(
      "Examples:\n"
      "  xring whatif --model mplug-owl3-7b --cluster a100-80gb-16 --vary "
      "workload.frames=16..4096:x2 "
      "--vary cluster.inter_node.bandwidth=12.5GB/s,25GB/s,100GB/s --plot frames.svg\n"
      "  xring whatif --model llama-3-70b --workload fairkv-decode --vary "
      "workload.kv_budget=256..4096:x2 "
      "--vary workload.kv_policy=uniform,adaptive --csv budgets.csv");
  sub.callback([o, &exit_code] {
    SweepRequest r;
    r.model = o->spec.model;
    r.cluster = o->spec.cluster;
    r.workload = o->spec.workload;
    r.overrides = o->spec.overrides;
    r.device_profile = o->spec.device_profile;
    r.options = planner_options(o->spec);
    r.threads = o->jobs;
    for (const auto& v : o->vary) r.axes.push_back(parse_vary(v));
    for (const auto& m : o->metrics) metric(Plan{}, m);  // unknown names fail before the sweep
    ProgressLine progress("xring whatif");
    r.progress = [&](size_t done, size_t total) { progress.update(done, total, "points"); };
    const auto started = std::chrono::steady_clock::now();
    std::vector<SweepPoint> points = run_sweep(r);
    detail(fmt::format(
        "{} points planned in {:.1f} ms", points.size(),
        1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()));
    std::vector<std::string> metrics =
        o->metrics.empty() ? default_metrics(points.front().plan.phase) : o->metrics;
    std::string text = csv(r.axes, points, metrics);
    // The plot first: gnuplot can fail (exit 3), and then no CSV is left either.
    if (!o->plot.empty())
      draw_with_gnuplot(o->plot, whatif_plot_script(r.axes, points, metrics.front(), o->plot));
    if (!o->csv.empty()) write_file_atomically(o->csv, text);
    // The table.
    std::vector<std::string> header;
    for (const auto& a : r.axes) header.push_back(a.field);
    header.push_back("strategy");
    header.push_back("feasible");
    for (const auto& m : metrics) header.push_back(m);
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : points) {
      std::vector<std::string> row;
      for (const auto& v : p.values) row.push_back(cell(v));
      row.push_back(strategy_label(p.plan));
      row.push_back(p.plan.feasible ? "yes" : "NO");
      for (const auto& m : metrics) row.push_back(format_metric(m, metric(p.plan, m)));
      rows.push_back(row);
    }
    std::vector<size_t> width(header.size());
    for (size_t c = 0; c < header.size(); ++c) {
      width[c] = header[c].size();
      for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
    }
    auto print_row = [&](const std::vector<std::string>& row) {
      std::string line;
      for (size_t c = 0; c < row.size(); ++c) line += fmt::format("{:<{}}  ", row[c], width[c]);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::puts(line.c_str());
    };
    print_row(header);
    for (const auto& row : rows) print_row(row);
    exit_code = 0;
  });
}

}  // namespace xring::cli
