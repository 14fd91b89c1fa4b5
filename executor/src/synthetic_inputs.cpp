// The seeded synthetic inputs of `xring run`.
#include "synthetic_inputs.hpp"

#include <algorithm>

#include "xring/executor/streaming_cache.hpp"

namespace xring::executor {

AttentionProblem synthetic_problem(const LayerShape& s, kernels::Storage storage, uint64_t seed,
                                   const std::string& media_mask, bool backward) {
  AttentionProblem p;
  p.shape = {static_cast<int>(s.batch), s.heads, s.kv_heads, s.head_dim};
  p.s_q = s.s_q;
  p.s_kv = s.s_kv;
  p.storage = storage;
  SyntheticValues values(seed, storage);
  auto fill = [&](std::vector<float>& t, size_t n) { values.fill(t, n); };
  const size_t q = static_cast<size_t>(s.batch) * s.heads * s.s_q * s.head_dim;
  const size_t kv = static_cast<size_t>(s.batch) * s.kv_heads * s.s_kv * s.head_dim;
  fill(p.q, q);
  fill(p.k, kv);
  fill(p.v, kv);
  if (backward) fill(p.d_o, q);
  if (media_mask != "none") {
    // Frames of equal size; text spread evenly over them (Flamingo-style media masks).
    p.mask.kind = media_mask == "same_group" ? kernels::Mask::Kind::same_group
                                             : kernels::Mask::Kind::up_to_group;
    const long long frames = std::max<long long>(1, std::min<long long>(16, s.s_kv));
    for (long long i = 0; i < s.s_q; ++i)
      p.mask.q_group.push_back(static_cast<int>(i * frames / s.s_q));
    for (long long j = 0; j < s.s_kv; ++j)
      p.mask.kv_group.push_back(static_cast<int>(j * frames / s.s_kv));
  }
  return p;
}

namespace {

/// One seed per (run seed, stream, layer, index), well mixed (splitmix64's finaliser).
uint64_t stream_seed(uint64_t seed, uint64_t stream, uint64_t layer, uint64_t index) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (stream << 56) ^ (layer << 40) ^ index;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

StreamingFrame synthetic_stream_frame(uint64_t seed, int layer, long long frame, long long tokens,
                                      const kernels::Shape& geometry, kernels::Storage storage) {
  StreamingFrame f;
  f.first_position = frame * tokens;
  f.tokens = tokens;
  SyntheticValues values(stream_seed(seed, 1, layer, frame), storage);
  const size_t kv = static_cast<size_t>(geometry.kv_heads) * tokens * geometry.head_dim;
  values.fill(f.k, kv);
  values.fill(f.v, kv);
  values.fill(f.probe_q, static_cast<size_t>(geometry.heads) * geometry.head_dim);
  return f;
}

std::vector<float> synthetic_stream_query(uint64_t seed, int layer, long long query, int step,
                                          const kernels::Shape& geometry,
                                          kernels::Storage storage) {
  SyntheticValues values(stream_seed(seed, 2, layer, (query << 20) + step), storage);
  std::vector<float> q;
  values.fill(q, static_cast<size_t>(geometry.heads) * geometry.head_dim);
  return q;
}

kernels::Storage storage_of(DType d) {
  return d == DType::fp32   ? kernels::Storage::fp32
         : d == DType::fp16 ? kernels::Storage::fp16
                            : kernels::Storage::bf16;
}

}  // namespace xring::executor
