// Attention forward (O and L), the merge of partial results, and fp32 -> storage conversion.
//
// Design (FlashAttention-2 on mma.sync, correctness first; tuning is measured on the GPU):
// - A CTA owns 64 query rows of one (batch, head): 4 warps x 16 rows. Its Q tile stays in
//   registers as A fragments for the whole KV sweep; K and V tiles of 64 rows pass through
//   shared memory (rows padded by 8 elements, so the 32-bit fragment loads are conflict-free).
// - S = Q·Kᵀ with mma.m16n8k16 (fp32 accumulate); the online softmax runs on the accumulator
//   registers in the log2 domain (scale·log2 e folded in); P is re-packed, without shared
//   memory, as the A fragment of P·V (see common.cuh for why the layouts line up).
// - Cross-attention has short Q and very long K/V: when the query tiles cannot fill the GPU,
//   the KV range is split over CTAs (grid.z); each writes a normalized partial O and its L,
//   and a second kernel merges the splits exactly (one warp per row).
// - Masks (Flamingo media groups, causal) are evaluated per element; causal CTAs stop at
//   their last allowed key.
// - Two variants of the same kernel (ForwardKernel): `baseline` loads each K/V tile with
//   16-byte loads through registers and gathers the B fragments with 32-bit shared loads;
//   `pipelined` double-buffers the K/V tiles with cp.async (the next tile lands while this one
//   is computed) and loads the B fragments with ldmatrix (fragments.hpp, checked on the CPU by
//   tests/test_fragments.cpp). The default stays `baseline` until a GPU run has measured both
//   (bench/bench_kernels.cu prints both; scripts/gpu-check.sh runs the kernel tests for both).
// Not yet: wgmma/TMA on sm_90a, 128-row Q tiles. Each tuning step is justified by a
// measurement against PyTorch SDPA (bench/).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "xring/kernels/fragments.hpp"

