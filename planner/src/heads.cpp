// Head-importance profiles: reading, writing, the synthetic skew model, building from
// measured scores; and the per-head budget rules.
#include "xring/planner/heads.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

constexpr double kShareTolerance = 1e-6;
/// AdaKV's floor fraction α: its code's default (FFY0/AdaKV, floor_alpha 0.5) and the value
/// it recommends for grouped-query models (0.2, also kvpress's default).
constexpr double kAdaKvFloor = 0.5;
constexpr double kAdaKvFloorGqa = 0.2;

std::vector<double> number_row(const json& v, ObjectReader& r, const std::string& at, size_t size) {
  if (!v.is_array() || v.size() != size)
    r.fail(at, "must be an array of " + std::to_string(size) + " numbers");
  std::vector<double> out;
  for (const auto& x : v) {
    if (!x.is_number() || x.get<double>() < 0 || !std::isfinite(x.get<double>()))
      r.fail(at, "must hold non-negative numbers");
    out.push_back(x.get<double>());
  }
  return out;
}

/// Rounds non-negative values to integers whose sum is the rounded sum (largest remainder),
/// into `out`.
void round_preserving_sum(const std::vector<double>& v, std::vector<long long>& out) {
  out.resize(v.size());
  double total = 0;
  long long floor_sum = 0;
  thread_local std::vector<std::pair<double, size_t>> remainders;  // scratch: every layer
  remainders.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double down = std::floor(v[i]);
    out[i] = static_cast<long long>(down);
    floor_sum += out[i];
    total += v[i];
    remainders[i] = {v[i] - down, i};
  }
  const long long missing = std::llround(total) - floor_sum;
  if (missing <= 0) return;
  // The `missing` largest remainders get one more, equal ones by index (what a stable sort
  // would pick); only which ones matter, not their order.
  auto larger = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  };
  const size_t n = std::min<size_t>(static_cast<size_t>(missing), v.size());
  if (n < v.size())
    std::nth_element(remainders.begin(), remainders.begin() + n, remainders.end(), larger);
  for (size_t k = 0; k < n; ++k) ++out[remainders[k].second];
}

/// Caps every value at `cap`, handing what a capped entry loses to the others in proportion.
void cap_and_redistribute(std::vector<double>& v, double cap) {
  for (int round = 0; round < 64; ++round) {
    double excess = 0, room_weight = 0;
    for (double x : v) {
      if (x > cap)
        excess += x - cap;
      else
        room_weight += x;
    }
    if (excess <= 1e-9) return;
    for (double& x : v) x = x > cap ? cap : x;
    if (room_weight <= 0) return;
    for (double& x : v)
      if (x < cap) x += excess * x / room_weight;
  }
}

/// c_h: how many of the layer's `selected` top tokens fall in each head, from the histogram
/// of each head's `candidates` tokens.
std::vector<double> selected_per_head(const HeadProfile& p, int layer, double selected,
                                      double candidates) {
  const auto& h = p.histograms[layer];
  std::vector<double> c(h.size(), 0.0);
  double remaining = selected;
  for (size_t bin = 0; bin < p.bin_scores.size() && remaining > 0; ++bin) {
    double in_bin = 0;
    for (const auto& head : h) in_bin += head[bin] * candidates;
    double take = std::min(1.0, in_bin > 0 ? remaining / in_bin : 0.0);
    for (size_t head = 0; head < h.size(); ++head) c[head] += take * h[head][bin] * candidates;
    remaining -= take * in_bin;
  }
  return c;
}

double standard_normal(std::mt19937_64& rng) {
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) / 9007199254740992.0; };
  double u1 = uniform(), u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace

