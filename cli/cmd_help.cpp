// `xring help [TOPIC]`: short texts on the concepts the commands share, each pointing at the
// docs/ page that says more; a command's name prints that command's --help.
#include <fmt/core.h>

#include <cstdio>
#include <string>
#include <vector>

#include "commands.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::cli {
namespace {

struct HelpTopic {
  const char* name;
  const char* summary;
  const char* text;
};

const HelpTopic kTopics[] = {
    {"strategies", "How a cross-attention layer is split across GPUs (--strategy)",
     "Every cross-attention layer gets one strategy; the planner picks the fastest that fits\n"
     "(pin one with --strategy NAME, and P with --ranks N):\n"
     "  single      one GPU computes the layer; no communication\n"
     "  query_ring  LV-XAttn: the small query block rotates past the large visual K/V, which\n"
     "              stays put; sends B*ceil(S_Q/P)*H*(2*d*b+4) bytes per step\n"
     "  kv_ring     the K/V blocks rotate instead (ring attention); 2*B*ceil(S_KV/P)*H_kv*d*b\n"
     "  ulysses     all-to-all over heads (needs H divisible by P); nothing overlaps\n"
     "  hybrid      Ulysses inside a node, a query- or KV-ring across nodes (\"hybrid (2x4\n"
     "              query_ring)\": degree 2 all-to-all, 4-step ring)\n"
     "Query-ring sends fewer bytes iff S_Q/S_KV < (H_kv/H)*d*b/(d*b+2).\n"
     "See: xring explain (the numbers behind one layer's choice), docs/cost-model.md."},
    {"kv-policies", "Decode KV-cache budgets per head: full, uniform, adaptive",
     "Decode workloads size every kv head's cache (workload.kv_policy, workload.kv_budget):\n"
     "  full      every kv head keeps the whole prompt\n"
     "  uniform   every head keeps min(kv_budget, prompt) tokens\n"
     "  adaptive  AdaKV: the layer's H_kv*B' top-scoring tokens fall unevenly across heads,\n"
     "            head h keeps (1-a)*c_h + a*B' plus the window (a = kv_policy.floor: 0.2 for\n"
     "            grouped-query models, else 0.5)\n"
     "Heads are then placed on GPUs to balance their caches (FairKV). Importance profiles come\n"
     "from xring heads. The model prices memory and time, not the quality a policy keeps:\n"
     "xring recommend keeps the workload's policy unless --search kv_policy.\n"
     "See: docs/kv-policies.md."},
    {"units", "Quantities in specs and --set: bytes, bandwidth, time, FLOP/s",
     "Quantities carry their unit: \"80GiB\", \"25GB/s\", \"400Gb/s\", \"2us\", \"989TFLOP/s\".\n"
     "Decimal and binary prefixes differ (GB = 10^9 bytes, GiB = 2^30) and bits are converted\n"
     "(Gb/s = 1/8 GB/s). Plain numbers are counts.\n"
     "Tables print 3-4 significant digits with SI or binary prefixes (22.19 GiB, 9.42 ms,\n"
     "617 k) and \"—\" where a number does not apply; JSON and CSV keep SI base units (bytes,\n"
     "seconds, FLOP/s) and write null for what was not measured.\n"
     "Example: xring plan --set cluster.intra_node.bandwidth=450GB/s\n"
     "See: docs/file-formats.md."},
    {"files", "The JSON files xring reads and writes",
     "Inputs (built-in name or a .json path; xring show KIND NAME prints one to start from):\n"
     "  ModelSpec (--model), ClusterSpec (--cluster), WorkloadSpec (--workload), GpuSpec,\n"
     "  SystemSpec, FabricSpec, head profiles (xring heads), DeviceProfile (xring profile),\n"
     "  Hugging Face config.json (xring import hf)\n"
     "Outputs: plan files (xring plan -o; xring run reads them), run reports (xring run\n"
     "--json), Chrome/Perfetto traces (--trace), CSV (--csv), pictures (--plot .svg/.png/.pdf),\n"
     "gate reports (markdown, JUnit). Every output is written whole or not at all.\n"
     "Override any spec field with --set model|cluster|workload.FIELD=VALUE.\n"
     "See: docs/file-formats.md."},
    {"exit-codes", "What xring's exit status means",
     "  0  ok (an infeasible plan is a result: exit 0 with feasible: false and the reasons)\n"
     "  1  a requirement is not met: xring gate found a regression, xring recommend found no\n"
     "     shape that meets --require, xring run failed verification\n"
     "  2  bad input: a file, JSON field, flag or value is wrong; the message names it and says\n"
     "     what to do\n"
     "  3  runtime failure: no GPU for --backend cuda, a peer that failed or timed out, gnuplot\n"
     "     failing, out of memory\n"
     "See: docs/commands.md."},
    {"limits", "Bounds on every input (file sizes, counts, quantities)",
     "Every input is bounded, so a hostile or mistaken file fails fast with exit 2 naming the\n"
     "file, JSON path and allowed range:\n"
     "  JSON files at most 64 MiB, nested at most 64 deep\n"
     "  model.layers <= 100,000; heads <= 4,096; head_dim <= 1,024\n"
     "  cluster.nodes <= 65,536; gpus_per_node <= 1,024\n"
     "  workload.frames <= 2^28; visual_tokens, kv_budget <= 2^40\n"
     "  quantities: bytes and bandwidth <= 10^18, time <= 10^9 s, FLOP/s <= 10^21\n"
     "See: docs/limits.md (each limit with its test)."},
    {"output", "Quiet, verbose, progress, completion",
     "  -q, --quiet     only errors and the requested outputs: no notices, no progress, and no\n"
     "                  table when the result goes to a file (-o, --csv, --plot ...)\n"
     "  -v, --verbose   also the inputs read (origin and content hash), the defaults applied,\n"
     "                  the cost source and timings, on stderr\n"
     "  --progress      progress on stderr even when it is not a terminal\n"
     "Shell completion: source <(xring completion bash), or xring completion zsh > _xring in\n"
     "a folder of $fpath; cmake --install puts both where bash-completion and zsh look.\n"
     "See: docs/commands.md."},
};

std::vector<std::string> topic_names() {
  std::vector<std::string> names;
  for (const auto& t : kTopics) names.push_back(t.name);
  return names;
}

void print_topics(const CLI::App& app) {
  fmt::print("xring help TOPIC: short texts on what the commands share\n\ntopics:\n");
  for (const auto& t : kTopics) fmt::print("  {:<12} {}\n", t.name, t.summary);
  fmt::print("\ncommands (xring help COMMAND is xring COMMAND --help):\n ");
  for (const CLI::App* sub : app.get_subcommands({})) fmt::print(" {}", sub->get_name());
  fmt::print("\n");
}

}  // namespace

