// The executor's streaming caches (issue 19): each policy's retained set frame by frame against
// the independent reference (streaming_policy_reference.hpp), decode over the compacted caches
// against attention over exactly the kept tokens, and the memory the caches allocate.
#include <gtest/gtest.h>

#include "streaming_policy_reference.hpp"
#include "xring/executor/streaming_cache.hpp"
#include "xring/executor/verification.hpp"
#include "xring/planner/error.hpp"

namespace xring {
namespace {

using executor::StreamingLayerCache;
using executor::StreamingPolicyKind;
using executor::StreamingPolicyParams;
using test::ReferenceStream;

const kernels::Shape kGeometry{1, 4, 2, 16};  // 4 query heads over 2 kv heads, d = 16
constexpr auto kStorage = kernels::Storage::bf16;
// K+V bytes of one token in one layer: 2 · H_kv · d · 2 bytes (bf16).
constexpr double kTokenBytes = 2 * 2 * 16 * 2;

ReferenceStream make_stream(long long frames, long long tokens, uint64_t seed = 3) {
  ReferenceStream s;
  s.shape = kGeometry;
  s.tokens_per_frame = tokens;
  for (long long f = 0; f < frames; ++f)
    s.frames.push_back(executor::synthetic_stream_frame(seed, 0, f, tokens, kGeometry, kStorage));
  return s;
}

/// Feeds the stream to the executor's cache; the kept positions and bytes after every frame.
struct Fed {
  std::vector<std::vector<long long>> kept;
  std::vector<double> bytes;
};
Fed feed(StreamingLayerCache& cache, const ReferenceStream& s) {
  Fed out;
  for (const auto& f : s.frames) {
    cache.add_frame(f);
    out.kept.push_back(cache.positions());
    out.bytes.push_back(cache.allocated_bytes());
  }
  return out;
}

/// One decode step over the cache against the reference attention over `positions` of `s`.
executor::Comparison check_step(StreamingLayerCache& cache, const ReferenceStream& s,
                                const std::vector<float>& q, int step,
                                std::vector<long long>& attended) {
  const int h = kGeometry.heads, d = kGeometry.head_dim, hk = kGeometry.kv_heads;
  std::vector<float> o(h * d), l(h), want_o(h * d), want_l(h);
  attended = cache.decode_step(q.data(), step, o.data(), l.data());
  const size_t n = attended.size();
  std::vector<float> k(hk * n * d), v(hk * n * d);
  for (int kv = 0; kv < hk; ++kv)
    for (size_t j = 0; j < n; ++j) {
      const auto& f = s.frames[attended[j] / s.tokens_per_frame];
      const size_t from = (kv * f.tokens + attended[j] % s.tokens_per_frame) * d;
      std::copy_n(f.k.begin() + from, d, k.begin() + (kv * n + j) * d);
      std::copy_n(f.v.begin() + from, d, v.begin() + (kv * n + j) * d);
    }
  kernels::attention_forward(q.data(), k.data(), v.data(), kGeometry, {0, 1},
                             {0, static_cast<long long>(n)}, {}, want_o.data(), want_l.data());
  executor::Comparison c;
  executor::compare_cpu(o, want_o, kernels::Storage::fp32, c);
  executor::compare_cpu(l, want_l, kernels::Storage::fp32, c);
  return c;
}

TEST(StreamingCache, FullKeepsEveryTokenAndDecodesAsPlainAttention) {
  const ReferenceStream s = make_stream(10, 5);
  StreamingLayerCache cache(kGeometry, kStorage, {});
  const Fed fed = feed(cache, s);
  const auto want = test::reference_kept(s, {});
  ASSERT_EQ(fed.kept, want);
  for (size_t f = 0; f < fed.kept.size(); ++f) {
    ASSERT_EQ(fed.kept[f].size(), 5 * (f + 1));
    EXPECT_EQ(fed.kept[f].back(), static_cast<long long>(5 * (f + 1) - 1));
    // Linear: 5 more tokens of 128 bytes every frame (640 bytes), from the allocations.
    EXPECT_DOUBLE_EQ(fed.bytes[f], 640.0 * (f + 1));
  }
  std::vector<long long> attended;
  auto q = executor::synthetic_stream_query(3, 0, 0, 0, kGeometry, kStorage);
  const auto c = check_step(cache, s, q, 0, attended);
  EXPECT_EQ(attended.size(), 50u);  // the plain attention over all 50 tokens
  EXPECT_LE(c.worst_ratio, 1.0) << c.max_abs;
}

TEST(StreamingCache, InfMllmKeepsTheReferenceSetAndStaysFlat) {
  const ReferenceStream s = make_stream(30, 3);
  for (double bias : {0.0, 1.0, 4.0})
    for (int radius : {0, 1, 3, 100}) {
      StreamingPolicyParams p;
      p.kind = StreamingPolicyKind::inf_mllm;
      p.cache_tokens = 12;
      p.recent_tokens = 4;
      p.recency_bias = bias;
      p.saddle_radius = radius;
      StreamingLayerCache cache(kGeometry, kStorage, p);
      const Fed fed = feed(cache, s);
      const auto want = test::reference_kept(s, p);
      for (size_t f = 0; f < want.size(); ++f)
        ASSERT_EQ(fed.kept[f], want[f]) << "frame " << f << " bias " << bias << " radius "
                                        << radius;
      // Full from frame 4 (12 tokens): flat at 12 · 128 bytes, the 4 newest always kept.
      for (size_t f = 3; f < fed.kept.size(); ++f) {
        EXPECT_DOUBLE_EQ(fed.bytes[f], 12 * kTokenBytes) << f;
        const long long newest = 3 * static_cast<long long>(f + 1) - 1;
        EXPECT_EQ(fed.kept[f].back(), newest);
        EXPECT_EQ(fed.kept[f][8], newest - 3);
      }
      EXPECT_DOUBLE_EQ(fed.bytes[1], 6 * kTokenBytes);
      std::vector<long long> attended;
      auto q = executor::synthetic_stream_query(3, 0, 1, 0, kGeometry, kStorage);
      const auto c = check_step(cache, s, q, 0, attended);
      EXPECT_EQ(attended, want.back());
      EXPECT_LE(c.worst_ratio, 1.0);
    }
}

TEST(StreamingCache, InfMllmEvictsOldTokensOnlyWhenBiasFavoursNewOnes) {
  // Without a bias an old token can stay for the whole stream; a large bias turns them over:
  // the oldest kept position then moves forward with the stream.
  const ReferenceStream s = make_stream(40, 3, 11);
  StreamingPolicyParams p;
  p.kind = StreamingPolicyKind::inf_mllm;
  p.cache_tokens = 12;
  p.recent_tokens = 4;
  p.recency_bias = 50.0;
  const auto kept = test::reference_kept(s, p);
  EXPECT_GT(kept.back().front(), 60);  // of 120 positions, none of the first half kept
  StreamingPolicyParams unbiased = p;
  unbiased.recency_bias = 0;
  EXPECT_LT(test::reference_kept(s, unbiased).back().front(), 60);
  StreamingLayerCache cache(kGeometry, kStorage, p);
  EXPECT_EQ(feed(cache, s).kept.back(), kept.back());
}

TEST(StreamingCache, AVlStoresItsFractionAndComputesItsCoreBetweenUpdates) {
  const ReferenceStream s = make_stream(20, 7);
  StreamingPolicyParams p;
  p.kind = StreamingPolicyKind::a_vl;
  p.stored_rate = 0.45;
  p.compute_rate = 0.5;
  p.update_interval = 5;
  StreamingLayerCache cache(kGeometry, kStorage, p);
  const Fed fed = feed(cache, s);
  const auto want = test::reference_kept(s, p);
  ASSERT_EQ(fed.kept, want);
  for (size_t f = 0; f < want.size(); ++f) {
    // llround(0.45 · 7 (f + 1)) tokens: 3, 6, 9, 13, ... (hand: 0.45 · 28 = 12.6 → 13).
    const long long kept = std::llround(0.45 * 7 * (f + 1));
    EXPECT_EQ(static_cast<long long>(fed.kept[f].size()), kept);
    EXPECT_DOUBLE_EQ(fed.bytes[f], kept * kTokenBytes);
  }
  EXPECT_EQ(fed.kept[3].size(), 13u);
  // Decode: step 0 computes all 63 kept and chooses the core (llround(0.5 · 63) = 32) by its
  // query; steps 1..4 compute that core; step 5 computes all again.
  std::vector<long long> attended;
  auto q0 = executor::synthetic_stream_query(3, 0, 0, 0, kGeometry, kStorage);
  ASSERT_LE(check_step(cache, s, q0, 0, attended).worst_ratio, 1.0);
  EXPECT_EQ(attended, want.back());
  const auto core = test::reference_a_vl_core(s, p, q0.data(), want.back());
  ASSERT_EQ(core.size(), 32u);
  for (int step = 1; step < 5; ++step) {
    auto q = executor::synthetic_stream_query(3, 0, 0, step, kGeometry, kStorage);
    ASSERT_LE(check_step(cache, s, q, step, attended).worst_ratio, 1.0);
    EXPECT_EQ(attended, core) << "step " << step;
  }
  auto q5 = executor::synthetic_stream_query(3, 0, 0, 5, kGeometry, kStorage);
  ASSERT_LE(check_step(cache, s, q5, 5, attended).worst_ratio, 1.0);
  EXPECT_EQ(attended.size(), 63u);
}

TEST(StreamingCache, StoredValuesKeepEveryStorageValueExactlyAtItsWidth) {
  for (auto storage : {kernels::Storage::bf16, kernels::Storage::fp16, kernels::Storage::fp32}) {
    const std::vector<float> values = {0.0f, -0.0f, 1.0f, -1.5f, 65504.0f, 6.1035156e-05f,
                                       5.9604645e-08f, -3.0517578e-05f, 0.333f, 1e-3f};
    executor::StoredValues stored(storage, values.size());
    for (size_t i = 0; i < values.size(); ++i) stored.set(i, values[i]);
    for (size_t i = 0; i < values.size(); ++i)
      EXPECT_EQ(stored.get(i), kernels::round_to(storage, values[i]))
          << kernels::to_string(storage) << " " << values[i];
    EXPECT_DOUBLE_EQ(stored.allocated_bytes(),
                     values.size() * (storage == kernels::Storage::fp32 ? 4.0 : 2.0));
  }
}

TEST(StreamingCache, RefusesFramesOutOfOrderOrOfTheWrongShape) {
  StreamingLayerCache cache(kGeometry, kStorage, {});
  auto f1 = executor::synthetic_stream_frame(1, 0, 1, 4, kGeometry, kStorage);
  cache.add_frame(f1);
  auto f0 = executor::synthetic_stream_frame(1, 0, 0, 4, kGeometry, kStorage);
  EXPECT_THROW(cache.add_frame(f0), Error);
  auto f2 = executor::synthetic_stream_frame(1, 0, 2, 4, kGeometry, kStorage);
  f2.k.pop_back();
  EXPECT_THROW(cache.add_frame(f2), Error);
}

}  // namespace
}  // namespace xring
