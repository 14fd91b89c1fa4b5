// Times xring's CUDA kernels on the shapes of the kernel issue and prints one JSON object per
// line: {"kernel", "shape", "ms", "tflops" | "gbps", ...}. bench/kernel_bench.sh runs it beside
// PyTorch SDPA (bench/sdpa_peer.py) with the same method and writes the comparison table.
//
// Method (the same in both programs): inputs uniform in [-1, 1); 3 warm-up launches; then 20
// timed launches, each between two CUDA events on the stream; the median is reported.
// FLOPs: 4·B·H·S_Q·S_KV·d forward (half of it causal). Decode: K/V bytes read / time, beside the
// device-to-device copy bandwidth measured here the same way (read + write bytes / time).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "xring/kernels/cuda.hpp"
#include "xring/planner/error.hpp"

namespace gpu = xring::kernels::cuda;

namespace {

#define CHECK(call)                                                                      \
  do {                                                                                   \
    cudaError_t s_ = (call);                                                             \
    if (s_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(s_)); \
      std::exit(3);                                                                      \
    }                                                                                    \
  } while (0)

__global__ void fill_uniform(__nv_bfloat16* x, long long n, unsigned seed) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 16;
    h *= 2246822519u;
    h ^= h >> 13;
    x[i] = __float2bfloat16((h & 0xffffff) / float(0x800000) - 1.0f);
  }
}

__nv_bfloat16* random_bf16(long long n, unsigned seed) {
  __nv_bfloat16* p = nullptr;
  CHECK(cudaMalloc(&p, std::max<long long>(n, 1) * 2));
  fill_uniform<<<1024, 256>>>(p, n, seed);
  CHECK(cudaGetLastError());
  return p;
}

template <class F>
double median_ms(F&& launch, int warmup = 3, int runs = 20) {
  cudaEvent_t a, b;
  CHECK(cudaEventCreate(&a));
  CHECK(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) launch();
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    CHECK(cudaEventRecord(a));
    launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float t = 0;
    CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  CHECK(cudaEventDestroy(a));
  CHECK(cudaEventDestroy(b));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// One forward shape, each kernel variant in turn ("xring" = baseline, "xring pipelined").
void forward_point(long long s_q, long long s_kv, bool causal, gpu::ForwardKernel kernel) {
  const int B = 1, H = 32, Hkv = 8, d = 128;
  auto* q = random_bf16(B * H * s_q * d, 1);
  auto* k = random_bf16(B * Hkv * s_kv * d, 2);
  auto* v = random_bf16(B * Hkv * s_kv * d, 3);
  __nv_bfloat16* o = nullptr;
  float* l = nullptr;
  CHECK(cudaMalloc(&o, B * H * s_q * d * 2));
  CHECK(cudaMalloc(&l, B * H * s_q * 4));
  gpu::ForwardArgs a;
  a.dtype = gpu::DType::bf16;
  a.geometry = {B, H, Hkv, d};
  a.q = q;
  a.k = k;
  a.v = v;
  a.n_q = s_q;
  a.n_kv = s_kv;
  a.o = o;
  a.l = l;
  if (causal) a.mask.kind = gpu::DeviceMask::Kind::causal;
  a.kernel = kernel;
  const char* label = kernel == gpu::ForwardKernel::pipelined ? "xring pipelined" : "xring";
  const double ms = median_ms([&] { gpu::attention_forward(a); });
  const double flops = 4.0 * B * H * s_q * s_kv * d * (causal ? 0.5 : 1.0);
  std::printf(
      "{\"kernel\": \"%s\", \"shape\": \"%lldx%lld%s\", \"s_q\": %lld, \"s_kv\": %lld, "
      "\"causal\": %s, \"splits\": %d, \"ms\": %.4f, \"tflops\": %.1f}\n",
      label, s_q, s_kv, causal ? " causal" : "", s_q, s_kv, causal ? "true" : "false",
      gpu::auto_kv_splits(a), ms, flops / (ms * 1e-3) / 1e12);
  std::fflush(stdout);
  CHECK(cudaFree(q));
  CHECK(cudaFree(k));
  CHECK(cudaFree(v));
  CHECK(cudaFree(o));
  CHECK(cudaFree(l));
}

void copy_bandwidth() {
  const long long bytes = 1LL << 30;
  void *a = nullptr, *b = nullptr;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  const double ms = median_ms([&] { CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); });
  std::printf("{\"kernel\": \"cudaMemcpy d2d\", \"bytes\": %lld, \"ms\": %.4f, \"gbps\": %.1f}\n",
              bytes, ms, 2.0 * bytes / (ms * 1e-3) / 1e9);
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
}

