// Capacity search over cluster shapes, with pruning and the Pareto frontier.
#include "xring/planner/recommend.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "xring/planner/decode.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

bool better(const Candidate& a, const Candidate& b, Objective o) {
  switch (o) {
    case Objective::min_gpus:
      if (a.total_gpus() != b.total_gpus()) return a.total_gpus() < b.total_gpus();
      return a.throughput_per_gpu > b.throughput_per_gpu;
    case Objective::max_throughput_per_gpu:
      if (a.throughput_per_gpu != b.throughput_per_gpu)
        return a.throughput_per_gpu > b.throughput_per_gpu;
      return a.total_gpus() < b.total_gpus();
    case Objective::min_latency:
      if (a.latency_s != b.latency_s) return a.latency_s < b.latency_s;
      return a.total_gpus() < b.total_gpus();
  }
  return false;
}

}  // namespace

Objective objective_from_string(const std::string& s) {
  if (s == "min_gpus") return Objective::min_gpus;
  if (s == "max_throughput_per_gpu") return Objective::max_throughput_per_gpu;
  if (s == "min_latency") return Objective::min_latency;
  throw Error("unknown objective \"" + s +
              "\" (objectives: min_gpus, max_throughput_per_gpu, min_latency)");
}

nlohmann::json cluster_shape(const std::string& gpu, int nodes, int gpus_per_node) {
  // Links come from the built-in cluster built on this GPU with the most GPUs (it has both an
  // intra-node and, when multi-node, an inter-node link).
  const BuiltinSpec* best = nullptr;
  int best_gpus = 0;
  for (const auto& b : builtin_specs()) {
    if (b.kind != SpecKind::cluster) continue;
    json c = json::parse(b.text);
    if (!c["gpu"].is_string() || c["gpu"].get<std::string>() != gpu) continue;
    int g = c.value("nodes", 1) * c.value("gpus_per_node", 1);
    if (g > best_gpus) {
      best_gpus = g;
      best = &b;
    }
  }
  if (!best) {
    auto names = builtin_names(SpecKind::gpu);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error(
        "--gpu " + gpu +
        ": no built-in cluster gives link speeds for this GPU (GPUs with clusters: " + list + ")");
  }
  json c = json::parse(best->text);
  json shape = {{"name", gpu + "-" + std::to_string(nodes) + "x" + std::to_string(gpus_per_node)},
                {"source", "xring recommend shape; links from the built-in cluster " + best->name},
                {"nodes", nodes},
                {"gpus_per_node", gpus_per_node},
                {"gpu", load_spec_json(SpecKind::gpu, gpu).value},
                {"intra_node", c["intra_node"]}};
  if (nodes > 1) shape["inter_node"] = c.contains("inter_node") ? c["inter_node"] : c["intra_node"];
  return shape;
}

const Candidate* Recommendation::closest() const {
  const Candidate* best = nullptr;
  for (const auto& c : all) {
    if (!c.evaluated) continue;
    if (!best || c.failures.size() < best->failures.size() ||
        (c.failures.size() == best->failures.size() &&
         c.throughput_per_gpu > best->throughput_per_gpu))
      best = &c;
  }
  return best;
}

