// `xring recommend`: the smallest / best cluster that meets a target.
#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "command_json.hpp"
#include "commands.hpp"
#include "plots.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/intervals.hpp"
#include "xring/planner/recommend.hpp"
#include "xring/planner/sweep.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {
namespace {

std::string shape(const Candidate& c) {
  return fmt::format("{} {}x{}{}", c.gpu, c.nodes, c.gpus_per_node,
                     c.kv_policy.empty() ? "" : " " + c.kv_policy);
}

/// Every shape considered; numbers a shape does not have (pruned, infeasible) are empty cells.
std::string candidates_csv(const Recommendation& rec) {
  std::string text =
      "gpu,nodes,gpus_per_node,kv_policy,gpus,evaluated,feasible,meets,strategy,"
      "throughput_per_gpu,latency_s,peak_memory_bytes_per_rank,pareto\n";
  for (const auto& c : rec.all) {
    bool pareto = false;
    for (const auto& r : rec.ranked)
      if (r.gpu == c.gpu && r.nodes == c.nodes && r.gpus_per_node == c.gpus_per_node &&
          r.kv_policy == c.kv_policy)
        pareto = r.pareto;
    const bool predicts = c.evaluated && c.plan.feasible;
    auto cell = [&](double v) { return predicts ? fmt::format("{:.6g}", v) : std::string(); };
    text +=
        fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", c.gpu, c.nodes, c.gpus_per_node,
                    c.kv_policy, c.total_gpus(), c.evaluated, c.evaluated && c.plan.feasible,
                    c.meets, c.evaluated ? strategy_label(c.plan) : "", cell(c.throughput_per_gpu),
                    cell(c.latency_s), cell(c.plan.predicted.peak_memory_bytes_per_rank), pareto);
  }
  return text;
}

/// Decode workloads: which KV policy the shapes use, and how to search the others.
void print_kv_policy_note(const Recommendation& rec, bool searched) {
  for (const auto& c : rec.all) {
    if (!c.evaluated || !c.plan.decode) continue;
    if (searched)
      fmt::print(
          "KV policy: searched (full, uniform, adaptive where the workload allows); the "
          "model prices memory and time, not the quality adaptive budgets keep\n");
    else
      fmt::print(
          "KV policy: the workload's own ({}); give --search kv_policy to compare "
          "policies\n",
          c.plan.decode->policy);
    return;
  }
}

/// Nothing meets: the shape with the smallest relative miss, each requirement it misses with
/// the bound required and the value reached.
void print_closest(const Recommendation& rec) {
  const Candidate* c = rec.closest();
  if (!c) {
    fmt::print("nothing meets every requirement (no shape could even hold the weights)\n");
    return;
  }
  fmt::print("nothing meets every requirement; the closest is {} ({} GPUs, {}):\n", shape(*c),
             c->total_gpus(), strategy_label(c->plan));
  for (const auto& m : c->misses) {
    std::string reached = m.reached ? gate::format_value(*m.reached, m.unit) : "nothing predicted";
    std::string by;
    if (m.reached && m.bound != 0)
      by =
          fmt::format(" ({:.3g}% off)", 100 * std::fabs(*m.reached - m.bound) / std::fabs(m.bound));
    fmt::print("  - {}: required {}, best reached {}{}\n", m.metric, m.requirement, reached, by);
  }
  for (const auto& f : c->failures) {
    bool shown = false;
    for (const auto& m : c->misses) shown |= f == "requirement " + m.requirement + " not met";
    if (!shown) fmt::print("  - {}\n", f);
  }
}

/// The top recommendations; the cluster and strategy columns are as wide as their longest entry.
void print_ranked(const Recommendation& rec, int top) {
  const int shown = std::min<int>(top, static_cast<int>(rec.ranked.size()));
  size_t cluster_width = 7, strategy_width = 8;
  for (int i = 0; i < shown; ++i) {
    cluster_width = std::max(cluster_width, shape(rec.ranked[i]).size());
    strategy_width = std::max(strategy_width, strategy_label(rec.ranked[i].plan).size());
  }
  fmt::print("  {:>3}  {:<{}} {:>5}  {:<{}} {:>16} {:>24} {:>12}  {}\n", "#", "cluster",
             cluster_width, "GPUs", "strategy", strategy_width, "tokens/s per GPU",
             "latency (interval)", "memory/GPU", "pareto");
  for (int i = 0; i < shown; ++i) {
    const Candidate& c = rec.ranked[i];
    fmt::print("  {:>3}  {:<{}} {:>5}  {:<{}} {:>16} {:>24} {:>12}  {}\n", i + 1, shape(c),
               cluster_width, c.total_gpus(), strategy_label(c.plan), strategy_width,
               units::format_count(c.throughput_per_gpu),
               with_interval(units::format_time(c.latency_s), c.latency_s,
                             time_interval(c.latency_s, c.plan.predicted.band)),
               units::format_bytes(c.plan.predicted.peak_memory_bytes_per_rank),
               c.pareto ? "yes" : "");
  }
}

