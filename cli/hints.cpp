// What to say when the command line itself is wrong: an unknown subcommand (did you mean), an
// unknown option (did you mean, or the --set that sets a spec field of that name).
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::cli {
namespace {

/// Every top-level field any built-in spec of `kind` has ("frames", "kv_budget", ...).
std::vector<std::string> spec_fields(SpecKind kind) {
  std::vector<std::string> fields;
  for (const auto& name : builtin_names(kind)) {
    const nlohmann::json spec = load_spec_json(kind, name).value;
    for (const auto& [key, value] : spec.items())
      if (std::find(fields.begin(), fields.end(), key) == fields.end()) fields.push_back(key);
  }
  return fields;
}

/// "--frames=3600" -> "frames", "3600"; "--frames" with the next argument as its value.
std::pair<std::string, std::string> option_and_value(const std::vector<std::string>& args,
                                                     size_t i) {
  std::string name = args[i].substr(2), value;
  auto eq = name.find('=');
  if (eq != std::string::npos) {
    value = name.substr(eq + 1);
    name = name.substr(0, eq);
  } else if (i + 1 < args.size() && args[i + 1].rfind("-", 0) != 0) {
    value = args[i + 1];
  }
  return {name, value};
}

}  // namespace

std::optional<std::string> unknown_command_hint(const std::vector<std::string>& commands,
                                                const std::string& word) {
  if (word.empty() || word[0] == '-') return std::nullopt;
  if (std::find(commands.begin(), commands.end(), word) != commands.end()) return std::nullopt;
  std::string list;
  for (const auto& c : commands) list += (list.empty() ? "" : ", ") + c;
  auto hint = did_you_mean(word, commands);
  return "unknown command \"" + quoted_excerpt(word) + "\"" +
         (hint ? "; did you mean \"" + *hint + "\"?" : "") + " (commands: " + list +
         "; xring --help)";
}

std::optional<std::string> unknown_option_hint(const CLI::App& sub,
                                               const std::vector<std::string>& args) {
  std::vector<std::string> known;
  for (const CLI::Option* o : sub.get_options())
    for (const auto& l : o->get_lnames()) known.push_back(l);
  if (const CLI::App* parent = sub.get_parent())  // the global ones (--quiet, --verbose)
    for (const CLI::Option* o : parent->get_options())
      for (const auto& l : o->get_lnames()) known.push_back(l);
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].rfind("--", 0) != 0 || args[i].size() < 3) continue;
    auto [name, value] = option_and_value(args, i);
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    const std::string shown = value.empty() ? "VALUE" : value;
    for (auto [kind, prefix] :
         {std::pair{SpecKind::workload, "workload."}, std::pair{SpecKind::model, "model."},
          std::pair{SpecKind::cluster, "cluster."}}) {
      auto fields = spec_fields(kind);
      if (std::find(fields.begin(), fields.end(), name) != fields.end() &&
          std::find(known.begin(), known.end(), "set") != known.end())
        return "--" + quoted_excerpt(name) + " is not an option of xring " + sub.get_name() +
               "; spec fields are set with --set: use --set " + prefix + name + "=" + shown;
    }
    auto hint = did_you_mean(name, known);
    return "unknown option --" + quoted_excerpt(name) + " for xring " + sub.get_name() +
           (hint ? "; did you mean --" + *hint + "?" : "") + " (xring " + sub.get_name() +
           " --help lists them)";
  }
  return std::nullopt;
}

}  // namespace xring::cli
