// Unit tables and the strict "<number><unit>" parser.
#include "xring/planner/units.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace xring::units {
namespace {

struct Unit {
  std::string_view name;
  double scale;
};

constexpr double kKi = 1024.0;

const std::vector<Unit>& table(Quantity q) {
  static const std::vector<Unit> bytes = {{"B", 1},
                                          {"KB", 1e3},
                                          {"MB", 1e6},
                                          {"GB", 1e9},
                                          {"TB", 1e12},
                                          {"KiB", kKi},
                                          {"MiB", kKi * kKi},
                                          {"GiB", kKi * kKi * kKi},
                                          {"TiB", kKi * kKi * kKi * kKi}};
  static const std::vector<Unit> bandwidth = {
      {"B/s", 1},          {"KB/s", 1e3},        {"MB/s", 1e6},        {"GB/s", 1e9},
      {"TB/s", 1e12},      {"KiB/s", kKi},       {"MiB/s", kKi * kKi}, {"GiB/s", kKi * kKi * kKi},
      {"Mb/s", 1e6 / 8},   {"Gb/s", 1e9 / 8},    {"Tb/s", 1e12 / 8},   {"Mbit/s", 1e6 / 8},
      {"Gbit/s", 1e9 / 8}, {"Tbit/s", 1e12 / 8}, {"Gbps", 1e9 / 8}};
  static const std::vector<Unit> time = {{"ns", 1e-9}, {"us", 1e-6}, {"µs", 1e-6}, {"ms", 1e-3},
                                         {"s", 1},     {"min", 60},  {"h", 3600}};
  static const std::vector<Unit> flop_rate = {{"GFLOP/s", 1e9},  {"TFLOP/s", 1e12},
                                              {"PFLOP/s", 1e15}, {"GFLOPS", 1e9},
                                              {"TFLOPS", 1e12},  {"PFLOPS", 1e15}};
  static const std::vector<Unit> count = {{"", 1}, {"K", 1e3}, {"M", 1e6}, {"B", 1e9}, {"T", 1e12}};
  switch (q) {
    case Quantity::bytes:
      return bytes;
    case Quantity::bandwidth:
      return bandwidth;
    case Quantity::time:
      return time;
    case Quantity::flop_rate:
      return flop_rate;
    case Quantity::count:
      return count;
  }
  return count;
}

std::string with_3_digits(double v, std::string_view unit) {
  char buf[64];
  if (v != 0 && std::fabs(v) < 10)
    std::snprintf(buf, sizeof buf, "%.3g %.*s", v, static_cast<int>(unit.size()), unit.data());
  else
    std::snprintf(buf, sizeof buf, "%.4g %.*s", v, static_cast<int>(unit.size()), unit.data());
  return buf;
}

std::string scaled(double v, const std::array<std::pair<double, std::string_view>, 5>& steps) {
  if (v == 0)  // "0 s", not "0 ps": zero in the base unit
    for (const auto& [scale, name] : steps)
      if (scale == 1) return with_3_digits(0, name);
  for (const auto& [scale, name] : steps)
    if (std::fabs(v) >= scale) return with_3_digits(v / scale, name);
  return with_3_digits(v / steps.back().first, steps.back().second);
}

}  // namespace

std::optional<double> parse(std::string_view text, Quantity q) {
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) ||
                               text[end] == '.' || text[end] == 'e' || text[end] == 'E' ||
                               ((text[end] == '+' || text[end] == '-') && end > 0 &&
                                (text[end - 1] == 'e' || text[end - 1] == 'E'))))
    ++end;
  // An 'e' followed by a non-digit belongs to the unit (no unit starts with 'e' today, but a
  // number must end in a digit or '.').
  while (end > 0 && (text[end - 1] == 'e' || text[end - 1] == 'E' || text[end - 1] == '+' ||
                     text[end - 1] == '-'))
    --end;
  if (end == 0) return std::nullopt;
  double value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, value);
  if (ec != std::errc() || ptr != text.data() + end || !std::isfinite(value) || value < 0)
    return std::nullopt;
  std::string_view unit = text.substr(end);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  for (const Unit& u : table(q))
    if (u.name == unit) return value * u.scale;  // may overflow to +inf: see largest()
  return std::nullopt;
}

double largest(Quantity q) {
  switch (q) {
    case Quantity::bytes:
      return 1e18;  // 1 EB per GPU or node: ~10^7 x an H200's 141 GB
    case Quantity::bandwidth:
      return 1e18;  // 1 EB/s: ~10^5 x HBM3e's 4.8 TB/s
    case Quantity::time:
      return 1e9;  // ~32 years: any latency or duration a plan can mean
    case Quantity::flop_rate:
      return 1e21;  // 1 ZFLOP/s per GPU: ~10^6 x an H100's dense bf16 peak
    case Quantity::count:
      return 1e18;  // parameters: ~10^6 x the largest published models (~10^12)
  }
  return 1e18;
}

std::string accepted_units(Quantity q) {
  std::string out;
  for (const Unit& u : table(q)) {
    if (u.name.empty()) continue;
    if (!out.empty()) out += ", ";
    out += u.name;
  }
  return q == Quantity::count ? "none, " + out : out;
}

std::string example(Quantity q) {
  switch (q) {
    case Quantity::bytes:
      return "\"80GiB\"";
    case Quantity::bandwidth:
      return "\"25GB/s\"";
    case Quantity::time:
      return "\"2us\"";
    case Quantity::flop_rate:
      return "\"989TFLOP/s\"";
    case Quantity::count:
      return "\"10.6B\" or 10600000000";
  }
  return "";
}

std::string format_bytes(double bytes) {
  return scaled(bytes, {{{kKi * kKi * kKi * kKi, "TiB"},
                         {kKi * kKi * kKi, "GiB"},
                         {kKi * kKi, "MiB"},
                         {kKi, "KiB"},
                         {1, "B"}}});
}

std::string format_bandwidth(double bytes_per_s) {
  return scaled(bytes_per_s,
                {{{1e12, "TB/s"}, {1e9, "GB/s"}, {1e6, "MB/s"}, {1e3, "KB/s"}, {1, "B/s"}}});
}

std::string format_time(double seconds) {
  return scaled(seconds, {{{1, "s"}, {1e-3, "ms"}, {1e-6, "us"}, {1e-9, "ns"}, {1e-12, "ps"}}});
}

std::string format_flop_rate(double flop_per_s) {
  return scaled(
      flop_per_s,
      {{{1e15, "PFLOP/s"}, {1e12, "TFLOP/s"}, {1e9, "GFLOP/s"}, {1e6, "MFLOP/s"}, {1, "FLOP/s"}}});
}

std::string format_count(double count) {
  std::string text =
      scaled(count, {{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}}});
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

}  // namespace xring::units
