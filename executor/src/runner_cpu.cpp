// The cpu backend's runner: each rank a thread running the reference kernels over a recording
// communicator (exact rings, all-to-alls and hybrids), or, for LV-XAttn training with
// recomputation, the projected problem; checked against the reference.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "layer_runner.hpp"
#include "synthetic_inputs.hpp"
#include "xring/executor/projection.hpp"
#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

using Clock = RunClock;

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

class CpuRunner final : public LayerRunner {
 public:
  CpuRunner(const RunOptions& options, Clock::time_point origin)
      : options_(options), origin_(origin) {}

  void check(const LayerJob& job) const override {
    if (job.cpu_affordable) return;
    throw Error(job.at + ": " + std::to_string(static_cast<long long>(job.flops / 1e9)) +
                " GFLOP per layer is too much for the cpu backend (limit " +
                std::to_string(static_cast<long long>(options_.max_gflop_per_layer)) +
                "); pass --scale F to multiply S_Q and S_KV by F, e.g. --scale " +
                std::to_string(std::sqrt(options_.max_gflop_per_layer * 1e9 / job.flops) * 0.5)
                    .substr(0, 6));
  }

  Comparison run(const LayerJob& job, LayerReport& layer,
                 std::vector<TraceEvent>& events) override {
    return job.projected ? run_projected_layer(job, layer, events)
                         : run_exact_layer(job, layer, events);
  }

  void finish() override {
    if (options_.fault)  // it would have ended the run: it never fired
      throw Error("--inject-fault: rank " + std::to_string(options_.fault->rank) + "'s send #" +
                  std::to_string(options_.fault->message) +
                  " never happens in this plan (at most " + std::to_string(most_fault_rank_sends_) +
                  " sends in one layer run); choose a smaller MESSAGE");
  }

  std::vector<std::string> notes(const Inputs& in) const override {
    return {
        "measured: the cpu backend, ranks as threads on this machine; predicted: the "
        "planner's cost of the same shapes on the planned cluster (" +
        in.cluster.name + "), so the two differ by the hardware"};
  }

 private:
  /// LV-XAttn training with recomputation: K and V come from the visual tokens, are dropped
  /// after the forward and rebuilt in backward; checked against the one-rank computation.
  Comparison run_projected_layer(const LayerJob& job, LayerReport& layer,
                                 std::vector<TraceEvent>& events) {
    const LayerShape& shape = job.shape;
    const kernels::Storage storage = job.problem.storage;
    ProjectedProblem pp;
    pp.attention = job.problem;
    pp.visual_hidden = shape.visual_hidden;
    SyntheticValues values(job.seed + 1000, storage);
    const float w_scale = 1.0f / std::sqrt(static_cast<float>(shape.visual_hidden));
    values.fill(pp.x, static_cast<size_t>(shape.batch) * shape.s_kv * shape.visual_hidden);
    values.fill(pp.wk, static_cast<size_t>(shape.visual_hidden) * shape.kv_heads * shape.head_dim,
                w_scale);
    values.fill(pp.wv, pp.wk.size(), w_scale);
    const double start = seconds_since(origin_);
    ProjectedResult got = run_projected(job.strategy, job.ranks, pp, true);
    const double end = seconds_since(origin_);
    ProjectedResult ref = run_projected(Strategy::single, 1, pp, false);
    layer.strategy += "+recompute";
    layer.measured_time_s = end - start;
    layer.measured_compute_s = layer.measured_time_s;
    Comparison c;
    compare_cpu(got.o, ref.o, storage, c);
    compare_cpu(got.l, ref.l, kernels::Storage::fp32, c);
    compare_cpu(got.dq, ref.dq, storage, c);
    compare_cpu(got.dx, ref.dx, storage, c);
    compare_cpu(got.dwk, ref.dwk, storage, c);
    compare_cpu(got.dwv, ref.dwv, storage, c);
    events.push_back(
        {0, 1, "layer " + std::to_string(job.plan->index) + " " + layer.strategy, start, end});
    return c;
  }

  /// Every rank a thread, `repeat` times after the warm-up; checked against the reference.
  Comparison run_exact_layer(const LayerJob& job, LayerReport& layer,
                             std::vector<TraceEvent>& events) {
    const AttentionProblem& problem = job.problem;
    const int ranks = job.ranks;
    AttentionResult out = allocate_result(problem, job.backward);
    std::vector<double> busy(ranks, 0), waited(ranks, 0), sent(ranks, 0);
    std::mutex events_mutex;
    const RankAlgorithm algorithm = rank_algorithm(job.strategy, job.layout);
    for (int rep = -options_.warmup; rep < std::max(1, options_.repeat); ++rep) {
      const size_t events_before = events.size();
      std::fill(sent.begin(), sent.end(), 0.0);
      const double start = seconds_since(origin_);
      run_on_threads(
          ranks,
          [&](Communicator& world) {
            FaultInjectingCommunicator faulty(world, options_.fault.value_or(Fault{-1, 1}));
            Communicator& comm = options_.fault ? static_cast<Communicator&>(faulty) : world;
            RecordingCommunicator rec(comm, origin_, events, events_mutex, job.label);
            double t0 = rec.seconds();
            algorithm(rec, problem, job.backward, out);
            double t1 = rec.seconds();
            busy[rec.rank()] = t1 - t0;
            waited[rec.rank()] = rec.waited_s();
            sent[rec.rank()] = static_cast<double>(rec.bytes_sent());
            std::lock_guard<std::mutex> lock(events_mutex);
            most_fault_rank_sends_ = std::max(most_fault_rank_sends_, faulty.sends());
            events.push_back({rec.rank(), 1,
                              "layer " + std::to_string(job.plan->index) + " " + layer.strategy, t0,
                              t1});
          },
          options_.timeout_s);
      const double end = seconds_since(origin_);
      if (rep < 0) {  // warm-up: first-touch page faults, clocks; not measured, not traced
        events.resize(events_before);
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
    AttentionResult want = run_reference(problem, job.backward);
    Comparison c;
    compare_cpu(out.o, want.o, problem.storage, c);
    compare_cpu(out.l, want.l, kernels::Storage::fp32, c);
    if (job.backward) {
      compare_cpu(out.dq, want.dq, problem.storage, c);
      compare_cpu(out.dk, want.dk, problem.storage, c);
      compare_cpu(out.dv, want.dv, problem.storage, c);
    }
    return c;
  }

  const RunOptions& options_;
  Clock::time_point origin_;
  int most_fault_rank_sends_ = 0;  ///< --inject-fault: to say why a fault never fired
};

}  // namespace

std::unique_ptr<LayerRunner> make_cpu_runner(const RunOptions& options,
                                             RunClock::time_point origin_time) {
  return std::make_unique<CpuRunner>(options, origin_time);
}

}  // namespace xring::executor
