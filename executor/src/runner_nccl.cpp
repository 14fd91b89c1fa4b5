// The nccl backend's runner: this process runs its rank of every layer's ring on its GPU; times
// are the slowest rank's and errors the largest over the ranks (each checks its own rows).
#include <algorithm>

#include "layer_runner.hpp"
#include "xring/executor/cuda_ring_device.hpp"
#include "xring/executor/nccl_backend.hpp"
#include "xring/planner/cost_model.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

/// A compute operation's name in the trace.
const char* op_name(const RingOp& op) {
  return op.kind == RingOp::Kind::merge ? "merge" : "attend";
}

/// Rows `r` of `from` written over the same rows of `into` ([B][heads][total][width]).
void copy_rows(std::vector<float>& into, const std::vector<float>& from, int batch, int heads,
               long long total, int width, kernels::Rows r) {
  if (from.empty()) return;
  std::vector<float> block = kernels::slice_rows(from, batch, heads, total, width, r);
  kernels::place_rows(into, batch, heads, total, width, r, block.data());
}

/// --backend nccl: this process's rank of the layer's ring, `repeat` times. Times are the
/// slowest rank's (all-reduced); each rank checks its own rows against the CPU reference when it
/// is affordable, else against a one-rank run on its GPU, and the errors are all-reduced.
Comparison run_nccl_layer(NcclSession& session, const LayerJob& job, const RunOptions& options,
                          double start_s, LayerReport& layer, std::vector<TraceEvent>& events) {
  const AttentionProblem& problem = job.problem;
  const Strategy strategy = job.strategy;
  const bool backward = job.backward;
  const Link& ring_link = job.placement.ring_link;
  const bool cpu_reference = job.cpu_affordable;
  const std::string& where = job.label;
  const int me = session.rank(), P = session.world();
  EmulatedRun run;
  for (int rep = -options.warmup; rep < std::max(1, options.repeat); ++rep) {
    run = session.run(strategy, problem, backward, where);
    if (rep >= 0) layer.measured_samples_s.push_back(run.forward.total_s + run.backward.total_s);
  }
  layer.measured_samples_s = session.all_reduce(layer.measured_samples_s, true);
  layer.measured_time_s = median(layer.measured_samples_s);
  double compute = 0, copy = 0, derived = 0, bytes = 0, offset = start_s;
  for (const PassTiming* pass : {&run.forward, &run.backward}) {
    if (pass->compute_s.empty()) continue;
    compute += pass->compute_s[me];
    copy += pass->copy_s[me];
    for (size_t i = 0; i < pass->schedule.ops.size(); ++i) {
      const RingOp& op = pass->schedule.ops[i];
      if (op.rank != me) continue;
      if (op.comm_lane) {
        derived += transfer_s(pass->op_bytes[i], ring_link);
        bytes += pass->op_bytes[i];
      }
      events.push_back({me, op.comm_lane ? 2 : 1,
                        (op.comm_lane ? "exchange" : op_name(op)) + std::string(" step ") +
                            std::to_string(op.step),
                        offset + pass->ops[i].start_s, offset + pass->ops[i].end_s});
    }
    offset += pass->total_s;
  }
  const std::vector<double> slowest = session.all_reduce({compute, copy, derived}, true);
  layer.measured_compute_s = slowest[0];
  layer.measured_copy_s = slowest[1];
  layer.measured_comm_s = slowest[1];
  layer.derived_comm_s = slowest[2];
  layer.bytes_sent = session.all_reduce({bytes}, false)[0];

  AttentionResult want;
  if (cpu_reference) {
    want = run_reference(problem, backward);
  } else {
    auto one = make_cuda_ring_device(problem, 1);
    want = run_emulated(*one, Strategy::single, 1, problem, backward).result;
  }
  layer.checked_against = cpu_reference ? "reference" : "one-rank GPU run";
  // The other ranks' rows come from the reference, so only this rank's rows are compared here.
  AttentionResult got = want;
  const auto& s = problem.shape;
  const kernels::Rows q_rows = block_of(problem.s_q, P, me),
                      kv_rows = block_of(problem.s_kv, P, me);
  copy_rows(got.o, run.result.o, s.batch, s.heads, problem.s_q, s.head_dim, q_rows);
  copy_rows(got.l, run.result.l, s.batch, s.heads, problem.s_q, 1, q_rows);
  copy_rows(got.dq, run.result.dq, s.batch, s.heads, problem.s_q, s.head_dim, q_rows);
  copy_rows(got.dk, run.result.dk, s.batch, s.kv_heads, problem.s_kv, s.head_dim, kv_rows);
  copy_rows(got.dv, run.result.dv, s.batch, s.kv_heads, problem.s_kv, s.head_dim, kv_rows);
  const double relative = gpu_relative_tolerance(problem.storage);
  Comparison c;
  compare(got.o, want.o, problem.storage, c, relative);
  compare(got.l, want.l, kernels::Storage::fp32, c, 1e-3);
  if (backward) {
    compare(got.dq, want.dq, problem.storage, c, relative);
    compare(got.dk, want.dk, problem.storage, c, relative);
    compare(got.dv, want.dv, problem.storage, c, relative);
  }
  const std::vector<double> worst =
      session.all_reduce({c.max_abs, c.max_rel, c.tolerance, c.worst_ratio}, true);
  return {worst[0], worst[1], worst[2], worst[3]};
}

