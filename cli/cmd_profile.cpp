// `xring profile` (measure the device, write a DeviceProfile) and `xring validate` (the
// planner's predictions against measured runs on that device).
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "command_json.hpp"
#include "commands.hpp"
#include "plot_layout.hpp"
#include "xring/executor/profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {
namespace {

/// "512x8192" -> (512, 8192); throws xring::Error naming the flag.
std::pair<long long, long long> parse_shape(const std::string& text) {
  auto x = text.find('x');
  try {
    if (x == std::string::npos) throw std::invalid_argument("no x");
    size_t a = 0, b = 0;
    long long s_q = std::stoll(text.substr(0, x), &a);
    long long s_kv = std::stoll(text.substr(x + 1), &b);
    if (a != x || b != text.size() - x - 1 || s_q < 1 || s_kv < 1)
      throw std::invalid_argument("bad");
    return {s_q, s_kv};
  } catch (const std::exception&) {
    throw Error("--shape " + text + ": expected S_QxS_KV with positive integers, e.g. 512x8192");
  }
}

/// Predicted against measured time, one marker per strategy, on one time axis for both (log
/// over a decade or more, with its unit), the diagonal and the interval's edges.
std::string validate_plot_script(const executor::ValidateReport& r, const std::string& picture) {
  std::vector<double> times;
  for (const auto& p : r.points) {
    times.push_back(p.measured_s);
    times.push_back(p.predicted_s);
  }
  const PlotAxis axis = choose_axis(times, AxisQuantity::time_s);
  std::string s = "# xring validate plot; run: gnuplot THIS_FILE\n";
  s += gnuplot_output(picture, 760, 640);
  s += "set title " + gnuplot_text("xring validate: " + r.device + " (" + r.backend + ")") +
       " noenhanced\n";
  s += axis_commands(axis, "x", "measured") + axis_commands(axis, "y", "predicted");
  s += "set grid\nset key top left\n$points << EOD\n";
  for (const auto& p : r.points)
    s +=
        fmt::format("{:.9g} {:.9g} {}\n", p.measured_s / axis.divisor, p.predicted_s / axis.divisor,
                    p.strategy == "single"       ? 0
                    : p.strategy == "query_ring" ? 1
                                                 : 2);
  s += "EOD\n";
  // A point is inside its interval when predicted·low <= measured <= predicted·high, i.e.
  // between the lines predicted = measured/high and predicted = measured/low (both axes share
  // the unit, so the lines hold in display units too).
  s += fmt::format(
      "plot x title 'predicted = measured' lc rgb 'gray', "
      "x/{:.6g} title 'interval {}' dt 2 lc rgb 'gray', x/{:.6g} notitle dt 2 lc rgb 'gray', ",
      r.band.time_high_ratio, ratio_range(r.band.time_low_ratio, r.band.time_high_ratio),
      r.band.time_low_ratio);
  s += "$points using 1:($3==0?$2:1/0) with points pt 7 title 'single', "
       "$points using 1:($3==1?$2:1/0) with points pt 5 title 'query\\_ring', "
       "$points using 1:($3==2?$2:1/0) with points pt 9 title 'kv\\_ring'\n";
  return s;
}

size_t count_inside(const executor::ValidateReport& r) {
  return static_cast<size_t>(
      std::count_if(r.points.begin(), r.points.end(), [](const auto& p) { return p.inside(); }));
}

/// --update-profile / --residuals-to: writes `profile` with this run's residual spread to
/// `path` (nothing when empty). Runs that failed to verify measured nothing to trust: not
/// written.
void write_residuals(const std::string& path, const nlohmann::json& profile,
                     const executor::ValidateReport& r, bool verified, std::FILE* out) {
  if (path.empty()) return;
  if (!verified || r.points.empty()) {
    fmt::print(out, "residuals not written: {}\n",
               r.points.empty() ? "no points were measured" : "a run failed to verify");
    return;
  }
  write_file_atomically(path,
                        executor::profile_with_residuals(profile, r.residuals).dump(2) + "\n");
  fmt::print(out, "wrote the residual spread into {}\n", path);
}

/// The validate table: a row per point with the measured median, the samples' spread (half
/// their range) and count, then the summary lines.
void print_validate_table(const executor::ValidateReport& r, const std::string& profile) {
  fmt::print("xring validate on {} ({} backend, profile {})\n", r.device, r.backend, profile);
  fmt::print("  {:<11} {:>5} {:>13} {:>26} {:>11} {:>11} {:>3} {:>8} {:>6} {:>8}\n", "strategy",
             "ranks", "S_Q x S_KV", "predicted (interval)", "measured", "spread", "n", "error",
             "inside", "verified");
  for (const auto& p : r.points) {
    const auto spread = half_range(p.measured_samples_s);
    fmt::print("  {:<11} {:>5} {:>13} {:>26} {:>11} {:>11} {:>3} {:>+7.1f}% {:>6} {:>8}\n",
               p.strategy, p.ranks, fmt::format("{}x{}", p.s_q, p.s_kv),
               with_interval(units::format_time(p.predicted_s), p.predicted_s,
                             Interval{p.predicted_s, p.predicted_low_s, p.predicted_high_s}),
               units::format_time(p.measured_s),
               spread ? "±" + units::format_time(*spread) : std::string("—"),
               std::max<size_t>(1, p.measured_samples_s.size()), 100 * p.error,
               p.inside() ? "yes" : "no", p.verified ? "yes" : "NO");
  }
  fmt::print("median |error| {:.1f}%, worst {:.1f}% over {} points\n", 100 * r.median_abs_error,
             100 * r.worst_abs_error, r.points.size());
  fmt::print("coverage {:.1f}% ({} of {} points inside the {} interval, {})\n", 100 * r.coverage,
             count_inside(r), r.points.size(), to_string(r.band.source),
             ratio_range(r.band.time_low_ratio, r.band.time_high_ratio));
  if (!r.points.empty())
    fmt::print("residual spread: measured/predicted {} (5%–95%, {} points)\n",
               ratio_range(r.residuals.low_ratio, r.residuals.high_ratio), r.residuals.samples);
  for (const auto& n : r.notes) fmt::print("  - {}\n", n);
}

/// Which bounds the report exceeds: one line each, empty when none was exceeded.
ValidateVerdict validate_verdict(const executor::ValidateReport& r, double max_median,
                                 double max_worst, double min_coverage) {
  ValidateVerdict v;
  if (max_median > 0) v.max_median_error = max_median;
  if (max_worst > 0) v.max_worst_error = max_worst;
  if (min_coverage > 0) v.min_coverage = min_coverage;
  for (const auto& p : r.points) v.verified = v.verified && p.verified;
  if (!v.verified) v.failures.push_back("a run failed to verify (see the verified column)");
  if (max_median > 0 && r.median_abs_error > max_median)
    v.failures.push_back(fmt::format("median |error| {:.1f}% exceeds --max-median-error {:.1f}%",
                                     100 * r.median_abs_error, 100 * max_median));
  if (max_worst > 0 && r.worst_abs_error > max_worst)
    v.failures.push_back(fmt::format("worst |error| {:.1f}% exceeds --max-worst-error {:.1f}%",
                                     100 * r.worst_abs_error, 100 * max_worst));
  if (min_coverage > 0 && r.coverage < min_coverage)
    v.failures.push_back(fmt::format("coverage {:.1f}% below --min-coverage {:.1f}%",
                                     100 * r.coverage, 100 * min_coverage));
  return v;
}

}  // namespace

