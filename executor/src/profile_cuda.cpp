// `xring profile --backend cuda`: the CUDA kernels' rates over a grid of shapes, the memory
// stream and device-to-device copy (what the emulated ring's transfers use), and decode
// bandwidth, each timed with CUDA events (warm-up, median). Built only with CUDA.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "xring/executor/profile.hpp"
#include "xring/kernels/cuda.hpp"
#include "xring/kernels/cuda_memory.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::executor {
namespace {

namespace gpu = kernels::cuda;
using gpu::DeviceBuffer;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string("xring profile: ") + what + ": " + cudaGetErrorString(status),
                ExitCode::runtime);
}

template <class Launch>
double median_seconds(int repeats, Launch&& launch) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  launch();  // warm-up
  std::vector<float> ms;
  for (int i = 0; i < repeats; ++i) {
    check(cudaEventRecord(a), "cudaEventRecord");
    launch();
    check(cudaEventRecord(b), "cudaEventRecord");
    check(cudaEventSynchronize(b), "a timed kernel");
    float t = 0;
    check(cudaEventElapsedTime(&t, a, b), "cudaEventElapsedTime");
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2] * 1e-3;
}

gpu::DType gpu_dtype(DType d) {
  if (d == DType::fp32)
    throw Error(
        "xring profile --backend cuda: fp32 attention is not supported by the CUDA "
        "kernels; use --dtype bf16 or fp16");
  return d == DType::fp16 ? gpu::DType::fp16 : gpu::DType::bf16;
}

AttentionPoint measure(const ProfileGrid& g, Pass pass, DType dtype, int d, long long s_q,
                       long long s_kv, int repeats) {
  const size_t q_elems = size_t(g.batch) * g.heads * s_q * d;
  const size_t kv_elems = size_t(g.batch) * g.kv_heads * s_kv * d;
  const size_t rows = size_t(g.batch) * g.heads * s_q;
  DeviceBuffer q(q_elems * 2), k(kv_elems * 2), v(kv_elems * 2), o(q_elems * 2), l(rows * 4);
  double seconds = 0;
  if (pass == Pass::forward) {
    gpu::ForwardArgs a;
    a.dtype = gpu_dtype(dtype);
    a.geometry = {g.batch, g.heads, g.kv_heads, d};
    a.q = q.get();
    a.k = k.get();
    a.v = v.get();
    a.n_q = s_q;
    a.n_kv = s_kv;
    a.o = o.get();
    a.l = static_cast<float*>(l.get());
    seconds = median_seconds(repeats, [&] { gpu::attention_forward(a); });
  } else {
    DeviceBuffer d_o(q_elems * 2), terms(rows * 4), dq(q_elems * 4), dk(kv_elems * 4),
        dv(kv_elems * 4);
    gpu::BackwardArgs a;
    a.dtype = gpu_dtype(dtype);
    a.geometry = {g.batch, g.heads, g.kv_heads, d};
    a.q = q.get();
    a.k = k.get();
    a.v = v.get();
    a.o = o.get();
    a.d_o = d_o.get();
    a.l = static_cast<float*>(l.get());
    a.row_terms = static_cast<float*>(terms.get());
    a.n_q = s_q;
    a.n_kv = s_kv;
    a.dq = static_cast<float*>(dq.get());
    a.dk = static_cast<float*>(dk.get());
    a.dv = static_cast<float*>(dv.get());
    seconds = median_seconds(repeats, [&] {
      gpu::backward_row_terms(a.o, a.d_o, a.dtype, static_cast<long long>(rows), d,
                              static_cast<float*>(terms.get()));
      gpu::attention_backward(a);
    });
  }
  return ProfileJob{pass, dtype, d, s_q, s_kv}.point(g, seconds);
}

