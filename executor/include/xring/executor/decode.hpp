// Decode with per-head KV budgets on placed heads: each kv head's cache is compacted to its
// budget (top-k by score), and every copy of a head serves its share of the requests on its
// GPU (FairKV's fair copies). The result must equal single-device decode on the same
// compressed cache.
#pragma once

#include <utility>
#include <vector>

#include "xring/executor/communicator.hpp"
#include "xring/kernels/reference.hpp"

namespace xring::executor {

struct DecodeProblem {
  kernels::Shape shape;  ///< heads, kv_heads, head_dim (batch unused)
  int requests = 1;
  long long context = 1;          ///< tokens cached per request before compaction
  std::vector<long long> budget;  ///< tokens kept per kv head (every request)
  kernels::Storage storage = kernels::Storage::bf16;
  std::vector<float> q;       ///< [R][H][d]: this step's query
  std::vector<float> k, v;    ///< [R][H_kv][context][d]
  std::vector<float> scores;  ///< [R][H_kv][context]: importance of each cached token
};

/// copies[h]: the (gpu, requests) copies of kv head h; requests go to copies in list order.
using HeadCopies = std::vector<std::vector<std::pair<int, int>>>;

struct DecodeResult {
  std::vector<float> o;  ///< [R][H][d], rounded to the storage type
  std::vector<float> l;  ///< [R][H]
  double bytes_sent = 0;
  double device_time_s = 0;  ///< cuda: the step's launches, first start to last end (events)
};

/// Throws xring::Error when the copies do not cover every request of every head exactly once
/// or name a GPU outside [0, gpus).
void check_copies(const DecodeProblem& p, const HeadCopies& copies, int gpus);

DecodeResult run_decode_reference(const DecodeProblem& p);
DecodeResult run_decode_distributed(const DecodeProblem& p, const HeadCopies& copies, int gpus);

/// The same step on the CUDA kernels: every GPU of the placement emulated on this one by its own
/// stream, holding the compacted caches (top-k by score, as the reference) of the (request, kv
/// head) pairs its copies serve, launched together; `device_time_s` from the first start to
/// the last end. Throws xring::Error (runtime) without a GPU or without CUDA in the build.
DecodeResult run_decode_cuda(const DecodeProblem& p, const HeadCopies& copies, int gpus);

}  // namespace xring::executor
