// `xring run`: execute a plan file, verify it, report measured beside predicted.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>

#include "commands.hpp"
#include "run_streaming_output.hpp"
#include "verbosity.hpp"
#include "xring/executor/run.hpp"
#include "xring/kernels/cpu_isa.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {
namespace {

/// A FLOP rate, "—" where none was measured.
std::string flop_rate(double flop_per_s) {
  return flop_per_s > 0 ? units::format_flop_rate(flop_per_s) : "—";
}

/// Half the range of a layer's samples ("±" in the table), "—" with fewer than two.
std::string spread_of(const std::vector<double>& samples) {
  if (samples.size() < 2) return "—";
  auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  return "±" + units::format_time((*hi - *lo) / 2);
}

/// A layer's overlap of compute and transfers, "—" where it has nothing to overlap (one rank,
/// or a decode step, which moves no K/V between ranks).
std::string overlap_of(const executor::LayerReport& l) {
  if (l.ranks <= 1 || l.strategy.rfind("decode", 0) == 0) return "—";
  return fmt::format("{:.0f}%", 100 * l.overlap_efficiency);
}

/// ", 12.5 frames/s" where the workload has frames; nothing for text-only runs.
std::string frames_clause(double frames_per_s) {
  return frames_per_s > 0 ? ", " + units::format_count(frames_per_s) + " frames/s" : "";
}

void print_layer_table(const executor::RunReport& r) {
  using units::format_time;
  // The strategy column is as wide as its longest name ("decode/contiguous", "hybrid ...").
  size_t width = std::string("strategy").size();
  for (const auto& l : r.layers) width = std::max(width, l.strategy.size());
  fmt::print(
      "  {:>5}  {:<{}} {:>5} {:>16} {:>11} {:>11} {:>3} {:>11} {:>11} {:>8} {:>12} {:>11} "
      "{:>10} {:>8}\n",
      "layer", "strategy", width, "ranks", "S_Q x S_KV", "measured", "spread", "n", "compute",
      "waiting", "overlap", "achieved", "predicted", "max err", "verified");
  for (const auto& l : r.layers)
    fmt::print(
        "  {:>5}  {:<{}} {:>5} {:>16} {:>11} {:>11} {:>3} {:>11} {:>11} {:>8} {:>12} {:>11} "
        "{:>10.3g} {:>8}\n",
        l.index, l.strategy, width, l.ranks, fmt::format("{}x{}", l.s_q, l.s_kv),
        format_time(l.measured_time_s), spread_of(l.measured_samples_s),
        std::max<size_t>(1, l.measured_samples_s.size()), format_time(l.measured_compute_s),
        format_time(l.measured_comm_s), overlap_of(l), flop_rate(l.flop_per_s),
        format_time(l.predicted_time_s), l.max_abs_error, l.verified ? "yes" : "NO");
}

/// What `xring run` was given.
struct RunCommandOptions {
  std::string plan;
  executor::RunOptions run;
  std::optional<double> scale;
  std::string json;
  std::string trace;
  std::string plot;
  std::string fault;
  std::optional<int> rank, world;
  std::string rendezvous;
};

/// The flags of `xring run`, with its examples.
void add_run_options(CLI::App& sub, RunCommandOptions* o) {
  sub.add_option("plan", o->plan, "A plan file written by xring plan -o")->required();
  sub.add_option(
         "--backend", o->run.backend,
         "cpu: ranks as threads; cuda: every rank of a ring emulated on one GPU (query_ring, "
         "kv_ring, single); nccl: one process per GPU (query_ring, kv_ring; needs libnccl.so.2 and "
         "a launcher, see "
         "docs/commands.md)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda", "nccl"}));
  sub.add_option("--seed", o->run.seed, "Seed of the synthetic inputs")->capture_default_str();
  sub.add_option(
         "--scale", o->scale,
         "Multiply S_Q and S_KV by this factor in (0, 1]; required when a layer exceeds the "
         "cpu budget (never applied silently)")
      ->check(finite_in(0, 1));
  sub.add_option("--media-mask", o->run.media_mask,
                 "Flamingo-style media mask: none, same_group, up_to_group")
      ->capture_default_str()
      ->check(CLI::IsMember({"none", "same_group", "up_to_group"}));
  sub.add_option(
         "--repeat", o->run.repeat,
         "Measure every layer this many times; the report keeps the samples and uses their median "
         "(xring gate turns their spread into a noise bound)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  sub.add_option("--warmup", o->run.warmup,
                 "Unmeasured runs of every layer before the measured ones (first-touch page "
                 "faults, clock ramp-up, CUDA module loading)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100));
  sub.add_option("--timeout", o->run.timeout_s,
                 "Seconds any rank may wait for a peer; past it every rank aborts (exit 3, the "
                 "message names layer, rank, host and step)")
      ->capture_default_str()
      ->check(finite_in(0, executor::kMaxTimeoutS));
  sub.add_option("--inject-fault", o->fault,
                 "Testing the abort path: RANK:MESSAGE:fail|drop (that rank's MESSAGE-th send "
                 "fails, or is lost so its peer times out)")
      ->group("Testing");
  sub.add_option("--rank", o->rank, "nccl: this process's rank (else from mpirun/srun/torchrun)")
      ->group("Multi-process (--backend nccl)");
  sub.add_option("--world", o->world, "nccl: the number of processes")
      ->group("Multi-process (--backend nccl)");
  sub.add_option("--rendezvous", o->rendezvous,
                 "nccl: a file path every process can see, fresh for the job, where the processes "
                 "meet")
      ->group("Multi-process (--backend nccl)");
  sub.add_option("--json", o->json, "Write the run report JSON here")->check(output_file());
  sub.add_option("--trace", o->trace,
                 "Write the measured per-rank timeline (Chrome/Perfetto trace)")
      ->check(output_file());
  sub.add_option("--plot", o->plot,
                 "Streaming plans: measured vs predicted cache memory over stream time as .svg, "
                 ".png or .pdf (gnuplot; else the .gp script)")
      ->check(plot_file());
  sub.footer(
      "Examples:\n"
      "  xring plan --model tiny --cluster h100-sxm-8 -o tiny.json && xring run tiny.json\n"
      "  xring plan --set workload.phase=training -o big.json && xring run big.json --scale 0.002 "
      "--json report.json\n"
      "  xring run tiny.json --backend cuda --repeat 5   # P ranks on this GPU, vs one rank\n"
      "Profile on the GPU: nsys profile -t cuda,nvtx -o run xring run tiny.json --backend cuda\n"
      "Exit codes: 0 verified, 1 verification failed, 2 bad input, 3 runtime failure (no GPU for "
      "--backend cuda, a peer that failed or timed out).");
}

