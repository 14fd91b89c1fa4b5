// Distributed attention over the reference kernels: ring and all-to-all strategies.
#include "xring/executor/attention.hpp"

#include <algorithm>
#include <limits>
#include <mutex>

#include "rings.hpp"
#include "xring/executor/rank_program.hpp"
#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

using kernels::Rows;

constexpr int kTagRing = 1;
constexpr int kTagHome = 2;
constexpr int kTagAllToAll = 3;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int mod(int a, int n) { return ((a % n) + n) % n; }

size_t count(const kernels::Shape& s, int heads, Rows r) {
  return static_cast<size_t>(s.batch) * heads * r.rows;
}

std::vector<float> concat(std::initializer_list<const std::vector<float>*> parts) {
  size_t n = 0;
  for (auto* p : parts) n += p->size();
  std::vector<float> out;
  out.reserve(n);
  for (auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

/// Splits `packed` into consecutive pieces of the given sizes.
std::vector<std::vector<float>> split(const std::vector<float>& packed,
                                      std::initializer_list<size_t> sizes) {
  std::vector<std::vector<float>> out;
  size_t at = 0;
  for (size_t n : sizes) {
    out.emplace_back(packed.begin() + at, packed.begin() + at + n);
    at += n;
  }
  if (at != packed.size()) throw Error("internal: message of unexpected size", ExitCode::runtime);
  return out;
}

/// Writes rows of one rank's block into a global output (ranks write disjoint rows).
void store(std::vector<float>& global, const kernels::Shape& s, int heads, long long total,
           int width, Rows r, std::vector<float> block, kernels::Storage storage, bool round) {
  if (round) kernels::round_all(storage, block);
  kernels::place_rows(global, s.batch, heads, total, width, r, block.data());
}

}  // namespace

namespace detail {

/// Heads [first, first + count) and rows `r` of a [B][heads][total][width] tensor, packed.
std::vector<float> pack(const std::vector<float>& t, int batch, int heads, long long total,
                        int width, int first, int count, Rows r) {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(batch) * count * r.rows * width);
  for (int b = 0; b < batch; ++b)
    for (int h = first; h < first + count; ++h) {
      const float* src =
          t.data() + ((static_cast<long long>(b) * heads + h) * total + r.first) * width;
      out.insert(out.end(), src, src + r.rows * width);
    }
  return out;
}

/// Adds (or writes) a packed [B][count][r.rows][width] block into heads [first, first+count).
void unpack(std::vector<float>& t, int batch, int heads, long long total, int width, int first,
            int count, kernels::Rows r, const std::vector<float>& block, bool add) {
  size_t at = 0;
  for (int b = 0; b < batch; ++b)
    for (int h = first; h < first + count; ++h) {
      float* dst = t.data() + ((static_cast<long long>(b) * heads + h) * total + r.first) * width;
      for (long long i = 0; i < r.rows * width; ++i)
        dst[i] = add ? dst[i] + block[at + i] : block[at + i];
      at += r.rows * width;
    }
}

void return_head_outputs(Communicator& comm, const std::vector<float>& o,
                         const std::vector<float>& l, const kernels::Shape& sub,
                         long long rows_total, const std::vector<kernels::Rows>& member_rows,
                         kernels::Rows my_q, const AttentionProblem& p, AttentionResult& out,
                         int tag) {
  const auto& s = p.shape;
  const int members = comm.size(), B = s.batch, d = s.head_dim;
  std::vector<std::vector<float>> parts(members);
  for (int v = 0; v < members; ++v) {
    parts[v] = pack(o, B, sub.heads, rows_total, d, 0, sub.heads, member_rows[v]);
    std::vector<float> lv = pack(l, B, sub.heads, rows_total, 1, 0, sub.heads, member_rows[v]);
    parts[v].insert(parts[v].end(), lv.begin(), lv.end());
  }
  auto received = comm.all_to_all(std::move(parts), tag);
  for (int v = 0; v < members; ++v) {
    Heads h = heads_of(s, members, v);
    size_t n = static_cast<size_t>(B) * h.q_count * my_q.rows;
    const auto& m = received[v];
    unpack(out.o, B, s.heads, p.s_q, d, h.q_first, h.q_count, my_q, {m.begin(), m.begin() + n * d},
           false);
    unpack(out.l, B, s.heads, p.s_q, 1, h.q_first, h.q_count, my_q, {m.begin() + n * d, m.end()},
           false);
  }
}

void store_head_gradients(const std::vector<std::vector<float>>& received,
                          const AttentionProblem& p, int members, kernels::Rows my_q,
                          kernels::Rows my_kv, AttentionResult& out) {
  const auto& s = p.shape;
  const int B = s.batch, d = s.head_dim;
  std::vector<float> dk_own(static_cast<size_t>(B) * s.kv_heads * my_kv.rows * d, 0.0f),
      dv_own(dk_own.size(), 0.0f);
  const kernels::Rows local_kv{0, my_kv.rows};
  for (int v = 0; v < members; ++v) {
    Heads h = heads_of(s, members, v);
    size_t nq = static_cast<size_t>(B) * h.q_count * my_q.rows * d,
           nk = static_cast<size_t>(B) * h.kv_count * my_kv.rows * d;
    const auto& m = received[v];
    std::vector<float> dq_part(m.begin(), m.begin() + nq);
    kernels::round_all(p.storage, dq_part);
    unpack(out.dq, B, s.heads, p.s_q, d, h.q_first, h.q_count, my_q, dq_part, false);
    unpack(dk_own, B, s.kv_heads, my_kv.rows, d, h.kv_first, h.kv_count, local_kv,
           {m.begin() + nq, m.begin() + nq + nk}, true);
    unpack(dv_own, B, s.kv_heads, my_kv.rows, d, h.kv_first, h.kv_count, local_kv,
           {m.begin() + nq + nk, m.end()}, true);
  }
  kernels::round_all(p.storage, dk_own);
  kernels::round_all(p.storage, dv_own);
  kernels::place_rows(out.dk, B, s.kv_heads, p.s_kv, d, my_kv, dk_own.data());
  kernels::place_rows(out.dv, B, s.kv_heads, p.s_kv, d, my_kv, dv_own.data());
}

Heads heads_of(const kernels::Shape& s, int P, int r) {
  const int hq = s.heads / P;
  if (s.kv_heads % P == 0) return {r * hq, hq, r * (s.kv_heads / P), s.kv_heads / P};
  const int group = s.heads / s.kv_heads;  // P > H_kv: all of r's query heads read one kv head
  return {r * hq, hq, (r * hq) / group, 1};
}

/// "rank R WHAT step T": the NVTX range of one ring step (Nsight Systems reads like the trace).
[[maybe_unused]] std::string step_range_name(const RingLocal& x, const char* what, int t) {
  return "rank " + std::to_string(x.r) + " " + what + " step " + std::to_string(t);
}

/// Forward of the query ring: Q travels with its running O and L; O and L return home.
void query_ring_forward(Communicator& comm, const RingLocal& x, std::vector<float>& o_own,
                        std::vector<float>& l_own) {
  const auto& s = x.shape;
  const int d = s.head_dim;
  const std::vector<float> k = x.k, v = x.v;
  int owner = x.r;
  std::vector<float> q = x.q;
  std::vector<float> o(q.size(), 0.0f), l(count(s, s.heads, x.q_of(owner)), kNegInf);
  for (int t = 0; t < x.P; ++t) {
    XRING_RANGE(step_range_name(x, "query_ring forward", t));
    Rows rows = x.q_of(owner);
    std::vector<float> o_part(o.size()), l_part(l.size());
    kernels::attention_forward(q.data(), k.data(), v.data(), s, rows, x.kr, x.mask, o_part.data(),
                               l_part.data());
    kernels::merge_partial(o.data(), l.data(), o_part.data(), l_part.data(),
                           static_cast<long long>(l.size()), d);
    if (t + 1 == x.P) break;
    comm.send(mod(x.r + 1, x.P), concat({&q, &o, &l}), kTagRing);
    owner = mod(owner - 1, x.P);
    Rows next = x.q_of(owner);
    size_t n = count(s, s.heads, next);
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagRing), {n * d, n * d, n});
    q = std::move(parts[0]);
    o = std::move(parts[1]);
    l = std::move(parts[2]);
  }
  if (x.P > 1) {  // this rank holds rank owner's block: send O and L home, receive our own
    comm.send(owner, concat({&o, &l}), kTagHome);
    size_t n = count(s, s.heads, x.qr);
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagHome), {n * d, n});
    o = std::move(parts[0]);
    l = std::move(parts[1]);
  }
  o_own = std::move(o);
  l_own = std::move(l);
}

