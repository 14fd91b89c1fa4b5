// Private: the constructors of the strategy table's rows, one per file in this folder.
#pragma once

#include "xring/planner/strategy.hpp"

namespace xring {

StrategyUnit single_unit();
StrategyUnit kv_ring_unit();
StrategyUnit query_ring_unit();
StrategyUnit ulysses_unit();
StrategyUnit hybrid_unit();

/// Why a ring cannot run on `p` ("" when it can): it needs at least two ranks.
std::string ring_unsupported(const LayerShape& s, const Placement& p);

/// Why Ulysses cannot split `s` over `degree` ranks ("" when it can): query heads must divide,
/// and kv heads must divide or be replicated an integer number of times.
std::string ulysses_unsupported(const LayerShape& s, int degree);
/// kv-head replication Ulysses needs at `degree`: 1 when H_kv divides, else degree / H_kv.
int ulysses_kv_replication(const LayerShape& s, int degree);

}  // namespace xring
