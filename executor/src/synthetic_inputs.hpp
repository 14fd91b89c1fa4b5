// The seeded synthetic inputs every `xring run` backend executes: values uniform in
// [-scale, scale) rounded to the storage type, media masks of equal frames.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "xring/executor/attention.hpp"
#include "xring/planner/planner.hpp"

namespace xring::executor {

/// Seeded values uniform in [-scale, scale), rounded to the storage type.
class SyntheticValues {
 public:
  SyntheticValues(uint64_t seed, kernels::Storage storage) : rng_(seed), storage_(storage) {}
  void fill(std::vector<float>& t, size_t n, float scale = 1.0f) {
    t.resize(n);
    for (float& x : t) x = kernels::round_to(storage_, scale * uniform_(rng_));
  }

 private:
  std::mt19937_64 rng_;
  std::uniform_real_distribution<float> uniform_{-1.0f, 1.0f};
  kernels::Storage storage_;
};

/// Q, K, V (and dO with `backward`) of one layer; `media_mask` none | same_group | up_to_group.
AttentionProblem synthetic_problem(const LayerShape& s, kernels::Storage storage, uint64_t seed,
                                   const std::string& media_mask, bool backward);

kernels::Storage storage_of(DType d);

}  // namespace xring::executor
