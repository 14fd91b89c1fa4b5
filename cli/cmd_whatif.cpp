// `xring whatif`: sweep spec fields, one plan per point; table, CSV, plot.
#include <fmt/core.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

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

/// A number for CSV and JSON: 6 significant digits (the model's inputs, datasheet rates and
/// efficiencies, carry fewer); empty (CSV) or null (JSON) where it does not apply.
std::string csv_number(double v) { return std::isnan(v) ? "" : fmt::format("{:.6g}", v); }

std::string csv_header(const std::vector<SweepAxis>& axes,
                       const std::vector<std::string>& metrics) {
  std::string out;
  for (const auto& a : axes) out += csv_escape(a.field) + ",";
  out += "strategy,feasible";
  for (const auto& m : metrics) out += "," + m;
  return out + "\n";
}

std::string csv_row(const SweepPoint& p, const std::vector<std::string>& metrics) {
  std::string out;
  for (const auto& v : p.values) out += csv_escape(cell(v)) + ",";
  out += csv_escape(strategy_label(p.plan)) + (p.plan.feasible ? ",true" : ",false");
  for (const auto& m : metrics) out += "," + csv_number(metric(p.plan, m));
  return out + "\n";
}

/// One point of the JSON output: its axis values by field, strategy, feasibility, metrics.
json json_point(const std::vector<SweepAxis>& axes, const SweepPoint& p,
                const std::vector<std::string>& metrics) {
  json values = json::object(), figures = json::object();
  for (size_t a = 0; a < axes.size(); ++a) values[axes[a].field] = p.values[a];
  for (const auto& m : metrics) {
    const double v = metric(p.plan, m);
    figures[m] = std::isnan(v) ? json(nullptr) : json(std::stod(csv_number(v)));
  }
  return {{"values", values},
          {"strategy", strategy_label(p.plan)},
          {"feasible", p.plan.feasible},
          {"metrics", figures}};
}

/// The table on stdout, written as the points arrive: the first rows are held back to size
/// the columns (axis columns from every value of the axis), then every row is printed at once;
/// a later, longer cell widens its own row only.
class StreamedTable {
 public:
  static constexpr size_t kSizingRows = 256;
  StreamedTable(const std::vector<SweepAxis>& axes, std::vector<std::string> header)
      : header_(std::move(header)), width_(header_.size()) {
    for (size_t c = 0; c < header_.size(); ++c) width_[c] = header_[c].size();
    for (size_t a = 0; a < axes.size(); ++a)
      for (const auto& v : axes[a].values) width_[a] = std::max(width_[a], cell(v).size());
  }
  void add(std::vector<std::string> row) {
    if (held_) {
      for (size_t c = 0; c < row.size(); ++c) width_[c] = std::max(width_[c], row[c].size());
      rows_.push_back(std::move(row));
      if (rows_.size() == kSizingRows) flush();
      return;
    }
    print(row);
  }
  void flush() {
    if (!held_) return;
    held_ = false;
    print(header_);
    for (const auto& r : rows_) print(r);
    rows_.clear();
    rows_.shrink_to_fit();
  }

 private:
  void print(const std::vector<std::string>& row) const {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) line += fmt::format("{:<{}}  ", row[c], width_[c]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::puts(line.c_str());
  }
  std::vector<std::string> header_;
  std::vector<size_t> width_;
  std::vector<std::vector<std::string>> rows_;
  bool held_ = true;
};

}  // namespace

void attach_whatif(CLI::App& sub, int& exit_code) {
  struct Options {
    SpecOptions spec;
    std::vector<std::string> vary;
    std::vector<std::string> metrics;
    std::string csv;
    std::string plot;
    bool json = false;
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
  sub.add_flag("--json", o->json,
               "Print {schema_version, command, provenance, axes, metrics, points[]} instead of "
               "the table (streamed: one point per line)");
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
    // Each point is written as it arrives and its plan dropped; the CSV goes through a
    // temporary file renamed into place at the end, so a failed sweep leaves none.
    refuse_shared_paths({{"--csv", o->csv}, {"--plot", o->plot}, plot_script_output(o->plot)});
    std::optional<StreamedFile> csv_file;
    if (!o->csv.empty()) csv_file.emplace(o->csv);
    std::vector<std::string> metrics = o->metrics;
    std::optional<StreamedTable> table;
    std::vector<WhatifPlotPoint> plot_points;  // kept only for --plot
    const auto started = std::chrono::steady_clock::now();
    size_t planned = 0;
    bool first = true;
    run_sweep(r, [&](const SweepPoint& p) {
      if (first) {  // the phase of the first point chooses the default metrics
        first = false;
        if (metrics.empty()) metrics = default_metrics(p.plan.phase);
        if (csv_file) csv_file->write(csv_header(r.axes, metrics));
        if (o->json) {
          json axes = json::array();
          for (const auto& a : r.axes)
            axes.push_back({{"field", a.field}, {"values", a.values}, {"geometric", a.geometric}});
          // Written by hand so that schema_version and command come first (json sorts keys).
          const std::string head = "{\"schema_version\":1,\"command\":\"whatif\",\"provenance\":" +
                                   sweep_provenance(r).dump() + ",\"axes\":" + axes.dump() +
                                   ",\"metrics\":" + json(metrics).dump();
          std::fputs(head.c_str(), stdout);
          std::fputs(",\"points\":[\n", stdout);
        } else {
          std::vector<std::string> header;
          for (const auto& a : r.axes) header.push_back(a.field);
          header.push_back("strategy");
          header.push_back("feasible");
          for (const auto& m : metrics) header.push_back(m);
          table.emplace(r.axes, header);
        }
      } else if (o->json) {
        std::fputs(",\n", stdout);
      }
      if (csv_file) csv_file->write(csv_row(p, metrics));
      ++planned;
      if (!o->plot.empty())
        plot_points.push_back({p.values, metric(p.plan, metrics.front()),
                               strategy_label(p.plan) + (p.plan.feasible ? "" : " (infeasible)"),
                               p.usable_memory_bytes});
      if (o->json) {
        std::fputs(json_point(r.axes, p, metrics).dump().c_str(), stdout);
      } else {
        std::vector<std::string> row;
        for (const auto& v : p.values) row.push_back(cell(v));
        row.push_back(strategy_label(p.plan));
        row.push_back(p.plan.feasible ? "yes" : "NO");
        for (const auto& m : metrics) row.push_back(format_metric(m, metric(p.plan, m)));
        table->add(std::move(row));
      }
    });
    detail(fmt::format(
        "{} points planned in {:.1f} ms", planned,
        1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()));
    if (o->json) std::fputs("\n]}\n", stdout);
    if (table) table->flush();
    // gnuplot can fail (exit 3), and then no CSV is left either.
    if (!o->plot.empty())
      draw_with_gnuplot(o->plot, whatif_plot_script(r.axes, plot_points, metrics.front(), o->plot));
    if (csv_file) csv_file->commit();
    exit_code = 0;
  });
}

}  // namespace xring::cli
