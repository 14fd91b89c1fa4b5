// The ring schedules and their race check.
#include "xring/executor/ring_schedule.hpp"

#include <algorithm>
#include <optional>

#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

int mod(int a, int n) { return ((a % n) + n) % n; }

bool contains(const std::vector<Tensor>& ts, Tensor t) {
  return std::find(ts.begin(), ts.end(), t) != ts.end();
}

/// Builds the list step by step; remembers each (kind, rank, step)'s index for the waits.
class Builder {
 public:
  explicit Builder(RingSchedule& s)
      : s_(s), P_(s.ranks), index_(4 * static_cast<size_t>(P_) * P_, -1) {}

  /// The travelling block a rank holds at step t: its own at step 0, then its predecessor's.
  int held(int r, int t) const { return mod(r - t, P_); }

  static constexpr int kAttend = 0, kSendFixed = 1, kSendAccumulated = 2, kMerge = 3;

  /// The list index of operation `which` of rank r at step t, if there is one.
  std::optional<int> find(int which, int r, int t) const {
    if (t < 0 || t >= P_) return std::nullopt;
    int i = index_[(static_cast<size_t>(which) * P_ + mod(r, P_)) * P_ + t];
    return i < 0 ? std::nullopt : std::optional<int>(i);
  }

  /// Everything that must finish before rank r's slot for step t + 1 may be overwritten: the
  /// step t − 1 kernel, merge and sends that read it.
  std::vector<int> frees(int r, int t) const {
    std::vector<int> out = sends_of(r, t - 1);
    for (int which : {kAttend, kMerge})
      if (auto i = find(which, r, t - 1)) out.push_back(*i);
    return out;
  }

  /// The sends into rank r's slot for step t (from its predecessor at step t − 1), of the
  /// fixed tensors or of the accumulated ones.
  std::vector<int> arrivals(int r, int t, int which) const {
    std::vector<int> out;
    if (auto i = find(which, mod(r - 1, P_), t - 1)) out.push_back(*i);
    return out;
  }

  void add(RingOp op, int which) {
    op.after.erase(std::remove_if(op.after.begin(), op.after.end(),
                                  [&](int i) {
                                    return s_.ops[i].rank == op.rank &&
                                           s_.ops[i].comm_lane == op.comm_lane;
                                  }),
                   op.after.end());
    std::sort(op.after.begin(), op.after.end());
    op.after.erase(std::unique(op.after.begin(), op.after.end()), op.after.end());
    index_[(static_cast<size_t>(which) * P_ + op.rank) * P_ + op.step] =
        static_cast<int>(s_.ops.size());
    s_.ops.push_back(std::move(op));
  }

 private:
  std::vector<int> sends_of(int r, int t) const {
    std::vector<int> out;
    for (int which : {kSendFixed, kSendAccumulated})
      if (auto i = find(which, r, t)) out.push_back(*i);
    return out;
  }

  RingSchedule& s_;
  int P_;
  std::vector<int> index_;  ///< [which][rank][step] -> list index, -1 when absent
};

}  // namespace

const char* to_string(Tensor t) {
  switch (t) {
    case Tensor::q:
      return "Q";
    case Tensor::k:
      return "K";
    case Tensor::v:
      return "V";
    case Tensor::d_o:
      return "dO";
    case Tensor::o:
      return "O";
    case Tensor::l:
      return "L";
    case Tensor::term:
      return "D";
    case Tensor::dq:
      return "dQ";
    case Tensor::dk:
      return "dK";
    case Tensor::dv:
      return "dV";
  }
  return "?";
}

bool held_in_storage_type(Tensor t) {
  return t == Tensor::q || t == Tensor::k || t == Tensor::v || t == Tensor::d_o;
}

bool has_query_rows(Tensor t) {
  return !(t == Tensor::k || t == Tensor::v || t == Tensor::dk || t == Tensor::dv);
}

int row_width(Tensor t, int head_dim) { return t == Tensor::l || t == Tensor::term ? 1 : head_dim; }

std::vector<Tensor> RingSchedule::tensors() const {
  std::vector<Tensor> all = travelling;
  all.insert(all.end(), accumulated.begin(), accumulated.end());
  all.insert(all.end(), resident.begin(), resident.end());
  return all;
}

