// `xring completion bash|zsh`: shell completion scripts generated from the CLI's own command
// and option table (CLI11's introspection), so they cannot drift from the binary.
#include <fmt/core.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "commands.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/inputs.hpp"

namespace xring::cli {
namespace {

/// What a shell needs to know about one command path ("xring", "xring plan", "xring heads
/// synth"): its subcommands, its options, which options take a value and what values.
struct CommandCompletion {
  std::vector<std::pair<std::string, std::string>> subcommands;  ///< name, summary
  std::vector<std::string> options;                              ///< "--model", "-m", ...
  std::vector<std::string> valued;                               ///< the options taking values
  std::map<std::string, std::vector<std::string>> values;        ///< option -> choices (else files)
  std::vector<std::string> first_positional;  ///< choices of the first positional (else files)
};
using CompletionTable = std::map<std::string, CommandCompletion>;

/// The choices an IsMember validator shows in the type name ("TEXT:{cpu,cuda,nccl}").
std::vector<std::string> member_choices(const CLI::Option& opt) {
  const std::string type = opt.get_type_name();
  const auto open = type.find('{'), close = type.find('}');
  std::vector<std::string> choices;
  if (open == std::string::npos || close == std::string::npos || close < open) return choices;
  std::string item;
  for (char c : type.substr(open + 1, close - open - 1)) {
    if (c == ',') {
      if (!item.empty()) choices.push_back(item);
      item.clear();
    } else if (c != ' ') {
      item += c;
    }
  }
  if (!item.empty()) choices.push_back(item);
  return choices;
}

/// Built-in spec names for the options that take one (--model tiny, --gpu h100-sxm).
std::vector<std::string> builtin_choices(const std::string& long_name) {
  const std::map<std::string, SpecKind> kinds = {{"model", SpecKind::model},
                                                 {"cluster", SpecKind::cluster},
                                                 {"workload", SpecKind::workload},
                                                 {"gpu", SpecKind::gpu},
                                                 {"device-profile", SpecKind::device}};
  auto it = kinds.find(long_name);
  return it == kinds.end() ? std::vector<std::string>{} : builtin_names(it->second);
}

void describe_command(const CLI::App& app, const std::string& path, CompletionTable& table) {
  CommandCompletion& c = table[path];
  for (const CLI::App* sub : app.get_subcommands({})) {
    c.subcommands.push_back({sub->get_name(), sub->get_description()});
    describe_command(*sub, path + " " + sub->get_name(), table);
  }
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->get_positional()) {
      if (c.first_positional.empty()) c.first_positional = member_choices(*opt);
      if (path == "xring help") {  // topics, then the commands whose --help it prints
        c.first_positional = help_topic_names();
        for (const CLI::App* command : app.get_parent()->get_subcommands({}))
          c.first_positional.push_back(command->get_name());
      }
      continue;
    }
    std::vector<std::string> names;
    for (const auto& l : opt->get_lnames()) names.push_back("--" + l);
    for (const auto& s : opt->get_snames()) names.push_back("-" + s);
    const bool takes_value = opt->get_expected_max() != 0;  // flags expect 0 values
    std::vector<std::string> choices = member_choices(*opt);
    if (choices.empty() && !opt->get_lnames().empty())
      choices = builtin_choices(opt->get_lnames().front());
    for (const auto& n : names) {
      c.options.push_back(n);
      if (!takes_value) continue;
      c.valued.push_back(n);
      if (!choices.empty()) c.values[n] = choices;
    }
  }
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

/// `text` inside single quotes for bash and zsh.
std::string single_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// The tables both shells' functions read: NAME[path] and NAME[path option] entries. Bash
/// assigns `NAME['key']=value`; zsh would keep the quotes in the key, so it appends pairs.
std::string table_assignments(const CompletionTable& table, bool zsh) {
  auto assign = [zsh](const char* name, const std::string& key, const std::string& value) {
    return zsh ? fmt::format("{}+=({} {})\n", name, single_quoted(key), single_quoted(value))
               : fmt::format("{}[{}]={}\n", name, single_quoted(key), single_quoted(value));
  };
  std::string s = std::string(zsh ? "typeset -gA" : "declare -gA") +
                  " _xring_subs _xring_opts _xring_valued _xring_values _xring_positional"
                  " _xring_descriptions\n";
  // The global options a subcommand accepts too (all of the top level's but help and version).
  std::vector<std::string> globals;
  for (const auto& o : table.at("xring").options)
    if (o != "-h" && o != "--help" && o != "--version") globals.push_back(o);
  s += "_xring_globals=" + single_quoted(joined(globals)) + "\n";
  for (const auto& [path, c] : table) {
    std::vector<std::string> names;
    std::string described;  // "name:summary" lines, colons in the summary escaped (zsh)
    for (const auto& [name, summary] : c.subcommands) {
      names.push_back(name);
      described += (described.empty() ? "" : "\n") + name + ":";
      for (char ch : summary) described += ch == ':' ? std::string("\\:") : std::string(1, ch);
    }
    s += assign("_xring_subs", path, joined(names));
    s += assign("_xring_opts", path, joined(c.options));
    s += assign("_xring_valued", path, joined(c.valued));
    s += assign("_xring_descriptions", path, described);
    if (!c.first_positional.empty())
      s += assign("_xring_positional", path, joined(c.first_positional));
    for (const auto& [option, choices] : c.values)
      s += assign("_xring_values", path + " " + option, joined(choices));
  }
  return s;
}

/// The loop both shells share: from the words before the cursor, the command path and how
/// many positionals were given (an option's value is neither).
const char* kFindCommandPath = R"(  local cmd=xring word skip=0 positionals=0 i
  for ((i = FIRST; i < LAST; i++)); do
    word=${WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    if [[ $word == -* ]]; then
      [[ $word != *=* && " ${_xring_valued[$cmd]} " == *" $word "* ]] && skip=1
      continue
    fi
    if [[ " ${_xring_subs[$cmd]} " == *" $word "* ]]; then
      cmd="$cmd $word"; positionals=0
    else
      positionals=$((positionals + 1))
    fi
  done
)";

std::string find_command_path(const char* words, const char* first, const char* last) {
  std::string s = kFindCommandPath;
  for (auto [from, to] : {std::pair{"WORDS", words}, {"FIRST", first}, {"LAST", last}})
    for (size_t at = s.find(from); at != std::string::npos;
         at = s.find(from, at + std::string(to).size()))
      s.replace(at, std::string(from).size(), to);
  return s;
}

std::string bash_script(const CompletionTable& table) {
  std::string s =
      "# bash completion for xring, generated by `xring completion bash` from its command table.\n"
      "# Use: source <(xring completion bash), or install it as\n"
      "# share/bash-completion/completions/xring (cmake --install does).\n";
  s += table_assignments(table, false);
  s += "_xring() {\n  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n";
  s += find_command_path("COMP_WORDS", "1", "COMP_CWORD");
  s += R"(  if [[ $prev == -* && " ${_xring_valued[$cmd]} " == *" $prev "* ]]; then
    if [[ -n ${_xring_values[$cmd $prev]+set} ]]; then
      COMPREPLY=($(compgen -W "${_xring_values[$cmd $prev]}" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
    return 0
  fi
  if [[ $cur == -* ]]; then
    local globals=$_xring_globals
    [[ $cmd == xring ]] && globals=
    COMPREPLY=($(compgen -W "${_xring_opts[$cmd]} $globals" -- "$cur"))
    return 0
  fi
  local words="${_xring_subs[$cmd]}"
  if ((positionals == 0)) && [[ -n ${_xring_positional[$cmd]+set} ]]; then
    words="$words ${_xring_positional[$cmd]}"
  elif [[ -z $words && $cmd != xring ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _xring xring
)";
  return s;
}

std::string zsh_script(const CompletionTable& table) {
  std::string s =
      "#compdef xring\n"
      "# zsh completion for xring, generated by `xring completion zsh` from its command table.\n"
      "# Use: xring completion zsh > ~/.zfunc/_xring with ~/.zfunc in $fpath (before compinit);\n"
      "# cmake --install puts it in share/zsh/site-functions.\n";
  s += table_assignments(table, true);
  s += "_xring() {\n  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}\n";
  s += find_command_path("words", "2", "CURRENT");
  s += R"(  if [[ $prev == -* && " ${_xring_valued[$cmd]} " == *" $prev "* ]]; then
    if (( ${+_xring_values[$cmd $prev]} )); then
      compadd -- ${=_xring_values[$cmd $prev]}
    else
      _files
    fi
    return
  fi
  if [[ $cur == -* ]]; then
    local globals=$_xring_globals
    [[ $cmd == xring ]] && globals=
    compadd -- ${=_xring_opts[$cmd]} ${=globals}
    return
  fi
  local -a described
  described=("${(@f)_xring_descriptions[$cmd]}")
  if [[ -n ${_xring_subs[$cmd]} ]]; then
    _describe -t commands 'xring command' described
  elif ((positionals == 0)) && (( ${+_xring_positional[$cmd]} )); then
    compadd -- ${=_xring_positional[$cmd]}
  else
    _files
  fi
}
if [[ $funcstack[1] == _xring ]]; then
  _xring "$@"
else
  compdef _xring xring
fi
)";
  return s;
}

}  // namespace

std::string completion_script(const CLI::App& app, const std::string& shell) {
  CompletionTable table;
  describe_command(app, "xring", table);
  if (shell == "bash") return bash_script(table);
  if (shell == "zsh") return zsh_script(table);
  throw Error("unknown shell \"" + shell + "\" for xring completion (bash or zsh)");
}

void attach_completion(CLI::App& sub, int& exit_code) {
  auto shell = std::make_shared<std::string>();
  sub.add_option("shell", *shell, "The shell to complete in")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  sub.footer(
      "Examples:\n"
      "  source <(xring completion bash)            # this bash session\n"
      "  xring completion zsh > ~/.zfunc/_xring     # zsh, with ~/.zfunc in $fpath\n"
      "cmake --install installs both (share/bash-completion/completions/xring,\n"
      "share/zsh/site-functions/_xring).");
  sub.callback([&sub, shell, &exit_code] {
    std::fputs(completion_script(*sub.get_parent(), *shell).c_str(), stdout);
    exit_code = 0;
  });
}

}  // namespace xring::cli