namespace xring::kernels::cuda {
namespace detail {

namespace {

constexpr int kM = 64;         // query rows per CTA
constexpr int kN = 64;         // kv rows per tile
constexpr int kThreads = 128;  // 4 warps
constexpr int kMaxSplits = 64;

template <int D>
__host__ __device__ constexpr int stride() {
  return D + 8;
}

/// Q tile plus one K and one V tile per stage (two stages when pipelined).
template <class T, int D, bool kPipelined>
constexpr size_t forward_smem_bytes() {
  return static_cast<size_t>(kM + (kPipelined ? 4 : 2) * kN) * stride<D>() * sizeof(T);
}

struct ForwardParams {
  const void *q, *k, *v;
  void* o;
  bool o_fp32;
  float* l;
  float* o_part;  // [splits][rows][D] when split
  float* l_part;  // [splits][rows]
  int heads, kv_heads;
  long long n_q, n_kv, q_first, kv_first;
  DeviceMask mask;
  int splits;
  long long split_len;
  float scale_log2;
};

/// Rows [first, first + rows) of a [n][D] matrix into shared memory; rows at or past `end`
/// are zero. 16-byte vectors.
template <class T, int D>
__device__ void load_rows(T* dst, const T* src, long long first, long long end, int rows) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kPerRow = D / kVec;
  for (int i = threadIdx.x; i < rows * kPerRow; i += blockDim.x) {
    const int r = i / kPerRow, c = (i % kPerRow) * kVec;
    uint4 value = make_uint4(0, 0, 0, 0);
    if (first + r < end) value = *reinterpret_cast<const uint4*>(src + (first + r) * D + c);
    *reinterpret_cast<uint4*>(dst + r * stride<D>() + c) = value;
  }
}

/// Rows [first, first + kRows) of a [n][D] matrix into shared memory with cp.async; rows at or
/// past `end` are zero-filled. Needs first < end (it reads row `first` for the zero rows).
template <class T, int D, int kRows>
__device__ void load_rows_async(T* dst, const T* src, long long first, long long end) {
  constexpr int kVec = 16 / sizeof(T);
  constexpr int kPerRow = D / kVec;
  constexpr int kChunks = kRows * kPerRow;
  static_assert(kChunks % kThreads == 0, "whole 16-byte chunks per thread");
#pragma unroll
  for (int j = 0; j < kChunks / kThreads; ++j) {
    const int i = j * kThreads + static_cast<int>(threadIdx.x);
    const int r = i / kPerRow, c = (i % kPerRow) * kVec;
    const bool inside = first + r < end;
    cp_async_16(dst + r * stride<D>() + c, src + (inside ? first + r : first) * D + c,
                inside ? 16 : 0);
  }
}

template <class T, int D>
__device__ inline uint32_t load_u32(const T* p) {
  return *reinterpret_cast<const uint32_t*>(p);
}

/// The B fragments of key n-tile `nt` for every 16-column k-tile of S = Q·Kᵀ.
template <class T, int D, bool kLdmatrix>
__device__ inline void k_fragments(uint32_t (&bf)[D / 16][2], const T* k_s, int nt, int lane) {
  constexpr int S = stride<D>();
  if constexpr (kLdmatrix) {
#pragma unroll
    for (int kt = 0; kt < D / 16; kt += 2) {
      const fragments::RowCol at = fragments::k_address(lane, nt, kt);
      uint32_t r[4];
      ldmatrix_x4(r, k_s + at.row * S + at.col);
      bf[kt][0] = r[0];
      bf[kt][1] = r[1];
      bf[kt + 1][0] = r[2];
      bf[kt + 1][1] = r[3];
    }
  } else {
    const int g = lane / 4, t = lane % 4;
    const T* kr = k_s + (nt * 8 + g) * S;
#pragma unroll
    for (int kt = 0; kt < D / 16; ++kt) {
      bf[kt][0] = load_u32<T, D>(kr + kt * 16 + 2 * t);
      bf[kt][1] = load_u32<T, D>(kr + kt * 16 + 8 + 2 * t);
    }
  }
}

/// The B fragments of key k-tile `kk` (16 keys) for head-dim n-tiles `dt`, `dt + 1` of P·V.
template <class T, int D, bool kLdmatrix>
__device__ inline void v_fragments(uint32_t (&bf)[2][2], const T* v_s, int kk, int dt, int lane) {
  constexpr int S = stride<D>();
  if constexpr (kLdmatrix) {
    const fragments::RowCol at = fragments::v_address(lane, kk, dt);
    uint32_t r[4];
    ldmatrix_x4_trans(r, v_s + at.row * S + at.col);
    bf[0][0] = r[0];
    bf[0][1] = r[1];
    bf[1][0] = r[2];
    bf[1][1] = r[3];
  } else {
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const T* vc = v_s + (kk * 16 + 2 * t) * S + (dt + j) * 8 + g;
      bf[j][0] = pack_pair(vc[0], vc[S]);
      bf[j][1] = pack_pair(vc[8 * S], vc[9 * S]);
    }
  }
}

/// This warp's A fragments of Q (its 16 rows of the CTA's tile in shared memory).
template <class T, int D>
__device__ __forceinline__ void q_fragments(uint32_t (&qf)[D / 16][4], const T* q_s, int warp,
                                            int lane) {
  constexpr int S = stride<D>();
  const int g = lane / 4, t = lane % 4;
  const T* qw = q_s + warp * 16 * S;
#pragma unroll
  for (int kt = 0; kt < D / 16; ++kt) {
    qf[kt][0] = load_u32<T, D>(qw + g * S + kt * 16 + 2 * t);
    qf[kt][1] = load_u32<T, D>(qw + (g + 8) * S + kt * 16 + 2 * t);
    qf[kt][2] = load_u32<T, D>(qw + g * S + kt * 16 + 8 + 2 * t);
    qf[kt][3] = load_u32<T, D>(qw + (g + 8) * S + kt * 16 + 8 + 2 * t);
  }
}

/// The warp's running softmax state for its two rows per thread (g and g + 8) and its share of O.
template <int D>
struct RowState {
  float o_acc[D / 8][4];
  float row_max[2], row_sum[2];
};

/// S = Q·Kᵀ for one kN-key tile.
template <class T, int D, bool kLdmatrix>
__device__ __forceinline__ void tile_scores(float (&s)[kN / 8][4], const uint32_t (&qf)[D / 16][4],
                                            const T* k_tile, int lane) {
#pragma unroll
  for (int nt = 0; nt < kN / 8; ++nt) {
    s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0;
    uint32_t bf[D / 16][2];
    k_fragments<T, D, kLdmatrix>(bf, k_tile, nt, lane);
#pragma unroll
    for (int kt = 0; kt < D / 16; ++kt) mma_16816<T>(s[nt], qf[kt], bf[kt]);
  }
}

/// Scales the tile's scores into the log2 domain (masked and out-of-range keys and rows become
/// -inf), folds the tile's maximum into the running one, rescales the running sum and O by
/// alpha, and turns the scores into exp2(s − max), adding them to the running sum.
/// `p` by value, here and in write_rows: a reference to the kernel's parameter would make the
/// compiler copy the parameter block into local memory.
template <int D>
__device__ __forceinline__ void online_softmax(float (&s)[kN / 8][4], RowState<D>& st,
                                               const ForwardParams p, long long n0,
                                               long long kv_end, const long long (&rows)[2],
                                               int lane) {
  const int t = lane % 4;
  float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const long long col = n0 + nt * 8 + 2 * t + (e & 1);
      const long long row = rows[e >> 1];
      bool ok = col < kv_end && row < p.n_q;
      if (ok && p.mask.kind != DeviceMask::Kind::none)
        ok = allowed(p.mask, p.q_first + row, p.kv_first + col);
      s[nt][e] = ok ? s[nt][e] * p.scale_log2 : -INFINITY;
      tile_max[e >> 1] = fmaxf(tile_max[e >> 1], s[nt][e]);
    }
  float base[2], alpha[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 1));
    tile_max[i] = fmaxf(tile_max[i], __shfl_xor_sync(0xffffffffu, tile_max[i], 2));
    const float new_max = fmaxf(st.row_max[i], tile_max[i]);
    base[i] = new_max == -INFINITY ? 0.0f : new_max;  // all masked so far: exp2 gives 0
    alpha[i] = exp2f(st.row_max[i] - base[i]);
    st.row_max[i] = new_max;
    st.row_sum[i] *= alpha[i];
  }