HeadProfile head_profile_from_json(const json& j, const std::string& origin) {
  ObjectReader r(j, origin, "");
  HeadProfile p;
  p.name = r.string("name");
  p.model = r.string("model");
  p.source = r.string("source");
  r.optional_string("skew_model");
  p.layers = r.int32("layers", 1, 100000);
  p.kv_heads = r.int32("kv_heads", 1, 4096);
  const bool shares = r.has("shares");
  if (shares == r.has("histograms"))
    r.fail(shares ? "histograms" : "shares", "give exactly one of shares and histograms");
  if (shares) {
    r.allow("histograms");
    r.allow("bin_scores");
    const json& rows = r.raw("shares");
    if (!rows.is_array() || static_cast<int>(rows.size()) != p.layers)
      r.fail("shares", "must hold one row per layer (" + std::to_string(p.layers) + ")");
    for (size_t l = 0; l < rows.size(); ++l) {
      std::string at = "shares[" + std::to_string(l) + "]";
      auto row = number_row(rows[l], r, at, p.kv_heads);
      double sum = std::accumulate(row.begin(), row.end(), 0.0);
      if (std::fabs(sum - 1.0) > kShareTolerance)
        r.fail(at, "must sum to 1 (sums to " + std::to_string(sum) + ")");
      p.shares.push_back(row);
    }
  } else {
    r.allow("shares");
    const json& scores = r.raw("bin_scores");
    if (!scores.is_array() || scores.empty()) r.fail("bin_scores", "must be a non-empty array");
    p.bin_scores = number_row(scores, r, "bin_scores", scores.size());
    for (size_t b = 1; b < p.bin_scores.size(); ++b)
      if (p.bin_scores[b] > p.bin_scores[b - 1])
        r.fail("bin_scores", "must be in descending order");
    const json& layers = r.raw("histograms");
    if (!layers.is_array() || static_cast<int>(layers.size()) != p.layers)
      r.fail("histograms", "must hold one entry per layer (" + std::to_string(p.layers) + ")");
    for (size_t l = 0; l < layers.size(); ++l) {
      std::string at = "histograms[" + std::to_string(l) + "]";
      if (!layers[l].is_array() || static_cast<int>(layers[l].size()) != p.kv_heads)
        r.fail(at, "must hold one histogram per kv head (" + std::to_string(p.kv_heads) + ")");
      std::vector<std::vector<double>> heads;
      for (size_t h = 0; h < layers[l].size(); ++h) {
        std::string hat = at + "[" + std::to_string(h) + "]";
        auto row = number_row(layers[l][h], r, hat, p.bin_scores.size());
        double sum = std::accumulate(row.begin(), row.end(), 0.0);
        if (std::fabs(sum - 1.0) > kShareTolerance)
          r.fail(hat, "must sum to 1 (sums to " + std::to_string(sum) + ")");
        heads.push_back(row);
      }
      p.histograms.push_back(heads);
    }
  }
  r.finish();
  return p;
}

json to_json(const HeadProfile& p) {
  json j = {{"name", p.name},
            {"model", p.model},
            {"source", p.source},
            {"layers", p.layers},
            {"kv_heads", p.kv_heads}};
  if (p.has_histograms()) {
    j["bin_scores"] = p.bin_scores;
    j["histograms"] = p.histograms;
  } else {
    j["shares"] = p.shares;
  }
  return j;
}

