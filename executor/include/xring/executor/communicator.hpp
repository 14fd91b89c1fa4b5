// The seam between the distributed algorithms and the transport: point-to-point messages with
// ring neighbours, all-to-all, all-reduce, barrier. Backends: threads (here), CUDA and NCCL.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

namespace xring::executor {

/// One rank's view of the world. Messages are fp32 buffers; `tag` separates concurrent streams
/// of messages between the same pair of ranks. recv blocks until the matching send arrives, or
/// throws xring::Error (runtime) when a peer failed or the wait exceeds the world's timeout.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void send(int to, std::vector<float> data, int tag) = 0;
  virtual std::vector<float> recv(int from, int tag) = 0;
  virtual void barrier() = 0;

  /// parts[j] goes to rank j; returns, for every rank j, what j sent to this rank.
  std::vector<std::vector<float>> all_to_all(std::vector<std::vector<float>> parts, int tag);
  /// Element-wise sum over all ranks, result on every rank (gather to rank 0, broadcast).
  void all_reduce_sum(std::vector<float>& values, int tag);

  size_t bytes_sent() const { return bytes_sent_; }

 protected:
  size_t bytes_sent_ = 0;
};

/// Runs `body` on `ranks` threads, each with its own Communicator, and waits for all of them.
/// If any rank throws, the others' pending and future recv calls fail instead of hanging, and
/// the first exception is rethrown here. `timeout_s` bounds every wait.
void run_on_threads(int ranks, const std::function<void(Communicator&)>& body,
                    double timeout_s = 120);

}  // namespace xring::executor
