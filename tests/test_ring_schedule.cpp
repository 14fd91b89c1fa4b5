// The ring schedules that asynchronous backends enqueue: race-free for every P (the lanes' order
// and the waits order every conflicting pair), every rank sees every block once, and the
// emulated-ranks driver on the host device equals the monolithic reference exactly as the
// thread executor does (tolerances: see test_executor.cpp); so do the per-rank programs a
// process-per-rank backend runs, with ranks as threads.
#include <gtest/gtest.h>

#include <set>

#include "attention_test_util.hpp"
#include "test_util.hpp"
#include "xring/executor/emulated.hpp"
#include "xring/executor/rank_program.hpp"
#include "xring/executor/ring_schedule.hpp"

using namespace xring;
using namespace xring::executor;
using namespace xring::test;

namespace {

const Strategy kRings[] = {Strategy::query_ring, Strategy::kv_ring};
const RingPass kPasses[] = {RingPass::forward, RingPass::backward};

std::string describe(Strategy s, RingPass pass, int P) {
  return to_string(s) + (pass == RingPass::forward ? " forward" : " backward") +
         " P=" + std::to_string(P);
}

}  // namespace

TEST(RingSchedule, RaceFreeForEveryRankCount) {
  for (Strategy s : kRings)
    for (RingPass pass : kPasses)
      for (int P = 1; P <= 9; ++P) {
        RingSchedule schedule = ring_schedule(s, pass, P);
        EXPECT_EQ(find_race(schedule), "") << describe(s, pass, P);
      }
}

TEST(RingSchedule, EveryRankAttendsEveryBlockOnce) {
  for (Strategy s : kRings)
    for (RingPass pass : kPasses)
      for (int P : {1, 2, 3, 7, 8}) {
        RingSchedule schedule = ring_schedule(s, pass, P);
        std::vector<std::set<std::pair<int, int>>> seen(P);
        int attends = 0;
        for (const RingOp& op : schedule.ops) {
          if (op.kind != RingOp::Kind::attend) continue;
          ++attends;
          EXPECT_TRUE(seen[op.rank].insert({op.q_block, op.kv_block}).second)
              << describe(s, pass, P);
          // The block that stays is always the rank's own.
          EXPECT_EQ(s == Strategy::query_ring ? op.kv_block : op.q_block, op.rank);
        }
        EXPECT_EQ(attends, P * P) << describe(s, pass, P);
        for (int r = 0; r < P; ++r) EXPECT_EQ(static_cast<int>(seen[r].size()), P);
      }
}

TEST(RingSchedule, AccumulatedResultsComeHome) {
  // Query ring forward on 3 ranks: O and L leave after each kernel and return to their owner's
  // home slot; the KV ring's O and L never move.
  RingSchedule q = ring_schedule(Strategy::query_ring, RingPass::forward, 3);
  int homes = 0;
  for (const RingOp& op : q.ops)
    if (op.kind == RingOp::Kind::home) {
      ++homes;
      for (const auto& [from, to] : op.moves) EXPECT_EQ(to, q.result(op.block, from.tensor));
    }
  EXPECT_EQ(homes, 3);
  RingSchedule kv = ring_schedule(Strategy::kv_ring, RingPass::forward, 3);
  EXPECT_EQ(kv.result(1, Tensor::o), (BufferId{1, Tensor::o, 0}));
  for (const RingOp& op : kv.ops)
    for (const auto& move : op.moves) EXPECT_TRUE(held_in_storage_type(move.first.tensor));
}

TEST(RingSchedule, TheCheckFindsAMissingWait) {
  // Without its waits, the KV ring's second send could overwrite the block the receiver is
  // still reading in step 0.
  RingSchedule s = ring_schedule(Strategy::kv_ring, RingPass::forward, 3);
  for (RingOp& op : s.ops)
    if (op.kind == RingOp::Kind::send && op.step == 1 && op.rank == 0) op.after.clear();
  EXPECT_NE(find_race(s), "");
  RingSchedule q = ring_schedule(Strategy::query_ring, RingPass::forward, 2);
  q.ops.back().after = {static_cast<int>(q.ops.size())};  // a wait on a later operation
  EXPECT_NE(find_race(q).find("later"), std::string::npos);
}

TEST(RingSchedule, OtherStrategiesAreRefused) {
  EXPECT_NE(error_of([] { ring_schedule(Strategy::ulysses, RingPass::forward, 2); }), "");
  EXPECT_NE(error_of([] { ring_schedule(Strategy::query_ring, RingPass::forward, 0); }), "");
  EXPECT_EQ(ring_schedule(Strategy::single, RingPass::forward, 1).strategy, Strategy::query_ring);
}

TEST(EmulatedRanks, HostDeviceEqualsTheReference) {
  std::mt19937 rng(7);
  const AttentionCase cases[] = {
      {{1, 4, 2, 8}, 13, 37, Storage::bf16, kernels::Mask::Kind::none},
      {{2, 2, 1, 4}, 9, 23, Storage::fp16, kernels::Mask::Kind::same_group},
      {{1, 3, 3, 6}, 5, 17, Storage::bf16, kernels::Mask::Kind::up_to_group},
      {{1, 2, 2, 4}, 11, 11, Storage::fp16, kernels::Mask::Kind::causal},
  };
  for (const AttentionCase& c : cases)
    for (Strategy s : kRings)
      for (int P : {1, 2, 3, 7, 8}) {
        AttentionProblem p = random_problem(rng, c.shape, c.s_q, c.s_kv, c.storage, c.mask);
        HostRingDevice device(p, P);
        EmulatedRun got = run_emulated(device, s, P, p, true);
        AttentionResult want = run_reference(p, true);
        expect_same_result(got.result, want, c.storage,
                           to_string(s) + " P=" + std::to_string(P) +
                               " s_q=" + std::to_string(c.s_q) + " s_kv=" + std::to_string(c.s_kv));
        ASSERT_EQ(got.forward.compute_s.size(), static_cast<size_t>(P));
        EXPECT_GE(got.forward.total_s, 0);
      }
}

