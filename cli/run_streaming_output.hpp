// `xring run` on a streaming plan: the memory-over-time summary and its gnuplot picture.
#pragma once

#include <string>

#include "xring/executor/run.hpp"

namespace xring::cli {

/// The streaming section of a run report as a few lines for the terminal.
void print_streaming_run(const executor::StreamingRunReport& s, const std::string& cluster);

/// A self-contained gnuplot script (data inline): measured and predicted cache bytes over
/// stream time, the usable memory (scaled) and the plan's out-of-memory time when there is one.
std::string streaming_plot_script(const executor::StreamingRunReport& s, const std::string& title,
                                  const std::string& picture);

}  // namespace xring::cli
