// Streaming plans on the cpu backend: a seeded synthetic stream arrives frame by frame, the
// workload's policy updates every visual layer's cache (streaming_cache.cpp), and text queries at
// the workload's rate decode against the caches; each query step is checked against attention
// over exactly the tokens kept. The caches' own allocations give the memory curve, set beside
// the plan's formula at the executed sizes.
#include <algorithm>
#include <cmath>

#include "layer_runner.hpp"
#include "synthetic_inputs.hpp"
#include "xring/executor/decode.hpp"
#include "xring/executor/streaming_cache.hpp"
#include "xring/planner/decode.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/units.hpp"

namespace xring::executor {
namespace {

/// The synthetic stream's K/V kept for verification (host memory, not the cache): above this
/// the run asks for a smaller --scale (as decode plans do for their caches).
constexpr double kMaxStreamArchiveBytes = 1.0 * (1 << 30);

/// The queries' decode work, bounded above by queries x steps per query x every visual token
/// of the run x layers (a cache never holds more than the stream): above this the run asks for
/// a smaller --scale or fewer queries. 2^28 token-steps: about a minute of decode on one core
/// of this project's 2-core CI machine (measured 2026-12-01: 2.5e7 token-steps of the tiny
/// model's video-stream at --scale 1 decoded in 25 s under load 9); before the bound, a query
/// every 0.036 s (100,000 queries) ran for over an hour.
constexpr double kMaxStreamDecodeTokenSteps = 1.0 * (1 << 28);

/// The streaming plan resolved once: what runs, at which sizes, against which prediction.
struct StreamingSetup {
  const StreamingPolicy* planned = nullptr;
  StreamingPolicyParams params;
  kernels::Shape geometry;
  kernels::Storage storage = kernels::Storage::bf16;
  int layers = 0;
  long long tokens_per_frame = 0, frames = 0;
  double seconds_per_frame = 0, memory_scale = 1;
  double token_bytes = 0;  ///< K+V of one visual token over all layers (storage width)
  double usable_cache_bytes = 0;
  std::vector<double> query_times_s;
  int steps_per_query = 1;
};

/// The plan's row of the workload's policy; the policy's parameters after --scale.
void resolve_policy(const Plan& plan, const Inputs& in, const std::string& origin,
                    StreamingSetup& su) {
  const StreamingSection& s = *plan.streaming;
  for (const auto& p : s.policies)
    if (p.policy == s.chosen) su.planned = &p;
  if (!su.planned || su.planned->memory_over_time.empty())
    throw Error(origin + ": streaming.policies has no memory_over_time for the chosen policy \"" +
                s.chosen + "\"; re-run xring plan");
  try {
    su.params.kind = streaming_policy_from_string(s.chosen);
  } catch (const Error& e) {
    throw Error(origin + ": at \"streaming.chosen\": " + e.what());
  }
  const KvPolicy& p = in.workload.kv_policy;
  const double cache = streaming_cache_tokens(in.workload);
  su.params.cache_tokens = std::max<long long>(1, std::llround(cache * su.memory_scale));
  const double recent = p.recent_tokens ? static_cast<double>(p.recent_tokens) : cache / 4;
  su.params.recent_tokens =
      std::min(su.params.cache_tokens, std::llround(recent * su.memory_scale));
  su.params.recency_bias = p.recency_bias;
  su.params.saddle_radius = p.saddle_radius;
  if (su.params.kind == StreamingPolicyKind::a_vl) {
    su.params.stored_rate = p.stored_rate;
    su.params.compute_rate = p.compute_rate;
    su.params.update_interval = p.update_interval;
  }
}

StreamingSetup resolve_streaming(const Plan& plan, const Inputs& in, const std::string& origin,
                                 const RunOptions& options) {
  const StreamingSection& s = *plan.streaming;
  const ModelSpec& m = in.model;
  const WorkloadSpec& w = in.workload;
  StreamingSetup su;
  const double scale = options.scale.value_or(1.0);
  const double per_frame = w.tokens_per_frame.value_or(m.tokens_per_frame);
  const double planned_frames = s.stream_seconds * s.fps;
  su.tokens_per_frame = std::max<long long>(1, std::llround(per_frame * scale));
  su.frames = std::max<long long>(1, std::llround(planned_frames * scale));
  su.seconds_per_frame = s.stream_seconds / su.frames;
  su.memory_scale = static_cast<double>(su.tokens_per_frame) * su.frames /
                    std::max(1.0, per_frame * planned_frames);
  resolve_policy(plan, in, origin, su);
  const bool cross = !m.cross_attention_layers.empty();
  const AttentionGeometry& g = cross ? m.cross_attention : m.self_attention;
  su.geometry = {1, g.heads, g.kv_heads, g.head_dim};
  su.storage = storage_of(m.dtype);
  su.layers = cross ? static_cast<int>(m.cross_attention_layers.size()) : self_attention_layers(m);
  su.token_bytes = streaming_visual_token_bytes(m);
  const double at_start = su.planned->memory_over_time.front().second;
  su.usable_cache_bytes = (in.cluster.usable_memory_bytes() - at_start) * su.memory_scale;
  if (!(su.usable_cache_bytes > 0))  // a negative usable memory is no number to show
    throw Error(origin + ": nothing is left for the cache: the plan holds " +
                units::format_bytes(at_start) + " before the stream (weights and text cache, " +
                "streaming.policies[].memory_over_time[0]) of the GPU's usable " +
                units::format_bytes(in.cluster.usable_memory_bytes()) +
                "; the plan is infeasible: plan a larger GPU or a smaller model");
  const double archive_bytes = static_cast<double>(su.tokens_per_frame) * su.frames * su.layers *
                               2.0 * g.kv_heads * g.head_dim * sizeof(float);
  if (archive_bytes > kMaxStreamArchiveBytes)
    throw Error(origin + ": the synthetic stream would take " +
                std::to_string(static_cast<long long>(archive_bytes / (1 << 20))) +
                " MiB on the cpu backend (limit 1024); pass --scale F to multiply tokens per "
                "frame and the stream's length by F, e.g. --scale " +
                std::to_string(scale * std::sqrt(kMaxStreamArchiveBytes / archive_bytes) * 0.5)
                    .substr(0, 6));
  if (w.query_interval_s) {
    const long long n = static_cast<long long>(std::floor(s.stream_seconds / *w.query_interval_s));
    if (n > 100000)
      throw Error(origin + ": at \"inputs.workload.query_interval_s\": " +
                  std::to_string(n) + " queries over the stream (at most 100000); use a longer "
                  "interval");
    for (long long i = 1; i <= n; ++i) su.query_times_s.push_back(i * *w.query_interval_s);
  }
  if (su.query_times_s.empty()) su.query_times_s.push_back(s.stream_seconds);
  su.steps_per_query = static_cast<int>(
      std::clamp<long long>(std::llround(w.generate_tokens * scale), 1, 1 << 20));
  const double token_steps = static_cast<double>(su.query_times_s.size()) * su.steps_per_query *
                             static_cast<double>(su.tokens_per_frame) * su.frames * su.layers;
  if (token_steps > kMaxStreamDecodeTokenSteps)
    throw Error(origin + ": the queries would decode up to " + units::format_count(token_steps) +
                " token-steps on the cpu backend (" + std::to_string(su.query_times_s.size()) +
                " queries x " + std::to_string(su.steps_per_query) + " steps x " +
                std::to_string(su.tokens_per_frame * su.frames) + " visual tokens x " +
                std::to_string(su.layers) + " layers; limit 2^28); pass --scale F (e.g. --scale " +
                std::to_string(scale * std::cbrt(kMaxStreamDecodeTokenSteps / token_steps) * 0.8)
                    .substr(0, 6) +
                "), or fewer queries (a longer inputs.workload.query_interval_s)");
  return su;
}

/// K/V of `positions` of one layer from the archived frames, [H_kv][n][d].
void gather(const std::vector<StreamingFrame>& frames, const std::vector<long long>& positions,
            const StreamingSetup& su, std::vector<float>& k, std::vector<float>& v) {
  const int d = su.geometry.head_dim;
  const size_t n = positions.size();
  k.assign(static_cast<size_t>(su.geometry.kv_heads) * n * d, 0.0f);
  v.assign(k.size(), 0.0f);
  for (int h = 0; h < su.geometry.kv_heads; ++h)
    for (size_t j = 0; j < n; ++j) {
      const StreamingFrame& f = frames[positions[j] / su.tokens_per_frame];
      const size_t from =
          (static_cast<size_t>(h) * f.tokens + (positions[j] - f.first_position)) * d;
      std::copy_n(f.k.begin() + from, d, k.begin() + (h * n + j) * d);
      std::copy_n(f.v.begin() + from, d, v.begin() + (h * n + j) * d);
    }
}

/// The run in progress: caches, the archived stream, the report being filled.
struct StreamingRun {
  const StreamingSetup& su;
  uint64_t seed;
  bool on_gpu = false;  ///< cuda: each query step's attention on the GPU (decode kernel)
  std::vector<StreamingLayerCache> caches;
  std::vector<std::vector<StreamingFrame>> archive;
  Comparison errors;
  double frames_time_s = 0, queries_time_s = 0;

