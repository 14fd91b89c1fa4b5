// The emulated-ranks driver and the host device.
#include "xring/executor/emulated.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

constexpr int kTensorCount = 10;
constexpr int kSlotCount = 3;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

using Clock = std::chrono::steady_clock;

/// Sums each rank's kernel and copy time and the pass's span from the device's timings.
PassTiming summarize(const RingSchedule& s, std::vector<OpTiming> ops) {
  PassTiming t;
  t.compute_s.assign(s.ranks, 0);
  t.copy_s.assign(s.ranks, 0);
  double first = std::numeric_limits<double>::infinity(), last = 0;
  for (size_t i = 0; i < ops.size() && i < s.ops.size(); ++i) {
    const double d = ops[i].end_s - ops[i].start_s;
    (s.ops[i].comm_lane ? t.copy_s : t.compute_s)[s.ops[i].rank] += d;
    first = std::min(first, ops[i].start_s);
    last = std::max(last, ops[i].end_s);
  }
  t.total_s = ops.empty() ? 0 : last - first;
  t.ops = std::move(ops);
  t.schedule = s;
  return t;
}

}  // namespace

size_t block_values(const kernels::Shape& s, Tensor t, long long rows) {
  const int heads = has_query_rows(t) ? s.heads : s.kv_heads;
  return static_cast<size_t>(s.batch) * heads * rows * row_width(t, s.head_dim);
}

void run_ring_ranks(RingDevice& device, Strategy strategy, int ranks, const std::vector<int>& mine,
                    const AttentionProblem& p, bool backward, const PassRunner& run,
                    AttentionResult& out, EmulatedRun* timings) {
  const std::string why = unsupported(strategy, p, ranks);
  if (!why.empty())
    throw Error(to_string(strategy) + " on " + std::to_string(ranks) + " ranks: " + why);
  const auto& s = p.shape;
  const int P = ranks;
  auto rows_of = [&](Tensor t, int r) {
    return block_of(has_query_rows(t) ? p.s_q : p.s_kv, P, r);
  };
  auto slice = [&](const std::vector<float>& global, Tensor t, int r) {
    const int heads = has_query_rows(t) ? s.heads : s.kv_heads;
    const long long total = has_query_rows(t) ? p.s_q : p.s_kv;
    return kernels::slice_rows(global, s.batch, heads, total, row_width(t, s.head_dim),
                               rows_of(t, r));
  };
  auto filled = [&](Tensor t, int r, float value) {
    return std::vector<float>(block_values(s, t, rows_of(t, r).rows), value);
  };
  auto run_pass = [&](const RingSchedule& schedule) {
    PassTiming timing = summarize(schedule, run(schedule));
    for (const RingOp& op : schedule.ops) {
      double bytes = 0;
      for (const auto& move : op.moves)
        bytes += static_cast<double>(block_values(s, move.first.tensor,
                                                  rows_of(move.first.tensor, op.block).rows)) *
                 device.element_bytes(move.first.tensor);
      timing.op_bytes.push_back(bytes);
    }
    return timing;
  };
  auto read = [&](const RingSchedule& schedule, Tensor t, int r) {
    return device.read(schedule.result(r, t), block_values(s, t, rows_of(t, r).rows));
  };

  const RingSchedule forward = ring_schedule(strategy, RingPass::forward, P);
  device.prepare(forward);
  for (int r : mine) {
    device.load({r, Tensor::q, 0}, slice(p.q, Tensor::q, r));
    device.load({r, Tensor::k, 0}, slice(p.k, Tensor::k, r));
    device.load({r, Tensor::v, 0}, slice(p.v, Tensor::v, r));
    device.load({r, Tensor::o, 0}, filled(Tensor::o, r, 0.0f));
    device.load({r, Tensor::l, 0}, filled(Tensor::l, r, kNegInf));
  }
  PassTiming forward_timing = run_pass(forward);
  if (timings) timings->forward = std::move(forward_timing);
  std::vector<std::vector<float>> o_stored(P), l_own(P);
  for (int r : mine) {
    o_stored[r] = read(forward, Tensor::o, r);
    kernels::round_all(p.storage, o_stored[r]);  // backward uses O as a framework stores it
    l_own[r] = read(forward, Tensor::l, r);
    kernels::place_rows(out.o, s.batch, s.heads, p.s_q, s.head_dim, rows_of(Tensor::o, r),
                        o_stored[r].data());
    kernels::place_rows(out.l, s.batch, s.heads, p.s_q, 1, rows_of(Tensor::l, r), l_own[r].data());
  }
  if (!backward) return;

  const RingSchedule reverse = ring_schedule(strategy, RingPass::backward, P);
  device.prepare(reverse);
  for (int r : mine) {
    std::vector<float> d_o = slice(p.d_o, Tensor::d_o, r);
    std::vector<float> term = filled(Tensor::term, r, 0.0f);
    kernels::backward_row_terms(o_stored[r].data(), d_o.data(), static_cast<long long>(term.size()),
                                s.head_dim, term.data());
    device.load({r, Tensor::q, 0}, slice(p.q, Tensor::q, r));
    device.load({r, Tensor::k, 0}, slice(p.k, Tensor::k, r));
    device.load({r, Tensor::v, 0}, slice(p.v, Tensor::v, r));
    device.load({r, Tensor::d_o, 0}, d_o);
    device.load({r, Tensor::l, 0}, l_own[r]);
    device.load({r, Tensor::term, 0}, term);
    for (Tensor g : {Tensor::dq, Tensor::dk, Tensor::dv}) device.load({r, g, 0}, filled(g, r, 0));
  }
  PassTiming backward_timing = run_pass(reverse);
  if (timings) timings->backward = std::move(backward_timing);
  for (int r : mine) {
    for (Tensor g : {Tensor::dq, Tensor::dk, Tensor::dv}) {
      std::vector<float> block = read(reverse, g, r);
      kernels::round_all(p.storage, block);
      const bool q_side = has_query_rows(g);
      kernels::place_rows(g == Tensor::dq   ? out.dq
                          : g == Tensor::dk ? out.dk
                                            : out.dv,
                          s.batch, q_side ? s.heads : s.kv_heads, q_side ? p.s_q : p.s_kv,
                          s.head_dim, rows_of(g, r), block.data());
    }
  }
}

