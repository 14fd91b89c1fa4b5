// Strict parsing and formatting of quantities with explicit units: bytes, bandwidth, time,
// FLOP rates and counts. Values in the specs are strings such as "80GiB", "25GB/s", "2us".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xring::units {

/// The kinds of quantity a spec field can hold; each has its own table of accepted units.
enum class Quantity { bytes, bandwidth, time, flop_rate, count };

/// Parses "<number><unit>" (optional space between) into SI base units: bytes, bytes/s,
/// seconds, FLOP/s, or a plain count. Decimal prefixes (GB = 1e9) and binary ones
/// (GiB = 2^30) are distinct; bits ("Gb/s", "Gbit/s") are converted to bytes.
/// Returns nullopt when the text is not a finite, non-negative number followed by a unit of
/// this quantity; a number that overflows only after scaling ("1e300PFLOP/s") is +inf, which
/// spec readers refuse as larger than largest(q). Counts also accept a bare number and the suffixes K, M, B (1e9), T.
std::optional<double> parse(std::string_view text, Quantity q);

/// The largest value a spec may give for a quantity, in SI base units: a sanity bound 10^3 to
/// 10^6 above any device today (H200: 141 GB, 4.8 TB/s, ~1 PFLOP/s dense bf16), so that
/// products of quantities stay finite (1e300 PFLOP/s would make every time 0). README
/// "Resource limits" lists them.
double largest(Quantity q);

/// The units accepted for a quantity, for error messages: e.g. "B, KB, MB, GB, TB, KiB, ...".
std::string accepted_units(Quantity q);

/// An example value for a quantity, for error messages: e.g. "80GiB".
std::string example(Quantity q);

/// Human formatting with 3 significant digits: "1.25 GiB", "25 GB/s", "3.1 ms", "312 TFLOP/s".
std::string format_bytes(double bytes);
std::string format_bandwidth(double bytes_per_s);
std::string format_time(double seconds);
std::string format_flop_rate(double flop_per_s);
/// A count or rate of things with SI prefixes: "2.36 M", "947", "12.5 k" (3-4 digits).
std::string format_count(double count);

}  // namespace xring::units
