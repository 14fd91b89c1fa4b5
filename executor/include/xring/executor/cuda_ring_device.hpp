// The cuda backend's device: every emulated rank of a ring on one GPU. Each rank owns its
// buffers in device memory, a compute stream and a communication stream; ring transfers are
// device-to-device copies on the communication stream, ordered with events exactly as the
// schedule's waits say (double-buffered, so step t + 1's blocks travel during step t's
// kernel). Every operation is timed with events on its own stream.
#pragma once

#include <memory>
#include <string>

#include "xring/executor/emulated.hpp"

namespace xring::executor {

/// "" when this build has the cuda backend and a usable GPU; otherwise why not.
std::string cuda_backend_unavailable();

/// A RingDevice on the current GPU for problem `p` on `ranks` emulated ranks. Throws
/// xring::Error: bad input (fp32 storage, an unsupported head dim) or runtime (no GPU, a
/// failed CUDA call, naming file:line and the call).
std::unique_ptr<RingDevice> make_cuda_ring_device(const AttentionProblem& p, int ranks);

}  // namespace xring::executor
