// Capacity search over cluster shapes, with pruning and the Pareto frontier.
#include "xring/planner/recommend.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "xring/planner/decode.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/systems.hpp"
#include "xring/planner/workers.hpp"

namespace xring {

bool ranks_before(const Candidate& a, const Candidate& b, Objective o) {
  switch (o) {
    case Objective::min_gpus:
      if (a.total_gpus() != b.total_gpus()) return a.total_gpus() < b.total_gpus();
      if (a.throughput_per_gpu != b.throughput_per_gpu)
        return a.throughput_per_gpu > b.throughput_per_gpu;
      break;
    case Objective::max_throughput_per_gpu:
      if (a.throughput_per_gpu != b.throughput_per_gpu)
        return a.throughput_per_gpu > b.throughput_per_gpu;
      if (a.total_gpus() != b.total_gpus()) return a.total_gpus() < b.total_gpus();
      break;
    case Objective::min_latency:
      if (a.latency_s != b.latency_s) return a.latency_s < b.latency_s;
      if (a.total_gpus() != b.total_gpus()) return a.total_gpus() < b.total_gpus();
      break;
  }
  // A tie (exact: shapes whose plans stay inside a node predict the same numbers): fewer,
  // bigger nodes are simpler to buy and to run.
  return a.nodes < b.nodes;
}

Objective objective_from_string(const std::string& s) {
  if (s == "min_gpus") return Objective::min_gpus;
  if (s == "max_throughput_per_gpu") return Objective::max_throughput_per_gpu;
  if (s == "min_latency") return Objective::min_latency;
  throw Error("unknown objective \"" + s +
              "\" (objectives: min_gpus, max_throughput_per_gpu, min_latency)");
}

namespace {

/// The value of the `cluster.KEY=...` override, if one is given (the last wins).
std::optional<std::string> cluster_override(const std::vector<Override>& overrides,
                                            const std::string& key) {
  std::optional<std::string> value;
  for (const auto& o : overrides)
    if (o.target == SpecKind::cluster && o.path.size() == 1 && o.path[0] == key)
      value = o.value.is_string() ? o.value.get<std::string>() : o.value.dump();
  return value;
}

/// The GPU's default system; "" when it names none. Errors say which --gpu.
std::string default_system_of(const std::string& gpu) {
  try {
    SpecJson g = load_spec_json(SpecKind::gpu, gpu);
    return gpu_from_json(g.value, g.origin).default_system;
  } catch (const Error& e) {
    throw Error("--gpu " + gpu + ": " + e.what());
  }
}

std::vector<Override> parse_all(const std::vector<std::string>& texts) {
  std::vector<Override> parsed;
  for (const auto& t : texts) parsed.push_back(parse_override(t));
  return parsed;
}

}  // namespace

namespace {

/// The system a GPU is sized in, as given: cluster.system, else the GPU's default_system.
std::string system_name_of(const std::string& gpu, const std::vector<Override>& parsed) {
  std::optional<std::string> name = cluster_override(parsed, "system");
  if (!name) name = default_system_of(gpu);
  if (name->empty()) {
    std::string list;
    for (const auto& n : builtin_names(SpecKind::system)) list += (list.empty() ? "" : ", ") + n;
    throw Error("--gpu " + gpu +
                ": this GPU names no default_system, so its node and links are unknown; add "
                "\"default_system\" to the GPU spec or give --set cluster.system=NAME (built-in "
                "systems: " +
                list + ")");
  }
  return *name;
}

}  // namespace

SystemSpec system_of(const std::string& gpu, const std::vector<std::string>& overrides) {
  SpecJson s = load_spec_json(SpecKind::system, system_name_of(gpu, parse_all(overrides)));
  return system_from_json(s.value, s.origin);
}

nlohmann::json shape_template(const std::string& gpu, const std::vector<std::string>& overrides) {
  std::vector<Override> parsed = parse_all(overrides);
  const std::string system = system_name_of(gpu, parsed);
  const std::string fabric =
      cluster_override(parsed, "fabric").value_or(system_of(gpu, overrides).default_fabric);
  SpecJson shape{{{"name", gpu},
                  {"source", "xring recommend shape: " + gpu + " in system " + system +
                                 " with fabric " + fabric},
                  {"nodes", 1},
                  {"gpu", gpu},
                  {"system", system},
                  {"fabric", fabric}},
                 "recommend:" + gpu};
  // The search chooses GPU, node count and GPUs per node; other cluster fields may be set.
  std::vector<Override> rest;
  for (const auto& o : parsed)
    if (o.target == SpecKind::cluster &&
        !(o.path.size() == 1 &&
          (o.path[0] == "system" || o.path[0] == "fabric" || o.path[0] == "gpu")))
      rest.push_back(o);
  apply_overrides(shape, SpecKind::cluster, rest);
  resolve_cluster_references(shape);
  return shape.value;
}

nlohmann::json sized(nlohmann::json shape, const std::string& gpu, int nodes, int gpus_per_node) {
  shape["name"] = gpu + "-" + std::to_string(nodes) + "x" + std::to_string(gpus_per_node);
  shape["nodes"] = nodes;
  shape["gpus_per_node"] = gpus_per_node;
  return shape;
}

nlohmann::json cluster_shape(const std::string& gpu, int nodes, int gpus_per_node,
                             const std::vector<std::string>& overrides) {
  return sized(shape_template(gpu, overrides), gpu, nodes, gpus_per_node);
}

const Candidate* Recommendation::closest() const {
  const Candidate* best = nullptr;
  for (const auto& c : all) {
    if (!c.evaluated) continue;
    if (!best || c.relative_miss < best->relative_miss) {
      best = &c;
      continue;
    }
    if (c.relative_miss > best->relative_miss) continue;
    if (c.failures.size() != best->failures.size()) {
      if (c.failures.size() < best->failures.size()) best = &c;
      continue;
    }
    if (c.total_gpus() < best->total_gpus()) best = &c;
  }
  return best;
}

namespace {

/// The relative distance of a reached value from its bound; +inf when nothing was reached.
double relative_distance(const Candidate::Miss& m) {
  if (!m.reached) return std::numeric_limits<double>::infinity();
  const double scale = std::fabs(m.bound) > 0 ? std::fabs(m.bound) : 1.0;
  return std::fabs(*m.reached - m.bound) / scale;
}

/// The GPUs to search (--gpu, and --set cluster.gpu=NAME which means the same), with every
/// override parsed into `overrides`; refuses overrides of what the search itself chooses.
std::vector<std::string> requested_gpus(const RecommendRequest& r,
                                        std::vector<Override>& overrides) {
  std::vector<std::string> gpus = r.gpus;
  for (const auto& text : r.overrides) {
    overrides.push_back(parse_override(text));
    const Override& o = overrides.back();
    if (o.target != SpecKind::cluster) continue;
    if (o.path[0] == "nodes" || o.path[0] == "gpus_per_node" || o.path[0] == "name")
      throw Error("--set " + text +
                  ": recommend chooses the cluster shape; use --gpus-per-node and --max-gpus");
    if (o.path.size() == 1 && o.path[0] == "gpu") {
      if (!o.value.is_string()) throw Error("--set " + text + ": give a GPU name or .json file");
      gpus.push_back(o.value.get<std::string>());
    }
  }
  if (gpus.empty()) {
    std::string list;
    for (const auto& n : builtin_names(SpecKind::gpu)) list += (list.empty() ? "" : ", ") + n;
    throw Error("give at least one --gpu (built-in GPUs: " + list + ")");
  }
  return gpus;
}

/// What one search plans with: the specs after overrides and each GPU's resolved cluster
/// template (sized per shape).
struct Search {
  const RecommendRequest& request;
  SpecJson model, workload;
  WorkloadSpec w;
  ModelSpec m;
  std::map<std::string, json> templates;
  PlannerOptions options;
};

/// The KV policies a decode search tries: full, and where the workload gives a kv_budget,
/// uniform and (when the model has a head profile) adaptive. One empty entry otherwise: the
/// workload's own policy.
std::vector<std::string> policies_to_search(const Search& s, const std::string& probe_gpu) {
  if (s.w.phase != Phase::decode || !s.request.search_kv_policy) return {""};
  std::vector<std::string> policies = {"full"};
  if (!s.w.kv_budget) return policies;
  policies.push_back("uniform");
  try {
    SpecJson adaptive = s.workload;
    adaptive.value["kv_policy"] = "adaptive";
    SpecJson probe{cluster_shape(probe_gpu, 1, 1, s.request.overrides), "probe"};
    load_head_profile(inputs_from_json(s.model, probe, adaptive, {}));
    policies.push_back("adaptive");
  } catch (const Error&) {
    // no head profile for this model: adaptive budgets are not an option
  }
  return policies;
}

/// Every shape of every GPU within --max-gpus (whole systems unless --gpus-per-node), for each
/// policy, fewest GPUs first: with min_gpus, once the smallest feasible size is known, bigger
/// shapes cannot win and are pruned. Resolves each GPU's template into `s.templates`.
std::vector<Candidate> enumerate_shapes(Search& s, const std::vector<std::string>& gpus,
                                        const std::vector<std::string>& policies) {
  const RecommendRequest& r = s.request;
  std::vector<Candidate> all;
  for (const auto& gpu : gpus) {
    const SystemSpec system = system_of(gpu, r.overrides);  // unknown GPUs fail before the search
    s.templates[gpu] = shape_template(gpu, r.overrides);
    std::vector<int> per_node = r.gpus_per_node;
    if (per_node.empty()) per_node = {system.gpus_per_node};  // whole systems, as they are sold
    if (std::all_of(per_node.begin(), per_node.end(), [&](int g) { return g > r.max_gpus; }))
      throw Error("--gpu " + gpu + ": a " + system.name + " node has " +
                  std::to_string(per_node.front()) + " GPUs, more than --max-gpus " +
                  std::to_string(r.max_gpus) + "; raise --max-gpus or give --gpus-per-node");
    for (int gpn : per_node)
      for (int nodes = 1; nodes * gpn <= r.max_gpus; ++nodes)
        for (const auto& policy : policies) {
          Candidate c;
          c.gpu = gpu;
          c.nodes = nodes;
          c.gpus_per_node = gpn;
          c.kv_policy = policy;
          all.push_back(c);
        }
  }
  std::stable_sort(all.begin(), all.end(), [](const Candidate& a, const Candidate& b) {
    return a.total_gpus() < b.total_gpus();
  });
  return all;
}

/// Records in `c` each requirement its plan does not meet, and how far it is from meeting.
void check_requirements(Candidate& c, const std::vector<std::string>& requirements) {
  if (requirements.empty()) return;
  gate::Document doc = gate::read_document(
      to_json(c.plan), "recommend:" + c.plan.inputs["cluster"]["name"].get<std::string>());
  for (const auto& row : gate::require(doc, requirements).rows) {
    if (row.verdict == gate::Verdict::pass) continue;
    c.failures.push_back("requirement " + row.requirement + " not met");
    if (row.bound) {
      c.misses.push_back({row.requirement, row.metric, row.unit, *row.bound, row.current});
      c.relative_miss = std::max(c.relative_miss, relative_distance(c.misses.back()));
    } else {
      c.relative_miss = std::numeric_limits<double>::infinity();
    }
  }
}

/// Plans one shape and checks it; false (left unevaluated) when its GPUs cannot even hold a
/// shard of the weights. Throws xring::Error for bad input.
bool evaluate(Candidate& c, const Search& s) {
  const RecommendRequest& r = s.request;
  SpecJson cluster{sized(s.templates.at(c.gpu), c.gpu, c.nodes, c.gpus_per_node),
                   "recommend:" + c.gpu};
  if (r.prune) {
    double memory =
        units::parse(cluster.value["gpu"]["memory"].get<std::string>(), units::Quantity::bytes)
            .value_or(0);
    if ((s.m.params + s.m.vision_params) * bytes_per_element(s.m.dtype) > memory * c.total_gpus())
      return false;
  }
  SpecJson shaped = s.workload;
  if (!c.kv_policy.empty() && c.kv_policy != s.w.kv_policy.name)
    shaped.value["kv_policy"] = c.kv_policy;
  c.plan = plan(inputs_from_json(s.model, cluster, shaped, r.overrides), s.options);
  c.evaluated = true;
  const Predicted& p = c.plan.predicted;
  const bool decodes = c.plan.decode || c.plan.streaming;
  // An infeasible plan predicts no rate; it never meets, so its zeros rank nothing.
  c.throughput_per_gpu =
      (decodes ? p.decode_tokens_per_s : p.throughput_tokens_per_s).value_or(0) / c.total_gpus();
  c.latency_s = (decodes ? p.decode_step_s : p.iteration_time_s).value_or(0);
  if (!c.plan.feasible) c.failures = c.plan.reasons;
  check_requirements(c, r.requirements);
  if (!c.plan.feasible) c.relative_miss = std::numeric_limits<double>::infinity();
  c.meets = c.failures.empty();
  return true;
}

/// Evaluates every candidate on `threads` threads. Bad input in any shape is rethrown as the
/// first such error after all threads stop; anything else (out of memory) ends the search and
/// is rethrown as it is: no exception leaves a worker thread.
void evaluate_all(std::vector<Candidate>& all, const Search& s, int threads) {
  const RecommendRequest& r = s.request;
  std::atomic<int> smallest_meeting{INT32_MAX};
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  std::exception_ptr fatal;
  std::vector<std::string> errors(all.size());
  // Out of memory (or any exception but bad input) while evaluating, or while recording bad
  // input, ends the search: nothing may leave a worker thread.
  auto worker = [&] {
    try {
      for (size_t i = next++; i < all.size() && !stop; i = next++) {
        Candidate& c = all[i];
        if (r.prune && r.objective == Objective::min_gpus && c.total_gpus() > smallest_meeting)
          continue;
        try {
          if (!evaluate(c, s)) continue;
        } catch (const Error& e) {
          c.evaluated = false;
          errors[i] = e.what();
          continue;
        }
        if (c.meets) {
          int g = c.total_gpus(), seen = smallest_meeting;
          while (g < seen && !smallest_meeting.compare_exchange_weak(seen, g)) {
          }
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!fatal) fatal = std::current_exception();
      stop = true;
    }
  };
  std::vector<std::thread> pool;
  start_workers(
      pool, threads - 1, [&](int) { worker(); }, [&] { stop = true; });
  worker();
  for (auto& t : pool) t.join();
  if (fatal) std::rethrow_exception(fatal);
  for (const auto& e : errors)
    if (!e.empty()) throw Error(e);
}

/// Counts, ranks under the objective and marks the Pareto frontier of the meeting shapes (no
/// other has more throughput per GPU and less latency).
void rank(Recommendation& out, Objective objective) {
  for (const auto& c : out.all) {
    if (c.evaluated)
      ++out.evaluated;
    else
      ++out.pruned;
    if (c.meets) out.ranked.push_back(c);
  }
  std::stable_sort(
      out.ranked.begin(), out.ranked.end(),
      [&](const Candidate& a, const Candidate& b) { return ranks_before(a, b, objective); });
  for (auto& c : out.ranked) {
    c.pareto = std::none_of(out.ranked.begin(), out.ranked.end(), [&](const Candidate& o) {
      return (o.throughput_per_gpu >= c.throughput_per_gpu && o.latency_s <= c.latency_s) &&
             (o.throughput_per_gpu > c.throughput_per_gpu || o.latency_s < c.latency_s);
    });
  }
}

}  // namespace

Recommendation recommend(const RecommendRequest& r) {
  if (r.max_gpus < 1 || r.max_gpus > kMaxRecommendGpus)
    throw Error("--max-gpus must be between 1 and " + std::to_string(kMaxRecommendGpus) + ", got " +
                std::to_string(r.max_gpus));
  std::vector<Override> overrides;
  const std::vector<std::string> gpus = requested_gpus(r, overrides);
  Search s{r,
           load_spec_json(SpecKind::model, r.model),
           load_spec_json(SpecKind::workload, r.workload),
           {},
           {},
           {},
           {}};
  apply_overrides(s.model, SpecKind::model, overrides);
  apply_overrides(s.workload, SpecKind::workload, overrides);
  s.w = workload_from_json(s.workload.value, s.workload.origin);
  s.options.head_detail = false;
  Recommendation out;
  out.all = enumerate_shapes(s, gpus, policies_to_search(s, gpus.front()));
  s.m = model_from_json(s.model.value, s.model.origin);  // for the weight-memory bound
  const int threads = r.threads > 0 ? r.threads : std::max(1u, std::thread::hardware_concurrency());
  evaluate_all(out.all, s, threads);
  rank(out, r.objective);
  return out;
}

}  // namespace xring
