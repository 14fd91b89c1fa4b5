// Shared CLI pieces: spec flags, atomic file output, and the plan table.
#include <fmt/core.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
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
  Inputs in = xring::load_inputs(o.model, o.cluster, o.workload, o.overrides);
  if (!o.device_profile.empty())
    attach_device_profile(in, load_spec_json(SpecKind::device, o.device_profile));
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

namespace {

// The temporary file being written, if any, for the signal handler to remove (Ctrl-C must not
// leave a partial output behind). Plain storage: a handler may only touch lock-free state.
char pending_tmp[4096];
volatile std::sig_atomic_t pending_set = 0;

extern "C" void remove_pending_and_die(int sig) {
  if (pending_set) ::unlink(pending_tmp);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

/// Marks `tmp` as the file to remove on a signal until the guard goes out of scope.
struct PendingFile {
  explicit PendingFile(const std::string& tmp) {
    std::snprintf(pending_tmp, sizeof pending_tmp, "%s", tmp.c_str());
    pending_set = tmp.size() < sizeof pending_tmp;
  }
  ~PendingFile() { pending_set = 0; }
};

}  // namespace

void remove_partial_outputs_on_signals() {
  std::signal(SIGINT, remove_pending_and_die);
  std::signal(SIGTERM, remove_pending_and_die);
}

void write_file_atomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  PendingFile pending(tmp);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot write the file (does its folder exist?)");
    out << text;
    out.flush();
    if (!out) {
      std::filesystem::remove(tmp);
      throw Error(path + ": writing failed (disk full?)", ExitCode::runtime);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error(path + ": cannot replace the file: " + ec.message());
  }
}

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
  fmt::print(out, "  {}, batch {}, {} text tokens + {} visual tokens ({:g} frame{})\n",
             to_string(w.phase), w.batch, w.text_tokens, visual_tokens(w, in.model),
             frames(w, in.model), frames(w, in.model) == 1 ? "" : "s");
  fmt::print(out, "feasible: {}\n", p.feasible ? "yes" : "NO");
  for (const auto& r : p.reasons) fmt::print(out, "  - {}\n", r);

  if (!p.layers.empty()) {
    fmt::print(out, "\ncross-attention layers\n");
    fmt::print(out, "  {:>5}  {:<11} {:>5} {:>5}  {:<9} {:>12} {:>12} {:>12} {:>12}\n", "layer",
               "strategy", "ranks", "steps", "recompute", "step comp", "step comm", "time/layer",
               "memory/rank");
    for (const auto& l : p.layers) {
      std::string strategy = to_string(l.strategy);
      if (l.strategy == Strategy::hybrid && l.ulysses_degree > 0)
        strategy +=
            fmt::format(" ({}x{} {})", l.ulysses_degree, l.ranks / l.ulysses_degree, l.ring_kind);
      fmt::print(out, "  {:>5}  {:<11} {:>5} {:>5}  {:<9} {:>12} {:>12} {:>12} {:>12}\n", l.index,
                 strategy, l.ranks, l.steps, l.recompute ? "yes" : "no",
                 format_time(l.step_compute_s), format_time(l.step_comm_s), format_time(l.time_s),
                 format_bytes(l.memory_bytes.total()));
    }
    const LayerPlan& l = p.layers.front();
    fmt::print(out, "  why: {}\n", l.reason);
    if (l.groups > 1)
      fmt::print(out, "  {} data-parallel groups of {} ranks, {} samples each\n", l.groups, l.ranks,
                 l.batch_per_group);
    fmt::print(out, "  alternatives{}:\n", p.layers.size() > 1 ? " (same for every layer)" : "");
    for (const auto& a : l.alternatives) {
      std::string what = to_string(a.strategy) + (a.recompute ? "+recompute" : "");
      fmt::print(out, "    {:<22} {:>4} ranks  {:>10}  {}\n", what, a.ranks,
                 a.time_s ? format_time(*a.time_s) : "-",
                 a.rejected_reason.empty() ? "chosen" : a.rejected_reason);
    }
    const MemoryBreakdown& m = l.memory_bytes;
    fmt::print(out,
               "  memory/rank: weights {}, optimizer {}, visual tokens {}, kv {}, buffers {}, "
               "saved {}, text activations {}\n",
               format_bytes(m.weights), format_bytes(m.optimizer_states),
               format_bytes(m.visual_tokens), format_bytes(m.kv), format_bytes(m.attention_buffers),
               format_bytes(m.saved_activations), format_bytes(m.text_activations));
  }

  const Predicted& pr = p.predicted;
  fmt::print(out, "\npredicted\n");
  bool decodes = p.decode.has_value() || p.streaming.has_value();
  fmt::print(out, "  {}{}\n", decodes ? "prefill time        " : "iteration time      ",
             format_time(pr.iteration_time_s));
  fmt::print(out, "    cross-attention   {}\n", format_time(pr.cross_attention_time_s));
  fmt::print(out, "    rest of model     {}  ({})\n", format_time(pr.rest_of_model_time_s),
             p.rest_of_model.note);
  fmt::print(out, "  throughput          {:.4g} tokens/s, {:.4g} frames/s\n",
             pr.throughput_tokens_per_s, pr.frames_per_s);
  fmt::print(out, "  peak memory/rank    {} of {} usable\n",
             format_bytes(pr.peak_memory_bytes_per_rank), format_bytes(c.usable_memory_bytes()));
  if (pr.decode_step_s)
    fmt::print(out, "  decode              {} per token step, {:.4g} tokens/s\n",
               format_time(*pr.decode_step_s), *pr.decode_tokens_per_s);
  if (p.decode) {
    const DecodeSection& d = *p.decode;
    fmt::print(out,
               "\ndecode: {} KV cache{}, {}-way tensor parallel x {} replica{}, {} requests each\n",
               d.policy, d.kv_budget ? fmt::format(" ({} tokens per kv head)", d.kv_budget) : "",
               d.gpus, d.replicas, d.replicas == 1 ? "" : "s", d.batch_per_replica);
    fmt::print(out, "  {:<13} {:>5} {:>12} {:>12} {:>8} {:>7} {:>12} {:>9} {:>14}\n", "placement",
               "fits", "step", "tokens/s", "gap", "copies", "peak memory", "max batch",
               "tokens/s@max");
    for (const auto& x : d.placements)
      fmt::print(out, "  {:<13} {:>5} {:>12} {:>12.4g} {:>7.1f}% {:>7} {:>12} {:>9} {:>14.4g}{}\n",
                 x.placement, x.fits ? "yes" : "no", format_time(x.step_time_s), x.tokens_per_s,
                 100 * x.gap, x.copies, format_bytes(x.peak_memory_bytes), x.max_batch,
                 x.tokens_per_s_at_max_batch, x.placement == d.chosen ? "  <- chosen" : "");
    fmt::print(out, "  gap: the slowest GPU's KV bytes per step over the lower bound total/G\n");
  }
  if (p.streaming) {
    const StreamingSection& st = *p.streaming;
    fmt::print(out, "\nstreaming: {} at {:g} frames/s ({:g} visual tokens/s) on one GPU\n",
               format_time(st.stream_seconds), st.fps, st.visual_tokens_per_s);
    fmt::print(out, "  {:<9} {:>12} {:>12} {:>14} {:>16}\n", "policy", "peak memory", "tokens/s",
               "cached tokens", "runs out after");
    for (const auto& x : st.policies)
      fmt::print(out, "  {:<9} {:>12} {:>12.4g} {:>14.4g} {:>16}{}\n", x.policy,
                 format_bytes(x.peak_memory_bytes), x.tokens_per_s, x.cached_tokens,
                 x.oom_at_s ? format_time(*x.oom_at_s) : "never",
                 x.policy == st.chosen ? "  <- workload's policy" : "");
  }
  if (!p.notes.empty()) {
    fmt::print(out, "notes\n");
    for (const auto& n : p.notes) fmt::print(out, "  - {}\n", n);
  }
}

