// Shared CLI pieces: spec flags, atomic file output, and the plan table.
#include <fmt/core.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "verbosity.hpp"
#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {

void add_spec_options(CLI::App& app, SpecOptions& o) {
  app.add_option("-m,--model", o.model, "Built-in model name or a ModelSpec .json file")
      ->capture_default_str();
  app.add_option("-c,--cluster", o.cluster, "Built-in cluster name or a ClusterSpec .json file")
      ->capture_default_str();
  app.add_option("-w,--workload", o.workload, "Built-in workload name or a WorkloadSpec .json file")
      ->capture_default_str();
  app.add_option("--set", o.overrides,
                 "Override a spec field: model|cluster|workload.FIELD=VALUE, repeatable "
                 "(e.g. workload.frames=3600, cluster.inter_node.bandwidth=50GB/s)");
  app.add_option("--strategy", o.strategy,
                 "Pin the cross-attention strategy: single, kv_ring, query_ring, ulysses, hybrid");
  app.add_option("--ranks", o.ranks,
                 "Pin P, the ranks per cross-attention ring (a divisor of the GPU count)")
      ->check(CLI::PositiveNumber);
  auto* on = app.add_flag(
      "--recompute", o.recompute_on,
      "Training: force LV-XAttn activation recomputation on (default: planner decides)");
  auto* off = app.add_flag("--no-recompute", o.recompute_off, "Training: force recomputation off");
  on->excludes(off);
  app.add_option("--device-profile", o.device_profile,
                 "A DeviceProfile .json from `xring profile` (or a built-in name, see xring list): "
                 "attention rates interpolated by shape, measured GEMM rate and decode bandwidth, "
                 "instead of datasheet peaks x default efficiencies");
}

Inputs load_inputs(const SpecOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  Inputs in = xring::load_inputs(o.model, o.cluster, o.workload, o.overrides);
  if (!o.device_profile.empty())
    attach_device_profile(in, load_spec_json(SpecKind::device, o.device_profile));
  if (verbosity() == Verbosity::verbose) {
    for (const SpecJson* spec : {&in.model_json, &in.cluster_json, &in.workload_json})
      detail(fmt::format("read {} (content hash {})", spec->origin, content_hash(spec->value)));
    for (const auto& set : o.overrides) detail("applied --set " + set);
    detail(in.device_profile
               ? "rates: measured, from the device profile " + in.device_profile_json.origin
               : "rates: the GPU's datasheet peaks x its efficiency table or "
                 "defaults (docs/cost-model.md, Rates)");
    detail(fmt::format(
        "inputs read and checked in {:.1f} ms",
        1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()));
  }
  return in;
}

PlannerOptions planner_options(const SpecOptions& o) {
  PlannerOptions p;
  if (!o.strategy.empty()) p.strategy = strategy_from_string(o.strategy);
  if (o.ranks > 0) p.ranks = o.ranks;
  if (o.recompute_on) p.recompute = true;
  if (o.recompute_off) p.recompute = false;
  return p;
}

CLI::Validator finite_in(double min, double max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < min || v > max)
          return "must be a finite number in [" + fmt::format("{:g}", min) + ", " +
                 fmt::format("{:g}", max) + "], got " + text;
        return "";
      },
      "FINITE in [" + fmt::format("{:g}", min) + ", " + fmt::format("{:g}", max) + "]");
}

CLI::Validator output_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        namespace fs = std::filesystem;
        if (path.empty()) return "an output path must not be empty";
        std::error_code ec;
        if (fs::is_directory(path, ec)) return path + " is a directory; give a file path";
        // An output is written to a temporary file renamed into place: over a device, pipe or
        // link to one (/dev/null, /dev/stdout) the rename would replace the node itself.
        if (is_special_file(path))
          return path +
                 " is not a regular file (a device, pipe or socket, or a link to one); "
                 "outputs are written to a temporary file renamed into place, which "
                 "would replace it: give a file path";
        fs::path folder = fs::path(path).parent_path();
        if (folder.empty()) folder = ".";
        if (!fs::is_directory(folder, ec))
          return path + ": the folder " + folder.string() + " does not exist";
        if (::access(folder.c_str(), W_OK) != 0)
          return path + ": cannot write into the folder " + folder.string();
        return "";
      },
      "FILE", kOutputFileValidator);
}