std::string to_text(const json& profile) {
  std::string out = "{\n";
  size_t i = 0;
  for (const auto& [key, value] : profile.items()) {
    out += "  " + json(key).dump() + ": ";
    if ((key == "shares" || key == "histograms") && value.is_array()) {
      out += "[\n";
      for (size_t r = 0; r < value.size(); ++r)
        out += "    " + value[r].dump() + (r + 1 < value.size() ? ",\n" : "\n");
      out += "  ]";
    } else {
      out += value.dump();
    }
    out += ++i < profile.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

HeadProfile synthetic_head_profile(const ModelSpec& m, double sigma, uint64_t seed) {
  if (!(sigma >= 0 && sigma <= 10))
    throw Error("--sigma must be a finite number in [0, 10], got " + std::to_string(sigma));
  HeadProfile p;
  p.name = m.name;
  p.model = m.name;
  p.layers = self_attention_layers(m);
  p.kv_heads = m.self_attention.kv_heads;
  p.source = "synthetic: xring heads synth --model " + m.name + " --sigma " +
             std::to_string(sigma).substr(0, 4) + " --seed " + std::to_string(seed) +
             "; shares = softmax(sigma * z), z ~ N(0,1) per layer and kv head (lognormal skew)";
  std::mt19937_64 rng(seed);
  for (int l = 0; l < p.layers; ++l) {
    std::vector<double> row(p.kv_heads);
    for (double& x : row) x = std::exp(sigma * standard_normal(rng));
    double sum = std::accumulate(row.begin(), row.end(), 0.0);
    for (double& x : row) x /= sum;
    // Rounded so the JSON stays readable; renormalised so each row sums to 1 within 1e-9.
    for (double& x : row) x = std::round(x * 1e9) / 1e9;
    row.back() = std::round((1.0 - std::accumulate(row.begin(), row.end() - 1, 0.0)) * 1e9) / 1e9;
    p.shares.push_back(row);
  }
  return p;
}

HeadProfile head_profile_from_scores(const json& j, const std::string& origin, int bins) {
  if (bins < 2 || bins > 4096) throw Error("--bins must be between 2 and 4096");
  ObjectReader r(j, origin, "");
  HeadProfile p;
  p.model = r.string("model");
  p.source = r.string("source");
  p.name = r.optional_string("name").value_or(p.model + "-measured");
  const json& layers = r.raw("scores");
  if (!layers.is_array() || layers.empty()) r.fail("scores", "must be an array of layers");
  double lo = INFINITY, hi = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    std::string at = "scores[" + std::to_string(l) + "]";
    if (!layers[l].is_array() || layers[l].empty()) r.fail(at, "must be an array of kv heads");
    if (layers[l].size() != layers[0].size())
      r.fail(at, "every layer needs the same number of kv heads");
    for (size_t h = 0; h < layers[l].size(); ++h) {
      std::string hat = at + "[" + std::to_string(h) + "]";
      if (!layers[l][h].is_array() || layers[l][h].empty())
        r.fail(hat, "must be a non-empty array of scores");
      for (const auto& s : layers[l][h]) {
        if (!s.is_number() || !(s.get<double>() > 0) || !std::isfinite(s.get<double>()))
          r.fail(hat, "scores must be positive numbers");
        lo = std::min(lo, s.get<double>());
        hi = std::max(hi, s.get<double>());
      }
    }
  }
  r.finish();
  p.layers = static_cast<int>(layers.size());
  p.kv_heads = static_cast<int>(layers[0].size());
  // Log-spaced bins from the highest score down; bin b covers [edge(b+1), edge(b)).
  double log_hi = std::log(hi) + 1e-12, log_lo = std::log(lo);
  double width = (log_hi - log_lo) / bins;
  for (int b = 0; b < bins; ++b) p.bin_scores.push_back(std::exp(log_hi - (b + 0.5) * width));
  for (const auto& layer : layers) {
    std::vector<std::vector<double>> heads;
    for (const auto& head : layer) {
      std::vector<double> hist(bins, 0.0);
      for (const auto& s : head) {
        int b = width > 0 ? static_cast<int>((log_hi - std::log(s.get<double>())) / width) : 0;
        hist[std::clamp(b, 0, bins - 1)] += 1.0 / head.size();
      }
      heads.push_back(hist);
    }
    p.histograms.push_back(heads);
  }
  p.source +=
      " (histograms built by xring heads build, " + std::to_string(bins) + " log-spaced bins)";
  return p;
}

void require_model_shape(const HeadProfile& p, const ModelSpec& m, const std::string& origin,
                         const std::string& field, const std::string& hint) {
  const int layers = self_attention_layers(m), kv_heads = m.self_attention.kv_heads;
  if (p.layers == layers && p.kv_heads == kv_heads) return;
  throw Error(origin + ": at \"" + field + "\": holds " + std::to_string(p.layers) + " layers x " +
              std::to_string(p.kv_heads) + " kv heads but model " + m.name + " has " +
              std::to_string(layers) + " self-attention layers x " + std::to_string(kv_heads) +
              " kv heads" + hint);
}

long long HeadBudgets::total() const {
  long long t = 0;
  for (const auto& row : tokens) t = std::accumulate(row.begin(), row.end(), t);
  return t;
}

long long HeadBudgets::max_per_head() const {
  long long m = 0;
  for (const auto& row : tokens) m = std::max(m, *std::max_element(row.begin(), row.end()));
  return m;
}

double adakv_floor(const KvPolicy& policy, const ModelSpec& m) {
  if (policy.floor) return *policy.floor;
  return m.self_attention.kv_heads < m.self_attention.heads ? kAdaKvFloorGqa : kAdaKvFloor;
}

HeadBudgets head_budgets(const KvPolicy& policy, long long kv_budget, long long prompt_tokens,
                         int layers, int kv_heads, const HeadProfile* profile) {
  HeadBudgets b;
  const long long L = prompt_tokens;
  if (policy.kind != KvPolicyKind::adaptive) {
    long long keep = policy.kind == KvPolicyKind::uniform ? std::min(kv_budget, L) : L;
    b.tokens.assign(layers, std::vector<long long>(kv_heads, keep));
    return b;
  }
  if (!profile) throw Error("the adaptive kv_policy needs a head-importance profile");
  const double alpha = policy.floor.value_or(kAdaKvFloor);
  const long long window = std::min<long long>(policy.window, L);
  const long long selectable = L - window;
  const long long b_prime = std::max<long long>(kv_budget - policy.window, 0);
  b.tokens.reserve(layers);
  for (int l = 0; l < layers; ++l) {
    if (b_prime >= selectable) {
      b.tokens.push_back(std::vector<long long>(kv_heads, L));
      continue;
    }
    const double selected = static_cast<double>(kv_heads) * b_prime;
    thread_local std::vector<double> c, keep;  // scratch: every layer of every plan
    if (profile->has_histograms()) {
      c = selected_per_head(*profile, l, selected, static_cast<double>(selectable));
    } else {
      c.assign(profile->shares[l].begin(), profile->shares[l].end());
      for (double& x : c) x *= selected;
    }
    std::vector<long long> row(kv_heads);
    if (policy.redistribute) {
      // Keeping the floor fractional and rounding the whole row makes the layer's budgets sum
      // exactly to H_kv·B'; a head capped at the prompt hands its excess to the others.
      keep.resize(kv_heads);
      for (int h = 0; h < kv_heads; ++h) keep[h] = (1 - alpha) * c[h] + alpha * b_prime;
      cap_and_redistribute(keep, static_cast<double>(selectable));
      round_preserving_sum(keep, row);
    } else {
      // AdaKV's code: floor int(α·B') per head, each head rounded alone (torch.round, half to
      // even), a head's top-k capped at its prompt; the excess is lost.
      const double floor = std::floor(alpha * b_prime);
      for (int h = 0; h < kv_heads; ++h)
        row[h] = std::min(static_cast<long long>(std::nearbyint((1 - alpha) * c[h] + floor)),
                          selectable);
    }
    for (auto& t : row) t = std::min(t + window, L);
    b.tokens.push_back(std::move(row));
  }
  return b;
}

}  // namespace xring
