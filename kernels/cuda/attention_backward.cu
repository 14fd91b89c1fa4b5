// Attention backward: D = rowsum(dO ∘ O), then dQ, dK, dV of one Q block over one K/V block.
//
// Design (correctness first; the training plans need it exact, the forward is the hot path):
// - A CTA owns 32 kv rows of one (batch, kv head) and sweeps every query head of its GQA group
//   and every 16-row Q chunk. K and V stay in shared memory (fp32); dK and dV accumulate in
//   shared memory and are added to the fp32 outputs once, so no other CTA touches them.
// - Per chunk: P = exp(scale·QKᵀ − L) (0 where masked or L = -inf), dP = dO·Vᵀ,
//   dS = P ∘ (dP − D); dV += Pᵀ·dO, dK += scale·dSᵀ·Q in shared memory, and dQ += scale·dS·K
//   by atomicAdd (the kv tiles of other CTAs add to the same rows).
// - SIMT fp32 arithmetic. Next step when measured: mma.sync for the five products.
// - K and V rows are padded to D + 1 floats in shared memory: in the P/dS loop each lane reads
//   its own kv row at the same column, which with a stride of D (a multiple of 32) would put
//   all 32 lanes on one bank.
// - dK and dV are added to the outputs with plain stores: a launch owns its kv rows, so two
//   launches accumulating into the same dK/dV must be ordered on one stream (dQ uses atomics).
#include <algorithm>
#include <cmath>

#include "common.cuh"

