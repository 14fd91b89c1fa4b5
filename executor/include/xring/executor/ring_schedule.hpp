// The ring algorithms as data, for backends that enqueue work asynchronously (the cuda backend's
// streams and events; NCCL's later). For P ranks and one pass, `ring_schedule` lists every
// operation in an order the host can enqueue them: a rank's kernel over the blocks it holds
// (attend), a transfer of the travelling tensors to the next rank (send), the return of the
// accumulated ones to their owner (home). Each operation runs on one lane (a rank's compute or
// communication stream) and names the operations on other lanes it waits for; lanes run their
// operations in list order. `find_race` proves, for any P, that this ordering is enough: every
// two operations that touch one buffer, one of them writing, are ordered. A backend that runs
// the list in order on one thread gets the same result as one that overlaps the lanes.
//
// Buffers are (rank, tensor, slot). Travelling tensors have two slots (double buffering: the
// block of step t sits in slot t % 2) and a home slot for the accumulated results that return;
// resident tensors have slot 0. Before a pass, every rank's slot 0 holds its own block (inputs,
// and zeros or -inf for the accumulators).
#pragma once

#include <string>
#include <vector>

#include "xring/planner/strategy.hpp"

namespace xring::executor {

enum class Tensor { q, k, v, d_o, o, l, term, dq, dk, dv };
const char* to_string(Tensor t);
/// q, k, v and dO are held at the storage type; O, L, D (row terms) and the gradients in fp32.
bool held_in_storage_type(Tensor t);
/// q, dO, O, L, D and dQ have query rows and H heads; k, v, dK, dV key rows and H_kv heads.
bool has_query_rows(Tensor t);
/// Values per row of one head: head_dim, or 1 for L and D.
int row_width(Tensor t, int head_dim);

enum class RingPass { forward, backward };

inline constexpr int kHomeSlot = 2;

struct BufferId {
  int rank = 0;
  Tensor tensor = Tensor::q;
  int slot = 0;
  bool operator==(const BufferId& o) const {
    return rank == o.rank && tensor == o.tensor && slot == o.slot;
  }
};

/// attend: a rank's kernel over the blocks it holds; travelling accumulators (a query ring's O
/// and L, dQ; a KV ring's dK, dV) go to the rank's partial buffers, resident ones are added to
/// in place. merge: folds the partial buffers into the travelling accumulators once they have
/// arrived (O, L: the exact log-sum-exp merge; gradients: a sum). send: the travelling tensors
/// to the next rank. home: the accumulated results, after the last step, to their owner.
struct RingOp {
  enum class Kind { attend, merge, send, home } kind = Kind::attend;
  int rank = 0;            ///< whose lane runs it
  bool comm_lane = false;  ///< attend, merge: the compute lane; send, home: the communication lane
  int step = 0;
  int q_block = 0;   ///< attend, merge: whose Q rows this rank works on
  int kv_block = 0;  ///< attend, merge: whose K/V rows
  int block = 0;     ///< send and home: the block (owning rank) whose tensors move
  int to = 0;        ///< send and home: the receiving rank
  int slot = 0;      ///< the slot of the travelling tensors it reads
  std::vector<std::pair<BufferId, BufferId>> moves;  ///< send and home: (from, to)
  std::vector<BufferId> reads, writes;               ///< every buffer it touches
  std::vector<int> after;  ///< earlier operations on other lanes it waits for (list indices)
};

struct RingSchedule {
  Strategy strategy = Strategy::query_ring;  ///< query_ring or kv_ring (single: query_ring, P=1)
  RingPass pass = RingPass::forward;
  int ranks = 1;
  std::vector<Tensor> travelling;   ///< fixed during the pass: leave as soon as they arrive
  std::vector<Tensor> accumulated;  ///< travel after each step's kernel, then return home
  std::vector<Tensor> resident;     ///< stay on their rank
  std::vector<RingOp> ops;

  /// Every tensor of the pass.
  std::vector<Tensor> tensors() const;
  /// Whether t travels and accumulates (its kernel output goes to a partial buffer first).
  bool accumulates_in_transit(Tensor t) const;
  /// Where an attend operation finds tensor t.
  BufferId buffer(const RingOp& attend, Tensor t) const;
  /// Where rank r's own block of tensor t is after the pass (its result, for accumulators).
  BufferId result(int rank, Tensor t) const;
  /// The slots tensor t has (1 resident, 2 travelling, 3 accumulated with a home slot).
  int slots(Tensor t) const;
};

/// The schedule of `strategy` (query_ring or kv_ring) on `ranks` ranks. Throws xring::Error for
/// other strategies or ranks < 1.
RingSchedule ring_schedule(Strategy strategy, RingPass pass, int ranks);

/// "" when every pair of operations touching one buffer, at least one writing, is ordered by
/// lane order and waits (and every wait names an earlier operation); else the first race.
std::string find_race(const RingSchedule& s);

}  // namespace xring::executor
