// `xring profile` on the cpu backend: the reference kernels' rates over a grid of shapes, the
// memory stream, decode bandwidth and the thread communicator's transfer cost. The cuda
// backend arrives with the CUDA kernels; until then it says so (exit 3).
#include "xring/executor/profile.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "xring/executor/communicator.hpp"
#include "xring/kernels/reference.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/provenance.hpp"

namespace xring::executor {
namespace {

using Clock = std::chrono::steady_clock;

/// Median wall time of `body` over `repeats` runs, after one untimed warm-up run.
template <class Body>
double median_seconds(int repeats, Body&& body) {
  body();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto start = Clock::now();
    body();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random_values(size_t n, uint64_t seed, kernels::Storage storage) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = kernels::round_to(storage, u(rng));
  return v;
}

kernels::Storage storage_of(DType d) {
  return d == DType::fp32   ? kernels::Storage::fp32
         : d == DType::fp16 ? kernels::Storage::fp16
                            : kernels::Storage::bf16;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown CPU";
}

/// One attention point on one thread: forward, or backward (row terms plus the block backward).
AttentionPoint measure_attention(const ProfileGrid& g, Pass pass, DType dtype, int d, long long s_q,
                                 long long s_kv, int repeats) {
  const kernels::Storage storage = storage_of(dtype);
  const kernels::Shape shape{g.batch, g.heads, g.kv_heads, d};
  const size_t nq = static_cast<size_t>(g.batch) * g.heads * s_q * d;
  const size_t nkv = static_cast<size_t>(g.batch) * g.kv_heads * s_kv * d;
  const size_t rows = static_cast<size_t>(g.batch) * g.heads * s_q;
  std::vector<float> q = random_values(nq, 1, storage), k = random_values(nkv, 2, storage),
                     v = random_values(nkv, 3, storage), d_o = random_values(nq, 4, storage);
  std::vector<float> o(nq), l(rows), row_terms(rows), dq(nq), dk(nkv), dv(nkv);
  const kernels::Mask none;
  const kernels::Rows qr{0, s_q}, kr{0, s_kv};
  kernels::attention_forward(q.data(), k.data(), v.data(), shape, qr, kr, none, o.data(), l.data());
  double seconds;
  if (pass == Pass::forward) {
    seconds = median_seconds(repeats, [&] {
      kernels::attention_forward(q.data(), k.data(), v.data(), shape, qr, kr, none, o.data(),
                                 l.data());
    });
  } else {
    seconds = median_seconds(repeats, [&] {
      kernels::backward_row_terms(o.data(), d_o.data(), static_cast<long long>(rows), d,
                                  row_terms.data());
      kernels::attention_backward(q.data(), k.data(), v.data(), l.data(), row_terms.data(),
                                  d_o.data(), shape, qr, kr, none, dq.data(), dk.data(), dv.data());
    });
  }
  return ProfileJob{pass, dtype, d, s_q, s_kv}.point(g, seconds);
}

/// Decode attention over skewed per-head caches; bytes counted as the planner counts them
/// (2 per element for 16-bit K/V, whatever the CPU holds them in).
double measure_decode(int repeats) {
  const int heads = 32, kv_heads = 8, d = 128;
  const std::vector<long long> len = {16384, 8192, 4096, 4096, 2048, 2048, 1024, 512};
  std::vector<std::vector<float>> k, v;
  std::vector<const float*> kp, vp;
  double elements = 0;
  for (int h = 0; h < kv_heads; ++h) {
    k.push_back(random_values(len[h] * d, 10 + h, kernels::Storage::bf16));
    v.push_back(random_values(len[h] * d, 20 + h, kernels::Storage::bf16));
    kp.push_back(k.back().data());
    vp.push_back(v.back().data());
    elements += 2.0 * len[h] * d;
  }
  std::vector<float> q = random_values(heads * d, 5, kernels::Storage::bf16);
  std::vector<float> o(heads * d), l(heads);
  const kernels::Shape shape{1, heads, kv_heads, d};
  double seconds = median_seconds(repeats, [&] {
    kernels::decode_attention(q.data(), kp, vp, len, shape, o.data(), l.data());
  });
  return elements * 2 / seconds;
}

/// A plain memory stream: bytes read plus bytes written per second by memcpy.
double measure_stream(int repeats) {
  const size_t n = size_t{64} << 20;
  std::vector<char> a(n, 1), b(n, 2);
  double seconds = median_seconds(repeats, [&] { std::memcpy(b.data(), a.data(), n); });
  return 2.0 * n / seconds;
}

/// A ring transfer on the thread backend as the algorithms do it: pack a block into a fresh
/// message, send it to the next rank, receive the previous rank's. Two ranks; the small message
/// gives the fixed cost, the large one the rate.
std::pair<double, double> measure_transfer(int repeats) {
  auto exchange = [](size_t floats, int rounds) {
    std::vector<float> block(floats, 1.0f);
    auto start = Clock::now();
    run_on_threads(2, [&](Communicator& comm) {
      for (int i = 0; i < rounds; ++i) {
        comm.send(1 - comm.rank(), std::vector<float>(block.begin(), block.end()), i);
        comm.recv(1 - comm.rank(), i);
      }
    });
    return std::chrono::duration<double>(Clock::now() - start).count() / rounds;
  };
  const size_t small = 16, large = size_t{4} << 20;
  double t_small = 1e30, t_large = 1e30;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    t_small = std::min(t_small, exchange(small, 200));
    t_large = std::min(t_large, exchange(large, 4));
  }
  const double bytes = large * sizeof(float);
  const double rate = bytes / std::max(t_large - t_small, 1e-9);
  return {rate, t_small};
}

}  // namespace