EmulatedRun run_emulated(RingDevice& device, Strategy strategy, int ranks,
                         const AttentionProblem& p, bool backward) {
  EmulatedRun run;
  run.result = allocate_result(p, backward);
  std::vector<int> all(std::max(ranks, 0));
  for (int r = 0; r < ranks; ++r) all[r] = r;
  run_ring_ranks(
      device, strategy, ranks, all, p, backward,
      [&](const RingSchedule& schedule) {
        for (size_t i = 0; i < schedule.ops.size(); ++i) device.run(schedule, i);
        return device.finish();
      },
      run.result, &run);
  return run;
}

HostRingDevice::HostRingDevice(const AttentionProblem& p, int ranks, std::vector<int> held)
    : p_(p), ranks_(ranks), held_(std::move(held)) {
  if (held_.empty())
    for (int r = 0; r < ranks; ++r) held_.push_back(r);
}

std::vector<float>& HostRingDevice::buffer(const BufferId& b) {
  return buffers_[(static_cast<size_t>(b.rank) * kTensorCount + static_cast<size_t>(b.tensor)) *
                      kSlotCount +
                  b.slot];
}

void HostRingDevice::prepare(const RingSchedule& s) {
  buffers_.assign(static_cast<size_t>(ranks_) * kTensorCount * kSlotCount, {});
  partials_.assign(static_cast<size_t>(ranks_) * kTensorCount, {});
  for (int r : held_)
    for (Tensor t : s.tensors()) {
      const long long most = block_of(has_query_rows(t) ? p_.s_q : p_.s_kv, ranks_, 0).rows;
      for (int slot = 0; slot < s.slots(t); ++slot)
        buffer({r, t, slot}).assign(block_values(p_.shape, t, most), 0.0f);
    }
  timings_.clear();
}

void HostRingDevice::load(const BufferId& b, const std::vector<float>& values) {
  std::vector<float>& to = buffer(b);
  if (values.size() > to.size()) throw Error("internal: block larger than its buffer");
  std::copy(values.begin(), values.end(), to.begin());
}

