// Decode with per-head budgets and FairKV placement; streaming policies over time.
#include "xring/planner/decode.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/units.hpp"

namespace xring {
namespace {

constexpr int kMemoryOverTimePoints = 21;
constexpr long long kDefaultStreamingCache = 4096;

/// The per-head budgets of a decode workload and the bytes they make per layer: everything a
/// plan computes before it places heads, and the same for every plan whose inputs differ only
/// in what these do not read (the batch, the cluster). Immutable once made, so plans share it.
struct LayerBytes {
  HeadBudgets budgets;
  double per_token_head_bytes = 0;  ///< K+V of one token of one kv head
  /// Per layer and head, bytes per request read per step (time) and held (memory): layer l's
  /// heads at [row_start[l], row_start[l + 1]) of one flat array each.
  std::vector<double> time_bytes_flat, memory_bytes_flat;
  std::vector<size_t> row_start;
  /// Per layer: its heads' time bytes summed in head order.
  std::vector<double> time_bytes_sum;
  std::span<const double> time_bytes(size_t l) const {
    return {time_bytes_flat.data() + row_start[l], time_bytes_flat.data() + row_start[l + 1]};
  }
  std::span<const double> memory_bytes(size_t l) const {
    return {memory_bytes_flat.data() + row_start[l], memory_bytes_flat.data() + row_start[l + 1]};
  }
  /// Per layer: the first layer with the same budgets (itself when none before, or when
  /// identical layers are not to be reused), and whether any other layer has them.
  std::vector<int> same_budgets_as;
  std::vector<bool> budgets_recur;
  size_t size_bytes() const {
    return (time_bytes_flat.size() + memory_bytes_flat.size() + time_bytes_sum.size() +
            row_start.size() + same_budgets_as.size()) *
               sizeof(double) +
           budgets.tokens.size() *
               (sizeof(std::vector<long long>) +
                (budgets.tokens.empty() ? 0 : budgets.tokens[0].size()) * sizeof(long long));
  }
};

/// Builds the LayerBytes of `in`'s decode workload: head_budgets, then the flat bytes; layers
/// with equal budgets found by hash (all distinct when !reuse_identical_layers).
std::shared_ptr<const LayerBytes> make_layer_bytes(const Inputs& in, const HeadProfile* profile,
                                                   bool reuse_identical_layers) {
  const ModelSpec& m = in.model;
  const WorkloadSpec& w = in.workload;
  auto out = std::make_shared<LayerBytes>();
  LayerBytes& lb = *out;
  KvPolicy policy = w.kv_policy;
  policy.floor = adakv_floor(policy, m);
  const int layer_count = self_attention_layers(m);
  lb.budgets = head_budgets(policy, w.kv_budget.value_or(0), w.text_tokens, layer_count,
                            m.self_attention.kv_heads, profile);
  lb.per_token_head_bytes = 2.0 * m.self_attention.head_dim * bytes_per_element(m.dtype);
  const double time_extra = w.generate_tokens / 2.0;
  const HeadBudgets& budgets = lb.budgets;
  const size_t layers = budgets.tokens.size();
  const size_t entries = layers > 0 ? layers * budgets.tokens[0].size() : 0;
  lb.time_bytes_flat.reserve(entries);
  lb.memory_bytes_flat.reserve(entries);
  lb.time_bytes_sum.reserve(layers);
  lb.row_start.reserve(layers + 1);
  lb.row_start.assign(1, 0);
  for (const auto& row : budgets.tokens) {
    for (long long t : row) {
      lb.time_bytes_flat.push_back((t + time_extra) * lb.per_token_head_bytes);
      lb.memory_bytes_flat.push_back((t + w.generate_tokens) * lb.per_token_head_bytes);
    }
    lb.row_start.push_back(lb.time_bytes_flat.size());
    const std::span<const double> time = lb.time_bytes(lb.row_start.size() - 2);
    lb.time_bytes_sum.push_back(std::accumulate(time.begin(), time.end(), 0.0));
  }
  lb.same_budgets_as.resize(layers);
  std::iota(lb.same_budgets_as.begin(), lb.same_budgets_as.end(), 0);
  lb.budgets_recur.assign(layers, false);
  if (!reuse_identical_layers) return out;
  // Layers by a hash of their budgets, then by index: equal budgets share a run of equal
  // hashes, in which a layer's first equal is the first layer with its budgets.
  std::vector<std::pair<uint64_t, int>> by_hash(layers);
  for (size_t l = 0; l < layers; ++l) {
    uint64_t hash = 1469598103934665603ull;  // FNV-1a offset basis and prime (64-bit)
    for (long long t : budgets.tokens[l])
      hash = (hash ^ static_cast<uint64_t>(t)) * 1099511628211ull;
    by_hash[l] = {hash, static_cast<int>(l)};
  }
  std::sort(by_hash.begin(), by_hash.end());
  for (size_t i = 0, run = 0; i < layers; ++i) {
    if (by_hash[i].first != by_hash[run].first) run = i;
    const int l = by_hash[i].second;
    size_t j = run;
    while (j < i && budgets.tokens[by_hash[j].second] != budgets.tokens[l]) ++j;
    lb.same_budgets_as[l] = j < i ? by_hash[j].second : l;
  }
  for (size_t l = 0; l < layers; ++l)
    if (lb.same_budgets_as[l] != static_cast<int>(l))
      lb.budgets_recur[l] = lb.budgets_recur[lb.same_budgets_as[l]] = true;
  return out;
}

/// The LayerBytes this thread made recently, by everything they are made from: the points of
/// a sweep that differ only in what budgets do not read (batch, cluster) share them instead of
/// computing them again (a tenth of a 10,000-point decode sweep). An entry holds its profile,
/// so the profile's address names it while the entry lives. At most kMemoEntries entries and
/// kMemoBytes bytes; the oldest goes first.
class LayerBytesMemo {
 public:
  struct Key {
    std::shared_ptr<const HeadProfile> profile;
    KvPolicyKind kind = KvPolicyKind::full;
    double alpha = 0;
    bool redistribute = false;
    int window = 0;
    long long kv_budget = 0, prompt_tokens = 0;
    int layers = 0, kv_heads = 0, head_dim = 0, generate_tokens = 0, element_bytes = 0;
    bool reuse_identical_layers = true;
    bool operator==(const Key&) const = default;
  };
  static Key key(const Inputs& in, std::shared_ptr<const HeadProfile> profile,
                 bool reuse_identical_layers) {
    const ModelSpec& m = in.model;
    const WorkloadSpec& w = in.workload;
    return {std::move(profile),
            w.kv_policy.kind,
            adakv_floor(w.kv_policy, m),
            w.kv_policy.redistribute,
            w.kv_policy.window,
            w.kv_budget.value_or(0),
            w.text_tokens,
            self_attention_layers(m),
            m.self_attention.kv_heads,
            m.self_attention.head_dim,
            w.generate_tokens,
            bytes_per_element(m.dtype),
            reuse_identical_layers};
  }
  std::shared_ptr<const LayerBytes> find(const Key& k) const {
    for (const Entry& e : entries_)
      if (e.key == k) return e.bytes;
    return nullptr;
  }
  void add(Key k, std::shared_ptr<const LayerBytes> bytes) {
    held_ += bytes->size_bytes();
    entries_.push_back({std::move(k), std::move(bytes)});
    while (entries_.size() > kMemoEntries || (held_ > kMemoBytes && entries_.size() > 1)) {
      held_ -= entries_.front().bytes->size_bytes();
      entries_.pop_front();
    }
  }