void attach_profile(CLI::App& sub, int& exit_code) {
  struct Options {
    executor::ProfileOptions profile;
    std::vector<std::string> dtypes;
    std::string output = "device-profile.json";
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--backend", o->profile.backend,
                 "cpu (reference kernels, one thread per rank) or cuda (needs the CUDA kernels)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub.add_flag(
      "--quick", o->profile.quick,
      "Fewer shapes and repeats (about 2 s on a 2-core CPU; the full cpu profile about 35 s)");
  sub.add_option("--dtype", o->dtypes, "Storage dtypes to measure (default bf16 and fp16)")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
  sub.add_option("--head-dim", o->profile.head_dims, "Head dims to measure (default 64 and 128)")
      ->check(CLI::Range(8, 512));
  sub.add_option("-o,--output", o->output, "Where to write the DeviceProfile JSON")
      ->check(output_file())
      ->capture_default_str();
  sub.footer(
      "Measures attention forward and backward over a grid of (S_Q, S_KV), the memory stream, "
      "decode bandwidth and the transfer cost between ranks, and writes a DeviceProfile.\n"
      "Examples:\n"
      "  xring profile --backend cpu --quick -o cpu.json\n"
      "  xring plan --model tiny --device-profile cpu.json     # rates from the profile\n"
      "  xring validate --device-profile cpu.json --plot validate.svg\n"
      "Exit codes: 0 written, 2 bad input, 3 backend unavailable.");
  sub.callback([o, &exit_code] {
    for (const auto& d : o->dtypes) o->profile.dtypes.push_back(dtype_from_string(d));
    ProgressLine progress("xring profile");
    o->profile.progress = [&](const std::string& what, size_t done, size_t total) {
      progress.update(done, total, what);
    };
    DeviceProfile p = executor::profile_device(o->profile);
    write_file_atomically(o->output, to_json(p).dump(2) + "\n");
    fmt::print("xring profile: {} ({} backend, {} compute units)\n", p.device, p.backend,
               p.compute_units);
    double best = 0;
    for (const auto& a : p.attention) best = std::max(best, a.flop_per_s);
    fmt::print("  attention  {} shapes, best {}\n", p.attention.size(),
               units::format_flop_rate(best));
    if (p.hbm_bytes_per_s)
      fmt::print("  memory     {}\n", units::format_bandwidth(*p.hbm_bytes_per_s));
    if (p.decode_bytes_per_s)
      fmt::print("  decode     {} (K/V bytes at 2 per element)\n",
                 units::format_bandwidth(*p.decode_bytes_per_s));
    if (p.copy_bytes_per_s)
      fmt::print("  transfers  {} + {} per message\n", units::format_bandwidth(*p.copy_bytes_per_s),
                 units::format_time(p.copy_latency_s.value_or(0)));
    fmt::print("wrote {}\n", o->output);
    exit_code = 0;
  });
}

