// The CUDA kernels against the CPU references on the same rounded inputs, over many shapes
// (lengths that are not multiples of the tiles, empty budgets, forced KV splits, every mask),
// fp16 and bf16. Tests skip with the reason where no GPU exists; the argument checks run
// everywhere.
//
// Tolerances (per element, against the reference computed in fp32 on the same inputs):
// - forward O: rel·max|O_ref| + one storage ulp of the element, rel = 2e-3 (fp16), 8e-3
//   (bf16): P is rounded to the storage type before P·V, as in every flash kernel;
// - L, the merge, decode, D and the backward (fp32 arithmetic in a different order):
//   1e-4·max(1, |ref|) for L, 1e-4·max|ref| (+ ulp for stored outputs) for the rest;
// - compaction: exact (same positions, bit-identical rows).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "xring/kernels/cuda.hpp"
#include "xring/kernels/reference.hpp"
#include "xring/planner/error.hpp"

namespace xring::kernels {
namespace {

namespace gpu = xring::kernels::cuda;

#define REQUIRE_GPU()                                      \
  do {                                                     \
    std::string why;                                       \
    if (!gpu::device_available(&why)) GTEST_SKIP() << why; \
  } while (0)

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

Storage storage_of(gpu::DType d) { return d == gpu::DType::fp16 ? Storage::fp16 : Storage::bf16; }

uint16_t to_bits(gpu::DType d, float x) {
  if (d == gpu::DType::fp16) return __half_as_ushort(__float2half_rn(x));
  uint32_t bits;
  const float r = round_to(Storage::bf16, x);
  std::memcpy(&bits, &r, 4);
  return static_cast<uint16_t>(bits >> 16);
}

float from_bits(gpu::DType d, uint16_t b) {
  if (d == gpu::DType::fp16) return __half2float(__ushort_as_half(b));
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &bits, 4);
  return x;
}

/// A device buffer that frees itself.
class Buffer {
 public:
  explicit Buffer(size_t bytes) : bytes_(std::max<size_t>(bytes, 16)) {
    if (cudaMalloc(&ptr_, bytes_) != cudaSuccess) throw std::runtime_error("cudaMalloc failed");
    cudaMemset(ptr_, 0, bytes_);
  }
  ~Buffer() { cudaFree(ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* get() const { return ptr_; }
  float* f() const { return static_cast<float*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

/// Seeded values in [-1, 1), rounded to the storage type.
std::vector<float> values(size_t n, uint64_t seed, Storage s, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = round_to(s, scale * u(rng));
  return v;
}

std::unique_ptr<Buffer> upload_storage(const std::vector<float>& v, gpu::DType d) {
  std::vector<uint16_t> bits(v.size());
  for (size_t i = 0; i < v.size(); ++i) bits[i] = to_bits(d, v[i]);
  auto b = std::make_unique<Buffer>(bits.size() * 2);
  cudaMemcpy(b->get(), bits.data(), bits.size() * 2, cudaMemcpyHostToDevice);
  return b;
}

template <class T>
std::unique_ptr<Buffer> upload(const std::vector<T>& v) {
  auto b = std::make_unique<Buffer>(v.size() * sizeof(T));
  cudaMemcpy(b->get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  return b;
}

std::vector<float> download_f32(const Buffer& b, size_t n) {
  std::vector<float> v(n);
  cudaMemcpy(v.data(), b.get(), n * 4, cudaMemcpyDeviceToHost);
  return v;
}

std::vector<float> download_storage(const Buffer& b, size_t n, gpu::DType d) {
  std::vector<uint16_t> bits(n);
  cudaMemcpy(bits.data(), b.get(), n * 2, cudaMemcpyDeviceToHost);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = from_bits(d, bits[i]);
  return v;
}

/// Largest |got − want| / allowed over the elements; ≤ 1 passes. -inf must match exactly.
double worst_ratio(const std::vector<float>& got, const std::vector<float>& want, double rel,
                   Storage stored, bool per_element_scale = false) {
  double scale = 0;
  for (float x : want)
    if (std::isfinite(x)) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(want[i]) || !std::isfinite(got[i])) {
      if (got[i] != want[i]) return INFINITY;
      continue;
    }
    const double base = per_element_scale ? std::max(1.0, std::fabs(static_cast<double>(want[i])))
                                          : std::max(scale, 1e-30);
    const double allowed = rel * base + (stored == Storage::fp32 ? 0.0 : ulp(stored, want[i]));
    worst = std::max(worst, std::fabs(static_cast<double>(got[i]) - want[i]) / allowed);
  }
  return worst;
}

struct ForwardCase {
  int batch, heads, kv_heads, d;
  long long n_q, n_kv;
  Mask::Kind mask = Mask::Kind::none;
  int splits = 0;
  long long q_first = 0, kv_first = 0;
  bool o_fp32 = false;
};

std::string name(const ForwardCase& c, gpu::DType d) {
  return std::string(gpu::to_string(d)) + " B" + std::to_string(c.batch) + " H" +
         std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " d" + std::to_string(c.d) +
         " " + std::to_string(c.n_q) + "x" + std::to_string(c.n_kv) + " mask " +
         std::to_string(static_cast<int>(c.mask)) + " splits " + std::to_string(c.splits) +
         (c.o_fp32 ? " o_fp32" : "");
}

/// Media groups: 7 frames over the keys, text spread over them (global indices).
void media_groups(long long n_q_total, long long n_kv_total, std::vector<int>& qg,
                  std::vector<int>& kvg) {
  const long long frames = 7;
  for (long long i = 0; i < n_q_total; ++i) qg.push_back(static_cast<int>(i * frames / n_q_total));
  for (long long j = 0; j < n_kv_total; ++j)
    kvg.push_back(static_cast<int>(j * frames / n_kv_total));
}

void check_forward(const ForwardCase& c, gpu::DType dtype, uint64_t seed,
                   gpu::ForwardKernel kernel = gpu::ForwardKernel::automatic) {
  const Storage st = storage_of(dtype);
  const size_t nq = size_t(c.batch) * c.heads * c.n_q * c.d;
  const size_t nkv = size_t(c.batch) * c.kv_heads * c.n_kv * c.d;
  const size_t rows = size_t(c.batch) * c.heads * c.n_q;
  auto q = values(nq, seed, st), k = values(nkv, seed + 1, st), v = values(nkv, seed + 2, st);
  Mask mask;
  mask.kind = c.mask;
  if (c.mask == Mask::Kind::same_group || c.mask == Mask::Kind::up_to_group)
    media_groups(c.q_first + c.n_q, c.kv_first + c.n_kv, mask.q_group, mask.kv_group);
  // The reference per (b, h), with the mask shifted to this block's global offsets.
  std::vector<float> o_ref(nq), l_ref(rows);
  {
    // The reference indexes [B][H][rows][d] with `rows` = the block's rows, so run it per
    // (b, h) pair on views of one row block.
    for (int b = 0; b < c.batch; ++b)
      for (int h = 0; h < c.heads; ++h) {
        const Shape one{1, 1, 1, c.d};
        const int kvh = h / (c.heads / c.kv_heads);
        const float* qh = q.data() + (size_t(b) * c.heads + h) * c.n_q * c.d;
        const float* kh = k.data() + (size_t(b) * c.kv_heads + kvh) * c.n_kv * c.d;
        const float* vh = v.data() + (size_t(b) * c.kv_heads + kvh) * c.n_kv * c.d;
        // Shift the mask's global indices by the offsets.
        Mask shifted = mask;
        if (c.mask == Mask::Kind::same_group || c.mask == Mask::Kind::up_to_group) {
          shifted.q_group.assign(mask.q_group.begin() + c.q_first, mask.q_group.end());
          shifted.kv_group.assign(mask.kv_group.begin() + c.kv_first, mask.kv_group.end());
        }
        if (c.mask == Mask::Kind::causal && (c.q_first != 0 || c.kv_first != 0)) {
          // causal over global indices: kv_first + j <= q_first + i. Express it as groups.
          shifted.kind = Mask::Kind::up_to_group;
          shifted.q_group.clear();
          shifted.kv_group.clear();
          for (long long i = 0; i < c.n_q; ++i) shifted.q_group.push_back(int(c.q_first + i));
          for (long long j = 0; j < c.n_kv; ++j) shifted.kv_group.push_back(int(c.kv_first + j));
        }
        attention_forward(qh, kh, vh, one, {0, c.n_q}, {0, c.n_kv}, shifted,
                          o_ref.data() + (size_t(b) * c.heads + h) * c.n_q * c.d,
                          l_ref.data() + (size_t(b) * c.heads + h) * c.n_q);
      }
  }
  auto dq = upload_storage(q, dtype), dk = upload_storage(k, dtype), dv = upload_storage(v, dtype);
  std::unique_ptr<Buffer> dqg, dkvg;
  gpu::ForwardArgs a;
  a.dtype = dtype;
  a.geometry = {c.batch, c.heads, c.kv_heads, c.d};
  a.q = dq->get();
  a.k = dk->get();
  a.v = dv->get();
  a.n_q = c.n_q;
  a.n_kv = c.n_kv;
  a.q_first = c.q_first;
  a.kv_first = c.kv_first;
  a.kv_splits = c.splits;
  a.kernel = kernel;
  a.mask.kind = static_cast<gpu::DeviceMask::Kind>(static_cast<int>(c.mask));
  if (!mask.q_group.empty()) {
    dqg = upload(mask.q_group);
    dkvg = upload(mask.kv_group);
    a.mask.q_group = static_cast<const int*>(dqg->get());
    a.mask.kv_group = static_cast<const int*>(dkvg->get());
  }
  Buffer o(nq * 4), l(rows * 4);
  a.o = o.get();
  a.o_fp32 = c.o_fp32;
  a.l = l.f();
  gpu::attention_forward(a);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << name(c, dtype);
  const auto o_got = c.o_fp32 ? download_f32(o, nq) : download_storage(o, nq, dtype);
  const auto l_got = download_f32(l, rows);
  std::vector<float> o_want = o_ref;
  if (!c.o_fp32) round_all(st, o_want);
  const double rel = dtype == gpu::DType::fp16 ? 2e-3 : 8e-3;
  const std::string what = name(c, dtype) + " kernel " + gpu::to_string(kernel);
  EXPECT_LE(worst_ratio(o_got, o_want, rel, c.o_fp32 ? Storage::fp32 : st), 1.0) << what;
  EXPECT_LE(worst_ratio(l_got, l_ref, 1e-4, Storage::fp32, true), 1.0) << what;
}

TEST(KernelsGpu, ForwardMatchesTheReference) {
  REQUIRE_GPU();
  using K = Mask::Kind;
  const std::vector<ForwardCase> cases = {
      {1, 1, 1, 64, 1, 1},
      {1, 4, 2, 64, 17, 100},
      {2, 8, 2, 128, 64, 64},
      {1, 32, 8, 128, 130, 1000},
      {1, 4, 1, 128, 5, 3000, K::none, 3},
      {1, 4, 1, 128, 5, 3000, K::none, 1},
      {1, 2, 2, 64, 300, 4097, K::none, 0, 0, 0, true},
      {1, 4, 2, 64, 200, 200, K::causal},
      {1, 4, 2, 128, 70, 500, K::causal, 4, 430, 0},
      {1, 4, 4, 64, 90, 700, K::same_group},
      {2, 4, 2, 128, 33, 1500, K::up_to_group, 5},
      {1, 2, 1, 64, 50, 0},  // no keys: O = 0, L = -inf
  };
  uint64_t seed = 1;
  for (gpu::ForwardKernel kernel : {gpu::ForwardKernel::baseline, gpu::ForwardKernel::pipelined})
    for (gpu::DType d : {gpu::DType::bf16, gpu::DType::fp16})
      for (const auto& c : cases) check_forward(c, d, seed += 10, kernel);
}

TEST(KernelsGpu, ForwardKernelComesFromTheEnvironmentWhenAutomatic) {
  ::setenv("XRING_FORWARD_KERNEL", "pipelined", 1);
  EXPECT_EQ(gpu::resolve(gpu::ForwardKernel::automatic), gpu::ForwardKernel::pipelined);
  EXPECT_EQ(gpu::resolve(gpu::ForwardKernel::baseline), gpu::ForwardKernel::baseline);
  ::setenv("XRING_FORWARD_KERNEL", "fast", 1);
  EXPECT_THROW(gpu::resolve(gpu::ForwardKernel::automatic), Error);
  ::unsetenv("XRING_FORWARD_KERNEL");
  EXPECT_EQ(gpu::resolve(gpu::ForwardKernel::automatic), gpu::ForwardKernel::baseline);
}

TEST(KernelsGpu, MergeMatchesTheReference) {
  REQUIRE_GPU();
  const long long rows = 333;
  const int d = 128;
  auto o = values(rows * d, 1, Storage::fp32), op = values(rows * d, 2, Storage::fp32);
  auto l = values(rows, 3, Storage::fp32, 20), lp = values(rows, 4, Storage::fp32, 20);
  for (long long r = 0; r < rows; r += 7) l[r] = -INFINITY;
  for (long long r = 0; r < rows; r += 11) lp[r] = -INFINITY;
  auto go = upload(o), gl = upload(l), gop = upload(op), glp = upload(lp);
  gpu::merge_partial(go->f(), gl->f(), gop->f(), glp->f(), rows, d);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  merge_partial(o.data(), l.data(), op.data(), lp.data(), rows, d);
  EXPECT_LE(worst_ratio(download_f32(*go, rows * d), o, 1e-5, Storage::fp32), 1.0);
  EXPECT_LE(worst_ratio(download_f32(*gl, rows), l, 1e-5, Storage::fp32, true), 1.0);
}

TEST(KernelsGpu, AddSumsExactly) {
  REQUIRE_GPU();
  const long long n = 100003;  // not a multiple of the block size
  auto y = values(n, 5, Storage::fp32), x = values(n, 6, Storage::fp32);
  auto gy = upload(y), gx = upload(x);
  gpu::add_fp32(gy->f(), gx->f(), n);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (long long i = 0; i < n; ++i) y[i] += x[i];
  EXPECT_EQ(download_f32(*gy, n), y);  // one fp32 addition per element: bit-identical
}

TEST(KernelsGpu, BackwardMatchesTheReference) {
  REQUIRE_GPU();
  struct Case {
    int batch, heads, kv_heads, d;
    long long n_q, n_kv;
    Mask::Kind mask;
  };
  const std::vector<Case> cases = {{1, 2, 1, 64, 1, 1, Mask::Kind::none},
                                   {1, 4, 2, 64, 37, 75, Mask::Kind::none},
                                   {2, 4, 4, 128, 16, 33, Mask::Kind::causal},
                                   {1, 8, 2, 128, 50, 130, Mask::Kind::none}};
  uint64_t seed = 100;
  for (gpu::DType dtype : {gpu::DType::bf16, gpu::DType::fp16})
    for (const Case& c : cases) {
      const Storage st = storage_of(dtype);
      const Shape shape{c.batch, c.heads, c.kv_heads, c.d};
      const size_t nq = size_t(c.batch) * c.heads * c.n_q * c.d;
      const size_t nkv = size_t(c.batch) * c.kv_heads * c.n_kv * c.d;
      const size_t rows = size_t(c.batch) * c.heads * c.n_q;
      auto q = values(nq, ++seed, st), k = values(nkv, ++seed, st), v = values(nkv, ++seed, st),
           d_o = values(nq, ++seed, st);
      Mask mask;
      mask.kind = c.mask;
      std::vector<float> o(nq), l(rows), dterm(rows), dq(nq), dk(nkv), dv(nkv);
      attention_forward(q.data(), k.data(), v.data(), shape, {0, c.n_q}, {0, c.n_kv}, mask,
                        o.data(), l.data());
      round_all(st, o);
      backward_row_terms(o.data(), d_o.data(), static_cast<long long>(rows), c.d, dterm.data());
      attention_backward(q.data(), k.data(), v.data(), l.data(), dterm.data(), d_o.data(), shape,
                         {0, c.n_q}, {0, c.n_kv}, mask, dq.data(), dk.data(), dv.data());
      auto gq = upload_storage(q, dtype), gk = upload_storage(k, dtype),
           gv = upload_storage(v, dtype), go = upload_storage(o, dtype),
           gdo = upload_storage(d_o, dtype), gl = upload(l);
      Buffer gd(rows * 4), gdq(nq * 4), gdk(nkv * 4), gdv(nkv * 4);
      gpu::backward_row_terms(go->get(), gdo->get(), dtype, static_cast<long long>(rows), c.d,
                              gd.f());
      gpu::BackwardArgs a;
      a.dtype = dtype;
      a.geometry = {c.batch, c.heads, c.kv_heads, c.d};
      a.q = gq->get();
      a.k = gk->get();
      a.v = gv->get();
      a.o = go->get();
      a.d_o = gdo->get();
      a.l = gl->f();
      a.row_terms = gd.f();
      a.n_q = c.n_q;
      a.n_kv = c.n_kv;
      a.mask.kind = static_cast<gpu::DeviceMask::Kind>(static_cast<int>(c.mask));
      a.dq = gdq.f();
      a.dk = gdk.f();
      a.dv = gdv.f();
      gpu::attention_backward(a);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::string at = std::string(gpu::to_string(dtype)) + " case n_q " +
                             std::to_string(c.n_q) + " n_kv " + std::to_string(c.n_kv);
      EXPECT_LE(worst_ratio(download_f32(gd, rows), dterm, 1e-4, Storage::fp32), 1.0) << at;
      EXPECT_LE(worst_ratio(download_f32(gdq, nq), dq, 1e-4, Storage::fp32), 1.0) << at;
      EXPECT_LE(worst_ratio(download_f32(gdk, nkv), dk, 1e-4, Storage::fp32), 1.0) << at;
      EXPECT_LE(worst_ratio(download_f32(gdv, nkv), dv, 1e-4, Storage::fp32), 1.0) << at;
    }
}

/// Decode over requests x kv_heads caches of lengths 0, 1 and random below `longest`, against
/// the reference.
void check_decode(gpu::DType dtype, int d, int requests, int heads, int kv_heads,
                  long long longest) {
  const Storage st = storage_of(dtype);
  std::vector<long long> len, offset;
  std::mt19937_64 rng(d);
  long long total = 0;
  for (int c = 0; c < requests * kv_heads; ++c) {
    const long long n = c % 5 == 0 ? 0 : c % 5 == 1 ? 1 : static_cast<long long>(rng() % longest);
    offset.push_back(total);
    len.push_back(n);
    total += n;
  }
  auto k = values(size_t(total) * d, 7, st), v = values(size_t(total) * d, 8, st);
  auto q = values(size_t(requests) * heads * d, 9, st);
  std::vector<float> o_ref(q.size()), l_ref(size_t(requests) * heads);
  for (int r = 0; r < requests; ++r) {
    std::vector<const float*> kp, vp;
    std::vector<long long> lens;
    for (int h = 0; h < kv_heads; ++h) {
      const int c = r * kv_heads + h;
      kp.push_back(k.data() + offset[c] * d);
      vp.push_back(v.data() + offset[c] * d);
      lens.push_back(len[c]);
    }
    decode_attention(q.data() + size_t(r) * heads * d, kp, vp, lens, {1, heads, kv_heads, d},
                     o_ref.data() + size_t(r) * heads * d, l_ref.data() + size_t(r) * heads);
  }
  auto gq = upload_storage(q, dtype), gk = upload_storage(k, dtype), gv = upload_storage(v, dtype),
       goff = upload(offset), glen = upload(len);
  Buffer go(q.size() * 2), gl(l_ref.size() * 4);
  gpu::DecodeArgs a;
  a.dtype = dtype;
  a.requests = requests;
  a.geometry = {1, heads, kv_heads, d};
  a.q = gq->get();
  a.caches = {gk->get(), gv->get(), static_cast<const long long*>(goff->get()),
              static_cast<const long long*>(glen->get()),
              *std::max_element(len.begin(), len.end())};
  a.o = go.get();
  a.l = gl.f();
  gpu::decode_attention(a);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  round_all(st, o_ref);
  EXPECT_LE(worst_ratio(download_storage(go, q.size(), dtype), o_ref, 1e-4, st), 1.0)
      << gpu::to_string(dtype) << " d" << d;
  EXPECT_LE(worst_ratio(download_f32(gl, l_ref.size()), l_ref, 1e-4, Storage::fp32, true), 1.0)
      << gpu::to_string(dtype) << " d" << d;
}

TEST(KernelsGpu, DecodeMatchesTheReferenceOnVariableBudgets) {
  REQUIRE_GPU();
  for (gpu::DType dtype : {gpu::DType::bf16, gpu::DType::fp16})
    for (int d : {64, 128}) check_decode(dtype, d, 3, 16, 4, 6000);
}

TEST(KernelsGpu, DecodeTakesMoreCachesThanAGridDimensionHolds) {
  REQUIRE_GPU();
  check_decode(gpu::DType::bf16, 64, 9000, 8, 8, 4);  // 72,000 caches > 65,535
}

TEST(KernelsGpu, CompactionKeepsTheTopScoresInPositionOrder) {
  REQUIRE_GPU();
  for (gpu::DType dtype : {gpu::DType::bf16, gpu::DType::fp16}) {
    const int d = 128;
    const Storage st = storage_of(dtype);
    const std::vector<long long> len = {0, 1, 5, 300, 1000, 4097, 20000};
    const std::vector<long long> keep = {0, 1, 5, 17, 0, 2048, 999};
    std::vector<long long> offset, out_offset;
    long long total = 0, kept = 0;
    for (size_t c = 0; c < len.size(); ++c) {
      offset.push_back(total);
      out_offset.push_back(kept);
      total += len[c];
      kept += std::min(keep[c], len[c]);
    }
    // Scores on a coarse grid, so ties are common (ties go to the lower position).
    std::mt19937_64 rng(5);
    std::vector<float> scores(total);
    for (float& s : scores) s = static_cast<float>(static_cast<int>(rng() % 50) - 25) * 0.5f;
    // Some zeros negative: -0 and +0 tie (as == says), so the lower position wins.
    for (size_t i = 0; i < scores.size(); i += 2)
      if (scores[i] == 0) scores[i] = -0.0f;
    auto k = values(size_t(total) * d, 11, st), v = values(size_t(total) * d, 12, st);
    auto gs = upload(scores), gk = upload_storage(k, dtype), gv = upload_storage(v, dtype),
         goff = upload(offset), glen = upload(len), gkeep = upload(keep), gout = upload(out_offset);
    Buffer ko(size_t(kept) * d * 2), vo(size_t(kept) * d * 2), pos(size_t(kept) * 8);
    gpu::CompactArgs a;
    a.dtype = dtype;
    a.caches = static_cast<int>(len.size());
    a.head_dim = d;
    a.scores = gs->f();
    a.in = {gk->get(), gv->get(), static_cast<const long long*>(goff->get()),
            static_cast<const long long*>(glen->get()), 20000};
    a.keep = static_cast<const long long*>(gkeep->get());
    a.out_offset = static_cast<const long long*>(gout->get());
    a.k_out = ko.get();
    a.v_out = vo.get();
    a.positions = static_cast<long long*>(pos.get());
    gpu::compact_caches(a);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<long long> got_pos(kept);
    cudaMemcpy(got_pos.data(), pos.get(), size_t(kept) * 8, cudaMemcpyDeviceToHost);
    const auto got_k = download_storage(ko, size_t(kept) * d, dtype);
    const auto got_v = download_storage(vo, size_t(kept) * d, dtype);
    for (size_t c = 0; c < len.size(); ++c) {
      auto want = top_k_positions(scores.data() + offset[c], len[c], std::min(keep[c], len[c]));
      std::vector<long long> got(got_pos.begin() + out_offset[c],
                                 got_pos.begin() + out_offset[c] + want.size());
      EXPECT_EQ(got, want) << "cache " << c;
      auto wk = gather_rows(k.data() + offset[c] * d, d, want);
      auto wv = gather_rows(v.data() + offset[c] * d, d, want);
      EXPECT_TRUE(std::equal(wk.begin(), wk.end(), got_k.begin() + out_offset[c] * d))
          << "cache " << c;
      EXPECT_TRUE(std::equal(wv.begin(), wv.end(), got_v.begin() + out_offset[c] * d))
          << "cache " << c;
    }
  }
}

TEST(KernelsGpu, UnsupportedShapesSayWhatIsSupported) {
  // Argument checks come before any CUDA call: this runs without a GPU.
  gpu::ForwardArgs a;
  a.geometry = {1, 4, 2, 96};
  int dummy = 0;
  a.q = a.k = a.v = &dummy;
  a.o = &dummy;
  a.l = reinterpret_cast<float*>(&dummy);
  a.n_q = a.n_kv = 1;
  try {
    gpu::attention_forward(a);
    FAIL() << "head_dim 96 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("head_dim 96 is not supported"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("head_dim 64 or 128"), std::string::npos);
  }
  a.geometry = {1, 6, 4, 64};
  EXPECT_THROW(gpu::attention_forward(a), Error);
  gpu::DecodeArgs dec;
  dec.geometry = {1, 64, 2, 128};
  EXPECT_THROW(gpu::decode_attention(dec), Error);  // 32 query heads per kv head
  // More (batch, head) pairs than a grid dimension holds.
  a.geometry = {2048, 32, 8, 128};
  try {
    gpu::attention_forward(a);
    FAIL() << "batch x heads 65536 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("batch x heads"), std::string::npos) << e.what();
  }
  // No query tiles: one split, and no division by zero (nor any CUDA call).
  a.geometry = {1, 4, 2, 64};
  a.n_q = 0;
  a.n_kv = 100000;
  EXPECT_EQ(gpu::auto_kv_splits(a), 1);
  // Backward: a media mask needs its group arrays; offsets are checked.
  gpu::BackwardArgs b;
  b.geometry = {1, 4, 2, 64};
  b.q = b.k = b.v = b.d_o = &dummy;
  b.l = b.row_terms = reinterpret_cast<float*>(&dummy);
  b.dq = b.dk = b.dv = reinterpret_cast<float*>(&dummy);
  b.n_q = b.n_kv = 1;
  b.mask.kind = gpu::DeviceMask::Kind::same_group;
  EXPECT_THROW(gpu::attention_backward(b), Error);
  b.mask.kind = gpu::DeviceMask::Kind::none;
  b.kv_first = -1;
  EXPECT_THROW(gpu::attention_backward(b), Error);
}

}  // namespace
}  // namespace xring::kernels