 private:
  static constexpr size_t kMemoEntries = 256;      // a sweep axis of up to 256 budgets
  static constexpr size_t kMemoBytes = 16u << 20;  // per thread
  struct Entry {
    Key key;
    std::shared_ptr<const LayerBytes> bytes;
  };
  std::deque<Entry> entries_;
  size_t held_ = 0;
};

/// What every placement shares: the shape of the decode problem for one replica.
struct DecodeModel {
  explicit DecodeModel(const Inputs& inputs) : in(inputs) {}
  const Inputs& in;
  int G = 1;
  double bytes = 2;
  std::shared_ptr<const LayerBytes> layer_bytes;  ///< budgets and their bytes per layer
  double weights_per_gpu = 0;                     ///< held: every weight / G
  double step_weights_per_gpu = 0;                ///< read once per step (decode_step_params / G)
  double copy_bytes = 0;                          ///< one extra copy of a kv group's weight slices
  double cross_kv_bytes_per_request = 0;          ///< per GPU: one request's cross-attention K/V
  int allreduced_layers = 0;                      ///< layers ending in two all-reduces
  double allreduce_s_per_request = 0;             ///< per such layer
  double allreduce_latency_s = 0;                 ///< per such layer

  const HeadBudgets& budgets() const { return layer_bytes->budgets; }
  std::span<const double> time_bytes(size_t l) const { return layer_bytes->time_bytes(l); }
  std::span<const double> memory_bytes(size_t l) const { return layer_bytes->memory_bytes(l); }

