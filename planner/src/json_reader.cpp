// Validated JSON object reading with file + path in every error.
#include "xring/planner/json_reader.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "xring/planner/error.hpp"

namespace xring {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string type_name(const json& v) { return describe_json_value(v); }

/// Tracks where the parser is (the JSON path of the value being read) and refuses nesting
/// beyond kMaxJsonDepth while the document is read, before anything recurses over it.
class ParsePosition {
 public:
  explicit ParsePosition(const std::string& origin) : origin_(origin) {}

  bool on_event(json::parse_event_t event, const json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (frames_.size() + 1 > static_cast<size_t>(kMaxJsonDepth))
          throw Error(origin_ + ": at \"" + path() + "\": nested more than " +
                      std::to_string(kMaxJsonDepth) +
                      " objects/arrays deep (the limit; xring's inputs need far fewer)");
        frames_.push_back({event == json::parse_event_t::array_start, "", 0});
        break;
      case json::parse_event_t::key:
        frames_.back().key = parsed.get<std::string>();
        break;
      case json::parse_event_t::value:
        next_element();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        next_element();
        break;
    }
    return true;
  }

  /// The path of the value being parsed: "layers[3].ranks", "(top level)" outside any object.
  std::string path() const {
    std::string out;
    for (const auto& f : frames_)
      out += f.array ? "[" + std::to_string(f.index) + "]"
                     : (out.empty() ? "" : ".") + quoted_excerpt(f.key);
    return out.empty() ? "(top level)" : out;
  }

 private:
  struct Frame {
    bool array;
    std::string key;
    size_t index;
  };
  void next_element() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  const std::string& origin_;
  std::vector<Frame> frames_;
};

/// Whether `v` holds a whole number; stores it in `out`, clamped to the int64 range.
bool whole_number(const json& v, int64_t& out) {
  if (v.is_number_unsigned()) {
    out = static_cast<int64_t>(std::min<uint64_t>(v.get<uint64_t>(), INT64_MAX));
    return true;
  }
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float() && std::nearbyint(v.get<double>()) == v.get<double>() &&
      std::fabs(v.get<double>()) < 9e15) {
    out = static_cast<int64_t>(v.get<double>());
    return true;
  }
  return false;
}

