// Predicted schedule -> Chrome trace events, streamed in blocks (no document in memory).
#include "xring/planner/trace.hpp"

#include <algorithm>
#include <string>

#include "xring/planner/error.hpp"
#include "xring/planner/json_text.hpp"

namespace xring {
namespace {

constexpr int kComputeLane = 1;
constexpr int kTransferLane = 2;
constexpr size_t kBlockBytes = 1 << 16;
/// No event prints shorter (a thread_name record prints 65 bytes), so events x this is a
/// lower bound on a trace's size.
constexpr long long kMinEventBytes = 50;

/// Where trace text goes: a stream, or nowhere (counting only, stopping once past a size).
class TraceOutput {
 public:
  TraceOutput(std::ostream* stream, long long stop_above_bytes)
      : stream_(stream), stop_above_bytes_(stop_above_bytes) {
    text_.reserve(kBlockBytes + 4096);
  }
  JsonTextWriter& json() { return writer_; }
  /// After each event: hands a full block on. False once a counting output passed its size.
  bool event_done() { return text_.size() < kBlockBytes || flush(); }
  void newline() { text_ += '\n'; }
  bool flush() {
    written_bytes_ += static_cast<long long>(text_.size());
    if (stream_ && !stream_->write(text_.data(), static_cast<std::streamsize>(text_.size())))
      throw Error("--trace: writing the trace failed (disk full?)", ExitCode::runtime);
    text_.clear();
    return stop_above_bytes_ < 0 || written_bytes_ <= stop_above_bytes_;
  }