namespace {

/// A predicted time for a table: "—" where nothing was predicted.
std::string time_or_dash(const std::optional<double>& seconds) {
  return seconds ? units::format_time(*seconds) : "—";
}

/// A rate with SI prefixes and 3-4 significant digits ("2.36 M tokens/s"), or "—".
std::string rate_or_dash(const std::optional<double>& rate, const char* unit) {
  if (!rate) return "—";
  return units::format_count(*rate) + " " + unit;
}

/// A layer's strategy as the table shows it: hybrids with their split ("hybrid (2x4 query_ring)").
std::string strategy_cell(const LayerPlan& l) {
  std::string strategy = to_string(l.strategy);
  if (l.strategy == Strategy::hybrid && l.ulysses_degree > 0)
    strategy +=
        fmt::format(" ({}x{} {})", l.ulysses_degree, l.ranks / l.ulysses_degree, l.ring_kind);
  return strategy;
}

/// "32768 text tokens + 2048 visual tokens (8 frames)"; the visual clause only where the
/// workload has visual input (a text-only workload shows "32768 text tokens").
std::string input_tokens(const WorkloadSpec& w, const ModelSpec& m) {
  std::string text = fmt::format("{} text tokens", w.text_tokens);
  const long long visual = visual_tokens(w, m);
  if (visual <= 0) return text;
  const double n = frames(w, m);
  // Visual tokens given directly (no frames): the frame count would be invented.
  if (n <= 0) return text + fmt::format(" + {} visual tokens", visual);
  return text + fmt::format(" + {} visual tokens ({:g} frame{})", visual, n, n == 1 ? "" : "s");
}

/// Where a plan's intervals come from and how wide they are, for the table's heading.
std::string interval_note(const PredictionBand& b) {
  return b.basis + "; times " + ratio_range(b.time_low_ratio, b.time_high_ratio) + ", memory " +
         ratio_range(b.memory_low_ratio, b.memory_high_ratio);
}

}  // namespace