std::vector<float>& HostRingDevice::partial(int rank, Tensor t) {
  return partials_[static_cast<size_t>(rank) * kTensorCount + static_cast<size_t>(t)];
}

void HostRingDevice::run(const RingSchedule& s, size_t index) {
  const auto start = Clock::now();
  const RingOp& op = s.ops[index];
  const auto& shape = p_.shape;
  const kernels::Rows q_rows = block_of(p_.s_q, ranks_, op.q_block);
  const kernels::Rows kv_rows = block_of(p_.s_kv, ranks_, op.kv_block);
  auto rows_of = [&](Tensor t) { return has_query_rows(t) ? q_rows.rows : kv_rows.rows; };
  if (op.kind == RingOp::Kind::attend) {
    XRING_RANGE("rank " + std::to_string(op.rank) + " attend step " + std::to_string(op.step));
    // Travelling accumulators go to this rank's partial buffers (zeroed: the kernels add).
    auto at = [&](Tensor t) {
      if (!s.accumulates_in_transit(t)) return buffer(s.buffer(op, t)).data();
      partial(op.rank, t).assign(block_values(shape, t, rows_of(t)), 0.0f);
      return partial(op.rank, t).data();
    };
    if (s.pass == RingPass::forward) {
      const size_t rows = static_cast<size_t>(shape.batch) * shape.heads * q_rows.rows;
      std::vector<float> o_part(rows * shape.head_dim), l_part(rows);
      kernels::attention_forward(at(Tensor::q), at(Tensor::k), at(Tensor::v), shape, q_rows,
                                 kv_rows, p_.mask, o_part.data(), l_part.data());
      if (s.accumulates_in_transit(Tensor::o)) {
        partial(op.rank, Tensor::o) = std::move(o_part);
        partial(op.rank, Tensor::l) = std::move(l_part);
      } else {
        kernels::merge_partial(at(Tensor::o), at(Tensor::l), o_part.data(), l_part.data(),
                               static_cast<long long>(rows), shape.head_dim);
      }
    } else {
      kernels::attention_backward(at(Tensor::q), at(Tensor::k), at(Tensor::v), at(Tensor::l),
                                  at(Tensor::term), at(Tensor::d_o), shape, q_rows, kv_rows,
                                  p_.mask, at(Tensor::dq), at(Tensor::dk), at(Tensor::dv));
    }
  } else if (op.kind == RingOp::Kind::merge) {
    XRING_RANGE("rank " + std::to_string(op.rank) + " merge step " + std::to_string(op.step));
    auto slot = [&](Tensor t) { return buffer({op.rank, t, op.slot}).data(); };
    if (s.pass == RingPass::forward) {
      kernels::merge_partial(slot(Tensor::o), slot(Tensor::l), partial(op.rank, Tensor::o).data(),
                             partial(op.rank, Tensor::l).data(),
                             static_cast<long long>(shape.batch) * shape.heads * q_rows.rows,
                             shape.head_dim);
    } else {
      for (Tensor t : s.accumulated) {
        float* to = slot(t);
        const std::vector<float>& add = partial(op.rank, t);
        for (size_t i = 0; i < add.size(); ++i) to[i] += add[i];
      }
    }
  } else {
    for (const auto& [from, to] : op.moves) {
      const long long rows =
          block_of(has_query_rows(from.tensor) ? p_.s_q : p_.s_kv, ranks_, op.block).rows;
      const std::vector<float>& src = buffer(from);
      std::copy_n(src.begin(), block_values(shape, from.tensor, rows), buffer(to).begin());
    }
  }
  const auto end = Clock::now();
  if (timings_.empty()) origin_ = start;
  timings_.push_back({std::chrono::duration<double>(start - origin_).count(),
                      std::chrono::duration<double>(end - origin_).count()});
}

std::vector<OpTiming> HostRingDevice::finish() {
  std::vector<OpTiming> out;
  out.swap(timings_);
  return out;
}

std::vector<float> HostRingDevice::read(const BufferId& b, size_t count) {
  const std::vector<float>& from = buffer(b);
  return {from.begin(), from.begin() + static_cast<long>(std::min(count, from.size()))};
}

}  // namespace xring::executor