/// The verification line and the run's notes.
void print_verification(const executor::RunReport& r) {
  fmt::print("verified   {} (max abs error {:.3g}, max rel error {:.3g}, tolerance {:.3g}: {})\n",
             r.verified ? "yes" : "NO", r.max_abs_error, r.max_rel_error, r.tolerance,
             r.tolerance_rule);
  for (const auto& n : r.notes) fmt::print("  - {}\n", n);
}

/// A run of attention layers: the per-layer table, each ring against one rank, and measured
/// beside predicted for all layers.
void print_layers_run(const executor::RunReport& r, const Inputs& in) {
  using units::format_time;
  print_layer_table(r);
  for (const auto& l : r.layers)
    if (l.monolithic_time_s > 0)
      fmt::print(
          "  layer {}: ring {} vs one rank doing the same work {} (overhead {:+.1f}%); copies {} "
          "per rank, {} on {}'s links (derived); checked against the {}\n",
          l.index, format_time(l.measured_time_s), format_time(l.monolithic_time_s),
          100 * l.ring_overhead, format_time(l.measured_copy_s), format_time(l.derived_comm_s),
          in.cluster.name, l.checked_against);
  fmt::print("measured   {} for all layers, {} tokens/s{}, {}\n", format_time(r.measured_time_s),
             units::format_count(r.measured_tokens_per_s), frames_clause(r.measured_frames_per_s),
             flop_rate(r.measured_flop_per_s));
  const std::string error =
      r.measured_time_s > 0
          ? fmt::format("{:+.0f}%",
                        100 * (r.predicted_time_s - r.measured_time_s) / r.measured_time_s)
          : "—";
  fmt::print("predicted  {} on {} ({} tokens/s{}, {}; error {})\n", format_time(r.predicted_time_s),
             in.cluster.name, units::format_count(r.predicted_tokens_per_s),
             frames_clause(r.predicted_frames_per_s), flop_rate(r.predicted_flop_per_s), error);
  print_verification(r);
}

