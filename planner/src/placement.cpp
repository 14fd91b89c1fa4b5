// kv-head placement for tensor-parallel decode: contiguous, balanced, fair-copying, optimal.
#include "xring/planner/placement.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace xring {
namespace {

double prior(const LayerLoad& load, int g) {
  return load.gpu_prior.empty() ? 0.0 : load.gpu_prior[g];
}

/// Whether GPU a is a better target than b: less loaded, or as loaded and holding less.
bool lighter(const LayerLoad& load, const std::vector<double>& gpu, int a, int b) {
  if (gpu[a] != gpu[b]) return gpu[a] < gpu[b];
  return prior(load, a) < prior(load, b);
}

int slots_per_gpu(const LayerLoad& load) {
  return static_cast<int>(load.bytes_per_request.size()) / load.gpus;
}

/// One copy per head: heads[h] = {{gpu_of[h], requests}}.
LayerPlacement single_copies(const LayerLoad& load, const std::vector<int>& gpu_of) {
  LayerPlacement p;
  for (int g : gpu_of) p.heads.push_back({{g, load.requests}});
  p.gpu_load = gpu_loads(load, p.heads);
  return p;
}

/// Pairwise swaps between the most loaded GPU and any other while they lower the maximum;
/// returns the final maximum.
double improve_by_swaps(const LayerLoad& load, std::vector<int>& gpu_of) {
  const double B = load.requests;
  const auto& w = load.bytes_per_request;
  std::vector<double> gpu(load.gpus, 0.0);
  for (size_t h = 0; h < gpu_of.size(); ++h) gpu[gpu_of[h]] += w[h] * B;
  for (int round = 0; round < 1000; ++round) {
    int top = static_cast<int>(std::max_element(gpu.begin(), gpu.end()) - gpu.begin());
    double best_gain = 0;
    size_t best_a = 0, best_b = 0;
    for (size_t a = 0; a < gpu_of.size(); ++a) {
      if (gpu_of[a] != top) continue;
      for (size_t b = 0; b < gpu_of.size(); ++b) {
        if (gpu_of[b] == top) continue;
        double delta = (w[a] - w[b]) * B;  // moves from top to the other GPU
        if (delta <= 0) continue;
        double new_pair_max = std::max(gpu[top] - delta, gpu[gpu_of[b]] + delta);
        double gain = gpu[top] - new_pair_max;
        if (gain > best_gain + 1e-9 * gpu[top]) {
          best_gain = gain;
          best_a = a;
          best_b = b;
        }
      }
    }
    if (best_gain <= 0) break;
    double delta = (w[best_a] - w[best_b]) * B;
    gpu[top] -= delta;
    gpu[gpu_of[best_b]] += delta;
    std::swap(gpu_of[best_a], gpu_of[best_b]);
  }
  return *std::max_element(gpu.begin(), gpu.end());
}

std::vector<int> contiguous_assignment(const LayerLoad& load) {
  std::vector<int> gpu_of(load.bytes_per_request.size());
  for (size_t h = 0; h < gpu_of.size(); ++h) gpu_of[h] = static_cast<int>(h) / slots_per_gpu(load);
  return gpu_of;
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

std::string to_string(PlacementKind k) {
  switch (k) {
    case PlacementKind::contiguous:
      return "contiguous";
    case PlacementKind::balanced:
      return "balanced";
    case PlacementKind::fair_copying:
      return "fair_copying";
    case PlacementKind::optimal:
      return "optimal";
  }
  return "?";
}

double LayerPlacement::max_load() const {
  return gpu_load.empty() ? 0.0 : *std::max_element(gpu_load.begin(), gpu_load.end());
}

int LayerPlacement::copies() const {
  int extra = 0;
  for (const auto& copies : heads) extra += static_cast<int>(copies.size()) - 1;
  return extra;
}

std::vector<double> gpu_loads(const LayerLoad& load,
                              const std::vector<std::vector<HeadCopy>>& heads) {
  std::vector<double> gpu(load.gpus, 0.0);
  for (size_t h = 0; h < heads.size(); ++h)
    for (size_t c = 0; c < heads[h].size(); ++c)
      gpu[heads[h][c].gpu] +=
          heads[h][c].requests * load.bytes_per_request[h] + (c > 0 ? load.copy_bytes : 0);
  return gpu;
}

double load_lower_bound(const LayerLoad& load) {
  return std::accumulate(load.bytes_per_request.begin(), load.bytes_per_request.end(), 0.0) *
         load.requests / load.gpus;
}

LayerPlacement place_contiguous(const LayerLoad& load) {
  return single_copies(load, contiguous_assignment(load));
}

LayerPlacement place_balanced(const LayerLoad& load) {
  const auto& w = load.bytes_per_request;
  const int slots = slots_per_gpu(load);
  std::vector<size_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
  std::vector<int> lpt(w.size());
  std::vector<double> gpu(load.gpus, 0.0);
  std::vector<int> used(load.gpus, 0);
  for (size_t h : order) {
    int best = -1;
    for (int g = 0; g < load.gpus; ++g)
      if (used[g] < slots && (best < 0 || lighter(load, gpu, g, best))) best = g;
    lpt[h] = best;
    gpu[best] += w[h];
    ++used[best];
  }
  double lpt_max = improve_by_swaps(load, lpt);
  std::vector<int> contiguous = contiguous_assignment(load);
  double contiguous_max = improve_by_swaps(load, contiguous);
  return single_copies(load, lpt_max <= contiguous_max ? lpt : contiguous);
}

LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies) {
  return place_fair_copying(load, max_copies, place_balanced(load));
}

LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies, LayerPlacement p) {
  const auto& w = load.bytes_per_request;
  // Scratch reused across trials: this loop runs for every layer of every plan of a sweep.
  std::vector<double> trial_load, base;
  std::vector<HeadCopy> copies, kept;
  std::vector<int> requests;
  std::vector<size_t> order;
  std::vector<std::pair<double, int>> candidates;
  for (int added = 0; added < max_copies;) {
    const double before = p.max_load();
    const int top = static_cast<int>(std::max_element(p.gpu_load.begin(), p.gpu_load.end()) -
                                     p.gpu_load.begin());
    // Heads served on the most loaded GPU, heaviest contribution first.
    candidates.clear();
    for (size_t h = 0; h < p.heads.size(); ++h)
      for (const auto& c : p.heads[h])
        if (c.gpu == top && c.requests > 0)
          candidates.push_back({c.requests * w[h], static_cast<int>(h)});
    std::sort(candidates.rbegin(), candidates.rend());
    bool improved = false;
    for (const auto& [unused, h] : candidates) {
      int target = -1;
      for (int g = 0; g < load.gpus; ++g) {
        bool holds = std::any_of(p.heads[h].begin(), p.heads[h].end(),
                                 [&](const HeadCopy& c) { return c.gpu == g; });
        if (!holds && (target < 0 || lighter(load, p.gpu_load, g, target))) target = g;
      }
      if (target < 0) continue;
      copies = p.heads[h];
      copies.push_back({target, 0});
      base.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        base.push_back(p.gpu_load[copies[c].gpu] - copies[c].requests * w[h] +
                       (c + 1 == copies.size() ? load.copy_bytes : 0));
      level_requests(base, w[h], load.requests, requests, order);
      kept.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        if (requests[c] > 0) kept.push_back({copies[c].gpu, requests[c]});
      if (kept.size() <= p.heads[h].size()) continue;  // the new copy took no requests
      // The trial's loads: only head h's GPUs change.
      trial_load = p.gpu_load;
      for (size_t c = 0; c < p.heads[h].size(); ++c)
        trial_load[p.heads[h][c].gpu] -=
            p.heads[h][c].requests * w[h] + (c > 0 ? load.copy_bytes : 0);
      for (size_t c = 0; c < kept.size(); ++c)
        trial_load[kept[c].gpu] += kept[c].requests * w[h] + (c > 0 ? load.copy_bytes : 0);
      if (*std::max_element(trial_load.begin(), trial_load.end()) < before * (1 - 1e-12)) {
        p.heads[h] = kept;
        p.gpu_load = gpu_loads(load, p.heads);  // exact, not incrementally updated
        improved = true;
        ++added;
        break;
      }
    }
    if (!improved) break;
  }
  return p;
}