#pragma unroll
  for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      s[nt][e] = exp2f(s[nt][e] - base[e >> 1]);
      st.row_sum[e >> 1] += s[nt][e];
    }
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    st.o_acc[dt][0] *= alpha[0];
    st.o_acc[dt][1] *= alpha[0];
    st.o_acc[dt][2] *= alpha[1];
    st.o_acc[dt][3] *= alpha[1];
  }
}

/// O += P·V: P's accumulator pairs are the A fragments; V's columns are gathered.
template <class T, int D, bool kLdmatrix>
__device__ __forceinline__ void accumulate_pv(float (&o_acc)[D / 8][4], const float (&s)[kN / 8][4],
                                              const T* v_tile, int lane) {
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) {
    const uint32_t a[4] = {Storage<T>::pack(s[2 * kk][0], s[2 * kk][1]),
                           Storage<T>::pack(s[2 * kk][2], s[2 * kk][3]),
                           Storage<T>::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                           Storage<T>::pack(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
    for (int dt = 0; dt < D / 8; dt += 2) {
      uint32_t bf[2][2];
      v_fragments<T, D, kLdmatrix>(bf, v_tile, kk, dt, lane);
      mma_16816<T>(o_acc[dt], a, bf[0]);
      mma_16816<T>(o_acc[dt + 1], a, bf[1]);
    }
  }
}

/// Normalises the warp's rows and writes O and the log-sum-exp L: into this split's part (split
/// KV), as fp32, or at the storage width.
template <class T, int D>
__device__ __forceinline__ void write_rows(RowState<D>& st, const ForwardParams p,
                                           const long long (&rows)[2], int bh, int split,
                                           int lane) {
  const int t = lane % 4;
  float inv[2], lse[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    st.row_sum[i] += __shfl_xor_sync(0xffffffffu, st.row_sum[i], 1);
    st.row_sum[i] += __shfl_xor_sync(0xffffffffu, st.row_sum[i], 2);
    inv[i] = st.row_sum[i] > 0 ? 1.0f / st.row_sum[i] : 0.0f;
    lse[i] = st.row_sum[i] > 0 ? (st.row_max[i] + log2f(st.row_sum[i])) * kLn2 : -INFINITY;
  }
  const long long total_rows = static_cast<long long>(gridDim.y) * p.n_q;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const long long row = rows[i];
    if (row >= p.n_q) continue;
    const long long flat = static_cast<long long>(bh) * p.n_q + row;
    if (p.splits > 1) {
      float* out = p.o_part + (split * total_rows + flat) * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        out[dt * 8 + 2 * t] = st.o_acc[dt][2 * i] * inv[i];
        out[dt * 8 + 2 * t + 1] = st.o_acc[dt][2 * i + 1] * inv[i];
      }
      if (t == 0) p.l_part[split * total_rows + flat] = lse[i];
    } else if (p.o_fp32) {
      float* out = static_cast<float*>(p.o) + flat * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        out[dt * 8 + 2 * t] = st.o_acc[dt][2 * i] * inv[i];
        out[dt * 8 + 2 * t + 1] = st.o_acc[dt][2 * i + 1] * inv[i];
      }
      if (t == 0) p.l[flat] = lse[i];
    } else {
      T* out = static_cast<T*>(p.o) + flat * D;
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        const uint32_t pair =
            Storage<T>::pack(st.o_acc[dt][2 * i] * inv[i], st.o_acc[dt][2 * i + 1] * inv[i]);
        *reinterpret_cast<uint32_t*>(out + dt * 8 + 2 * t) = pair;
      }
      if (t == 0) p.l[flat] = lse[i];
    }
  }
}

