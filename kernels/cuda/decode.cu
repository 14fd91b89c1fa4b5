// Decode attention over per-head caches of their own lengths, and the compaction that builds
// those caches (per head, the top-k tokens by score, gathered in position order).
//
// Decode design (memory bound: the goal is HBM bandwidth):
// - A CTA owns one chunk of one (request, kv head) cache; its 4 warps share each K/V tile of
//   64 tokens, loaded once from HBM into shared memory with 16-byte loads, and the query heads
//   of the GQA group are spread over the warps (heads w, w+4, ...), so K/V bytes are read once
//   per group, not once per query head. Rows are padded by one 32-bit word: conflict-free.
// - Per head and 32 tokens a lane scores its own token (fp32 dot product), the warp does an
//   online softmax with shuffles, and each lane accumulates P·V for its own pairs of columns.
// - Long caches are split into chunks over CTAs when the (request, kv head) pairs alone cannot
//   fill the GPU; the chunks' partial results are merged exactly (combine_splits).
// Compaction design: one CTA per cache. A 4-pass radix select (8 bits per pass, shared-memory
// histograms) finds the k-th largest score's key T; then a block-wide scan in position order
// keeps every token above T and the first (k − above) tokens equal to T, and the CTA copies
// their rows with 16-byte loads.
#include <algorithm>
#include <cub/block/block_scan.cuh>

#include "common.cuh"

namespace xring::kernels::cuda {
namespace detail {
namespace {

constexpr int kTile = 64;  // tokens per shared-memory tile
constexpr int kWarps = 4;
constexpr int kMaxGroup = 16;  // query heads per kv head
constexpr int kHeadsPerWarp = kMaxGroup / kWarps;

struct DecodeParams {
  const void* q;
  const void *k, *v;
  const long long *offset, *len;
  void* o;
  float* l;
  float* o_part;  // [chunks][rows][D] when chunked
  float* l_part;
  int heads, kv_heads, chunks;
  long long chunk_len;
  float scale;
};

template <int D>
__host__ __device__ constexpr int row_words() {
  return D / 2 + 1;  // 32-bit words per padded row of 16-bit values
}

template <class T, int D>
__global__ void __launch_bounds__(kWarps * 32) decode_kernel(DecodeParams p) {
  constexpr int W = row_words<D>();
  __shared__ uint32_t k_s[kTile * W];
  __shared__ uint32_t v_s[kTile * W];
  __shared__ float q_s[kMaxGroup][D];

  const int cache = blockIdx.x;  // request * H_kv + kv head (grid.x: up to 2^31 - 1 caches)
  const int request = cache / p.kv_heads, kvh = cache % p.kv_heads;
  const int group = p.heads / p.kv_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const long long len = p.len[cache];
  const long long begin = static_cast<long long>(blockIdx.y) * p.chunk_len;
  const long long end = min_ll(len, begin + p.chunk_len);
  const T* k = static_cast<const T*>(p.k) + p.offset[cache] * D;
  const T* v = static_cast<const T*>(p.v) + p.offset[cache] * D;
  const T* q =
      static_cast<const T*>(p.q) + (static_cast<long long>(request) * p.heads + kvh * group) * D;

  for (int i = threadIdx.x; i < group * D; i += blockDim.x)
    q_s[i / D][i % D] = Storage<T>::to_float(q[i]) * p.scale;

  // Per head this warp owns: running max, sum, and the lane's columns 2·lane + 64·c (+1).
  constexpr int kCols = D / 64;
  float m[kHeadsPerWarp], sum[kHeadsPerWarp], acc[kHeadsPerWarp][kCols][2];
#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    m[j] = -INFINITY;
    sum[j] = 0;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[j][c][0] = acc[j][c][1] = 0;
  }

