// CUDA kernels (library xring_kernels, built when CUDA is found): the same contracts as the
// CPU references in reference.hpp, on device memory.
//
// Layouts (row-major, contiguous, device pointers): Q and O [B][H][n_q][d], K and V
// [B][H_kv][n_kv][d] in the storage dtype (fp16 or bf16); L (natural log-sum-exp of the scaled
// scores) [B][H][n_q] in fp32. Query head h reads kv head h / (H / H_kv). Token indices given to
// masks are global: row i of this Q block is token q_first + i, row j of K/V is kv_first + j.
//
// Every wrapper checks its arguments and throws xring::Error listing what is supported, checks
// every CUDA call (file:line and the CUDA error string), and puts its launches in an NVTX range
// of the "xring" domain. All work is enqueued on `stream`; nothing synchronizes the host.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

namespace xring::kernels::cuda {

enum class DType { fp16, bf16 };
const char* to_string(DType d);

struct Geometry {
  int batch = 1;
  int heads = 1;
  int kv_heads = 1;
  int head_dim = 128;  ///< 64 or 128
};

/// Which keys a query may attend (as kernels::Mask): none, Flamingo media masks over device
/// arrays of group ids indexed by global token, or causal (j <= i).
struct DeviceMask {
  enum class Kind { none, same_group, up_to_group, causal } kind = Kind::none;
  const int* q_group = nullptr;   ///< [q_first + n_q] at least
  const int* kv_group = nullptr;  ///< [kv_first + n_kv] at least
};

/// Which forward kernel runs (attention_forward.cu says how they differ). `automatic` reads
/// XRING_FORWARD_KERNEL (baseline or pipelined) from the environment, else `baseline`.
enum class ForwardKernel { automatic, baseline, pipelined };
const char* to_string(ForwardKernel k);
/// `automatic` resolved; throws xring::Error naming XRING_FORWARD_KERNEL when it is not valid.
ForwardKernel resolve(ForwardKernel k);

struct ForwardArgs {
  DType dtype = DType::bf16;
  Geometry geometry;
  const void *q = nullptr, *k = nullptr, *v = nullptr;
  long long n_q = 0, n_kv = 0;
  long long q_first = 0, kv_first = 0;
  DeviceMask mask;
  void* o = nullptr;    ///< [B][H][n_q][d]: storage dtype, or fp32 when o_fp32
  bool o_fp32 = false;  ///< write O in fp32 (the ring steps' partial results)
  float* l = nullptr;   ///< [B][H][n_q]
  int kv_splits = 0;    ///< 0: chosen so the grid fills the GPU; 1: never split
  ForwardKernel kernel = ForwardKernel::automatic;
  cudaStream_t stream = nullptr;
};

/// O and L of softmax(scale·QKᵀ)V over the allowed keys, scale = 1/sqrt(d). When the query
/// tiles alone cannot fill the GPU, the KV range is split over CTAs and the partial results are
/// merged exactly (workspace from the stream-ordered allocator). Rows with no allowed key get
/// O = 0 and L = -inf.
void attention_forward(const ForwardArgs& a);
/// The number of KV splits attention_forward would use for `a` on the current device.
int auto_kv_splits(const ForwardArgs& a);

/// In place, exactly: L = log(exp(L) + exp(L_part)), O = O·exp(L_old − L) + O_part·exp(L_part − L),
/// over `rows` rows of `head_dim` fp32 values. A side with L = -inf contributes nothing.
void merge_partial(float* o, float* l, const float* o_part, const float* l_part, long long rows,
                   int head_dim, cudaStream_t stream = nullptr);

/// y += x over `count` fp32 values (a ring's gradient arriving in pieces).
void add_fp32(float* y, const float* x, long long count, cudaStream_t stream = nullptr);

/// Converts fp32 values to the storage dtype (rounding to nearest even), e.g. a ring's O.
void convert_from_fp32(const float* in, void* out, DType dtype, long long count,
                       cudaStream_t stream = nullptr);

struct BackwardArgs {
  DType dtype = DType::bf16;
  Geometry geometry;
  const void *q = nullptr, *k = nullptr, *v = nullptr;  ///< storage dtype
  const void* o = nullptr;                              ///< the final O (storage dtype)
  const void* d_o = nullptr;                            ///< dO (storage dtype)
  const float* l = nullptr;                             ///< the final L of the Q block
  const float* row_terms = nullptr;  ///< D = rowsum(dO ∘ O), from backward_row_terms
  long long n_q = 0, n_kv = 0;
  long long q_first = 0, kv_first = 0;
  DeviceMask mask;
  float *dq = nullptr, *dk = nullptr, *dv = nullptr;  ///< fp32, accumulated (+=)
  cudaStream_t stream = nullptr;
};

/// D = rowsum(dO ∘ O) for `rows` rows (fp32 out), as kernels::backward_row_terms.
void backward_row_terms(const void* o, const void* d_o, DType dtype, long long rows, int head_dim,
                        float* d, cudaStream_t stream = nullptr);
/// dQ, dK, dV of one Q block over one K/V block given the final L and D, accumulated into fp32
/// buffers, as kernels::attention_backward. Launches that accumulate into the same dK/dV must
/// be ordered (one stream, or events): dK and dV are not added atomically.
void attention_backward(const BackwardArgs& a);

/// Per-head caches packed one after another: cache c holds len[c] tokens starting at row
/// offset[c] of a [total][d] array. Caches are ordered request-major: c = r·H_kv + kv head.
struct PackedCaches {
  const void* k = nullptr;  ///< [total][d] storage dtype
  const void* v = nullptr;
  const long long* offset = nullptr;  ///< device [requests·H_kv]
  const long long* len = nullptr;     ///< device [requests·H_kv]
  long long max_len = 0;  ///< host: at least the longest cache (sizes the grid; longer caches
                          ///< would be cut at max_len)
};

struct DecodeArgs {
  DType dtype = DType::bf16;
  int requests = 1;
  Geometry geometry;        ///< batch unused; heads, kv_heads, head_dim
  const void* q = nullptr;  ///< [requests][H][d]
  PackedCaches caches;
  void* o = nullptr;   ///< [requests][H][d] storage dtype
  float* l = nullptr;  ///< [requests][H]
  cudaStream_t stream = nullptr;
};

/// One decode step: each query head attends its kv head's cache of its own length (its budget).
/// An empty cache gives O = 0 and L = -inf (kernels::decode_attention).
void decode_attention(const DecodeArgs& a);

struct CompactArgs {
  DType dtype = DType::bf16;
  int caches = 1;  ///< number of per-head caches
  int head_dim = 128;
  const float* scores = nullptr;            ///< [total] one score per token, packed like the caches
  PackedCaches in;                          ///< the full caches
  const long long* keep = nullptr;          ///< device [caches]: tokens each cache keeps
  const long long* out_offset = nullptr;    ///< device [caches]: where its kept rows go
  void *k_out = nullptr, *v_out = nullptr;  ///< [Σ keep][d]
  long long* positions = nullptr;  ///< optional [Σ keep]: kept token positions within the cache
  cudaStream_t stream = nullptr;
};

/// Keeps, per cache, the `keep` tokens of highest score (ties to the lower position, as
/// kernels::top_k_positions) and gathers their K/V rows in ascending position order.
void compact_caches(const CompactArgs& a);

/// True when a CUDA device is usable; `why` gets the reason when not.
bool device_available(std::string* why = nullptr);

}  // namespace xring::kernels::cuda