/// One CTA: kM query rows of one (batch, head) against one split of the keys, in kN-key tiles
/// (double-buffered with cp.async and read with ldmatrix in the pipelined variant).
template <class T, int D, bool kPipelined>
__global__ void __launch_bounds__(kThreads) forward_kernel(ForwardParams p) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int S = stride<D>();
  constexpr int kStages = kPipelined ? 2 : 1;
  T* q_s = reinterpret_cast<T*>(smem_raw);
  T* k_s = q_s + kM * S;            // [kStages][kN][S]
  T* v_s = k_s + kStages * kN * S;  // [kStages][kN][S]

  const int bh = blockIdx.y, split = blockIdx.z;
  const int b = bh / p.heads, h = bh % p.heads;
  const int kvh = h / (p.heads / p.kv_heads);
  const long long m0 = static_cast<long long>(blockIdx.x) * kM;
  const T* q = static_cast<const T*>(p.q) + static_cast<long long>(bh) * p.n_q * D;
  const long long kv_base = static_cast<long long>(b * p.kv_heads + kvh) * p.n_kv * D;
  const T* k = static_cast<const T*>(p.k) + kv_base;
  const T* v = static_cast<const T*>(p.v) + kv_base;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4;

  load_rows<T, D>(q_s, q, m0, p.n_q, kM);
  __syncthreads();
  uint32_t qf[D / 16][4];
  q_fragments<T, D>(qf, q_s, warp, lane);

  RowState<D> st;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt)
    st.o_acc[dt][0] = st.o_acc[dt][1] = st.o_acc[dt][2] = st.o_acc[dt][3] = 0;
  st.row_max[0] = st.row_max[1] = -INFINITY;
  st.row_sum[0] = st.row_sum[1] = 0;
  const long long rows[2] = {m0 + warp * 16 + g, m0 + warp * 16 + g + 8};

  const long long kv_begin = split * p.split_len;
  long long kv_end = min_ll(p.n_kv, kv_begin + p.split_len);
  if (p.mask.kind == DeviceMask::Kind::causal) {
    // The CTA's last query may attend keys up to its own global index.
    const long long last_q = p.q_first + min_ll(m0 + kM, p.n_q) - 1;
    kv_end = min_ll(kv_end, last_q - p.kv_first + 1);
  }

  if constexpr (kPipelined) {  // the first tile is in flight before the loop
    if (kv_begin < kv_end) {
      load_rows_async<T, D, kN>(k_s, k, kv_begin, kv_end);
      load_rows_async<T, D, kN>(v_s, v, kv_begin, kv_end);
    }
    cp_async_commit();
  }
  int stage = 0;
  for (long long n0 = kv_begin; n0 < kv_end; n0 += kN, stage ^= kStages - 1) {
    __syncthreads();  // everyone is done with the previous K/V tile (the other stage)
    if constexpr (kPipelined) {
      if (n0 + kN < kv_end) {
        load_rows_async<T, D, kN>(k_s + (stage ^ 1) * kN * S, k, n0 + kN, kv_end);
        load_rows_async<T, D, kN>(v_s + (stage ^ 1) * kN * S, v, n0 + kN, kv_end);
      }
      cp_async_commit();  // possibly empty: "all but the newest group" is always this tile
      cp_async_wait<1>();
    } else {
      load_rows<T, D>(k_s, k, n0, kv_end, kN);
      load_rows<T, D>(v_s, v, n0, kv_end, kN);
    }
    __syncthreads();
    float s[kN / 8][4];
    tile_scores<T, D, kPipelined>(s, qf, k_s + stage * kN * S, lane);
    online_softmax<D>(s, st, p, n0, kv_end, rows, lane);
    accumulate_pv<T, D, kPipelined>(st.o_acc, s, v_s + stage * kN * S, lane);
  }
  write_rows<T, D>(st, p, rows, bh, split, lane);
}

