// Validated reading of spec JSON: every accessor names the file and JSON path in its error,
// and finish() rejects keys nobody asked for, with a did-you-mean hint.
#pragma once

#include <climits>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "xring/planner/units.hpp"

namespace xring {

using nlohmann::json;

/// Deepest nesting of objects and arrays any input may have (the top-level object is depth 1).
/// xring's own files nest at most 6 deep; the limit keeps every recursive copy and dump of a
/// parsed document far from the stack's end (docs/file-formats.md "Resource limits").
constexpr int kMaxJsonDepth = 64;
/// Largest JSON file read (docs/file-formats.md "Resource limits"): a plan of a 1,000-layer model is ~2 MiB.
constexpr long long kMaxJsonFileBytes = 64LL << 20;
/// Longest excerpt of an input value or name that an error message quotes.
constexpr size_t kMaxQuotedChars = 80;

/// Parses JSON text; a syntax error becomes an xring::Error naming `origin`, line and column;
/// nesting beyond kMaxJsonDepth and numbers outside the double range name the JSON path.
json parse_json_text(const std::string& text, const std::string& origin);

/// A command-line value (`--set`, `--vary`): its JSON reading, or the text as a string when it
/// is not JSON; nesting and number range are checked as in parse_json_text.
json parse_json_or_string(const std::string& text, const std::string& origin);

/// Reads a JSON file; a missing or unreadable file, a directory or device, a file over
/// kMaxJsonFileBytes or bad syntax becomes an xring::Error.
json read_json_file(const std::string& path);

/// `text` cut to kMaxQuotedChars (marked with "…") for quoting input in a message.
std::string quoted_excerpt(const std::string& text);

/// A description of a JSON value for a message ("the string \"abc\"", "an array"); long
/// values are cut to kMaxQuotedChars.
std::string describe_json_value(const json& v);

/// The one candidate that `word` (4 characters or more) is the beginning of, else the closest
/// of `candidates` to `word` when it is close enough to be a likely typo.
std::optional<std::string> did_you_mean(const std::string& word,
                                        const std::vector<std::string>& candidates);

/// Reads one JSON object. Construct with the file (or builtin name) it came from and the path
/// of the object inside it; every accessor records its key as known.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string origin, std::string path);

  bool has(const std::string& key) const;
  std::string string(const std::string& key);
  std::optional<std::string> optional_string(const std::string& key);
  /// An integer in [min, max]; rejects fractions, strings and booleans.
  int64_t integer(const std::string& key, int64_t min, int64_t max = INT64_MAX);
  std::optional<int64_t> optional_integer(const std::string& key, int64_t min,
                                          int64_t max = INT64_MAX);
  /// An integer in [min, max] that fits an int: every `int` field reads through this, so no
  /// value wraps on the way in (4294967296 is an error, not 0).
  int int32(const std::string& key, int min, int max = INT_MAX);
  std::optional<int> optional_int32(const std::string& key, int min, int max = INT_MAX);
  /// A plain number in [min, max].
  double number(const std::string& key, double min, double max);
  std::optional<double> optional_number(const std::string& key, double min, double max);
  /// A quantity with an explicit unit ("25GB/s"); a bare number is rejected, except for counts.
  /// `min_exclusive` rejects zero.
  double quantity(const std::string& key, units::Quantity q, bool min_exclusive = true);
  std::optional<double> optional_quantity(const std::string& key, units::Quantity q,
                                          bool min_exclusive = true);
  std::vector<int64_t> integer_list(const std::string& key, int64_t min, int64_t max);
  /// One of `choices`; the error lists them.
  std::string choice(const std::string& key, const std::vector<std::string>& choices);
  std::optional<std::string> optional_choice(const std::string& key,
                                             const std::vector<std::string>& choices);
  /// A nested object, read by a reader of its own.
  ObjectReader object(const std::string& key);
  /// The raw value, for fields that take several forms (e.g. a name or an object).
  const json& raw(const std::string& key);

  /// Marks a key as known without reading it.
  void allow(const std::string& key) { known_.insert(key); }
  /// Rejects keys that no accessor asked for. Call after reading every field.
  void finish() const;

  /// An xring::Error for `key` in this object with `rule` as the explanation.
  [[noreturn]] void fail(const std::string& key, const std::string& rule) const;
  std::string path_of(const std::string& key) const;
  const std::string& origin() const { return origin_; }

 private:
  const json& require(const std::string& key);
  const json* find(const std::string& key);

  const json& object_;
  std::string origin_;
  std::string path_;
  std::set<std::string> known_;
};

}  // namespace xring