/// Forward of the KV ring: K/V blocks travel; Q, O and L stay.
void kv_ring_forward(Communicator& comm, const RingLocal& x, std::vector<float>& o_own,
                     std::vector<float>& l_own) {
  const auto& s = x.shape;
  const int d = s.head_dim;
  const std::vector<float>& q = x.q;
  std::vector<float> o(q.size(), 0.0f), l(count(s, s.heads, x.qr), kNegInf);
  int owner = x.r;
  std::vector<float> k = x.k, v = x.v;
  for (int t = 0; t < x.P; ++t) {
    XRING_RANGE(step_range_name(x, "kv_ring forward", t));
    std::vector<float> o_part(o.size()), l_part(l.size());
    kernels::attention_forward(q.data(), k.data(), v.data(), s, x.qr, x.kv_of(owner), x.mask,
                               o_part.data(), l_part.data());
    kernels::merge_partial(o.data(), l.data(), o_part.data(), l_part.data(),
                           static_cast<long long>(l.size()), d);
    if (t + 1 == x.P) break;
    comm.send(mod(x.r + 1, x.P), concat({&k, &v}), kTagRing);
    owner = mod(owner - 1, x.P);
    size_t n = count(s, s.kv_heads, x.kv_of(owner)) * d;
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagRing), {n, n});
    k = std::move(parts[0]);
    v = std::move(parts[1]);
  }
  o_own = std::move(o);
  l_own = std::move(l);
}

