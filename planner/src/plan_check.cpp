// A plan's numbers against the model, cluster and workload it echoes: every count and index the
// executor sizes buffers by, divides by or indexes with must lie inside what those specs allow.
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "xring/planner/error.hpp"
#include "xring/planner/planner.hpp"

namespace xring {
namespace {

/// A number as the spec readers print it ("must be between 0 and 1000, got 1e+308").
std::string number_text(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

class PlanChecker {
 public:
  PlanChecker(const Inputs& in, const std::string& origin) : in_(in), origin_(origin) {}

  /// `value` at `path` must lie in [min, max]; `bound` says where max comes from.
  void within(const std::string& path, long long value, long long min, long long max,
              const std::string& bound) const {
    if (value < min || value > max)
      throw Error(origin_ + ": at \"" + path + "\": " + std::to_string(value) + " is outside " +
                  std::to_string(min) + ".." + std::to_string(max) + " (" + bound +
                  "); re-run xring plan");
  }

  void layer(const LayerPlan& l, const std::string& at, std::set<int>& seen) const {
    const auto& cross = in_.model.cross_attention_layers;
    bool listed = false;
    for (int index : cross) listed = listed || index == l.index;
    if (!listed)
      throw Error(origin_ + ": at \"" + at + ".index\": layer " + std::to_string(l.index) +
                  " is not a cross-attention layer of " + in_.model.name + " (it has " +
                  std::to_string(cross.size()) + "); re-run xring plan");
    if (!seen.insert(l.index).second)
      throw Error(origin_ + ": at \"" + at + ".index\": layer " + std::to_string(l.index) +
                  " is planned twice; re-run xring plan");
    ranks(at, l.ranks, l.ulysses_degree, l.strategy);
    const std::string gpus = std::to_string(in_.cluster.gpus()) + " GPUs of " + in_.cluster.name;
    within(at + ".groups", l.groups, 1, in_.cluster.gpus() / l.ranks,
           "groups of " + std::to_string(l.ranks) + " ranks on the " + gpus);
    within(at + ".batch_per_group", l.batch_per_group, 1, in_.workload.batch, "the batch");
    within(at + ".steps", l.steps, 1, l.ranks, "one per rank at most");
    within(at + ".q_block", l.q_block, 0, in_.workload.text_tokens, "the text tokens");
    within(at + ".kv_block", l.kv_block, 0, visual_tokens(in_.workload, in_.model),
           "the visual tokens");
    for (size_t a = 0; a < l.alternatives.size(); ++a) {
      const Alternative& alt = l.alternatives[a];
      ranks(at + ".alternatives[" + std::to_string(a) + "]", alt.ranks, alt.ulysses_degree,
            alt.strategy);
    }
  }

  void ranks(const std::string& at, int ranks, int ulysses_degree, Strategy s) const {
    const int gpus = in_.cluster.gpus();
    within(at + ".ranks", ranks, 1, gpus, "the GPUs of " + in_.cluster.name);
    if (gpus % ranks != 0)
      throw Error(origin_ + ": at \"" + at + ".ranks\": " + std::to_string(ranks) +
                  " does not divide the " + std::to_string(gpus) + " GPUs of " + in_.cluster.name +
                  "; re-run xring plan");
    within(at + ".ulysses_degree", ulysses_degree, s == Strategy::hybrid ? 1 : 0, ranks,
           "the layer's ranks");
    if (s == Strategy::hybrid && ranks % ulysses_degree != 0)
      throw Error(
          origin_ + ": at \"" + at + ".ulysses_degree\": " + std::to_string(ulysses_degree) +
          " does not divide the layer's " + std::to_string(ranks) + " ranks; re-run xring plan");
  }

  /// A head's copies (the reader made first_copy/copy_count from its gpus and requests lists,
  /// of equal length): at least one, each on its own GPU of the replica, serving together the
  /// replica's whole batch (the executor splits the batch's requests among them).
  void head_copies(const DecodeSection& d, const DecodeHead& h, const std::string& at) const {
    const std::span<const HeadCopy> copies = d.copies(h);
    if (copies.empty())
      throw Error(origin_ + ": at \"" + at + ".gpus\": no GPU holds this head; a head needs " +
                  "at least one copy; re-run xring plan");
    std::set<int> holding;
    long long served = 0;
    for (size_t c = 0; c < copies.size(); ++c) {
      within(at + ".gpus[" + std::to_string(c) + "]", copies[c].gpu, 0, d.gpus - 1,
             "the replica's GPUs");
      if (!holding.insert(copies[c].gpu).second)
        throw Error(origin_ + ": at \"" + at + ".gpus[" + std::to_string(c) + "]\": GPU " +
                    std::to_string(copies[c].gpu) +
                    " holds a copy of this head twice; re-run xring plan");
      within(at + ".requests[" + std::to_string(c) + "]", copies[c].requests, 0,
             d.batch_per_replica, "the replica's batch");
      served += copies[c].requests;
    }
    if (served != d.batch_per_replica)
      throw Error(origin_ + ": at \"" + at + ".requests\": the copies serve " +
                  std::to_string(served) + " requests, not the replica's batch of " +
                  std::to_string(d.batch_per_replica) + "; re-run xring plan");
  }

  void decode(const DecodeSection& d) const {
    const int gpus = in_.cluster.gpus();
    within("decode.gpus", d.gpus, 1, gpus, "the GPUs of " + in_.cluster.name);
    within("decode.replicas", d.replicas, 1, gpus / d.gpus,
           "replicas of " + std::to_string(d.gpus) + " GPUs on " + in_.cluster.name);
    within("decode.batch_per_replica", d.batch_per_replica, 1, in_.workload.batch, "the batch");
    within("decode.prompt_tokens", d.prompt_tokens, 0, in_.workload.text_tokens,
           "the workload's text tokens");
    const int layers = self_attention_layers(in_.model);
    const int kv_heads = in_.model.self_attention.kv_heads;
    std::set<std::pair<int, int>> seen;
    for (size_t i = 0; i < d.heads.size(); ++i) {
      const DecodeHead& h = d.heads[i];
      const std::string at = "decode.heads[" + std::to_string(i) + "]";
      within(at + ".layer", h.layer, 0, layers - 1,
             "the self-attention layers of " + in_.model.name);
      within(at + ".head", h.head, 0, kv_heads - 1, "the kv heads of " + in_.model.name);
      if (!seen.insert({h.layer, h.head}).second)
        throw Error(origin_ + ": at \"" + at + "\": layer " + std::to_string(h.layer) + " head " +
                    std::to_string(h.head) + " is placed twice; re-run xring plan");
      head_copies(d, h, at);
    }
    // Each (layer, head) at most once and in range: as many as the model has is every one.
    const long long all = static_cast<long long>(layers) * kv_heads;
    if (!d.heads.empty() && static_cast<long long>(d.heads.size()) != all)
      throw Error(origin_ + ": at \"decode.heads\": places " + std::to_string(d.heads.size()) +
                  " heads, not the " + std::to_string(layers) + " self-attention layers x " +
                  std::to_string(kv_heads) + " kv heads of " + in_.model.name +
                  "; re-run xring plan");
    for (size_t i = 0; i < d.per_gpu.size(); ++i)
      within("decode.per_gpu[" + std::to_string(i) + "].gpu", d.per_gpu[i].gpu, 0, d.gpus - 1,
             "the replica's GPUs");
  }

  /// The stream the section describes is the workload's, and its memory curve holds seconds
  /// and bytes, not negative numbers: the run sizes its frames and its usable memory by them.
  /// (A curve may pass 10^18 bytes: a full cache over 10^9 s of stream grows without bound.)
  void streaming(const StreamingSection& s) const {
    const WorkloadSpec& w = in_.workload;
    same("streaming.stream_seconds", s.stream_seconds, w.stream_seconds.value_or(0),
         "inputs.workload.stream_seconds");
    same("streaming.fps", s.fps, w.fps.value_or(0), "inputs.workload.fps");
    for (size_t i = 0; i < s.policies.size(); ++i) {
      const auto& curve = s.policies[i].memory_over_time;
      for (size_t k = 0; k < curve.size(); ++k) {
        const std::string at = "streaming.policies[" + std::to_string(i) + "].memory_over_time[" +
                               std::to_string(k) + "]";
        if (!(curve[k].first >= 0))
          fail(at + "[0]", "a time of " + number_text(curve[k].first) + " s is negative");
        if (!(curve[k].second >= 0))
          fail(at + "[1]", number_text(curve[k].second) + " bytes is negative");
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& path, const std::string& why) const {
    throw Error(origin_ + ": at \"" + path + "\": " + why + "; re-run xring plan");
  }

  void same(const std::string& path, double value, double expected,
            const std::string& source) const {
    if (value != expected)
      fail(path,
           number_text(value) + " differs from " + source + " (" + number_text(expected) + ")");
  }

  const Inputs& in_;
  const std::string& origin_;
};

}  // namespace

void check_plan_against_inputs(const Plan& p, const Inputs& in, const std::string& origin) {
  PlanChecker check(in, origin);
  if (p.phase != to_string(in.workload.phase))
    throw Error(origin + ": at \"phase\": \"" + p.phase +
                "\" differs from inputs.workload.phase (\"" + to_string(in.workload.phase) +
                "\"); re-run xring plan");
  std::set<int> seen;
  for (size_t i = 0; i < p.layers.size(); ++i)
    check.layer(p.layers[i], "layers[" + std::to_string(i) + "]", seen);
  check.within("rest_of_model.tensor_parallel", p.rest_of_model.tensor_parallel, 1,
               in.cluster.gpus(), "the GPUs of " + in.cluster.name);
  if (p.decode) check.decode(*p.decode);
  if (p.streaming) check.streaming(*p.streaming);
}

}  // namespace xring