/// Decode over per-head budgets from a skewed (lognormal, sigma 1) profile: 64 requests,
/// 32 query heads / 8 kv heads, d 128, 4096 tokens per head on average.
void decode_point() {
  const int requests = 64, H = 32, Hkv = 8, d = 128;
  const double mean_budget = 4096;
  std::mt19937_64 rng(70);
  std::lognormal_distribution<double> skew(0.0, 1.0);
  std::vector<double> share(Hkv);
  double total_share = 0;
  for (double& s : share) total_share += (s = skew(rng));
  std::vector<long long> len, offset;
  long long total = 0, max_len = 0;
  for (int r = 0; r < requests; ++r)
    for (int h = 0; h < Hkv; ++h) {
      const long long n = std::llround(mean_budget * Hkv * share[h] / total_share);
      offset.push_back(total);
      len.push_back(n);
      total += n;
      max_len = std::max(max_len, n);
    }
  auto* k = random_bf16(total * d, 4);
  auto* v = random_bf16(total * d, 5);
  auto* q = random_bf16(requests * H * d, 6);
  long long *doff = nullptr, *dlen = nullptr;
  CHECK(cudaMalloc(&doff, offset.size() * 8));
  CHECK(cudaMalloc(&dlen, len.size() * 8));
  CHECK(cudaMemcpy(doff, offset.data(), offset.size() * 8, cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(dlen, len.data(), len.size() * 8, cudaMemcpyHostToDevice));
  __nv_bfloat16* o = nullptr;
  float* l = nullptr;
  CHECK(cudaMalloc(&o, requests * H * d * 2));
  CHECK(cudaMalloc(&l, requests * H * 4));
  gpu::DecodeArgs a;
  a.requests = requests;
  a.geometry = {1, H, Hkv, d};
  a.q = q;
  a.caches = {k, v, doff, dlen, max_len};
  a.o = o;
  a.l = l;
  const double ms = median_ms([&] { gpu::decode_attention(a); });
  const double bytes = 2.0 * total * d * 2;
  std::printf(
      "{\"kernel\": \"xring decode\", \"requests\": %d, \"kv_tokens\": %lld, \"max_len\": %lld, "
      "\"ms\": %.4f, \"gbps\": %.1f}\n",
      requests, total, max_len, ms, bytes / (ms * 1e-3) / 1e9);
  CHECK(cudaFree(k));
  CHECK(cudaFree(v));
  CHECK(cudaFree(q));
  CHECK(cudaFree(doff));
  CHECK(cudaFree(dlen));
  CHECK(cudaFree(o));
  CHECK(cudaFree(l));
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  std::string why;
  if (!gpu::device_available(&why)) {
    std::fprintf(stderr, "bench_kernels: %s\n", why.c_str());
    return 3;
  }
  try {
    cudaDeviceProp prop{};
    CHECK(cudaGetDeviceProperties(&prop, 0));
    int driver = 0;
    CHECK(cudaDriverGetVersion(&driver));
    std::printf("{\"device\": \"%s\", \"sms\": %d, \"driver\": %d}\n", prop.name,
                prop.multiProcessorCount, driver);
    copy_bandwidth();
    const std::vector<long long> s_q = quick ? std::vector<long long>{512} : std::vector<long long>{512, 2048, 8192};
    const std::vector<long long> s_kv = quick ? std::vector<long long>{16384} : std::vector<long long>{16384, 65536, 262144};
    for (gpu::ForwardKernel kernel : {gpu::ForwardKernel::baseline, gpu::ForwardKernel::pipelined}) {
      for (long long q : s_q)
        for (long long kv : s_kv) forward_point(q, kv, false, kernel);
      forward_point(8192, 8192, true, kernel);
    }
    decode_point();
  } catch (const xring::Error& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 3;
  }
  return 0;
}
