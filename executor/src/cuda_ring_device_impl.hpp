// Private to the executor (CUDA builds only): the cuda backend's RingDevice, shared by the
// emulated-ranks backend (every rank on this GPU) and the nccl backend (this process's rank).
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda_handles.hpp"
#include "xring/executor/emulated.hpp"
#include "xring/kernels/cuda.hpp"
#include "xring/kernels/cuda_memory.hpp"
#include "xring/nvtx.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace cuda_detail {

namespace gpu = kernels::cuda;

constexpr int kTensorCount = 10;
constexpr int kSlotCount = 3;


inline gpu::DeviceMask::Kind device_mask_kind(kernels::Mask::Kind k) {
  switch (k) {
    case kernels::Mask::Kind::none:
      return gpu::DeviceMask::Kind::none;
    case kernels::Mask::Kind::same_group:
      return gpu::DeviceMask::Kind::same_group;
    case kernels::Mask::Kind::up_to_group:
      return gpu::DeviceMask::Kind::up_to_group;
    case kernels::Mask::Kind::causal:
      return gpu::DeviceMask::Kind::causal;
  }
  return gpu::DeviceMask::Kind::none;
}

inline gpu::DeviceBuffer upload(const std::vector<int>& values) {
  gpu::DeviceBuffer b(values.size() * sizeof(int));
  XRING_CUDA_CHECK(
      cudaMemcpy(b.get(), values.data(), values.size() * sizeof(int), cudaMemcpyHostToDevice));
  return b;
}

/// Ranks' buffers, streams and kernels on this GPU: every rank of the ring (the cuda backend) or
/// only those in `held` (the nccl backend: this process's rank).
class CudaRingDevice final : public RingDevice {
 public:
  CudaRingDevice(const AttentionProblem& p, int ranks, std::vector<int> held = {})
      : p_(p), ranks_(ranks), held_(std::move(held)) {
    if (held_.empty())
      for (int r = 0; r < ranks; ++r) held_.push_back(r);
    if (p.storage == kernels::Storage::fp32)
      throw Error(
          "--backend cuda: the CUDA kernels take fp16 and bf16 tensors; this model is fp32");
    dtype_ = p.storage == kernels::Storage::fp16 ? gpu::DType::fp16 : gpu::DType::bf16;
    geometry_ = {p.shape.batch, p.shape.heads, p.shape.kv_heads, p.shape.head_dim};
    if (geometry_.head_dim != 64 && geometry_.head_dim != 128)
      throw Error("--backend cuda: head dim " + std::to_string(geometry_.head_dim) +
                  " is not supported by the CUDA kernels (64 or 128)");
    mask_.kind = device_mask_kind(p.mask.kind);
    if (!p.mask.q_group.empty()) {
      q_group_ = upload(p.mask.q_group);
      kv_group_ = upload(p.mask.kv_group);
      mask_.q_group = q_group_.as<int>();
      mask_.kv_group = kv_group_.as<int>();
    }
    compute_.resize(ranks);
    comm_.resize(ranks);
    for (int r : held_) {
      compute_[r] = std::make_unique<Stream>();
      comm_[r] = std::make_unique<Stream>();
    }
    const long long rows =
        static_cast<long long>(p.shape.batch) * p.shape.heads * block_of(p.s_q, ranks, 0).rows;
    o_part_.resize(ranks);
    l_part_.resize(ranks);
    for (int r : held_) {
      o_part_[r] = gpu::DeviceBuffer(static_cast<size_t>(rows) * p.shape.head_dim * 4);
      l_part_[r] = gpu::DeviceBuffer(static_cast<size_t>(rows) * 4);
    }
  }

