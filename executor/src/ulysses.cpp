// Ulysses: an all-to-all turns sequence shards into head shards; each rank computes full
// attention for H/P query heads (and the kv heads they read, replicated when P > H_kv); a
// second all-to-all returns O (and in backward dQ, dK, dV, summing replicated kv heads).
#include <limits>

#include "rings.hpp"

namespace xring::executor {
namespace {

using detail::Heads;
using detail::heads_of;
using detail::pack;
using detail::unpack;
using kernels::Rows;

constexpr int kTagIn = 11;
constexpr int kTagOut = 12;
constexpr int kTagGradIn = 13;
constexpr int kTagGradOut = 14;

}  // namespace

void run_ulysses(Communicator& comm, const AttentionProblem& p, bool backward,
                 AttentionResult& out) {
  const auto& s = p.shape;
  const int P = comm.size(), me = comm.rank(), d = s.head_dim, B = s.batch;
  const Rows qr = block_of(p.s_q, P, me), kr = block_of(p.s_kv, P, me);
  const Heads mine = heads_of(s, P, me);
  const kernels::Shape sub{B, mine.q_count, mine.kv_count, d};
  const Rows all_q{0, p.s_q}, all_kv{0, p.s_kv};

  // Sequence shards -> head shards.
  std::vector<std::vector<float>> parts(P);
  for (int r = 0; r < P; ++r) {
    Heads h = heads_of(s, P, r);
    std::vector<float> q = pack(p.q, B, s.heads, p.s_q, d, h.q_first, h.q_count, qr);
    std::vector<float> k = pack(p.k, B, s.kv_heads, p.s_kv, d, h.kv_first, h.kv_count, kr);
    std::vector<float> v = pack(p.v, B, s.kv_heads, p.s_kv, d, h.kv_first, h.kv_count, kr);
    parts[r] = q;
    parts[r].insert(parts[r].end(), k.begin(), k.end());
    parts[r].insert(parts[r].end(), v.begin(), v.end());
  }
  auto received = comm.all_to_all(std::move(parts), kTagIn);
  std::vector<float> q(static_cast<size_t>(B) * sub.heads * p.s_q * d),
      k(static_cast<size_t>(B) * sub.kv_heads * p.s_kv * d), v(k.size());
  for (int j = 0; j < P; ++j) {
    Rows jq = block_of(p.s_q, P, j), jk = block_of(p.s_kv, P, j);
    size_t nq = static_cast<size_t>(B) * sub.heads * jq.rows * d,
           nk = static_cast<size_t>(B) * sub.kv_heads * jk.rows * d;
    const auto& m = received[j];
    unpack(q, B, sub.heads, p.s_q, d, 0, sub.heads, jq, {m.begin(), m.begin() + nq}, false);
    unpack(k, B, sub.kv_heads, p.s_kv, d, 0, sub.kv_heads, jk,
           {m.begin() + nq, m.begin() + nq + nk}, false);
    unpack(v, B, sub.kv_heads, p.s_kv, d, 0, sub.kv_heads, jk, {m.begin() + nq + nk, m.end()},
           false);
  }
  std::vector<float> o(q.size()), l(static_cast<size_t>(B) * sub.heads * p.s_q);
  kernels::attention_forward(q.data(), k.data(), v.data(), sub, all_q, all_kv, p.mask, o.data(),
                             l.data());
  kernels::round_all(p.storage, o);  // O as stored

  // Head shards -> sequence shards: O and L back to the ranks that own the rows.
  std::vector<Rows> member_q;
  for (int j = 0; j < P; ++j) member_q.push_back(block_of(p.s_q, P, j));
  detail::return_head_outputs(comm, o, l, sub, p.s_q, member_q, qr, p, out, kTagOut);
  if (!backward) return;

  // dO to head shards; D from this rank's O and dO; backward on the head shard.
  parts.assign(P, {});
  for (int r = 0; r < P; ++r) {
    Heads h = heads_of(s, P, r);
    parts[r] = pack(p.d_o, B, s.heads, p.s_q, d, h.q_first, h.q_count, qr);
  }
  received = comm.all_to_all(std::move(parts), kTagGradIn);
  std::vector<float> d_o(q.size());
  for (int j = 0; j < P; ++j)
    unpack(d_o, B, sub.heads, p.s_q, d, 0, sub.heads, block_of(p.s_q, P, j), received[j], false);
  std::vector<float> term(l.size()), dq(q.size(), 0.0f), dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  kernels::backward_row_terms(o.data(), d_o.data(), static_cast<long long>(term.size()), d,
                              term.data());
  kernels::attention_backward(q.data(), k.data(), v.data(), l.data(), term.data(), d_o.data(), sub,
                              all_q, all_kv, p.mask, dq.data(), dk.data(), dv.data());

  // dQ, dK, dV back to the sequence shards; replicated kv heads are summed by their owner.
  parts.assign(P, {});
  for (int j = 0; j < P; ++j) {
    Rows jq = block_of(p.s_q, P, j), jk = block_of(p.s_kv, P, j);
    parts[j] = pack(dq, B, sub.heads, p.s_q, d, 0, sub.heads, jq);
    std::vector<float> a = pack(dk, B, sub.kv_heads, p.s_kv, d, 0, sub.kv_heads, jk);
    std::vector<float> b = pack(dv, B, sub.kv_heads, p.s_kv, d, 0, sub.kv_heads, jk);
    parts[j].insert(parts[j].end(), a.begin(), a.end());
    parts[j].insert(parts[j].end(), b.begin(), b.end());
  }
  received = comm.all_to_all(std::move(parts), kTagGradOut);
  detail::store_head_gradients(received, p, P, qr, kr, out);
}

}  // namespace xring::executor
