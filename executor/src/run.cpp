// Plan execution on a backend: synthetic inputs, timing through a recording communicator,
// verification against the reference, the report and the measured trace.
#include "xring/executor/run.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "xring/executor/attention.hpp"
#include "xring/executor/cuda_ring_device.hpp"
#include "xring/executor/decode.hpp"
#include "xring/executor/nccl_backend.hpp"
#include "xring/executor/projection.hpp"
#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::executor {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kRelativeSlack = 1e-5;  // fp32 summation-order differences (see tests)

/// Records every wait for a peer, so compute = span − waiting.
class RecordingCommunicator final : public Communicator {
 public:
  RecordingCommunicator(Communicator& inner, Clock::time_point origin,
                        std::vector<TraceEvent>& events, std::mutex& mutex, std::string context)
      : inner_(inner),
        origin_(origin),
        events_(events),
        mutex_(mutex),
        context_(std::move(context)) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void send(int to, std::vector<float> data, int tag) override {
    bytes_sent_ += data.size() * sizeof(float);
    XRING_RANGE("rank " + std::to_string(rank()) + " send to " + std::to_string(to));
    try {
      inner_.send(to, std::move(data), tag);
    } catch (const Error& e) {
      throw Error(where() + ": " + e.what(), e.kind());
    }
  }
  std::vector<float> recv(int from, int tag) override {
    double start = seconds();
    std::vector<float> data;
    XRING_RANGE("rank " + std::to_string(rank()) + " wait for " + std::to_string(from));
    try {
      data = inner_.recv(from, tag);
    } catch (const Error& e) {
      throw Error(where() + ": " + e.what(), e.kind());
    }
    ++recvs_;
    double end = seconds();
    waited_s_ += end - start;
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back({rank(), 2, "wait for rank " + std::to_string(from), start, end});
    return data;
  }
  void barrier() override { inner_.barrier(); }
  /// Where this rank is: layer, rank, host and ring step (messages received so far + 1).
  std::string where() const {
    return context_ + ", rank " + std::to_string(rank()) + " on " + host_name() + ", step " +
           std::to_string(recvs_ + 1);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - origin_).count(); }
  double waited_s() const { return waited_s_; }

 private:
  Communicator& inner_;
  Clock::time_point origin_;
  std::vector<TraceEvent>& events_;
  std::mutex& mutex_;
  std::string context_;  ///< "layer N (strategy)", for failure messages
  double waited_s_ = 0;
  int recvs_ = 0;
};

