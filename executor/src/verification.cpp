// Per-element verification of a backend's results against the reference.
#include "xring/executor/verification.hpp"

#include <algorithm>
#include <cmath>

namespace xring::executor {

double gpu_relative_tolerance(kernels::Storage s) {
  return s == kernels::Storage::fp16 ? 2e-3 : 8e-3;
}

void compare(const std::vector<float>& got, const std::vector<float>& want,
             kernels::Storage storage, Comparison& c, double relative, double scale_floor) {
  double scale = 0;
  for (float x : want)
    if (std::isfinite(x)) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  if (got.size() != want.size()) {
    c.worst_ratio = INFINITY;
    return;
  }
  for (size_t i = 0; i < want.size(); ++i) {
    if (std::isnan(want[i]) || std::isnan(got[i])) {  // never verified
      c.worst_ratio = INFINITY;
      continue;
    }
    if (std::isinf(want[i]) || std::isinf(got[i])) {
      if (got[i] != want[i]) c.worst_ratio = INFINITY;
      continue;
    }
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double allowed = relative * std::max(scale, scale_floor) + kernels::ulp(storage, want[i]);
    c.max_abs = std::max(c.max_abs, err);
    if (scale > 0) c.max_rel = std::max(c.max_rel, err / scale);
    c.worst_ratio = std::max(c.worst_ratio, err / allowed);
  }
  c.tolerance = std::max(c.tolerance, relative * std::max(scale, scale_floor) +
                                          kernels::ulp(storage, static_cast<float>(scale)));
}

void compare_cpu(const std::vector<float>& got, const std::vector<float>& want,
                 kernels::Storage storage, Comparison& c) {
  compare(got, want, storage, c, kCpuRelativeTolerance, 1.0);
}

}  // namespace xring::executor
