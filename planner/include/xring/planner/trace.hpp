// The plan's predicted schedule as Chrome/Perfetto trace events.
#pragma once

#include <nlohmann/json.hpp>

#include "xring/planner/plan.hpp"

namespace xring {

/// The most events a predicted trace may hold (docs/file-formats.md "Resource limits"): ~0.5 KB each in
/// memory, so about 500 MB; a 100,000-layer model's trace ran out of memory.
constexpr long long kMaxTraceEvents = 1000000;

/// Trace events (the JSON object format of chrome://tracing) for one data-parallel group:
/// a process per rank (capped at `max_ranks`), with a compute lane and a transfer lane; the
/// forward ring steps of every cross-attention layer in order, each layer's backward as one
/// block, and the rest of the model. Times in microseconds from the iteration's start.
/// Throws xring::Error when the trace would hold more than kMaxTraceEvents.
nlohmann::json predicted_trace(const Plan& plan, int max_ranks = 64);

}  // namespace xring
