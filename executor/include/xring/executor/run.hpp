// `xring run`: executes a plan's cross-attention layers on synthetic, seeded inputs with a
// backend, verifies them against the monolithic reference, and reports measured beside
// predicted.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xring/executor/communicator.hpp"
#include "xring/executor/rendezvous.hpp"
#include "xring/planner/planner.hpp"

namespace xring::executor {

inline constexpr int kReportSchemaVersion = 1;

/// The longest --timeout: one week. Longer waits overflow the clock's nanosecond count
/// (1e10 s does) and make every wait time out at once (docs/file-formats.md "Resource limits").
constexpr double kMaxTimeoutS = 7 * 24 * 3600.0;

struct RunOptions {
  std::string backend = "cpu";  ///< cpu (threads), cuda (ranks emulated on one GPU), nccl
  uint64_t seed = 1;
  std::optional<double> scale;      ///< multiplies S_Q and S_KV; required for large plans
  double max_gflop_per_layer = 20;  ///< the CPU budget above which --scale is required
  std::string media_mask = "none";  ///< none | same_group | up_to_group (Flamingo-style)
  int repeat = 1;                   ///< measurements per layer; the report keeps every sample
  int warmup = 1;  ///< unmeasured runs of every layer first (page faults, clocks, CUDA modules)
  double timeout_s =
      120;  ///< the longest any rank waits for a peer before aborting, (0, kMaxTimeoutS]
  std::optional<Fault> fault;            ///< testing the abort path: a fault injected into one rank
  std::optional<LaunchIdentity> launch;  ///< nccl: this process's rank, world and rendezvous
  /// Called before each layer runs (done < total) and once when all have run (done == total),
  /// with what runs next ("layer 3 (query_ring, 8 ranks)"); may be empty.
  std::function<void(size_t done, size_t total, const std::string& what)> progress;
};

struct LayerReport {
  int index = 0;
  std::string strategy;
  int ranks = 1;
  long long batch = 1, s_q = 0, s_kv = 0;  ///< as executed (after --scale)
  bool backward = false;
  int steps = 1;  ///< ring steps per pass (1 for all-to-all and single)
  double measured_time_s = 0;
  double measured_step_s = 0;              ///< measured_time_s / steps (per pass)
  std::vector<double> measured_samples_s;  ///< every repetition; measured_time_s is their median
  double measured_compute_s = 0;           ///< slowest rank's time not waiting for peers
  double measured_comm_s = 0;              ///< slowest rank's time waiting for peers
  double predicted_time_s = 0;  ///< the planner's cost of this shape on the planned cluster
  double predicted_compute_s = 0;
  double predicted_comm_s = 0;
  double measured_step_compute_s = 0;   ///< per ring step and pass
  double measured_step_comm_s = 0;      ///< exposed waiting per transfer
  double predicted_step_compute_s = 0;  ///< forward
  double predicted_step_comm_s = 0;
  double time_error = 0;          ///< (predicted − measured) / measured
  double flop_per_s = 0;          ///< achieved: the layer's FLOPs over its measured time
  double overlap_efficiency = 0;  ///< no-communication bound (slowest rank's compute) / time
  double algbw_bytes_per_s = 0;   ///< bytes a rank sent / exposed transfer time (nccl-tests)
  double busbw_bytes_per_s = 0;   ///< algbw, x (P−1)/P for all-to-all
  double predicted_peak_memory_bytes = 0;  ///< the plan's per-rank total for this layer
  double bytes_sent = 0;  ///< all ranks (cpu: fp32 messages; cuda: Q, K, V at the storage type)
  /// cuda: the slowest rank's device-to-device copy time (overlapped with the kernels).
  double measured_copy_s = 0;
  /// cuda: the slowest rank's transfers timed on the planned cluster's ring link (derived from
  /// the bytes and the link's bandwidth and latency; not measured).
  double derived_comm_s = 0;
  /// cuda: one rank doing the layer's whole work on the same GPU (one kernel per pass).
  double monolithic_time_s = 0;
  double ring_overhead = 0;                   ///< cuda: measured / monolithic − 1
  std::string checked_against = "reference";  ///< reference (CPU), or the monolithic GPU run
  double max_abs_error = 0;
  double max_rel_error = 0;  ///< max abs error / the tensor's largest |reference|
  double tolerance = 0;      ///< allowed abs error at the largest reference value
  bool verified = false;
};

struct TraceEvent {
  int rank = 0;
  int lane = 0;  ///< 1 compute, 2 waiting for peers
  std::string name;
  double start_s = 0, end_s = 0;
};

/// The cache after one frame of a streaming run.
struct StreamingFrameReport {
  double t_s = 0;                    ///< stream seconds (the plan's time axis)
  double cache_bytes = 0;            ///< measured: the executor's K/V allocations, all layers
  double predicted_cache_bytes = 0;  ///< the plan's formula at the executed sizes
};

/// A streaming plan as executed: its policy's caches frame by frame and its text queries.
struct StreamingRunReport {
  std::string policy;
  int layers = 0;                  ///< layers holding the visual tokens
  long long tokens_per_frame = 0;  ///< as executed (after --scale)
  long long frames_planned = 0;    ///< frames of the (scaled) stream
  long long frames_executed = 0;   ///< fewer when the cache outgrew the usable memory
  double seconds_per_frame = 0;    ///< stream seconds one executed frame stands for
  /// Executed visual tokens / planned ones (--scale², about): cache sizes and the usable memory
  /// are multiplied by it, so the curve keeps the plan's shape on the plan's time axis.
  double memory_scale = 1;
  long long cache_tokens = 0, recent_tokens = 0;  ///< inf_mllm as executed; 0 otherwise
  double usable_cache_bytes = 0;  ///< (GPU usable − weights − text cache) × memory_scale
  std::vector<StreamingFrameReport> frames;
  double peak_cache_bytes = 0, predicted_peak_cache_bytes = 0;
  std::optional<double> oom_at_s;            ///< measured: the first frame past the usable memory
  std::optional<double> predicted_oom_at_s;  ///< the plan's
  double frame_time_s = 0;  ///< mean time of one frame's cache updates, all layers
  double query_time_s = 0;  ///< mean time of one text query (all its decode steps)
  int queries = 0;
  long long decode_steps = 0;          ///< per query: generate_tokens × scale, at least 1
  double tokens_per_s = 0;             ///< measured: decode steps / their time
  double predicted_tokens_per_s = 0;   ///< the plan's (full-size stream, planned GPU)
};

struct RunReport {
  std::string backend;
  /// Whether this process reports (always, except the nccl backend's ranks other than 0).
  bool primary = true;
  std::string plan_origin;
  uint64_t seed = 1;
  double scale = 1;
  int warmup = 1;
  bool verified = false;
  double max_abs_error = 0, max_rel_error = 0, tolerance = 0;
  std::string tolerance_rule;
  std::vector<LayerReport> layers;
  double measured_time_s = 0, measured_tokens_per_s = 0, measured_flop_per_s = 0;
  double measured_frames_per_s = 0;
  double predicted_time_s = 0, predicted_tokens_per_s = 0, predicted_flop_per_s = 0,
         predicted_frames_per_s = 0;
  std::vector<std::string> notes;
  nlohmann::json provenance;       ///< version, git revision, plan hash, date, seed
  std::vector<TraceEvent> events;  ///< the measured timeline (for --trace)
  std::optional<StreamingRunReport> streaming;  ///< streaming plans
};

/// Runs every cross-attention layer of `plan`. Throws xring::Error: bad input (a plan the
/// backend cannot run, a plan too large without --scale) or runtime failures.
RunReport run_plan(const Plan& plan, const Inputs& in, const std::string& origin,
                   const RunOptions& options);

/// The median of samples (0 for none): what `--repeat` reports, and validate compares.
double median(std::vector<double> samples);

nlohmann::json to_json(const RunReport& r);
/// The measured timeline as Chrome trace events, beside the plan's predicted one.
nlohmann::json measured_trace(const RunReport& r);

}  // namespace xring::executor
