// How much the `xring` binary says besides its results: the global --quiet, --verbose and
// --progress options, and the stderr messages they govern.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace xring::cli {

enum class Verbosity {
  quiet,    ///< errors and the requested outputs only
  normal,   ///< also notices ("wrote x.svg") and progress on a terminal
  verbose,  ///< also the inputs read, defaults resolved (and where from), timings
};

Verbosity verbosity();
/// Whether progress lines are drawn: stderr is a terminal, or --progress was given; never
/// with --quiet.
bool progress_shown();

/// Adds -q/--quiet, -v/--verbose and --progress to the top-level `app`, accepted before or
/// after the subcommand, and a parse-complete step that applies them before any subcommand
/// runs: with --quiet, a command that writes its result to a file (an option checked by
/// output_file(), e.g. -o, --csv, --plot) prints no table on stdout; with --verbose, every
/// option of the chosen subcommand left at its default is listed with that default.
void add_verbosity_options(CLI::App& app);

/// A notice on stderr ("xring: wrote a.svg"): shown unless --quiet.
void notice(const std::string& line);
/// A detail on stderr, only with --verbose ("xring: model from builtin:tiny").
void detail(const std::string& line);

/// Says at the end of a command, with --verbose, how long it took ("xring: plan took 12.3 ms").
void report_elapsed(const std::string& command);

}  // namespace xring::cli
