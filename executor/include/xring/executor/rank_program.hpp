// One rank's share of a ring schedule, for backends where every rank is its own process (the
// nccl backend): the rank's kernels and merges and, per transfer, one exchange that sends to its
// successor and receives from its predecessor together (separate sends around a ring would
// deadlock, as each would wait for a receive queued behind the neighbour's own send). Waits on
// other ranks disappear: the peer enforces them before it sends; the local ones become waits
// between this rank's two lanes.
#pragma once

#include <functional>
#include <vector>

#include "xring/executor/communicator.hpp"
#include "xring/executor/emulated.hpp"

namespace xring::executor {

struct RankStep {
  enum class Kind { compute, exchange } kind = Kind::compute;
  int op = -1;             ///< compute: the schedule's operation (an attend or a merge)
  int send = -1;           ///< exchange: the operation whose tensors this rank sends (-1: none)
  int recv = -1;           ///< exchange: the operation whose tensors it receives (-1: none)
  std::vector<int> after;  ///< earlier steps of this rank, on its other lane, to wait for
};

/// Rank `rank`'s steps of `s`, in an order it can enqueue them.
std::vector<RankStep> rank_program(const RingSchedule& s, int rank);

/// "" when, for every operation of `s` that rank `rank` runs or receives, each of its waits on
/// this rank's operations is kept by the program (a wait or the lane order); else what is lost.
std::string check_rank_program(const RingSchedule& s, int rank,
                               const std::vector<RankStep>& program);

/// Rank comm.rank()'s part of `strategy` over a Communicator, on a host device holding its
/// blocks: the program of every pass, exchanges as messages. Writes this rank's rows of `out`
/// (sized by allocate_result); ranks write disjoint rows. This is what the nccl backend runs
/// per process, with NCCL groups for the exchanges.
void run_rank_program(Communicator& comm, Strategy strategy, const AttentionProblem& p,
                      bool backward, AttentionResult& out);

}  // namespace xring::executor