std::vector<std::string> help_topic_names() { return topic_names(); }

void attach_help(CLI::App& sub, int& exit_code) {
  auto topic = std::make_shared<std::string>();
  sub.add_option("topic", *topic, "A topic (xring help lists them) or a command's name");
  sub.footer("Example:\n  xring help strategies\n  xring help exit-codes");
  sub.callback([&sub, topic, &exit_code] {
    const CLI::App& app = *sub.get_parent();
    exit_code = 0;
    if (topic->empty()) return print_topics(app);
    for (const auto& t : kTopics)
      if (*topic == t.name) {
        fmt::print("{}\n", t.text);
        return;
      }
    for (const CLI::App* command : app.get_subcommands({}))
      if (command->get_name() == *topic) {
        std::fputs(command->help().c_str(), stdout);
        return;
      }
    std::vector<std::string> candidates = topic_names();
    for (const CLI::App* command : app.get_subcommands({}))
      candidates.push_back(command->get_name());
    auto hint = did_you_mean(*topic, candidates);
    std::string list;
    for (const auto& n : topic_names()) list += (list.empty() ? "" : ", ") + n;
    throw Error("unknown help topic \"" + quoted_excerpt(*topic) + "\"" +
                (hint ? "; did you mean \"" + *hint + "\"?" : "") + " (topics: " + list +
                "; or a command's name)");
  });
}

}  // namespace xring::cli
