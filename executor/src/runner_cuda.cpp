// The cuda backend's runner: every rank of a ring emulated on this one GPU (streams and events
// per rank, transfers as device-to-device copies), beside one rank doing the whole layer.
#include <algorithm>

#include "layer_runner.hpp"
#include "xring/executor/cuda_ring_device.hpp"
#include "xring/executor/emulated.hpp"
#include "xring/planner/cost_model.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

/// A compute operation's name in the trace.
const char* op_name(const RingOp& op) {
  return op.kind == RingOp::Kind::merge ? "merge" : "attend";
}

/// --backend cuda: `repeat` runs of the layer's ring on `ranks` ranks emulated on the GPU, and
/// as many of one rank doing the same work (the monolithic bound); checked against the CPU
/// reference when it is affordable, else against the monolithic run. Fills the layer's times
/// (the last repetition's per-rank figures) and adds its timeline to `events` from `start_s`.
Comparison run_cuda_layer(const LayerJob& job, const RunOptions& options, double start_s,
                          LayerReport& layer, std::vector<TraceEvent>& events) {
  const AttentionProblem& problem = job.problem;
  const Strategy strategy = job.strategy;
  const int ranks = job.ranks;
  const bool backward = job.backward;
  const Link& ring_link = job.placement.ring_link;
  const bool cpu_reference = job.cpu_affordable;
  auto device = make_cuda_ring_device(problem, ranks);
  auto single = make_cuda_ring_device(problem, 1);
  EmulatedRun run, mono;
  std::vector<double> mono_samples;
  for (int rep = -options.warmup; rep < std::max(1, options.repeat); ++rep) {
    run = run_emulated(*device, strategy, ranks, problem, backward);
    mono = run_emulated(*single, Strategy::single, 1, problem, backward);
    if (rep < 0) continue;  // warm-up: module loading, first allocations, clocks
    layer.measured_samples_s.push_back(run.forward.total_s + run.backward.total_s);
    mono_samples.push_back(mono.forward.total_s + mono.backward.total_s);
  }
  layer.measured_time_s = median(layer.measured_samples_s);
  layer.monolithic_time_s = median(mono_samples);
  if (layer.monolithic_time_s > 0)
    layer.ring_overhead = layer.measured_time_s / layer.monolithic_time_s - 1;
  double offset = start_s;
  for (const PassTiming* pass : {&run.forward, &run.backward}) {
    if (pass->compute_s.empty()) continue;
    for (size_t i = 0; i < pass->ops.size(); ++i) {
      const RingOp& op = pass->schedule.ops[i];
      layer.bytes_sent += pass->op_bytes[i];
      events.push_back(
          {op.rank, op.comm_lane ? 2 : 1,
           (op.comm_lane ? "send to rank " + std::to_string(op.to) : std::string(op_name(op))) +
               " step " + std::to_string(op.step),
           offset + pass->ops[i].start_s, offset + pass->ops[i].end_s});
    }
    offset += pass->total_s;
  }
  for (int r = 0; r < ranks; ++r) {
    double compute = 0, copy = 0, derived = 0;
    for (const PassTiming* pass : {&run.forward, &run.backward}) {
      if (pass->compute_s.empty()) continue;
      compute += pass->compute_s[r];
      copy += pass->copy_s[r];
      for (size_t i = 0; i < pass->ops.size(); ++i)
        if (pass->schedule.ops[i].rank == r) derived += transfer_s(pass->op_bytes[i], ring_link);
    }
    layer.measured_compute_s = std::max(layer.measured_compute_s, compute);
    layer.measured_copy_s = std::max(layer.measured_copy_s, copy);
    layer.derived_comm_s = std::max(layer.derived_comm_s, derived);
  }
  layer.measured_comm_s = layer.measured_copy_s;
  const AttentionResult want = cpu_reference ? run_reference(problem, backward) : mono.result;
  layer.checked_against = cpu_reference ? "reference" : "monolithic cuda run";
  const double relative = gpu_relative_tolerance(problem.storage);
  Comparison c;
  compare(run.result.o, want.o, problem.storage, c, relative);
  compare(run.result.l, want.l, kernels::Storage::fp32, c, 1e-3);
  if (backward) {
    compare(run.result.dq, want.dq, problem.storage, c, relative);
    compare(run.result.dk, want.dk, problem.storage, c, relative);
    compare(run.result.dv, want.dv, problem.storage, c, relative);
  }
  return c;
}

class CudaRunner final : public LayerRunner {
 public:
  CudaRunner(const RunOptions& options, RunClock::time_point origin)
      : options_(options), origin_(origin) {}

  void check(const LayerJob& job) const override {
    const Strategy s = job.strategy;
    if (job.projected ||
        (s != Strategy::query_ring && s != Strategy::kv_ring && s != Strategy::single))
      throw Error(job.at +
                  ": --backend cuda runs query_ring, kv_ring and single layers without "
                  "K/V recomputation; this layer is " +
                  to_string(s) + (job.projected ? " with recomputation" : "") +
                  " (use --backend cpu)");
  }

  Comparison run(const LayerJob& job, LayerReport& layer,
                 std::vector<TraceEvent>& events) override {
    return run_cuda_layer(job, options_, seconds_since(origin_), layer, events);
  }

  std::vector<std::string> notes(const Inputs& in) const override {
    return {
        "measured: the cuda backend, every rank of a ring emulated on this one GPU (the "
        "ranks' kernels share it; ring transfers are device-to-device copies overlapped with "
        "them); predicted: the planner's cost on the planned cluster (" +
            in.cluster.name + ")",
        "derived_comm_s: the bytes each rank sent, timed on the planned cluster's ring link "
        "(bandwidth and latency from the cluster spec), not measured",
        "monolithic_time_s: one rank doing the layer's whole work on the same GPU; "
        "ring_overhead = measured / monolithic − 1"};
  }

 private:
  const RunOptions& options_;
  RunClock::time_point origin_;
};

}  // namespace

std::unique_ptr<LayerRunner> make_cuda_runner(const RunOptions& options,
                                              RunClock::time_point origin_time) {
  const std::string why = cuda_backend_unavailable();
  if (!why.empty()) throw Error("--backend cuda: " + why, ExitCode::runtime);
  return std::make_unique<CudaRunner>(options, origin_time);
}

}  // namespace xring::executor
