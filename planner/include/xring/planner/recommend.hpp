// `xring recommend`: the cluster shapes (GPU type x nodes x GPUs per node) that meet a
// workload's requirements, ranked by an objective, with the Pareto frontier of throughput per
// GPU against latency.
#pragma once

#include <string>
#include <vector>

#include "xring/planner/planner.hpp"
#include "xring/planner/systems.hpp"

namespace xring {

enum class Objective { min_gpus, max_throughput_per_gpu, min_latency };
Objective objective_from_string(const std::string& s);  ///< throws xring::Error with the choices

/// The largest cluster recommend searches (docs/file-formats.md "Resource limits"): every node count up to it
/// is planned, so the search time grows with it (1e9 took 56 s and 14.7 GB before this bound).
constexpr int kMaxRecommendGpus = 4096;

struct RecommendRequest {
  std::string model, workload;
  /// Overrides for every shape: model. and workload. fields; cluster.system and cluster.fabric
  /// (links), cluster.gpu (one more GPU to consider), other cluster fields except the shape.
  std::vector<std::string> overrides;
  std::vector<std::string> gpus;  ///< GPU names or files
  int max_gpus = 64;
  /// Node sizes to try; empty: whole systems (each GPU's system's GPUs per node, 8 for HGX).
  std::vector<int> gpus_per_node;
  std::vector<std::string> requirements;  ///< as xring gate --require
  Objective objective = Objective::min_gpus;
  /// Decode workloads: also search the KV policies the workload can use (full, uniform,
  /// adaptive). Off by default: the workload's own policy is kept, because adaptive budgets
  /// buy quality at equal memory, which the cost model does not price.
  bool search_kv_policy = false;
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
  /// One unmet requirement with a bound: what was required and what this shape reached.
  struct Miss {
    std::string requirement, metric, unit;
    double bound = 0;
    std::optional<double> reached;  ///< empty: nothing predicted
  };
  std::vector<Miss> misses;
  /// How far from meeting every requirement: the largest |reached − bound| / |bound| over the
  /// unmet requirements; 0 when it meets them, +inf when infeasible or a requirement has no
  /// number to compare (nothing predicted, a boolean not holding).
  double relative_miss = 0;
  double throughput_per_gpu = 0;      ///< tokens/s per GPU (decode tokens for decode plans)
  double latency_s = 0;               ///< iteration (prefill/training) or decode step
  bool pareto = false;
};

/// Whether `a` ranks before `b` under the objective; equal numbers (within rounding) go to the
/// shape with fewer nodes.
bool ranks_before(const Candidate& a, const Candidate& b, Objective o);

struct Recommendation {
  std::vector<Candidate> ranked;  ///< meeting every requirement, best first
  std::vector<Candidate> all;     ///< every shape considered, in search order
  int evaluated = 0, pruned = 0;
  /// When nothing meets: the evaluated shape with the smallest relative miss on the required
  /// metrics; ties (and shapes that miss by +inf) go to fewer failures, then fewer GPUs.
  const Candidate* closest() const;
};

/// Searches every shape (and, with search_kv_policy for decode workloads, every KV policy the
/// workload can use: full, and uniform and adaptive when it gives a kv_budget). Ties go to fewer nodes. Throws
/// xring::Error for bad input (unknown GPU, bad requirement, a system larger than max_gpus).
Recommendation recommend(const RecommendRequest& request);

/// The system a GPU is sized in: `cluster.system` from `overrides`, else the GPU's
/// default_system. Throws xring::Error when neither is given.
SystemSpec system_of(const std::string& gpu, const std::vector<std::string>& overrides);

/// The resolved cluster spec JSON of a shape: the GPU in its system (links from the system and
/// its default fabric, or cluster.system / cluster.fabric from `overrides`), with the other
/// cluster overrides applied. Every shape names its fabric, one-node shapes too.
nlohmann::json cluster_shape(const std::string& gpu, int nodes, int gpus_per_node,
                             const std::vector<std::string>& overrides = {});
/// cluster_shape before sizing (one node of the system's size), and the sizing of it: the
/// search resolves each GPU's template once.
nlohmann::json shape_template(const std::string& gpu, const std::vector<std::string>& overrides);
nlohmann::json sized(nlohmann::json shape, const std::string& gpu, int nodes, int gpus_per_node);

}  // namespace xring
