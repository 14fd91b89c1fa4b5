// Implementations replaced by issue 18, kept as oracles for tests and benchmarks.
#pragma once

#include <nlohmann/json.hpp>

#include "xring/planner/placement.hpp"
#include "xring/planner/plan.hpp"

namespace xring::previous {

/// The plan as one nlohmann document, as to_json built it before plan_json_text existed;
/// `plan_document(p).dump(2)` is the plan file's text as it was.
nlohmann::json plan_document(const Plan& plan);

/// The predicted trace as one document, as predicted_trace built it before write_trace
/// streamed it (every ring step its own event; refused past kMaxTraceEvents unmerged events).
nlohmann::json trace_document(const Plan& plan, int max_ranks = 64);

/// Fair copying from `balanced` as it was before its loads were updated incrementally: every
/// accepted copy recounted all of the layer's GPU loads (previous_placement.cpp).
LayerPlacement place_fair_copying(const LayerLoad& load, int max_copies, LayerPlacement balanced);

}  // namespace xring::previous