ProfileGrid profile_grid(const std::string& backend, bool quick) {
  ProfileGrid g;
  if (backend == "cpu") {
    g.heads = 4;
    g.kv_heads = 2;
    g.s_q = quick ? std::vector<long long>{16, 256} : std::vector<long long>{16, 64, 256};
    // Up to 16K keys: past the caches a small query block is bound by reading K and V.
    g.s_kv = quick ? std::vector<long long>{256, 4096, 16384}
                   : std::vector<long long>{256, 1024, 4096, 16384};
    g.backward_s_q = {16, 256};
    g.backward_s_kv = quick ? std::vector<long long>{1024} : std::vector<long long>{256, 4096};
    g.dtypes = quick ? std::vector{DType::bf16} : std::vector{DType::bf16, DType::fp16};
    g.head_dims = quick ? std::vector{64} : std::vector{64, 128};
  } else {
    g.heads = 32;
    g.kv_heads = 8;
    g.s_q =
        quick ? std::vector<long long>{512, 2048} : std::vector<long long>{128, 512, 2048, 8192};
    g.s_kv = quick ? std::vector<long long>{16384, 65536}
                   : std::vector<long long>{4096, 16384, 65536, 262144};
    // The backward kernel is SIMT for now: a small grid keeps the profile to minutes.
    g.backward_s_q = quick ? std::vector<long long>{512} : std::vector<long long>{256, 1024};
    g.backward_s_kv = quick ? std::vector<long long>{4096} : std::vector<long long>{2048, 8192};
    g.dtypes = quick ? std::vector{DType::bf16} : std::vector{DType::bf16, DType::fp16};
    g.head_dims = quick ? std::vector{128} : std::vector{64, 128};
  }
  return g;
}

std::string ProfileJob::name() const {
  return to_string(pass) + " " + to_string(dtype) + " d=" + std::to_string(head_dim) + " " +
         std::to_string(s_q) + "x" + std::to_string(s_kv);
}

AttentionPoint ProfileJob::point(const ProfileGrid& g, double seconds) const {
  AttentionPoint p;
  p.pass = pass;
  p.dtype = dtype;
  p.head_dim = head_dim;
  p.batch = g.batch;
  p.heads = g.heads;
  p.kv_heads = g.kv_heads;
  p.s_q = s_q;
  p.s_kv = s_kv;
  p.flop_per_s = 4.0 * g.batch * g.heads * s_q * s_kv * head_dim *
                 (pass == Pass::backward ? kBackwardFlopsFactor : 1.0) / std::max(seconds, 1e-12);
  return p;
}

std::vector<ProfileJob> profile_jobs(const ProfileOptions& options, const ProfileGrid& g) {
  const auto& dtypes = options.dtypes.empty() ? g.dtypes : options.dtypes;
  const auto& dims = options.head_dims.empty() ? g.head_dims : options.head_dims;
  std::vector<ProfileJob> jobs;
  for (DType t : dtypes)
    for (int d : dims) {
      for (long long sq : g.s_q)
        for (long long skv : g.s_kv) jobs.push_back({Pass::forward, t, d, sq, skv});
      for (long long sq : g.backward_s_q)
        for (long long skv : g.backward_s_kv) jobs.push_back({Pass::backward, t, d, sq, skv});
    }
  return jobs;
}

DeviceProfile profile_device(const ProfileOptions& options) {
  if (options.backend == "cuda") {
#if defined(XRING_EXECUTOR_CUDA)
    return profile_cuda(options);
#else
    throw Error(
        "xring profile --backend cuda: this build has no CUDA kernels (configured without "
        "CUDA); use --backend cpu, or rebuild where nvcc is found",
        ExitCode::runtime);
#endif
  }
  if (options.backend != "cpu")
    throw Error("xring profile --backend " + options.backend + ": unknown backend (cpu, cuda)");
  const bool quick = options.quick;
  const int repeats = quick ? 1 : 3;
  const ProfileGrid g = profile_grid(options.backend, quick);
  const std::vector<ProfileJob> jobs = profile_jobs(options, g);
  const size_t total = jobs.size() + 3;
  size_t done = 0;
  auto step = [&](const std::string& what) {
    if (options.progress) options.progress(what, done, total);
  };

  DeviceProfile p;
  p.device = cpu_model();
  p.backend = "cpu";
  p.compute_units = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  p.clocks = {{"hardware_threads", p.compute_units},
              {"note", "each rank is one thread running the reference kernels"}};
  p.driver = "";
  p.date = utc_now();
  p.xring_version = xring_version();
  p.quick = quick;
  for (const ProfileJob& j : jobs) {
    step(j.name());
    p.attention.push_back(
        measure_attention(g, j.pass, j.dtype, j.head_dim, j.s_q, j.s_kv, repeats));
    ++done;
  }
  step("memory stream");
  p.hbm_bytes_per_s = measure_stream(quick ? 3 : 7);
  ++done;
  step("decode attention");
  p.decode_bytes_per_s = measure_decode(quick ? 1 : 3);
  ++done;
  step("thread transfers");
  auto [rate, latency] = measure_transfer(quick ? 1 : 3);
  p.copy_bytes_per_s = rate;
  p.copy_latency_s = latency;
  // Fixed costs on this backend: a ring step's handoff is one thread transfer's fixed cost; a
  // "kernel" is one reference-kernel call, measured at one query over one key (no work to speak
  // of).
  p.ring_step_sync_s = latency;
  const AttentionPoint tiny = measure_attention(g, Pass::forward, DType::fp32, 8, 1, 1, repeats);
  p.kernel_launch_s = 4.0 * g.batch * g.heads * 8 / std::max(tiny.flop_per_s, 1e-30);
  ++done;
  step("done");
  return p;
}

}  // namespace xring::executor
