// Private to the executor (CUDA builds only): a CUDA stream and a CUDA event that destroy
// themselves, shared by the ring devices and the decode runner.
#pragma once

#include <cuda_runtime_api.h>

#include "xring/kernels/cuda_memory.hpp"

namespace xring::executor::cuda_detail {

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { XRING_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

struct Event {
  cudaEvent_t e = nullptr;
  Event() { XRING_CUDA_CHECK(cudaEventCreate(&e)); }
  ~Event() { cudaEventDestroy(e); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
};

}  // namespace xring::executor::cuda_detail