/// A plan file `--emit-plans` writes: its path and text.
struct PlanFile {
  std::string path;
  std::string text;
};

/// The plan of each of the top `top` recommendations, as the files `--emit-plans folder`
/// writes (NN-gpu-NODESxGPUS.plan.json). Throws what planning throws; writes nothing.
std::vector<PlanFile> emitted_plans(const Recommendation& rec, const RecommendRequest& request,
                                    int top, const std::string& folder) {
  std::vector<Override> parsed;
  for (const auto& t : request.overrides) parsed.push_back(parse_override(t));
  std::vector<PlanFile> plans;
  for (int i = 0; i < std::min<int>(top, static_cast<int>(rec.ranked.size())); ++i) {
    const Candidate& c = rec.ranked[i];
    SpecJson cluster{cluster_shape(c.gpu, c.nodes, c.gpus_per_node, request.overrides),
                     "recommend:" + c.gpu};
    SpecJson model = load_spec_json(SpecKind::model, request.model);
    SpecJson workload = load_spec_json(SpecKind::workload, request.workload);
    if (!c.kv_policy.empty()) workload.value["kv_policy"] = c.kv_policy;
    apply_overrides(model, SpecKind::model, parsed);
    apply_overrides(workload, SpecKind::workload, parsed);
    Plan p = plan(inputs_from_json(model, cluster, workload, request.overrides));
    plans.push_back({fmt::format("{}/{:02d}-{}-{}x{}.plan.json", folder, i + 1, c.gpu, c.nodes,
                                 c.gpus_per_node),
                     plan_json_text(p) + "\n"});
  }
  return plans;
}

/// Writes every plan into `folder` (made if missing), all or none: when one cannot be
/// written, the plans this call wrote (and the folder, when it made it) are removed and the
/// error names the path that failed.
void write_plans(const std::string& folder, const std::vector<PlanFile>& plans) {
  std::error_code ec;
  const bool made = std::filesystem::create_directories(folder, ec);
  if (ec) throw Error("--emit-plans " + folder + ": cannot make the folder: " + ec.message());
  std::vector<std::string> written;
  try {
    for (const PlanFile& plan : plans) {
      write_file_atomically(plan.path, plan.text);
      written.push_back(plan.path);
    }
  } catch (const Error& e) {
    std::error_code ignored;
    for (const std::string& path : written) std::filesystem::remove(path, ignored);
    if (made) std::filesystem::remove(folder, ignored);
    throw Error(std::string("--emit-plans ") + e.what() + "; none of the " +
                    std::to_string(plans.size()) + " plans is left (all or none)",
                e.kind());
  }
}

}  // namespace

