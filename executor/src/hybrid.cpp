// Hybrid (2-D): P = U x R ranks; rank g·U + u is member u of Ulysses group g. Tokens are split
// over the R groups, then over the U members. Inside a group an all-to-all turns sequence shards
// into head shards (member u takes heads_of(U, u) for the group's rows); a query- or KV-ring
// runs across the groups among members with the same u; a second all-to-all returns O (and in
// backward dQ, dK, dV, summing replicated kv heads).
#include <limits>
#include <string>

#include "rings.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

using detail::Heads;
using detail::heads_of;
using detail::pack;
using detail::unpack;
using kernels::Rows;

constexpr int kGroupTags = 1000;
constexpr int kRingTags = 2000;
constexpr int kTagIn = 1, kTagOut = 2, kTagGradIn = 3, kTagGradOut = 4;

/// A view of some of the parent's ranks as a world of their own, on a separate tag range.
class SubCommunicator final : public Communicator {
 public:
  SubCommunicator(Communicator& parent, std::vector<int> members, int tag_base)
      : parent_(parent), members_(std::move(members)), tag_base_(tag_base) {
    for (size_t i = 0; i < members_.size(); ++i)
      if (members_[i] == parent.rank()) me_ = static_cast<int>(i);
  }
  int rank() const override { return me_; }
  int size() const override { return static_cast<int>(members_.size()); }
  void send(int to, std::vector<float> data, int tag) override {
    bytes_sent_ += data.size() * sizeof(float);
    parent_.send(members_[to], std::move(data), tag_base_ + tag);
  }
  std::vector<float> recv(int from, int tag) override {
    return parent_.recv(members_[from], tag_base_ + tag);
  }
  void barrier() override {
    throw Error("internal: no barrier on a sub-communicator", ExitCode::runtime);
  }

 private:
  Communicator& parent_;
  std::vector<int> members_;
  int tag_base_;
  int me_ = 0;
};

/// Rows of member u inside a group's rows.
Rows member_rows(Rows group, int U, int u) {
  Rows local = block_of(group.rows, U, u);
  return {group.first + local.first, local.rows};
}

/// Rows relative to the group's first row (where a member's block sits in a group tensor).
Rows relative(Rows rows, Rows group) { return {rows.first - group.first, rows.rows}; }

}  // namespace

void run_hybrid(Communicator& comm, const AttentionProblem& p, int U, Strategy ring_kind,
                bool backward, AttentionResult& out) {
  const auto& s = p.shape;
  const int P = comm.size(), R = P / U, g = comm.rank() / U, u = comm.rank() % U, d = s.head_dim,
            B = s.batch;
  const Rows gq = block_of(p.s_q, R, g), gk = block_of(p.s_kv, R, g);
  const Rows my_q = member_rows(gq, U, u), my_kv = member_rows(gk, U, u);
  const Heads mine = heads_of(s, U, u);
  const kernels::Shape sub{B, mine.q_count, mine.kv_count, d};

  std::vector<int> group_members, ring_members;
  for (int i = 0; i < U; ++i) group_members.push_back(g * U + i);
  for (int i = 0; i < R; ++i) ring_members.push_back(i * U + u);
  SubCommunicator group(comm, group_members, kGroupTags), ring(comm, ring_members, kRingTags);

  // Sequence shards -> head shards inside the group.
  std::vector<std::vector<float>> parts(U);
  for (int v = 0; v < U; ++v) {
    Heads h = heads_of(s, U, v);
    parts[v] = pack(p.q, B, s.heads, p.s_q, d, h.q_first, h.q_count, my_q);
    for (const auto* t : {&p.k, &p.v}) {
      std::vector<float> x = pack(*t, B, s.kv_heads, p.s_kv, d, h.kv_first, h.kv_count, my_kv);
      parts[v].insert(parts[v].end(), x.begin(), x.end());
    }
    if (backward) {
      std::vector<float> x = pack(p.d_o, B, s.heads, p.s_q, d, h.q_first, h.q_count, my_q);
      parts[v].insert(parts[v].end(), x.begin(), x.end());
    }
  }
  auto received = group.all_to_all(std::move(parts), kTagIn);
  detail::RingLocal x{sub, p.mask, p.s_q, p.s_kv, R, g, gq, gk, {}, {}, {}, {}};
  x.q.assign(static_cast<size_t>(B) * sub.heads * gq.rows * d, 0.0f);
  x.k.assign(static_cast<size_t>(B) * sub.kv_heads * gk.rows * d, 0.0f);
  x.v.assign(x.k.size(), 0.0f);
  if (backward) x.d_o.assign(x.q.size(), 0.0f);
  for (int v = 0; v < U; ++v) {
    Rows vq = relative(member_rows(gq, U, v), gq), vk = relative(member_rows(gk, U, v), gk);
    size_t nq = static_cast<size_t>(B) * sub.heads * vq.rows * d,
           nk = static_cast<size_t>(B) * sub.kv_heads * vk.rows * d;
    const auto& m = received[v];
    unpack(x.q, B, sub.heads, gq.rows, d, 0, sub.heads, vq, {m.begin(), m.begin() + nq}, false);
    unpack(x.k, B, sub.kv_heads, gk.rows, d, 0, sub.kv_heads, vk,
           {m.begin() + nq, m.begin() + nq + nk}, false);
    unpack(x.v, B, sub.kv_heads, gk.rows, d, 0, sub.kv_heads, vk,
           {m.begin() + nq + nk, m.begin() + nq + 2 * nk}, false);
    if (backward)
      unpack(x.d_o, B, sub.heads, gq.rows, d, 0, sub.heads, vq, {m.begin() + nq + 2 * nk, m.end()},
             false);
  }

  // The ring across groups, on the head shard.
  std::vector<float> o, l;
  if (ring_kind == Strategy::kv_ring)
    detail::kv_ring_forward(ring, x, o, l);
  else
    detail::query_ring_forward(ring, x, o, l);
  kernels::round_all(p.storage, o);  // O as stored

  // Head shards -> sequence shards: O and L to the members that own the rows.
  std::vector<Rows> member_q;
  for (int v = 0; v < U; ++v) member_q.push_back(relative(member_rows(gq, U, v), gq));
  detail::return_head_outputs(group, o, l, sub, gq.rows, member_q, my_q, p, out, kTagOut);
  if (!backward) return;

  std::vector<float> dq, dk, dv;
  if (ring_kind == Strategy::kv_ring)
    detail::kv_ring_backward(ring, x, o, l, dq, dk, dv);
  else
    detail::query_ring_backward(ring, x, o, l, dq, dk, dv);
  parts.assign(U, {});
  for (int v = 0; v < U; ++v) {
    Rows vq = relative(member_rows(gq, U, v), gq), vk = relative(member_rows(gk, U, v), gk);
    parts[v] = pack(dq, B, sub.heads, gq.rows, d, 0, sub.heads, vq);
    for (const auto* t : {&dk, &dv}) {
      std::vector<float> y = pack(*t, B, sub.kv_heads, gk.rows, d, 0, sub.kv_heads, vk);
      parts[v].insert(parts[v].end(), y.begin(), y.end());
    }
  }
  received = group.all_to_all(std::move(parts), kTagGradOut);
  detail::store_head_gradients(received, p, U, my_q, my_kv, out);
}

}  // namespace xring::executor
