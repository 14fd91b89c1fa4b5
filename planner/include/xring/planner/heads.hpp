// Head-importance profiles (profiles/heads/) and the per-head KV budget rules built on them:
// full, uniform, and AdaKV-style adaptive (a layer's top-k tokens across all its heads).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "xring/planner/specs.hpp"

namespace xring {

/// How important each kv head of each self-attention layer is. Two forms:
/// - shares: per layer, the fraction of the layer's selected (top-k) tokens that fall in each
///   head; rows sum to 1. Budget-independent; what the synthetic profiles use.
/// - histograms: per layer and head, the fraction of the head's tokens in each score bin
///   (bins in descending score order); the adaptive rule then finds the layer's threshold for
///   any budget and prompt length. What `xring heads build` makes from measured scores.
struct HeadProfile {
  std::string name;
  std::string model;  ///< the ModelSpec name it belongs to
  std::string source;
  int layers = 0;  ///< self-attention layers
  int kv_heads = 0;
  std::vector<std::vector<double>> shares;                   ///< [layer][head]
  std::vector<double> bin_scores;                            ///< histogram bins, descending
  std::vector<std::vector<std::vector<double>>> histograms;  ///< [layer][head][bin]
  bool has_histograms() const { return !histograms.empty(); }
};

HeadProfile head_profile_from_json(const nlohmann::json& j, const std::string& origin);
nlohmann::json to_json(const HeadProfile& p);
/// The profile as JSON text with one row per line (readable diffs of shipped profiles).
std::string to_text(const nlohmann::json& profile);

/// The documented synthetic skew model: shares[l][h] = exp(sigma·z[l][h]) / Σ_h exp(sigma·z),
/// z independent standard normals from a 64-bit Mersenne twister seeded with `seed`
/// (Box–Muller), one row per self-attention layer of `m`.
HeadProfile synthetic_head_profile(const ModelSpec& m, double sigma, uint64_t seed);

/// Builds a histogram profile from measured per-token scores: {"model", "source",
/// "scores": [layer][kv head][token]} (e.g. AdaKV's pooled attention of the observation
/// window), with `bins` log-spaced bins over the scores' range. Throws xring::Error naming
/// `origin` and the field for malformed input.
HeadProfile head_profile_from_scores(const nlohmann::json& scores, const std::string& origin,
                                     int bins);

/// Throws xring::Error unless `p` has one row per self-attention layer of `m` and one entry per
/// kv head: "`origin`: at "`field`": holds L layers x K kv heads but model M has ..." and
/// `hint` after it.
void require_model_shape(const HeadProfile& p, const ModelSpec& m, const std::string& origin,
                         const std::string& field, const std::string& hint = "");

/// Tokens kept per kv head of every self-attention layer for one request, at the end of the
/// prefill of `prompt_tokens` tokens. `profile` may be null for full and uniform.
struct HeadBudgets {
  std::vector<std::vector<long long>> tokens;  ///< [layer][kv head]
  long long total() const;
  long long max_per_head() const;
};

/// AdaKV's floor fraction α for a policy on a model: the policy's `floor` when given, else 0.2
/// for grouped-query models (kv heads < heads; AdaKV's recommendation for GQA, the value
/// kvpress uses) and 0.5 otherwise (AdaKV's code default).
double adakv_floor(const KvPolicy& policy, const ModelSpec& m);

/// full: every head keeps the prompt. uniform: min(kv_budget, prompt) per head.
/// adaptive (AdaKV, KV-POLICIES.md): B' = kv_budget − window; when B' ≥ prompt nothing is
/// compressed; else the layer's H_kv·B' top tokens are split by the profile into c_h, and
/// head h keeps (1 − α)·c_h + α·B' tokens plus the window (α = policy.floor, 0.5 when unset).
/// With policy.redistribute (default) the row is rounded so the layer sums to exactly
/// H_kv·kv_budget and what a head capped at the prompt cannot use goes to the others; without
/// it, AdaKV's code: α·B' rounded down per head, each head rounded alone, capped heads lose the
/// excess.
HeadBudgets head_budgets(const KvPolicy& policy, long long kv_budget, long long prompt_tokens,
                         int layers, int kv_heads, const HeadProfile* profile);

}  // namespace xring
