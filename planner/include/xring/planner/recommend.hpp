// `xring recommend`: the cluster shapes (GPU type x nodes x GPUs per node) that meet a
// workload's requirements, ranked by an objective, with the Pareto frontier of throughput per
// GPU against latency.
#pragma once

#include <string>
#include <vector>

#include "xring/planner/planner.hpp"

namespace xring {

enum class Objective { min_gpus, max_throughput_per_gpu, min_latency };
Objective objective_from_string(const std::string& s);  ///< throws xring::Error with the choices

/// The largest cluster recommend searches (README "Resource limits"): every node count up to it
/// is planned, so the search time grows with it (1e9 took 56 s and 14.7 GB before this bound).
constexpr int kMaxRecommendGpus = 4096;

struct RecommendRequest {
  std::string model, workload;
  std::vector<std::string> overrides;  ///< model./workload. overrides for every shape
  std::vector<std::string> gpus;       ///< built-in GPU names
  int max_gpus = 64;
  std::vector<int> gpus_per_node = {1, 2, 4, 8};
  std::vector<std::string> requirements;  ///< as xring gate --require
  Objective objective = Objective::min_gpus;
  bool prune = true;  ///< skip shapes that cannot win (tests compare with false)
  int threads = 0;
};

struct Candidate {
  std::string gpu;
  int nodes = 1, gpus_per_node = 1;
  std::string kv_policy;  ///< decode workloads: the KV policy tried ("" otherwise)
  int total_gpus() const { return nodes * gpus_per_node; }
  Plan plan;
  bool evaluated = false;             ///< false when pruned
  bool meets = false;                 ///< feasible and every requirement met
  std::vector<std::string> failures;  ///< why not (infeasible reasons, unmet requirements)
  double throughput_per_gpu = 0;      ///< tokens/s per GPU (decode tokens for decode plans)
  double latency_s = 0;               ///< iteration (prefill/training) or decode step
  bool pareto = false;
};

struct Recommendation {
  std::vector<Candidate> ranked;  ///< meeting every requirement, best first
  std::vector<Candidate> all;     ///< every shape considered, in search order
  int evaluated = 0, pruned = 0;
  const Candidate* closest() const;  ///< when nothing meets: the nearest miss
};

/// Searches every shape (and, for decode workloads, every KV policy the workload can use:
/// full, and uniform and adaptive when it gives a kv_budget). Throws xring::Error for bad input
/// (unknown GPU, bad requirement).
Recommendation recommend(const RecommendRequest& request);

/// The cluster spec JSON of a shape, links taken from the built-in cluster using that GPU.
nlohmann::json cluster_shape(const std::string& gpu, int nodes, int gpus_per_node);

}  // namespace xring