  /// Sets `l` to layer `layer`'s load at `requests` requests (reusing its storage).
  void layer_load(int layer, int requests, LayerLoad& l) const {
    const std::span<const double> time = time_bytes(layer);
    l.bytes_per_request.assign(time.begin(), time.end());
    l.requests = requests;
    l.gpus = G;
    l.copy_bytes = copy_bytes;
  }

  /// One placement kind over every layer: each distinct placement once, and which one each
  /// layer uses.
  /// Its storage is reused from plan to plan (a sweep's thread plans thousands).
  struct PlacedLayers {
    PlacedLayers() = default;
    PlacedLayers(const PlacedLayers&) = delete;  // of_layer points into own (and other kinds')
    std::vector<LayerPlacement> own;             ///< the first `owned` are this plan's
    size_t owned = 0;
    std::vector<const LayerPlacement*> of_layer;
    const LayerPlacement& operator[](size_t l) const { return *of_layer[l]; }
    size_t size() const { return of_layer.size(); }
    bool empty() const { return of_layer.empty(); }
    /// Empties it for a plan of `layers` layers: `own` sized once here, never reallocated
    /// while of_layer points into it.
    void reset(size_t layers) {
      owned = 0;
      of_layer.clear();
      if (own.size() < layers) own.resize(layers);
    }
    /// The next layer's own placement, to be written by the caller.
    LayerPlacement& add() {
      of_layer.push_back(&own[owned]);
      return own[owned++];
    }
    void add(LayerPlacement p) { add() = std::move(p); }
  };
  struct Placed {
    std::array<PlacedLayers, 4> kinds;  ///< contiguous, balanced, fair_copying, optimal
    std::string optimal_not_computed;   ///< why kinds[3] is empty
  };

  /// The order of `held` as dense ranks (equal bytes, equal rank): all the placements see of
  /// the bytes earlier layers left on each GPU, since they only compare them to break ties.
  static void tie_ranks(const std::vector<double>& held, std::vector<int>& rank) {
    std::vector<int> order(held.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return held[a] < held[b]; });
    rank.assign(held.size(), 0);
    for (size_t i = 1; i < order.size(); ++i)
      rank[order[i]] = rank[order[i - 1]] + (held[order[i]] != held[order[i - 1]] ? 1 : 0);
  }

  /// Every placement of every layer, at `requests` requests per replica. Balanced is the
  /// start of fair-copying and of the optimum; each keeps its own history of bytes per GPU for
  /// tie-breaking. A layer whose budgets equal an earlier one's, met with the same order of
  /// those histories, gets that layer's placements without placing again (the algorithms are
  /// deterministic in their inputs). optimal is empty, with the reason, when a layer's optimum
  /// is not known at once (place_optimal_if_provable).
  void place_all(int requests, int max_copies, Placed& out) const {
    const LayerBytes& lb = *layer_bytes;
    for (auto& kind : out.kinds) kind.reset(lb.budgets.tokens.size());
    out.optimal_not_computed.clear();
    std::vector<double> balanced_held(G, 0.0), fair_held(G, 0.0);
    struct Seen {
      size_t layer;
      std::vector<int> balanced_rank, fair_rank;
    };
    std::vector<Seen> seen;  // placed layers whose budgets recur later
    std::vector<int> balanced_rank, fair_rank;
    LayerLoad load;
    thread_local std::vector<int> heaviest;  // the layer's heads, heaviest first
    for (size_t l = 0; l < lb.budgets.tokens.size(); ++l) {
      const int row = lb.same_budgets_as[l];
      std::optional<size_t> same;
      if (lb.budgets_recur[l]) {
        tie_ranks(balanced_held, balanced_rank);
        tie_ranks(fair_held, fair_rank);
        for (const Seen& e : seen)
          if (lb.same_budgets_as[e.layer] == row && e.balanced_rank == balanced_rank &&
              e.fair_rank == fair_rank) {
            same = e.layer;
            break;
          }
      }
      if (same) {
        for (auto& kind : out.kinds)
          if (kind.size() == l) kind.of_layer.push_back(kind.of_layer[*same]);
      } else {
        if (lb.budgets_recur[l]) seen.push_back({l, balanced_rank, fair_rank});
        layer_load(static_cast<int>(l), requests, load);
        if (row != static_cast<int>(l))
          out.kinds[0].of_layer.push_back(out.kinds[0].of_layer[row]);
        else
          place_contiguous(load, out.kinds[0].add());
        load.gpu_prior = balanced_held;
        heaviest_first(load, heaviest);
        LayerPlacement& balanced = out.kinds[1].add();
        place_balanced(load, heaviest, balanced);
        load.gpu_prior = fair_held;
        place_fair_copying(load, max_copies, balanced, out.kinds[2].add());
        if (out.kinds[3].size() == l && load.bytes_per_request.size() == static_cast<size_t>(G)) {
          out.kinds[3].of_layer.push_back(&balanced);  // one head per GPU: balanced is optimal
        } else if (out.kinds[3].size() == l && out.optimal_not_computed.empty()) {
          std::string why_not;
          if (auto best = place_optimal_if_provable(load, heaviest, balanced, why_not)) {
            out.kinds[3].add(std::move(*best));
          } else {
            out.optimal_not_computed = "layer " + std::to_string(l) + ": " + why_not;
            out.kinds[3].reset(0);
          }
        }
      }
      const LayerPlacement &balanced = out.kinds[1][l], &fair = out.kinds[2][l];
      for (int g = 0; g < G; ++g) {
        balanced_held[g] += balanced.gpu_load[g];
        fair_held[g] += fair.gpu_load[g];
      }
    }
  }

