// The subcommand table of the `xring` binary and what the subcommands share.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "atomic_write.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/plan.hpp"
#include "xring/planner/planner.hpp"

namespace xring::cli {

/// One subcommand: `attach` declares its flags on `sub` and sets the callback that runs it
/// and stores its exit code in `exit_code`.
struct Subcommand {
  const char* name;
  const char* summary;
  void (*attach)(CLI::App& sub, int& exit_code);
};

void attach_plan(CLI::App& sub, int& exit_code);
void attach_explain(CLI::App& sub, int& exit_code);
void attach_list(CLI::App& sub, int& exit_code);
void attach_show(CLI::App& sub, int& exit_code);
void attach_heads(CLI::App& sub, int& exit_code);
void attach_whatif(CLI::App& sub, int& exit_code);
void attach_run(CLI::App& sub, int& exit_code);
void attach_gate(CLI::App& sub, int& exit_code);
void attach_import(CLI::App& sub, int& exit_code);
void attach_diff(CLI::App& sub, int& exit_code);
void attach_recommend(CLI::App& sub, int& exit_code);
void attach_profile(CLI::App& sub, int& exit_code);
void attach_validate(CLI::App& sub, int& exit_code);
void attach_help(CLI::App& sub, int& exit_code);
void attach_completion(CLI::App& sub, int& exit_code);

/// The topics `xring help` knows ("strategies", "exit-codes", ...).
std::vector<std::string> help_topic_names();
/// The completion script for `shell` (bash or zsh) of the command tree under `app`.
std::string completion_script(const CLI::App& app, const std::string& shell);

/// --model/--cluster/--workload/--set and the pins (--strategy, --ranks, --recompute).
struct SpecOptions {
  std::string model = kDefaultModel;
  std::string cluster = kDefaultCluster;
  std::string workload = kDefaultWorkload;
  std::vector<std::string> overrides;
  std::string strategy;
  int ranks = 0;
  bool recompute_on = false;
  bool recompute_off = false;
  std::string device_profile;  ///< --device-profile: measured rates instead of the datasheet's
};
void add_spec_options(CLI::App& app, SpecOptions& o);
Inputs load_inputs(const SpecOptions& o);
PlannerOptions planner_options(const SpecOptions& o);

/// A validator for a real-valued flag: a finite number in [min, max]. CLI11's Range and
/// PositiveNumber let "nan" through (every comparison with NaN is false).
CLI::Validator finite_in(double min, double max);

/// The name of output_file()'s validator: --quiet looks for it to tell result files.
inline constexpr const char* kOutputFileValidator = "output-file";

/// A validator for an output file flag (-o, --json, --trace, --csv, --plot, ...): the path is
/// not empty, not a directory, and its folder exists and is writable. CLI11 runs it while
/// parsing, so every output is checked before a command starts its work.
CLI::Validator output_file();

/// A validator for a picture flag (--plot): output_file() and an extension that names the
/// format (.svg, .png, .pdf); anything else is refused while parsing.
CLI::Validator plot_file();

/// The gnuplot lines that choose the terminal from `path`'s extension (svg, pngcairo,
/// pdfcairo) and set the output to it, quoted for gnuplot. Throws xring::Error for another
/// extension.
std::string gnuplot_output(const std::string& path, int width_px, int height_px);
/// `text` as a gnuplot single-quoted string.
std::string gnuplot_text(const std::string& text);

/// Writes `script` next to the picture as .gp and runs gnuplot ($XRING_GNUPLOT, else
/// `gnuplot`) without a shell, the script on its stdin; without gnuplot the script is kept and
/// the user told how to draw it. Throws xring::Error (runtime) when gnuplot fails.
void draw_with_gnuplot(const std::string& picture, const std::string& script);
/// The gnuplot script draw_with_gnuplot writes beside `picture` (PICTURE less its extension,
/// plus .gp).
std::string gnuplot_script_path(const std::string& picture);
/// The script of `--plot PICTURE` as an output for refuse_shared_paths (no path without a plot).
NamedPath plot_script_output(const std::string& picture);

/// Progress on stderr for long commands, from their first second on: a rewritten line on a
/// terminal, a line per 10% in logs when --progress asks for it; never with --quiet.
class ProgressLine {
 public:
  explicit ProgressLine(std::string command);
  void update(size_t done, size_t total, const std::string& what = "");

 private:
  std::string command_;
  bool shown_;
  bool tty_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::duration quiet_for_ = std::chrono::seconds(1);
  size_t reported_tenths_ = 0;
};

/// "unknown command "plna"; did you mean "plan"? (commands: ...)" when `word` is not one of
/// `commands` (nullopt when it is, or is an option).
std::optional<std::string> unknown_command_hint(const std::vector<std::string>& commands,
                                                const std::string& word);
/// For an argument `sub` does not know: did you mean its option, or, for a spec field's name
/// (`--frames 3600`), the --set that sets it (`--set workload.frames=3600`).
std::optional<std::string> unknown_option_hint(const CLI::App& sub,
                                               const std::vector<std::string>& args);

/// The human-readable plan: header, per-layer table, alternatives, prediction, notes.
void print_plan(const Plan& plan, const Inputs& in, std::FILE* out);

}  // namespace xring::cli
