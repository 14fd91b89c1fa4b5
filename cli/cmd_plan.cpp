// `xring plan`: plan a model on a cluster for a workload; table, JSON, trace.
#include <fmt/core.h>

#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "verbosity.hpp"
#include "xring/planner/trace.hpp"

namespace xring::cli {

void attach_plan(CLI::App& sub, int& exit_code) {
  struct Options {
    SpecOptions spec;
    bool json = false;
    std::string output;
    std::string trace;
  };
  auto o = std::make_shared<Options>();
  add_spec_options(sub, o->spec);
  sub.add_flag("--json", o->json, "Print the plan as JSON instead of the table");
  sub.add_option("-o,--output", o->output, "Write the plan JSON to this file (for xring run)")
      ->check(output_file());
  sub.add_option(
         "--trace", o->trace,
         "Write the predicted per-rank schedule as a Chrome/Perfetto trace (ui.perfetto.dev)")
      ->check(output_file());
  sub.footer("With no flags it plans the built-in default (" + std::string(kDefaultModel) + " on " +
             kDefaultCluster + ", workload " + kDefaultWorkload +
             ").\nExamples:\n"
             "  xring plan --model mplug-owl3-7b --cluster a100-80gb-16 --workload video-qa\n"
             "  xring plan --set workload.frames=1024 --set cluster.inter_node.bandwidth=50GB/s\n"
             "  xring plan --workload video-qa --set workload.phase=training -o plan.json --trace "
             "plan.trace.json\n"
             "  xring plan --strategy kv_ring --ranks 8      # pin a choice to compare\n"
             "An infeasible plan is a result: exit 0 with feasible: false and the reasons.");
  sub.callback([o, &exit_code] {
    refuse_shared_paths({{"-o", o->output}, {"--trace", o->trace}});
    Inputs in = load_inputs(o->spec);
    const auto started = std::chrono::steady_clock::now();
    Plan p = plan(in, planner_options(o->spec));
    detail(fmt::format(
        "planned in {:.1f} ms; cost source {} (attention at {:.3g} of peak, GEMMs at {:.3g})",
        1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        p.cost_source.kind, p.cost_source.attention_efficiency, p.cost_source.matmul_efficiency));
    std::string text = plan_json_text(p) + "\n";
    std::vector<OutputFile> files;
    if (!o->output.empty())
      files.push_back({o->output, [&text](std::ostream& out) { out << text; }});
    TraceLayout layout;
    if (!o->trace.empty()) {
      layout = plan_trace(p);  // refuses an oversized trace before anything is written
      files.push_back({o->trace, [&](std::ostream& out) { write_trace(p, layout, out); }});
    }
    write_files_atomically(files);
    if (!o->trace.empty() && layout.steps_merged)
      std::fprintf(stderr,
                   "xring plan: %s: each layer's ring steps are one slice per rank and lane "
                   "(%lld events): step by step the trace would pass %lld MB (its "
                   "otherData.merge_note says so too)\n",
                   o->trace.c_str(), layout.events, layout.merge_above_bytes / 1000000);
    if (o->json)
      std::fputs(text.c_str(), stdout);
    else
      print_plan(p, in, stdout);
    exit_code = 0;
  });
}

}  // namespace xring::cli