namespace xring::kernels::cuda {
namespace detail {
namespace {

constexpr int kBN = 32;  // kv rows per CTA
constexpr int kBM = 16;  // query rows per chunk
constexpr int kThreads = 128;

/// Row stride of K and V in shared memory: D + 1 floats, so that the 32 lanes reading 32
/// different rows at one column (the P/dS loop) hit 32 different banks.
template <int D>
__host__ __device__ constexpr int kv_stride() {
  return D + 1;
}

template <int D>
constexpr size_t backward_smem_floats() {
  // K, V: [kBN][D + 1]; dK, dV: [kBN][D]; Q, dO: [kBM][D]; P, dS: [kBM][kBN]; L, D: [kBM]
  return 2 * kBN * kv_stride<D>() + 2 * kBN * D + 2 * kBM * D + 2 * kBM * kBN + 2 * kBM;
}

struct BackwardParams {
  const void *q, *k, *v, *d_o;
  const float *l, *row_terms;
  int heads, kv_heads;
  long long n_q, n_kv, q_first, kv_first;
  DeviceMask mask;
  float *dq, *dk, *dv;
  float scale;
};

template <class T, int D>
__global__ void __launch_bounds__(kThreads) backward_kernel(BackwardParams p) {
  extern __shared__ __align__(16) float smem[];
  constexpr int S = kv_stride<D>();
  float* k_s = smem;
  float* v_s = k_s + kBN * S;
  float* dk_s = v_s + kBN * S;
  float* dv_s = dk_s + kBN * D;
  float* q_s = dv_s + kBN * D;
  float* do_s = q_s + kBM * D;
  float* p_s = do_s + kBM * D;
  float* ds_s = p_s + kBM * kBN;
  float* l_s = ds_s + kBM * kBN;
  float* d_s = l_s + kBM;

  const int bkv = blockIdx.y;  // b * H_kv + kv head
  const int b = bkv / p.kv_heads, kvh = bkv % p.kv_heads;
  const int group = p.heads / p.kv_heads;
  const long long n0 = static_cast<long long>(blockIdx.x) * kBN;
  const long long kv_rows = min_ll(kBN, p.n_kv - n0);
  const T* k = static_cast<const T*>(p.k) + (static_cast<long long>(bkv) * p.n_kv + n0) * D;
  const T* v = static_cast<const T*>(p.v) + (static_cast<long long>(bkv) * p.n_kv + n0) * D;

  for (int i = threadIdx.x; i < kBN * D; i += kThreads) {
    const int r = i / D, c = i % D;
    k_s[r * S + c] = r < kv_rows ? Storage<T>::to_float(k[i]) : 0.0f;
    v_s[r * S + c] = r < kv_rows ? Storage<T>::to_float(v[i]) : 0.0f;
    dk_s[i] = 0;
    dv_s[i] = 0;
  }

  for (int hg = 0; hg < group; ++hg) {
    const int h = kvh * group + hg;
    const long long qbase = static_cast<long long>(b * p.heads + h) * p.n_q;
    const T* q = static_cast<const T*>(p.q) + qbase * D;
    const T* d_o = static_cast<const T*>(p.d_o) + qbase * D;
    for (long long m0 = 0; m0 < p.n_q; m0 += kBM) {
      const long long q_rows = min_ll(kBM, p.n_q - m0);
      __syncthreads();  // the previous chunk's products are done
      for (int i = threadIdx.x; i < kBM * D; i += kThreads) {
        const int r = i / D;
        q_s[i] = r < q_rows ? Storage<T>::to_float(q[m0 * D + i]) : 0.0f;
        do_s[i] = r < q_rows ? Storage<T>::to_float(d_o[m0 * D + i]) : 0.0f;
      }
      for (int r = threadIdx.x; r < kBM; r += kThreads) {
        l_s[r] = r < q_rows ? p.l[qbase + m0 + r] : -INFINITY;
        d_s[r] = r < q_rows ? p.row_terms[qbase + m0 + r] : 0.0f;
      }
      __syncthreads();
      // P and dS for the kBM x kBN pairs.
      for (int e = threadIdx.x; e < kBM * kBN; e += kThreads) {
        const int i = e / kBN, j = e % kBN;
        float pij = 0, dsij = 0;
        bool ok = i < q_rows && j < kv_rows && l_s[i] != -INFINITY;
        if (ok && p.mask.kind != DeviceMask::Kind::none)
          ok = allowed(p.mask, p.q_first + m0 + i, p.kv_first + n0 + j);
        if (ok) {
          float s = 0, dp = 0;
          for (int c = 0; c < D; ++c) {
            s += q_s[i * D + c] * k_s[j * S + c];
            dp += do_s[i * D + c] * v_s[j * S + c];
          }
          pij = expf(s * p.scale - l_s[i]);
          dsij = pij * (dp - d_s[i]);
        }
        p_s[e] = pij;
        ds_s[e] = dsij;
      }
      __syncthreads();
      // dV += Pᵀ·dO and dK += scale·dSᵀ·Q (this CTA's rows only).
      for (int e = threadIdx.x; e < kBN * D; e += kThreads) {
        const int j = e / D, c = e % D;
        float dv = 0, dk = 0;
        for (int i = 0; i < kBM; ++i) {
          dv += p_s[i * kBN + j] * do_s[i * D + c];
          dk += ds_s[i * kBN + j] * q_s[i * D + c];
        }
        dv_s[e] += dv;
        dk_s[e] += p.scale * dk;
      }
      // dQ += scale·dS·K, shared with the other kv tiles.
      for (int e = threadIdx.x; e < kBM * D; e += kThreads) {
        const int i = e / D, c = e % D;
        if (i >= q_rows) continue;
        float acc = 0;
        for (int j = 0; j < kBN; ++j) acc += ds_s[i * kBN + j] * k_s[j * S + c];
        if (acc != 0) atomicAdd(p.dq + (qbase + m0 + i) * D + c, p.scale * acc);
      }
    }
  }
  __syncthreads();
  float* dk = p.dk + (static_cast<long long>(bkv) * p.n_kv + n0) * D;
  float* dv = p.dv + (static_cast<long long>(bkv) * p.n_kv + n0) * D;
  for (int i = threadIdx.x; i < kv_rows * D; i += kThreads) {
    dk[i] += dk_s[i];
    dv[i] += dv_s[i];
  }
}

template <class T>
__global__ void row_terms_kernel(const T* o, const T* d_o, long long rows, int d, float* out) {
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float acc = 0;
  for (int c = lane; c < d; c += 32)
    acc += Storage<T>::to_float(o[row * d + c]) * Storage<T>::to_float(d_o[row * d + c]);
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) out[row] = acc;
}

template <class T, int D>
void launch_backward(const BackwardArgs& a) {
  BackwardParams p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.d_o = a.d_o;
  p.l = a.l;
  p.row_terms = a.row_terms;
  p.heads = a.geometry.heads;
  p.kv_heads = a.geometry.kv_heads;
  p.n_q = a.n_q;
  p.n_kv = a.n_kv;
  p.q_first = a.q_first;
  p.kv_first = a.kv_first;
  p.mask = a.mask;
  p.dq = a.dq;
  p.dk = a.dk;
  p.dv = a.dv;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  constexpr size_t smem = backward_smem_floats<D>() * sizeof(float);
  static OncePerDevice smem_opt_in;  // one per instantiation: per kernel
  smem_opt_in.run([] {
    XRING_CUDA_CHECK(cudaFuncSetAttribute(backward_kernel<T, D>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
  });
  const dim3 grid(static_cast<unsigned>((a.n_kv + kBN - 1) / kBN),
                  static_cast<unsigned>(a.geometry.batch * a.geometry.kv_heads));
  backward_kernel<T, D><<<grid, kThreads, smem, a.stream>>>(p);
  XRING_CUDA_CHECK_LAUNCH();
}

}  // namespace
}  // namespace detail

void backward_row_terms(const void* o, const void* d_o, DType dtype, long long rows, int head_dim,
                        float* d, cudaStream_t stream) {
  using namespace detail;
  if (rows <= 0) return;
  if (!o || !d_o || !d) throw Error("backward_row_terms: o, d_o and d must be device pointers");
  XRING_RANGE("backward_row_terms");
  const unsigned blocks = static_cast<unsigned>((rows + 7) / 8);
  if (dtype == DType::bf16)
    row_terms_kernel<<<blocks, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(o),
                                                 static_cast<const __nv_bfloat16*>(d_o), rows,
                                                 head_dim, d);
  else
    row_terms_kernel<<<blocks, 256, 0, stream>>>(
        static_cast<const __half*>(o), static_cast<const __half*>(d_o), rows, head_dim, d);
  XRING_CUDA_CHECK_LAUNCH();
}

void attention_backward(const BackwardArgs& a) {
  using namespace detail;
  const Geometry& g = a.geometry;
  if (g.head_dim != 64 && g.head_dim != 128) unsupported("head_dim", std::to_string(g.head_dim));
  if (g.batch < 1 || g.heads < 1 || g.kv_heads < 1 || g.heads % g.kv_heads != 0)
    throw Error("attention_backward: heads must be a positive multiple of kv_heads");
  if (!a.q || !a.k || !a.v || !a.d_o || !a.l || !a.row_terms || !a.dq || !a.dk || !a.dv)
    throw Error("attention_backward: every tensor must be a device pointer");
  if (a.n_q < 0 || a.n_kv < 0 || a.q_first < 0 || a.kv_first < 0)
    throw Error("attention_backward: token counts and offsets must be non-negative");
  if ((a.mask.kind == DeviceMask::Kind::same_group ||
       a.mask.kind == DeviceMask::Kind::up_to_group) &&
      (!a.mask.q_group || !a.mask.kv_group))
    throw Error("attention_backward: a media mask needs q_group and kv_group device arrays");
  if (static_cast<long long>(g.batch) * g.kv_heads > 65535)  // grid.y
    unsupported("batch x kv_heads",
                std::to_string(static_cast<long long>(g.batch) * g.kv_heads) + " (at most 65535)");
  if (a.n_q <= 0 || a.n_kv <= 0) return;
  XRING_RANGE(std::string("attention_backward ") + to_string(a.dtype) +
              " d=" + std::to_string(g.head_dim) + " " + std::to_string(a.n_q) + "x" +
              std::to_string(a.n_kv));
  const bool d64 = g.head_dim == 64;
  if (a.dtype == DType::bf16)
    d64 ? launch_backward<__nv_bfloat16, 64>(a) : launch_backward<__nv_bfloat16, 128>(a);
  else
    d64 ? launch_backward<__half, 64>(a) : launch_backward<__half, 128>(a);
}

}  // namespace xring::kernels::cuda
