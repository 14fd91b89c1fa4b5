// kv-head placement for tensor-parallel decode: contiguous, balanced, fair-copying, optimal.
#include "xring/planner/placement.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <string>

namespace xring {
namespace {

double prior(const LayerLoad& load, int g) {
  return load.gpu_prior.empty() ? 0.0 : load.gpu_prior[g];
}

int slots_per_gpu(const LayerLoad& load) {
  return static_cast<int>(load.bytes_per_request.size()) / load.gpus;
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

/// One copy per head: head h on GPU gpu_of[h] with every request, written into `p` (its
/// storage reused).
void single_copies(const LayerLoad& load, const std::vector<int>& gpu_of, LayerPlacement& p) {
  p.set_single_copies(gpu_of, load.requests);
  fill_gpu_loads(load, p, p.gpu_load);
}

LayerPlacement single_copies(const LayerLoad& load, const std::vector<int>& gpu_of) {
  LayerPlacement p;
  single_copies(load, gpu_of, p);
  return p;
}

/// Pairwise swaps between the most loaded GPU and any other while they lower the maximum;
/// returns the final maximum.
double improve_by_swaps(const LayerLoad& load, std::vector<int>& gpu_of) {
  const double B = load.requests;
  const auto& w = load.bytes_per_request;
  thread_local std::vector<double> gpu;  // scratch: runs twice per layer of every plan
  gpu.assign(load.gpus, 0.0);
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

void contiguous_assignment(const LayerLoad& load, std::vector<int>& gpu_of) {
  gpu_of.resize(load.bytes_per_request.size());
  for (size_t h = 0; h < gpu_of.size(); ++h) gpu_of[h] = static_cast<int>(h) / slots_per_gpu(load);
}

/// Which copies each GPU holds, by head in head order: what a GPU's load is summed from.
/// A head has at most one copy on a GPU.
class GpuCopies {
 public:
  struct Entry {
    int head = 0;
    int copy = 0;  ///< index among the head's copies (0: its original)
  };
  void build(const LayerPlacement& p, int gpus) {
    if (static_cast<int>(lists_.size()) < gpus) lists_.resize(gpus);
    for (int g = 0; g < gpus; ++g) lists_[g].clear();
    for (int h = 0; h < p.kv_heads(); ++h) {
      const std::span<const HeadCopy> copies = p.head(h);
      for (size_t c = 0; c < copies.size(); ++c)
        lists_[copies[c].gpu].push_back({h, static_cast<int>(c)});
    }
  }
  const std::vector<Entry>& of(int g) const { return lists_[g]; }
  /// Head `head`'s copy on GPU g becomes copy number `copy`, or leaves it when `copy` < 0;
  /// a head not yet on g is added in head order.
  void set(int g, int head, int copy) {
    std::vector<Entry>& l = lists_[g];
    auto at = std::lower_bound(l.begin(), l.end(), head,
                               [](const Entry& e, int h) { return e.head < h; });
    const bool held = at != l.end() && at->head == head;
    if (copy < 0) {
      if (held) l.erase(at);
    } else if (held) {
      at->copy = copy;
    } else {
      l.insert(at, {head, copy});
    }
  }
  /// GPU g's load, summed as fill_gpu_loads sums it (same terms, same order).
  double load(const LayerLoad& load, const LayerPlacement& p, int g) const {
    double sum = 0.0;
    for (const Entry& e : lists_[g])
      sum += p.head(e.head)[e.copy].requests * load.bytes_per_request[e.head] +
             (e.copy > 0 ? load.copy_bytes : 0);
    return sum;
  }

 private:
  std::vector<std::vector<Entry>> lists_;
};

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
  // The copies by base, lowest first: a handful, so by insertion. How equal bases are ordered
  // changes nothing below (the same sums; a level at a tie gives the tied copies 0 each).
  order.resize(n);
  for (size_t i = 0; i < n; ++i) {
    size_t j = i;
    for (; j > 0 && base[i] < base[order[j - 1]]; --j) order[j] = order[j - 1];
    order[j] = i;
  }
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
    // floor, kept at 0 or more: below 1 that is 0, from 1 on truncation is floor
    const double fill = (level - base[c]) / w;
    r[c] = fill >= 1 ? static_cast<int>(fill) : 0;
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

/// Fair copying (place_fair_copying) from the balanced placement `p`, in place.
void copy_fairly(const LayerLoad& load, int max_copies, LayerPlacement& p);

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

void LayerPlacement::set_single_copies(std::span<const int> gpu_of, int requests) {
  const size_t heads = gpu_of.size();
  arena.resize(heads);
  slots.resize(heads);
  for (size_t h = 0; h < heads; ++h) {
    arena[h] = {gpu_of[h], requests};
    slots[h] = {static_cast<int>(h), 1, 1};
  }
}

void LayerPlacement::set_copies(int h, std::span<const HeadCopy> copies) {
  Slot& slot = slots[h];
  const int count = static_cast<int>(copies.size());
  if (count > slot.capacity) {
    slot.start = static_cast<int>(arena.size());
    slot.capacity = 2 * count;  // a fair-copied head tends to gain more copies
    arena.resize(arena.size() + slot.capacity);
  }
  slot.count = count;
  std::copy(copies.begin(), copies.end(), arena.begin() + slot.start);
}

int LayerPlacement::copies() const {
  int total = 0;
  for (const Slot& s : slots) total += s.count;
  return total - kv_heads();
}

std::vector<double> gpu_loads(const LayerLoad& load, const LayerPlacement& placement) {
  std::vector<double> gpu;
  fill_gpu_loads(load, placement, gpu);
  return gpu;
}

double load_lower_bound(const LayerLoad& load) {
  return std::accumulate(load.bytes_per_request.begin(), load.bytes_per_request.end(), 0.0) *
         load.requests / load.gpus;
}

LayerPlacement place_contiguous(const LayerLoad& load) {
  LayerPlacement p;
  place_contiguous(load, p);
  return p;
}

void place_contiguous(const LayerLoad& load, LayerPlacement& out) {
  thread_local std::vector<int> gpu_of;
  contiguous_assignment(load, gpu_of);
  single_copies(load, gpu_of, out);
}

LayerPlacement place_balanced(const LayerLoad& load) {
  LayerPlacement p;
  place_balanced(load, p);
  return p;
}

void heaviest_first(const LayerLoad& load, std::vector<int>& order) {
  const auto& w = load.bytes_per_request;
  // By (−bytes, head): heaviest first, equal bytes in head order, as a stable sort would give;
  // the keys sit beside each other instead of behind an index.
  thread_local std::vector<std::pair<double, int>> keyed;
  keyed.resize(w.size());
  for (size_t h = 0; h < w.size(); ++h) keyed[h] = {-w[h], static_cast<int>(h)};
  std::sort(keyed.begin(), keyed.end());
  order.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) order[i] = keyed[i].second;
}

void place_balanced(const LayerLoad& load, LayerPlacement& out) {
  thread_local std::vector<int> order;  // scratch reused across calls
  heaviest_first(load, order);
  place_balanced(load, order, out);
}

void place_balanced(const LayerLoad& load, std::span<const int> heaviest, LayerPlacement& out) {
  const auto& w = load.bytes_per_request;
  const int slots = slots_per_gpu(load);
  // Scratch reused across calls (every layer of every plan of a sweep).
  thread_local std::vector<int> lpt, used, free_gpus, contiguous;
  thread_local std::vector<double> gpu;
  lpt.assign(w.size(), 0);
  gpu.assign(load.gpus, 0.0);
  used.assign(load.gpus, 0);
  // GPUs with a free slot, the lightest on top: least loaded, then holding less (smaller prior),
  // then the lowest index.
  auto heavier = [&](int a, int b) {
    if (gpu[a] != gpu[b]) return gpu[a] > gpu[b];
    if (prior(load, a) != prior(load, b)) return prior(load, a) > prior(load, b);
    return a > b;
  };
  free_gpus.resize(load.gpus);
  std::iota(free_gpus.begin(), free_gpus.end(), 0);
  std::make_heap(free_gpus.begin(), free_gpus.end(), heavier);
  for (int h : heaviest) {
    std::pop_heap(free_gpus.begin(), free_gpus.end(), heavier);
    const int best = free_gpus.back();
    lpt[h] = best;
    gpu[best] += w[h];
    if (++used[best] < slots)
      std::push_heap(free_gpus.begin(), free_gpus.end(), heavier);
    else
      free_gpus.pop_back();
  }
  // One head per GPU: every assignment's maximum is the heaviest head's and no swap lowers it,
  // so improving LPT and contiguous would keep LPT (the tie goes to it).
  if (slots == 1) {
    single_copies(load, lpt, out);
    return;
  }
  double lpt_max = improve_by_swaps(load, lpt);
  contiguous_assignment(load, contiguous);
  double contiguous_max = improve_by_swaps(load, contiguous);
  single_copies(load, lpt_max <= contiguous_max ? lpt : contiguous, out);
}

LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies) {
  return place_fair_copying(load, max_copies, place_balanced(load));
}

LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies, LayerPlacement p) {
  copy_fairly(load, max_copies, p);
  return p;
}

void place_fair_copying(const LayerLoad& load, int max_copies, const LayerPlacement& balanced,
                        LayerPlacement& out) {
  out = balanced;
  copy_fairly(load, max_copies, out);
}

namespace {
void copy_fairly(const LayerLoad& load, int max_copies, LayerPlacement& p) {
  const auto& w = load.bytes_per_request;
  const int G = load.gpus;
  std::vector<double>& gpu = p.gpu_load;
  // Scratch reused across trials and calls: this loop runs for every layer of every plan of a
  // sweep.
  thread_local std::vector<double> base;
  thread_local std::vector<HeadCopy> copies, kept;
  thread_local std::vector<int> requests;
  thread_local std::vector<size_t> order;
  thread_local std::vector<std::pair<double, int>> candidates;
  thread_local GpuCopies on_gpu;
  thread_local std::vector<int> at_top, by_prior, tie;
  thread_local std::vector<char> holds;
  on_gpu.build(p, G);
  // A new copy goes to the lightest GPU without the head: less loaded, then holding less
  // (smaller prior), then the lower index. The last two never change: tie[g] is g's place
  // among the GPUs by (prior, index).
  by_prior.resize(G);
  std::iota(by_prior.begin(), by_prior.end(), 0);
  std::sort(by_prior.begin(), by_prior.end(), [&](int a, int b) {
    return prior(load, a) != prior(load, b) ? prior(load, a) < prior(load, b) : a < b;
  });
  tie.resize(G);
  for (int i = 0; i < G; ++i) tie[by_prior[i]] = i;
  holds.assign(G, 0);
  for (int added = 0; added < max_copies;) {
    // The most loaded GPU (the lowest index among equals, as max_element finds it), and the
    // GPUs a trial's maximum cannot fall below unless it changes them (it changes only its
    // head's GPUs).
    const double before = *std::max_element(gpu.begin(), gpu.end());
    const double to_beat = before * (1 - 1e-12);
    int top = -1;
    at_top.clear();
    for (int g = 0; g < G; ++g)
      if (!(gpu[g] < to_beat)) {
        at_top.push_back(g);
        if (top < 0 && gpu[g] == before) top = g;
      }
    // Heads served on the most loaded GPU, heaviest contribution first.
    candidates.clear();
    for (const GpuCopies::Entry& e : on_gpu.of(top)) {
      const int requests_served = p.head(e.head)[e.copy].requests;
      if (requests_served > 0) candidates.push_back({requests_served * w[e.head], e.head});
    }
    std::sort(candidates.rbegin(), candidates.rend());
    bool improved = false;
    for (const auto& [unused, h] : candidates) {
      const std::span<const HeadCopy> held = p.head(h);
      for (const HeadCopy& c : held) holds[c.gpu] = 1;
      // The lightest GPU without the head, without branches (which GPU wins is data; a branch
      // on it mispredicts half the time and costs more than the whole scan).
      int target = -1, target_tie = G;
      double target_load = std::numeric_limits<double>::infinity();
      for (int g = 0; g < G; ++g) {
        const int not_held = holds[g] == 0, less = gpu[g] < target_load,
                  same = gpu[g] == target_load, earlier = tie[g] < target_tie;
        const bool better = not_held & (less | (same & earlier));  // ints: no short circuit
        target = better ? g : target;
        target_tie = better ? tie[g] : target_tie;
        target_load = better ? gpu[g] : target_load;
      }
      // What no split can change: a trial that leaves a GPU at the top unchanged, or whose new
      // copy would put its GPU at the top with a single request, lowers nothing (rounding is
      // monotonic: r·w + copy ≥ w + copy for r ≥ 1, and the new copy is never the head's first).
      const bool futile = target < 0 ||
                          !std::all_of(at_top.begin(), at_top.end(),
                                       [&](int g) { return g == target || holds[g]; }) ||
                          !(gpu[target] + (w[h] + load.copy_bytes) < to_beat);
      for (const HeadCopy& c : held) holds[c.gpu] = 0;
      if (futile) continue;
      copies.assign(held.begin(), held.end());
      copies.push_back({target, 0});
      base.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        base.push_back(gpu[copies[c].gpu] - copies[c].requests * w[h] +
                       (c + 1 == copies.size() ? load.copy_bytes : 0));
      level_requests(base, w[h], load.requests, requests, order);
      kept.clear();
      for (size_t c = 0; c < copies.size(); ++c)
        if (requests[c] > 0) kept.push_back({copies[c].gpu, requests[c]});
      if (kept.size() <= held.size()) continue;  // the new copy took no requests
      // The trial lowers the maximum when every GPU it changes ends below `to_beat` (each loses
      // its old share of head h, then gains its new one: kept[c], the copies that keep
      // requests in copy order); it changes every GPU at the top.
      bool lower = true;
      for (size_t k = 0, c = 0; lower && k < copies.size(); ++k) {
        double x = gpu[copies[k].gpu];
        if (k < held.size()) x -= held[k].requests * w[h] + (k > 0 ? load.copy_bytes : 0);
        if (requests[k] > 0) {
          x += kept[c].requests * w[h] + (c > 0 ? load.copy_bytes : 0);
          ++c;
        }
        lower = x < to_beat;
      }
      if (!lower) continue;
      p.set_copies(h, kept);
      // Only head h's GPUs changed: their loads summed again from scratch, in head order as
      // fill_gpu_loads sums them, so the loads are the same bits as a full recount.
      for (size_t k = 0, c = 0; k < copies.size(); ++k) {
        const int g = copies[k].gpu;
        on_gpu.set(g, h, requests[k] > 0 ? static_cast<int>(c++) : -1);
        gpu[g] = on_gpu.load(load, p, g);
      }
      improved = true;
      ++added;
      break;
    }
    if (!improved) break;
  }
}
}  // namespace

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
  for (size_t h = 0; h < w.size(); ++h) best_gpu_of[h] = start.head(static_cast<int>(h))[0].gpu;
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

double assignment_lower_bound(const LayerLoad& load) {
  std::vector<int> order;
  heaviest_first(load, order);
  return assignment_lower_bound(load, order);
}

double assignment_lower_bound(const LayerLoad& load, std::span<const int> heaviest) {
  const int G = load.gpus, slots = slots_per_gpu(load);
  const int H = static_cast<int>(load.bytes_per_request.size());
  // The bytes sorted, heaviest first.
  auto w = [&](int i) { return load.bytes_per_request[heaviest[i]]; };
  double bound = load_lower_bound(load) / load.requests;
  for (int k = 1; k <= slots; ++k) {
    // k of the (k−1)·G + 1 heaviest share a GPU: at least the k lightest of them ...
    const int top = (k - 1) * G + 1;
    double held = 0;
    for (int i = top - k; i < top; ++i) held += w(i);
    // ... and its other s − k slots hold at least the s − k lightest heads.
    for (int i = H - (slots - k); i < H; ++i) held += w(i);
    bound = std::max(bound, held);
  }
  return bound * load.requests;
}

std::optional<LayerPlacement> place_optimal_if_provable(const LayerLoad& load,
                                                        const LayerPlacement& balanced,
                                                        std::string& why_not) {
  std::vector<int> order;
  heaviest_first(load, order);
  return place_optimal_if_provable(load, order, balanced, why_not);
}

std::optional<LayerPlacement> place_optimal_if_provable(const LayerLoad& load,
                                                        std::span<const int> heaviest,
                                                        const LayerPlacement& balanced,
                                                        std::string& why_not) {
  const int slots = slots_per_gpu(load);
  if (slots == 1) return balanced;
  const double bound = assignment_lower_bound(load, heaviest);
  if (balanced.max_load() <= bound * (1 + 1e-12)) return balanced;
  if (slots == 2) {
    const int H = static_cast<int>(heaviest.size());
    std::vector<int> gpu_of(H);
    for (int i = 0; i < load.gpus; ++i) gpu_of[heaviest[i]] = gpu_of[heaviest[H - 1 - i]] = i;
    LayerPlacement paired = single_copies(load, gpu_of);
    return paired.max_load() < balanced.max_load() ? paired : balanced;
  }
  char gap[32];
  std::snprintf(gap, sizeof gap, "%.2g%%", 100 * (balanced.max_load() / bound - 1));
  why_not = std::to_string(load.bytes_per_request.size()) + " kv heads on " +
            std::to_string(load.gpus) + " GPUs (" + std::to_string(slots) +
            " per GPU): balanced is " + gap +
            " above the best lower bound and an exact search does not finish at this size";
  return std::nullopt;
}

}  // namespace xring