  /// One text query: its decode steps over every layer, each checked against attention over
  /// exactly the positions the cache attended. Returns the seconds the steps took.
  double query(long long index, RunClock::time_point origin, std::vector<TraceEvent>& events) {
    const int heads = su.geometry.heads, d = su.geometry.head_dim;
    std::vector<float> o(static_cast<size_t>(heads) * d), l(heads), want_o(o.size()),
        want_l(heads), k, v;
    double seconds = 0;
    for (int step = 0; step < su.steps_per_query; ++step)
      for (int layer = 0; layer < su.layers; ++layer) {
        const std::vector<float> q =
            synthetic_stream_query(seed, layer, index, step, su.geometry, su.storage);
        const double start = seconds_since(origin);
        const std::vector<long long> attended =
            caches[layer].decode_step(q.data(), step, o.data(), l.data());
        const double end = seconds_since(origin);
        seconds += end - start;
        if (step == 0)
          events.push_back({0, 1, "query " + std::to_string(index) + " layer " +
                                      std::to_string(layer), start, end});
        gather(archive[layer], attended, su, k, v);
        kernels::attention_forward(q.data(), k.data(), v.data(), su.geometry, {0, 1},
                                   {0, static_cast<long long>(attended.size())}, kernels::Mask{},
                                   want_o.data(), want_l.data());
        kernels::round_all(su.storage, want_o);
        if (on_gpu && !attended.empty()) {
          seconds += gpu_step(q, attended.size(), k, v, o, l) - (end - start);
          compare(o, want_o, su.storage, errors, gpu_relative_tolerance(su.storage));
          compare(l, want_l, kernels::Storage::fp32, errors, 1e-3);
          continue;
        }
        kernels::round_all(su.storage, o);
        compare_cpu(o, want_o, su.storage, errors);
        compare_cpu(l, want_l, kernels::Storage::fp32, errors);
      }
    return seconds;
  }