/// The splits of each row merged exactly: L = log Σ exp(L_s), O = Σ exp(L_s − L)·O_s.
/// One warp per row.
template <class T>
__global__ void combine_splits_kernel(const float* o_part, const float* l_part, int splits,
                                      long long rows, int d, void* o, bool o_fp32, float* l) {
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, l_part[s * rows + row]);
  float sum = 0;
  if (m != -INFINITY)
    for (int s = 0; s < splits; ++s) sum += expf(l_part[s * rows + row] - m);
  const float lse = m == -INFINITY ? -INFINITY : m + logf(sum);
  for (int c = lane; c < d; c += 32) {
    float acc = 0;
    if (lse != -INFINITY)
      for (int s = 0; s < splits; ++s) {
        const float ls = l_part[s * rows + row];
        if (ls != -INFINITY) acc += expf(ls - lse) * o_part[(s * rows + row) * d + c];
      }
    if (o_fp32)
      static_cast<float*>(o)[row * d + c] = acc;
    else
      static_cast<T*>(o)[row * d + c] = Storage<T>::from_float(acc);
  }
  if (lane == 0) l[row] = lse;
}

__global__ void merge_partial_kernel(float* o, float* l, const float* o_part, const float* l_part,
                                     long long rows, int d) {
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float l1 = l[row], l2 = l_part[row];
  if (l2 == -INFINITY) return;  // nothing to add
  float w1 = 0, w2 = 1, merged = l2;
  if (l1 != -INFINITY) {
    const float m = fmaxf(l1, l2);
    merged = m + logf(expf(l1 - m) + expf(l2 - m));
    w1 = expf(l1 - merged);
    w2 = expf(l2 - merged);
  }
  for (int c = lane; c < d; c += 32)
    o[row * d + c] = w1 * (l1 == -INFINITY ? 0.0f : o[row * d + c]) + w2 * o_part[row * d + c];
  __syncwarp();
  if (lane == 0) l[row] = merged;
}

