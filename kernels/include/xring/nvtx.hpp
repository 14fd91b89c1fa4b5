// One macro for NVTX ranges in the "xring" domain, so Nsight Systems timelines read like the
// plan's trace. Compiled out when the build has no NVTX3 headers (XRING_HAVE_NVTX unset).
//
//   XRING_RANGE("rank " + std::to_string(r) + " step " + std::to_string(t) + " attention");
//
// The range lasts until the end of the enclosing scope. With NVTX compiled in and no tool
// attached, a range costs a few nanoseconds beyond building its name.
#pragma once

#if defined(XRING_HAVE_NVTX)
#include <nvtx3/nvtx3.hpp>

#include <string>

namespace xring {
struct NvtxDomain {
  static constexpr const char* name{"xring"};
};

/// A named range in the xring domain (the name is copied by NVTX when the range starts).
class NvtxRange {
 public:
  explicit NvtxRange(const std::string& name) : range_{nvtx3::message{name}} {}

 private:
  nvtx3::scoped_range_in<NvtxDomain> range_;
};
}  // namespace xring

#define XRING_NVTX_CONCAT2(a, b) a##b
#define XRING_NVTX_CONCAT(a, b) XRING_NVTX_CONCAT2(a, b)
#define XRING_RANGE(name) ::xring::NvtxRange XRING_NVTX_CONCAT(xring_nvtx_range_, __LINE__)(name)
#else
#define XRING_RANGE(name) ((void)0)
#endif
