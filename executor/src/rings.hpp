// Private: the ring algorithms on blocks a rank already holds, shared by the plain rings and
// the hybrid (which first turns sequence shards into head shards inside its Ulysses groups).
#pragma once

#include <vector>

#include "xring/executor/attention.hpp"

namespace xring::executor::detail {

/// One rank of a ring of P: the shape of the (possibly head-sharded) blocks, the mask over
/// global token indices, and this rank's own blocks: rows qr of Q (and dO), rows kr of K, V.
/// Rank i's rows are block_of(s_q, P, i) and block_of(s_kv, P, i).
struct RingLocal {
  kernels::Shape shape;
  const kernels::Mask& mask;
  long long s_q, s_kv;
  int P, r;
  kernels::Rows qr, kr;
  std::vector<float> q, k, v, d_o;
  kernels::Rows q_of(int rank) const { return block_of(s_q, P, rank); }
  kernels::Rows kv_of(int rank) const { return block_of(s_kv, P, rank); }
};

/// Heads [first, first + count) and rows `r` of a [B][heads][total][width] tensor, packed.
std::vector<float> pack(const std::vector<float>& t, int batch, int heads, long long total,
                        int width, int first, int count, kernels::Rows r);
/// Writes (or adds) a packed [B][count][r.rows][width] block into heads [first, first+count).
void unpack(std::vector<float>& t, int batch, int heads, long long total, int width, int first,
            int count, kernels::Rows r, const std::vector<float>& block, bool add);

/// The query heads and the kv heads they read, for member r of a group of P splitting heads.
struct Heads {
  int q_first, q_count, kv_first, kv_count;
};
Heads heads_of(const kernels::Shape& s, int P, int r);

/// Head shards -> sequence shards for the forward outputs: this rank holds O ([B][heads of
/// `sub`][rows_total][d], rounded) and L for its heads over `rows_total` rows; member v owns
/// rows `member_rows[v]` of them (relative) and receives them; this rank receives its rows
/// `my_q` (global) for every member's heads and writes them to out.o and out.l.
void return_head_outputs(Communicator& comm, const std::vector<float>& o,
                         const std::vector<float>& l, const kernels::Shape& sub,
                         long long rows_total, const std::vector<kernels::Rows>& member_rows,
                         kernels::Rows my_q, const AttentionProblem& p, AttentionResult& out,
                         int tag);

/// The receiving end of a head-shard -> sequence-shard all-to-all of gradients: from each of
/// `members` (member v sent dQ for heads_of(members, v) over rows `my_q`, then dK and dV for its
/// kv heads over rows `my_kv`), writes this rank's dQ rows and its dK, dV rows, summing kv
/// heads that several members hold (replication), all rounded to the storage type.
void store_head_gradients(const std::vector<std::vector<float>>& received,
                          const AttentionProblem& p, int members, kernels::Rows my_q,
                          kernels::Rows my_kv, AttentionResult& out);

void query_ring_forward(Communicator& comm, const RingLocal& x, std::vector<float>& o_own,
                        std::vector<float>& l_own);
void kv_ring_forward(Communicator& comm, const RingLocal& x, std::vector<float>& o_own,
                     std::vector<float>& l_own);
void query_ring_backward(Communicator& comm, const RingLocal& x, const std::vector<float>& o_own,
                         const std::vector<float>& l_own, std::vector<float>& dq_own,
                         std::vector<float>& dk, std::vector<float>& dv);
void kv_ring_backward(Communicator& comm, const RingLocal& x, const std::vector<float>& o_own,
                      const std::vector<float>& l_own, std::vector<float>& dq,
                      std::vector<float>& dk_own, std::vector<float>& dv_own);

}  // namespace xring::executor::detail
