// Per-rank programs from ring schedules, and their execution over a Communicator.
#include "xring/executor/rank_program.hpp"

#include <algorithm>

#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

/// Each transfer has its own tag (this plus its index in the schedule, the same on both sides),
/// so a lost message leaves its receiver waiting rather than reading the next one.
constexpr int kTagExchange = 1000;

/// Whether `op` involves rank `me`: its kernel or merge, a transfer it sends or receives.
bool involves(const RingOp& op, int me) {
  if (!op.comm_lane) return op.rank == me;
  return op.rank == me || op.to == me;
}

/// Which exchange a transfer belongs to: all the transfers of one step that move the same
/// tensors (consecutive in the schedule's list).
std::pair<int, Tensor> group_of(const RingOp& op) {
  return {op.step, op.moves.empty() ? Tensor::q : op.moves.front().first.tensor};
}

}  // namespace

std::vector<RankStep> rank_program(const RingSchedule& s, int me) {
  std::vector<RankStep> program;
  std::vector<int> step_of(s.ops.size(), -1);
  std::pair<int, Tensor> open_group{-1, Tensor::q};
  for (size_t i = 0; i < s.ops.size(); ++i) {
    const RingOp& op = s.ops[i];
    if (!involves(op, me)) continue;
    const bool exchange = op.comm_lane;
    if (exchange && !program.empty() && program.back().kind == RankStep::Kind::exchange &&
        group_of(op) == open_group) {
      step_of[i] = static_cast<int>(program.size()) - 1;
    } else {
      RankStep step;
      step.kind = exchange ? RankStep::Kind::exchange : RankStep::Kind::compute;
      if (!exchange) step.op = static_cast<int>(i);
      open_group = group_of(op);
      step_of[i] = static_cast<int>(program.size());
      program.push_back(step);
    }
    RankStep& step = program[step_of[i]];
    if (exchange) (op.rank == me ? step.send : step.recv) = static_cast<int>(i);
    // Keep the waits on this rank's operations that sit on its other lane; the lane's own order
    // keeps the rest, and the peers keep theirs before they send.
    for (int a : op.after) {
      const int k = step_of[a];
      if (k < 0) continue;
      const bool other_lane = (program[k].kind == RankStep::Kind::exchange) != exchange;
      if (other_lane && std::find(step.after.begin(), step.after.end(), k) == step.after.end())
        step.after.push_back(k);
    }
  }
  return program;
}

std::string check_rank_program(const RingSchedule& s, int me,
                               const std::vector<RankStep>& program) {
  std::vector<int> step_of(s.ops.size(), -1);
  for (size_t k = 0; k < program.size(); ++k)
    for (int i : {program[k].op, program[k].send, program[k].recv})
      if (i >= 0) step_of[i] = static_cast<int>(k);
  for (size_t i = 0; i < s.ops.size(); ++i) {
    if (!involves(s.ops[i], me)) continue;
    const int k = step_of[i];
    if (k < 0) return "operation " + std::to_string(i) + " is missing from the program";
    for (int a : s.ops[i].after) {
      if (!involves(s.ops[a], me)) continue;
      const int ka = step_of[a];
      if (ka < 0 || ka >= k)  // inside one exchange (an NCCL group) nothing is ordered
        return "operation " + std::to_string(i) + " waits for " + std::to_string(a) +
               ", which the program does not run before it";
      const bool same_lane = program[ka].kind == program[k].kind;
      const auto& after = program[k].after;
      if (!same_lane && std::find(after.begin(), after.end(), ka) == after.end())
        return "step " + std::to_string(k) + " does not wait for step " + std::to_string(ka);
    }
  }
  return "";
}

void run_rank_program(Communicator& comm, Strategy strategy, const AttentionProblem& p,
                      bool backward, AttentionResult& out) {
  const int P = comm.size(), me = comm.rank();
  HostRingDevice device(p, P, {me});
  auto values = [&](const RingOp& op, Tensor t) {
    const long long total = has_query_rows(t) ? p.s_q : p.s_kv;
    return block_values(p.shape, t, block_of(total, P, op.block).rows);
  };
  auto run = [&](const RingSchedule& s) {
    for (const RankStep& step : rank_program(s, me)) {
      if (step.kind == RankStep::Kind::compute) {
        device.run(s, step.op);
        continue;
      }
      if (step.send >= 0) {
        const RingOp& op = s.ops[step.send];
        std::vector<float> message;
        for (const auto& move : op.moves) {
          std::vector<float> part = device.read(move.first, values(op, move.first.tensor));
          message.insert(message.end(), part.begin(), part.end());
        }
        comm.send(op.to, std::move(message), kTagExchange + step.send);
      }
      if (step.recv >= 0) {
        const RingOp& op = s.ops[step.recv];
        std::vector<float> message = comm.recv(op.rank, kTagExchange + step.recv);
        size_t at = 0;
        for (const auto& move : op.moves) {
          const size_t n = values(op, move.first.tensor);
          if (at + n > message.size())
            throw Error("internal: an exchange message is shorter than its tensors",
                        ExitCode::runtime);
          device.load(move.second, {message.begin() + at, message.begin() + at + n});
          at += n;
        }
      }
    }
    device.finish();
    return std::vector<OpTiming>{};
  };
  run_ring_ranks(device, strategy, P, {me}, p, backward, run, out, nullptr);
}

}  // namespace xring::executor