 private:
  std::ostream* stream_;
  long long stop_above_bytes_;
  long long written_bytes_ = 0;
  std::string text_;
  JsonTextWriter writer_{text_, -1};
};

/// A complete event ("ph": "X"); `args` writes the members of its args object, in key order.
template <typename Args>
void slice(JsonTextWriter& w, const std::string& name, const char* category, int rank, int lane,
           double start_s, double duration_s, Args args) {
  w.begin_object();
  w.key("args").begin_object();
  args(w);
  w.end_object();
  w.key("cat").value(category);
  w.key("dur").value(duration_s * 1e6);
  w.key("name").value(name);
  w.key("ph").value("X");
  w.key("pid").value(rank);
  w.key("tid").value(lane);
  w.key("ts").value(start_s * 1e6);
  w.end_object();
}

void no_args(JsonTextWriter&) {}

void metadata(JsonTextWriter& w, const char* what, int rank, int lane, const std::string& name) {
  w.begin_object();
  w.key("args").begin_object().key("name").value(name).end_object();
  w.key("name").value(what);
  w.key("ph").value("M");
  w.key("pid").value(rank);
  if (lane) w.key("tid").value(lane);
  w.end_object();
}

/// A layer's forward: projections and all-to-alls (everything outside the steps) first, then
/// `steps` ring steps one stride apart.
struct ForwardShape {
  double fixed_compute_s = 0;
  double stride_s = 0;
};

ForwardShape forward_shape(const LayerPlan& l) {
  ForwardShape f;
  f.stride_s = std::max(l.step_compute_s, l.step_comm_s);
  f.fixed_compute_s = l.forward_s - (l.steps > 1 ? l.step_compute_s + (l.steps - 1) * f.stride_s
                                                 : l.step_compute_s);
  return f;
}

int trace_ranks(const Plan& plan, int max_ranks) {
  int ranks = 1;
  for (const auto& l : plan.layers) ranks = std::max(ranks, l.ranks);
  return std::min(ranks, max_ranks);
}

/// Events the trace holds, metadata included.
long long count_events(const Plan& plan, int ranks, bool merged) {
  long long events = 3ll * ranks;
  for (const auto& l : plan.layers) {
    const long long active = std::min(l.ranks, ranks);
    const bool merge = merged && l.steps > 1;
    const long long per_rank = (forward_shape(l).fixed_compute_s > 0 ? 1 : 0) +
                               (merge ? 1 : l.steps) +
                               (l.steps > 1 ? (merge ? 1 : l.steps - 1) : 0);
    events += active * per_rank;
    if (l.backward_s > 0) events += active;
  }
  if (plan.rest_of_model.time_s > 0) events += ranks;
  return events;
}

/// One rank's forward of one layer from `start_s`: step by step, or its steps merged into one
/// compute slice and one transfer slice that say how many steps they hold.
bool forward_of_rank(TraceOutput& o, const LayerPlan& l, int rank, double start_s, bool merged) {
  JsonTextWriter& w = o.json();
  const ForwardShape f = forward_shape(l);
  const std::string layer = "layer " + std::to_string(l.index);
  if (f.fixed_compute_s > 0) {
    slice(w, layer + " projections/all-to-all", "compute", rank, kComputeLane, start_s,
          f.fixed_compute_s, no_args);
    if (!o.event_done()) return false;
  }
  start_s += std::max(0.0, f.fixed_compute_s);
  const std::string to = " send to rank " + std::to_string((rank + 1) % l.ranks);
  if (merged && l.steps > 1) {
    const double stride_us = f.stride_s * 1e6;
    slice(
        w, layer + " " + to_string(l.strategy) + " steps 0-" + std::to_string(l.steps - 1),
        "compute", rank, kComputeLane, start_s, (l.steps - 1) * f.stride_s + l.step_compute_s,
        [&](JsonTextWriter& a) {
          a.key("count").value(l.steps).key("layer").value(l.index);
          a.key("step_dur_us").value(l.step_compute_s * 1e6).key("step_every_us").value(stride_us);
        });
    if (!o.event_done()) return false;
    slice(w, layer + to + " x" + std::to_string(l.steps - 1), "transfer", rank, kTransferLane,
          start_s, (l.steps - 2) * f.stride_s + l.step_comm_s, [&](JsonTextWriter& a) {
            a.key("bytes").value(l.bytes_per_step).key("count").value(l.steps - 1);
            a.key("layer").value(l.index).key("step_dur_us").value(l.step_comm_s * 1e6);
            a.key("step_every_us").value(stride_us);
          });
    return o.event_done();
  }
  const std::string step = layer + " " + to_string(l.strategy) + " step ";
  for (int k = 0; k < l.steps; ++k) {
    const double step_start = start_s + k * f.stride_s;
    slice(w, step + std::to_string(k), "compute", rank, kComputeLane, step_start, l.step_compute_s,
          [&](JsonTextWriter& a) { a.key("layer").value(l.index).key("step").value(k); });
    if (!o.event_done()) return false;
    if (k + 1 == l.steps) break;
    slice(w, layer + to, "transfer", rank, kTransferLane, step_start, l.step_comm_s,
          [&](JsonTextWriter& a) { a.key("bytes").value(l.bytes_per_step); });
    if (!o.event_done()) return false;
  }
  return true;
}

/// Every event in order; false when a counting output stopped it.
bool events(TraceOutput& o, const Plan& plan, int ranks, bool merged) {
  JsonTextWriter& w = o.json();
  for (int r = 0; r < ranks; ++r) {
    metadata(w, "process_name", r, 0, "rank " + std::to_string(r));
    metadata(w, "thread_name", r, kComputeLane, "compute");
    metadata(w, "thread_name", r, kTransferLane, "transfer");
    if (!o.event_done()) return false;
  }
  double t = 0;
  for (const auto& l : plan.layers) {
    for (int r = 0; r < std::min(l.ranks, ranks); ++r)
      if (!forward_of_rank(o, l, r, t, merged)) return false;
    t += l.forward_s;
  }
  for (auto it = plan.layers.rbegin(); it != plan.layers.rend(); ++it) {
    if (it->backward_s <= 0) continue;
    for (int r = 0; r < std::min(it->ranks, ranks); ++r) {
      slice(w, "layer " + std::to_string(it->index) + " backward", "compute", r, kComputeLane, t,
            it->backward_s, no_args);
      if (!o.event_done()) return false;
    }
    t += it->backward_s;
  }
  if (plan.rest_of_model.time_s > 0)
    for (int r = 0; r < ranks; ++r) {
      slice(w, "rest of model", "compute", r, kComputeLane, t, plan.rest_of_model.time_s,
            [&](JsonTextWriter& a) { a.key("note").value(plan.rest_of_model.note); });
      if (!o.event_done()) return false;
    }
  return true;
}

std::string merge_note(long long merge_above_bytes) {
  return "each layer's ring steps are merged into one slice per rank and lane (args.count "
         "steps, each args.step_dur_us long, one every args.step_every_us): step by step the "
         "trace would pass " +
         std::to_string(merge_above_bytes / 1000000) + " MB";
}

/// The whole file, newline included; false when a counting output stopped it.
bool document(TraceOutput& o, const Plan& plan, const TraceLayout& layout,
              long long merge_above_bytes) {
  JsonTextWriter& w = o.json();
  w.begin_object();
  w.key("displayTimeUnit").value("ms");
  w.key("otherData").begin_object();
  w.key("generator").value("xring plan " + plan.xring_version);
  w.key("kind").value("predicted");
  w.key("merge_note");
  if (layout.steps_merged)
    w.value(merge_note(merge_above_bytes));
  else
    w.null();
  w.key("steps_merged").value(layout.steps_merged);
  w.end_object();
  w.key("traceEvents").begin_array();
  if (!events(o, plan, layout.ranks, layout.steps_merged)) return false;
  w.end_array();
  w.end_object();
  o.newline();
  return o.flush();
}

}  // namespace

TraceLayout plan_trace(const Plan& plan, int max_ranks, long long merge_above_bytes) {
  TraceLayout layout;
  layout.ranks = trace_ranks(plan, max_ranks);
  layout.events = count_events(plan, layout.ranks, false);
  layout.merge_above_bytes = merge_above_bytes;
  // Too big step by step when even the shortest events pass the size; else measured by
  // formatting the text (without keeping it) until it passes.
  layout.steps_merged = layout.events > merge_above_bytes / kMinEventBytes;
  if (!layout.steps_merged) {
    TraceOutput counter(nullptr, merge_above_bytes);
    layout.steps_merged = !document(counter, plan, layout, merge_above_bytes);
  }
  if (layout.steps_merged) layout.events = count_events(plan, layout.ranks, true);
  if (layout.events > kMaxTraceEvents)
    throw Error("--trace: the timeline would hold " + std::to_string(layout.events) +
                " events, more than " + std::to_string(kMaxTraceEvents) + " (" +
                std::to_string(plan.layers.size()) + " layers on " + std::to_string(layout.ranks) +
                " ranks" + (layout.steps_merged ? ", ring steps merged" : "") +
                "); trace a smaller model or drop --trace");
  return layout;
}

void write_trace(const Plan& plan, const TraceLayout& layout, std::ostream& out) {
  TraceOutput o(&out, -1);
  document(o, plan, layout, layout.merge_above_bytes);
}

}  // namespace xring