  for (long long t0 = begin; t0 < end; t0 += kTile) {
    __syncthreads();
    // 16-byte loads from global, 32-bit stores into the padded rows.
    constexpr int kVec = 16 / sizeof(T), kPerRow = D / kVec;
    for (int i = threadIdx.x; i < kTile * kPerRow; i += blockDim.x) {
      const int r = i / kPerRow, c = (i % kPerRow) * kVec;
      uint4 kv4 = make_uint4(0, 0, 0, 0), vv4 = make_uint4(0, 0, 0, 0);
      if (t0 + r < end) {
        kv4 = *reinterpret_cast<const uint4*>(k + (t0 + r) * D + c);
        vv4 = *reinterpret_cast<const uint4*>(v + (t0 + r) * D + c);
      }
      uint32_t* kd = k_s + r * W + c / 2;
      uint32_t* vd = v_s + r * W + c / 2;
      kd[0] = kv4.x, kd[1] = kv4.y, kd[2] = kv4.z, kd[3] = kv4.w;
      vd[0] = vv4.x, vd[1] = vv4.y, vd[2] = vv4.z, vd[3] = vv4.w;
    }
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kHeadsPerWarp; ++j) {
      const int h = warp + j * kWarps;
      if (h >= group) break;
      for (int half = 0; half < kTile / 32; ++half) {
        const int r = half * 32 + lane;
        float s = -INFINITY;
        if (t0 + r < end) {
          s = 0;
          const uint32_t* kr = k_s + r * W;
#pragma unroll 8
          for (int w = 0; w < D / 2; ++w) {
            const uint32_t pair = kr[w];
            const T lo = *reinterpret_cast<const T*>(&pair);
            const T hi = *(reinterpret_cast<const T*>(&pair) + 1);
            s += q_s[h][2 * w] * Storage<T>::to_float(lo) +
                 q_s[h][2 * w + 1] * Storage<T>::to_float(hi);
          }
          s *= kLog2e;
        }
        float tile_max = s;
        for (int off = 16; off > 0; off /= 2)
          tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, off));
        if (tile_max == -INFINITY) continue;  // no token of this half is in range
        const float new_max = fmaxf(m[j], tile_max);
        const float alpha = exp2f(m[j] - new_max);
        const float pr = exp2f(s - new_max);
        float psum = pr;
        for (int off = 16; off > 0; off /= 2) psum += __shfl_xor_sync(0xffffffffu, psum, off);
        sum[j] = sum[j] * alpha + psum;
        m[j] = new_max;
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[j][c][0] *= alpha, acc[j][c][1] *= alpha;
        for (int src = 0; src < 32; ++src) {
          const float pt = __shfl_sync(0xffffffffu, pr, src);
          if (pt == 0) continue;
          const uint32_t* vr = v_s + (half * 32 + src) * W;
#pragma unroll
          for (int c = 0; c < kCols; ++c) {
            const uint32_t pair = vr[lane + 32 * c];
            acc[j][c][0] += pt * Storage<T>::to_float(*reinterpret_cast<const T*>(&pair));
            acc[j][c][1] += pt * Storage<T>::to_float(*(reinterpret_cast<const T*>(&pair) + 1));
          }
        }
      }
    }
  }

#pragma unroll
  for (int j = 0; j < kHeadsPerWarp; ++j) {
    const int h = warp + j * kWarps;
    if (h >= group) break;
    const long long row = static_cast<long long>(request) * p.heads + kvh * group + h;
    const float inv = sum[j] > 0 ? 1.0f / sum[j] : 0.0f;
    const float lse = sum[j] > 0 ? (m[j] + log2f(sum[j])) * kLn2 : -INFINITY;
    const long long rows = static_cast<long long>(gridDim.x) * group;
    if (p.chunks > 1) {
      float* out = p.o_part + (blockIdx.y * rows + row) * D;
#pragma unroll
      for (int c = 0; c < kCols; ++c) {
        out[2 * lane + 64 * c] = acc[j][c][0] * inv;
        out[2 * lane + 64 * c + 1] = acc[j][c][1] * inv;
      }
      if (lane == 0) p.l_part[blockIdx.y * rows + row] = lse;
    } else {
      T* out = static_cast<T*>(p.o) + row * D;
#pragma unroll
      for (int c = 0; c < kCols; ++c)
        *reinterpret_cast<uint32_t*>(out + 2 * lane + 64 * c) =
            Storage<T>::pack(acc[j][c][0] * inv, acc[j][c][1] * inv);
      if (lane == 0) p.l[row] = lse;
    }
  }
}