void draw_with_gnuplot(const std::string& svg, const std::string& script) {
  const bool svg_suffix = svg.size() > 4 && svg.compare(svg.size() - 4, 4, ".svg") == 0;
  const std::string script_path = (svg_suffix ? svg.substr(0, svg.size() - 4) : svg) + ".gp";
  write_file_atomically(script_path, script);
  const char* env = std::getenv("XRING_GNUPLOT");
  const std::string gnuplot = env ? env : "gnuplot";
  if (std::system((gnuplot + " --version > /dev/null 2>&1").c_str()) != 0) {
    std::fprintf(stderr,
                 "xring: gnuplot is not installed; wrote %s (run `gnuplot %s` to draw %s)\n",
                 script_path.c_str(), script_path.c_str(), svg.c_str());
    return;
  }
  if (std::system((gnuplot + " '" + script_path + "'").c_str()) != 0)
    throw Error("gnuplot failed on " + script_path + "; the script is kept for inspection",
                ExitCode::runtime);
  std::fprintf(stderr, "xring: wrote %s (script %s)\n", svg.c_str(), script_path.c_str());
}

ProgressLine::ProgressLine(std::string command)
    : command_(std::move(command)),
      tty_(isatty(STDERR_FILENO)),
      started_(std::chrono::steady_clock::now()) {}

void ProgressLine::update(size_t done, size_t total, const std::string& what) {
  if (total == 0) return;
  if (tty_) {
    if (std::chrono::steady_clock::now() - started_ < std::chrono::seconds(1) && done < total)
      return;
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