std::string range_rule(int64_t min, int64_t max) {
  return max == INT64_MAX ? "at least " + std::to_string(min)
                          : "between " + std::to_string(min) + " and " + std::to_string(max);
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string quoted_excerpt(const std::string& text) {
  if (text.size() <= kMaxQuotedChars) return text;
  size_t cut = kMaxQuotedChars;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return text.substr(0, cut) + "… (" + std::to_string(text.size()) + " bytes)";
}

std::string describe_json_value(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "the number " + v.dump();
  if (v.is_string())
    return "the string \"" + quoted_excerpt(v.get_ref<const std::string&>()) + "\"";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

namespace {

/// The parsed document, or nullopt for a syntax error when `syntax_error_throws` is false.
std::optional<json> parse_with_limits(const std::string& text, const std::string& origin,
                                      bool syntax_error_throws) {
  ParsePosition position(origin);
  try {
    return json::parse(text, [&position](int, json::parse_event_t event, json& parsed) {
      return position.on_event(event, parsed);
    });
  } catch (const json::out_of_range& e) {
    throw Error(origin + ": at \"" + position.path() +
                "\": a number outside the range of a double (about ±1.8e308); write a finite "
                "number");
  } catch (const json::parse_error& e) {
    if (!syntax_error_throws) return std::nullopt;
    // nlohmann reports a byte offset; turn it into line:column for people.
    size_t line = 1, column = 1;
    for (size_t i = 0; i + 1 < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    auto colon = what.rfind(": ");
    throw Error(origin + ":" + std::to_string(line) + ":" + std::to_string(column) +
                ": not valid JSON (" +
                (colon == std::string::npos ? what : what.substr(colon + 2)) + ")");
  }
}

}  // namespace

json parse_json_text(const std::string& text, const std::string& origin) {
  return *parse_with_limits(text, origin, true);
}

json parse_json_or_string(const std::string& text, const std::string& origin) {
  return parse_with_limits(text, origin, false).value_or(json(text));
}

json read_json_file(const std::string& path) {
  const std::string shown = quoted_excerpt(path);
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error || !std::filesystem::exists(status))
    throw Error(shown + ": cannot open the file (" +
                (error ? error.message() : std::string("no such file")) +
                "; does it exist and is it readable?)");
  if (std::filesystem::is_directory(status))
    throw Error(shown + ": is a directory; give the path of a .json file");
  if (std::filesystem::is_character_file(status) || std::filesystem::is_block_file(status) ||
      std::filesystem::is_socket(status))
    throw Error(shown + ": is a device or socket, not a file; give the path of a .json file");
  const std::string limit = std::to_string(kMaxJsonFileBytes >> 20) + " MiB";
  if (std::filesystem::is_regular_file(status) &&
      std::filesystem::file_size(path, error) > static_cast<uintmax_t>(kMaxJsonFileBytes))
    throw Error(shown + ": larger than " + limit + ", the limit for a JSON input");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(shown + ": cannot open the file (is it readable?)");
  // In chunks, stopping once past the limit: pipes (e.g. <(...)) have no size up front, and a
  // buffer of the limit's size (64 MiB, zeroed) cost every file read tens of milliseconds.
  std::string text;
  if (const auto size = std::filesystem::file_size(path, error);
      !error && size <= static_cast<uintmax_t>(kMaxJsonFileBytes))
    text.reserve(static_cast<size_t>(size));
  std::array<char, 1 << 16> chunk;
  while (in && text.size() <= static_cast<size_t>(kMaxJsonFileBytes)) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    text.append(chunk.data(), static_cast<size_t>(in.gcount()));
  }
  if (text.size() > static_cast<size_t>(kMaxJsonFileBytes))
    throw Error(shown + ": larger than " + limit + ", the limit for a JSON input");
  if (in.bad()) throw Error(shown + ": cannot read the file (an I/O error)");
  return parse_json_text(text, shown);
}

std::optional<std::string> did_you_mean(const std::string& word,
                                        const std::vector<std::string>& candidates) {
  // A name cut short ("llama-3.2-11b" for "llama-3.2-11b-vision"): the one candidate it begins.
  std::optional<std::string> begun;
  int begins = 0;
  for (const auto& c : candidates)
    if (word.size() >= 4 && c.size() > word.size() && c.compare(0, word.size(), word) == 0) {
      begun = c;
      ++begins;
    }
  if (begins == 1) return begun;
  std::optional<std::string> best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

ObjectReader::ObjectReader(const json& object, std::string origin, std::string path)
    : object_(object), origin_(std::move(origin)), path_(std::move(path)) {
  if (!object_.is_object())
    throw Error(origin_ + ": at \"" + (path_.empty() ? "(top level)" : path_) +
                "\": must be a JSON object, got " + type_name(object_));
}

std::string ObjectReader::path_of(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void ObjectReader::fail(const std::string& key, const std::string& rule) const {
  throw Error(origin_ + ": at \"" + path_of(quoted_excerpt(key)) + "\": " + rule);
}

bool ObjectReader::has(const std::string& key) const { return object_.contains(key); }

const json* ObjectReader::find(const std::string& key) {
  known_.insert(key);
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

const json& ObjectReader::require(const std::string& key) {
  const json* v = find(key);
  if (!v) {
    // A missing field next to an unknown one spelled like it is a typo: name the typo.
    for (const auto& [other, value] : object_.items())
      if (!known_.count(other) && did_you_mean(other, {key}))
        fail(other, "unknown field; did you mean \"" + key + "\"? (\"" + key + "\" is required)");
    fail(key, "required field is missing");
  }
  return *v;
}

const json& ObjectReader::raw(const std::string& key) { return require(key); }

std::string ObjectReader::string(const std::string& key) {
  const json& v = require(key);
  if (!v.is_string()) fail(key, "must be a string, got " + type_name(v));
  if (v.get_ref<const std::string&>().empty()) fail(key, "must not be empty");
  return v.get<std::string>();
}

std::optional<std::string> ObjectReader::optional_string(const std::string& key) {
  if (!find(key)) return std::nullopt;
  return string(key);
}

int64_t ObjectReader::integer(const std::string& key, int64_t min, int64_t max) {
  const json& v = require(key);
  int64_t n = 0;
  if (!whole_number(v, n)) fail(key, "must be a whole number, got " + type_name(v));
  if (n < min || n > max) fail(key, "must be " + range_rule(min, max) + ", got " + v.dump());
  return n;
}

std::optional<int64_t> ObjectReader::optional_integer(const std::string& key, int64_t min,
                                                      int64_t max) {
  if (!find(key)) return std::nullopt;
  return integer(key, min, max);
}

int ObjectReader::int32(const std::string& key, int min, int max) {
  return static_cast<int>(integer(key, min, max));
}

std::optional<int> ObjectReader::optional_int32(const std::string& key, int min, int max) {
  if (!find(key)) return std::nullopt;
  return int32(key, min, max);
}

double ObjectReader::number(const std::string& key, double min, double max) {
  const json& v = require(key);
  if (!v.is_number()) fail(key, "must be a number, got " + type_name(v));
  double x = v.get<double>();
  if (!(x >= min && x <= max)) {
    std::ostringstream rule;
    rule << "must be between " << min << " and " << max << ", got " << x;
    fail(key, rule.str());
  }
  return x;
}

std::optional<double> ObjectReader::optional_number(const std::string& key, double min,
                                                    double max) {
  if (!find(key)) return std::nullopt;
  return number(key, min, max);
}

double ObjectReader::quantity(const std::string& key, units::Quantity q, bool min_exclusive) {
  const json& v = require(key);
  std::optional<double> value;
  if (v.is_string()) {
    value = units::parse(v.get<std::string>(), q);
  } else if (v.is_number() && q == units::Quantity::count) {
    if (v.get<double>() >= 0) value = v.get<double>();
  } else if (v.is_number()) {
    fail(key, "needs an explicit unit, got " + type_name(v) + "; write it as e.g. " +
                  units::example(q) + " (units: " + units::accepted_units(q) + ")");
  }
  if (!value)
    fail(key, "cannot read " + type_name(v) + " as a non-negative quantity; write it as e.g. " +
                  units::example(q) + " (units: " + units::accepted_units(q) + ")");
  if (min_exclusive && *value <= 0) fail(key, "must be greater than zero, got " + type_name(v));
  if (*value > units::largest(q)) {
    std::ostringstream rule;
    rule << "is larger than " << units::largest(q) << " (in base units), the largest xring accepts "
         << "for this quantity; check the unit (got " << type_name(v) << ")";
    fail(key, rule.str());
  }
  return *value;
}

std::optional<double> ObjectReader::optional_quantity(const std::string& key, units::Quantity q,
                                                      bool min_exclusive) {
  if (!find(key)) return std::nullopt;
  return quantity(key, q, min_exclusive);
}

std::vector<int64_t> ObjectReader::integer_list(const std::string& key, int64_t min, int64_t max) {
  const json& v = require(key);
  if (!v.is_array()) fail(key, "must be an array of whole numbers, got " + type_name(v));
  std::vector<int64_t> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const json& e = v[i];
    std::string at = key + "[" + std::to_string(i) + "]";
    int64_t n = 0;
    if (!whole_number(e, n)) fail(at, "must be a whole number, got " + type_name(e));
    if (n < min || n > max) fail(at, "must be " + range_rule(min, max) + ", got " + e.dump());
    out.push_back(n);
  }
  return out;
}

std::string ObjectReader::choice(const std::string& key, const std::vector<std::string>& choices) {
  const json& v = require(key);
  if (!v.is_string()) fail(key, "must be one of " + join(choices) + ", got " + type_name(v));
  std::string s = v.get<std::string>();
  if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
    auto hint = did_you_mean(s, choices);
    fail(key, "\"" + quoted_excerpt(s) + "\" is not one of " + join(choices) +
                  (hint ? "; did you mean \"" + *hint + "\"?" : ""));
  }
  return s;
}

std::optional<std::string> ObjectReader::optional_choice(const std::string& key,
                                                         const std::vector<std::string>& choices) {
  if (!find(key)) return std::nullopt;
  return choice(key, choices);
}

ObjectReader ObjectReader::object(const std::string& key) {
  const json& v = require(key);
  if (!v.is_object()) fail(key, "must be a JSON object, got " + type_name(v));
  return ObjectReader(v, origin_, path_of(key));
}

void ObjectReader::finish() const {
  std::vector<std::string> known(known_.begin(), known_.end());
  for (const auto& [key, value] : object_.items()) {
    if (known_.count(key)) continue;
    auto hint = did_you_mean(key, known);
    fail(key, "unknown field" + (hint ? "; did you mean \"" + *hint + "\"?" : "") +
                  " (known fields: " + join(known) + ")");
  }
}

}  // namespace xring
