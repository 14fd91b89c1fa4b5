// One runner per backend behind one interface. run_plan resolves each layer of a plan once into
// a LayerJob (shape, strategy, ranks, inputs, placement) and hands it to the runner of the
// plan's backend, which runs it, times it and compares it with the reference. A new execution
// path (streaming, say) is one more runner and one line in make_layer_runner.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "xring/executor/attention.hpp"
#include "xring/executor/run.hpp"
#include "xring/executor/verification.hpp"
#include "xring/planner/planner.hpp"

namespace xring::executor {

using RunClock = std::chrono::steady_clock;

/// Seconds from `origin` to now: every timestamp of a run's trace.
inline double seconds_since(RunClock::time_point origin) {
  return std::chrono::duration<double>(RunClock::now() - origin).count();
}

/// A layer as it runs, resolved once from the plan (after --scale).
struct LayerJob {
  const LayerPlan* plan = nullptr;
  std::string at;     ///< "PLAN: layers[i]", the start of bad-input messages
  std::string label;  ///< "layer N (strategy, P ranks)", the start of failure messages
  LayerShape shape;
  Strategy strategy = Strategy::single;
  int ranks = 1;
  HybridLayout layout;
  bool backward = false;
  bool projected = false;       ///< training with K/V recomputed from the visual tokens
  bool cpu_affordable = false;  ///< within --max-gflop-per-layer: the CPU reference is run
  double flops = 0;             ///< the layer's work (forward, backward, projections)
  Placement placement;          ///< the planned cluster's placement (its ring link)
  uint64_t seed = 1;            ///< the layer's own seed (inputs, projection weights)
  AttentionProblem problem;     ///< the synthetic inputs (filled after `check`)
};

class LayerRunner {
 public:
  virtual ~LayerRunner() = default;
  /// Throws xring::Error (bad input, naming job.at) when this backend cannot run the layer;
  /// called before its inputs are made.
  virtual void check(const LayerJob& job) const = 0;
  /// Runs the layer: times, bytes and the trace's events into `layer` and `events` (from the
  /// run's origin); returns the errors against the reference.
  virtual Comparison run(const LayerJob& job, LayerReport& layer,
                         std::vector<TraceEvent>& events) = 0;
  /// Called once after every layer ran.
  virtual void finish() {}
  /// Whether this process writes the report (all but the nccl backend's ranks other than 0).
  virtual bool primary() const { return true; }
  /// What the report says about how this backend measured.
  virtual std::vector<std::string> notes(const Inputs& in) const = 0;
};

/// The runner of `options.backend` for `plan`, after that backend's checks of the plan as a
/// whole (launch identity, GPU available, layers it can run); the nccl runner meets its peers.
std::unique_ptr<LayerRunner> make_layer_runner(const Plan& plan, const std::string& origin,
                                               const RunOptions& options,
                                               RunClock::time_point origin_time);

std::unique_ptr<LayerRunner> make_cpu_runner(const RunOptions& options,
                                             RunClock::time_point origin_time);
std::unique_ptr<LayerRunner> make_cuda_runner(const RunOptions& options,
                                              RunClock::time_point origin_time);
std::unique_ptr<LayerRunner> make_nccl_runner(const Plan& plan, const std::string& origin,
                                              const RunOptions& options,
                                              RunClock::time_point origin_time);

/// A layer's errors into its report line, and its errors and times into the report's totals.
void record(const Comparison& c, LayerReport& layer, RunReport& report, double& worst_ratio);

/// Decode plans (cpu backend): one decode step of every self-attention layer with the plan's
/// head placement, against single-device decode on the same compacted caches.
RunReport run_decode_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                          const RunOptions& options, RunReport report);

/// Streaming plans (cpu backend): the workload's policy over a seeded synthetic stream, frame by
/// frame, with its text queries verified against attention over exactly the kept tokens.
RunReport run_streaming_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                             const RunOptions& options, RunReport report);

}  // namespace xring::executor