void attach_validate(CLI::App& sub, int& exit_code) {
  struct Options {
    executor::ValidateOptions validate;
    std::string profile;
    std::vector<std::string> shapes;
    std::string json, csv, plot;
    double max_median = 0, max_worst = 0, min_coverage = 0;
    bool update_profile = false;
    std::string residuals_to;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--device-profile", o->profile, "The DeviceProfile the predictions use")
      ->required();
  sub.add_option("--backend", o->validate.backend,
                 "cpu (ranks as threads) or cuda (ranks emulated on this GPU, each with 1/P of it)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub.add_flag("--quick", o->validate.quick, "A smaller grid (two shapes, ranks 1 and 2)");
  sub.add_option("--ranks", o->validate.ranks, "Rank counts (default 1 2 4)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--shape", o->shapes, "S_QxS_KV shapes, e.g. 256x4096 (default: a grid)");
  sub.add_option("--strategy", o->validate.strategies, "Ring strategies for P > 1")
      ->check(CLI::IsMember({"query_ring", "kv_ring"}));
  sub.add_flag("--training", o->validate.training, "Forward and backward instead of forward");
  sub.add_option("--repeat", o->validate.repeat, "Runs per point (median)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  sub.add_option("--json", o->json,
                 "Write {schema_version, command, points[], ..., passed, failures} to FILE; "
                 "--json alone (or --json -) prints it instead of the table")
      ->expected(0, 1)
      ->default_str("-")
      ->check(output_file());
  sub.add_option("--csv", o->csv, "Write the table as CSV")->check(output_file());
  sub.add_option("--plot", o->plot,
                 "Predicted vs measured as .svg, .png or .pdf (gnuplot; else the .gp script)")
      ->check(plot_file());
  sub.add_option("--max-median-error", o->max_median,
                 "Exit 1 when the median |error| exceeds this fraction (e.g. 0.10)");
  sub.add_option("--max-worst-error", o->max_worst,
                 "Exit 1 when the worst |error| exceeds this fraction (e.g. 0.25)");
  sub.add_option("--min-coverage", o->min_coverage,
                 "Exit 1 when fewer than this fraction of points fall inside their prediction "
                 "interval (e.g. 0.9)")
      ->check(finite_in(0, 1));
  auto* update = sub.add_flag(
      "--update-profile", o->update_profile,
      "Write this run's residual spread (5%/95% of measured/predicted) into the profile file, "
      "so plans with it carry measured intervals");
  sub.add_option("--residuals-to", o->residuals_to,
                 "Write the profile with this run's residual spread to FILE instead (the "
                 "validated profile is left as it is)")
      ->check(output_file())
      ->excludes(update);
  sub.footer(
      "Plans and runs a grid of shapes and rank counts with the profile's rates, and prints "
      "predicted vs measured per point, the median and the worst error, and the coverage: the "
      "fraction of points measured inside the prediction interval. Ranks are emulated on "
      "the profiled device, so each point is planned on that emulation (see docs/commands.md).\n"
      "Example:\n"
      "  xring profile --backend cpu -o cpu.json && xring validate --device-profile cpu.json "
      "--plot v.svg\n"
      "  xring validate --device-profile cpu.json --update-profile   # intervals from residuals\n"
      "Exit codes: 0 within bounds (or none given), 1 a bound exceeded or a run failed to verify, "
      "2 bad input, 3 backend unavailable.");
  sub.callback([o, &exit_code] {
    if (o->update_profile && !std::filesystem::is_regular_file(o->profile))
      throw Error("--update-profile: " + o->profile +
                  " is not a profile file; give a file, or --residuals-to FILE");
    refuse_shared_paths({{"--json", o->json},
                         {"--csv", o->csv},
                         {"--plot", o->plot},
                         plot_script_output(o->plot),
                         {"--residuals-to", o->residuals_to}},
                        {{"--device-profile", o->profile}});
    o->validate.profile = load_spec_json(SpecKind::device, o->profile);
    for (const auto& s : o->shapes) o->validate.shapes.push_back(parse_shape(s));
    ProgressLine progress("xring validate");
    o->validate.progress = [&](const std::string& what, size_t done, size_t total) {
      progress.update(done, total, what);
    };
    executor::ValidateReport r = executor::validate_predictions(o->validate);
    const ValidateVerdict verdict =
        validate_verdict(r, o->max_median, o->max_worst, o->min_coverage);
    const bool json_to_stdout = o->json == "-";
    const std::string json = validate_json(r, o->profile, verdict).dump(2) + "\n";
    // The picture first: gnuplot can fail (exit 3), and then no other output is written.
    if (!o->plot.empty()) draw_with_gnuplot(o->plot, validate_plot_script(r, o->plot));
    if (!o->json.empty() && !json_to_stdout) write_file_atomically(o->json, json);
    if (!o->csv.empty()) {
      std::string csv =
          "strategy,ranks,s_q,s_kv,predicted_s,measured_s,error,verified,predicted_low_s,"
          "predicted_high_s,inside,samples,spread_s\n";
      for (const auto& p : r.points) {
        const auto spread = half_range(p.measured_samples_s);
        csv += fmt::format("{},{},{},{},{:.9g},{:.9g},{:.6f},{},{:.9g},{:.9g},{},{},{}\n",
                           p.strategy, p.ranks, p.s_q, p.s_kv, p.predicted_s, p.measured_s, p.error,
                           p.verified, p.predicted_low_s, p.predicted_high_s, p.inside(),
                           p.measured_samples_s.size(),
                           spread ? fmt::format("{:.9g}", *spread) : std::string());
      }
      write_file_atomically(o->csv, csv);
    }
    if (json_to_stdout)
      std::fputs(json.c_str(), stdout);
    else
      print_validate_table(r, o->profile);
    write_residuals(o->update_profile ? o->profile : o->residuals_to, o->validate.profile.value, r,
                    verdict.verified, json_to_stdout ? stderr : stdout);
    if (!json_to_stdout)
      for (const auto& f : verdict.failures)
        if (f.rfind("a run failed", 0) != 0) fmt::print("FAIL: {}\n", f);
    exit_code = verdict.failures.empty() ? 0 : static_cast<int>(ExitCode::regression);
  });
}

}  // namespace xring::cli