template <class T>
__global__ void convert_kernel(const float* in, T* out, long long count) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    out[i] = Storage<T>::from_float(in[i]);
}

__global__ void add_kernel(float* y, const float* x, long long count) {
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<long long>(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

/// Grid of warps-per-row kernels: 8 rows (warps) per 256-thread block.
dim3 row_grid(long long rows) { return dim3(static_cast<unsigned>(ceil_div(rows, 8))); }

/// Keys per split for `splits` requested splits of n_kv keys: whole tiles.
long long split_length(long long n_kv, int splits) {
  return std::max<long long>(kN, ceil_div(ceil_div(std::max(n_kv, 1LL), splits), kN) * kN);
}

template <class T, int D, bool kPipelined>
void launch_forward(const ForwardArgs& a, int splits) {
  const Geometry& geo = a.geometry;
  ForwardParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.o = a.o;
  p.o_fp32 = a.o_fp32;
  p.l = a.l;
  p.heads = geo.heads;
  p.kv_heads = geo.kv_heads;
  p.n_q = a.n_q;
  p.n_kv = a.n_kv;
  p.q_first = a.q_first;
  p.kv_first = a.kv_first;
  p.mask = a.mask;
  p.scale_log2 = kLog2e / std::sqrt(static_cast<float>(D));
  p.split_len = split_length(a.n_kv, splits);
  p.splits = static_cast<int>(std::max(1LL, ceil_div(a.n_kv, p.split_len)));
  const long long rows = static_cast<long long>(geo.batch) * geo.heads * a.n_q;
  if (p.splits > 1) {
    keep_async_pool_memory();
    XRING_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p.o_part),
                                     sizeof(float) * p.splits * rows * D, a.stream));
    XRING_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p.l_part),
                                     sizeof(float) * p.splits * rows, a.stream));
  }
  constexpr size_t smem = forward_smem_bytes<T, D, kPipelined>();
  static OncePerDevice smem_opt_in;  // one per instantiation: per kernel
  smem_opt_in.run([] {
    XRING_CUDA_CHECK(cudaFuncSetAttribute(forward_kernel<T, D, kPipelined>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
  });
  const dim3 grid(static_cast<unsigned>(ceil_div(a.n_q, kM)),
                  static_cast<unsigned>(geo.batch * geo.heads), static_cast<unsigned>(p.splits));
  forward_kernel<T, D, kPipelined><<<grid, kThreads, smem, a.stream>>>(p);
  XRING_CUDA_CHECK_LAUNCH();
  if (p.splits > 1) {
    combine_splits(p.o_part, p.l_part, p.splits, rows, D, a.o, a.o_fp32, a.l, a.dtype, a.stream);
    XRING_CUDA_CHECK(cudaFreeAsync(p.o_part, a.stream));
    XRING_CUDA_CHECK(cudaFreeAsync(p.l_part, a.stream));
  }
}

void check_forward(const ForwardArgs& a) {
  const Geometry& g = a.geometry;
  if (g.head_dim != 64 && g.head_dim != 128) unsupported("head_dim", std::to_string(g.head_dim));
  if (static_cast<long long>(g.batch) * g.heads > 65535)  // grid.y
    unsupported("batch x heads",
                std::to_string(static_cast<long long>(g.batch) * g.heads) + " (at most 65535)");
  if (g.batch < 1 || g.heads < 1 || g.kv_heads < 1 || g.heads % g.kv_heads != 0)
    throw Error(
        "attention_forward: batch, heads and kv_heads must be positive with heads a "
        "multiple of kv_heads (got " +
        std::to_string(g.batch) + ", " + std::to_string(g.heads) + ", " +
        std::to_string(g.kv_heads) + ")");
  if (a.n_q < 0 || a.n_kv < 0 || a.q_first < 0 || a.kv_first < 0)
    throw Error("attention_forward: token counts and offsets must be non-negative");
  if (!a.q || !a.k || !a.v || !a.o || !a.l)
    throw Error("attention_forward: q, k, v, o and l must all be device pointers");
  const bool groups =
      a.mask.kind == DeviceMask::Kind::same_group || a.mask.kind == DeviceMask::Kind::up_to_group;
  if (groups && (!a.mask.q_group || !a.mask.kv_group))
    throw Error("attention_forward: a media mask needs q_group and kv_group device arrays");
}

}  // namespace

