// Provenance records and plan differences.
#include "xring/planner/provenance.hpp"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "xring/planner/plan.hpp"
#include "xring/planner/planner.hpp"

namespace xring {

std::string content_hash(const nlohmann::json& j) {
  const std::string text = j.dump();  // nlohmann objects are ordered maps: keys come sorted
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string git_revision() { return XRING_GIT_REVISION; }

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json plan_provenance(const nlohmann::json& inputs, const std::string& rates) {
  nlohmann::json specs = nlohmann::json::object();
  for (const char* key : {"model", "cluster", "workload"}) {
    const auto& spec = inputs[key];
    specs[key] = {{"name", spec.value("name", "")}, {"hash", content_hash(spec)}};
  }
  return {{"xring_version", xring_version()},
          {"git_revision", git_revision()},
          {"date", utc_now()},
          {"rates", rates},
          {"device_profile", nullptr},
          {"inputs", specs},
          {"overrides", inputs["overrides"]}};
}

std::vector<std::string> json_differences(const nlohmann::json& a, const nlohmann::json& b,
                                          const std::string& path) {
  std::vector<std::string> out;
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      std::string at = path.empty() ? key : path + "." + key;
      if (!b.contains(key))
        out.push_back(at + ": " + value.dump() + " -> (removed)");
      else {
        auto inner = json_differences(value, b[key], at);
        out.insert(out.end(), inner.begin(), inner.end());
      }
    }
    for (const auto& [key, value] : b.items())
      if (!a.contains(key))
        out.push_back((path.empty() ? key : path + "." + key) + ": (absent) -> " + value.dump());
    return out;
  }
  if (a != b) out.push_back(path + ": " + a.dump() + " -> " + b.dump());
  return out;
}

std::vector<std::string> explain_diff(const Plan& before, const Plan& after) {
  std::vector<std::string> out;
  for (const char* key : {"model", "cluster", "workload"}) {
    const auto& a = before.inputs[key];
    const auto& b = after.inputs[key];
    if (content_hash(a) == content_hash(b)) continue;
    out.push_back(std::string("input ") + key + " changed (" + content_hash(a) + " -> " +
                  content_hash(b) + "):");
    for (const auto& d : json_differences(a, b)) out.push_back("  " + std::string(key) + "." + d);
  }
  if (before.inputs["overrides"] != after.inputs["overrides"])
    out.push_back("overrides: " + before.inputs["overrides"].dump() + " -> " +
                  after.inputs["overrides"].dump());
  auto change = [&](const std::string& name, double a, double b) {
    if (a == b) return;
    char buf[160];
    std::snprintf(buf, sizeof buf, "%s: %.6g -> %.6g (%+.2f%%)", name.c_str(), a, b,
                  a != 0 ? 100 * (b - a) / std::fabs(a) : 0.0);
    out.push_back(buf);
  };
  // A prediction that exists on one side only (an infeasible plan predicts nothing).
  auto change_optional = [&](const std::string& name, const std::optional<double>& a,
                             const std::optional<double>& b) {
    if (a && b) return change(name, *a, *b);
    if (a.has_value() == b.has_value()) return;
    auto text = [](const std::optional<double>& v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", v.value_or(0));
      return v ? std::string(buf) : std::string("null");
    };
    out.push_back(name + ": " + text(a) + " -> " + text(b));
  };
  if (before.feasible != after.feasible)
    out.push_back(std::string("feasible: ") + (before.feasible ? "true" : "false") + " -> " +
                  (after.feasible ? "true" : "false"));
  change_optional("predicted.iteration_time_s", before.predicted.iteration_time_s,
         after.predicted.iteration_time_s);
  change_optional("predicted.throughput_tokens_per_s", before.predicted.throughput_tokens_per_s,
         after.predicted.throughput_tokens_per_s);
  change_optional("predicted.frames_per_s", before.predicted.frames_per_s, after.predicted.frames_per_s);
  change("predicted.peak_memory_bytes_per_rank", before.predicted.peak_memory_bytes_per_rank,
         after.predicted.peak_memory_bytes_per_rank);
  change("rest_of_model.time_s", before.rest_of_model.time_s, after.rest_of_model.time_s);
  for (const auto& a : before.layers) {
    const LayerPlan* b = nullptr;
    for (const auto& l : after.layers)
      if (l.index == a.index) b = &l;
    std::string layer = "layer " + std::to_string(a.index);
    if (!b) {
      out.push_back(layer + ": removed");
      continue;
    }
    if (a.strategy != b->strategy || a.ranks != b->ranks || a.recompute != b->recompute)
      out.push_back(layer + ": " + to_string(a.strategy) + "/" + std::to_string(a.ranks) +
                    (a.recompute ? "+recompute" : "") + " -> " + to_string(b->strategy) + "/" +
                    std::to_string(b->ranks) + (b->recompute ? "+recompute" : "") + " (" +
                    b->reason + ")");
    change(layer + " time_s", a.time_s, b->time_s);
  }
  for (const auto& b : after.layers) {
    bool existed = false;
    for (const auto& a : before.layers) existed = existed || a.index == b.index;
    if (!existed) out.push_back("layer " + std::to_string(b.index) + ": added");
  }
  return out;
}

}  // namespace xring