class NcclRunner final : public LayerRunner {
 public:
  NcclRunner(std::unique_ptr<NcclSession> session, const RunOptions& options,
             RunClock::time_point origin)
      : session_(std::move(session)), options_(options), origin_(origin) {}

  void check(const LayerJob&) const override {}  // every layer was checked before meeting peers

  Comparison run(const LayerJob& job, LayerReport& layer,
                 std::vector<TraceEvent>& events) override {
    return run_nccl_layer(*session_, job, options_, seconds_since(origin_), layer, events);
  }

  bool primary() const override { return session_->rank() == 0; }

  std::vector<std::string> notes(const Inputs&) const override {
    return {"measured: the nccl backend, one process per GPU (" +
            std::to_string(session_->world()) +
            "); each layer's times are the slowest rank's, its errors the largest over the ranks "
            "(each checks its own rows); derived_comm_s times the same bytes on the planned "
            "cluster's ring link"};
  }

 private:
  std::unique_ptr<NcclSession> session_;
  const RunOptions& options_;
  RunClock::time_point origin_;
};

}  // namespace

std::unique_ptr<LayerRunner> make_nccl_runner(const Plan& plan, const std::string& origin,
                                              const RunOptions& options,
                                              RunClock::time_point origin_time) {
  if (!options.launch)
    throw Error("--backend nccl needs this process's rank and world (launch_identity)");
  int most = 1;
  for (const auto& l : plan.layers) most = std::max(most, l.ranks);
  if (plan.decode) most = plan.decode->gpus;
  if (options.launch->world != most)
    throw Error(origin + ": the plan's largest ring has " + std::to_string(most) +
                " ranks; start " + std::to_string(most) + " processes (world is " +
                std::to_string(options.launch->world) + ", from " + options.launch->source + ")");
  if (plan.decode)
    throw Error(origin +
                ": --backend nccl runs cross-attention plans; decode plans run on "
                "--backend cpu or cuda");
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerPlan& lp = plan.layers[i];
    const bool ring = lp.strategy == Strategy::query_ring || lp.strategy == Strategy::kv_ring ||
                      (lp.strategy == Strategy::single && lp.ranks == 1);
    if (!ring || lp.ranks != options.launch->world || (lp.recompute && plan.phase == "training"))
      throw Error(origin + ": layers[" + std::to_string(i) +
                  "]: --backend nccl runs query_ring and kv_ring layers over every process "
                  "(single with one), without K/V recomputation; this layer is " +
                  to_string(lp.strategy) + " on " + std::to_string(lp.ranks) + " ranks" +
                  (lp.recompute ? " with recomputation" : "") + " (use --backend cpu)");
  }
  return std::make_unique<NcclRunner>(open_nccl_session(*options.launch, options.timeout_s),
                                      options, origin_time);
}

}  // namespace xring::executor
