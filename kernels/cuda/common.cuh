// Shared pieces of the CUDA kernels: error checking, the storage types, and the tensor-core
// instruction (mma.sync m16n8k16, fp32 accumulate) with its fragment layout.
//
// Fragment layout of mma.m16n8k16 (PTX ISA), lane = 4·g + t (g = lane / 4, t = lane % 4):
//   A 16x16 (row major), four 32-bit registers of two 16-bit values, lower index in the low half:
//     a0 = A[g][2t..2t+1]   a1 = A[g+8][2t..2t+1]   a2 = A[g][2t+8..2t+9]   a3 = A[g+8][2t+8..2t+9]
//   B 16x8 ("col"): b0 = B[2t..2t+1][g]   b1 = B[2t+8..2t+9][g]
//   C 16x8 fp32:    c0, c1 = C[g][2t..2t+1]   c2, c3 = C[g+8][2t..2t+1]
// so an S accumulator pair (n-tiles 2j, 2j+1) is exactly the A fragment of P for k-tile j.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <set>
#include <string>

#include "xring/kernels/cuda.hpp"
#include "xring/kernels/cuda_memory.hpp"
#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"

namespace xring::kernels::cuda::detail {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <class T>
struct Storage;
template <>
struct Storage<__half> {
  __device__ static float to_float(__half x) { return __half2float(x); }
  __device__ static __half from_float(float x) { return __float2half_rn(x); }
  __device__ static uint32_t pack(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};
template <>
struct Storage<__nv_bfloat16> {
  __device__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  __device__ static __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
  __device__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
  }
};

/// Two 16-bit values as one register, `lo` in the low half.
template <class T>
__device__ inline uint32_t pack_pair(T lo, T hi) {
  uint16_t a = *reinterpret_cast<uint16_t*>(&lo), b = *reinterpret_cast<uint16_t*>(&hi);
  return static_cast<uint32_t>(a) | (static_cast<uint32_t>(b) << 16);
}

/// D = A·B + D on one 16x8x16 tile, fp32 accumulate.
template <class T>
__device__ inline void mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

template <>
__device__ inline void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <>
__device__ inline void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/// The shared-state-space address of a pointer into shared memory (for cp.async, ldmatrix).
__device__ inline uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// 16 bytes global -> shared without passing through registers (sm_80+); only `src_bytes`
/// (16 or 0) are read, the rest of the 16 is zero-filled.
__device__ inline void cp_async_16(void* smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(smem)),
               "l"(gmem), "r"(src_bytes)
               : "memory");
}
__device__ inline void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most `Pending` of this thread's committed cp.async groups are in flight.
template <int Pending>
__device__ inline void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

/// Four 8x8 16-bit matrices from shared memory (fragments.hpp says who gets what).
__device__ inline void ldmatrix_x4(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem))
               : "memory");
}
/// The same, each matrix transposed on the way.
__device__ inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(smem))
               : "memory");
}

__host__ __device__ inline long long min_ll(long long a, long long b) { return a < b ? a : b; }

/// Whether query token i may attend key token j (global indices).
__device__ inline bool allowed(const DeviceMask& m, long long i, long long j) {
  switch (m.kind) {
    case DeviceMask::Kind::none:
      return true;
    case DeviceMask::Kind::same_group:
      return m.kv_group[j] == m.q_group[i];
    case DeviceMask::Kind::up_to_group:
      return m.kv_group[j] <= m.q_group[i];
    case DeviceMask::Kind::causal:
      return j <= i;
  }
  return true;
}

/// "dtype X, head_dim Y" is unsupported: the message lists what is.
[[noreturn]] void unsupported(const std::string& what, const std::string& value);

/// Merges `splits` normalized partial results (o_part [splits][rows][d], l_part [splits][rows])
/// exactly into O (storage dtype, or fp32) and L. One warp per row.
void combine_splits(const float* o_part, const float* l_part, int splits, long long rows, int d,
                    void* o, bool o_fp32, float* l, DType dtype, cudaStream_t stream);

/// Blocks resident per SM times SMs: what "fills the GPU" means for the split heuristics.
int multiprocessors();

/// Host set-up a launch needs once per device, not on every call inside a timed window: a
/// static `OncePerDevice` beside the launch runs `setup` the first time the current device
/// launches (again after a failure, which throws).
class OncePerDevice {
 public:
  template <class Setup>
  void run(Setup&& setup) {
    int device = 0;
    XRING_CUDA_CHECK(cudaGetDevice(&device));
    std::lock_guard<std::mutex> lock(mutex_);
    if (done_.count(device)) return;
    setup();
    done_.insert(device);
  }

 private:
  std::mutex mutex_;
  std::set<int> done_;
};

/// Once per device: the stream-ordered pool that cudaMallocAsync draws the split buffers from
/// keeps freed memory (release threshold = all of it) instead of returning it at every
/// synchronisation, which the default threshold of 0 does (CUDA Runtime API, "Stream Ordered
/// Memory Allocator"): later launches reuse it without host work in the timed window.
void keep_async_pool_memory();

}  // namespace xring::kernels::cuda::detail
