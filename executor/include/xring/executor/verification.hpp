// Checking a backend's results against the reference: per-element errors against a tolerance
// scaled by the reference tensor's own magnitude.
#pragma once

#include <vector>

#include "xring/kernels/reference.hpp"

namespace xring::executor {

/// The errors of one or more tensors; `worst_ratio` ≤ 1 means every element is within tolerance.
struct Comparison {
  double max_abs = 0;      ///< largest |got − want|
  double max_rel = 0;      ///< largest |got − want| / max|want| of its tensor
  double tolerance = 0;    ///< the allowed error at the largest |want|
  double worst_ratio = 0;  ///< largest error / allowed (infinite for a NaN or a wrong infinity)
};

/// The relative slack of the cpu backend: fp32 summation-order differences (tests/test_executor).
inline constexpr double kCpuRelativeTolerance = 1e-5;

/// The GPU backends' relative tolerance: the kernels round P to the storage type before P·V,
/// and where the running maximum sits depends on the key split (tests/test_cuda_backend.cpp).
double gpu_relative_tolerance(kernels::Storage s);

/// Adds `got` against `want` to `c`. Allowed per element: relative·max|want| + one storage ulp
/// of the element. The scale is the tensor's own largest |value| with no floor, so an output
/// that is all zeros fails however small the reference (issue 21: 102,464 uniform keys give
/// |O| ≈ 0.002–0.01, which a floor of 1 let pass).
/// `scale_floor` raises the scale to at least that value: only the cpu backend's fp32 slack
/// uses one (compare_cpu).
void compare(const std::vector<float>& got, const std::vector<float>& want,
             kernels::Storage storage, Comparison& c, double relative, double scale_floor = 0);

/// The cpu backend's check: kCpuRelativeTolerance of max(max|want|, 1) + one storage ulp.
/// Its errors are fp32 rounding of a sum whose terms are as large as the inputs (|V| ≤ 1 for the
/// synthetic inputs), not as small as an output that cancels to |O| ≈ 0.03: relative to |O|
/// alone, 4-rank query_ring merges of the tiny model fail at 1e-6 absolute. A zeroed output still
/// fails wherever |O| > 1e-5.
void compare_cpu(const std::vector<float>& got, const std::vector<float>& want,
                 kernels::Storage storage, Comparison& c);

}  // namespace xring::executor
