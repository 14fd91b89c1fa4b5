// The cuda backend's RingDevice (see cuda_ring_device.hpp). Without CUDA in the build, the
// factory says so and nothing else is compiled.
#include "xring/executor/cuda_ring_device.hpp"

#include "xring/planner/error.hpp"

#if XRING_EXECUTOR_CUDA

#include "cuda_ring_device_impl.hpp"

namespace xring::executor {

using cuda_detail::CudaRingDevice;

std::string cuda_backend_unavailable() {
  std::string why;
  return kernels::cuda::device_available(&why) ? "" : why;
}

std::unique_ptr<RingDevice> make_cuda_ring_device(const AttentionProblem& p, int ranks) {
  std::string why = cuda_backend_unavailable();
  if (!why.empty()) throw Error("--backend cuda: " + why, ExitCode::runtime);
  return std::make_unique<CudaRingDevice>(p, ranks);
}

}  // namespace xring::executor

#else  // no CUDA in this build

namespace xring::executor {

std::string cuda_backend_unavailable() {
  return "this build of xring has no CUDA (configure where the CUDA toolkit is installed)";
}

std::unique_ptr<RingDevice> make_cuda_ring_device(const AttentionProblem&, int) {
  throw Error("--backend cuda: " + cuda_backend_unavailable(), ExitCode::runtime);
}

}  // namespace xring::executor

#endif
