// The predicted trace (issue 18): streamed, the same events the document writer made, ring
// steps merged where the file would pass its size (and saying so), limit at and past.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <streambuf>
#include <string>

#include "reference/previous.hpp"
#include "test_util.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/trace.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

std::string trace_text(const Plan& p, const TraceLayout& layout) {
  std::ostringstream out;
  write_trace(p, layout, out);
  return out.str();
}

/// A query ring on 8 ranks of Llama-3.2-11B-Vision's 8 cross-attention layers: 8 steps each.
Plan ring_plan() {
  PlannerOptions o;
  o.strategy = Strategy::query_ring;
  o.ranks = 8;
  return plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa", {}), o);
}

/// Counts what is written and keeps nothing: the trace at its limit is ~130 MB.
class CountingBuffer : public std::streambuf {
 public:
  long long bytes = 0;
  long long slices = 0;  ///< occurrences of "ph":"X" and "ph":"M"
 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const std::string_view text(s, static_cast<size_t>(n));
    for (size_t at = text.find("\"ph\":"); at != std::string_view::npos;
         at = text.find("\"ph\":", at + 1))
      ++slices;  // TraceOutput hands over whole events, so none is split across calls
    bytes += n;
    return n;
  }
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) ++bytes;
    return c;
  }
};

/// A plan of `layers` one-step layers on 64 ranks: 64 events per layer, 192 of metadata.
Plan one_step_layers(int layers) {
  Plan p;
  p.xring_version = "test";
  LayerPlan l;
  l.ranks = 64;
  l.steps = 1;
  l.step_compute_s = l.forward_s = 1e-3;
  for (int i = 0; i < layers; ++i) {
    l.index = i;
    p.layers.push_back(l);
  }
  return p;
}

}  // namespace

TEST(Trace, HasComputeAndTransferLanesPerRank) {
  const Plan p = ring_plan();
  const TraceLayout layout = plan_trace(p);
  ASSERT_FALSE(layout.steps_merged);
  const json t = json::parse(trace_text(p, layout));
  ASSERT_TRUE(t["traceEvents"].is_array());
  EXPECT_EQ(static_cast<long long>(t["traceEvents"].size()), layout.events);
  int compute = 0, transfer = 0;
  std::set<int> ranks;
  for (const auto& e : t["traceEvents"]) {
    if (e["ph"] != "X") continue;
    EXPECT_GE(e["dur"].get<double>(), 0.0);
    ranks.insert(e["pid"].get<int>());
    (e["cat"] == "transfer" ? transfer : compute)++;
  }
  const LayerPlan& l = p.layers.front();
  ASSERT_EQ(l.steps, 8);
  EXPECT_EQ(static_cast<int>(ranks.size()), 8);
  // Per layer and rank: 8 compute steps and 7 transfers (plus projections).
  EXPECT_EQ(transfer, 8 * 8 * 7);
  EXPECT_GE(compute, 8 * 8 * 8);
  EXPECT_FALSE(t["otherData"]["steps_merged"].get<bool>());
  EXPECT_TRUE(t["otherData"]["merge_note"].is_null());
}

TEST(Trace, StepByStepHoldsTheEventsTheDocumentWriterMade) {
  PlannerOptions training_hybrid;
  training_hybrid.strategy = Strategy::hybrid;
  for (const Plan& p : {ring_plan(),
                        plan(load_inputs("openflamingo-3b", "a100-80gb-16", "video-qa",
                                         {"workload.phase=training"})),
                        plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}),
                             training_hybrid)}) {
    const json now = json::parse(trace_text(p, plan_trace(p)));
    const json before = previous::trace_document(p);
    EXPECT_EQ(now["traceEvents"], before["traceEvents"]);
    EXPECT_EQ(now["otherData"]["generator"], before["otherData"]["generator"]);
  }
}

TEST(Trace, MergesRingStepsWhereTheFileWouldPassTheSizeAndSaysSo) {
  const Plan p = ring_plan();
  const std::string step_by_step = trace_text(p, plan_trace(p));
  const long long size = static_cast<long long>(step_by_step.size());
  // At the size the trace stays step by step, byte for byte; one byte less merges it.
  TraceLayout at = plan_trace(p, 64, size);
  EXPECT_FALSE(at.steps_merged);
  EXPECT_EQ(trace_text(p, at), step_by_step);
  TraceLayout past = plan_trace(p, 64, size - 1);
  ASSERT_TRUE(past.steps_merged);
  const json merged = json::parse(trace_text(p, past));
  const json each = json::parse(step_by_step);
  EXPECT_TRUE(merged["otherData"]["steps_merged"].get<bool>());
  EXPECT_NE(merged["otherData"]["merge_note"].get<std::string>().find("would pass"),
            std::string::npos);
  // Per layer and rank: projections, one compute slice, one transfer slice; 24 of metadata
  // and the rest of the model on each of the 8 ranks.
  EXPECT_EQ(static_cast<long long>(merged["traceEvents"].size()), past.events);
  EXPECT_EQ(past.events, 24 + 8 * 8 * 3 + 8);
  const LayerPlan& l = p.layers.front();
  const double stride_us = std::max(l.step_compute_s, l.step_comm_s) * 1e6;
  int slices = 0;
  for (const auto& e : merged["traceEvents"]) {
    if (e["name"] != "layer 3 query_ring steps 0-7" || e["pid"] != 5) continue;
    ++slices;
    EXPECT_EQ(e["args"]["count"], 8);
    EXPECT_DOUBLE_EQ(e["args"]["step_every_us"].get<double>(), stride_us);
    // It spans the first step's start to the last step's end, as the steps did.
    for (const auto& s : each["traceEvents"]) {
      if (s["pid"] != 5) continue;
      if (s["name"] == "layer 3 query_ring step 0") {
        EXPECT_DOUBLE_EQ(e["ts"].get<double>(), s["ts"].get<double>());
      }
      if (s["name"] == "layer 3 query_ring step 7") {
        EXPECT_NEAR(e["ts"].get<double>() + e["dur"].get<double>(),
                    s["ts"].get<double>() + s["dur"].get<double>(), 1e-9 * stride_us * 8);
      }
    }
    EXPECT_NEAR(e["dur"].get<double>(), 7 * stride_us + l.step_compute_s * 1e6, 1e-9);
  }
  EXPECT_EQ(slices, 1);
}

TEST(Trace, LimitIsAcceptedAtOneMillionEventsAndRefusedOnePast) {
  // 15,622 layers x 64 ranks + 3 x 64 metadata = 1,000,000 events.
  const Plan at = one_step_layers(15622);
  const TraceLayout layout = plan_trace(at);
  EXPECT_EQ(layout.events, kMaxTraceEvents);
  CountingBuffer counted;
  std::ostream out(&counted);
  write_trace(at, layout, out);
  EXPECT_EQ(counted.slices, kMaxTraceEvents);
  RecordProperty("bytes", std::to_string(counted.bytes));
  EXPECT_LT(counted.bytes, 160ll * 1000 * 1000);
  // One more layer, on one rank: one event past.
  Plan past = one_step_layers(15622);
  past.layers.push_back(past.layers.back());
  past.layers.back().index = 15622;
  past.layers.back().ranks = 1;
  const std::string refused = error_of([&] { plan_trace(past); });
  EXPECT_NE(refused.find("the timeline would hold 1000001 events, more than 1000000"),
            std::string::npos)
      << refused;
}
