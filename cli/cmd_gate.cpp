// `xring gate`: fail a CI job when performance or capacity regresses.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::cli {
namespace {

/// The current document's numbers for benchmark dashboards: Bencher Metric Format
/// ({benchmark: {measure: {value, lower_value, upper_value}}}, the bounds being the allowed
/// change around the baseline where one was compared) or github-action-benchmark's
/// {customSmallerIsBetter: [...], customBiggerIsBetter: [...]}. Numbers with no value (nothing
/// predicted) and booleans are left out.
nlohmann::json benchmark_json(const gate::Outcome& outcome, const gate::Document& current,
                              const std::string& title, const std::string& format) {
  nlohmann::json measures = nlohmann::json::object();
  nlohmann::json smaller = nlohmann::json::array(), bigger = nlohmann::json::array();
  for (const auto& row : outcome.rows) {
    if (row.boolean || !row.current) continue;
    if (measures.contains(row.metric)) continue;  // a requirement on a compared metric
    nlohmann::json m = {{"value", *row.current}};
    if (row.baseline && row.requirement.empty()) {
      m["lower_value"] = *row.baseline - row.allowed;
      m["upper_value"] = *row.baseline + row.allowed;
    }
    measures[row.metric] = m;
    const gate::Metric* metric = current.find(row.metric);
    nlohmann::json entry = {{"name", title + ": " + row.metric},
                            {"unit", row.unit.empty() ? "" : row.unit},
                            {"value", *row.current}};
    if (row.baseline && row.requirement.empty())
      entry["range"] = "±" + gate::format_value(row.allowed, row.unit);
    if (metric && metric->direction == gate::Direction::higher_is_better)
      bigger.push_back(entry);
    else
      smaller.push_back(entry);
  }
  if (format == "bencher") return {{title, measures}};
  return {{"customSmallerIsBetter", smaller}, {"customBiggerIsBetter", bigger}};
}

}  // namespace

void attach_gate(CLI::App& sub, int& exit_code) {
  struct Options {
    std::string baseline, current, document, rules, junit, markdown, title;
    std::string format = "markdown";
    std::vector<std::string> requirements;
    bool update_baseline = false;
    bool allow_changed_inputs = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--baseline", o->baseline, "The plan or run report to compare against");
  sub.add_option("--current", o->current, "The new plan or run report");
  sub.add_option("--plan,--report", o->document,
                 "One plan or run report to check --require against");
  sub.add_option(
      "--require", o->requirements,
      "A capacity requirement: feasible, verified, or METRIC OP VALUE (OP: >= <= > < == !=; "
      "VALUE may carry a unit: 70GiB, 2ms; a predicted METRIC also as METRIC.low or "
      "METRIC.high, its prediction interval's bound), repeatable; applies to --current when "
      "comparing");
  sub.add_option(
      "--rules", o->rules,
      "JSON rules: {\"defaults\": {\"relative\": 0.05}, \"metrics\": {\"layers.*.time_s\": "
      "{\"relative\": 0.1}, \"peak_memory_bytes_per_rank\": {\"absolute\": 1e9}, \"NAME\": "
      "{\"ignore\": true}}}");
  sub.add_option("--junit", o->junit, "Write JUnit XML (testsuites/testsuite/testcase/failure)")
      ->check(output_file());
  sub.add_option("--markdown", o->markdown, "Write the markdown summary (also printed)")
      ->check(output_file());
  sub.add_option("--title", o->title, "Title of the summary (default: the compared files)");
  sub.add_flag("--update-baseline", o->update_baseline,
               "After comparing, replace --baseline with --current (atomically) and exit 0");
  sub.add_option("--format", o->format,
                 "What to print: markdown (the table), bencher (Bencher Metric Format JSON) or "
                 "github-action-benchmark ({customSmallerIsBetter, customBiggerIsBetter} arrays)")
      ->capture_default_str()
      ->check(CLI::IsMember({"markdown", "bencher", "github-action-benchmark"}));
  sub.add_flag("--allow-changed-inputs", o->allow_changed_inputs,
               "Compare plans whose model, cluster or workload of the same name differ in content "
               "(a GPU swap, a longer video); without it that is bad input (exit 2)");
  sub.footer(
      "Examples:\n"
      "  xring gate --baseline tests/baselines/x.plan.json --current new.plan.json --junit "
      "gate.xml\n"
      "  xring gate --plan plan.json --require feasible --require \"frames_per_s>=4\" "
      "--require \"peak_memory_bytes_per_rank<=70GiB\"\n"
      "  xring gate --plan plan.json --require \"iteration_time_s.high<=10s\"   # pessimistic case\n"
      "  xring gate --baseline base.report.json --current cur.report.json --rules gate.json\n"
      "Exit codes: 0 pass, 1 regression or requirement not met, 2 bad input.");
  sub.callback([o, &exit_code] {
    const auto started = std::chrono::steady_clock::now();
    const bool comparing = !o->baseline.empty() || !o->current.empty();
    if (comparing && (o->baseline.empty() || o->current.empty()))
      throw Error("give both --baseline and --current (or --plan/--report with --require)");
    if (!comparing && o->document.empty())
      throw Error(
          "nothing to gate: give --baseline and --current, or --plan/--report with --require");
    if (!comparing && o->requirements.empty())
      throw Error("--plan/--report needs at least one --require");
    if (o->update_baseline && !comparing)
      throw Error("--update-baseline needs --baseline and --current");
    refuse_shared_paths({{"--markdown", o->markdown}, {"--junit", o->junit}},
                        {{"--baseline", o->baseline},
                         {"--current", o->current},
                         {"--plan", o->document},
                         {"--rules", o->rules}});
    gate::Rules rules =
        gate::read_rules(o->rules.empty() ? nlohmann::json() : read_json_file(o->rules), o->rules);
    gate::Outcome outcome;
    gate::Document current_doc;
    std::string title = o->title;
    if (comparing) {
      gate::Document base = gate::read_document(read_json_file(o->baseline), o->baseline);
      gate::Document cur = gate::read_document(read_json_file(o->current), o->current);
      current_doc = cur;
      outcome = gate::compare(base, cur, rules, o->allow_changed_inputs || o->update_baseline);
      if (!o->requirements.empty()) {
        gate::Outcome req = gate::require(cur, o->requirements);
        outcome.rows.insert(outcome.rows.end(), req.rows.begin(), req.rows.end());
      }
      if (title.empty()) title = o->current + " vs " + o->baseline;
    } else {
      current_doc = gate::read_document(read_json_file(o->document), o->document);
      outcome = gate::require(current_doc, o->requirements);
      if (title.empty()) title = o->document;
    }
    std::string md = gate::markdown(outcome, title);
    std::string xml = gate::junit_xml(
        outcome, title,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    std::vector<std::pair<std::string, std::string>> files;
    if (!o->markdown.empty()) files.push_back({o->markdown, md});
    if (!o->junit.empty()) files.push_back({o->junit, xml});
    write_files_atomically(files);
    if (o->format == "markdown")
      std::fputs(md.c_str(), stdout);
    else
      std::puts(benchmark_json(outcome, current_doc, title, o->format).dump(2).c_str());
    if (o->update_baseline) {
      std::ifstream in(o->current, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      write_file_atomically(o->baseline, text.str());
      std::fprintf(stdout, "\nbaseline %s updated from %s\n", o->baseline.c_str(),
                   o->current.c_str());
      exit_code = 0;
      return;
    }
    exit_code = outcome.failed() ? static_cast<int>(ExitCode::regression) : 0;
  });
}

}  // namespace xring::cli
