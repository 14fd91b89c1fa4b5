// JsonTextWriter: nlohmann's dump() layout, written directly.
#include "xring/planner/json_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace xring {
namespace {

/// Integral doubles below this print as their digits and ".0" in nlohmann's format (it
/// switches to an exponent at 10^15).
constexpr double kIntegralAsDigitsBelow = 1e15;

/// Whether each byte prints as itself inside a JSON string (ASCII, no quote, backslash or
/// control byte).
struct PrintsAsIs {
  bool table[256] = {};
  constexpr PrintsAsIs() {
    for (int c = 0x20; c < 0x80; ++c) table[c] = c != '"' && c != '\\';
  }
};
constexpr PrintsAsIs kPrintsAsIs;

/// The length of the start of `s` that prints as itself, eight bytes at a time: a word goes
/// to the byte loop when any byte in it may be a control byte, a quote, a backslash or
/// non-ASCII (the word tests have false positives, never false negatives).
size_t plain_prefix(std::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHighs = 0x8080808080808080ull;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t x = 0;
    std::memcpy(&x, s.data() + i, 8);
    const uint64_t quote = x ^ (kOnes * '"');
    const uint64_t backslash = x ^ (kOnes * '\\');
    const uint64_t suspect = (x | ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) |
                              ((backslash - kOnes) & ~backslash)) &
                             kHighs;
    if (suspect) break;
  }
  while (i < s.size() && kPrintsAsIs.table[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}

}  // namespace

JsonTextWriter& JsonTextWriter::begin_object() {
  before_value();
  out_ += '{';
  levels_.push_back(Level{true});
  return *this;
}

JsonTextWriter& JsonTextWriter::begin_array() {
  before_value();
  out_ += '[';
  levels_.push_back(Level{false});
  return *this;
}

JsonTextWriter& JsonTextWriter::end_object() {
  if (levels_.empty() || !levels_.back().is_object || levels_.back().key_pending)
    throw std::logic_error("JsonTextWriter: end_object without an open object");
  const bool empty = levels_.back().empty;
  levels_.pop_back();
  if (!empty) newline_and_indent(levels_.size());
  out_ += '}';
  return *this;
}

JsonTextWriter& JsonTextWriter::end_array() {
  if (levels_.empty() || levels_.back().is_object)
    throw std::logic_error("JsonTextWriter: end_array without an open array");
  const bool empty = levels_.back().empty;
  levels_.pop_back();
  if (!empty) newline_and_indent(levels_.size());
  out_ += ']';
  return *this;
}

JsonTextWriter& JsonTextWriter::key(std::string_view name) {
  if (levels_.empty() || !levels_.back().is_object || levels_.back().key_pending)
    throw std::logic_error("JsonTextWriter: key outside an object");
  Level& level = levels_.back();
  // Checked on the first kKeyPrefix bytes: keys that share them are taken as ascending.
  const std::string_view prefix = name.substr(0, Level::kKeyPrefix);
  const std::string_view last(level.last_key, level.last_key_size);
  const auto first_byte = [](std::string_view k) { return static_cast<unsigned char>(k[0]); };
  const bool ascends =
      level.empty || (!prefix.empty() && !last.empty() && first_byte(prefix) != first_byte(last)
                          ? first_byte(prefix) > first_byte(last)
                          : prefix > last || (prefix == last && name.size() > Level::kKeyPrefix));
  if (!ascends)
    throw std::logic_error("JsonTextWriter: key \"" + std::string(name) + "\" after \"" +
                           std::string(last) + "\" (keys must ascend)");
  const size_t width = indent_ >= 0 ? levels_.size() * static_cast<size_t>(indent_) : 0;
  char buf[256];  // `,\n<indent>"name": ` in one append: keys are short and plain
  if (width + name.size() + 8 <= sizeof buf && plain_prefix(name) == name.size()) {
    char* at = buf;
    if (!level.empty) *at++ = ',';
    if (indent_ >= 0) {
      *at++ = '\n';
      at = std::fill_n(at, width, ' ');
    }
    *at++ = '"';
    at = std::copy(name.begin(), name.end(), at);
    *at++ = '"';
    *at++ = ':';
    if (indent_ >= 0) *at++ = ' ';
    out_.append(buf, at);
  } else {
    if (!level.empty) out_ += ',';
    newline_and_indent(levels_.size());
    escaped(name);
    out_ += indent_ >= 0 ? ": " : ":";
  }
  level.empty = false;
  std::copy(prefix.begin(), prefix.end(), level.last_key);
  level.last_key_size = prefix.size();
  level.key_pending = true;
  return *this;
}

