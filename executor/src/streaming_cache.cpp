// The executor's streaming caches: each policy's kept set updated frame by frame, K/V compacted
// into exact-size buffers at the storage width, decode steps over them.
#include "xring/executor/streaming_cache.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

/// `x` (representable in fp16) as fp16 bits.
uint16_t fp16_bits(float x) {
  uint32_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const int biased = static_cast<int>((u >> 23) & 0xffu);
  const uint32_t mantissa = u & 0x7fffffu;
  if ((u & 0x7fffffffu) == 0) return sign;
  if (biased == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0u));
  const int exponent = biased - 127 + 15;
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (exponent <= 0) {  // subnormal in fp16: m · 2^-24
    const int shift = 14 - exponent;
    return static_cast<uint16_t>(sign | (shift < 32 ? (mantissa | 0x800000u) >> shift : 0u));
  }
  return static_cast<uint16_t>(sign | (exponent << 10) | (mantissa >> 13));
}

float from_fp16_bits(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const int exponent = (h >> 10) & 0x1f;
  const uint32_t mantissa = h & 0x3ffu;
  float magnitude = 0;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa ? NAN : INFINITY;
  } else {
    const uint32_t bits = (static_cast<uint32_t>(exponent - 15 + 127) << 23) | (mantissa << 13);
    std::memcpy(&magnitude, &bits, sizeof magnitude);
  }
  return sign ? -magnitude : magnitude;
}

/// Indices of the `k` largest `scores` among `candidates` (ties to the lower index), ascending.
std::vector<long long> top_indices(const std::vector<long long>& candidates,
                                   const std::vector<double>& scores, long long k) {
  std::vector<long long> order = candidates;
  k = std::clamp<long long>(k, 0, static_cast<long long>(order.size()));
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](long long a, long long b) {
    return scores[a] != scores[b] ? scores[a] > scores[b] : a < b;
  });
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace

std::string to_string(StreamingPolicyKind k) {
  switch (k) {
    case StreamingPolicyKind::inf_mllm:
      return "inf_mllm";
    case StreamingPolicyKind::a_vl:
      return "a_vl";
    case StreamingPolicyKind::full:
      break;
  }
  return "full";
}

StreamingPolicyKind streaming_policy_from_string(const std::string& name) {
  if (name == "full") return StreamingPolicyKind::full;
  if (name == "inf_mllm") return StreamingPolicyKind::inf_mllm;
  if (name == "a_vl") return StreamingPolicyKind::a_vl;
  throw Error("streaming policy \"" + name + "\" is not one of full, inf_mllm, a_vl");
}

StoredValues::StoredValues(kernels::Storage storage, size_t count) : storage_(storage) {
  if (storage == kernels::Storage::fp32)
    wide_.assign(count, 0.0f);
  else
    narrow_.assign(count, 0);
}

float StoredValues::get(size_t i) const {
  switch (storage_) {
    case kernels::Storage::fp32:
      return wide_[i];
    case kernels::Storage::bf16: {
      const uint32_t bits = static_cast<uint32_t>(narrow_[i]) << 16;
      float x = 0;
      std::memcpy(&x, &bits, sizeof x);
      return x;
    }
    case kernels::Storage::fp16:
      break;
  }
  return from_fp16_bits(narrow_[i]);
}

void StoredValues::set(size_t i, float value) {
  switch (storage_) {
    case kernels::Storage::fp32:
      wide_[i] = value;
      return;
    case kernels::Storage::bf16: {
      uint32_t bits = 0;
      const float rounded = kernels::round_to(kernels::Storage::bf16, value);
      std::memcpy(&bits, &rounded, sizeof bits);
      narrow_[i] = static_cast<uint16_t>(bits >> 16);
      return;
    }
    case kernels::Storage::fp16:
      break;
  }
  narrow_[i] = fp16_bits(kernels::round_to(kernels::Storage::fp16, value));
}

void StoredValues::copy(const StoredValues& source, size_t from, size_t to, size_t count) {
  if (storage_ == kernels::Storage::fp32)
    std::copy_n(source.wide_.begin() + from, count, wide_.begin() + to);
  else
    std::copy_n(source.narrow_.begin() + from, count, narrow_.begin() + to);
}

double StoredValues::allocated_bytes() const {
  return static_cast<double>(wide_.capacity()) * sizeof(float) +
         static_cast<double>(narrow_.capacity()) * sizeof(uint16_t);
}

StreamingLayerCache::StreamingLayerCache(const kernels::Shape& geometry, kernels::Storage storage,
                                         const StreamingPolicyParams& params)
    : shape_(geometry), storage_(storage), params_(params), k_(storage, 0), v_(storage, 0) {}

