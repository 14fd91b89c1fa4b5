// Plan execution: every layer of a plan resolved once into a LayerJob and run by the runner of
// the chosen backend (layer_runner.hpp); the report's predictions, errors and totals.
#include "xring/executor/run.hpp"

#include <algorithm>
#include <cmath>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "layer_runner.hpp"
#include "synthetic_inputs.hpp"
#include "xring/executor/projection.hpp"
#include "xring/kernels/cpu_isa.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::executor {
namespace {

/// The report's header: backend, seed, scale, tolerance rule and provenance.
RunReport start_report(const Plan& plan, const std::string& origin, const RunOptions& options,
                       bool primary) {
  RunReport report;
  report.backend = options.backend;
  report.primary = primary;
  report.plan_origin = origin;
  report.seed = options.seed;
  report.scale = options.scale.value_or(1.0);
  report.warmup = options.warmup;
  report.tolerance_rule =
      options.backend != "cpu"
          ? "|GPU − reference| ≤ r·max|reference| + one storage ulp, per element, r = 8e-3 "
            "(bf16) or 2e-3 (fp16) as the kernels round P to the storage type; L: 1e-3·max|L|"
          : "|distributed − reference| ≤ 1e-5·max(max|reference|, 1) + one storage ulp, per element";
  report.provenance = {{"xring_version", xring_version()},
                       {"git_revision", git_revision()},
                       {"date", utc_now()},
                       {"plan", origin},
                       {"plan_hash", content_hash(to_json(plan))},
                       {"plan_inputs", plan.provenance.value("inputs", nlohmann::json::object())},
                       // Whether the prediction is of this machine (gate gates prediction_error
                       // of cpu runs only then).
                       {"plan_device_profile",
                        plan.provenance.value("device_profile", nlohmann::json())},
                       {"backend", options.backend},
                       // The cpu backend's kernels depend on the CPU (null elsewhere).
                       {"cpu_kernels", options.backend == "cpu"
                                           ? nlohmann::json(kernels::to_string(
                                                 kernels::active_cpu_isa()))
                                           : nlohmann::json(nullptr)},
                       {"seed", options.seed}};
  return report;
}

/// --inject-fault: only the cpu backend carries it, and only into a rank some ring has.
void check_fault(const Plan& plan, const RunOptions& options) {
  if (options.fault && options.backend != "cpu")
    throw Error("--inject-fault applies to --backend cpu (its communicator carries the fault)");
  if (!options.fault) return;
  int most = 0;
  for (const auto& l : plan.layers) most = std::max(most, l.ranks);
  if (plan.decode || plan.streaming || options.fault->rank >= most)
    throw Error("--inject-fault: rank " + std::to_string(options.fault->rank) +
                " takes part in no attention ring of this plan (" +
                (plan.decode || plan.streaming ? std::string("decode and streaming plans are not covered")
                             : "layers use ranks 0.." + std::to_string(most - 1)) +
                ")");
}

/// Layer i of the plan resolved once: its shape after --scale, strategy and layout, work and
/// placement. Its inputs are made after the runner has checked it.
LayerJob resolve_layer(const Plan& plan, const Inputs& in, size_t i, const std::string& origin,
                       const RunOptions& options) {
  const LayerPlan& lp = plan.layers[i];
  LayerJob job;
  job.plan = &lp;
  job.at = origin + ": layers[" + std::to_string(i) + "]";
  if (in.cluster.gpus() % lp.ranks != 0)
    throw Error(job.at + ".ranks = " + std::to_string(lp.ranks) + " does not divide the " +
                std::to_string(in.cluster.gpus()) + " GPUs of its cluster; re-run xring plan");
  job.shape = cross_attention_shape(in.model, in.workload, lp.batch_per_group);
  if (options.scale) {
    job.shape.s_q = std::max<long long>(1, std::llround(job.shape.s_q * *options.scale));
    job.shape.s_kv = std::max<long long>(1, std::llround(job.shape.s_kv * *options.scale));
  }
  job.strategy = lp.strategy;
  job.ranks = lp.ranks;
  job.backward = plan.phase == "training";
  if (lp.strategy == Strategy::hybrid) {
    job.layout.ulysses_degree = lp.ulysses_degree;
    job.layout.ring_kind = lp.ring_kind == "kv_ring" ? Strategy::kv_ring : Strategy::query_ring;
  }
  job.projected = job.backward && lp.recompute &&
                  (lp.strategy == Strategy::query_ring || lp.strategy == Strategy::kv_ring ||
                   lp.strategy == Strategy::single);
  const LayerShape& shape = job.shape;
  job.flops = attention_forward_flops(shape, shape.s_q, shape.s_kv, shape.heads) *
                  (job.backward ? 1 + kBackwardFlopsFactor : 1) +
              (job.projected ? 4 * kv_projection_flops(shape, shape.s_kv) : 0);
  job.cpu_affordable = job.flops <= options.max_gflop_per_layer * 1e9;
  job.placement = placement_for(in, lp.strategy, lp.ranks, lp.ulysses_degree, lp.recompute);
  job.seed = options.seed + i;
  job.label = "layer " + std::to_string(lp.index) + " (" + to_string(lp.strategy) + ", " +
              std::to_string(lp.ranks) + " ranks)";
  return job;
}

/// The job's synthetic inputs, refused when the strategy cannot run them.
void make_inputs(LayerJob& job, const Inputs& in, const RunOptions& options) {
  job.problem = synthetic_problem(job.shape, storage_of(in.model.dtype), job.seed,
                                  options.media_mask, job.backward);
  const std::string why = unsupported(job.strategy, job.problem, job.ranks, job.layout);
  if (!why.empty())
    throw Error(job.at + ": " + to_string(job.strategy) + " on " + std::to_string(job.ranks) +
                " ranks: " + why);
}

/// What every executed layer adds to the report: the prediction for its shape, derived rates,
/// its errors.
void finish_layer(LayerReport layer, const LayerJob& job, const Comparison& c, RunReport& report,
                  double& worst_ratio) {
  const LayerPlan& lp = *job.plan;
  LayerCost predicted = strategy_unit(lp.strategy).cost(job.shape, job.placement);
  layer.steps = std::max(1, predicted.forward.steps);
  layer.measured_step_s = layer.measured_time_s / layer.steps / (layer.backward ? 2 : 1);
  layer.predicted_time_s = predicted.time_s();
  layer.predicted_compute_s = predicted.compute_s();
  layer.predicted_comm_s = predicted.comm_s();
  const int passes = layer.backward ? 2 : 1;
  layer.measured_step_compute_s = layer.measured_compute_s / layer.steps / passes;
  layer.measured_step_comm_s = layer.measured_comm_s / std::max(1, layer.steps - 1) / passes;
  layer.predicted_step_compute_s = predicted.forward.step_compute_s;
  layer.predicted_step_comm_s = predicted.forward.step_comm_s;
  if (layer.measured_time_s > 0) {
    layer.flop_per_s = job.flops / layer.measured_time_s;
    // The no-communication bound: the slowest rank's compute; on emulated ranks sharing one
    // GPU, one rank doing all the work.
    const double bound =
        layer.monolithic_time_s > 0 ? layer.monolithic_time_s : layer.measured_compute_s;
    layer.overlap_efficiency = std::min(1.0, bound / layer.measured_time_s);
    layer.time_error = (layer.predicted_time_s - layer.measured_time_s) / layer.measured_time_s;
  }
  if (layer.measured_comm_s > 0 && layer.ranks > 1) {
    // nccl-tests' definitions: algbw = bytes a rank moves / time; busbw = algbw for
    // point-to-point (the rings), algbw·(P−1)/P for all-to-all. Time: exposed waiting.
    layer.algbw_bytes_per_s = layer.bytes_sent / layer.ranks / layer.measured_comm_s;
    const bool all_to_all = lp.strategy == Strategy::ulysses || lp.strategy == Strategy::hybrid;
    layer.busbw_bytes_per_s =
        layer.algbw_bytes_per_s * (all_to_all ? (layer.ranks - 1.0) / layer.ranks : 1.0);
  }
  layer.predicted_peak_memory_bytes = lp.memory_bytes.total();
  record(c, layer, report, worst_ratio);
  report.layers.push_back(layer);
}

/// Throughput over the executed group's work, and the notes every report carries.
void finish_report(RunReport& report, const LayerRunner& runner, const Inputs& in,
                   const RunOptions& options, double flops, double tokens, double frames) {
  if (report.measured_time_s > 0) {
    report.measured_tokens_per_s = tokens / report.measured_time_s;
    report.measured_flop_per_s = flops / report.measured_time_s;
    report.measured_frames_per_s = frames / report.measured_time_s;
  }
  if (report.predicted_time_s > 0) {
    report.predicted_tokens_per_s = tokens / report.predicted_time_s;
    report.predicted_frames_per_s = frames / report.predicted_time_s;
    report.predicted_flop_per_s = flops / report.predicted_time_s;
  }
  for (std::string& note : runner.notes(in)) report.notes.push_back(std::move(note));
  report.notes.push_back(
      "cross-attention layers only; one data-parallel group is executed (the others are "
      "identical)");
  if (options.scale)
    report.notes.push_back("scaled by --scale " + std::to_string(*options.scale) +
                           ": S_Q and S_KV multiplied");
  report.notes.push_back(
      options.backend != "cpu"
          ? "Q, K and V travel at the storage width, O, L and gradients in fp32; the cost model "
            "counts Q and O at the storage width"
          : "messages travel as fp32 (O and L accumulate in fp32 in transit); the cost model "
            "counts Q and O at the storage width");
}

}  // namespace

