// Host-side CUDA helpers shared by the kernels' wrappers and the executor's GPU code: the
// checked-call macro (file:line, the call, CUDA's error string; xring::Error with exit code 3)
// and device memory that frees itself.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "xring/planner/error.hpp"

#define XRING_CUDA_CHECK(call)                                                                     \
  do {                                                                                             \
    cudaError_t xring_status_ = (call);                                                            \
    if (xring_status_ != cudaSuccess)                                                              \
      throw ::xring::Error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #call + \
                               ": " + cudaGetErrorString(xring_status_),                           \
                           ::xring::ExitCode::runtime);                                            \
  } while (0)

/// After a launch: configuration errors now, execution errors at the next synchronization.
#define XRING_CUDA_CHECK_LAUNCH() XRING_CUDA_CHECK(cudaGetLastError())

namespace xring::kernels::cuda {

/// Device memory that frees itself, zero-filled.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    XRING_CUDA_CHECK(cudaMalloc(&ptr_, bytes > 16 ? bytes : 16));
    XRING_CUDA_CHECK(cudaMemset(ptr_, 0, bytes > 16 ? bytes : 16));
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace xring::kernels::cuda
