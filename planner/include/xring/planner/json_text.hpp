// JSON text written as it goes, without building a document first: for outputs whose size
// grows with the model (a plan of thousands of layers, a trace of millions of events).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace xring {

/// Appends JSON text to a string, byte for byte what nlohmann's `dump(indent)` prints for the
/// same document (`indent` < 0: `dump()`, compact). nlohmann objects are sorted maps, so
/// the keys of an object must be given in ascending order; a key out of order, a value where
/// a key is due or an unclosed container is a programming error (std::logic_error).
/// The caller may move text out of the string between values (streaming to a file).
class JsonTextWriter {
 public:
  JsonTextWriter(std::string& out, int indent) : out_(out), indent_(indent) {}

  JsonTextWriter& begin_object();
  JsonTextWriter& end_object();
  JsonTextWriter& begin_array();
  JsonTextWriter& end_array();
  /// The next member's name: ascending within its object.
  JsonTextWriter& key(std::string_view name);

  JsonTextWriter& value(double v);  ///< non-finite prints null, as nlohmann does
  JsonTextWriter& value(long long v);
  JsonTextWriter& value(int v) { return value(static_cast<long long>(v)); }
  JsonTextWriter& value(bool v);
  JsonTextWriter& value(std::string_view v);
  JsonTextWriter& value(const char* v) { return value(std::string_view(v)); }
  JsonTextWriter& value(const std::string& v) { return value(std::string_view(v)); }
  JsonTextWriter& value(const std::optional<double>& v);  ///< empty prints null
  /// A document built elsewhere (spec echoes, small sections), printed at this position.
  JsonTextWriter& value(const nlohmann::json& v);
  JsonTextWriter& null();

  /// True once the outermost value is complete.
  bool done() const { return levels_.empty() && wrote_root_; }

 private:
  struct Level {
    static constexpr size_t kKeyPrefix = 32;
    bool is_object = false;
    bool empty = true;
    bool key_pending = false;  ///< a key was written, its value is due
    char last_key[kKeyPrefix] = {};
    size_t last_key_size = 0;
  };
  void before_value();
  void newline_and_indent(size_t depth);
  void escaped(std::string_view s);

  std::string& out_;
  int indent_;
  std::vector<Level> levels_;
  bool wrote_root_ = false;
};

}  // namespace xring