  /// Per-GPU bytes that do not grow with the batch: the weights and the extra head copies'
  /// weight slices (a copy costs the same whatever share of the requests it serves).
  void fixed_memory(const PlacedLayers& layers, std::vector<double>& gpu) const {
    gpu.assign(G, weights_per_gpu);
    for (size_t l = 0; l < layers.size(); ++l) {
      const LayerPlacement& layer = layers[l];
      for (int h = 0; h < layer.kv_heads(); ++h) {
        const std::span<const HeadCopy> copies = layer.head(h);
        for (size_t c = 1; c < copies.size(); ++c) gpu[copies[c].gpu] += copy_bytes;
      }
    }
  }

  /// Per-GPU memory of a placement at `requests` requests: the fixed bytes, the cross-attention
  /// K/V of the requests' visual tokens, and the KV its (head, request) pairs keep.
  /// `fixed` is fixed_memory(layers); the result goes into `gpu`.
  void memory(const PlacedLayers& layers, int requests, const std::vector<double>& fixed,
              std::vector<double>& gpu) const {
    gpu = fixed;
    for (double& x : gpu) x += cross_kv_bytes_per_request * requests;
    for (size_t l = 0; l < layers.size(); ++l) {
      const LayerPlacement& layer = layers[l];
      const std::span<const double> bytes = memory_bytes(l);
      for (int h = 0; h < layer.kv_heads(); ++h)
        for (const HeadCopy& copy : layer.head(h)) gpu[copy.gpu] += copy.requests * bytes[h];
    }
  }

  /// The slowest GPU's bytes for one layer, with its KV reads scaled by `scale` (the
  /// placement's request split at another batch); copies' weight slices do not scale.
  double layer_step_bytes(size_t l, const LayerPlacement& layer, double scale) const {
    // Unscaled, these are the loads the placement was made with (same terms, same order).
    if (scale == 1.0) return layer.max_load();
    thread_local std::vector<double> gpu;
    gpu.assign(G, 0.0);
    const std::span<const double> bytes = time_bytes(l);
    for (int h = 0; h < layer.kv_heads(); ++h) {
      const std::span<const HeadCopy> copies = layer.head(h);
      for (size_t c = 0; c < copies.size(); ++c)
        gpu[copies[c].gpu] += scale * copies[c].requests * bytes[h] + (c > 0 ? copy_bytes : 0);
    }
    return *std::max_element(gpu.begin(), gpu.end());
  }

  /// One decode step at `requests` requests; `scale` = requests / the placement's own batch.
  double step_time(const PlacedLayers& layers, int requests, double scale) const {
    const double hbm = in.cluster.gpu.hbm_bytes_per_s;
    double t = (step_weights_per_gpu + cross_kv_bytes_per_request * requests) / hbm;
    for (size_t l = 0; l < layers.size(); ++l) t += layer_step_bytes(l, layers[l], scale) / hbm;
    return t + allreduced_layers * (allreduce_s_per_request * requests + allreduce_latency_s);
  }

