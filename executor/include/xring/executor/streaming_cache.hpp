// The executor's bounded KV caches for streaming plans: per layer, the K/V of the visual tokens
// a policy keeps (full, inf_mllm, a_vl; docs/kv-policies.md), compacted into buffers of the
// storage width after every frame, and text-query decode steps over them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "xring/kernels/reference.hpp"

namespace xring::executor {

enum class StreamingPolicyKind { full, inf_mllm, a_vl };
std::string to_string(StreamingPolicyKind k);
/// Throws xring::Error for a name other than full, inf_mllm, a_vl.
StreamingPolicyKind streaming_policy_from_string(const std::string& name);

/// A policy's parameters as executed (after --scale).
struct StreamingPolicyParams {
  StreamingPolicyKind kind = StreamingPolicyKind::full;
  long long cache_tokens = 1;   ///< inf_mllm: N, the most tokens kept
  long long recent_tokens = 0;  ///< inf_mllm: the r newest tokens always kept (r ≤ N)
  double recency_bias = 1.0;    ///< inf_mllm: logit + bias·(p + 1)/arrived while scoring
  int saddle_radius = 1;        ///< inf_mllm: a token's score sums its ±radius cached neighbours
  double stored_rate = 1;       ///< a_vl: after a frame, llround(stored_rate · arrived) kept
  double compute_rate = 1;      ///< a_vl: fraction of the kept computed every decode step
  int update_interval = 1;      ///< a_vl: every this many steps all kept are computed
};

/// One layer's share of one frame: K and V [H_kv][tokens][d] and the frame's probe query [H][d]
/// (the newest token's query, which scores the tokens), values at the storage precision.
struct StreamingFrame {
  long long first_position = 0;  ///< global position of the frame's first token
  long long tokens = 0;
  std::vector<float> k, v;
  std::vector<float> probe_q;
};

/// Seeded synthetic stream (what `xring run` feeds a streaming plan): frame `frame` of `layer`,
/// `tokens` tokens at positions frame·tokens …, K/V/probe uniform in [-1, 1) at the storage
/// precision.
StreamingFrame synthetic_stream_frame(uint64_t seed, int layer, long long frame, long long tokens,
                                      const kernels::Shape& geometry, kernels::Storage storage);
/// Seeded query [H][d] of decode step `step` of text query `query` at `layer`.
std::vector<float> synthetic_stream_query(uint64_t seed, int layer, long long query, int step,
                                          const kernels::Shape& geometry,
                                          kernels::Storage storage);

/// Rows held at the storage width: 2 bytes a value for bf16 and fp16, 4 for fp32. The values
/// must already be representable in the storage type (they are stored exactly).
class StoredValues {
 public:
  StoredValues() = default;
  StoredValues(kernels::Storage storage, size_t count);
  float get(size_t i) const;
  void set(size_t i, float value);
  /// Copies `count` values from `from` of `source` (same storage) to `to`, bit for bit.
  void copy(const StoredValues& source, size_t from, size_t to, size_t count);
  size_t size() const { return storage_ == kernels::Storage::fp32 ? wide_.size() : narrow_.size(); }
  /// Bytes this object allocated (capacity, not size).
  double allocated_bytes() const;

 private:
  kernels::Storage storage_ = kernels::Storage::fp32;
  std::vector<uint16_t> narrow_;
  std::vector<float> wide_;
};

/// One layer's streaming cache: the positions a policy keeps and their K/V at the storage width.
class StreamingLayerCache {
 public:
  /// `geometry`: heads, kv_heads, head_dim of the layer (batch unused).
  StreamingLayerCache(const kernels::Shape& geometry, kernels::Storage storage,
                      const StreamingPolicyParams& params);
  /// Takes one frame and applies the policy: the kept set changes and K/V are compacted into
  /// fresh buffers of exactly the kept size. Frames must arrive in position order.
  void add_frame(const StreamingFrame& frame);
  /// Kept positions, ascending.
  const std::vector<long long>& positions() const { return positions_; }
  /// Bytes of K and V this cache allocated.
  double allocated_bytes() const { return k_.allocated_bytes() + v_.allocated_bytes(); }
  /// One decode step of a text query: q [H][d], `step` its index within the query (a_vl
  /// computes every kept token on steps 0, K, 2K, …, choosing its core there, and the core
  /// between). Writes o [H][d] and l [H]; returns the positions attended, ascending.
  std::vector<long long> decode_step(const float* q, int step, float* o, float* l);

 private:
  std::vector<long long> inf_mllm_keep(const StreamingFrame& frame, std::vector<double>& acc);
  std::vector<long long> a_vl_keep(const StreamingFrame& frame) const;
  /// K of held ++ frame tokens as floats, [H_kv][held + frame.tokens][d].
  std::vector<float> candidate_keys(const StreamingFrame& frame) const;
  void compact(const std::vector<long long>& keep, const StreamingFrame& frame);

  kernels::Shape shape_;
  kernels::Storage storage_;
  StreamingPolicyParams params_;
  long long arrived_ = 0;
  std::vector<long long> positions_;
  std::vector<double> scores_;   ///< inf_mllm: accumulated attention of each kept token
  StoredValues k_, v_;           ///< [H_kv][kept][d]
  std::vector<long long> core_;  ///< a_vl: indices into positions_ computed between updates
};

}  // namespace xring::executor