  /// cuda: attention of q over the `n` attended tokens' K/V (the kept set the cache chose) with
  /// the decode kernel on this GPU (one cache per kv head, all n kept); o, l from it; returns
  /// its device time.
  double gpu_step(const std::vector<float>& q, size_t n, const std::vector<float>& k,
                  const std::vector<float>& v, std::vector<float>& o, std::vector<float>& l) {
    DecodeProblem p;
    p.shape = su.geometry;
    p.requests = 1;
    p.context = static_cast<long long>(n);
    p.budget.assign(su.geometry.kv_heads, p.context);
    p.storage = su.storage;
    p.q = q;
    p.k = k;
    p.v = v;
    p.scores.assign(static_cast<size_t>(su.geometry.kv_heads) * n, 0.0f);
    const HeadCopies copies(su.geometry.kv_heads, std::vector<std::pair<int, int>>{{0, 1}});
    DecodeResult got = run_decode_cuda(p, copies, 1);
    o = std::move(got.o);
    l = std::move(got.l);
    return got.device_time_s;
  }
};

/// The streaming section of the report once every frame ran.
void finish_streaming(StreamingRunReport& out, const StreamingRun& run, RunReport& report) {
  out.frame_time_s = out.frames_executed > 0 ? run.frames_time_s / out.frames_executed : 0;
  out.query_time_s = out.queries > 0 ? run.queries_time_s / out.queries : 0;
  const double steps = static_cast<double>(out.queries) * out.decode_steps;
  out.tokens_per_s = run.queries_time_s > 0 ? steps / run.queries_time_s : 0;
  report.max_abs_error = run.errors.max_abs;
  report.max_rel_error = run.errors.max_rel;
  report.tolerance = run.errors.tolerance;
  report.verified = run.errors.worst_ratio <= 1.0;
  report.measured_time_s = run.frames_time_s + run.queries_time_s;
  report.measured_tokens_per_s = out.tokens_per_s;
  if (run.frames_time_s > 0) report.measured_frames_per_s = out.frames_executed / run.frames_time_s;
  report.predicted_tokens_per_s = out.predicted_tokens_per_s;
}

}  // namespace

RunReport run_streaming_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                             const RunOptions& options, RunReport report) {
  if (options.backend != "cpu" && options.backend != "cuda")  // run_plan refuses it first
    throw Error(origin + ": streaming plans run on --backend cpu or cuda; the " +
                options.backend + " backend does not execute them");
  if (options.repeat != 1 || options.media_mask != "none")
    throw Error(std::string(options.repeat != 1 ? "--repeat" : "--media-mask") +
                " applies to layer plans; a streaming run measures every frame and query once "
                "and attends without masks");
  const StreamingSetup su = resolve_streaming(plan, in, origin, options);
  StreamingRun run{su, options.seed, options.backend == "cuda", {},
                   std::vector<std::vector<StreamingFrame>>(su.layers), {}};
  run.caches.assign(su.layers, StreamingLayerCache(su.geometry, su.storage, su.params));
  StreamingRunReport out;
  out.policy = plan.streaming->chosen;
  out.layers = su.layers;
  out.tokens_per_frame = su.tokens_per_frame;
  out.frames_planned = su.frames;
  out.seconds_per_frame = su.seconds_per_frame;
  out.memory_scale = su.memory_scale;
  if (su.params.kind == StreamingPolicyKind::inf_mllm) {
    out.cache_tokens = su.params.cache_tokens;
    out.recent_tokens = su.params.recent_tokens;
  }
  out.usable_cache_bytes = su.usable_cache_bytes;
  out.predicted_oom_at_s = su.planned->oom_at_s;
  out.predicted_tokens_per_s = su.planned->tokens_per_s;
  out.decode_steps = su.steps_per_query;
  const auto origin_time = RunClock::now();
  size_t next_query = 0;
  for (long long f = 0; f < su.frames; ++f) {
    std::vector<StreamingFrame> frames;
    for (int layer = 0; layer < su.layers; ++layer)
      frames.push_back(synthetic_stream_frame(options.seed, layer, f, su.tokens_per_frame,
                                              su.geometry, su.storage));
    const double start = seconds_since(origin_time);
    for (int layer = 0; layer < su.layers; ++layer) run.caches[layer].add_frame(frames[layer]);
    const double end = seconds_since(origin_time);
    run.frames_time_s += end - start;
    report.events.push_back({0, 1, "frame " + std::to_string(f), start, end});
    for (int layer = 0; layer < su.layers; ++layer) {
      frames[layer].probe_q.clear();
      run.archive[layer].push_back(std::move(frames[layer]));
    }
    double bytes = 0;
    for (const auto& c : run.caches) bytes += c.allocated_bytes();
    const double t = (f + 1) * su.seconds_per_frame;
    const double arrived = static_cast<double>(f + 1) * su.tokens_per_frame;
    const double predicted =
        streaming_kept_visual_tokens(out.policy, in.workload.kv_policy, arrived,
                                     static_cast<double>(su.params.cache_tokens)) *
        su.token_bytes;
    out.frames.push_back({t, bytes, predicted});
    out.frames_executed = f + 1;
    out.peak_cache_bytes = std::max(out.peak_cache_bytes, bytes);
    out.predicted_peak_cache_bytes = std::max(out.predicted_peak_cache_bytes, predicted);
    if (bytes > su.usable_cache_bytes) {
      // The stream ends here: queries due later are dropped, except that a stream no query has
      // reached yet serves its final one on the caches as they stand, so that the run checks
      // its decode all the same.
      out.oom_at_s = t;
      if (out.queries == 0) {
        run.queries_time_s += run.query(static_cast<long long>(su.query_times_s.size() - 1),
                                        origin_time, report.events);
        out.queries = 1;
      }
      break;
    }
    // Queries due by this frame's time (the first frame serves any earlier one).
    while (next_query < su.query_times_s.size() &&
           (su.query_times_s[next_query] <= t + 1e-9 * su.seconds_per_frame ||
            f + 1 == su.frames)) {
      run.queries_time_s += run.query(static_cast<long long>(next_query), origin_time,
                                      report.events);
      ++out.queries;
      ++next_query;
    }
  }
  finish_streaming(out, run, report);
  report.notes.push_back(
      "streaming: " + std::to_string(out.frames_executed) + " frames of " +
      std::to_string(su.tokens_per_frame) + " seeded synthetic visual tokens into " +
      std::to_string(su.layers) + " layers' caches (policy " + out.policy +
      "); cache bytes are the executor's own K/V allocations at the storage width; every query "
      "step checked against attention over exactly the tokens the cache attended");
  if (run.on_gpu)
    report.notes.push_back(
        "cuda: every query step's attention ran on this GPU with the decode kernel over the "
        "kept tokens (time from CUDA events); the caches and their updates stay on the host");
  report.notes.push_back(
      "predicted: the plan's streaming formula at the executed sizes; cache sizes and the usable "
      "memory (GPU usable − weights − text cache) multiplied by memory_scale; the text tokens' "
      "cache is not executed");
  if (options.scale)
    report.notes.push_back("scaled by --scale: tokens per frame and the number of frames "
                           "multiplied; each frame stands for " +
                           units::format_time(su.seconds_per_frame) + " of the stream");
  if (out.oom_at_s)
    report.notes.push_back("the cache passed the usable memory at t = " +
                           units::format_time(*out.oom_at_s) +
                           "; the stream stopped there (queries due later dropped; a stream no "
                           "query had reached served its final one there)");
  report.streaming = std::move(out);
  return report;
}

}  // namespace xring::executor