  /// Summarises one placement of every layer. The largest batch that fits comes from memory
  /// growing linearly with the requests each GPU serves (the fixed part held aside); its speed
  /// scales the per-request loads of this placement to that batch.
  DecodePlacement summarise(PlacementKind kind, const PlacedLayers& layers, int requests) const {
    DecodePlacement r;
    r.placement = to_string(kind);
    const double usable = in.cluster.usable_memory_bytes();
    const double replicas = static_cast<double>(in.cluster.gpus() / G);
    thread_local std::vector<double> fixed, mem;
    fixed_memory(layers, fixed);
    memory(layers, requests, fixed, mem);
    r.peak_memory_bytes = *std::max_element(mem.begin(), mem.end());
    r.fits = r.peak_memory_bytes <= usable;
    r.step_time_s = step_time(layers, requests, 1.0);
    r.tokens_per_s = replicas * requests / r.step_time_s;
    for (size_t l = 0; l < layers.size(); ++l) {
      r.max_gpu_load_bytes += layers[l].max_load();
      r.lower_bound_bytes += layer_bytes->time_bytes_sum[l] * requests / G;
      r.copies += layers[l].copies();
    }
    r.gap = r.lower_bound_bytes > 0 ? r.max_gpu_load_bytes / r.lower_bound_bytes - 1 : 0;
    r.max_batch = largest_batch(mem, fixed, requests, usable);
    if (r.max_batch > 0) {
      double scale = static_cast<double>(r.max_batch) / requests;
      r.tokens_per_s_at_max_batch = replicas * r.max_batch / step_time(layers, r.max_batch, scale);
    }
    return r;
  }

  /// min over GPUs of floor((usable − fixed_g) / per-request_g); 0 when nothing grows with
  /// the batch or the fixed bytes alone do not fit.
  static int largest_batch(const std::vector<double>& mem, const std::vector<double>& fixed,
                           int requests, double usable) {
    double batch = 1e9;
    bool grows = false;
    for (size_t g = 0; g < mem.size(); ++g) {
      if (fixed[g] > usable) return 0;
      const double per_request = (mem[g] - fixed[g]) / requests;
      if (per_request <= 0) continue;
      grows = true;
      batch = std::min(batch, std::floor((usable - fixed[g]) / per_request));
    }
    return grows ? static_cast<int>(batch) : 0;
  }
};

/// A profile as read, with the file (or built-in) it came from.
struct ReadProfile {
  std::shared_ptr<const HeadProfile> profile;
  std::string origin;
};

ReadProfile read_head_profile(const Inputs& in, const std::string& name);

}  // namespace

std::shared_ptr<const HeadProfile> load_head_profile(const Inputs& in) {
  if (in.workload.kv_policy.kind != KvPolicyKind::adaptive) return nullptr;
  const std::string name =
      in.workload.head_profile.empty() ? in.model.name : in.workload.head_profile;
  // Profiles are read once per process: sweeps plan thousands of points with the same one.
  static std::mutex mutex;
  static std::map<std::string, ReadProfile> cache;
  std::unique_lock<std::mutex> lock(mutex);
  auto cached = cache.find(name);
  if (cached == cache.end()) {
    lock.unlock();
    ReadProfile read = read_head_profile(in, name);
    lock.lock();
    cached = cache.emplace(name, std::move(read)).first;
  }
  const ReadProfile read = cached->second;
  lock.unlock();
  // A profile measures one model's heads: another model of the same shape has other heads.
  const std::string hint = "; make one for " + in.model.name + " with xring heads synth --model " +
                           in.model.name + " (or xring heads build from its scores)";
  if (read.profile->model != in.model.name)
    throw Error(read.origin + ": at \"model\": the profile is of model " +
                quoted_excerpt(read.profile->model) + ", not of the plan's model " + in.model.name +
                hint);
  require_model_shape(*read.profile, in.model, read.origin, "layers", hint);
  return read.profile;
}

namespace {
ReadProfile read_head_profile(const Inputs& in, const std::string& name) {
  SpecJson j;
  try {
    j = load_spec_json(SpecKind::heads, name);
  } catch (const Error& e) {
    throw Error(in.workload_json.origin +
                ": at \"head_profile\": the adaptive kv_policy needs a "
                "head-importance profile; " +
                e.what() + " (make one with xring heads synth or xring heads build)");
  }
  return {std::make_shared<const HeadProfile>(head_profile_from_json(j.value, j.origin)), j.origin};
}
}  // namespace

int decode_tensor_parallel(const ModelSpec& m, const ClusterSpec& c) {
  return std::gcd(m.self_attention.kv_heads, c.gpus_per_node);
}