/// Device-to-device copies: the rate of a large copy (bytes read + written) and the fixed cost
/// of a small one.
std::pair<double, double> measure_copy(int repeats) {
  const size_t large = size_t{1} << 30, small = 4096;
  DeviceBuffer a(large), b(large);
  const double t_large = median_seconds(repeats, [&] {
    check(cudaMemcpyAsync(b.get(), a.get(), large, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  const double t_small = median_seconds(repeats * 5, [&] {
    check(cudaMemcpyAsync(b.get(), a.get(), small, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
  });
  return {2.0 * large / t_large, t_small};
}

/// Decode over skewed per-head budgets (lognormal, sigma 1): K/V bytes read per second.
double measure_decode(DType dtype, int repeats) {
  const int requests = 64, heads = 32, kv_heads = 8, d = 128;
  std::mt19937_64 rng(70);
  std::lognormal_distribution<double> skew(0.0, 1.0);
  std::vector<double> share(kv_heads);
  double sum = 0;
  for (double& s : share) sum += (s = skew(rng));
  std::vector<long long> len, offset;
  long long total = 0, longest = 0;
  for (int r = 0; r < requests; ++r)
    for (int h = 0; h < kv_heads; ++h) {
      const long long n = std::llround(4096.0 * kv_heads * share[h] / sum);
      offset.push_back(total);
      len.push_back(n);
      total += n;
      longest = std::max(longest, n);
    }
  DeviceBuffer k(size_t(total) * d * 2), v(size_t(total) * d * 2),
      q(size_t(requests) * heads * d * 2), o(size_t(requests) * heads * d * 2),
      l(size_t(requests) * heads * 4), doff(offset.size() * 8), dlen(len.size() * 8);
  check(cudaMemcpy(doff.get(), offset.data(), offset.size() * 8, cudaMemcpyHostToDevice), "copy");
  check(cudaMemcpy(dlen.get(), len.data(), len.size() * 8, cudaMemcpyHostToDevice), "copy");
  gpu::DecodeArgs a;
  a.dtype = gpu_dtype(dtype);
  a.requests = requests;
  a.geometry = {1, heads, kv_heads, d};
  a.q = q.get();
  a.caches = {k.get(), v.get(), static_cast<const long long*>(doff.get()),
              static_cast<const long long*>(dlen.get()), longest};
  a.o = o.get();
  a.l = static_cast<float*>(l.get());
  const double seconds = median_seconds(repeats, [&] { gpu::decode_attention(a); });
  return 2.0 * total * d * 2 / seconds;
}

}  // namespace

DeviceProfile profile_cuda(const ProfileOptions& options) {
  std::string why;
  if (!gpu::device_available(&why))
    throw Error("xring profile --backend cuda: " + why, ExitCode::runtime);
  const bool quick = options.quick;
  const int repeats = quick ? 5 : 15;
  const ProfileGrid g = profile_grid("cuda", quick);
  const std::vector<ProfileJob> jobs = profile_jobs(options, g);

  DeviceProfile p;
  int device = 0, driver = 0, clock_khz = 0, mem_clock_khz = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device);
  cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, device);
  p.device = prop.name;
  p.backend = "cuda";
  p.driver = std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10);
  p.compute_units = prop.multiProcessorCount;
  p.clocks = {
      {"sm_clock_mhz", clock_khz / 1000},
      {"memory_clock_mhz", mem_clock_khz / 1000},
      {"memory_bytes", static_cast<double>(prop.totalGlobalMem)},
      {"compute_capability", std::to_string(prop.major) + "." + std::to_string(prop.minor)}};
  p.date = utc_now();
  p.xring_version = xring_version();
  p.quick = quick;

  const size_t total = jobs.size() + 2;
  size_t done = 0;
  auto step = [&](const std::string& what) {
    if (options.progress) options.progress(what, done, total);
  };
  for (const ProfileJob& j : jobs) {
    step(j.name());
    const int n = j.pass == Pass::backward ? 3 : repeats;  // the SIMT backward is slow
    p.attention.push_back(measure(g, j.pass, j.dtype, j.head_dim, j.s_q, j.s_kv, n));
    ++done;
  }
  step("device copies");
  auto [rate, latency] = measure_copy(repeats);
  p.hbm_bytes_per_s = rate;
  p.copy_bytes_per_s = rate / 2;  // a transfer of N bytes reads N and writes N
  p.copy_latency_s = latency;
  ++done;
  step("decode attention");
  p.decode_bytes_per_s =
      measure_decode(options.dtypes.empty() ? g.dtypes.front() : options.dtypes.front(), repeats);
  ++done;
  step("done");
  return p;
}

}  // namespace xring::executor
