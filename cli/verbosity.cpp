// The global --quiet, --verbose and --progress options and the stderr messages they govern.
#include "verbosity.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "commands.hpp"

namespace xring::cli {
namespace {

Verbosity current = Verbosity::normal;
bool progress_forced = false;
const auto process_started = std::chrono::steady_clock::now();

/// Whether `opt` names a file the command writes (it carries output_file()'s validator).
bool is_output_file(CLI::Option& opt) {
  try {
    opt.get_validator(kOutputFileValidator);
    return true;
  } catch (const CLI::OptionNotFound&) {
    return false;
  }
}

/// --quiet: a command whose result goes to a file prints no table. Its stdout still carries
/// what was asked for on stdout (a --json flag, as `plan --json`).
void silence_stdout_when_writing_files(CLI::App& sub) {
  bool writes_file = false, stdout_asked = false;
  for (CLI::Option* opt : sub.get_options()) {
    if (opt->count() == 0) continue;
    if (is_output_file(*opt)) writes_file = true;
    if (opt->get_expected_max() == 0 && opt->check_lname("json")) stdout_asked = true;
  }
  if (!writes_file || stdout_asked) return;
  std::fflush(stdout);
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDOUT_FILENO);
    ::close(null_fd);
  }
}

/// --verbose: every option of `sub` the user left at a default, and that default.
void list_defaults(const CLI::App& sub) {
  for (const CLI::Option* opt : sub.get_options()) {
    if (opt->count() > 0 || opt->get_default_str().empty() || opt->get_lnames().empty()) continue;
    detail(fmt::format("{} --{} = {} (the built-in default; --help lists it)", sub.get_name(),
                       opt->get_lnames().front(), opt->get_default_str()));
  }
}

/// The chosen subcommand and its chosen subcommands (`heads synth`, `import hf`).
void apply_to_chosen_commands(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    if (current == Verbosity::quiet) silence_stdout_when_writing_files(*sub);
    if (current == Verbosity::verbose) list_defaults(*sub);
    apply_to_chosen_commands(*sub);
  }
}

}  // namespace

Verbosity verbosity() { return current; }

bool progress_shown() {
  if (current == Verbosity::quiet) return false;
  return progress_forced || ::isatty(STDERR_FILENO);
}

void add_verbosity_options(CLI::App& app) {
  auto* quiet = app.add_flag_callback(
      "-q,--quiet", [] { current = Verbosity::quiet; },
      "Print only errors and the requested outputs (no table when the result goes to a file, no "
      "notices, no progress)");
  auto* verbose = app.add_flag_callback(
      "-v,--verbose", [] { current = Verbosity::verbose; },
      "Also say on stderr which inputs were read, which defaults applied and from where, and how "
      "long each step took");
  quiet->excludes(verbose);
  app.add_flag_callback(
      "--progress", [] { progress_forced = true; },
      "Show progress on stderr even when it is not a terminal (a line per 10%; a long-running "
      "command's progress is drawn on a terminal anyway)");
  // Given after the subcommand (`xring plan --quiet`), the subcommand hands them up here.
  app.fallthrough();
  app.parse_complete_callback([&app] { apply_to_chosen_commands(app); });
}

void notice(const std::string& line) {
  if (current != Verbosity::quiet) std::fprintf(stderr, "%s\n", line.c_str());
}

void detail(const std::string& line) {
  if (current == Verbosity::verbose) std::fprintf(stderr, "xring: %s\n", line.c_str());
}

void report_elapsed(const std::string& command) {
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - process_started).count();
  detail(fmt::format("{} took {:.1f} ms in all", command, 1e3 * s));
}

}  // namespace xring::cli
