// Decode plans on the cuda backend: each GPU of the plan's FairKV placement emulated on this
// one by its own stream, holding the compacted caches of the (request, kv head) pairs its copies
// serve; the same result as the CPU decode on the same compacted caches.
#include "xring/executor/decode.hpp"
#include "xring/planner/error.hpp"

#if XRING_EXECUTOR_CUDA

#include <cuda_runtime_api.h>

#include <cstring>
#include <limits>
#include <memory>

#include "cuda_handles.hpp"
#include "xring/kernels/cuda.hpp"
#include "xring/kernels/cuda_memory.hpp"
#include "xring/nvtx.hpp"

namespace xring::executor {
namespace {

namespace gpu = kernels::cuda;

/// fp32 values as the storage dtype on the device (converted there, as the ring device does).
gpu::DeviceBuffer upload_storage(const std::vector<float>& values, gpu::DType dtype) {
  if (values.empty()) return gpu::DeviceBuffer(16);  // a GPU serving no cache
  gpu::DeviceBuffer staging(values.size() * sizeof(float)), out(values.size() * 2);
  XRING_CUDA_CHECK(cudaMemcpy(staging.get(), values.data(), values.size() * sizeof(float),
                              cudaMemcpyHostToDevice));
  gpu::convert_from_fp32(staging.as<float>(), out.get(), dtype,
                         static_cast<long long>(values.size()));
  XRING_CUDA_CHECK(cudaDeviceSynchronize());
  return out;
}

gpu::DeviceBuffer upload_offsets(const std::vector<long long>& values) {
  gpu::DeviceBuffer b(values.size() * sizeof(long long));
  XRING_CUDA_CHECK(cudaMemcpy(b.get(), values.data(), values.size() * sizeof(long long),
                              cudaMemcpyHostToDevice));
  return b;
}

/// A 16-bit storage value back to fp32 (bf16: the high half of an fp32; fp16: IEEE binary16).
float from_storage_bits(gpu::DType dtype, uint16_t b) {
  uint32_t bits;
  if (dtype == gpu::DType::bf16) {
    bits = static_cast<uint32_t>(b) << 16;
  } else {
    const uint32_t sign = static_cast<uint32_t>(b & 0x8000u) << 16;
    uint32_t exponent = (b >> 10) & 0x1fu, mantissa = b & 0x3ffu;
    if (exponent == 0x1f) {
      bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent == 0) {
      if (mantissa == 0) {
        bits = sign;
      } else {  // subnormal: normalise
        int shift = 0;
        while (!(mantissa & 0x400u)) {
          mantissa <<= 1;
          ++shift;
        }
        bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
      }
    } else {
      bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
  }
  float x;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

using cuda_detail::Event;
using cuda_detail::Stream;

/// One emulated GPU: every cache slot of the layer (request-major), empty (length 0) where
/// another GPU serves it, so one decode launch covers exactly its share.
struct EmulatedGpu {
  gpu::DeviceBuffer k, v, offset, len, o, l;
  long long max_len = 0;
  Stream stream;
  Event done;
};

}  // namespace

DecodeResult run_decode_cuda(const DecodeProblem& p, const HeadCopies& copies, int gpus) {
  check_copies(p, copies, gpus);
  std::string why;
  if (!gpu::device_available(&why)) throw Error("--backend cuda: " + why, ExitCode::runtime);
  if (p.storage == kernels::Storage::fp32)
    throw Error("--backend cuda: the CUDA kernels take fp16 and bf16 tensors; this model is fp32");
  XRING_RANGE("decode (cuda, emulated GPUs)");
  const gpu::DType dtype =
      p.storage == kernels::Storage::fp16 ? gpu::DType::fp16 : gpu::DType::bf16;
  const auto& s = p.shape;
  const int d = s.head_dim, group = s.heads / s.kv_heads;
  const int caches = p.requests * s.kv_heads;
  std::vector<int> owner(caches, 0);
  for (int h = 0; h < s.kv_heads; ++h) {
    int first = 0;
    for (const auto& [g, requests] : copies[h]) {
      for (int r = first; r < first + requests; ++r) owner[r * s.kv_heads + h] = g;
      first += requests;
    }
  }
  // Compaction as the reference does it (top-k by score, position order), then each GPU's
  // caches packed one after another.
  std::vector<std::vector<long long>> keep(caches);
  for (int c = 0; c < caches; ++c)
    keep[c] = kernels::top_k_positions(p.scores.data() + static_cast<size_t>(c) * p.context,
                                       p.context, p.budget[c % s.kv_heads]);
  gpu::DeviceBuffer q = upload_storage(p.q, dtype);
  std::vector<std::unique_ptr<EmulatedGpu>> devices;
  for (int g = 0; g < gpus; ++g) {
    auto dev = std::make_unique<EmulatedGpu>();
    std::vector<long long> offset(caches, 0), len(caches, 0);
    std::vector<float> k, v;
    for (int c = 0; c < caches; ++c) {
      offset[c] = static_cast<long long>(k.size() / d);
      if (owner[c] != g) continue;
      const size_t base = static_cast<size_t>(c) * p.context * d;
      std::vector<float> kc = kernels::gather_rows(p.k.data() + base, d, keep[c]);
      std::vector<float> vc = kernels::gather_rows(p.v.data() + base, d, keep[c]);
      k.insert(k.end(), kc.begin(), kc.end());
      v.insert(v.end(), vc.begin(), vc.end());
      len[c] = static_cast<long long>(keep[c].size());
      dev->max_len = std::max(dev->max_len, len[c]);
    }
    dev->k = upload_storage(k, dtype);
    dev->v = upload_storage(v, dtype);
    dev->offset = upload_offsets(offset);
    dev->len = upload_offsets(len);
    dev->o = gpu::DeviceBuffer(p.q.size() * 2);
    dev->l = gpu::DeviceBuffer(static_cast<size_t>(p.requests) * s.heads * sizeof(float));
    devices.push_back(std::move(dev));
  }
  // Every GPU's stream starts together and runs its own launch; the step ends with the last.
  Stream origin;
  Event start, end;
  XRING_CUDA_CHECK(cudaEventRecord(start.e, origin.s));
  for (auto& dev : devices) {
    XRING_CUDA_CHECK(cudaStreamWaitEvent(dev->stream.s, start.e, 0));
    gpu::DecodeArgs a;
    a.dtype = dtype;
    a.requests = p.requests;
    a.geometry = {1, s.heads, s.kv_heads, d};
    a.q = q.get();
    a.caches = {dev->k.get(), dev->v.get(), dev->offset.as<long long>(), dev->len.as<long long>(),
                std::max<long long>(1, dev->max_len)};
    a.o = dev->o.get();
    a.l = dev->l.as<float>();
    a.stream = dev->stream.s;
    gpu::decode_attention(a);
    XRING_CUDA_CHECK(cudaEventRecord(dev->done.e, dev->stream.s));
    XRING_CUDA_CHECK(cudaStreamWaitEvent(origin.s, dev->done.e, 0));
  }
  XRING_CUDA_CHECK(cudaEventRecord(end.e, origin.s));
  XRING_CUDA_CHECK(cudaEventSynchronize(end.e));
  float ms = 0;
  XRING_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, end.e));

