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

/// Builds the nlohmann document through JsonTextWriter's interface, so that one function
/// (a template over the writer) both prints a structure and builds it: the same keys and
/// values, and `take().dump(indent)` equals what JsonTextWriter prints.
class JsonDocumentWriter {
 public:
  JsonDocumentWriter& begin_object() { return open(nlohmann::json::object()); }
  JsonDocumentWriter& begin_array() { return open(nlohmann::json::array()); }
  JsonDocumentWriter& end_object() { return close(); }
  JsonDocumentWriter& end_array() { return close(); }
  JsonDocumentWriter& key(std::string_view name) {
    key_.assign(name);
    return *this;
  }
  template <typename T>
  JsonDocumentWriter& value(const T& v) {
    place(nlohmann::json(v));
    return *this;
  }
  JsonDocumentWriter& value(std::string_view v) { return value(std::string(v)); }
  JsonDocumentWriter& value(const std::optional<double>& v) { return v ? value(*v) : null(); }
  JsonDocumentWriter& null() {
    place(nullptr);
    return *this;
  }
  /// The finished document.
  nlohmann::json take() { return std::move(root_); }

 private:
  JsonDocumentWriter& open(nlohmann::json container) {
    open_.push_back(place(std::move(container)));
    return *this;
  }
  JsonDocumentWriter& close() {
    open_.pop_back();
    return *this;
  }
  /// Puts `v` into the open container (at the pending key of an object), or makes it the
  /// root; returns where it now lives (stable while it is open: only its own children change).
  nlohmann::json* place(nlohmann::json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    nlohmann::json& parent = *open_.back();
    if (parent.is_object()) return &(parent[key_] = std::move(v));
    parent.push_back(std::move(v));
    return &parent.back();
  }

  nlohmann::json root_;
  std::vector<nlohmann::json*> open_;
  std::string key_;
};

}  // namespace xring