/// Backward of the query ring: Q, dO, L, D and the running dQ travel; dK, dV stay; dQ returns.
void query_ring_backward(Communicator& comm, const RingLocal& x, const std::vector<float>& o_own,
                         const std::vector<float>& l_own, std::vector<float>& dq_own,
                         std::vector<float>& dk, std::vector<float>& dv) {
  const auto& s = x.shape;
  const int d = s.head_dim;
  const std::vector<float> k = x.k, v = x.v;
  dk.assign(k.size(), 0.0f);
  dv.assign(v.size(), 0.0f);
  int owner = x.r;
  std::vector<float> q = x.q, d_o = x.d_o, l = l_own, term(l_own.size());
  kernels::backward_row_terms(o_own.data(), d_o.data(), static_cast<long long>(term.size()), d,
                              term.data());
  std::vector<float> dq(q.size(), 0.0f);
  for (int t = 0; t < x.P; ++t) {
    XRING_RANGE(step_range_name(x, "query_ring backward", t));
    kernels::attention_backward(q.data(), k.data(), v.data(), l.data(), term.data(), d_o.data(), s,
                                x.q_of(owner), x.kr, x.mask, dq.data(), dk.data(), dv.data());
    if (t + 1 == x.P) break;
    comm.send(mod(x.r + 1, x.P), concat({&q, &d_o, &l, &term, &dq}), kTagRing);
    owner = mod(owner - 1, x.P);
    size_t n = count(s, s.heads, x.q_of(owner));
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagRing), {n * d, n * d, n, n, n * d});
    q = std::move(parts[0]);
    d_o = std::move(parts[1]);
    l = std::move(parts[2]);
    term = std::move(parts[3]);
    dq = std::move(parts[4]);
  }
  if (x.P > 1) {
    comm.send(owner, dq, kTagHome);
    dq = comm.recv(mod(x.r - 1, x.P), kTagHome);
  }
  dq_own = std::move(dq);
}

