// The gate's outcome for people and CI: the markdown summary and JUnit XML.
#include <cmath>
#include <cstdio>

#include "xring/planner/gate.hpp"

namespace xring::gate {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string verdict_text(Verdict v) {
  switch (v) {
    case Verdict::pass:
      return "pass";
    case Verdict::improved:
      return "improved";
    case Verdict::regression:
      return "REGRESSION";
    case Verdict::not_met:
      return "NOT MET";
  }
  return "?";
}

bool failed(const Row& r) {
  return r.verdict == Verdict::regression || r.verdict == Verdict::not_met;
}

std::string format_optional(const std::optional<double>& v, const std::string& unit) {
  return v ? format_value(*v, unit) : "—";
}

/// A row's value for a table: "true"/"false" for booleans, else the number or "—".
std::string value_text(const std::optional<double>& v, const Row& r) {
  if (r.boolean) return v == 1.0 ? "true" : "false";
  return format_optional(v, r.unit);
}

/// "▲ +12.5%" (or the absolute change where the baseline is 0 or so small that the ratio
/// overflows); "" when there is no change to
/// show (a requirement, a boolean, a side with nothing predicted).
std::string change_text(const Row& r) {
  if (!r.requirement.empty() || r.boolean || !r.baseline || !r.current) return "";
  char buf[64];
  const double percent = 100 * r.change / std::fabs(*r.baseline);
  if (*r.baseline != 0 && std::isfinite(percent))  // a tiny baseline: the absolute change
    std::snprintf(buf, sizeof buf, "%+.1f%%", percent);
  else
    std::snprintf(buf, sizeof buf, "%+.3g", r.change);
  return (r.change > 0 ? "▲ " : r.change < 0 ? "▼ " : "= ") + std::string(buf);
}

std::string describe_failure(const Row& r) {
  const std::string current =
      r.current ? format_value(*r.current, r.unit) : "nothing predicted (infeasible plan)";
  if (!r.requirement.empty()) return "requirement " + r.requirement + " not met: " + current;
  if (r.boolean) return r.metric + " no longer holds";
  if (!r.current || !r.baseline)
    return r.metric + " went from " + format_optional(r.baseline, r.unit) + " to " + current;
  return r.metric + " went from " + format_value(*r.baseline, r.unit) + " to " + current +
         " (allowed change " + format_value(r.allowed, r.unit) + ")";
}

/// A failure's details, one "name: value" line each, for the JUnit element body.
std::string failure_details(const Row& r) {
  std::string s = "metric: " + r.metric + "\n";
  if (!r.requirement.empty()) {
    s += "requirement: " + r.requirement + "\n";
    s += "current: " + (r.current ? value_text(r.current, r) : "nothing predicted") + "\n";
    if (r.bound) s += "bound: " + format_value(*r.bound, r.unit) + "\n";
    return s + "rule: --require " + r.requirement + "\n";
  }
  s += "baseline: " + value_text(r.baseline, r) + "\n";
  s += "current: " + value_text(r.current, r) + "\n";
  if (!change_text(r).empty()) s += "change: " + change_text(r) + "\n";
  if (r.boolean) return s + "bound: must hold\nrule: " + r.metric + " must stay true\n";
  if (!r.baseline || !r.current) return s + "rule: a prediction the baseline has must stay\n";
  s += "bound: ±" + format_value(r.allowed, r.unit) + "\n";
  return s + "rule: " + r.rule + "\n";
}

}  // namespace

std::string markdown(const Outcome& o, const std::string& title) {
  int failures = 0, improved = 0;
  for (const auto& r : o.rows) {
    if (failed(r)) ++failures;
    if (r.verdict == Verdict::improved) ++improved;
  }
  std::string s = "## xring gate: " + title + "\n\n";
  s += failures ? "**" + std::to_string(failures) + " of " + std::to_string(o.rows.size()) +
                      " checks failed**"
                : "All " + std::to_string(o.rows.size()) + " checks passed";
  if (improved) s += " (" + std::to_string(improved) + " improved)";
  s += ".\n\n";
  for (const auto& n : o.notes) s += "Note: " + n + "\n\n";
  s += "| metric | baseline | current | change | allowed | result "
       "|\n|---|---|---|---|---|---|\n";
  for (const auto& r : o.rows) {
    std::string baseline = !r.requirement.empty() ? "-" : value_text(r.baseline, r);
    std::string change = !r.note.empty() || change_text(r).empty() ? "-" : change_text(r);
    std::string allowed = "-";
    if (!r.note.empty())
      allowed = r.note;
    else if (!r.requirement.empty())
      allowed = "`" + r.requirement + "`";
    else if (change != "-")
      allowed = "±" + format_value(r.allowed, r.unit) +
                (r.noise > 0 && r.noise >= r.allowed ? " (noise: 3σ of the samples)" : "");
    s += "| " + r.metric + " | " + baseline + " | " + value_text(r.current, r) + " | " + change +
         " | " + allowed + " | " + verdict_text(r.verdict) + " |\n";
  }
  return s;
}

std::string junit_xml(const Outcome& o, const std::string& suite, double seconds) {
  int failures = 0, skipped = 0;
  for (const auto& r : o.rows) {
    if (failed(r)) ++failures;
    if (!r.note.empty()) ++skipped;
  }
  char time[32];
  std::snprintf(time, sizeof time, "%.6f", seconds);
  // errors: a gate that could not compare exits 2 and writes no XML, so a written file has none.
  const std::string counts = "tests=\"" + std::to_string(o.rows.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"0\" skipped=\"" +
                             std::to_string(skipped) + "\" time=\"" + time + "\"";
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"xring gate\" " +
                  counts + ">\n  <testsuite name=\"" + xml_escape(suite) + "\" " + counts + ">\n";
  for (const auto& r : o.rows) {
    std::string name = r.requirement.empty() ? r.metric : r.requirement;
    s += "    <testcase classname=\"xring.gate\" name=\"" + xml_escape(name) + "\"";
    if (failed(r)) {
      s += ">\n      <failure type=\"" +
           std::string(r.verdict == Verdict::regression ? "regression" : "requirement") +
           "\" message=\"" + xml_escape(describe_failure(r)) + "\">" +
           xml_escape(failure_details(r)) + "</failure>\n    </testcase>\n";
    } else if (!r.note.empty()) {
      s += ">\n      <skipped message=\"" + xml_escape(r.note) + "\"/>\n    </testcase>\n";
    } else {
      s += "/>\n";
    }
  }
  return s + "  </testsuite>\n</testsuites>\n";
}

}  // namespace xring::gate