void print_plan(const Plan& p, const Inputs& in, std::FILE* out) {
  using units::format_bytes, units::format_time;
  const auto& w = in.workload;
  const auto& c = in.cluster;
  fmt::print(out, "xring plan: {} on {} ({} x {} {}), workload {}\n", in.model.name, c.name,
             c.nodes, c.gpus_per_node, c.gpu.name, w.name);
  if (!c.system.empty() || !c.fabric.empty())
    fmt::print(out, "  {}{}{}\n", c.system.empty() ? "" : "system " + c.system,
               !c.system.empty() && !c.fabric.empty() ? ", " : "",
               c.fabric.empty() ? "" : "fabric " + c.fabric);
  if (p.streaming)  // the frames arrive over time: the streaming section says how many
    fmt::print(out, "  {}, batch {}, {} text tokens + a video stream at {:g} frames/s\n",
               to_string(w.phase), w.batch, w.text_tokens, p.streaming->fps);
  else
    fmt::print(out, "  {}, batch {}, {}\n", to_string(w.phase), w.batch, input_tokens(w, in.model));
  fmt::print(out, "feasible: {}\n", p.feasible ? "yes" : "NO");
  for (const auto& r : p.reasons) fmt::print(out, "  - {}\n", r);

  if (!p.layers.empty()) {
    fmt::print(out, "\ncross-attention layers\n");
    size_t width = 11;
    for (const auto& l : p.layers) width = std::max(width, strategy_cell(l).size());
    fmt::print(out, "  {:>5}  {:<{}} {:>5} {:>5}  {:<9} {:>12} {:>12} {:>24} {:>12}\n", "layer",
               "strategy", width, "ranks", "steps", "recompute", "step comp", "step comm",
               "time/layer", "memory/rank");
    for (const auto& l : p.layers) {
      auto predicted = [&](double seconds) {
        return time_or_dash(p.feasible ? std::optional<double>(seconds) : std::nullopt);
      };
      const auto layer_time = time_interval(
          p.feasible ? std::optional<double>(l.time_s) : std::nullopt, p.predicted.band);
      // A one-step layer has nothing to overlap: no transfer to show.
      fmt::print(out, "  {:>5}  {:<{}} {:>5} {:>5}  {:<9} {:>12} {:>12} {:>24} {:>12}\n", l.index,
                 strategy_cell(l), width, l.ranks, l.steps, l.recompute ? "yes" : "no",
                 predicted(l.step_compute_s), l.steps > 1 ? predicted(l.step_comm_s) : "—",
                 with_interval(predicted(l.time_s), l.time_s, layer_time),
                 l.memory_bytes.total() > 0 ? format_bytes(l.memory_bytes.total()) : "—");
    }
    const LayerPlan& l = p.layers.front();
    fmt::print(out, "  why: {}\n", l.reason);
    if (l.groups > 1 || l.idle_gpus > 0)
      fmt::print(out, "  {} data-parallel group{} of {} rank{}, {} sample{} each{}\n", l.groups,
                 l.groups == 1 ? "" : "s", l.ranks, l.ranks == 1 ? "" : "s", l.batch_per_group,
                 l.batch_per_group == 1 ? "" : "s",
                 l.idle_gpus > 0 ? fmt::format("; {} GPU{} idle (batch {})", l.idle_gpus,
                                               l.idle_gpus == 1 ? "" : "s", w.batch)
                                 : "");
    fmt::print(out, "  alternatives{}:\n", p.layers.size() > 1 ? " (same for every layer)" : "");
    for (const auto& a : l.alternatives) {
      std::string what = to_string(a.strategy) + (a.recompute ? "+recompute" : "");
      fmt::print(out, "    {:<22} {:>4} ranks  {:>10}  {}\n", what, a.ranks,
                 a.time_s ? format_time(*a.time_s) : "-",
                 a.rejected_reason.empty() ? "chosen" : a.rejected_reason);
    }
    std::string parts;
    for (const auto& [name, bytes] : l.memory_bytes.largest_first())
      parts += (parts.empty() ? "" : ", ") + name + " " + format_bytes(bytes);
    fmt::print(out, "  memory/rank: {}\n", parts.empty() ? "—" : parts);
  }

  const Predicted& pr = p.predicted;
  const PredictionBand& band = pr.band;
  // Each figure with its interval, "9.27 ms (8.9–9.9)"; "—" where nothing was predicted.
  auto time_cell = [&](const std::optional<double>& s) {
    return with_interval(time_or_dash(s), s.value_or(0), time_interval(s, band));
  };
  auto rate_cell = [&](const std::optional<double>& r, const char* unit) {
    return with_interval(rate_or_dash(r, unit), r.value_or(0), rate_interval(r, band));
  };
  fmt::print(out, "\npredicted (interval: {})\n", interval_note(band));
  bool decodes = p.decode.has_value() || p.streaming.has_value();
  fmt::print(out, "  {}{}\n", decodes ? "prefill time        " : "iteration time      ",
             time_cell(pr.iteration_time_s));
  fmt::print(out, "    cross-attention   {}\n",
             p.layers.empty() ? std::string("— (no cross-attention layers)")
                              : time_cell(pr.cross_attention_time_s));
  fmt::print(out, "    rest of model     {}  ({})\n", time_cell(pr.rest_of_model_time_s),
             p.rest_of_model.note);
  fmt::print(out, "  throughput          {}, {}\n",
             rate_cell(pr.throughput_tokens_per_s, "tokens/s"),
             rate_cell(pr.frames_per_s, "frames/s"));
  fmt::print(
      out, "  peak memory/rank    {} of {} usable\n",
      with_interval(format_bytes(pr.peak_memory_bytes_per_rank), pr.peak_memory_bytes_per_rank,
                    memory_interval(pr.peak_memory_bytes_per_rank, band)),
      format_bytes(c.usable_memory_bytes()));
  if (decodes)
    fmt::print(out, "  decode              {} per token step, {}\n", time_cell(pr.decode_step_s),
               rate_cell(pr.decode_tokens_per_s, "tokens/s"));
  if (p.decode) {
    const DecodeSection& d = *p.decode;
    fmt::print(out,
               "\ndecode: {} KV cache{}, {}-way tensor parallel x {} replica{}, {} requests each\n",
               d.policy, d.kv_budget ? fmt::format(" ({} tokens per kv head)", d.kv_budget) : "",
               d.gpus, d.replicas, d.replicas == 1 ? "" : "s", d.batch_per_replica);
    fmt::print(out, "  {:<13} {:>5} {:>12} {:>12} {:>8} {:>7} {:>12} {:>9} {:>14}\n", "placement",
               "fits", "step", "tokens/s", "gap", "copies", "peak memory", "max batch",
               "tokens/s@max");
    std::string not_computed;
    for (const auto& x : d.placements) {
      if (!x.not_computed.empty()) {
        fmt::print(out, "  {:<13} {:>5} {:>12} {:>12} {:>8} {:>7} {:>12} {:>9} {:>14}\n",
                   x.placement, "—", "—", "—", "—", "—", "—", "—", "—");
        not_computed += fmt::format("  {}: not computed ({})\n", x.placement, x.not_computed);
        continue;
      }
      fmt::print(out, "  {:<13} {:>5} {:>12} {:>12} {:>7.1f}% {:>7} {:>12} {:>9} {:>14}{}\n",
                 x.placement, x.fits ? "yes" : "no", format_time(x.step_time_s),
                 units::format_count(x.tokens_per_s), 100 * x.gap, x.copies,
                 format_bytes(x.peak_memory_bytes), x.max_batch,
                 units::format_count(x.tokens_per_s_at_max_batch),
                 x.placement == d.chosen ? "  <- chosen" : "");
    }
    fmt::print(out, "{}", not_computed);
    fmt::print(out, "  gap: the slowest GPU's KV bytes per step over the lower bound total/G\n");
  }
  if (p.streaming) {
    const StreamingSection& st = *p.streaming;
    fmt::print(out, "\nstreaming: {} at {:g} frames/s ({} visual tokens/s) on one GPU\n",
               format_time(st.stream_seconds), st.fps, units::format_count(st.visual_tokens_per_s));
    fmt::print(out, "  {:<9} {:>12} {:>12} {:>14} {:>16}\n", "policy", "peak memory", "tokens/s",
               "cached tokens", "runs out after");
    for (const auto& x : st.policies)
      fmt::print(out, "  {:<9} {:>12} {:>12} {:>14} {:>16}{}\n", x.policy,
                 format_bytes(x.peak_memory_bytes), units::format_count(x.tokens_per_s),
                 units::format_count(x.cached_tokens),
                 x.oom_at_s ? format_time(*x.oom_at_s) : "never",
                 x.policy == st.chosen ? "  <- workload's policy" : "");
  }
  if (!p.notes.empty()) {
    fmt::print(out, "notes\n");
    for (const auto& n : p.notes) fmt::print(out, "  - {}\n", n);
  }
}