void combine_splits(const float* o_part, const float* l_part, int splits, long long rows, int d,
                    void* o, bool o_fp32, float* l, DType dtype, cudaStream_t stream) {
  if (rows == 0) return;
  if (dtype == DType::bf16)
    combine_splits_kernel<__nv_bfloat16>
        <<<row_grid(rows), 256, 0, stream>>>(o_part, l_part, splits, rows, d, o, o_fp32, l);
  else
    combine_splits_kernel<__half>
        <<<row_grid(rows), 256, 0, stream>>>(o_part, l_part, splits, rows, d, o, o_fp32, l);
  XRING_CUDA_CHECK_LAUNCH();
}

[[noreturn]] void unsupported(const std::string& what, const std::string& value) {
  throw Error("CUDA kernels: " + what + " " + value +
              " is not supported; supported: dtype fp16 or bf16, head_dim 64 or 128, heads a "
              "multiple of kv_heads, masks none/same_group/up_to_group/causal");
}

int multiprocessors() {
  int device = 0, count = 0;
  XRING_CUDA_CHECK(cudaGetDevice(&device));
  XRING_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

void keep_async_pool_memory() {
  static OncePerDevice once;
  once.run([] {
    int device = 0;
    XRING_CUDA_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool = nullptr;
    XRING_CUDA_CHECK(cudaDeviceGetMemPool(&pool, device));
    uint64_t keep_all = UINT64_MAX;
    XRING_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  });
}

}  // namespace detail

const char* to_string(DType d) { return d == DType::fp16 ? "fp16" : "bf16"; }

const char* to_string(ForwardKernel k) {
  switch (k) {
    case ForwardKernel::automatic:
      return "automatic";
    case ForwardKernel::baseline:
      return "baseline";
    case ForwardKernel::pipelined:
      return "pipelined";
  }
  return "?";
}

ForwardKernel resolve(ForwardKernel k) {
  if (k != ForwardKernel::automatic) return k;
  const char* env = std::getenv("XRING_FORWARD_KERNEL");
  if (!env || !*env || std::string(env) == "baseline") return ForwardKernel::baseline;
  if (std::string(env) == "pipelined") return ForwardKernel::pipelined;
  throw Error("XRING_FORWARD_KERNEL=" + std::string(env).substr(0, 64) +
              " is not a forward kernel; use baseline or pipelined (or leave it unset)");
}

namespace detail {
namespace {

/// The splits asked for: the caller's (at most kMaxSplits), else enough CTAs for two per SM.
int requested_splits(const ForwardArgs& a) {
  if (a.kv_splits > 0) return std::min(a.kv_splits, kMaxSplits);
  const long long ctas = ceil_div(a.n_q, kM) * a.geometry.batch * a.geometry.heads;
  if (ctas <= 0 || a.n_kv <= 2 * kN) return 1;
  const long long target = 2LL * multiprocessors();  // two resident CTAs per SM
  if (ctas >= target) return 1;
  const long long by_work = ceil_div(a.n_kv, 4 * kN);  // at least four tiles per split
  return static_cast<int>(
      std::clamp<long long>(ceil_div(target, ctas), 1, std::min<long long>(by_work, kMaxSplits)));
}

}  // namespace
}  // namespace detail

