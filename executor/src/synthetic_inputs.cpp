// The seeded synthetic inputs of `xring run`.
#include "synthetic_inputs.hpp"

#include <algorithm>

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

kernels::Storage storage_of(DType d) {
  return d == DType::fp32   ? kernels::Storage::fp32
         : d == DType::fp16 ? kernels::Storage::fp16
                            : kernels::Storage::bf16;
}

}  // namespace xring::executor