/// Backward of the KV ring: K, V and the running dK, dV travel; dK, dV return home.
void kv_ring_backward(Communicator& comm, const RingLocal& x, const std::vector<float>& o_own,
                      const std::vector<float>& l_own, std::vector<float>& dq,
                      std::vector<float>& dk_own, std::vector<float>& dv_own) {
  const auto& s = x.shape;
  const int d = s.head_dim;
  const std::vector<float>& q = x.q;
  const std::vector<float>& d_o = x.d_o;
  std::vector<float> term(l_own.size());
  kernels::backward_row_terms(o_own.data(), d_o.data(), static_cast<long long>(term.size()), d,
                              term.data());
  dq.assign(q.size(), 0.0f);
  int owner = x.r;
  std::vector<float> k = x.k, v = x.v, dk(k.size(), 0.0f), dv(v.size(), 0.0f);
  for (int t = 0; t < x.P; ++t) {
    XRING_RANGE(step_range_name(x, "kv_ring backward", t));
    kernels::attention_backward(q.data(), k.data(), v.data(), l_own.data(), term.data(), d_o.data(),
                                s, x.qr, x.kv_of(owner), x.mask, dq.data(), dk.data(), dv.data());
    if (t + 1 == x.P) break;
    comm.send(mod(x.r + 1, x.P), concat({&k, &v, &dk, &dv}), kTagRing);
    owner = mod(owner - 1, x.P);
    size_t n = count(s, s.kv_heads, x.kv_of(owner)) * d;
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagRing), {n, n, n, n});
    k = std::move(parts[0]);
    v = std::move(parts[1]);
    dk = std::move(parts[2]);
    dv = std::move(parts[3]);
  }
  if (x.P > 1) {
    comm.send(owner, concat({&dk, &dv}), kTagHome);
    size_t n = count(s, s.kv_heads, x.kr) * d;
    auto parts = split(comm.recv(mod(x.r - 1, x.P), kTagHome), {n, n});
    dk = std::move(parts[0]);
    dv = std::move(parts[1]);
  }
  dk_own = std::move(dk);
  dv_own = std::move(dv);
}

}  // namespace detail

kernels::Rows block_of(long long n, int ranks, int r) {
  long long base = n / ranks, extra = n % ranks;
  return {r * base + std::min<long long>(r, extra), base + (r < extra ? 1 : 0)};
}

std::string unsupported(Strategy strategy, const AttentionProblem& p, int ranks,
                        HybridLayout layout) {
  if (ranks < 1) return "needs at least one rank";
  switch (strategy) {
    case Strategy::single:
      return ranks == 1 ? "" : "single runs on one rank";
    case Strategy::query_ring:
    case Strategy::kv_ring:
      return "";
    case Strategy::ulysses:
      if (p.shape.heads % ranks) return "heads not divisible by the ranks";
      if (p.shape.kv_heads % ranks && ranks % p.shape.kv_heads)
        return "kv heads neither divide nor are divided by the ranks";
      return "";
    case Strategy::hybrid: {
      const int U = layout.ulysses_degree;
      if (U < 2 || ranks % U != 0 || ranks / U < 2)
        return "needs a Ulysses degree of at least 2 and at least 2 groups";
      if (p.shape.heads % U) return "heads not divisible by the Ulysses degree";
      if (p.shape.kv_heads % U && U % p.shape.kv_heads)
        return "kv heads neither divide nor are divided by the Ulysses degree";
      if (layout.ring_kind != Strategy::query_ring && layout.ring_kind != Strategy::kv_ring)
        return "the ring between groups must be query_ring or kv_ring";
      return "";
    }
  }
  return "unknown strategy";
}

AttentionResult allocate_result(const AttentionProblem& p, bool backward) {
  AttentionResult r;
  r.o.assign(p.q.size(), 0.0f);
  r.l.assign(static_cast<size_t>(p.shape.batch) * p.shape.heads * p.s_q, kNegInf);
  if (backward) {
    r.dq.assign(p.q.size(), 0.0f);
    r.dk.assign(p.k.size(), 0.0f);
    r.dv.assign(p.v.size(), 0.0f);
  }
  return r;
}