  void prepare(const RingSchedule& s) override {
    XRING_CUDA_CHECK(cudaDeviceSynchronize());
    buffers_.clear();
    buffers_.resize(static_cast<size_t>(ranks_) * kTensorCount * kSlotCount);
    partials_.clear();
    partials_.resize(static_cast<size_t>(ranks_) * kTensorCount);
    for (int r : held_)
      for (Tensor t : s.tensors()) {
        const long long most = block_of(rows_total(t), ranks_, 0).rows;
        const size_t bytes = block_values(p_.shape, t, most) * element_bytes(t);
        for (int slot = 0; slot < s.slots(t); ++slot) at({r, t, slot}) = gpu::DeviceBuffer(bytes);
        // A gradient that travels is computed into a partial buffer first (O and L use
        // o_part_ and l_part_, the forward kernel's own output).
        if (s.pass == RingPass::backward && s.accumulates_in_transit(t))
          partial(r, t) = gpu::DeviceBuffer(bytes);
      }
    starts_.clear();
    ends_.clear();
    for (size_t i = 0; i < s.ops.size(); ++i) {
      starts_.push_back(std::make_unique<Event>());
      ends_.push_back(std::make_unique<Event>());
    }
    lane_started_.assign(2 * static_cast<size_t>(ranks_), false);
    origin_recorded_ = false;
  }

  void load(const BufferId& b, const std::vector<float>& values) override {
    gpu::DeviceBuffer& to = at(b);
    if (values.size() * element_bytes(b.tensor) > to.bytes())
      throw Error("internal: block larger than its buffer", ExitCode::runtime);
    if (values.empty()) return;
    if (!held_in_storage_type(b.tensor)) {
      XRING_CUDA_CHECK(cudaMemcpy(to.get(), values.data(), values.size() * sizeof(float),
                                  cudaMemcpyHostToDevice));
      return;
    }
    // The values are already at the storage precision: the conversion on the device is exact.
    gpu::DeviceBuffer staging(values.size() * sizeof(float));
    XRING_CUDA_CHECK(cudaMemcpy(staging.get(), values.data(), values.size() * sizeof(float),
                                cudaMemcpyHostToDevice));
    gpu::convert_from_fp32(staging.as<float>(), to.get(), dtype_,
                           static_cast<long long>(values.size()), nullptr);
    XRING_CUDA_CHECK(cudaDeviceSynchronize());
  }

  void run(const RingSchedule& s, size_t index) override {
    const RingOp& op = s.ops[index];
    cudaStream_t stream = op.comm_lane ? comm_[op.rank]->s : compute_[op.rank]->s;
    if (!origin_recorded_) {
      // The loads went through the legacy stream, whose copies from pageable memory may still
      // be landing; the rank streams do not synchronize with it.
      XRING_CUDA_CHECK(cudaDeviceSynchronize());
      XRING_CUDA_CHECK(cudaEventRecord(origin_.e, compute_[held_.front()]->s));
      origin_recorded_ = true;
    }
    const size_t lane = 2 * static_cast<size_t>(op.rank) + (op.comm_lane ? 1 : 0);
    if (!lane_started_[lane]) {  // nothing starts before the origin event
      XRING_CUDA_CHECK(cudaStreamWaitEvent(stream, origin_.e, 0));
      lane_started_[lane] = true;
    }
    for (int i : op.after) XRING_CUDA_CHECK(cudaStreamWaitEvent(stream, ends_[i]->e, 0));
    XRING_CUDA_CHECK(cudaEventRecord(starts_[index]->e, stream));
    if (!op.comm_lane) {
      enqueue_compute(s, op, stream);
    } else {
      XRING_RANGE("rank " + std::to_string(op.rank) + " send to " + std::to_string(op.to) +
                  " step " + std::to_string(op.step));
      for (const auto& [from, to] : op.moves) {
        const size_t bytes =
            block_values(p_.shape, from.tensor,
                         block_of(rows_total(from.tensor), ranks_, op.block).rows) *
            element_bytes(from.tensor);
        if (bytes == 0) continue;
        XRING_CUDA_CHECK(
            cudaMemcpyAsync(at(to).get(), at(from).get(), bytes, cudaMemcpyDeviceToDevice, stream));
      }
    }
    XRING_CUDA_CHECK(cudaEventRecord(ends_[index]->e, stream));
  }