/// Orderable key of a float: larger float, larger unsigned key; -0 and +0 equal (as ==).
/// Scores must not be NaN (the reference's ordering is undefined for them).
__device__ inline uint32_t order_key(float f) {
  uint32_t u = __float_as_uint(f);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kCompactThreads = 256;

struct CompactParams {
  const float* scores;
  const void *k, *v;
  const long long *offset, *len, *keep, *out_offset;
  void *k_out, *v_out;
  long long* positions;
};

template <class T, int D>
__global__ void __launch_bounds__(kCompactThreads) compact_kernel(CompactParams p) {
  using Scan = cub::BlockScan<int, kCompactThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int hist[256];
  __shared__ uint32_t prefix_s;
  __shared__ long long need_s;
  __shared__ long long kept_before_s, ties_before_s;
  __shared__ int chunk_src[kCompactThreads];
  __shared__ long long chunk_dst[kCompactThreads];

  const int cache = blockIdx.x;
  const long long n = p.len[cache];
  const long long keep = min_ll(p.keep[cache], n);
  const long long base = p.offset[cache];
  const float* scores = p.scores + base;
  if (keep <= 0) return;

  // Radix select: the key of the keep-th largest score, and how many of its ties to keep.
  uint32_t prefix = 0, mask = 0;
  long long need = keep;
  if (keep < n) {
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
      __syncthreads();
      for (long long i = threadIdx.x; i < n; i += blockDim.x) {
        const uint32_t key = order_key(scores[i]);
        if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255], 1);
      }
      __syncthreads();
      if (threadIdx.x == 0) {
        long long remaining = need;
        int digit = 255;
        for (; digit > 0; --digit) {
          if (hist[digit] >= remaining) break;
          remaining -= hist[digit];
        }
        prefix_s = prefix | (static_cast<uint32_t>(digit) << shift);
        need_s = remaining;
      }
      __syncthreads();
      prefix = prefix_s;
      need = need_s;
      mask |= 255u << shift;
    }
  }
  // Keep: key > T, or key == T among the first `need` such tokens (ties to the lower position).
  if (threadIdx.x == 0) kept_before_s = ties_before_s = 0;
  __syncthreads();
  const T* k = static_cast<const T*>(p.k) + base * D;
  const T* v = static_cast<const T*>(p.v) + base * D;
  T* k_out = static_cast<T*>(p.k_out) + p.out_offset[cache] * D;
  T* v_out = static_cast<T*>(p.v_out) + p.out_offset[cache] * D;
  for (long long c0 = 0; c0 < n; c0 += blockDim.x) {
    const long long i = c0 + threadIdx.x;
    int tie = 0, above = 1;
    if (keep < n) {
      const uint32_t key = i < n ? order_key(scores[i]) : 0;
      tie = i < n && key == prefix;
      above = i < n && key > prefix;
    } else {
      above = i < n;
    }
    int tie_rank = 0, ties_in_chunk = 0;
    Scan(scan_storage).ExclusiveSum(tie, tie_rank, ties_in_chunk);
    __syncthreads();
    const int kept = above || (tie && ties_before_s + tie_rank < need);
    int out_rank = 0, kept_in_chunk = 0;
    Scan(scan_storage).ExclusiveSum(kept, out_rank, kept_in_chunk);
    if (kept) {
      chunk_src[out_rank] = threadIdx.x;
      chunk_dst[out_rank] = kept_before_s + out_rank;
      if (p.positions) p.positions[p.out_offset[cache] + kept_before_s + out_rank] = i;
    }
    __syncthreads();
    constexpr int kVec = 16 / sizeof(T), kPerRow = D / kVec;
    for (int e = threadIdx.x; e < kept_in_chunk * kPerRow; e += blockDim.x) {
      const int r = e / kPerRow, c = (e % kPerRow) * kVec;
      const long long src = c0 + chunk_src[r], dst = chunk_dst[r];
      *reinterpret_cast<uint4*>(k_out + dst * D + c) =
          *reinterpret_cast<const uint4*>(k + src * D + c);
      *reinterpret_cast<uint4*>(v_out + dst * D + c) =
          *reinterpret_cast<const uint4*>(v + src * D + c);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      kept_before_s += kept_in_chunk;
      ties_before_s += ties_in_chunk;
    }
    __syncthreads();
  }
}

