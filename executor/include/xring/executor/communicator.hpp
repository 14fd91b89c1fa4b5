// The seam between the distributed algorithms and the transport: point-to-point messages with
// ring neighbours, all-to-all, all-reduce, barrier. Backends: threads (here), CUDA and NCCL.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
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

/// A fault to inject for testing the abort paths: rank `rank`'s `message`-th send (counting
/// from 1) either fails (the rank throws) or is dropped (the peer waits until its timeout).
struct Fault {
  enum class Kind { fail, drop };
  int rank = 0;
  int message = 1;
  Kind kind = Kind::fail;
};
/// "RANK:MESSAGE:fail|drop", e.g. "1:3:drop". Throws xring::Error (bad input) otherwise.
Fault parse_fault(const std::string& text);

/// Wraps a communicator and injects `fault` when this rank is the fault's rank.
class FaultInjectingCommunicator final : public Communicator {
 public:
  FaultInjectingCommunicator(Communicator& inner, Fault fault) : inner_(inner), fault_(fault) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void send(int to, std::vector<float> data, int tag) override;
  std::vector<float> recv(int from, int tag) override { return inner_.recv(from, tag); }
  void barrier() override { inner_.barrier(); }
  /// Sends this rank made through the wrapper so far (the fault fires at fault.message).
  int sends() const { return sends_; }

 private:
  Communicator& inner_;
  Fault fault_;
  int sends_ = 0;
};

/// The host name, for messages that say where a rank failed.
std::string host_name();

/// Runs `body` on `ranks` threads, each with its own Communicator, and waits for all of them.
/// If any rank throws, the others' pending and future recv calls fail instead of hanging, and
/// the first exception is rethrown here. `timeout_s` bounds every wait.
void run_on_threads(int ranks, const std::function<void(Communicator&)>& body,
                    double timeout_s = 120);

}  // namespace xring::executor
