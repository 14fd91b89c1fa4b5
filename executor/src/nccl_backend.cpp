// The nccl backend (see nccl_backend.hpp). Compiled in when the build has CUDA and NCCL's
// header; the library itself is opened at run time.
#include "xring/executor/nccl_backend.hpp"

#include "xring/planner/error.hpp"

#if XRING_EXECUTOR_NCCL

#include <dlfcn.h>
#include <nccl.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <type_traits>

#include "cuda_ring_device_impl.hpp"
#include "xring/executor/rank_program.hpp"

namespace xring::executor {
namespace {

using cuda_detail::CudaRingDevice;
using cuda_detail::Event;
using Clock = std::chrono::steady_clock;

/// The NCCL functions xring calls, resolved from the library at run time.
struct NcclApi {
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclCommAbort) comm_abort = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclCommGetAsyncError) get_async_error = nullptr;
  decltype(&ncclGroupStart) group_start = nullptr;
  decltype(&ncclGroupEnd) group_end = nullptr;
  decltype(&ncclSend) send = nullptr;
  decltype(&ncclRecv) recv = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  std::string missing;  ///< why the library is unusable ("" when it is)
};

const NcclApi& nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* handle = nullptr;
    const char* chosen = std::getenv("XRING_NCCL_LIBRARY");
    for (const char* name : {chosen, "libnccl.so.2", "libnccl.so"})
      if (name && (handle = dlopen(name, RTLD_NOW | RTLD_GLOBAL))) break;
    if (!handle) {
      a.missing =
          "the NCCL library (libnccl.so.2) is not on the loader path; add its directory to "
          "LD_LIBRARY_PATH or name the file in XRING_NCCL_LIBRARY";
      return a;
    }
    auto load = [&](auto& f, const char* name) {
      f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(handle, name));
      if (!f && a.missing.empty()) a.missing = std::string("the NCCL library lacks ") + name;
    };
    load(a.get_unique_id, "ncclGetUniqueId");
    load(a.comm_init_rank, "ncclCommInitRank");
    load(a.comm_abort, "ncclCommAbort");
    load(a.comm_destroy, "ncclCommDestroy");
    load(a.get_async_error, "ncclCommGetAsyncError");
    load(a.group_start, "ncclGroupStart");
    load(a.group_end, "ncclGroupEnd");
    load(a.send, "ncclSend");
    load(a.recv, "ncclRecv");
    load(a.all_reduce, "ncclAllReduce");
    load(a.error_string, "ncclGetErrorString");
    return a;
  }();
  return api;
}

#define XRING_NCCL_CHECK(call)                                                                     \
  do {                                                                                             \
    ncclResult_t xring_nccl_ = (call);                                                             \
    if (xring_nccl_ != ncclSuccess)                                                                \
      throw ::xring::Error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " + #call + \
                               ": " + nccl().error_string(xring_nccl_),                            \
                           ::xring::ExitCode::runtime);                                            \
  } while (0)

/// The GPU this process uses: its local rank from the launcher, else rank mod the GPU count.
int local_device(int rank) {
  int devices = 0;
  XRING_CUDA_CHECK(cudaGetDeviceCount(&devices));
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char* v = std::getenv(name)) return std::atoi(v) % devices;
  return rank % devices;
}

class Session final : public NcclSession {
 public:
  Session(const LaunchIdentity& who, double timeout_s)
      : rank_(who.rank), world_(who.world), timeout_s_(timeout_s) {
    XRING_CUDA_CHECK(cudaSetDevice(local_device(rank_)));
    ncclUniqueId id{};
    std::string blob;
    if (rank_ == 0) {
      XRING_NCCL_CHECK(nccl().get_unique_id(&id));
      blob.assign(reinterpret_cast<const char*>(&id), sizeof id);
    }
    if (world_ > 1) {
      RendezvousResult met = file_rendezvous(who.rendezvous, rank_, world_, blob, timeout_s);
      hosts_ = met.hosts;
      blob = met.blob;
    } else {
      hosts_ = {host_name()};
    }
    if (blob.size() != sizeof id)
      throw Error("--rendezvous " + who.rendezvous + ": rank 0 published no NCCL id",
                  ExitCode::runtime);
    std::copy(blob.begin(), blob.end(), reinterpret_cast<char*>(&id));
    XRING_NCCL_CHECK(nccl().comm_init_rank(&comm_, world_, id, rank_));
  }
  ~Session() override {
    if (!comm_) return;
    if (aborted_) return;
    nccl().comm_destroy(comm_);
  }

