// The nccl backend: one process per GPU. Every process runs its own rank's program of the ring
// schedule (rank_program.hpp) on its GPU: kernels on a compute stream; each transfer one NCCL
// group (send to the successor, receive from the predecessor) on a communication stream,
// ordered with events, so the next step's blocks travel while this step's kernel runs. The
// NCCL library is loaded when the backend starts (libnccl.so.2 on the loader path, or
// XRING_NCCL_LIBRARY), so xring itself starts where NCCL is absent.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "xring/executor/emulated.hpp"
#include "xring/executor/rendezvous.hpp"

namespace xring::executor {

class NcclSession {
 public:
  virtual ~NcclSession() = default;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  /// Where rank r runs (from the rendezvous), for messages.
  virtual std::string host(int r) const = 0;
  /// This rank's part of `strategy` (query_ring or kv_ring over the whole world; single when
  /// the world is one process) on `p`; its rows of the result, the rest zero. `where` opens
  /// failure messages ("layer 3 (query_ring, 8 ranks)"). A step that makes no progress within
  /// the session's timeout, or an NCCL error, aborts the communicator and throws xring::Error
  /// (runtime) naming the rank, its host and the step.
  virtual EmulatedRun run(Strategy strategy, const AttentionProblem& p, bool backward,
                          const std::string& where) = 0;
  /// Element-wise maximum (or sum) over every rank; every rank gets the result.
  virtual std::vector<double> all_reduce(std::vector<double> values, bool maximum) = 0;
};

/// "" when this build and machine can run the nccl backend (CUDA, a GPU, the NCCL library);
/// else why not.
std::string nccl_backend_unavailable();

/// Meets the other processes (rank 0 hands out NCCL's unique id through the rendezvous file)
/// and creates the communicator on this process's GPU (its local rank from the launcher, else
/// rank mod the GPUs it sees). Throws xring::Error (runtime) when it cannot.
std::unique_ptr<NcclSession> open_nccl_session(const LaunchIdentity& who, double timeout_s);

}  // namespace xring::executor