/// Seeded values uniform in [-scale, scale), rounded to the storage type: every synthetic input.
class SyntheticValues {
 public:
  SyntheticValues(uint64_t seed, kernels::Storage storage) : rng_(seed), storage_(storage) {}
  void fill(std::vector<float>& t, size_t n, float scale = 1.0f) {
    t.resize(n);
    for (float& x : t) x = kernels::round_to(storage_, scale * uniform_(rng_));
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<float> uniform_{-1.0f, 1.0f};
  kernels::Storage storage_;
};

AttentionProblem synthetic_problem(const LayerShape& s, kernels::Storage storage, uint64_t seed,
                                   const std::string& media_mask, bool backward) {
  AttentionProblem p;
  p.shape = {static_cast<int>(s.batch), s.heads, s.kv_heads, s.head_dim};
  p.s_q = s.s_q;
  p.s_kv = s.s_kv;
  p.storage = storage;
  SyntheticValues values(seed, storage);
  auto fill = [&](std::vector<float>& t, size_t n) { values.fill(t, n); };
  const size_t q = static_cast<size_t>(s.batch) * s.heads * s.s_q * s.head_dim;
  const size_t kv = static_cast<size_t>(s.batch) * s.kv_heads * s.s_kv * s.head_dim;
  fill(p.q, q);
  fill(p.k, kv);
  fill(p.v, kv);
  if (backward) fill(p.d_o, q);
  if (media_mask != "none") {
    // Frames of equal size; text spread evenly over them (Flamingo-style media masks).
    p.mask.kind = media_mask == "same_group" ? kernels::Mask::Kind::same_group
                                             : kernels::Mask::Kind::up_to_group;
    const long long frames = std::max<long long>(1, std::min<long long>(16, s.s_kv));
    for (long long i = 0; i < s.s_q; ++i)
      p.mask.q_group.push_back(static_cast<int>(i * frames / s.s_q));
    for (long long j = 0; j < s.s_kv; ++j)
      p.mask.kv_group.push_back(static_cast<int>(j * frames / s.s_kv));
  }
  return p;
}

struct Comparison {
  double max_abs = 0, max_rel = 0, tolerance = 0, worst_ratio = 0;
};

/// Allowed per element: relative·max|want| (at least `relative`) + one storage ulp.
void compare(const std::vector<float>& got, const std::vector<float>& want,
             kernels::Storage storage, Comparison& c, double relative = kRelativeSlack) {
  double scale = 0;
  for (float x : want)
    if (std::isfinite(x)) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]) || std::isnan(got[i])) {  // never verified
      c.worst_ratio = INFINITY;
      continue;
    }
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      if (got[i] != want[i]) c.worst_ratio = INFINITY;
      continue;
    }
    double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    double allowed = relative * std::max(1.0, scale) + kernels::ulp(storage, want[i]);
    c.max_abs = std::max(c.max_abs, err);
    if (scale > 0)
      c.max_rel = std::max(c.max_rel, err / scale);  // relative to the tensor's largest value
    c.worst_ratio = std::max(c.worst_ratio, err / allowed);
  }
  c.tolerance = std::max(c.tolerance, relative * std::max(1.0, scale) +
                                          kernels::ulp(storage, static_cast<float>(scale)));
}

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

kernels::Storage storage_of(DType d) {
  return d == DType::fp32   ? kernels::Storage::fp32
         : d == DType::fp16 ? kernels::Storage::fp16
                            : kernels::Storage::bf16;
}

/// A compute operation's name in the trace.
const char* op_name(const RingOp& op) {
  return op.kind == RingOp::Kind::merge ? "merge" : "attend";
}

/// The cuda backend's tolerance: the kernels round P to the storage type before P·V, and where
/// the running maximum sits depends on the key split (tests/test_cuda_backend.cpp).
double cuda_relative_tolerance(kernels::Storage s) {
  return s == kernels::Storage::fp16 ? 2e-3 : 8e-3;
}