/// A layer's errors into its report line, and its errors and times into the totals.
void record(const Comparison& c, LayerReport& layer, RunReport& report, double& worst_ratio) {
  layer.max_abs_error = c.max_abs;
  layer.max_rel_error = c.max_rel;
  layer.tolerance = c.tolerance;
  layer.verified = c.worst_ratio <= 1.0;
  worst_ratio = std::max(worst_ratio, c.worst_ratio);
  report.max_abs_error = std::max(report.max_abs_error, c.max_abs);
  report.max_rel_error = std::max(report.max_rel_error, c.max_rel);
  report.tolerance = std::max(report.tolerance, c.tolerance);
  report.measured_time_s += layer.measured_time_s;
  report.predicted_time_s += layer.predicted_time_s;
}

std::unique_ptr<LayerRunner> make_layer_runner(const Plan& plan, const std::string& origin,
                                               const RunOptions& options,
                                               RunClock::time_point origin_time) {
  if (options.backend == "nccl") return make_nccl_runner(plan, origin, options, origin_time);
  if (options.backend == "cuda") return make_cuda_runner(options, origin_time);
  return make_cpu_runner(options, origin_time);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

RunReport run_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                   const RunOptions& options) {
  check_plan_against_inputs(plan, in, origin);  // read_plan_file did; plans built in code too
  if (!(options.timeout_s > 0 && options.timeout_s <= kMaxTimeoutS))
    throw Error("--timeout must be a number of seconds in (0, " +
                std::to_string(static_cast<long long>(kMaxTimeoutS)) + "], got " +
                std::to_string(options.timeout_s));
  if (plan.streaming && options.backend == "nccl")
    throw Error(origin + ": streaming plans run on one GPU: --backend cpu or cuda, not nccl");
  const auto origin_time = RunClock::now();
  std::unique_ptr<LayerRunner> runner = make_layer_runner(plan, origin, options, origin_time);
  if (options.warmup < 0) throw Error("--warmup must be at least 0");
#if defined(__GLIBC__)
  // Keep freed blocks in the heap instead of returning them to the system: otherwise every run
  // of the cpu backend's per-step buffers (megabytes each) pays its page faults again, which
  // measured 10-15% of a small layer's time (the warm-up runs absorb the first touch).
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  if (options.scale && !(*options.scale > 0 && *options.scale <= 1))
    throw Error("--scale must be in (0, 1], got " + std::to_string(*options.scale));
  RunReport report = start_report(plan, origin, options, runner->primary());
  check_fault(plan, options);
  if (plan.decode) return run_decode_plan(plan, in, origin, options, report);
  if (plan.streaming) return run_streaming_plan(plan, in, origin, options, report);
  if (plan.layers.empty())
    throw Error(origin + ": the plan has no cross-attention layers to run (phase " + plan.phase +
                ")");
  double worst_ratio = 0, flops = 0, tokens = 0, frames = 0;
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    LayerJob job = resolve_layer(plan, in, i, origin, options);
    if (options.progress)
      options.progress(i, plan.layers.size(),
                       "layer " + std::to_string(job.plan->index) + " (" + to_string(job.strategy) +
                           ", " + std::to_string(job.ranks) + " ranks)");
    runner->check(job);
    make_inputs(job, in, options);
    LayerReport layer;
    layer.index = job.plan->index;
    layer.strategy = to_string(job.strategy);
    layer.ranks = job.ranks;
    layer.batch = job.shape.batch;
    layer.s_q = job.shape.s_q;
    layer.s_kv = job.shape.s_kv;
    layer.backward = job.backward;
    const Comparison c = runner->run(job, layer, report.events);
    finish_layer(layer, job, c, report, worst_ratio);
    flops += job.flops;  // the executed group's work
    tokens = static_cast<double>(job.shape.batch) * (job.shape.s_q + job.shape.s_kv);
    frames = static_cast<double>(job.shape.batch) * xring::frames(in.workload, in.model);
  }
  runner->finish();
  if (options.progress) options.progress(plan.layers.size(), plan.layers.size(), "done");
  report.verified = worst_ratio <= 1.0;
  finish_report(report, *runner, in, options, flops, tokens, frames);
  return report;
}

}  // namespace xring::executor
