// planner::plan(): chooses, for every cross-attention layer, the fastest strategy and rank
// count that fits in memory, and predicts the iteration's time, throughput and memory.
#pragma once

#include <optional>
#include <string>

#include "xring/planner/inputs.hpp"
#include "xring/planner/plan.hpp"

namespace xring {

/// Choices a user can pin; everything left empty the planner decides.
struct PlannerOptions {
  std::optional<Strategy> strategy;  ///< `--strategy`
  std::optional<int> ranks;          ///< `--ranks`: P, must divide the cluster's GPU count
  std::optional<bool> recompute;     ///< training: force LV-XAttn recomputation on or off
  bool head_detail = true;  ///< list every head's placement in decode.heads (sweeps skip it)
  /// Echo the inputs into the plan and hash them for its provenance. A sweep turns it off: it
  /// records its inputs once for all its points (sweep_provenance).
  bool inputs_and_provenance = true;
};

/// The version string written into plans.
std::string xring_version();

/// Plans `in`. Never throws for an infeasible configuration: that is a Plan with
/// feasible == false and reasons. Throws xring::Error for a pinned choice that makes no sense
/// (e.g. ranks that do not divide the GPU count).
Plan plan(const Inputs& in, const PlannerOptions& options = {});

/// The shape of one cross-attention layer for a data-parallel group holding `batch` samples.
LayerShape cross_attention_shape(const ModelSpec& m, const WorkloadSpec& w, long long batch);

/// The slowest link among the ranks {first + k·stride | k < count} of a cluster: the
/// intra-node link when they share a node, else the slower of intra- and inter-node.
Link group_link(const ClusterSpec& c, int first, int stride, int count);

/// How a layer with `ranks` ranks runs on the inputs' cluster: links (the slowest hop of its
/// ring or all-to-all group, ranks placed from rank 0) and the GPU's achieved rates. The one
/// place the planner and the executor's "predicted" column both get these from.
Placement placement_for(const Inputs& in, Strategy s, int ranks, int ulysses_degree,
                        bool recompute);

/// Reads and validates a plan file, including the specs echoed in its inputs and every count
/// and index of the plan against them (check_plan_against_inputs).
Plan read_plan_file(const std::string& path);
/// Throws xring::Error naming `origin` and the JSON path when a plan's rank counts, groups,
/// layer indices, decode heads or GPU indices fall outside the model, cluster and workload it
/// echoes (a hand-edited or corrupt plan), so that nothing downstream indexes out of range.
void check_plan_against_inputs(const Plan& p, const Inputs& in, const std::string& origin);
/// The validated specs a plan echoes; errors name `origin` and inputs.model/cluster/workload.
Inputs plan_inputs(const Plan& p, const std::string& origin);

}  // namespace xring
