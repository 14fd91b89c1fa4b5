// The --json objects of explain, recommend and validate (see command_json.hpp).
#include "command_json.hpp"

#include <algorithm>
#include <cmath>

#include "xring/planner/intervals.hpp"
#include "xring/planner/sweep.hpp"

namespace xring::cli {
namespace {

using nlohmann::json;

json header(const char* command) {
  return {{"schema_version", kCommandJsonSchemaVersion}, {"command", command}};
}

json nullable(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json interval_json(const std::optional<Interval>& i) {
  if (!i) return nullptr;
  return {{"value", i->value}, {"low", i->low}, {"high", i->high}};
}

/// One ring's hiding threshold: the local block it needs, the block it has, whether it hides.
json hiding_json(double threshold_tokens, double local_block_tokens) {
  return {{"threshold_tokens", threshold_tokens},
          {"local_block_tokens", local_block_tokens},
          {"hidden", local_block_tokens >= threshold_tokens}};
}

json candidate_json(const Candidate& c) {
  const bool predicts = c.evaluated && c.plan.feasible;
  auto number = [&](double v) { return predicts ? json(v) : json(nullptr); };
  return {
      {"gpu", c.gpu},
      {"nodes", c.nodes},
      {"gpus_per_node", c.gpus_per_node},
      {"gpus", c.total_gpus()},
      {"kv_policy", c.kv_policy.empty() ? json(nullptr) : json(c.kv_policy)},
      {"strategy", c.evaluated ? json(strategy_label(c.plan)) : json(nullptr)},
      {"feasible", c.evaluated ? json(c.plan.feasible) : json(nullptr)},
      {"throughput_tokens_per_s_per_gpu", number(c.throughput_per_gpu)},
      {"latency_s", number(c.latency_s)},
      {"latency_interval_s",
       predicts ? interval_json(time_interval(c.latency_s, c.plan.predicted.band)) : json(nullptr)},
      {"peak_memory_bytes_per_rank", number(c.plan.predicted.peak_memory_bytes_per_rank)},
      {"pareto", c.pareto}};
}

json closest_json(const Recommendation& rec) {
  const Candidate* c = rec.closest();
  if (!c) return nullptr;
  json j = candidate_json(*c);
  j["relative_miss"] = std::isfinite(c->relative_miss) ? json(c->relative_miss) : json(nullptr);
  json misses = json::array();
  for (const auto& m : c->misses)
    misses.push_back({{"requirement", m.requirement},
                      {"metric", m.metric},
                      {"bound", m.bound},
                      {"reached", nullable(m.reached)}});
  j["misses"] = misses;
  j["failures"] = c->failures;
  return j;
}

}  // namespace

std::optional<double> half_range(const std::vector<double>& samples) {
  if (samples.size() < 2) return std::nullopt;
  auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
  return (*hi - *lo) / 2;
}

json explain_json(const Explanation& e, const Inputs& in) {
  const LayerShape& s = e.shape;
  const bool training = in.workload.phase == Phase::training;
  const bool ring = e.ring_ranks > 1;  // one GPU: no ring, no link, nothing to hide
  json j = header("explain");
  j["model"] = in.model.name;
  j["cluster"] = in.cluster.name;
  j["workload"] = in.workload.name;
  j["phase"] = to_string(in.workload.phase);
  j["layer"] = {{"index", e.layer.index},
                {"strategy", to_string(e.layer.strategy)},
                {"ranks", e.layer.ranks},
                {"recompute", e.layer.recompute},
                {"reason", e.layer.reason}};
  j["shape"] = {{"batch", s.batch},
                {"heads", s.heads},
                {"kv_heads", s.kv_heads},
                {"head_dim", s.head_dim},
                {"bytes_per_element", s.bytes},
                {"s_q", s.s_q},
                {"s_kv", s.s_kv}};
  j["ring"] = {{"ranks", e.ring_ranks},
               {"is_the_chosen_ring", e.layer.ranks > 1},
               {"link_bytes_per_s", ring ? json(e.ring_link.bytes_per_s) : json(nullptr)},
               {"link_latency_s", ring ? json(e.ring_link.latency_s) : json(nullptr)},
               {"attention_flop_per_s", e.attention_flop_per_s}};
  json rows = json::array();
  for (const auto& row : e.rows)
    rows.push_back(
        {{"strategy", to_string(row.strategy)},
         {"forward_bytes_per_step", ring ? json(row.forward_bytes_per_step) : json(nullptr)},
         {"backward_bytes_per_step",
          ring && training ? json(row.backward_bytes_per_step) : json(nullptr)},
         {"forward_comm_per_step_s",
          ring ? json(transfer_s(row.forward_bytes_per_step, e.ring_link)) : json(nullptr)},
         {"forward_compute_per_step_s", e.step_compute_s}});
  j["strategies"] = rows;
  const double kv_bytes = e.rows[0].forward_bytes_per_step;
  const double q_bytes = e.rows[1].forward_bytes_per_step;
  j["crossover"] = nullptr;  // one GPU: no ring to choose
  if (ring)
    j["crossover"] = {{"ratio", e.crossover_ratio},
                    {"block_ratio", e.block_ratio},
                    {"local_q_block_tokens", e.local_q_block},
                    {"local_kv_block_tokens", e.local_kv_block},
                    {"fewer_bytes", q_bytes < kv_bytes   ? json("query_ring")
                                    : q_bytes > kv_bytes ? json("kv_ring")
                                                         : json(nullptr)}};
  j["hiding"] = {
      {"query_ring", ring ? hiding_json(e.query_ring_hiding_block, e.local_kv_block) : json()},
      {"kv_ring", ring ? hiding_json(e.kv_ring_hiding_block, e.local_q_block) : json()}};
  return j;
}

json recommend_json(const Recommendation& rec, const RecommendQuery& q) {
  json j = header("recommend");
  j["model"] = q.request.model;
  j["workload"] = q.request.workload;
  j["objective"] = q.objective;
  j["requirements"] = q.request.requirements;
  j["kv_policy_searched"] = q.request.search_kv_policy;
  j["shapes"] = {{"considered", rec.all.size()},
                 {"planned", rec.evaluated},
                 {"pruned", rec.pruned},
                 {"search_s", q.search_seconds}};
  j["met"] = !rec.ranked.empty();
  json ranked = json::array();
  const int shown = std::min<int>(q.top, static_cast<int>(rec.ranked.size()));
  for (int i = 0; i < shown; ++i) {
    json c = candidate_json(rec.ranked[i]);
    c["rank"] = i + 1;
    ranked.push_back(c);
  }
  j["recommendations"] = ranked;
  j["closest"] = rec.ranked.empty() ? closest_json(rec) : json(nullptr);
  return j;
}

json validate_json(const executor::ValidateReport& r, const std::string& profile,
                   const ValidateVerdict& verdict) {
  json j = executor::to_json(r);
  json out = header("validate");
  out["profile"] = profile;
  for (auto& [key, value] : j.items())
    if (key != "schema_version") out[key] = value;
  for (size_t i = 0; i < r.points.size() && i < out["points"].size(); ++i) {
    const auto& samples = r.points[i].measured_samples_s;
    out["points"][i]["measured_samples_s"] = samples;
    out["points"][i]["samples"] = samples.size();
    out["points"][i]["spread_s"] = nullable(half_range(samples));
  }
  out["bounds"] = {{"max_median_error", nullable(verdict.max_median_error)},
                   {"max_worst_error", nullable(verdict.max_worst_error)},
                   {"min_coverage", nullable(verdict.min_coverage)}};
  out["verified"] = verdict.verified;
  out["passed"] = verdict.failures.empty();
  out["failures"] = verdict.failures;
  return out;
}

}  // namespace xring::cli