namespace {
double cross_kv_projection_params(const ModelSpec& m) {
  return 2.0 * static_cast<double>(m.cross_attention_layers.size()) * m.visual_hidden_size *
         m.cross_attention.kv_heads * m.cross_attention.head_dim;
}

bool separate_cross_layers_skipped(const ModelSpec& m, bool visual_input) {
  return !visual_input && !m.cross_attention_layers.empty() &&
         m.cross_attention_kind == CrossAttentionKind::separate;
}
}  // namespace

double decode_step_params(const ModelSpec& m, bool visual_input) {
  const double embedding = static_cast<double>(m.vocab_size) * m.hidden_size;
  const double layers = std::max(0.0, m.params - 2 * embedding);
  if (separate_cross_layers_skipped(m, visual_input))
    return layers * self_attention_layers(m) / m.layers + embedding;
  return std::max(0.0, layers - cross_kv_projection_params(m)) + embedding;
}

int decode_allreduced_layers(const ModelSpec& m, bool visual_input) {
  const int n_cross = static_cast<int>(m.cross_attention_layers.size());
  const bool own_layers = m.cross_attention_kind != CrossAttentionKind::fused &&
                          !separate_cross_layers_skipped(m, visual_input);
  return self_attention_layers(m) + (own_layers ? n_cross : 0);
}

namespace {
DecodeSection plan_decode(const Inputs& in, const HeadProfile* profile,
                          std::shared_ptr<const HeadProfile> profile_owner, bool memo,
                          bool head_detail, bool reuse_identical_layers) {
  const ModelSpec& m = in.model;
  const WorkloadSpec& w = in.workload;
  const ClusterSpec& c = in.cluster;
  DecodeModel model(in);
  model.G = decode_tensor_parallel(m, c);
  model.bytes = bytes_per_element(m.dtype);
  if (memo) {
    thread_local LayerBytesMemo made;
    LayerBytesMemo::Key key =
        LayerBytesMemo::key(in, std::move(profile_owner), reuse_identical_layers);
    model.layer_bytes = made.find(key);
    if (!model.layer_bytes) {
      model.layer_bytes = make_layer_bytes(in, profile, reuse_identical_layers);
      made.add(std::move(key), model.layer_bytes);
    }
  } else {
    model.layer_bytes = make_layer_bytes(in, profile, reuse_identical_layers);
  }
  const double d = m.self_attention.head_dim, D = m.hidden_size, b = model.bytes;
  const double G = model.G;
  const long long s_kv = visual_tokens(w, m);
  const bool visual_input = s_kv > 0;
  model.weights_per_gpu = held_params(m, w) * b / G;
  model.step_weights_per_gpu = decode_step_params(m, visual_input) * b / G;
  // Every GPU keeps its kv heads' cross-attention K/V of all the visual tokens (heads split
  // over the group, as in the self-attention layers), so cross-attention needs no ring.
  const AttentionGeometry& ca = m.cross_attention;
  model.cross_kv_bytes_per_request = static_cast<double>(m.cross_attention_layers.size()) * 2.0 *
                                     s_kv * ca.kv_heads * ca.head_dim * b / G;
  const double group = static_cast<double>(m.self_attention.heads) / m.self_attention.kv_heads;
  model.copy_bytes = (2 * group + 2) * d * D * b;  // Wq and Wo of the group, Wk, Wv
  model.allreduced_layers = decode_allreduced_layers(m, visual_input);
  if (G > 1) {
    // Two ring all-reduces of the hidden state per layer (attention and MLP outputs).
    model.allreduce_s_per_request = 2 * 2 * (G - 1) / G * D * b / c.intra_node.bytes_per_s;
    model.allreduce_latency_s = 2 * 2 * (G - 1) * c.intra_node.latency_s;
  }

  DecodeSection s;
  s.policy = w.kv_policy.name;
  s.kv_budget = w.kv_budget.value_or(0);
  s.head_profile = profile ? profile->name : "";
  s.gpus = model.G;
  s.replicas = c.gpus() / model.G;
  s.batch_per_replica = (w.batch + s.replicas - 1) / s.replicas;
  s.prompt_tokens = w.text_tokens;
  s.generate_tokens = w.generate_tokens;

  const int B = s.batch_per_replica;
  thread_local DecodeModel::Placed placed;  // storage reused by the thread's next plan
  model.place_all(B, model.G, placed);
  const PlacementKind kinds[] = {PlacementKind::contiguous, PlacementKind::balanced,
                                 PlacementKind::fair_copying, PlacementKind::optimal};
  for (size_t k = 0; k < 4; ++k) {
    // A kind with every layer placed as an earlier kind (optimal is balanced at one head per
    // GPU) has that kind's summary.
    size_t same = 0;
    while (same < k && placed.kinds[same].of_layer != placed.kinds[k].of_layer) ++same;
    if (!placed.kinds[k].empty() && same < k) {
      s.placements.push_back(s.placements[same]);
      s.placements.back().placement = to_string(kinds[k]);
    } else if (!placed.kinds[k].empty()) {
      s.placements.push_back(model.summarise(kinds[k], placed.kinds[k], B));
    } else {
      DecodePlacement none;
      none.placement = to_string(kinds[k]);
      none.not_computed = placed.optimal_not_computed;
      s.placements.push_back(none);
    }
  }

  // The fastest deployable placement that fits (optimal is the yardstick for the gap).
  size_t chosen_kind = 0;
  double best = -1;
  for (size_t k = 0; k < 3; ++k) {
    const DecodePlacement& p = s.placements[k];
    if (p.fits && p.tokens_per_s > best * (1 + 1e-12)) {
      best = p.tokens_per_s;
      chosen_kind = k;
    }
  }
  s.chosen = to_string(kinds[chosen_kind]);
  const DecodeModel::PlacedLayers& chosen = placed.kinds[chosen_kind];
  if (head_detail && !chosen.empty()) {
    s.heads.reserve(chosen.size() * chosen[0].kv_heads());
    size_t copies = 0;
    for (size_t l = 0; l < chosen.size(); ++l) copies += chosen[l].kv_heads() + chosen[l].copies();
    s.head_copies.reserve(copies);
  }
  for (size_t l = 0; head_detail && l < chosen.size(); ++l) {
    const LayerPlacement& lp = chosen[l];
    for (int h = 0; h < lp.kv_heads(); ++h) {
      DecodeHead& head = s.heads.emplace_back();
      head.layer = static_cast<int>(l);
      head.head = h;
      head.budget_tokens = model.budgets().tokens[l][h];
      head.budget_bytes = head.budget_tokens * model.layer_bytes->per_token_head_bytes;
      const std::span<const HeadCopy> copies = lp.head(h);
      head.first_copy = static_cast<int>(s.head_copies.size());
      head.copy_count = static_cast<int>(copies.size());
      s.head_copies.insert(s.head_copies.end(), copies.begin(), copies.end());
    }
  }
  std::vector<double> fixed, mem;
  model.fixed_memory(chosen, fixed);
  model.memory(chosen, B, fixed, mem);
  for (int g = 0; g < model.G; ++g) {
    DecodeGpu gpu{g, 0, mem[g]};
    for (size_t l = 0; l < chosen.size(); ++l) gpu.load_bytes += chosen[l].gpu_load[g];
    s.per_gpu.push_back(gpu);
  }
  return s;
}
}  // namespace