std::vector<float> StreamingLayerCache::candidate_keys(const StreamingFrame& frame) const {
  const size_t held = positions_.size(), n = held + frame.tokens, d = shape_.head_dim;
  std::vector<float> keys(shape_.kv_heads * n * d);
  for (size_t h = 0; h < static_cast<size_t>(shape_.kv_heads); ++h) {
    for (size_t i = 0; i < held * d; ++i) keys[h * n * d + i] = k_.get(h * held * d + i);
    std::copy_n(frame.k.begin() + h * frame.tokens * d, frame.tokens * d,
                keys.begin() + (h * n + held) * d);
  }
  return keys;
}

/// inf_mllm: the frame's probe scores every held and new token (softmax per query head with the
/// recency bias, averaged over heads) into `acc`; keeps the r newest and the top N − r others by
/// the score summed over ±radius neighbours.
std::vector<long long> StreamingLayerCache::inf_mllm_keep(const StreamingFrame& frame,
                                                          std::vector<double>& acc) {
  const long long held = static_cast<long long>(positions_.size());
  const long long n = held + frame.tokens;
  const int group = shape_.heads / shape_.kv_heads, d = shape_.head_dim;
  acc = scores_;
  acc.resize(n, 0.0);
  std::vector<double> logits(n);
  const std::vector<float> keys = candidate_keys(frame);
  for (int h = 0; h < shape_.heads; ++h) {
    const float* q = frame.probe_q.data() + static_cast<size_t>(h) * d;
    double top = -INFINITY;
    for (long long c = 0; c < n; ++c) {
      const float* key = keys.data() + (static_cast<size_t>(h / group) * n + c) * d;
      float dot = 0;
      for (int i = 0; i < d; ++i) dot += q[i] * key[i];
      const long long position = c < held ? positions_[c] : frame.first_position + (c - held);
      logits[c] = shape_.scale() * dot +
                  params_.recency_bias * static_cast<double>(position + 1) / arrived_;
      top = std::max(top, logits[c]);
    }
    double sum = 0;
    for (double& x : logits) sum += (x = std::exp(x - top));
    for (long long c = 0; c < n; ++c) acc[c] += logits[c] / sum / shape_.heads;
  }
  std::vector<long long> keep(n);
  std::iota(keep.begin(), keep.end(), 0);
  if (n <= params_.cache_tokens) return keep;
  const long long recent = std::min(params_.recent_tokens, params_.cache_tokens);
  const long long older = n - recent;
  // Scores summed over ±radius neighbours, from prefix sums (any radius in O(n)).
  std::vector<double> prefix(n + 1, 0.0), local(n);
  for (long long c = 0; c < n; ++c) prefix[c + 1] = prefix[c] + acc[c];
  for (long long c = 0; c < n; ++c)
    local[c] = prefix[std::min(n, c + params_.saddle_radius + 1)] -
               prefix[std::max<long long>(0, c - params_.saddle_radius)];
  std::vector<long long> candidates(keep.begin(), keep.begin() + older);
  std::vector<long long> chosen = top_indices(candidates, local, params_.cache_tokens - recent);
  for (long long c = older; c < n; ++c) chosen.push_back(c);
  return chosen;
}

/// a_vl: the frame's probe ranks its own tokens (softmax per query head over the frame, averaged
/// over heads); the top ones join until llround(stored_rate · arrived) are kept.
std::vector<long long> StreamingLayerCache::a_vl_keep(const StreamingFrame& frame) const {
  const long long held = static_cast<long long>(positions_.size());
  const long long target = std::llround(params_.stored_rate * static_cast<double>(arrived_));
  const long long take = std::clamp<long long>(target - held, 0, frame.tokens);
  const int group = shape_.heads / shape_.kv_heads, d = shape_.head_dim;
  std::vector<double> importance(held + frame.tokens, 0.0), logits(frame.tokens);
  for (int h = 0; h < shape_.heads; ++h) {
    const float* q = frame.probe_q.data() + static_cast<size_t>(h) * d;
    double top = -INFINITY;
    for (long long t = 0; t < frame.tokens; ++t) {
      const float* key = frame.k.data() + (static_cast<size_t>(h / group) * frame.tokens + t) * d;
      float dot = 0;
      for (int i = 0; i < d; ++i) dot += q[i] * key[i];
      logits[t] = shape_.scale() * dot;
      top = std::max(top, logits[t]);
    }
    double sum = 0;
    for (double& x : logits) sum += (x = std::exp(x - top));
    for (long long t = 0; t < frame.tokens; ++t)
      importance[held + t] += logits[t] / sum / shape_.heads;
  }
  std::vector<long long> fresh(frame.tokens);
  std::iota(fresh.begin(), fresh.end(), held);
  std::vector<long long> keep(held);
  std::iota(keep.begin(), keep.end(), 0);
  for (long long c : top_indices(fresh, importance, take)) keep.push_back(c);
  return keep;
}