int auto_kv_splits(const ForwardArgs& a) {
  using namespace detail;
  // What the launch uses: whole tiles per split can leave fewer splits than were asked for.
  return static_cast<int>(
      std::max(1LL, ceil_div(a.n_kv, split_length(a.n_kv, requested_splits(a)))));
}

void attention_forward(const ForwardArgs& a) {
  using namespace detail;
  check_forward(a);
  if (a.n_q == 0) return;
  XRING_RANGE(std::string("attention_forward ") + to_string(a.dtype) +
              " d=" + std::to_string(a.geometry.head_dim) + " " + std::to_string(a.n_q) + "x" +
              std::to_string(a.n_kv));
  const int splits = requested_splits(a);
  const bool d64 = a.geometry.head_dim == 64;
  const bool pipelined = resolve(a.kernel) == ForwardKernel::pipelined;
  if (a.dtype == DType::bf16) {
    if (pipelined)
      d64 ? launch_forward<__nv_bfloat16, 64, true>(a, splits)
          : launch_forward<__nv_bfloat16, 128, true>(a, splits);
    else
      d64 ? launch_forward<__nv_bfloat16, 64, false>(a, splits)
          : launch_forward<__nv_bfloat16, 128, false>(a, splits);
  } else {
    if (pipelined)
      d64 ? launch_forward<__half, 64, true>(a, splits)
          : launch_forward<__half, 128, true>(a, splits);
    else
      d64 ? launch_forward<__half, 64, false>(a, splits)
          : launch_forward<__half, 128, false>(a, splits);
  }
}

void merge_partial(float* o, float* l, const float* o_part, const float* l_part, long long rows,
                   int head_dim, cudaStream_t stream) {
  using namespace detail;
  if (rows < 0 || head_dim < 1) throw Error("merge_partial: rows >= 0 and head_dim >= 1 required");
  if (rows == 0) return;
  XRING_RANGE("merge_partial " + std::to_string(rows) + " rows");
  merge_partial_kernel<<<row_grid(rows), 256, 0, stream>>>(o, l, o_part, l_part, rows, head_dim);
  XRING_CUDA_CHECK_LAUNCH();
}

void convert_from_fp32(const float* in, void* out, DType dtype, long long count,
                       cudaStream_t stream) {
  using namespace detail;
  if (count <= 0) return;
  XRING_RANGE("convert_from_fp32");
  const unsigned blocks = static_cast<unsigned>(std::min<long long>(ceil_div(count, 256), 65535));
  if (dtype == DType::bf16)
    convert_kernel<<<blocks, 256, 0, stream>>>(in, static_cast<__nv_bfloat16*>(out), count);
  else
    convert_kernel<<<blocks, 256, 0, stream>>>(in, static_cast<__half*>(out), count);
  XRING_CUDA_CHECK_LAUNCH();
}

void add_fp32(float* y, const float* x, long long count, cudaStream_t stream) {
  using namespace detail;
  if (count <= 0) return;
  if (!y || !x) throw Error("add_fp32: y and x must be device pointers");
  XRING_RANGE("add_fp32");
  const unsigned blocks = static_cast<unsigned>(std::min<long long>(ceil_div(count, 256), 65535));
  add_kernel<<<blocks, 256, 0, stream>>>(y, x, count);
  XRING_CUDA_CHECK_LAUNCH();
}

bool device_available(std::string* why) {
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || count == 0) {
    if (why)
      *why = status != cudaSuccess
                 ? std::string("no usable CUDA device: ") + cudaGetErrorString(status)
                 : std::string("no CUDA device on this machine");
    cudaGetLastError();  // clear the sticky error of the failed query
    return false;
  }
  return true;
}

}  // namespace xring::kernels::cuda