  DecodeResult result;
  result.device_time_s = ms * 1e-3;
  const size_t rows = static_cast<size_t>(p.requests) * s.heads;
  result.o.assign(rows * d, 0.0f);
  result.l.assign(rows, -std::numeric_limits<float>::infinity());
  std::vector<uint16_t> o_bits(rows * d);
  std::vector<float> l(rows);
  for (int g = 0; g < gpus; ++g) {
    XRING_CUDA_CHECK(
        cudaMemcpy(o_bits.data(), devices[g]->o.get(), o_bits.size() * 2, cudaMemcpyDeviceToHost));
    XRING_CUDA_CHECK(cudaMemcpy(l.data(), devices[g]->l.get(), l.size() * sizeof(float),
                                cudaMemcpyDeviceToHost));
    for (int c = 0; c < caches; ++c) {
      if (owner[c] != g) continue;
      const size_t first_row = static_cast<size_t>(c / s.kv_heads) * s.heads +
                               static_cast<size_t>(c % s.kv_heads) * group;
      for (size_t row = first_row; row < first_row + group; ++row) {
        result.l[row] = l[row];
        for (int i = 0; i < d; ++i)
          result.o[row * d + i] = from_storage_bits(dtype, o_bits[row * d + i]);
      }
      // Gathered where GPU 0 would: the rows other GPUs computed (O at storage width, L fp32).
      if (g != 0) result.bytes_sent += group * (2.0 * d + sizeof(float));
    }
  }
  return result;
}

}  // namespace xring::executor

#else  // no CUDA in this build

namespace xring::executor {

DecodeResult run_decode_cuda(const DecodeProblem&, const HeadCopies&, int) {
  throw Error(
      "--backend cuda: this build of xring has no CUDA (configure where the CUDA toolkit "
      "is installed)",
      ExitCode::runtime);
}

}  // namespace xring::executor

#endif