/// --backend cuda: `repeat` runs of the layer's ring on `ranks` ranks emulated on the GPU, and
/// as many of one rank doing the same work (the monolithic bound); checked against the CPU
/// reference when it is affordable, else against the monolithic run. Fills the layer's times
/// (the last repetition's per-rank figures) and adds its timeline to `events` from `start_s`.
Comparison run_cuda_layer(const AttentionProblem& problem, Strategy strategy, int ranks,
                          bool backward, const RunOptions& options, const Link& ring_link,
                          bool cpu_reference, double start_s, LayerReport& layer,
                          std::vector<TraceEvent>& events) {
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
  const double relative = cuda_relative_tolerance(problem.storage);
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
Comparison run_nccl_layer(NcclSession& session, const AttentionProblem& problem, Strategy strategy,
                          bool backward, const RunOptions& options, const Link& ring_link,
                          bool cpu_reference, double start_s, const std::string& where,
                          LayerReport& layer, std::vector<TraceEvent>& events) {
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
  const double relative = cuda_relative_tolerance(problem.storage);
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
      for (size_t c = 0; c < h->gpus.size(); ++c)
        copies[h->head].push_back({h->gpus[c], h->requests[c]});
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
    DecodeResult got = run_decode_distributed(problem, copies, d.gpus);
    const double end = std::chrono::duration<double>(Clock::now() - origin_time).count();
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
    compare(got.o, want.o, storage, c);
    compare(got.l, want.l, kernels::Storage::fp32, c);
    record(c, lr, report, worst_ratio);
    for (long long b : problem.budget)
      flops += 4.0 * problem.requests * (g.heads / g.kv_heads) * b * g.head_dim;
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
      " GPU threads; caches compacted to each "
      "head's budget by seeded scores; checked against single-device decode on the same caches");
  report.notes.push_back("predicted: the plan's decode step on " + in.cluster.name +
                         " split evenly over layers");
  if (options.scale) report.notes.push_back("scaled by --scale: prompt and budgets multiplied");
  return report;
}

}  // namespace

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
  if (options.backend == "nccl") {
    if (!options.launch)
      throw Error("--backend nccl needs this process's rank and world (launch_identity)");
    int most = 1;
    for (const auto& l : plan.layers) most = std::max(most, l.ranks);
    if (plan.decode) most = plan.decode->gpus;
    if (options.launch->world != most)
      throw Error(origin + ": the plan's largest ring has " + std::to_string(most) +
                  " ranks; start " + std::to_string(most) + " processes (world is " +
                  std::to_string(options.launch->world) + ", from " + options.launch->source + ")");
  }
  if (options.backend == "cuda") {
    const std::string why = cuda_backend_unavailable();
    if (!why.empty()) throw Error("--backend cuda: " + why, ExitCode::runtime);
    if (plan.decode)
      throw Error(origin +
                  ": --backend cuda runs cross-attention plans; decode plans run on "
                  "--backend cpu");
  }
  std::unique_ptr<NcclSession> session;
  if (options.backend == "nccl") {
    if (plan.decode)
      throw Error(origin +
                  ": --backend nccl runs cross-attention plans; decode plans run on "
                  "--backend cpu");
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
    session = open_nccl_session(*options.launch, options.timeout_s);
  }
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
  RunReport report;
  report.backend = options.backend;
  report.primary = !session || session->rank() == 0;
  report.plan_origin = origin;
  report.seed = options.seed;
  report.scale = options.scale.value_or(1.0);
  report.warmup = options.warmup;
  report.tolerance_rule =
      options.backend != "cpu"
          ? "|GPU − reference| ≤ r·max|reference| + one storage ulp, per element, r = 8e-3 "
            "(bf16) or 2e-3 (fp16) as the kernels round P to the storage type; L: 1e-3·max|L|"
          : "|distributed − reference| ≤ 1e-5·max|reference| + one storage ulp, per element";
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
                       {"seed", options.seed}};
  if (options.fault && options.backend != "cpu")
    throw Error("--inject-fault applies to --backend cpu (its communicator carries the fault)");
  if (options.fault) {
    int most = 0;
    for (const auto& l : plan.layers) most = std::max(most, l.ranks);
    if (plan.decode || options.fault->rank >= most)
      throw Error("--inject-fault: rank " + std::to_string(options.fault->rank) +
                  " takes part in no attention ring of this plan (" +
                  (plan.decode ? std::string("decode plans are not covered")
                               : "layers use ranks 0.." + std::to_string(most - 1)) +
                  ")");
  }
  if (plan.decode) return run_decode_plan(plan, in, origin, options, report);
  if (plan.layers.empty())
    throw Error(origin + ": the plan has no cross-attention layers to run (phase " + plan.phase +
                "; streaming plans are not executed yet)");
  const bool backward = plan.phase == "training";
  const kernels::Storage storage = storage_of(in.model.dtype);
  const auto origin_time = Clock::now();
  std::mutex events_mutex;
  double worst_ratio = 0;
  double flops = 0, tokens = 0, frames = 0;
  int most_fault_rank_sends = 0;  // --inject-fault: to say why a fault never fired
  // What every executed layer adds to the report: the prediction for its shape, its errors.
  auto finish_layer = [&](LayerReport layer, const LayerPlan& lp, const LayerShape& shape,
                          const Comparison& c, double layer_flops) {
    Placement placement = placement_for(in, lp.strategy, lp.ranks, lp.ulysses_degree, lp.recompute);
    LayerCost predicted = strategy_unit(lp.strategy).cost(shape, placement);
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
      layer.flop_per_s = layer_flops / layer.measured_time_s;
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
    flops += layer_flops;  // the executed group's work
    tokens = static_cast<double>(shape.batch) * (shape.s_q + shape.s_kv);
    frames = static_cast<double>(shape.batch) * xring::frames(in.workload, in.model);
    report.layers.push_back(layer);
  };
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const LayerPlan& lp = plan.layers[i];
    const std::string at = origin + ": layers[" + std::to_string(i) + "]";
    if (in.cluster.gpus() % lp.ranks != 0)
      throw Error(at + ".ranks = " + std::to_string(lp.ranks) + " does not divide the " +
                  std::to_string(in.cluster.gpus()) + " GPUs of its cluster; re-run xring plan");
    LayerShape shape = cross_attention_shape(in.model, in.workload, lp.batch_per_group);
    if (options.scale) {
      shape.s_q = std::max<long long>(1, std::llround(shape.s_q * *options.scale));
      shape.s_kv = std::max<long long>(1, std::llround(shape.s_kv * *options.scale));
    }
    const bool projected = backward && lp.recompute &&
                           (lp.strategy == Strategy::query_ring ||
                            lp.strategy == Strategy::kv_ring || lp.strategy == Strategy::single);
    const double layer_flops = attention_forward_flops(shape, shape.s_q, shape.s_kv, shape.heads) *
                                   (backward ? 1 + kBackwardFlopsFactor : 1) +
                               (projected ? 4 * kv_projection_flops(shape, shape.s_kv) : 0);
    const bool cpu_affordable = layer_flops <= options.max_gflop_per_layer * 1e9;
    if (options.backend == "cpu" && !cpu_affordable)
      throw Error(at + ": " + std::to_string(static_cast<long long>(layer_flops / 1e9)) +
                  " GFLOP per layer is too much for the cpu backend (limit " +
                  std::to_string(static_cast<long long>(options.max_gflop_per_layer)) +
                  "); pass --scale F to multiply S_Q and S_KV by F, e.g. --scale " +
                  std::to_string(std::sqrt(options.max_gflop_per_layer * 1e9 / layer_flops) * 0.5)
                      .substr(0, 6));
    AttentionProblem problem =
        synthetic_problem(shape, storage, options.seed + i, options.media_mask, backward);
    const Strategy strategy = lp.strategy;
    const int ranks = lp.ranks;
    HybridLayout layout;
    if (strategy == Strategy::hybrid) {
      layout.ulysses_degree = lp.ulysses_degree;
      layout.ring_kind = lp.ring_kind == "kv_ring" ? Strategy::kv_ring : Strategy::query_ring;
    }
    std::string why = unsupported(strategy, problem, ranks, layout);
    if (!why.empty())
      throw Error(at + ": " + to_string(strategy) + " on " + std::to_string(ranks) +
                  " ranks: " + why);

    LayerReport layer;
    layer.index = lp.index;
    layer.strategy = to_string(lp.strategy);
    layer.ranks = ranks;
    layer.batch = shape.batch;
    layer.s_q = shape.s_q;
    layer.s_kv = shape.s_kv;
    layer.backward = backward;
    if (session) {
      const Placement placement =
          placement_for(in, lp.strategy, lp.ranks, lp.ulysses_degree, lp.recompute);
      const double start = std::chrono::duration<double>(Clock::now() - origin_time).count();
      Comparison c = run_nccl_layer(*session, problem, strategy, backward, options,
                                    placement.ring_link, cpu_affordable, start,
                                    "layer " + std::to_string(lp.index) + " (" + layer.strategy +
                                        ", " + std::to_string(ranks) + " ranks)",
                                    layer, report.events);
      finish_layer(layer, lp, shape, c, layer_flops);
      continue;
    }
    if (options.backend == "cuda") {
      if (projected || (strategy != Strategy::query_ring && strategy != Strategy::kv_ring &&
                        strategy != Strategy::single))
        throw Error(at +
                    ": --backend cuda runs query_ring, kv_ring and single layers without "
                    "K/V recomputation; this layer is " +
                    to_string(strategy) + (projected ? " with recomputation" : "") +
                    " (use --backend cpu)");
      const Placement placement =
          placement_for(in, lp.strategy, lp.ranks, lp.ulysses_degree, lp.recompute);
      const double start = std::chrono::duration<double>(Clock::now() - origin_time).count();
      Comparison c =
          run_cuda_layer(problem, strategy, ranks, backward, options, placement.ring_link,
                         cpu_affordable, start, layer, report.events);
      finish_layer(layer, lp, shape, c, layer_flops);
      continue;
    }
    if (projected) {
      // LV-XAttn training with recomputation: K and V come from the visual tokens, are dropped
      // after the forward and rebuilt in backward; checked against the one-rank computation.
      ProjectedProblem pp;
      pp.attention = problem;
      pp.visual_hidden = shape.visual_hidden;
      SyntheticValues values(options.seed + 1000 + i, storage);
      const float w_scale = 1.0f / std::sqrt(static_cast<float>(shape.visual_hidden));
      values.fill(pp.x, static_cast<size_t>(shape.batch) * shape.s_kv * shape.visual_hidden);
      values.fill(pp.wk, static_cast<size_t>(shape.visual_hidden) * shape.kv_heads * shape.head_dim,
                  w_scale);
      values.fill(pp.wv, pp.wk.size(), w_scale);
      const double start = std::chrono::duration<double>(Clock::now() - origin_time).count();
      ProjectedResult got = run_projected(strategy, ranks, pp, true);
      const double end = std::chrono::duration<double>(Clock::now() - origin_time).count();
      ProjectedResult ref = run_projected(Strategy::single, 1, pp, false);
      layer.strategy += "+recompute";
      layer.measured_time_s = end - start;
      layer.measured_compute_s = layer.measured_time_s;
      Comparison c;
      compare(got.o, ref.o, storage, c);
      compare(got.l, ref.l, kernels::Storage::fp32, c);
      compare(got.dq, ref.dq, storage, c);
      compare(got.dx, ref.dx, storage, c);
      compare(got.dwk, ref.dwk, storage, c);
      compare(got.dwv, ref.dwv, storage, c);
      report.events.push_back(
          {0, 1, "layer " + std::to_string(lp.index) + " " + layer.strategy, start, end});
      finish_layer(layer, lp, shape, c, layer_flops);
      continue;
    }
    AttentionResult out = allocate_result(problem, backward);
    std::vector<double> busy(ranks, 0), waited(ranks, 0), sent(ranks, 0);
    for (int rep = -options.warmup; rep < std::max(1, options.repeat); ++rep) {
      const size_t events_before = report.events.size();
      std::fill(sent.begin(), sent.end(), 0.0);
      const double start = std::chrono::duration<double>(Clock::now() - origin_time).count();
      run_on_threads(
          ranks,
          [&](Communicator& world) {
            FaultInjectingCommunicator faulty(world, options.fault.value_or(Fault{-1, 1}));
            Communicator& comm = options.fault ? static_cast<Communicator&>(faulty) : world;
            RecordingCommunicator rec(comm, origin_time, report.events, events_mutex,
                                      "layer " + std::to_string(lp.index) + " (" + layer.strategy +
                                          ", " + std::to_string(ranks) + " ranks)");
            double t0 = rec.seconds();
            run_rank(strategy, rec, problem, backward, out, layout);
            double t1 = rec.seconds();
            busy[rec.rank()] = t1 - t0;
            waited[rec.rank()] = rec.waited_s();
            sent[rec.rank()] = static_cast<double>(rec.bytes_sent());
            std::lock_guard<std::mutex> lock(events_mutex);
            most_fault_rank_sends = std::max(most_fault_rank_sends, faulty.sends());
            report.events.push_back({rec.rank(), 1,
                                     "layer " + std::to_string(lp.index) + " " + layer.strategy, t0,
                                     t1});
          },
          options.timeout_s);
      const double end = std::chrono::duration<double>(Clock::now() - origin_time).count();
      if (rep < 0) {  // warm-up: first-touch page faults, clocks; not measured, not traced
        report.events.resize(events_before);
        continue;
      }
      layer.measured_samples_s.push_back(end - start);
    }
    layer.measured_time_s = median(layer.measured_samples_s);
    for (int r = 0; r < ranks; ++r) {
      layer.measured_compute_s = std::max(layer.measured_compute_s, busy[r] - waited[r]);
      layer.measured_comm_s = std::max(layer.measured_comm_s, waited[r]);
      layer.bytes_sent += sent[r];
    }
    AttentionResult want = run_reference(problem, backward);
    Comparison c;
    compare(out.o, want.o, storage, c);
    compare(out.l, want.l, kernels::Storage::fp32, c);
    if (backward) {
      compare(out.dq, want.dq, storage, c);
      compare(out.dk, want.dk, storage, c);
      compare(out.dv, want.dv, storage, c);
    }
    finish_layer(layer, lp, shape, c, layer_flops);
  }
  if (options.fault)  // it would have ended the run: it never fired
    throw Error("--inject-fault: rank " + std::to_string(options.fault->rank) + "'s send #" +
                std::to_string(options.fault->message) + " never happens in this plan (at most " +
                std::to_string(most_fault_rank_sends) +
                " sends in one layer run); choose a smaller MESSAGE");
  report.verified = worst_ratio <= 1.0;
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
  if (options.backend == "nccl")
    report.notes.push_back(
        "measured: the nccl backend, one process per GPU (" + std::to_string(session->world()) +
        "); each layer's times are the slowest rank's, its errors the largest over the ranks "
        "(each checks its own rows); derived_comm_s times the same bytes on the planned "
        "cluster's ring link");
  if (options.backend == "cuda") {
    report.notes.push_back(
        "measured: the cuda backend, every rank of a ring emulated on this one GPU (the ranks' "
        "kernels share it; ring transfers are device-to-device copies overlapped with them); "
        "predicted: the planner's cost on the planned cluster (" +
        in.cluster.name + ")");
    report.notes.push_back(
        "derived_comm_s: the bytes each rank sent, timed on the planned cluster's ring link "
        "(bandwidth and latency from the cluster spec), not measured");
    report.notes.push_back(
        "monolithic_time_s: one rank doing the layer's whole work on the same GPU; "
        "ring_overhead = measured / monolithic − 1");
  } else {
    report.notes.push_back(
        "measured: the cpu backend, ranks as threads on this machine; predicted: the planner's "
        "cost of the same shapes on the planned cluster (" +
        in.cluster.name + "), so the two differ by the hardware");
  }
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
  return report;
}

