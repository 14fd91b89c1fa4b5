// `xring run` on a streaming plan: the memory-over-time summary and its gnuplot picture.
#include "run_streaming_output.hpp"

#include <fmt/core.h>

#include <algorithm>

#include "commands.hpp"
#include "xring/planner/units.hpp"

namespace xring::cli {
namespace {

std::string time_or_never(const std::optional<double>& t) {
  return t ? "at " + units::format_time(*t) : std::string("never");
}

/// "—" for a number that was not measured.
std::string rate_or_dash(double per_s) { return per_s > 0 ? units::format_count(per_s) : "—"; }

}  // namespace

void print_streaming_run(const executor::StreamingRunReport& s, const std::string& cluster) {
  using units::format_bytes;
  using units::format_time;
  fmt::print(
      "streaming  {} over {} of {} frames x {} visual tokens into {} layers (a frame stands for "
      "{} of the stream; memory scale {:.3g})\n",
      s.policy, s.frames_executed, s.frames_planned, s.tokens_per_frame, s.layers,
      format_time(s.seconds_per_frame), s.memory_scale);
  fmt::print("  {:>10} {:>12} {:>12}\n", "t", "cache", "predicted");
  // At most 6 rows, evenly spaced, the last frame always.
  const size_t n = s.frames.size();
  const size_t rows = std::min<size_t>(6, n);
  for (size_t r = 0; r < rows; ++r) {
    const auto& f = s.frames[rows == 1 ? n - 1 : (n - 1) * (r + 1) / rows];
    fmt::print("  {:>10} {:>12} {:>12}\n", format_time(f.t_s), format_bytes(f.cache_bytes),
               format_bytes(f.predicted_cache_bytes));
  }
  fmt::print("  peak cache {} measured, {} predicted; usable {} (scaled)\n",
             format_bytes(s.peak_cache_bytes), format_bytes(s.predicted_peak_cache_bytes),
             format_bytes(s.usable_cache_bytes));
  fmt::print("  out of memory: {} (plan: {})\n", time_or_never(s.oom_at_s),
             time_or_never(s.predicted_oom_at_s));
  fmt::print(
      "  per frame {}, per query {} ({} {} x {} decode steps): {} tokens/s measured; plan "
      "{} tokens/s on {} at full size\n",
      s.frame_time_s > 0 ? format_time(s.frame_time_s) : "—",
      s.query_time_s > 0 ? format_time(s.query_time_s) : "—", s.queries,
      s.queries == 1 ? "query" : "queries", s.decode_steps,
      rate_or_dash(s.tokens_per_s), rate_or_dash(s.predicted_tokens_per_s), cluster);
}

std::string streaming_plot_script(const executor::StreamingRunReport& s, const std::string& title,
                                  const std::string& picture) {
  std::string g = "# xring run streaming plot; run: gnuplot THIS_FILE\n";
  g += gnuplot_output(picture, 900, 560);
  double top = 0;
  for (const auto& f : s.frames) top = std::max({top, f.cache_bytes, f.predicted_cache_bytes});
  // The usable memory is drawn when it is near the curves; far above them it would flatten them.
  const bool usable_shown = s.usable_cache_bytes <= 2 * top;
  const std::string subtitle =
      usable_shown ? "" : " (usable " + units::format_bytes(s.usable_cache_bytes) + ", off the chart)";
  g += "set title " + gnuplot_text(title + subtitle) + " noenhanced\n";
  g += "set xlabel 'stream time (s)'\nset ylabel 'KV cache (MiB)'\nset grid\nset key top left\n";
  g += "set xrange [0:*]\n";
  g += "$frames << EOD\n0 0 0\n";  // before the first frame the caches hold nothing
  for (const auto& f : s.frames)
    g += fmt::format("{:.9g} {:.9g} {:.9g}\n", f.t_s, f.cache_bytes / (1 << 20),
                     f.predicted_cache_bytes / (1 << 20));
  g += "EOD\n";
  if (usable_shown) top = std::max(top, s.usable_cache_bytes);
  g += fmt::format("set yrange [0:{:.9g}]\n", top * 1.1 / (1 << 20));
  if (s.predicted_oom_at_s)
    g += fmt::format(
        "set arrow from {0:.9g},graph 0 to {0:.9g},graph 1 nohead dt 3 lc rgb 'red'\n"
        "set label 'plan: out of memory' at {0:.9g},graph 0.95 right offset -0.5,0 tc rgb 'red'\n",
        *s.predicted_oom_at_s);
  g += "plot $frames using 1:2 with linespoints pt 7 ps 0.4 lc rgb '#1f77b4' title 'measured "
       "(executor allocations)', $frames using 1:3 with lines dt 2 lw 2 lc rgb '#ff7f0e' title "
       "'predicted (plan formula)'";
  if (usable_shown)
    g += fmt::format(", {:.9g} with lines lc rgb 'red' title 'usable memory (scaled)'",
                     s.usable_cache_bytes / (1 << 20));
  return g + "\n";
}

}  // namespace xring::cli