void attach_recommend(CLI::App& sub, int& exit_code) {
  struct Options {
    RecommendRequest request;
    std::string objective = "min_gpus";
    int top = 10;
    std::string csv, plot, emit;
    std::vector<std::string> search;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  o->request.model = kDefaultModel;
  o->request.workload = kDefaultWorkload;
  sub.add_option("-m,--model", o->request.model, "Built-in model or ModelSpec file")
      ->capture_default_str();
  sub.add_option("-w,--workload", o->request.workload, "Built-in workload or WorkloadSpec file")
      ->capture_default_str();
  sub.add_option("--gpu", o->request.gpus,
                 "GPU types to consider (built-in GPU names or GPU .json files; see xring list "
                 "gpus), repeatable");
  sub.add_option("--gpus-per-node", o->request.gpus_per_node,
                 "Node sizes to try, repeatable (default: whole systems, e.g. 8 for HGX)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--max-gpus", o->request.max_gpus, "Largest cluster to consider")
      ->capture_default_str();
  sub.add_option("--set", o->request.overrides,
                 "Override a model. or workload. field, or the links of every shape "
                 "(cluster.system=NAME, cluster.fabric=NAME), repeatable");
  sub.add_option("--require", o->request.requirements,
                 "A requirement every recommendation meets (as xring gate --require, e.g. "
                 "\"frames_per_s.low>=4\" for the pessimistic bound), repeatable");
  sub.add_option("--search", o->search,
                 "Also search this choice the workload makes: kv_policy (decode workloads: full, "
                 "uniform and adaptive budgets; by default the workload's own policy is kept, "
                 "since the model does not price the quality adaptive budgets buy)")
      ->check(CLI::IsMember({"kv_policy"}));
  sub.add_option("--objective", o->objective, "min_gpus, max_throughput_per_gpu or min_latency")
      ->capture_default_str()
      ->check(CLI::IsMember({"min_gpus", "max_throughput_per_gpu", "min_latency"}));
  sub.add_option("--top", o->top, "How many recommendations to print and emit")
      ->capture_default_str();
  sub.add_option(
         "--csv", o->csv,
         "Every shape considered, with its numbers and whether it is on the Pareto frontier")
      ->check(output_file());
  sub.add_option(
         "--plot", o->plot,
         "Throughput per GPU vs latency of the meeting shapes, frontier marked (.svg, .png or .pdf "
         "via gnuplot)")
      ->check(plot_file());
  sub.add_option("--emit-plans", o->emit,
                 "Write a ready plan file for each of the top recommendations here");
  sub.add_flag("--json", o->json,
               "Print {schema_version, command, shapes, recommendations[], closest} instead of "
               "the text (the exit code is the same)");
  sub.footer(
      "Example:\n  xring recommend --model mplug-owl3-7b --workload video-qa --gpu h100-sxm --gpu "
      "a100-80gb "
      "--max-gpus 64 --require \"frames_per_s>=2000\" --top 5 --emit-plans plans/\n"
      "  xring recommend --gpu h200 --gpu b200 --gpu mi300x\n"
      "  xring recommend --gpu l40s --gpus-per-node 4 --set cluster.fabric=roce-200\n"
      "Exit codes: 0 found, 1 nothing meets the requirements (the closest is shown), 2 bad input.");
  sub.callback([o, &exit_code] {
    if (o->top < 1) throw Error("--top must be at least 1, got " + std::to_string(o->top));
    o->request.objective = objective_from_string(o->objective);
    o->request.search_kv_policy =
        std::find(o->search.begin(), o->search.end(), "kv_policy") != o->search.end();
    refuse_shared_paths({{"--emit-plans", o->emit},
                         {"--csv", o->csv},
                         {"--plot", o->plot},
                         plot_script_output(o->plot)});
    std::error_code ec;  // a file in the folder's place fails before the search, not after
    if (!o->emit.empty() && std::filesystem::exists(o->emit, ec) &&
        !std::filesystem::is_directory(o->emit, ec))
      throw Error("--emit-plans " + o->emit + ": is a file; give a folder (made if missing)");
    auto started = std::chrono::steady_clock::now();
    Recommendation rec = recommend(o->request);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    // Planned before anything is written: planning a shape can still throw.
    const std::vector<PlanFile> plans =
        o->emit.empty() ? std::vector<PlanFile>{} : emitted_plans(rec, o->request, o->top, o->emit);
    if (!o->csv.empty()) write_file_atomically(o->csv, candidates_csv(rec));
    auto print_json = [&] {
      fmt::print("{}\n", recommend_json(rec, {o->request, o->objective, o->top, seconds}).dump(2));
    };
    if (!o->json) {
      fmt::print(
          "xring recommend: {} for workload {} ({} shapes: {} planned, {} pruned, {:.3f} s)\n",
          o->request.model, o->request.workload, rec.all.size(), rec.evaluated, rec.pruned,
          seconds);
      print_kv_policy_note(rec, o->request.search_kv_policy);
      if (rec.ranked.empty()) print_closest(rec);
    }
    if (rec.ranked.empty()) {
      if (o->json) print_json();
      exit_code = static_cast<int>(ExitCode::regression);
      return;
    }
    if (!o->json) print_ranked(rec, o->top);
    if (!o->emit.empty()) {
      write_plans(o->emit, plans);
      if (!o->json) fmt::print("wrote the top {} plans to {}\n", plans.size(), o->emit);
    }
    if (!o->plot.empty()) draw_with_gnuplot(o->plot, recommend_plot_script(rec, o->plot));
    if (o->json) print_json();
    exit_code = 0;
  });
}

}  // namespace xring::cli