Recommendation recommend(const RecommendRequest& r) {
  if (r.gpus.empty()) throw Error("give at least one --gpu (built-in GPUs: see xring list)");
  if (r.max_gpus < 1 || r.max_gpus > kMaxRecommendGpus)
    throw Error("--max-gpus must be between 1 and " + std::to_string(kMaxRecommendGpus) +
                ", got " + std::to_string(r.max_gpus));
  std::vector<Override> overrides;
  for (const auto& text : r.overrides) {
    overrides.push_back(parse_override(text));
    if (overrides.back().target == SpecKind::cluster)
      throw Error("--set " + text +
                  ": recommend chooses the cluster; override model. or workload. fields");
  }
  SpecJson model = load_spec_json(SpecKind::model, r.model);
  SpecJson workload = load_spec_json(SpecKind::workload, r.workload);
  apply_overrides(model, SpecKind::model, overrides);
  apply_overrides(workload, SpecKind::workload, overrides);
  // Decode workloads also choose their KV policy among those they can use.
  std::vector<std::string> policies = {""};
  const WorkloadSpec w = workload_from_json(workload.value, workload.origin);
  if (w.phase == Phase::decode) {
    policies = {"full"};
    if (w.kv_budget) {
      policies.push_back("uniform");
      try {
        SpecJson adaptive = workload;
        adaptive.value["kv_policy"] = "adaptive";
        SpecJson probe{cluster_shape(r.gpus.front(), 1, 1), "probe"};
        load_head_profile(inputs_from_json(model, probe, adaptive, {}));
        policies.push_back("adaptive");
      } catch (const Error&) {
        // no head profile for this model: adaptive budgets are not an option
      }
    }
  }
  Recommendation out;
  for (const auto& gpu : r.gpus) {
    cluster_shape(gpu, 1, 1);  // unknown GPUs fail before the search
    for (int gpn : r.gpus_per_node)
      for (int nodes = 1; nodes * gpn <= r.max_gpus; ++nodes)
        for (const auto& policy : policies) {
          Candidate c;
          c.gpu = gpu;
          c.nodes = nodes;
          c.gpus_per_node = gpn;
          c.kv_policy = policy;
          out.all.push_back(c);
        }
  }
  // Fewest GPUs first: with min_gpus, once the smallest feasible size is known, bigger
  // shapes cannot win and are pruned.
  std::stable_sort(out.all.begin(), out.all.end(), [](const Candidate& a, const Candidate& b) {
    return a.total_gpus() < b.total_gpus();
  });
  // A weight-memory bound prunes shapes whose GPUs cannot even hold a shard of the weights.
  ModelSpec m = model_from_json(model.value, model.origin);
  std::atomic<int> smallest_meeting{INT32_MAX};
  std::atomic<size_t> next{0};
  PlannerOptions options;
  options.head_detail = false;
  std::vector<std::string> errors(out.all.size());
  auto worker = [&] {
    for (size_t i = next++; i < out.all.size(); i = next++) {
      Candidate& c = out.all[i];
      if (r.prune && r.objective == Objective::min_gpus && c.total_gpus() > smallest_meeting)
        continue;
      SpecJson cluster{cluster_shape(c.gpu, c.nodes, c.gpus_per_node), "recommend:" + c.gpu};
      if (r.prune) {
        double memory =
            units::parse(cluster.value["gpu"]["memory"].get<std::string>(), units::Quantity::bytes)
                .value_or(0);
        if ((m.params + m.vision_params) * bytes_per_element(m.dtype) > memory * c.total_gpus())
          continue;
      }
      try {
        SpecJson shaped = workload;
        if (!c.kv_policy.empty() && c.kv_policy != w.kv_policy.name)
          shaped.value["kv_policy"] = c.kv_policy;
        c.plan = plan(inputs_from_json(model, cluster, shaped, r.overrides), options);
        c.evaluated = true;
        const Predicted& p = c.plan.predicted;
        const bool decodes = c.plan.decode || c.plan.streaming;
        // An infeasible plan predicts no rate; it never meets, so its zeros rank nothing.
        c.throughput_per_gpu =
            (decodes ? p.decode_tokens_per_s : p.throughput_tokens_per_s).value_or(0) /
            c.total_gpus();
        c.latency_s = (decodes ? p.decode_step_s : p.iteration_time_s).value_or(0);
        if (!c.plan.feasible) c.failures = c.plan.reasons;
        if (!r.requirements.empty()) {
          gate::Document doc = gate::read_document(
              to_json(c.plan), "recommend:" + c.plan.inputs["cluster"]["name"].get<std::string>());
          for (const auto& row : gate::require(doc, r.requirements).rows)
            if (row.verdict != gate::Verdict::pass)
              c.failures.push_back("requirement " + row.requirement + " not met");
        }
      } catch (const Error& e) {  // no exception may leave a worker thread
        errors[i] = e.what();
        c.evaluated = false;
        continue;
      }
      c.meets = c.failures.empty();
      if (c.meets) {
        int g = c.total_gpus(), seen = smallest_meeting;
        while (g < seen && !smallest_meeting.compare_exchange_weak(seen, g)) {
        }
      }
    }
  };
  const int threads = r.threads > 0 ? r.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
  for (const auto& c : out.all) {
    if (c.evaluated)
      ++out.evaluated;
    else
      ++out.pruned;
    if (c.meets) out.ranked.push_back(c);
  }
  std::stable_sort(
      out.ranked.begin(), out.ranked.end(),
      [&](const Candidate& a, const Candidate& b) { return better(a, b, r.objective); });
  // Pareto frontier of the evaluated, meeting shapes: no other has more throughput per GPU and
  // less latency.
  for (auto& c : out.ranked) {
    c.pareto = std::none_of(out.ranked.begin(), out.ranked.end(), [&](const Candidate& o) {
      return (o.throughput_per_gpu >= c.throughput_per_gpu && o.latency_s <= c.latency_s) &&
             (o.throughput_per_gpu > c.throughput_per_gpu || o.latency_s < c.latency_s);
    });
  }
  return out;
}

}  // namespace xring
