// CPU reference kernels: attention forward (O and log-sum-exp), the exact merge of partial
// results, and backward. The CUDA kernels implement the same contracts; the distributed
// executor composes these on blocks of rows.
//
// Layouts (row-major, contiguous): Q and O are [B][H][rows][d], K and V [B][H_kv][rows][d],
// L (log-sum-exp, natural log of the scaled scores) [B][H][rows]. Query head h reads kv head
// h / (H / H_kv). Values are stored at the storage precision and computed in fp32.
#pragma once

#include <cstdint>
#include <vector>

namespace xring::kernels {

enum class Storage { fp32, fp16, bf16 };
const char* to_string(Storage s);

/// x rounded to the nearest value the storage type represents (round to nearest even).
float round_to(Storage s, float x);
void round_all(Storage s, std::vector<float>& v);
/// The spacing of storage values near |x| (one unit in the last place).
float ulp(Storage s, float x);

/// Which keys a query may attend, by global token index. none: all. same_group: key j only
/// when kv_group[j] == q_group[i] (Flamingo's media mask: text sees its own image).
/// up_to_group: kv_group[j] <= q_group[i] (text sees every image before it).
/// causal: j <= i (self-attention; the groups are unused).
struct Mask {
  enum class Kind { none, same_group, up_to_group, causal } kind = Kind::none;
  std::vector<int> q_group;
  std::vector<int> kv_group;
  bool allowed(long long q, long long kv) const {
    switch (kind) {
      case Kind::none:
        return true;
      case Kind::same_group:
        return kv_group[kv] == q_group[q];
      case Kind::up_to_group:
        return kv_group[kv] <= q_group[q];
      case Kind::causal:
        return kv <= q;
    }
    return true;
  }
};

struct Shape {
  int batch = 1;
  int heads = 1;
  int kv_heads = 1;
  int head_dim = 1;
  float scale() const;  ///< 1 / sqrt(head_dim)
};

/// A block of rows: `rows` tokens starting at global index `first`.
struct Rows {
  long long first = 0;
  long long rows = 0;
};

/// Attention of a Q block over a K/V block: o = softmax(scale·QKᵀ)V restricted to allowed keys,
/// l = log Σ exp(scale·qk) over them. Rows with no allowed key get o = 0, l = -inf.
/// Runs the blocked kernel of the CPU's widest vector instruction set (cpu_isa.hpp).
void attention_forward(const float* q, const float* k, const float* v, const Shape& shape,
                       Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l);

/// The same contract as one serial fp32 loop per query row (two passes over its scores):
/// the kernel before the blocked one, kept as the peer tests and benchmarks compare against.
void attention_forward_naive(const float* q, const float* k, const float* v, const Shape& shape,
                             Rows q_rows, Rows kv_rows, const Mask& mask, float* o, float* l);

/// Merges a partial result into an accumulator in place, exactly:
/// L = m + log(exp(L1 - m) + exp(L2 - m)), O = O1·exp(L1 - L) + O2·exp(L2 - L), m = max(L1, L2);
/// a side with L = -inf contributes nothing. `rows` is B·H·(query rows).
void merge_partial(float* o, float* l, const float* o_part, const float* l_part, long long rows,
                   int head_dim);

/// D = rowsum(dO ∘ O) per query row, for backward.
void backward_row_terms(const float* o, const float* d_o, long long rows, int head_dim, float* d);

/// Backward of attention over one K/V block, given the final L and D of the Q block:
/// P = exp(scale·QKᵀ − L), dV += Pᵀ dO, dS = P ∘ (dO Vᵀ − D), dQ += scale·dS K,
/// dK += scale·dSᵀ Q. Accumulates (+=) into dq, dk, dv, so blocks can be summed in any order.
/// Runs the blocked kernel of the CPU's widest vector instruction set (cpu_isa.hpp).
void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                        Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv);

/// The same contract as serial fp32 loops (the kernel before the blocked one, kept as the peer).
void attention_backward_naive(const float* q, const float* k, const float* v, const float* l,
                              const float* d, const float* d_o, const Shape& shape, Rows q_rows,
                              Rows kv_rows, const Mask& mask, float* dq, float* dk, float* dv);

/// Positions of the k highest scores among n (ties to the lower position), in ascending
/// position order: the tokens a head keeps when its cache is compacted to k.
std::vector<long long> top_k_positions(const float* scores, long long n, long long k);

/// Rows `positions` of a [n][width] matrix, packed in that order.
std::vector<float> gather_rows(const float* t, int width, const std::vector<long long>& positions);

/// Decode attention: one query row per query head over per-kv-head caches of their own
/// lengths (each head its own budget). q and o are [H][d], l is [H]; k[h] and v[h] point at
/// [len[h]][d] for kv head h; query head j reads kv head j / (H / H_kv). A head with an empty
/// cache gets o = 0 and l = -inf.
void decode_attention(const float* q, const std::vector<const float*>& k,
                      const std::vector<const float*>& v, const std::vector<long long>& len,
                      const Shape& shape, float* o, float* l);

/// Copies rows [first, first + rows) of a [B][heads][total][d] tensor into a packed block.
std::vector<float> slice_rows(const std::vector<float>& t, int batch, int heads, long long total,
                              int head_dim, Rows rows);
/// Writes a packed block back into rows of a [B][heads][total][d] tensor.
void place_rows(std::vector<float>& t, int batch, int heads, long long total, int head_dim,
                Rows rows, const float* block);

}  // namespace xring::kernels
