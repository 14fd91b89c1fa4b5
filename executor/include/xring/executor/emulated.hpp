// Emulated ranks: every rank of a ring held by one device, which runs a ring schedule's
// operations (ring_schedule.hpp). The driver, `run_emulated`, is the same for every device: it
// loads each rank's blocks, runs the forward (and backward) schedule in list order, and reads
// the results back. Devices: HostRingDevice (reference kernels, in list order; it checks the
// schedules exactly on any machine) and the CUDA device (one GPU; streams and events; see
// cuda_ring_device.hpp).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "xring/executor/attention.hpp"
#include "xring/executor/ring_schedule.hpp"

namespace xring::executor {

/// When one operation ran, in seconds from the start of its pass (ends after starts; waits for
/// other lanes are not inside).
struct OpTiming {
  double start_s = 0, end_s = 0;
};

class RingDevice {
 public:
  virtual ~RingDevice() = default;
  /// Makes room for schedule `s`: every rank's buffers for every tensor and slot, each large
  /// enough for the largest block. Contents are undefined until loaded.
  virtual void prepare(const RingSchedule& s) = 0;
  /// Puts a block (values at the storage precision, fp32 for the others) in a buffer.
  virtual void load(const BufferId& b, const std::vector<float>& values) = 0;
  /// Enqueues operation `index` of `s`; operations are given in list order.
  virtual void run(const RingSchedule& s, size_t index) = 0;
  /// Waits until every enqueued operation is done; returns each one's timing.
  virtual std::vector<OpTiming> finish() = 0;
  /// The first `count` values of a buffer, as fp32.
  virtual std::vector<float> read(const BufferId& b, size_t count) = 0;
  /// Bytes per value the device holds tensor t in.
  virtual size_t element_bytes(Tensor t) const = 0;
};

/// What a pass measured: the span from its first operation's start to its last one's end, and
/// per rank the time its compute lane ran kernels and its communication lane ran copies.
struct PassTiming {
  double total_s = 0;
  std::vector<double> compute_s, copy_s;
  std::vector<OpTiming> ops;
  std::vector<double> op_bytes;  ///< bytes each operation moved (0 for kernels)
  RingSchedule schedule;
};

struct EmulatedRun {
  AttentionResult result;
  PassTiming forward, backward;  ///< backward empty unless requested
};

/// Runs `strategy` (query_ring, kv_ring, or single on one rank) with `ranks` emulated ranks on
/// `device`: the same result contract as run_distributed. Throws xring::Error otherwise.
EmulatedRun run_emulated(RingDevice& device, Strategy strategy, int ranks,
                         const AttentionProblem& p, bool backward);

/// How the driver runs a pass's schedule on the device; returns the operations' timings
/// (indexed like the schedule's; operations it did not run may be left out at the end).
using PassRunner = std::function<std::vector<OpTiming>(const RingSchedule&)>;

/// The driver behind run_emulated, for the ranks in `mine` only (all of them when one device
/// holds every rank; one when each rank is a process): loads their blocks, runs the forward (and
/// backward) schedule with `run`, writes their rows of `out` (sized by allocate_result), and
/// the passes' timings to `timings` when given.
void run_ring_ranks(RingDevice& device, Strategy strategy, int ranks, const std::vector<int>& mine,
                    const AttentionProblem& p, bool backward, const PassRunner& run,
                    AttentionResult& out, EmulatedRun* timings);

/// The reference kernels on host memory, operations in list order: the schedules' exact check.
class HostRingDevice final : public RingDevice {
 public:
  /// Buffers for the ranks in `held` (all when empty).
  HostRingDevice(const AttentionProblem& p, int ranks, std::vector<int> held = {});
  void prepare(const RingSchedule& s) override;
  void load(const BufferId& b, const std::vector<float>& values) override;
  void run(const RingSchedule& s, size_t index) override;
  std::vector<OpTiming> finish() override;
  std::vector<float> read(const BufferId& b, size_t count) override;
  size_t element_bytes(Tensor) const override { return sizeof(float); }

 private:
  std::vector<float>& buffer(const BufferId& b);
  std::vector<float>& partial(int rank, Tensor t);  ///< a kernel's output awaiting its merge
  const AttentionProblem& p_;
  int ranks_;
  std::vector<int> held_;
  std::vector<std::vector<float>> buffers_;   ///< [rank][tensor][slot]
  std::vector<std::vector<float>> partials_;  ///< [rank][tensor]
  std::vector<OpTiming> timings_;
  std::chrono::steady_clock::time_point origin_;
};

/// Values of tensor t in one block of `rows` rows: B · heads · rows · width.
size_t block_values(const kernels::Shape& s, Tensor t, long long rows);

}  // namespace xring::executor