DecodeSection plan_decode(const Inputs& in, const HeadProfile* profile, bool head_detail,
                          bool reuse_identical_layers) {
  return plan_decode(in, profile, nullptr, false, head_detail, reuse_identical_layers);
}

DecodeSection plan_decode(const Inputs& in, const std::shared_ptr<const HeadProfile>& profile,
                          bool head_detail) {
  return plan_decode(in, profile.get(), profile, true, head_detail, true);
}

double streaming_kept_visual_tokens(const std::string& policy, const KvPolicy& p, double arrived,
                                    double cache_tokens) {
  if (policy == "inf_mllm") return std::min(arrived, cache_tokens);
  if (policy == "a_vl") return p.stored_rate * arrived;
  return arrived;
}

double streaming_visual_token_bytes(const ModelSpec& m) {
  const double b = bytes_per_element(m.dtype);
  if (!m.cross_attention_layers.empty())
    return m.cross_attention_layers.size() * 2.0 * m.cross_attention.kv_heads *
           m.cross_attention.head_dim * b;
  return self_attention_layers(m) * 2.0 * m.self_attention.kv_heads * m.self_attention.head_dim * b;
}

double streaming_cache_tokens(const WorkloadSpec& w) {
  const KvPolicy& p = w.kv_policy;
  return p.cache_tokens ? p.cache_tokens
                        : static_cast<double>(w.kv_budget.value_or(kDefaultStreamingCache));
}