void JsonTextWriter::before_value() {
  if (levels_.empty()) {
    if (wrote_root_) throw std::logic_error("JsonTextWriter: a second top-level value");
    wrote_root_ = true;
    return;
  }
  Level& level = levels_.back();
  if (level.is_object) {
    if (!level.key_pending) throw std::logic_error("JsonTextWriter: a value where a key is due");
    level.key_pending = false;
    return;
  }
  if (!level.empty) out_ += ',';
  level.empty = false;
  if (indent_ >= 0) newline_and_indent(levels_.size());
}

void JsonTextWriter::newline_and_indent(size_t depth) {
  if (indent_ < 0) return;
  static const std::string kLine = '\n' + std::string(256, ' ');
  const size_t width = depth * static_cast<size_t>(indent_);
  if (width < kLine.size()) {
    out_.append(kLine, 0, 1 + width);
  } else {
    out_ += '\n';
    out_.append(width, ' ');
  }
}

JsonTextWriter& JsonTextWriter::value(double v) {
  before_value();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  char buf[64];
  char* end = nullptr;
  if (v != 0 && std::fabs(v) < kIntegralAsDigitsBelow && v == std::trunc(v)) {
    // What nlohmann prints for an integral value under 10^15 (its digits, then ".0"), without
    // the digit search: byte counts are integral, and are a third of a plan's numbers.
    end = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(v)).ptr;
    *end++ = '.';
    *end++ = '0';
  } else {
    // nlohmann's own shortest round-trip formatting (Grisu2), so that the text is the one
    // dump() printed before.
    end = nlohmann::detail::to_chars(buf, buf + sizeof buf, v);
  }
  out_.append(buf, end);
  return *this;
}

JsonTextWriter& JsonTextWriter::value(long long v) {
  before_value();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, end);
  return *this;
}

JsonTextWriter& JsonTextWriter::value(bool v) {
  before_value();
  out_ += v ? "true" : "false";
  return *this;
}

JsonTextWriter& JsonTextWriter::null() {
  before_value();
  out_ += "null";
  return *this;
}

JsonTextWriter& JsonTextWriter::value(const std::optional<double>& v) {
  return v ? value(*v) : null();
}

JsonTextWriter& JsonTextWriter::value(std::string_view v) {
  before_value();
  escaped(v);
  return *this;
}

JsonTextWriter& JsonTextWriter::value(const nlohmann::json& v) {
  before_value();
  const std::string text = v.dump(indent_);
  if (indent_ < 0) {
    out_ += text;
    return *this;
  }
  // dump() indents from column 0; every line after the first moves right by this depth.
  // Strings in JSON text hold no raw newline, so every '\n' starts a line.
  const std::string shift(levels_.size() * static_cast<size_t>(indent_), ' ');
  size_t from = 0;
  for (size_t nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', from)) {
    out_.append(text, from, nl + 1 - from);
    out_ += shift;
    from = nl + 1;
  }
  out_.append(text, from, std::string::npos);
  return *this;
}

void JsonTextWriter::escaped(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out_.size();
  out_ += '"';
  if (plain_prefix(s) == s.size()) {
    out_.append(s.data(), s.size());
    out_ += '"';
    return;
  }
  size_t run = 0;  // start of the bytes not yet appended
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (kPrintsAsIs.table[c]) continue;
    if (c >= 0x80) {  // UTF-8: nlohmann checks it (and throws on invalid bytes), as before
      out_.resize(start);
      out_ += nlohmann::json(std::string(s)).dump();
      return;
    }
    out_.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\b':
        out_ += "\\b";
        break;
      case '\f':
        out_ += "\\f";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      default:
        out_ += "\\u00";
        out_ += kHex[c >> 4];
        out_ += kHex[c & 0xF];
    }
  }
  out_.append(s.data() + run, s.size() - run);
  out_ += '"';
}

}  // namespace xring