std::optional<LayerPlacement> place_optimal(const LayerLoad& load, long long node_limit) {
  return place_optimal(load, node_limit, place_balanced(load));
}

std::optional<LayerPlacement> place_optimal(const LayerLoad& load, long long node_limit,
                                            const LayerPlacement& start) {
  const auto& w = load.bytes_per_request;
  const int slots = slots_per_gpu(load);
  const double B = load.requests;
  std::vector<size_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return w[a] > w[b]; });
  const double lower = load_lower_bound(load);
  double best = start.max_load();
  std::vector<int> best_gpu_of(w.size());
  for (size_t h = 0; h < w.size(); ++h) best_gpu_of[h] = start.heads[h][0].gpu;
  std::vector<int> gpu_of(w.size(), -1), used(load.gpus, 0);
  std::vector<double> gpu(load.gpus, 0.0);
  long long nodes = 0;
  bool exhausted = false;
  auto search = [&](auto&& self, size_t i, double current_max) -> void {
    if (exhausted || best <= lower * (1 + 1e-12)) return;
    if (++nodes > node_limit) {
      exhausted = true;
      return;
    }
    if (i == order.size()) {
      if (current_max < best) {
        best = current_max;
        best_gpu_of = gpu_of;
      }
      return;
    }
    const size_t h = order[i];
    for (int g = 0; g < load.gpus; ++g) {
      if (used[g] >= slots) continue;
      bool same_as_earlier = false;  // GPUs in identical states are interchangeable
      for (int e = 0; e < g && !same_as_earlier; ++e)
        same_as_earlier = used[e] == used[g] && gpu[e] == gpu[g];
      if (same_as_earlier) continue;
      double next = gpu[g] + w[h] * B;
      if (next >= best) continue;
      gpu[g] = next;
      ++used[g];
      gpu_of[h] = g;
      self(self, i + 1, std::max(current_max, next));
      gpu[g] -= w[h] * B;
      --used[g];
      gpu_of[h] = -1;
    }
  };
  search(search, 0, 0.0);
  if (exhausted) return std::nullopt;
  return single_copies(load, best_gpu_of);
}

}  // namespace xring