namespace {

/// The plot's extension (".svg", ".png", ".pdf") or "" when it has none of them.
std::string plot_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".svg" || ext == ".png" || ext == ".pdf" ? ext : "";
}

/// A gnuplot single-quoted string: a quote inside is written twice.
std::string gnuplot_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

/// Runs `program` with no shell, `input` on its stdin; returns its exit status (127: not found).
int run_with_stdin(const std::string& program, const std::string& input) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(fds[0], STDIN_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    char* argv[] = {const_cast<char*>(program.c_str()), nullptr};
    ::execvp(argv[0], argv);
    ::_exit(127);
  }
  ::close(fds[0]);
  std::signal(SIGPIPE, SIG_IGN);  // gnuplot missing or failing early must not kill xring
  size_t written = 0;
  while (written < input.size()) {
    ssize_t n = ::write(fds[1], input.data() + written, input.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  ::close(fds[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

CLI::Validator plot_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        if (plot_extension(path).empty())
          return path +
                 ": the picture's format follows its extension: give a .svg, .png or .pdf path";
        return output_file()(path);
      },
      "FILE.svg|.png|.pdf", kOutputFileValidator);
}

std::string gnuplot_output(const std::string& path, int width_px, int height_px) {
  const std::string ext = plot_extension(path);
  std::string terminal;
  if (ext == ".svg")
    terminal = fmt::format("svg size {},{} dynamic background rgb 'white'", width_px, height_px);
  else if (ext == ".png")
    terminal = fmt::format("pngcairo size {},{} background rgb 'white'", width_px, height_px);
  else if (ext == ".pdf")  // inches at 100 px each
    terminal = fmt::format("pdfcairo size {:g}in,{:g}in", width_px / 100.0, height_px / 100.0);
  else
    throw Error(path +
                ": the picture's format follows its extension: give a .svg, .png or .pdf "
                "path");
  return "set terminal " + terminal + "\nset output " + gnuplot_quoted(path) + "\n";
}

std::string gnuplot_text(const std::string& text) { return gnuplot_quoted(text); }

std::string gnuplot_script_path(const std::string& picture) {
  const std::string ext = plot_extension(picture);
  return (ext.empty() ? picture : picture.substr(0, picture.size() - ext.size())) + ".gp";
}

NamedPath plot_script_output(const std::string& picture) {
  return {"--plot's gnuplot script", picture.empty() ? "" : gnuplot_script_path(picture)};
}

void draw_with_gnuplot(const std::string& picture, const std::string& script) {
  const std::string script_path = gnuplot_script_path(picture);
  write_file_atomically(script_path, script);
  const char* env = std::getenv("XRING_GNUPLOT");
  const std::string gnuplot = env ? env : "gnuplot";
  const int status = run_with_stdin(gnuplot, script);
  if (status == 127) {
    std::fprintf(stderr,
                 "xring: gnuplot is not installed; wrote %s (run `gnuplot %s` to draw %s)\n",
                 script_path.c_str(), script_path.c_str(), picture.c_str());
    return;
  }
  if (status != 0)
    throw Error("gnuplot failed on " + script_path + "; the script is kept for inspection",
                ExitCode::runtime);
  notice("xring: wrote " + picture + " (script " + script_path + ")");
}

ProgressLine::ProgressLine(std::string command)
    : command_(std::move(command)),
      shown_(progress_shown()),
      tty_(isatty(STDERR_FILENO)),
      started_(std::chrono::steady_clock::now()) {
  // Test hook (tests/test_cli_ergonomics.cpp): XRING_TEST_PROGRESS_AFTER_MS=0 draws progress
  // from the start, so a test need not run for a second.
  if (const char* ms = std::getenv("XRING_TEST_PROGRESS_AFTER_MS"))
    quiet_for_ = std::chrono::milliseconds(std::atoi(ms));
}

void ProgressLine::update(size_t done, size_t total, const std::string& what) {
  if (total == 0 || !shown_) return;
  // Commands that finish within a second say nothing: progress is for waits a user notices.
  if (std::chrono::steady_clock::now() - started_ < quiet_for_) return;
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / total);
    std::fprintf(stderr, "\r%s [%s%s] %zu/%zu %-40.40s", command_.c_str(),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(), done,
                 total, what.c_str());
    if (done == total) std::fputc('\n', stderr);
  } else if (done * 10 / total > reported_tenths_) {
    reported_tenths_ = done * 10 / total;
    std::fprintf(stderr, "%s: %zu/%zu %s\n", command_.c_str(), done, total, what.c_str());
  }
}

}  // namespace xring::cli
