// Decode plans on the cpu backend: one decode step of every self-attention layer with the
// plan's head placement, against single-device decode on the same compacted caches.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include "layer_runner.hpp"
#include "synthetic_inputs.hpp"
#include "xring/executor/decode.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {

using Clock = RunClock;

/// Decode plans: every self-attention layer's decode step with the plan's head placement,
/// against single-device decode on the same compacted caches.
RunReport run_decode_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                          const RunOptions& options, RunReport report) {
  const DecodeSection& d = *plan.decode;
  const AttentionGeometry& g = in.model.self_attention;
  const kernels::Storage storage = storage_of(in.model.dtype);
  const double scale = options.scale.value_or(1.0);
  const long long context = std::max<long long>(1, std::llround(d.prompt_tokens * scale));
  const double cache_bytes =
      2.0 * d.batch_per_replica * g.kv_heads * context * g.head_dim * sizeof(float);
  constexpr double kMaxCacheBytes = 1.0 * (1 << 30);
  if (cache_bytes > kMaxCacheBytes)
    throw Error(origin + ": a layer's synthetic KV cache would take " +
                std::to_string(static_cast<long long>(cache_bytes / (1 << 20))) +
                " MiB on the cpu backend (limit 1024); pass --scale F to multiply the prompt and "
                "the budgets by F, e.g. --scale " +
                std::to_string(kMaxCacheBytes / cache_bytes * 0.5).substr(0, 6));
  std::vector<std::vector<const DecodeHead*>> by_layer;
  for (const auto& h : d.heads) {
    if (h.layer >= static_cast<int>(by_layer.size())) by_layer.resize(h.layer + 1);
    by_layer[h.layer].push_back(&h);
  }
  if (by_layer.empty())
    throw Error(origin + ": decode.heads is empty; re-run xring plan without sweeping");
  double predicted_step = 0;
  for (const auto& p : d.placements)
    if (p.placement == d.chosen) predicted_step = p.step_time_s;
  const auto origin_time = Clock::now();
  std::mutex events_mutex;
  double worst_ratio = 0, flops = 0;
  for (size_t layer = 0; layer < by_layer.size(); ++layer) {
    const auto& heads = by_layer[layer];
    if (options.progress)
      options.progress(layer, by_layer.size(), "decode layer " + std::to_string(layer));
    const std::string at = origin + ": decode.heads (layer " + std::to_string(layer) + ")";
    if (static_cast<int>(heads.size()) != g.kv_heads)
      throw Error(at + " lists " + std::to_string(heads.size()) + " kv heads; the model has " +
                  std::to_string(g.kv_heads));
    DecodeProblem problem;
    problem.shape = {1, g.heads, g.kv_heads, g.head_dim};
    problem.requests = d.batch_per_replica;
    problem.context = context;
    problem.storage = storage;
    HeadCopies copies(g.kv_heads);
    for (const DecodeHead* h : heads) {
      if (h->head < 0 || h->head >= g.kv_heads)
        throw Error(at + ": kv head " + std::to_string(h->head) + " out of range");
      problem.budget.resize(g.kv_heads);
      problem.budget[h->head] =
          std::min(context, std::max<long long>(0, std::llround(h->budget_tokens * scale)));
      for (const HeadCopy& c : d.copies(*h)) copies[h->head].push_back({c.gpu, c.requests});
    }
    SyntheticValues values(options.seed + layer, storage);
    auto fill = [&](std::vector<float>& t, size_t n) { values.fill(t, n); };
    fill(problem.q, static_cast<size_t>(problem.requests) * g.heads * g.head_dim);
    fill(problem.k, static_cast<size_t>(problem.requests) * g.kv_heads * context * g.head_dim);
    fill(problem.v, problem.k.size());
    fill(problem.scores, static_cast<size_t>(problem.requests) * g.kv_heads * context);
    try {
      check_copies(problem, copies, d.gpus);
    } catch (const Error& e) {
      throw Error(at + ": " + e.what());
    }
    const double start = std::chrono::duration<double>(Clock::now() - origin_time).count();
    const bool on_gpu = options.backend == "cuda";
    DecodeResult got = on_gpu ? run_decode_cuda(problem, copies, d.gpus)
                              : run_decode_distributed(problem, copies, d.gpus);
    const double end = on_gpu ? start + got.device_time_s
                              : std::chrono::duration<double>(Clock::now() - origin_time).count();
    DecodeResult want = run_decode_reference(problem);
    LayerReport lr;
    lr.index = static_cast<int>(layer);
    lr.strategy = "decode/" + d.chosen;
    lr.ranks = d.gpus;
    lr.batch = problem.requests;
    lr.s_q = 1;
    lr.s_kv = context;
    lr.measured_time_s = end - start;
    lr.measured_compute_s = lr.measured_time_s;
    lr.predicted_time_s = predicted_step / by_layer.size();
    lr.predicted_compute_s = lr.predicted_time_s;
    lr.bytes_sent = got.bytes_sent;
    Comparison c;
    if (on_gpu) {
      compare(got.o, want.o, storage, c, gpu_relative_tolerance(storage));
      compare(got.l, want.l, kernels::Storage::fp32, c, 1e-3);
    } else {
      compare_cpu(got.o, want.o, storage, c);
      compare_cpu(got.l, want.l, kernels::Storage::fp32, c);
    }
    double layer_flops = 0;  // S = q·Kᵀ and O = P·V over each head's kept tokens
    for (long long b : problem.budget)
      layer_flops += 4.0 * problem.requests * (g.heads / g.kv_heads) * b * g.head_dim;
    if (lr.measured_time_s > 0) lr.flop_per_s = layer_flops / lr.measured_time_s;
    flops += layer_flops;
    record(c, lr, report, worst_ratio);
    std::lock_guard<std::mutex> lock(events_mutex);
    report.events.push_back({0, 1, "layer " + std::to_string(layer) + " decode", start, end});
    report.layers.push_back(lr);
  }
  report.verified = worst_ratio <= 1.0;
  if (report.measured_time_s > 0) {
    report.measured_tokens_per_s = d.batch_per_replica / report.measured_time_s;  // one decode step
    report.measured_flop_per_s = flops / report.measured_time_s;
  }
  if (report.predicted_time_s > 0)
    report.predicted_tokens_per_s = d.batch_per_replica / report.predicted_time_s;
  report.notes.push_back(
      "decode: one step of every self-attention layer with the plan's " + d.chosen +
      " placement over " + std::to_string(d.gpus) +
      (options.backend == "cuda"
           ? " GPUs emulated on this one (a stream each, launched together; time from CUDA "
             "events)"
           : " GPU threads") +
      "; caches compacted to each "
      "head's budget by seeded scores; checked against single-device decode on the same caches");
  report.notes.push_back("predicted: the plan's decode step on " + in.cluster.name +
                         " split evenly over layers");
  if (options.scale) report.notes.push_back("scaled by --scale: prompt and budgets multiplied");
  if (options.progress) options.progress(by_layer.size(), by_layer.size(), "done");
  return report;
}

}  // namespace xring::executor
