// The plan's predicted schedule as Chrome/Perfetto trace events, written as they are made.
#pragma once

#include <ostream>

#include "xring/planner/plan.hpp"

namespace xring {

/// The most events a predicted trace may write (docs/limits.md), metadata included: 146 bytes
/// each at the limit (Trace.LimitIsAcceptedAtOneMillionEventsAndRefusedOnePast; merged slices
/// print ~210), so 150-210 MB of file and a second or two of writing. The trace is streamed, so
/// memory does not grow with it; the bound is on the file and the time.
constexpr long long kMaxTraceEvents = 1000000;

/// Past this size step by step, a trace merges each layer's ring steps into one slice per
/// rank and lane. Source: issue 18's requirement ("merges identical steps ... where the file
/// would pass 10 MB"), a size the Perfetto UI opens at once.
constexpr long long kTraceMergeAboveBytes = 10 * 1000 * 1000;

/// What a predicted trace holds, decided before any of it is written.
struct TraceLayout {
  int ranks = 1;              ///< processes drawn: the widest layer's ranks, capped at max_ranks
  bool steps_merged = false;  ///< each layer's ring steps are one compute and one transfer slice
  long long events = 0;       ///< events the file holds (metadata included)
  long long merge_above_bytes = kTraceMergeAboveBytes;  ///< the size that decided steps_merged
};

/// Lays out the trace of `plan` for one data-parallel group: step by step when that text
/// stays within `merge_above_bytes` (measured by formatting it up to that size), otherwise
/// with each layer's ring steps merged. Throws xring::Error, before anything is written, when
/// the trace would hold more than kMaxTraceEvents events.
TraceLayout plan_trace(const Plan& plan, int max_ranks = 64,
                       long long merge_above_bytes = kTraceMergeAboveBytes);

/// Writes the trace (the JSON object format of chrome://tracing, compact) to `out` as it goes,
/// in blocks: a process per rank with a compute lane and a transfer lane; the forward ring
/// steps of every cross-attention layer in order, each layer's backward as one block, and the
/// rest of the model. Times in microseconds from the iteration's start. `otherData` says
/// whether steps were merged, and why. Throws xring::Error when `out` fails.
void write_trace(const Plan& plan, const TraceLayout& layout, std::ostream& out);

}  // namespace xring
