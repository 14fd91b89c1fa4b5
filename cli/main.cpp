// xring: the command-line front end. Parses, dispatches to a subcommand, maps errors to exit
// codes (0 ok, 1 requirement not met, 2 bad input, 3 runtime failure).
#include <cstdio>
#include <new>
#include <string>
#include <vector>

#include "commands.hpp"
#include "verbosity.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"

namespace {

const xring::cli::Subcommand kSubcommands[] = {
    {"plan",
     "Choose how to split each cross-attention layer across GPUs and predict time and memory",
     xring::cli::attach_plan},
    {"explain",
     "Show the numbers behind one layer's choice: bytes per step, crossover, hiding threshold",
     xring::cli::attach_explain},
    {"run",
     "Execute a plan file on synthetic inputs, verify it against a reference, report measured vs "
     "predicted",
     xring::cli::attach_run},
    {"gate",
     "Fail CI when a plan or run regresses against a baseline, or misses a capacity requirement",
     xring::cli::attach_gate},
    {"whatif",
     "Sweep spec fields (frames, bandwidth, nodes, budgets...) into a table, CSV and plot",
     xring::cli::attach_whatif},
    {"heads",
     "Make head-importance profiles (synthetic, or from measured scores) for adaptive budgets",
     xring::cli::attach_heads},
    {"recommend",
     "Find the smallest or best cluster shape that meets a target, with the Pareto frontier",
     xring::cli::attach_recommend},
    {"profile", "Measure the local device's kernels and bandwidths into a DeviceProfile",
     xring::cli::attach_profile},
    {"validate", "Compare the planner's predictions with measured runs on a profiled device",
     xring::cli::attach_validate},
    {"diff", "Say which inputs and layers changed a prediction between two plan files",
     xring::cli::attach_diff},
    {"import", "Turn a Hugging Face config.json into a ModelSpec", xring::cli::attach_import},
    {"list", "List the built-in models, clusters, GPUs and workloads", xring::cli::attach_list},
    {"show", "Print a built-in spec's JSON (a starting point for your own)",
     xring::cli::attach_show},
    {"help", "Short texts on strategies, KV policies, units, files, exit codes, limits",
     xring::cli::attach_help},
    {"completion", "Print a bash or zsh completion script", xring::cli::attach_completion},
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "xring: plan distributed cross-attention for multimodal LLMs on long visual inputs.\n"
      "Start with `xring plan` (the built-in default), then `xring list` to see what is built in.",
      "xring"};
  app.set_version_flag("--version",
                       "xring " + xring::xring_version() + " (git " + xring::git_revision() + ")");
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  xring plan\n"
      "  xring plan --model mplug-owl3-7b --cluster a100-80gb-16 --workload video-qa "
      "--set workload.frames=2048\n"
      "  xring explain --model openflamingo-9b --cluster a30-8\n"
      "  xring help                  # topics: strategies, kv-policies, units, exit-codes ...\n"
      "Exit codes: 0 ok, 1 requirement not met, 2 bad input, 3 runtime failure.");
  xring::cli::remove_partial_outputs_on_signals();
  xring::cli::add_verbosity_options(app);  // before the subcommands: they inherit fallthrough
  int exit_code = 0;
  for (const auto& s : kSubcommands) s.attach(*app.add_subcommand(s.name, s.summary), exit_code);
  if (argc == 1) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  }
  // The first word that is not an option names the command (`xring -v plna`).
  int command_at = 1;
  while (command_at + 1 < argc && argv[command_at][0] == '-') ++command_at;
  std::vector<std::string> commands;
  for (const auto& s : kSubcommands) commands.push_back(s.name);
  try {
    if (auto hint = xring::cli::unknown_command_hint(commands, argv[command_at])) {
      std::fprintf(stderr, "xring: error: %s\n", hint->c_str());
      return static_cast<int>(xring::ExitCode::bad_input);
    }
    app.parse(argc, argv);
    for (const auto* sub : app.get_subcommands())
      xring::cli::report_elapsed("xring " + sub->get_name());
  } catch (const CLI::ExtrasError& e) {
    // An unknown option: say which, and what was probably meant.
    for (const auto* sub : app.get_subcommands()) {
      auto hint = xring::cli::unknown_option_hint(
          *sub, std::vector<std::string>(argv + command_at + 1, argv + argc));
      if (hint) {
        std::fprintf(stderr, "xring: error: %s\n", hint->c_str());
        return static_cast<int>(xring::ExitCode::bad_input);
      }
    }
    app.exit(e);
    return static_cast<int>(xring::ExitCode::bad_input);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : static_cast<int>(xring::ExitCode::bad_input);
  } catch (const xring::Error& e) {
    std::fprintf(stderr, "xring: error: %s\n", e.what());
    return static_cast<int>(e.kind());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "xring: error: out of memory (the inputs ask for more than this machine "
                 "has; shrink the workload, the sweep or the model)\n");
    return static_cast<int>(xring::ExitCode::runtime);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xring: internal error: %s\n", e.what());
    return static_cast<int>(xring::ExitCode::runtime);
  }
  return exit_code;
}