StreamingSection plan_streaming(const Inputs& in) {
  const ModelSpec& m = in.model;
  const WorkloadSpec& w = in.workload;
  const GpuSpec& gpu = in.cluster.gpu;
  const double b = bytes_per_element(m.dtype);
  const int n_cross = static_cast<int>(m.cross_attention_layers.size());
  const int n_self = self_attention_layers(m);
  // Visual tokens land in the cross-attention K/V when the model has cross-attention layers,
  // else in every self-attention layer's cache; text tokens always in the self-attention cache.
  const AttentionGeometry& sa = m.self_attention;
  const AttentionGeometry& ca = m.cross_attention;
  const double text_token_bytes = n_self * 2.0 * sa.kv_heads * sa.head_dim * b;
  const double visual_token_bytes = streaming_visual_token_bytes(m);
  const double visual_flops_per_token =
      n_cross > 0 ? n_cross * static_cast<double>(ca.heads) * ca.head_dim
                  : std::max(n_self, 1) * static_cast<double>(sa.heads) * sa.head_dim;
  // A step reads the weights that act on the new token, not the vision encoder (it runs once
  // per frame) nor the input embedding (one row).
  const double step_params = decode_step_params(m, true);
  const int per_frame = w.tokens_per_frame.value_or(m.tokens_per_frame);
  StreamingSection s;
  s.stream_seconds = *w.stream_seconds;
  s.fps = *w.fps;
  s.visual_tokens_per_s = s.fps * per_frame;
  s.chosen = w.kv_policy.name;
  const double weights = held_params(m, w) * b;
  const double usable = in.cluster.usable_memory_bytes();
  const double text_tokens = w.text_tokens + w.generate_tokens;
  const KvPolicy& p = w.kv_policy;
  const double cache = streaming_cache_tokens(w);

  struct Model {
    const char* name;
    double read_fraction;  ///< of the kept visual tokens read per step
    double text_kept;
    double cached_visual(double t, const KvPolicy& policy, double cache_tokens,
                         double tokens_per_s) const {  ///< visual tokens kept at time t
      return streaming_kept_visual_tokens(name, policy, tokens_per_s * t, cache_tokens);
    }
  };
  const double text_window =
      std::max(std::round(p.text_keep * text_tokens), std::min(20.0, text_tokens));
  const Model models[] = {
      {"full", 1.0, text_tokens},
      {"inf_mllm", 1.0, std::min(text_tokens, cache)},
      {"a_vl", p.compute_rate + (1 - p.compute_rate) / p.update_interval, text_window},
  };
  for (const Model& model : models) {
    StreamingPolicy out;
    out.policy = model.name;
    auto kept_visual = [&](double t) {
      return model.cached_visual(t, p, cache, s.visual_tokens_per_s);
    };
    auto memory_at = [&](double t) {
      return weights + kept_visual(t) * visual_token_bytes + model.text_kept * text_token_bytes;
    };
    double end = s.stream_seconds;
    if (memory_at(end) > usable) {
      // Memory is non-decreasing in t: bisect for the moment it crosses the usable memory.
      double lo = 0, hi = end;
      if (memory_at(0) > usable) {
        hi = 0;
      } else {
        for (int i = 0; i < 100; ++i) {
          double mid = (lo + hi) / 2;
          (memory_at(mid) > usable ? hi : lo) = mid;
        }
      }
      out.oom_at_s = hi;
      end = hi;
    }
    for (int i = 0; i < kMemoryOverTimePoints; ++i) {
      double t = s.stream_seconds * i / (kMemoryOverTimePoints - 1);
      out.memory_over_time.push_back({t, memory_at(t)});
    }
    out.peak_memory_bytes = memory_at(end);
    out.cached_tokens = kept_visual(end) + model.text_kept;
    const double visual_read = kept_visual(end) * model.read_fraction;
    double read =
        step_params * b + visual_read * visual_token_bytes + model.text_kept * text_token_bytes;
    out.tokens_per_s = gpu.hbm_bytes_per_s / read;
    // Attention: 4·H·d FLOPs per attended token per layer; text in the self-attention layers,
    // visual tokens in the cross-attention layers that hold them (else the self-attention ones).
    out.per_token_flops = 2 * step_params +
                          4.0 * model.text_kept * sa.heads * sa.head_dim * std::max(n_self, 1) +
                          4.0 * visual_read * visual_flops_per_token;
    s.policies.push_back(out);
  }
  return s;
}

}  // namespace xring