template <class T, int D>
void launch_decode(const DecodeArgs& a) {
  const Geometry& g = a.geometry;
  DecodeParams p{};
  p.q = a.q;
  p.k = a.caches.k;
  p.v = a.caches.v;
  p.offset = a.caches.offset;
  p.len = a.caches.len;
  p.o = a.o;
  p.l = a.l;
  p.heads = g.heads;
  p.kv_heads = g.kv_heads;
  p.scale = 1.0f / std::sqrt(static_cast<float>(D));
  const long long caches = static_cast<long long>(a.requests) * g.kv_heads;
  const long long target = 2LL * multiprocessors() * 4;  // CTAs are small: several per SM
  long long chunks = 1;
  if (caches < target && a.caches.max_len > 4 * kTile)
    chunks = std::min<long long>((target + caches - 1) / caches,
                                 (a.caches.max_len + 4 * kTile - 1) / (4 * kTile));
  p.chunk_len = std::max<long long>(
      kTile, ((a.caches.max_len + chunks - 1) / chunks + kTile - 1) / kTile * kTile);
  p.chunks =
      static_cast<int>(std::max<long long>(1, (a.caches.max_len + p.chunk_len - 1) / p.chunk_len));
  const long long rows = static_cast<long long>(a.requests) * g.heads;
  if (p.chunks > 1) {
    keep_async_pool_memory();
    XRING_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p.o_part),
                                     sizeof(float) * p.chunks * rows * D, a.stream));
    XRING_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p.l_part),
                                     sizeof(float) * p.chunks * rows, a.stream));
  }
  // Caches on grid.x (its limit is 2^31 - 1; requests x kv heads can pass 65535), chunks on
  // grid.y (at most a few thousand: chunks only split caches when they are fewer than the SMs).
  const dim3 grid(static_cast<unsigned>(caches), static_cast<unsigned>(p.chunks));
  decode_kernel<T, D><<<grid, kWarps * 32, 0, a.stream>>>(p);
  XRING_CUDA_CHECK_LAUNCH();
  if (p.chunks > 1) {
    combine_splits(p.o_part, p.l_part, p.chunks, rows, D, a.o, false, a.l, a.dtype, a.stream);
    XRING_CUDA_CHECK(cudaFreeAsync(p.o_part, a.stream));
    XRING_CUDA_CHECK(cudaFreeAsync(p.l_part, a.stream));
  }
}

}  // namespace
}  // namespace detail

void decode_attention(const DecodeArgs& a) {
  using namespace detail;
  const Geometry& g = a.geometry;
  if (g.head_dim != 64 && g.head_dim != 128) unsupported("head_dim", std::to_string(g.head_dim));
  if (g.heads < 1 || g.kv_heads < 1 || g.heads % g.kv_heads != 0 ||
      g.heads / g.kv_heads > kMaxGroup)
    unsupported("heads/kv_heads", std::to_string(g.heads) + "/" + std::to_string(g.kv_heads) +
                                      " (decode takes at most " + std::to_string(kMaxGroup) +
                                      " query heads per kv head)");
  if (!a.q || !a.caches.k || !a.caches.v || !a.caches.offset || !a.caches.len || !a.o || !a.l)
    throw Error(
        "decode_attention: q, the caches, offsets, lengths, o and l must be device pointers");
  if (a.requests <= 0) return;
  XRING_RANGE(std::string("decode_attention ") + to_string(a.dtype) + " " +
              std::to_string(a.requests) + " requests");
  const bool d64 = g.head_dim == 64;
  if (a.dtype == DType::bf16)
    d64 ? launch_decode<__nv_bfloat16, 64>(a) : launch_decode<__nv_bfloat16, 128>(a);
  else
    d64 ? launch_decode<__half, 64>(a) : launch_decode<__half, 128>(a);
}

void compact_caches(const CompactArgs& a) {
  using namespace detail;
  if (a.head_dim != 64 && a.head_dim != 128) unsupported("head_dim", std::to_string(a.head_dim));
  if (!a.scores || !a.in.k || !a.in.v || !a.in.offset || !a.in.len || !a.keep || !a.out_offset ||
      !a.k_out || !a.v_out)
    throw Error(
        "compact_caches: scores, caches, offsets, lengths, keep and outputs must be device "
        "pointers");
  if (a.caches <= 0) return;
  XRING_RANGE("compact_caches " + std::to_string(a.caches) + " caches");
  CompactParams p{a.scores, a.in.k,       a.in.v,  a.in.offset, a.in.len,
                  a.keep,   a.out_offset, a.k_out, a.v_out,     a.positions};
  const bool d64 = a.head_dim == 64;
  const bool bf16 = a.dtype == DType::bf16;
  const unsigned grid = static_cast<unsigned>(a.caches);
  if (bf16 && d64) compact_kernel<__nv_bfloat16, 64><<<grid, kCompactThreads, 0, a.stream>>>(p);
  if (bf16 && !d64) compact_kernel<__nv_bfloat16, 128><<<grid, kCompactThreads, 0, a.stream>>>(p);
  if (!bf16 && d64) compact_kernel<__half, 64><<<grid, kCompactThreads, 0, a.stream>>>(p);
  if (!bf16 && !d64) compact_kernel<__half, 128><<<grid, kCompactThreads, 0, a.stream>>>(p);
  XRING_CUDA_CHECK_LAUNCH();
}

}  // namespace xring::kernels::cuda
