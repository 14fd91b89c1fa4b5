// An independent reference of each streaming policy's retained-index rule (docs/kv-policies.md),
// written from the rule and not from the executor's cache: it reads the whole stream (all
// frames, floats) and computes in double which positions each policy keeps after every frame,
// and which ones a_vl computes between its updates. Tests only.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "xring/executor/streaming_cache.hpp"

namespace xring::test {

using executor::StreamingFrame;
using executor::StreamingPolicyKind;
using executor::StreamingPolicyParams;

/// The whole stream of one layer, addressed by global position.
struct ReferenceStream {
  std::vector<StreamingFrame> frames;
  kernels::Shape shape;
  long long tokens_per_frame = 1;

  const float* key(long long position, int kv_head) const {
    const StreamingFrame& f = frames[position / tokens_per_frame];
    return f.k.data() + (static_cast<size_t>(kv_head) * f.tokens + position % tokens_per_frame) *
                            shape.head_dim;
  }
  /// softmax over `positions` of scale·q_h·k + bias(p) for every query head, averaged over heads.
  template <class Bias>
  std::map<long long, double> head_mean_softmax(const float* q, const std::vector<long long>& positions,
                                                Bias bias) const {
    std::map<long long, double> mean;
    const int d = shape.head_dim, group = shape.heads / shape.kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    for (int h = 0; h < shape.heads; ++h) {
      std::vector<double> z;
      for (long long p : positions) {
        double dot = 0;
        for (int i = 0; i < d; ++i) dot += static_cast<double>(q[h * d + i]) * key(p, h / group)[i];
        z.push_back(scale * dot + bias(p));
      }
      const double top = z.empty() ? 0 : *std::max_element(z.begin(), z.end());
      double sum = 0;
      for (double& x : z) sum += (x = std::exp(x - top));
      for (size_t j = 0; j < positions.size(); ++j) mean[positions[j]] += z[j] / sum / shape.heads;
    }
    return mean;
  }
};

/// The `k` positions of `among` with the highest score (ties: the earlier position), ascending.
inline std::vector<long long> reference_top(std::vector<long long> among,
                                            const std::map<long long, double>& score, long long k) {
  std::stable_sort(among.begin(), among.end(), [&](long long a, long long b) {
    return score.at(a) > score.at(b) || (score.at(a) == score.at(b) && a < b);
  });
  among.resize(std::clamp<long long>(k, 0, static_cast<long long>(among.size())));
  std::sort(among.begin(), among.end());
  return among;
}

/// Positions kept after each frame.
inline std::vector<std::vector<long long>> reference_kept(const ReferenceStream& s,
                                                          const StreamingPolicyParams& p) {
  std::vector<std::vector<long long>> out;
  std::vector<long long> kept;
  std::map<long long, double> accumulated;  // inf_mllm: over the tokens still kept
  long long arrived = 0;
  for (const StreamingFrame& f : s.frames) {
    arrived += f.tokens;
    std::vector<long long> fresh(f.tokens);
    std::iota(fresh.begin(), fresh.end(), f.first_position);
    if (p.kind == StreamingPolicyKind::full) {
      kept.insert(kept.end(), fresh.begin(), fresh.end());
    } else if (p.kind == StreamingPolicyKind::a_vl) {
      // Stored fraction of everything arrived, the new ones chosen by the probe's attention
      // over its own frame.
      const long long target = std::llround(p.stored_rate * static_cast<double>(arrived));
      const long long take = target - static_cast<long long>(kept.size());
      auto importance = s.head_mean_softmax(f.probe_q.data(), fresh, [](long long) { return 0.0; });
      for (long long q : reference_top(fresh, importance, take)) kept.push_back(q);
    } else {
      std::vector<long long> candidates = kept;
      candidates.insert(candidates.end(), fresh.begin(), fresh.end());
      auto attention = s.head_mean_softmax(f.probe_q.data(), candidates, [&](long long q) {
        return p.recency_bias * static_cast<double>(q + 1) / static_cast<double>(arrived);
      });
      std::map<long long, double> next;
      for (long long q : candidates) next[q] = accumulated[q] + attention[q];
      accumulated = next;
      const long long n = static_cast<long long>(candidates.size());
      if (n <= p.cache_tokens) {
        kept = candidates;
      } else {
        const long long recent = std::min(p.recent_tokens, p.cache_tokens);
        std::map<long long, double> local;
        for (long long i = 0; i < n; ++i)
          for (long long j = i - p.saddle_radius; j <= i + p.saddle_radius; ++j)
            if (j >= 0 && j < n) local[candidates[i]] += accumulated[candidates[j]];
        std::vector<long long> older(candidates.begin(), candidates.end() - recent);
        kept = reference_top(older, local, p.cache_tokens - recent);
        kept.insert(kept.end(), candidates.end() - recent, candidates.end());
        std::map<long long, double> still;
        for (long long q : kept) still[q] = accumulated[q];
        accumulated = still;
      }
    }
    out.push_back(kept);
  }
  return out;
}

/// a_vl's core: of the kept positions, the llround(compute_rate · kept) the query q [H][d]
/// attends most (softmax per head over the kept, averaged over heads).
inline std::vector<long long> reference_a_vl_core(const ReferenceStream& s,
                                                  const StreamingPolicyParams& p, const float* q,
                                                  const std::vector<long long>& kept) {
  auto importance = s.head_mean_softmax(q, kept, [](long long) { return 0.0; });
  return reference_top(kept, importance,
                       std::llround(p.compute_rate * static_cast<double>(kept.size())));
}

}  // namespace xring::test
