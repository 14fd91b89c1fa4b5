// Fair copying as it was before its loads were updated incrementally (issue 18, decode half):
// every accepted copy recounted the whole layer's loads. Copied from planner/src/placement.cpp
// at beb4387 (copies read and written through head(h) and set_copies since each head has
// its own slot); the test holds the new implementation to the same bits.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <span>

#include "previous.hpp"

namespace xring::previous {
namespace {

double prior(const LayerLoad& load, int g) {
  return load.gpu_prior.empty() ? 0.0 : load.gpu_prior[g];
}

/// Whether GPU a is a better target than b: less loaded, or as loaded and holding less.
bool lighter(const LayerLoad& load, const std::vector<double>& gpu, int a, int b) {
  if (gpu[a] != gpu[b]) return gpu[a] < gpu[b];
  return prior(load, a) < prior(load, b);
}

/// gpu_loads() into `gpu` (its storage reused).
void fill_gpu_loads(const LayerLoad& load, const LayerPlacement& placement,
                    std::vector<double>& gpu) {
  gpu.assign(load.gpus, 0.0);
  for (int h = 0; h < placement.kv_heads(); ++h) {
    const std::span<const HeadCopy> copies = placement.head(h);
    for (size_t c = 0; c < copies.size(); ++c)
      gpu[copies[c].gpu] +=
          copies[c].requests * load.bytes_per_request[h] + (c > 0 ? load.copy_bytes : 0);
  }
}

/// Splits `requests` among copies whose GPUs carry `base` bytes without this head, each
/// request costing `w`, to minimise the largest GPU (water-filling, then integer rounding).
void level_requests(const std::vector<double>& base, double w, int requests, std::vector<int>& r,
                    std::vector<size_t>& order) {
  const size_t n = base.size();
  r.assign(n, 0);
  if (w <= 0) {
    r[std::min_element(base.begin(), base.end()) - base.begin()] = requests;
    return;
  }
  order.resize(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return base[a] < base[b]; });
  // Water level: the k lowest GPUs rise to lambda with sum((lambda - base)/w) = requests.
  double level = 0, sum = 0;
  size_t k = 0;
  for (; k < n; ++k) {
    sum += base[order[k]];
    level = (requests * w + sum) / (k + 1);
    if (k + 1 == n || level <= base[order[k + 1]]) break;
  }
  int assigned = 0;
  for (size_t i = 0; i <= k && i < n; ++i) {
    size_t c = order[i];
    r[c] = std::max(0, static_cast<int>(std::floor((level - base[c]) / w)));
    assigned += r[c];
  }
  while (assigned < requests) {  // the remainder, one at a time to the lowest finish
    size_t best = 0;
    for (size_t c = 1; c < n; ++c)
      if (base[c] + (r[c] + 1) * w < base[best] + (r[best] + 1) * w) best = c;
    ++r[best];
    ++assigned;
  }
  while (assigned > requests) {
    size_t worst = 0;
    for (size_t c = 1; c < n; ++c)
      if (r[c] > 0 && (r[worst] == 0 || base[c] + r[c] * w > base[worst] + r[worst] * w)) worst = c;
    --r[worst];
    --assigned;
  }
}

}  // namespace

LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies, LayerPlacement p) {
  const auto& w = load.bytes_per_request;
  // Scratch reused across trials and calls: this loop runs for every layer of every plan of a
  // sweep.
  thread_local std::vector<double> base, changed_load;
  thread_local std::vector<HeadCopy> copies, kept;
  thread_local std::vector<int> requests;
  thread_local std::vector<size_t> order;
  thread_local std::vector<std::pair<double, int>> candidates;
  thread_local std::vector<char> holds;
  for (int added = 0; added < max_copies;) {
    const int top = static_cast<int>(std::max_element(p.gpu_load.begin(), p.gpu_load.end()) -
                                     p.gpu_load.begin());
    const double before = p.gpu_load[top];
    // Heads served on the most loaded GPU, heaviest contribution first.
    candidates.clear();
    for (int h = 0; h < p.kv_heads(); ++h)
      for (const HeadCopy& c : p.head(h))
        if (c.gpu == top && c.requests > 0) candidates.push_back({c.requests * w[h], h});
    std::sort(candidates.rbegin(), candidates.rend());
    bool improved = false;
    for (const auto& [unused, h] : candidates) {
      const std::span<const HeadCopy> held = p.head(h);
      holds.assign(load.gpus, 0);
      for (const HeadCopy& c : held) holds[c.gpu] = 1;
      int target = -1;
      for (int g = 0; g < load.gpus; ++g)
        if (!holds[g] && (target < 0 || lighter(load, p.gpu_load, g, target))) target = g;
      if (target < 0) continue;
      copies.assign(held.begin(), held.end());
      copies.push_back({target, 0});
      base.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        base.push_back(p.gpu_load[copies[c].gpu] - copies[c].requests * w[h] +
                       (c + 1 == copies.size() ? load.copy_bytes : 0));
      level_requests(base, w[h], load.requests, requests, order);
      kept.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        if (requests[c] > 0) kept.push_back({copies[c].gpu, requests[c]});
      if (kept.size() <= held.size()) continue;  // the new copy took no requests
      // The trial's maximum: only head h's GPUs (those in `copies`) change; each loses its old
      // share, then gains its new one.
      changed_load.resize(copies.size());
      for (size_t k = 0; k < copies.size(); ++k) {
        const int g = copies[k].gpu;
        double x = p.gpu_load[g];
        if (k < held.size()) x -= held[k].requests * w[h] + (k > 0 ? load.copy_bytes : 0);
        for (size_t c = 0; c < kept.size(); ++c)
          if (kept[c].gpu == g) x += kept[c].requests * w[h] + (c > 0 ? load.copy_bytes : 0);
        changed_load[k] = x;
        holds[g] = 1;
      }
      double trial_max = *std::max_element(changed_load.begin(), changed_load.end());
      for (int g = 0; g < load.gpus; ++g)
        if (!holds[g]) trial_max = std::max(trial_max, p.gpu_load[g]);
      if (trial_max < before * (1 - 1e-12)) {
        p.set_copies(h, kept);
        fill_gpu_loads(load, p, p.gpu_load);  // exact, not incrementally updated
        improved = true;
        ++added;
        break;
      }
    }
    if (!improved) break;
  }
  return p;
}

}  // namespace xring::previous
