// `xring diff`: which inputs and which layers changed a prediction between two plans.
#include <cstdio>

#include "commands.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::cli {

void attach_diff(CLI::App& sub, int& exit_code) {
  struct Options {
    std::string before, after;
    bool exit_code = false;
    bool json = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("old", o->before, "The earlier plan file")->required();
  sub.add_option("new", o->after, "The later plan file")->required();
  sub.add_flag("--exit-code", o->exit_code,
               "Exit 1 when the plans differ, 0 when they do not (as git diff --exit-code)");
  sub.add_flag("--json", o->json,
               "Print {schema_version, old, new, differences[]} instead of the text");
  sub.footer(
      "Example:\n"
      "  xring plan -c a100-80gb-16 -o a.json && xring plan -c a100-80gb-16 --set "
      "cluster.inter_node.bandwidth=5GB/s -o b.json && xring diff a.json b.json\n"
      "Exit codes: 0 (with --exit-code: no differences), 1 differences with --exit-code, 2 bad "
      "input.");
  sub.callback([o, &exit_code] {
    Plan before = read_plan_file(o->before);
    Plan after = read_plan_file(o->after);
    std::vector<std::string> lines = explain_diff(before, after);
    if (o->json) {
      nlohmann::json j = {
          {"schema_version", 1}, {"old", o->before}, {"new", o->after}, {"differences", lines}};
      std::puts(j.dump(2).c_str());
    } else {
      std::printf("xring diff %s %s\n", o->before.c_str(), o->after.c_str());
      if (lines.empty()) std::puts("  no differences in inputs, predictions or layer choices");
      for (const auto& l : lines) std::printf("  %s\n", l.c_str());
    }
    exit_code = o->exit_code && !lines.empty() ? static_cast<int>(ExitCode::regression) : 0;
  });
}

}  // namespace xring::cli