/// K and V of the kept candidates (indices into held ++ frame) into fresh exact-size buffers.
void StreamingLayerCache::compact(const std::vector<long long>& keep, const StreamingFrame& frame) {
  const long long held = static_cast<long long>(positions_.size());
  const size_t kept = keep.size();
  const int d = shape_.head_dim;
  StoredValues k(storage_, kept * shape_.kv_heads * d), v(storage_, kept * shape_.kv_heads * d);
  std::vector<long long> positions(kept);
  for (int h = 0; h < shape_.kv_heads; ++h)
    for (size_t j = 0; j < kept; ++j) {
      const long long c = keep[j];
      const size_t to = (static_cast<size_t>(h) * kept + j) * d;
      if (c < held) {
        const size_t from = (static_cast<size_t>(h) * held + c) * d;
        k.copy(k_, from, to, d);
        v.copy(v_, from, to, d);
      } else {
        const size_t from = (static_cast<size_t>(h) * frame.tokens + (c - held)) * d;
        for (int i = 0; i < d; ++i) {
          k.set(to + i, frame.k[from + i]);
          v.set(to + i, frame.v[from + i]);
        }
      }
      positions[j] = c < held ? positions_[c] : frame.first_position + (c - held);
    }
  k_ = std::move(k);
  v_ = std::move(v);
  positions_ = std::move(positions);
}

void StreamingLayerCache::add_frame(const StreamingFrame& frame) {
  const size_t expect = static_cast<size_t>(shape_.kv_heads) * frame.tokens * shape_.head_dim;
  if (frame.k.size() != expect || frame.v.size() != expect ||
      frame.probe_q.size() != static_cast<size_t>(shape_.heads) * shape_.head_dim)
    throw Error("streaming frame at position " + std::to_string(frame.first_position) +
                ": K/V/probe sizes do not match the layer's geometry");
  if (!positions_.empty() && frame.first_position <= positions_.back())
    throw Error("streaming frames must arrive in position order");
  arrived_ += frame.tokens;
  core_.clear();
  const long long held = static_cast<long long>(positions_.size());
  std::vector<long long> keep;
  std::vector<double> acc;
  if (params_.kind == StreamingPolicyKind::inf_mllm) {
    keep = inf_mllm_keep(frame, acc);
  } else if (params_.kind == StreamingPolicyKind::a_vl) {
    keep = a_vl_keep(frame);
  } else {
    keep.resize(held + frame.tokens);
    std::iota(keep.begin(), keep.end(), 0);
  }
  compact(keep, frame);
  if (params_.kind == StreamingPolicyKind::inf_mllm) {
    scores_.resize(keep.size());
    for (size_t j = 0; j < keep.size(); ++j) scores_[j] = acc[keep[j]];
  }
}

std::vector<long long> StreamingLayerCache::decode_step(const float* q, int step, float* o,
                                                        float* l) {
  const long long held = static_cast<long long>(positions_.size());
  const bool update = params_.kind != StreamingPolicyKind::a_vl ||
                      step % std::max(1, params_.update_interval) == 0 || held == 0;
  std::vector<long long> attended;
  if (update) {
    attended.resize(held);
    std::iota(attended.begin(), attended.end(), 0);
  } else {
    attended = core_;
  }
  const int d = shape_.head_dim, group = shape_.heads / shape_.kv_heads;
  const size_t n = attended.size();
  std::vector<std::vector<float>> k(shape_.kv_heads), v(shape_.kv_heads);
  std::vector<const float*> k_ptr, v_ptr;
  for (int h = 0; h < shape_.kv_heads; ++h) {
    k[h].resize(n * d);
    v[h].resize(n * d);
    for (size_t j = 0; j < n; ++j)
      for (int i = 0; i < d; ++i) {
        const size_t from = (static_cast<size_t>(h) * held + attended[j]) * d + i;
        k[h][j * d + i] = k_.get(from);
        v[h][j * d + i] = v_.get(from);
      }
    k_ptr.push_back(k[h].data());
    v_ptr.push_back(v[h].data());
  }
  kernels::decode_attention(q, k_ptr, v_ptr, std::vector<long long>(shape_.kv_heads, n), shape_,
                            o, l);
  if (params_.kind == StreamingPolicyKind::a_vl && update) {
    // The core: the kept tokens this step's query attends most, averaged over its heads.
    std::vector<double> importance(held, 0.0);
    for (int h = 0; h < shape_.heads; ++h)
      for (size_t j = 0; j < n; ++j) {
        float dot = 0;
        for (int i = 0; i < d; ++i) dot += q[h * d + i] * k[h / group][j * d + i];
        importance[j] += std::exp(static_cast<double>(shape_.scale() * dot) - l[h]) / shape_.heads;
      }
    core_ = top_indices(attended, importance,
                        std::llround(params_.compute_rate * static_cast<double>(held)));
  }
  std::vector<long long> positions(n);
  for (size_t j = 0; j < n; ++j) positions[j] = positions_[attended[j]];
  return positions;
}

}  // namespace xring::executor