  std::vector<OpTiming> finish() override {
    XRING_CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<OpTiming> out;
    for (size_t i = 0; i < starts_.size(); ++i) {
      float start_ms = 0, end_ms = 0;
      XRING_CUDA_CHECK(cudaEventElapsedTime(&start_ms, origin_.e, starts_[i]->e));
      XRING_CUDA_CHECK(cudaEventElapsedTime(&end_ms, origin_.e, ends_[i]->e));
      out.push_back({start_ms * 1e-3, end_ms * 1e-3});
    }
    return out;
  }

  std::vector<float> read(const BufferId& b, size_t count) override {
    if (held_in_storage_type(b.tensor))
      throw Error(std::string("internal: reading ") + to_string(b.tensor) +
                      " back is not supported (results are fp32)",
                  ExitCode::runtime);
    std::vector<float> out(std::min(count, at(b).bytes() / sizeof(float)));
    XRING_CUDA_CHECK(
        cudaMemcpy(out.data(), at(b).get(), out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }

  // For the nccl backend, which enqueues a rank's program itself.
  void* data(const BufferId& b) { return at(b).get(); }
  cudaStream_t compute_stream(int r) const { return compute_[r]->s; }
  cudaStream_t comm_stream(int r) const { return comm_[r]->s; }
  gpu::DType dtype() const { return dtype_; }
  /// Enqueues an attend or merge operation's kernels on `stream` (no waits, no events).
  void enqueue_compute(const RingSchedule& s, const RingOp& op, cudaStream_t stream) {
    XRING_RANGE("rank " + std::to_string(op.rank) + " " + to_string(s.strategy) +
                (op.kind == RingOp::Kind::merge ? " merge" : " attend") + " step " +
                std::to_string(op.step));
    if (op.kind == RingOp::Kind::merge)
      merge(s, op, stream);
    else
      attend(s, op, stream);
  }

 private:
  long long rows_total(Tensor t) const { return has_query_rows(t) ? p_.s_q : p_.s_kv; }
  size_t element_bytes(Tensor t) const override { return held_in_storage_type(t) ? 2 : 4; }
  gpu::DeviceBuffer& at(const BufferId& b) {
    return buffers_[(static_cast<size_t>(b.rank) * kTensorCount + static_cast<size_t>(b.tensor)) *
                        kSlotCount +
                    b.slot];
  }

  gpu::DeviceBuffer& partial(int r, Tensor t) {
    return partials_[static_cast<size_t>(r) * kTensorCount + static_cast<size_t>(t)];
  }

  /// The rows this operation's kernel covers; none when either block is empty (then neither
  /// the kernel nor its merge has anything to add).
  std::pair<kernels::Rows, kernels::Rows> rows_of(const RingOp& op) const {
    return {block_of(p_.s_q, ranks_, op.q_block), block_of(p_.s_kv, ranks_, op.kv_block)};
  }

  void merge(const RingSchedule& s, const RingOp& op, cudaStream_t stream) {
    const auto [q_rows, kv_rows] = rows_of(op);
    if (q_rows.rows == 0 || kv_rows.rows == 0) return;
    auto slot = [&](Tensor t) { return at({op.rank, t, op.slot}).as<float>(); };
    if (s.pass == RingPass::forward) {
      gpu::merge_partial(slot(Tensor::o), slot(Tensor::l), o_part_[op.rank].as<float>(),
                         l_part_[op.rank].as<float>(),
                         static_cast<long long>(p_.shape.batch) * p_.shape.heads * q_rows.rows,
                         p_.shape.head_dim, stream);
      return;
    }
    for (Tensor t : s.accumulated)
      gpu::add_fp32(slot(t), partial(op.rank, t).as<float>(),
                    static_cast<long long>(
                        block_values(p_.shape, t, has_query_rows(t) ? q_rows.rows : kv_rows.rows)),
                    stream);
  }

  void attend(const RingSchedule& s, const RingOp& op, cudaStream_t stream) {
    const auto [q_rows, kv_rows] = rows_of(op);
    if (q_rows.rows == 0 || kv_rows.rows == 0) return;  // nothing to add
    // Travelling gradients go to zeroed partial buffers (the kernel adds), merged later.
    auto ptr = [&](Tensor t) -> void* {
      if (!s.accumulates_in_transit(t)) return at(s.buffer(op, t)).get();
      gpu::DeviceBuffer& b = partial(op.rank, t);
      XRING_CUDA_CHECK(cudaMemsetAsync(b.get(), 0, b.bytes(), stream));
      return b.get();
    };
    if (s.pass == RingPass::forward) {
      gpu::ForwardArgs a;
      a.dtype = dtype_;
      a.geometry = geometry_;
      a.q = ptr(Tensor::q);
      a.k = ptr(Tensor::k);
      a.v = ptr(Tensor::v);
      a.n_q = q_rows.rows;
      a.n_kv = kv_rows.rows;
      a.q_first = q_rows.first;
      a.kv_first = kv_rows.first;
      a.mask = mask_;
      a.o = o_part_[op.rank].get();
      a.o_fp32 = true;
      a.l = l_part_[op.rank].as<float>();
      a.stream = stream;
      gpu::attention_forward(a);
      // A resident O and L (the KV ring) take the partial now; travelling ones at the merge.
      if (!s.accumulates_in_transit(Tensor::o))
        gpu::merge_partial(static_cast<float*>(ptr(Tensor::o)), static_cast<float*>(ptr(Tensor::l)),
                           o_part_[op.rank].as<float>(), l_part_[op.rank].as<float>(),
                           static_cast<long long>(p_.shape.batch) * p_.shape.heads * q_rows.rows,
                           p_.shape.head_dim, stream);
      return;
    }
    gpu::BackwardArgs a;
    a.dtype = dtype_;
    a.geometry = geometry_;
    a.q = ptr(Tensor::q);
    a.k = ptr(Tensor::k);
    a.v = ptr(Tensor::v);
    a.d_o = ptr(Tensor::d_o);
    a.l = static_cast<const float*>(ptr(Tensor::l));
    a.row_terms = static_cast<const float*>(ptr(Tensor::term));
    a.n_q = q_rows.rows;
    a.n_kv = kv_rows.rows;
    a.q_first = q_rows.first;
    a.kv_first = kv_rows.first;
    a.mask = mask_;
    a.dq = static_cast<float*>(ptr(Tensor::dq));
    a.dk = static_cast<float*>(ptr(Tensor::dk));
    a.dv = static_cast<float*>(ptr(Tensor::dv));
    a.stream = stream;
    gpu::attention_backward(a);
  }

  const AttentionProblem& p_;
  int ranks_;
  std::vector<int> held_;
  gpu::DType dtype_ = gpu::DType::bf16;
  gpu::Geometry geometry_;
  gpu::DeviceMask mask_;
  gpu::DeviceBuffer q_group_, kv_group_;
  std::vector<std::unique_ptr<Stream>> compute_, comm_;
  std::vector<gpu::DeviceBuffer> o_part_, l_part_;  ///< per rank: a kernel's partial O and L
  std::vector<gpu::DeviceBuffer> buffers_;          ///< [rank][tensor][slot]
  std::vector<gpu::DeviceBuffer> partials_;         ///< [rank][tensor]: travelling gradients
  std::vector<std::unique_ptr<Event>> starts_, ends_;
  Event origin_;
  std::vector<bool> lane_started_;
  bool origin_recorded_ = false;
};

}  // namespace cuda_detail
}  // namespace xring::executor