TEST(EmulatedRanks, MoreRanksThanTokens) {
  // Empty blocks travel and are attended as empty: still exact.
  std::mt19937 rng(3);
  AttentionProblem p =
      random_problem(rng, {1, 2, 1, 4}, 2, 3, Storage::bf16, kernels::Mask::Kind::none);
  for (Strategy s : kRings) {
    HostRingDevice device(p, 5);
    expect_same_result(run_emulated(device, s, 5, p, true).result, run_reference(p, true),
                       Storage::bf16, to_string(s) + " on 5 ranks, 2 queries, 3 keys");
  }
}

TEST(EmulatedRanks, RefusesStrategiesThatAreNotRings) {
  std::mt19937 rng(1);
  AttentionProblem p =
      random_problem(rng, {1, 2, 2, 4}, 4, 4, Storage::bf16, kernels::Mask::Kind::none);
  HostRingDevice device(p, 2);
  EXPECT_NE(error_of([&] { run_emulated(device, Strategy::ulysses, 2, p, false); }), "");
}

TEST(RankProgram, KeepsEveryWaitOnTheRanksOwnOperations) {
  for (Strategy s : kRings)
    for (RingPass pass : kPasses)
      for (int P = 1; P <= 9; ++P) {
        RingSchedule schedule = ring_schedule(s, pass, P);
        for (int r = 0; r < P; ++r)
          EXPECT_EQ(check_rank_program(schedule, r, rank_program(schedule, r)), "")
              << describe(s, pass, P) << " rank " << r;
        // Every wait is on an operation of the ranks involved (a kernel's own rank; a
        // transfer's sender or receiver), so per-rank programs that keep their own waits keep
        // them all, and the schedule's race check carries over to one process per rank.
        auto on = [](const RingOp& op, int rank) {
          return op.rank == rank || (op.comm_lane && op.to == rank);
        };
        for (const RingOp& op : schedule.ops)
          for (int a : op.after) {
            const RingOp& w = schedule.ops[a];
            EXPECT_TRUE(on(w, op.rank) || (op.comm_lane && on(w, op.to))) << describe(s, pass, P);
          }
      }
}

TEST(RankProgram, EveryExchangeSendsToTheSuccessorAndReceivesFromThePredecessor) {
  for (Strategy s : kRings)
    for (RingPass pass : kPasses)
      for (int P : {1, 2, 3, 8}) {
        RingSchedule schedule = ring_schedule(s, pass, P);
        size_t transfers = 0;
        for (const RingOp& op : schedule.ops) transfers += op.comm_lane;
        for (int r = 0; r < P; ++r) {
          size_t exchanges = 0, attends = 0;
          for (const RankStep& step : rank_program(schedule, r)) {
            if (step.kind == RankStep::Kind::compute) {
              attends += schedule.ops[step.op].kind == RingOp::Kind::attend;
              continue;
            }
            ++exchanges;
            ASSERT_GE(step.send, 0);
            ASSERT_GE(step.recv, 0);
            EXPECT_EQ(schedule.ops[step.send].rank, r);
            EXPECT_EQ(schedule.ops[step.send].to, (r + 1) % P);
            EXPECT_EQ(schedule.ops[step.recv].rank, (r + P - 1) % P);
            EXPECT_EQ(schedule.ops[step.recv].to, r);
          }
          EXPECT_EQ(attends, static_cast<size_t>(P)) << describe(s, pass, P);
          EXPECT_EQ(exchanges * P, transfers) << describe(s, pass, P);  // one per transfer
        }
      }
}

TEST(RankProgram, RanksAsThreadsEqualTheReference) {
  // Each rank runs only its own program, exchanging messages with its neighbours: what every
  // process of the nccl backend does, with NCCL groups in place of the messages.
  std::mt19937 rng(13);
  for (Strategy s : kRings)
    for (int P : {1, 2, 3, 7, 8})
      for (Storage storage : {Storage::bf16, Storage::fp16}) {
        AttentionProblem p =
            random_problem(rng, {2, 4, 2, 8}, 19, 41, storage, kernels::Mask::Kind::up_to_group);
        AttentionResult got = allocate_result(p, true);
        run_on_threads(P, [&](Communicator& comm) { run_rank_program(comm, s, p, true, got); });
        expect_same_result(got, run_reference(p, true), storage,
                           to_string(s) + " P=" + std::to_string(P));
      }
}

TEST(RingSchedule, AccumulatorsTravelDuringTheNextKernel) {
  // A kernel never waits for the running O and L (or gradients) of its block: it writes a
  // partial result, and the merge after it waits for them. So every transfer of a pass can hide
  // behind a kernel, as the cost model assumes.
  for (Strategy s : kRings)
    for (RingPass pass : kPasses)
      for (int P : {2, 3, 8}) {
        RingSchedule schedule = ring_schedule(s, pass, P);
        for (const RingOp& op : schedule.ops) {
          if (op.kind != RingOp::Kind::attend) continue;
          for (int a : op.after)
            for (const auto& move : schedule.ops[a].moves)
              EXPECT_FALSE(schedule.accumulates_in_transit(move.first.tensor))
                  << describe(s, pass, P) << ": an attend waits for "
                  << to_string(move.first.tensor);
        }
      }
}