/// Per repetition, the time summed over layers (empty unless every layer has every sample).
std::vector<double> total_samples(const RunReport& r) {
  if (r.layers.empty()) return {};
  const size_t n = r.layers.front().measured_samples_s.size();
  std::vector<double> totals(n, 0.0);
  for (const auto& l : r.layers) {
    if (l.measured_samples_s.size() != n) return {};
    for (size_t i = 0; i < n; ++i) totals[i] += l.measured_samples_s[i];
  }
  return n > 1 ? totals : std::vector<double>{};
}

nlohmann::json to_json(const RunReport& r) {
  // A number that was not measured (cuda-only comparisons on the cpu backend, the FLOP rate of
  // a decode layer that counts none) is null, never 0.
  auto measured = [](double v) { return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : r.layers)
    layers.push_back({{"index", l.index},
                      {"strategy", l.strategy},
                      {"ranks", l.ranks},
                      {"batch", l.batch},
                      {"s_q", l.s_q},
                      {"s_kv", l.s_kv},
                      {"backward", l.backward},
                      {"steps", l.steps},
                      {"measured_time_s", l.measured_time_s},
                      {"measured_step_s", l.measured_step_s},
                      {"measured_samples_s", l.measured_samples_s},
                      {"measured_compute_s", l.measured_compute_s},
                      {"measured_comm_s", l.measured_comm_s},
                      {"predicted_time_s", l.predicted_time_s},
                      {"predicted_compute_s", l.predicted_compute_s},
                      {"predicted_comm_s", l.predicted_comm_s},
                      {"measured_step_compute_s", l.measured_step_compute_s},
                      {"measured_step_comm_s", l.measured_step_comm_s},
                      {"predicted_step_compute_s", l.predicted_step_compute_s},
                      {"predicted_step_comm_s", l.predicted_step_comm_s},
                      {"time_error", l.time_error},
                      {"flop_per_s", measured(l.flop_per_s)},
                      {"overlap_efficiency", l.overlap_efficiency},
                      {"algbw_bytes_per_s", l.algbw_bytes_per_s},
                      {"busbw_bytes_per_s", l.busbw_bytes_per_s},
                      {"predicted_peak_memory_bytes", l.predicted_peak_memory_bytes},
                      {"bytes_sent", l.bytes_sent},
                      {"measured_copy_s", measured(l.measured_copy_s)},
                      {"derived_comm_s", measured(l.derived_comm_s)},
                      {"monolithic_time_s", measured(l.monolithic_time_s)},
                      {"ring_overhead", l.monolithic_time_s > 0 ? nlohmann::json(l.ring_overhead)
                                                                : nlohmann::json(nullptr)},
                      {"checked_against", l.checked_against},
                      {"max_abs_error", l.max_abs_error},
                      {"max_rel_error", l.max_rel_error},
                      {"tolerance", l.tolerance},
                      {"verified", l.verified}});
  return {{"schema_version", kReportSchemaVersion},
          {"xring_version", xring_version()},
          {"provenance", r.provenance},
          {"backend", r.backend},
          {"plan", r.plan_origin},
          {"seed", r.seed},
          {"scale", r.scale},
          {"warmup", r.warmup},
          {"verified", r.verified},
          {"max_abs_error", r.max_abs_error},
          {"max_rel_error", r.max_rel_error},
          {"tolerance", r.tolerance},
          {"tolerance_rule", r.tolerance_rule},
          {"layers", layers},
          {"measured",
           {{"time_s", r.measured_time_s},
            {"throughput_tokens_per_s", r.measured_tokens_per_s},
            {"flop_per_s", r.measured_flop_per_s},
            {"frames_per_s", r.measured_frames_per_s},
            {"samples_s", total_samples(r)}}},
          {"predicted",
           {{"time_s", r.predicted_time_s},
            {"throughput_tokens_per_s", r.predicted_tokens_per_s},
            {"flop_per_s", r.predicted_flop_per_s},
            {"frames_per_s", r.predicted_frames_per_s}}},
          {"notes", r.notes}};
}

nlohmann::json measured_trace(const RunReport& r) {
  nlohmann::json events = nlohmann::json::array();
  int ranks = 0;
  for (const auto& e : r.events) ranks = std::max(ranks, e.rank + 1);
  for (int rank = 0; rank < ranks; ++rank) {
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"args", {{"name", "rank " + std::to_string(rank)}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"tid", 1},
                      {"args", {{"name", "compute"}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", rank},
                      {"tid", 2},
                      {"args",
                       {{"name", r.backend == "cuda" ? "copies (communication stream)"
                                                     : "waiting for peers"}}}});
  }
  for (const auto& e : r.events)
    events.push_back({{"name", e.name},
                      {"cat", e.lane == 1           ? "compute"
                              : r.backend == "cuda" ? "copy"
                                                    : "wait"},
                      {"ph", "X"},
                      {"pid", e.rank},
                      {"tid", e.lane},
                      {"ts", e.start_s * 1e6},
                      {"dur", (e.end_s - e.start_s) * 1e6}});
  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData",
           {{"generator", "xring run " + xring_version()},
            {"kind", "measured"},
            {"backend", r.backend}}}};
}

}  // namespace xring::executor
