// Validated reading of spec JSON: every accessor names the file and JSON path in its error,
// and finish() rejects keys nobody asked for, with a did-you-mean hint.
#pragma once

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

/// Parses JSON text; a syntax error becomes an xring::Error naming `origin`, line and column.
json parse_json_text(const std::string& text, const std::string& origin);

/// Reads a JSON file; a missing or unreadable file or bad syntax becomes an xring::Error.
json read_json_file(const std::string& path);

/// The closest of `candidates` to `word` when it is close enough to be a likely typo.
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
