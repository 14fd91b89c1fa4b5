// Helpers shared by the tests that compare distributed attention with the monolithic reference:
// seeded problems and the comparison with its stated tolerance (see test_executor.cpp).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "xring/executor/attention.hpp"

namespace xring::test {

using kernels::Storage;

inline executor::AttentionProblem random_problem(std::mt19937& rng, kernels::Shape shape,
                                                 long long s_q, long long s_kv, Storage storage,
                                                 kernels::Mask::Kind mask_kind) {
  executor::AttentionProblem p;
  p.shape = shape;
  p.s_q = s_q;
  p.s_kv = s_kv;
  p.storage = storage;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  auto fill = [&](std::vector<float>& t, size_t n) {
    t.resize(n);
    for (float& x : t) x = kernels::round_to(storage, u(rng));
  };
  const size_t q_size = static_cast<size_t>(shape.batch) * shape.heads * s_q * shape.head_dim;
  const size_t kv_size = static_cast<size_t>(shape.batch) * shape.kv_heads * s_kv * shape.head_dim;
  fill(p.q, q_size);
  fill(p.k, kv_size);
  fill(p.v, kv_size);
  fill(p.d_o, q_size);
  p.mask.kind = mask_kind;
  if (mask_kind != kernels::Mask::Kind::none) {
    const int groups = 3;
    for (long long i = 0; i < s_q; ++i)
      p.mask.q_group.push_back(static_cast<int>(i * groups / s_q));
    for (long long j = 0; j < s_kv; ++j)
      p.mask.kv_group.push_back(static_cast<int>(j * groups / s_kv));
    p.mask.q_group.back() =
        groups;  // one text token after the last image: fully masked under same_group
  }
  return p;
}

/// One shape to compare the distributed result with the reference on.
struct AttentionCase {
  kernels::Shape shape;
  long long s_q, s_kv;
  Storage storage;
  kernels::Mask::Kind mask;
};

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v)
    if (std::isfinite(x)) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

inline void expect_close(const std::vector<float>& got, const std::vector<float>& want,
                         Storage storage, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double slack = 1e-5 * std::max(1.0, max_abs(want));
  double worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      ASSERT_EQ(got[i], want[i]) << what << " at " << i;
      continue;
    }
    double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    double allowed = slack + kernels::ulp(storage, want[i]);
    if (err / allowed > worst) {
      worst = err / allowed;
      worst_at = i;
    }
  }
  EXPECT_LE(worst, 1.0) << what << ": error " << std::fabs(got[worst_at] - want[worst_at]) << " at "
                        << worst_at << " (got " << got[worst_at] << ", want " << want[worst_at]
                        << ")";
}

inline void expect_same_result(const executor::AttentionResult& got,
                               const executor::AttentionResult& want, Storage storage,
                               const std::string& what) {
  expect_close(got.o, want.o, storage, what + " O");
  expect_close(got.l, want.l, Storage::fp32, what + " L");
  expect_close(got.dq, want.dq, storage, what + " dQ");
  expect_close(got.dk, want.dk, storage, what + " dK");
  expect_close(got.dv, want.dv, storage, what + " dV");
}

}  // namespace xring::test