bool RingSchedule::accumulates_in_transit(Tensor t) const { return contains(accumulated, t); }

int RingSchedule::slots(Tensor t) const {
  if (contains(resident, t)) return 1;
  return contains(accumulated, t) && ranks > 1 ? 3 : 2;
}

BufferId RingSchedule::buffer(const RingOp& attend, Tensor t) const {
  return {attend.rank, t, contains(resident, t) ? 0 : attend.slot};
}

BufferId RingSchedule::result(int rank, Tensor t) const {
  if (contains(accumulated, t) && ranks > 1) return {rank, t, kHomeSlot};
  return {rank, t, 0};
}

RingSchedule ring_schedule(Strategy strategy, RingPass pass, int ranks) {
  if (ranks < 1) throw Error("ring schedule: needs at least one rank");
  if (strategy == Strategy::single && ranks == 1) strategy = Strategy::query_ring;
  if (strategy != Strategy::query_ring && strategy != Strategy::kv_ring)
    throw Error("ring schedule: " + to_string(strategy) + " is not a ring");
  RingSchedule s;
  s.strategy = strategy;
  s.pass = pass;
  s.ranks = ranks;
  const bool query_ring = strategy == Strategy::query_ring;
  using T = Tensor;
  if (pass == RingPass::forward) {
    if (query_ring) {
      s.travelling = {T::q};
      s.accumulated = {T::o, T::l};
      s.resident = {T::k, T::v};
    } else {
      s.travelling = {T::k, T::v};
      s.resident = {T::q, T::o, T::l};
    }
  } else {
    if (query_ring) {
      s.travelling = {T::q, T::d_o, T::l, T::term};
      s.accumulated = {T::dq};
      s.resident = {T::k, T::v, T::dk, T::dv};
    } else {
      s.travelling = {T::k, T::v};
      s.accumulated = {T::dk, T::dv};
      s.resident = {T::q, T::d_o, T::l, T::term, T::dq};
    }
  }

  const int P = ranks;
  Builder b(s);
  // Rank r moving `tensors` from its slot for step t to the next rank: into that rank's slot
  // for step t + 1 (send), or, after the last step, into the owner's home slot (home; the block
  // held at the last step belongs to the next rank).
  auto transfer = [&](int r, int t, const std::vector<Tensor>& tensors, RingOp::Kind kind) {
    RingOp op;
    op.kind = kind;
    op.rank = r;
    op.comm_lane = true;
    op.step = t;
    op.block = b.held(r, t);
    op.to = mod(r + 1, P);
    op.slot = t % 2;
    const int to_slot = kind == RingOp::Kind::home ? kHomeSlot : (t + 1) % 2;
    for (Tensor x : tensors) {
      BufferId from{r, x, t % 2}, to{op.to, x, to_slot};
      op.moves.push_back({from, to});
      op.reads.push_back(from);
      op.writes.push_back(to);
    }
    // The receiver's slot is free once its step t − 1 kernel and sends are done.
    if (kind == RingOp::Kind::send) op.after = b.frees(op.to, t);
    return op;
  };
  // Rank r's kernel or merge at step t, on the block it holds then (compute lane).
  auto compute = [&](RingOp::Kind kind, int r, int t) {
    RingOp op;
    op.kind = kind;
    op.rank = r;
    op.step = t;
    op.slot = t % 2;
    op.q_block = query_ring ? b.held(r, t) : r;
    op.kv_block = query_ring ? r : b.held(r, t);
    return op;
  };
  for (int t = 0; t < P; ++t) {
    const bool last = t + 1 == P;
    // Fixed tensors leave first: they do not change, so they travel during the kernel.
    if (!last && !s.travelling.empty())
      for (int r = 0; r < P; ++r) {
        RingOp op = transfer(r, t, s.travelling, RingOp::Kind::send);
        for (int i : b.arrivals(r, t, Builder::kSendFixed)) op.after.push_back(i);
        b.add(std::move(op), Builder::kSendFixed);
      }
    for (int r = 0; r < P; ++r) {
      RingOp op = compute(RingOp::Kind::attend, r, t);
      // The kernel reads the fixed tensors and adds into the resident accumulators; the
      // travelling ones it writes to the rank's partial buffers (device scratch, on this lane
      // only), which the merge below folds in once they have arrived.
      for (Tensor x : s.tensors()) {
        if (contains(s.accumulated, x)) continue;
        BufferId id = s.buffer(op, x);
        const bool written = pass == RingPass::forward ? (x == T::o || x == T::l)
                                                       : (x == T::dq || x == T::dk || x == T::dv);
        (written ? op.writes : op.reads).push_back(id);
        if (written) op.reads.push_back(id);  // accumulators are read, then written
      }
      op.after = b.arrivals(r, t, Builder::kSendFixed);
      b.add(std::move(op), Builder::kAttend);
    }
    if (s.accumulated.empty()) continue;
    // Merges: the running accumulators of the block arrive while the kernel runs and are folded
    // with its partial result after it, so their transfer hides behind the kernel too.
    for (int r = 0; r < P; ++r) {
      RingOp op = compute(RingOp::Kind::merge, r, t);
      for (Tensor x : s.accumulated) {
        BufferId id{r, x, t % 2};
        op.reads.push_back(id);
        op.writes.push_back(id);
      }
      op.after = b.arrivals(r, t, Builder::kSendAccumulated);
      b.add(std::move(op), Builder::kMerge);
    }
    for (int r = 0; r < P; ++r) {
      auto merge = b.find(Builder::kMerge, r, t);
      if (last && P == 1) continue;  // nothing to return: the block is already home
      RingOp op = transfer(r, t, s.accumulated, last ? RingOp::Kind::home : RingOp::Kind::send);
      op.after.push_back(*merge);
      b.add(std::move(op), Builder::kSendAccumulated);
    }
  }
  return s;
}