void run_ulysses(Communicator& comm, const AttentionProblem& p, bool backward,
                 AttentionResult& out);
void run_hybrid(Communicator& comm, const AttentionProblem& p, int U, Strategy ring_kind,
                bool backward, AttentionResult& out);

namespace {

/// `single`: the one-rank query ring as a direct loop, the monolithic reference.
void run_single(Communicator& comm, const AttentionProblem& p, bool backward,
                AttentionResult& out) {
  const int P = comm.size(), r = comm.rank();
  const auto& s = p.shape;
  detail::RingLocal x{
      s,  p.mask, p.s_q, p.s_kv, P, r, block_of(p.s_q, P, r), block_of(p.s_kv, P, r),
      {}, {},     {},    {}};
  x.q = kernels::slice_rows(p.q, s.batch, s.heads, p.s_q, s.head_dim, x.qr);
  x.k = kernels::slice_rows(p.k, s.batch, s.kv_heads, p.s_kv, s.head_dim, x.kr);
  x.v = kernels::slice_rows(p.v, s.batch, s.kv_heads, p.s_kv, s.head_dim, x.kr);
  if (backward) x.d_o = kernels::slice_rows(p.d_o, s.batch, s.heads, p.s_q, s.head_dim, x.qr);
  const int d = s.head_dim;
  std::vector<float> o, l;
  detail::query_ring_forward(comm, x, o, l);
  // Backward uses O as stored (rounded), as a training framework would keep it.
  std::vector<float> o_stored = o;
  kernels::round_all(p.storage, o_stored);
  store(out.o, s, s.heads, p.s_q, d, x.qr, o_stored, p.storage, false);
  kernels::place_rows(out.l, s.batch, s.heads, p.s_q, 1, x.qr, l.data());
  if (!backward) return;
  std::vector<float> dq, dk, dv;
  detail::query_ring_backward(comm, x, o_stored, l, dq, dk, dv);
  store(out.dq, s, s.heads, p.s_q, d, x.qr, dq, p.storage, true);
  store(out.dk, s, s.kv_heads, p.s_kv, d, x.kr, dk, p.storage, true);
  store(out.dv, s, s.kv_heads, p.s_kv, d, x.kr, dv, p.storage, true);
}

}  // namespace

RankAlgorithm rank_algorithm(Strategy strategy, HybridLayout layout) {
  switch (strategy) {
    case Strategy::single:
      return run_single;
    case Strategy::query_ring:
    case Strategy::kv_ring:
      // The plain rings run their schedules' per-rank programs (rank_program.hpp): what every
      // process of the nccl backend runs, with messages in place of NCCL groups.
      return [strategy](Communicator& comm, const AttentionProblem& p, bool backward,
                        AttentionResult& out) {
        run_rank_program(comm, strategy, p, backward, out);
      };
    case Strategy::ulysses:
      return run_ulysses;
    case Strategy::hybrid:
      return [layout](Communicator& comm, const AttentionProblem& p, bool backward,
                      AttentionResult& out) {
        run_hybrid(comm, p, layout.ulysses_degree, layout.ring_kind, backward, out);
      };
  }
  throw Error("unknown strategy");
}

void run_rank(Strategy strategy, Communicator& comm, const AttentionProblem& p, bool backward,
              AttentionResult& out, HybridLayout layout) {
  rank_algorithm(strategy, layout)(comm, p, backward, out);
}

AttentionResult run_distributed(Strategy strategy, int ranks, const AttentionProblem& p,
                                bool backward, HybridLayout layout) {
  std::string why = unsupported(strategy, p, ranks, layout);
  if (!why.empty())
    throw Error(to_string(strategy) + " on " + std::to_string(ranks) + " ranks: " + why);
  AttentionResult out = allocate_result(p, backward);
  const RankAlgorithm algorithm = rank_algorithm(strategy, layout);
  run_on_threads(ranks, [&](Communicator& comm) { algorithm(comm, p, backward, out); });
  return out;
}

AttentionResult run_reference(const AttentionProblem& p, bool backward) {
  return run_distributed(Strategy::single, 1, p, backward);
}

}  // namespace xring::executor