/// Reads the plan, runs it, writes the outputs (all or none) and prints the report.
int run_command(RunCommandOptions& o) {
  refuse_shared_paths(
      {{"--json", o.json}, {"--trace", o.trace}, {"--plot", o.plot}, plot_script_output(o.plot)},
      {{"the plan", o.plan}});
  Plan p = read_plan_file(o.plan);
  Inputs in = plan_inputs(p, o.plan);
  detail(fmt::format("read {} (content hash {}): {} on {}, {} cross-attention layers", o.plan,
                     content_hash(to_json(p)), in.model.name, in.cluster.name, p.layers.size()));
  if (o.scale) o.run.scale = o.scale;
  if (!o.fault.empty()) o.run.fault = executor::parse_fault(o.fault);
  if (o.run.backend == "nccl")
    o.run.launch =
        executor::launch_identity(o.rank, o.world, o.rendezvous, executor::process_environment());
  else if (o.rank || o.world || !o.rendezvous.empty())
    throw Error("--rank, --world and --rendezvous apply to --backend nccl only");
  if (!o.plot.empty() && !p.streaming)
    throw Error("--plot draws a streaming run's memory over time; " + o.plan +
                " is not a streaming plan (phase " + p.phase + ")");
  ProgressLine progress("xring run");
  o.run.progress = [&](size_t done, size_t total, const std::string& what) {
    progress.update(done, total, what);
  };
  executor::RunReport r = executor::run_plan(p, in, o.plan, o.run);
  const int verdict = r.verified ? 0 : static_cast<int>(ExitCode::regression);
  if (!r.primary) return verdict;  // nccl: rank 0 prints and writes the report for every rank
  std::string report = executor::to_json(r).dump(2) + "\n";
  std::string trace = o.trace.empty() ? "" : executor::measured_trace(r).dump() + "\n";
  std::vector<std::pair<std::string, std::string>> files;
  if (!o.json.empty()) files.push_back({o.json, report});
  if (!o.trace.empty()) files.push_back({o.trace, trace});
  write_files_atomically(files);
  // Which blocked kernels the cpu backend ran.
  const std::string isa_note =
      r.backend == "cpu" ? std::string(kernels::to_string(kernels::active_cpu_isa())) + " kernels, "
                         : "";
  fmt::print("xring run {} on the {} backend ({}seed {}, scale {:g})\n", o.plan, r.backend,
             isa_note, r.seed, r.scale);
  if (r.streaming) {
    print_streaming_run(*r.streaming, in.cluster.name);
    if (!o.plot.empty())
      draw_with_gnuplot(
          o.plot, streaming_plot_script(
                      *r.streaming, r.streaming->policy + " cache: measured vs predicted", o.plot));
    print_verification(r);
  } else {
    print_layers_run(r, in);
  }
  return verdict;
}

}  // namespace

void attach_run(CLI::App& sub, int& exit_code) {
  auto o = std::make_shared<RunCommandOptions>();
  add_run_options(sub, o.get());
  sub.callback([o, &exit_code] { exit_code = run_command(*o); });
}

}  // namespace xring::cli
