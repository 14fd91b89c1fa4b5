// Placing kv heads on the GPUs of a tensor-parallel group for decode (FairKV): contiguous
// (standard TP), balanced (best-effort assignment), fair_copying (replicate heavy heads and
// split their requests), optimal (exact search without copies, for the optimality gap).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

namespace xring {

enum class PlacementKind { contiguous, balanced, fair_copying, optimal };
std::string to_string(PlacementKind k);

/// One layer's decode load: every kv head's bytes per request, the batch, the GPUs, and what
/// one more copy of a head costs the GPU that holds it (its weight slices, read every step).
struct LayerLoad {
  std::vector<double> bytes_per_request;  ///< [kv head]: K+V bytes of one request's budget
  int requests = 1;
  int gpus = 1;           ///< G; H_kv must be a multiple of G
  double copy_bytes = 0;  ///< weight bytes a copy adds to its GPU
  /// Optional: bytes each GPU already holds from earlier layers. Ties between equally loaded
  /// GPUs go to the one holding less, so memory stays balanced across layers.
  std::vector<double> gpu_prior;
};

struct HeadCopy {
  int gpu = 0;
  int requests = 0;  ///< requests of the batch this copy serves
};

/// Every kv head's copies (one copy unless fair-copied), each head's in its own slot of one
/// arena so that a head gaining a copy moves no other head's: head(h) is head h's copies, the
/// first of them its original. The GPU loads are the bytes each GPU reads per decode step for
/// this layer (KV of the requests it serves plus the weights of its extra copies).
struct LayerPlacement {
  struct Slot {
    int start = 0;     ///< index of the head's first copy in `arena`
    int count = 0;     ///< copies the head has
    int capacity = 0;  ///< copies the slot holds before it moves to the arena's end
  };
  std::vector<HeadCopy> arena;  ///< every head's slot; unused entries between them mean nothing
  std::vector<Slot> slots;      ///< [kv head]
  std::vector<double> gpu_load;
  int kv_heads() const { return static_cast<int>(slots.size()); }
  std::span<const HeadCopy> head(int h) const {
    return {arena.data() + slots[h].start, static_cast<size_t>(slots[h].count)};
  }
  /// One copy per head with every one of `requests` requests: head h on GPU gpu_of[h]
  /// (gpu_load left to the caller).
  void set_single_copies(std::span<const int> gpu_of, int requests);
  /// Head h's copies become `copies` (which must not point into `arena`); a slot too small
  /// moves to the arena's end with room to grow, no other head's copies move.
  void set_copies(int h, std::span<const HeadCopy> copies);
  double max_load() const;
  int copies() const;  ///< extra copies beyond one per head
};

/// Loads of `placement` under `load` (recomputed from scratch; used by the algorithms and tests).
std::vector<double> gpu_loads(const LayerLoad& load, const LayerPlacement& placement);
/// The lower bound no placement beats: total KV bytes / G.
double load_lower_bound(const LayerLoad& load);

/// The heads of `load` by bytes, heaviest first, equal bytes in head order: the order balanced,
/// the lower bound and the pairing all read, so a layer sorts its heads once (into `order`).
void heaviest_first(const LayerLoad& load, std::vector<int>& order);

/// Standard TP: GPU g holds heads [g·s, (g+1)·s), s = H_kv / G.
LayerPlacement place_contiguous(const LayerLoad& load);
/// Best-effort assignment: LPT (heaviest head first to the least loaded GPU with a free slot),
/// then pairwise swaps while they lower the maximum; never worse than contiguous.
LayerPlacement place_balanced(const LayerLoad& load);
/// Fair-Copying (reconstructed, KV-POLICIES.md): from balanced, repeatedly give the heaviest
/// head of the most loaded GPU a copy on the least loaded GPU without one, split its requests
/// among its copies to level their GPUs, and keep the copy only if the maximum drops; at most
/// `max_copies` extra copies. Never worse than balanced.
LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies);
/// The same, starting from a balanced placement already computed for `load` (its gpu_load
/// as gpu_loads gives it: accepted copies update only their GPUs' loads, recounted in head
/// order, so every load is the same bits as a full recount).
LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies, LayerPlacement balanced);
/// place_contiguous, place_balanced and place_fair_copying from `balanced`, written into `out`
/// (its storage reused: a sweep places every layer of thousands of plans). The same results.
void place_contiguous(const LayerLoad& load, LayerPlacement& out);
void place_balanced(const LayerLoad& load, LayerPlacement& out);
/// place_balanced with the heads already in heaviest_first order.
void place_balanced(const LayerLoad& load, std::span<const int> heaviest, LayerPlacement& out);
void place_fair_copying(const LayerLoad& load, int max_copies, const LayerPlacement& balanced,
                        LayerPlacement& out);
/// Exact minimum of the maximum load over slot-respecting assignments without copies, by
/// branch and bound; nullopt when the search exceeds `node_limit` nodes. Exponential: the
/// planner does not call it (see place_optimal_if_provable); kept as the reference for tests
/// and benchmarks.
std::optional<LayerPlacement> place_optimal(const LayerLoad& load, long long node_limit = 1000000);
/// The same, with a known placement (e.g. balanced) as the bound to beat.
std::optional<LayerPlacement> place_optimal(const LayerLoad& load, long long node_limit,
                                            const LayerPlacement& start);

/// The best lower bound on the maximum load of any assignment without copies: total / G, and
/// for k = 1..s (s = slots per GPU) some GPU holds k of the (k−1)·G + 1 heaviest heads (at
/// least the k lightest of them) plus s − k more heads (at least the s − k lightest overall).
double assignment_lower_bound(const LayerLoad& load);
double assignment_lower_bound(const LayerLoad& load, std::span<const int> heaviest);

/// The exact optimum without copies where it is known at once, else nullopt with `why_not`
/// set: one head per GPU (every assignment has the heaviest head's maximum: `balanced`
/// itself); `balanced` reaching assignment_lower_bound (proven optimal: `balanced` itself);
/// two heads per GPU (pairing the i-th heaviest with the i-th lightest minimises the largest
/// pair, an exchange argument; pair i on GPU i). Constant work beyond a sort: no search.
std::optional<LayerPlacement> place_optimal_if_provable(const LayerLoad& load,
                                                        const LayerPlacement& balanced,
                                                        std::string& why_not);
/// The same with the heads already in heaviest_first order.
std::optional<LayerPlacement> place_optimal_if_provable(const LayerLoad& load,
                                                        std::span<const int> heaviest,
                                                        const LayerPlacement& balanced,
                                                        std::string& why_not);

}  // namespace xring