std::string find_race(const RingSchedule& s) {
  const size_t n = s.ops.size();
  // before[j][i]: operation i happens before j (lane order, waits, transitively).
  std::vector<std::vector<bool>> before(n, std::vector<bool>(n, false));
  std::vector<int> last_on_lane(2 * static_cast<size_t>(s.ranks), -1);
  for (size_t j = 0; j < n; ++j) {
    const RingOp& op = s.ops[j];
    std::vector<int> preds = op.after;
    for (int i : preds)
      if (i < 0 || static_cast<size_t>(i) >= j)
        return "operation " + std::to_string(j) + " waits for a later operation " +
               std::to_string(i);
    int& lane = last_on_lane[2 * op.rank + (op.comm_lane ? 1 : 0)];
    if (lane >= 0) preds.push_back(lane);
    lane = static_cast<int>(j);
    for (int i : preds) {
      before[j][i] = true;
      for (size_t k = 0; k < j; ++k)
        if (before[i][k]) before[j][k] = true;
    }
  }
  auto touches = [](const std::vector<BufferId>& ids, const BufferId& b) {
    return std::find(ids.begin(), ids.end(), b) != ids.end();
  };
  auto name = [&](size_t i) {
    const RingOp& op = s.ops[i];
    const char* kind = op.kind == RingOp::Kind::attend  ? "attend"
                       : op.kind == RingOp::Kind::merge ? "merge"
                       : op.kind == RingOp::Kind::send  ? "send"
                                                        : "home";
    return std::string(kind) + " (rank " + std::to_string(op.rank) + ", step " +
           std::to_string(op.step) + ")";
  };
  for (size_t j = 0; j < n; ++j)
    for (size_t i = 0; i < j; ++i) {
      if (before[j][i]) continue;
      const RingOp &a = s.ops[i], &b = s.ops[j];
      for (const BufferId& w : a.writes)
        if (touches(b.reads, w) || touches(b.writes, w))
          return name(i) + " and " + name(j) + " race on rank " + std::to_string(w.rank) + "'s " +
                 to_string(w.tensor) + " slot " + std::to_string(w.slot);
      for (const BufferId& w : b.writes)
        if (touches(a.reads, w))
          return name(i) + " and " + name(j) + " race on rank " + std::to_string(w.rank) + "'s " +
                 to_string(w.tensor) + " slot " + std::to_string(w.slot);
    }
  return "";
}

}  // namespace xring::executor
