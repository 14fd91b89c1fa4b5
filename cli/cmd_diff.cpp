// `xring diff`: which inputs and which layers changed a prediction between two plans.
#include <cstdio>

#include "commands.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::cli {

void attach_diff(CLI::App& sub, int& exit_code) {
  auto files = std::make_shared<std::pair<std::string, std::string>>();
  sub.add_option("old", files->first, "The earlier plan file")->required();
  sub.add_option("new", files->second, "The later plan file")->required();
  sub.footer(
      "Example:\n"
      "  xring plan -o a.json && xring plan --set cluster.inter_node.bandwidth=5GB/s -o b.json && "
      "xring diff a.json b.json");
  sub.callback([files, &exit_code] {
    Plan before = read_plan_file(files->first);
    Plan after = read_plan_file(files->second);
    std::vector<std::string> lines = explain_diff(before, after);
    std::printf("xring diff %s %s\n", files->first.c_str(), files->second.c_str());
    if (lines.empty()) std::puts("  no differences in inputs, predictions or layer choices");
    for (const auto& l : lines) std::printf("  %s\n", l.c_str());
    exit_code = 0;
  });
}

}  // namespace xring::cli