  int rank() const override { return rank_; }
  int world() const override { return world_; }
  std::string host(int r) const override {
    return r >= 0 && r < static_cast<int>(hosts_.size()) ? hosts_[r] : "?";
  }

  EmulatedRun run(Strategy strategy, const AttentionProblem& p, bool backward,
                  const std::string& where) override {
    CudaRingDevice device(p, world_, {rank_});
    EmulatedRun out;
    out.result = allocate_result(p, backward);
    run_ring_ranks(
        device, strategy, world_, {rank_}, p, backward,
        [&](const RingSchedule& s) { return run_program(device, s, p, where); }, out.result, &out);
    return out;
  }

  std::vector<double> all_reduce(std::vector<double> values, bool maximum) override {
    if (values.empty()) return values;
    kernels::cuda::DeviceBuffer buffer(values.size() * sizeof(double));
    XRING_CUDA_CHECK(
        cudaMemcpy(buffer.get(), values.data(), buffer.bytes(), cudaMemcpyHostToDevice));
    XRING_CUDA_CHECK(cudaDeviceSynchronize());  // the legacy-stream copy has landed
    cuda_detail::Stream stream;
    Event done;
    XRING_NCCL_CHECK(nccl().all_reduce(buffer.get(), buffer.get(), values.size(), ncclFloat64,
                                       maximum ? ncclMax : ncclSum, comm_, stream.s));
    XRING_CUDA_CHECK(cudaEventRecord(done.e, stream.s));
    wait(done.e,
         "rank " + std::to_string(rank_) + " on " + host(rank_) + ", the report's all-reduce");
    XRING_CUDA_CHECK(
        cudaMemcpy(values.data(), buffer.get(), buffer.bytes(), cudaMemcpyDeviceToHost));
    return values;
  }

 private:
  /// This rank's program of one pass: kernels on the compute stream, one NCCL group per
  /// exchange on the communication stream, the program's waits as events; then every step is
  /// watched until done. Timings are indexed like the schedule's operations.
  std::vector<OpTiming> run_program(CudaRingDevice& device, const RingSchedule& s,
                                    const AttentionProblem& p, const std::string& where) {
    const std::vector<RankStep> program = rank_program(s, rank_);
    const cudaStream_t compute = device.compute_stream(rank_), comm = device.comm_stream(rank_);
    Event origin;
    std::vector<std::unique_ptr<Event>> starts, ends;
    XRING_CUDA_CHECK(cudaDeviceSynchronize());  // the loads (legacy stream) have landed
    XRING_CUDA_CHECK(cudaEventRecord(origin.e, compute));
    XRING_CUDA_CHECK(cudaStreamWaitEvent(comm, origin.e, 0));
    auto values = [&](const RingOp& op, Tensor t) {
      const long long total = has_query_rows(t) ? p.s_q : p.s_kv;
      return block_values(p.shape, t, block_of(total, world_, op.block).rows);
    };
    auto type = [&](Tensor t) {
      if (!held_in_storage_type(t)) return ncclFloat32;
      return device.dtype() == kernels::cuda::DType::fp16 ? ncclFloat16 : ncclBfloat16;
    };
    for (const RankStep& step : program) {
      const bool exchange = step.kind == RankStep::Kind::exchange;
      const cudaStream_t stream = exchange ? comm : compute;
      for (int k : step.after) XRING_CUDA_CHECK(cudaStreamWaitEvent(stream, ends[k]->e, 0));
      starts.push_back(std::make_unique<Event>());
      ends.push_back(std::make_unique<Event>());
      XRING_CUDA_CHECK(cudaEventRecord(starts.back()->e, stream));
      if (!exchange) {
        device.enqueue_compute(s, s.ops[step.op], stream);
      } else {
        XRING_RANGE("rank " + std::to_string(rank_) + " exchange step " +
                    std::to_string(s.ops[step.send].step));
        XRING_NCCL_CHECK(nccl().group_start());
        const RingOp& out = s.ops[step.send];
        for (const auto& [from, to] : out.moves)
          if (size_t n = values(out, from.tensor))
            XRING_NCCL_CHECK(
                nccl().send(device.data(from), n, type(from.tensor), out.to, comm_, stream));
        const RingOp& in = s.ops[step.recv];
        for (const auto& [from, to] : in.moves)
          if (size_t n = values(in, from.tensor))
            XRING_NCCL_CHECK(
                nccl().recv(device.data(to), n, type(from.tensor), in.rank, comm_, stream));
        XRING_NCCL_CHECK(nccl().group_end());
      }
      XRING_CUDA_CHECK(cudaEventRecord(ends.back()->e, stream));
    }
    std::vector<OpTiming> timings(s.ops.size());
    for (size_t k = 0; k < program.size(); ++k) {
      const RankStep& step = program[k];
      const int op = step.kind == RankStep::Kind::compute ? step.op : step.send;
      wait(ends[k]->e, where + ", rank " + std::to_string(rank_) + " on " + host(rank_) +
                           ", step " + std::to_string(s.ops[op].step + 1));
      float start_ms = 0, end_ms = 0;
      XRING_CUDA_CHECK(cudaEventElapsedTime(&start_ms, origin.e, starts[k]->e));
      XRING_CUDA_CHECK(cudaEventElapsedTime(&end_ms, origin.e, ends[k]->e));
      timings[op] = {start_ms * 1e-3, end_ms * 1e-3};
    }
    return timings;
  }

  /// Waits for `event` without ever hanging: an NCCL error, or no completion within the
  /// timeout, aborts the communicator (the peers' pending operations fail too) and throws.
  void wait(cudaEvent_t event, const std::string& what) {
    const auto start = Clock::now();
    for (;;) {
      const cudaError_t state = cudaEventQuery(event);
      if (state == cudaSuccess) return;
      if (state != cudaErrorNotReady) {
        abort();
        throw Error(what + ": " + cudaGetErrorString(state), ExitCode::runtime);
      }
      ncclResult_t async = ncclSuccess;
      XRING_NCCL_CHECK(nccl().get_async_error(comm_, &async));
      if (async != ncclSuccess && async != ncclInProgress) {
        abort();
        throw Error(
            what + ": NCCL error: " + nccl().error_string(async) + "; the communicator was aborted",
            ExitCode::runtime);
      }
      if (std::chrono::duration<double>(Clock::now() - start).count() > timeout_s_) {
        abort();
        throw Error(what + ": no progress within " + std::to_string(timeout_s_) +
                        " s (a peer died or hangs; see --timeout); the NCCL communicator was "
                        "aborted",
                    ExitCode::runtime);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void abort() {
    if (comm_ && !aborted_) nccl().comm_abort(comm_);
    aborted_ = true;
  }

  int rank_, world_;
  double timeout_s_;
  std::vector<std::string> hosts_;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
};

}  // namespace

std::string nccl_backend_unavailable() {
  std::string why;
  if (!kernels::cuda::device_available(&why)) return why;
  return nccl().missing;
}

std::unique_ptr<NcclSession> open_nccl_session(const LaunchIdentity& who, double timeout_s) {
  const std::string why = nccl_backend_unavailable();
  if (!why.empty()) throw Error("--backend nccl: " + why, ExitCode::runtime);
  return std::make_unique<Session>(who, timeout_s);
}

}  // namespace xring::executor

#else  // no CUDA or no NCCL header in this build

namespace xring::executor {

std::string nccl_backend_unavailable() {
  return "this build of xring has no NCCL backend (configure with the CUDA toolkit and NCCL's "
         "header)";
}

std::unique_ptr<NcclSession> open_nccl_session(const LaunchIdentity&, double) {
  throw Error("--backend nccl: " + nccl_backend_unavailable(), ExitCode::runtime);
}

}  // namespace xring::executor

#endif
