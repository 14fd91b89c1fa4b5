// Decode over compacted per-head caches, on placed heads with fair copies.
#include "xring/executor/decode.hpp"

#include <limits>
#include <string>

#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

constexpr int kTagGather = 21;

/// Decode of request r, kv head h (its query group), on the compacted cache; writes o and l
/// of the group's query heads.
void decode_one(const DecodeProblem& p, int r, int h, std::vector<float>& o,
                std::vector<float>& l) {
  const auto& s = p.shape;
  const int d = s.head_dim, group = s.heads / s.kv_heads;
  const long long base = (static_cast<long long>(r) * s.kv_heads + h) * p.context;
  std::vector<long long> keep =
      kernels::top_k_positions(p.scores.data() + base, p.context, p.budget[h]);
  std::vector<float> k = kernels::gather_rows(p.k.data() + base * d, d, keep);
  std::vector<float> v = kernels::gather_rows(p.v.data() + base * d, d, keep);
  kernels::Shape one_group{1, group, 1, d};
  const long long q_row = static_cast<long long>(r) * s.heads + static_cast<long long>(h) * group;
  kernels::decode_attention(p.q.data() + q_row * d, {k.data()}, {v.data()},
                            {static_cast<long long>(keep.size())}, one_group, o.data() + q_row * d,
                            l.data() + q_row);
}

}  // namespace

void check_copies(const DecodeProblem& p, const HeadCopies& copies, int gpus) {
  if (static_cast<int>(copies.size()) != p.shape.kv_heads)
    throw Error("placement lists " + std::to_string(copies.size()) + " kv heads, the layer has " +
                std::to_string(p.shape.kv_heads));
  for (size_t h = 0; h < copies.size(); ++h) {
    int served = 0;
    for (const auto& [gpu, requests] : copies[h]) {
      if (gpu < 0 || gpu >= gpus)
        throw Error("kv head " + std::to_string(h) + " is placed on GPU " + std::to_string(gpu) +
                    ", outside 0.." + std::to_string(gpus - 1));
      if (requests < 0)
        throw Error("kv head " + std::to_string(h) + " has a copy with negative requests");
      served += requests;
    }
    if (served != p.requests)
      throw Error("the copies of kv head " + std::to_string(h) + " serve " +
                  std::to_string(served) + " requests, not " + std::to_string(p.requests));
  }
}

DecodeResult run_decode_reference(const DecodeProblem& p) {
  HeadCopies one(p.shape.kv_heads, {{0, p.requests}});
  return run_decode_distributed(p, one, 1);
}

DecodeResult run_decode_distributed(const DecodeProblem& p, const HeadCopies& copies, int gpus) {
  check_copies(p, copies, gpus);
  const auto& s = p.shape;
  const size_t rows = static_cast<size_t>(p.requests) * s.heads;
  DecodeResult result;
  result.o.assign(rows * s.head_dim, 0.0f);
  result.l.assign(rows, -std::numeric_limits<float>::infinity());
  std::vector<double> sent(gpus, 0);
  run_on_threads(gpus, [&](Communicator& comm) {
    const int g = comm.rank(), group = s.heads / s.kv_heads;
    std::vector<float> o(rows * s.head_dim, 0.0f), l(rows, -std::numeric_limits<float>::infinity()),
        mine(rows, 0.0f);
    for (int h = 0; h < s.kv_heads; ++h) {
      int first = 0;
      for (const auto& [gpu, requests] : copies[h]) {
        if (gpu == g)
          for (int r = first; r < first + requests; ++r) {
            decode_one(p, r, h, o, l);
            for (int j = 0; j < group; ++j)
              mine[static_cast<size_t>(r) * s.heads + h * group + j] = 1.0f;
          }
        first += requests;
      }
    }
    // Gather on rank 0 (a real backend all-reduces partial O projections instead).
    if (g != 0) {
      std::vector<float> message = mine;
      message.insert(message.end(), l.begin(), l.end());
      message.insert(message.end(), o.begin(), o.end());
      comm.send(0, std::move(message), kTagGather);
      sent[g] = static_cast<double>(comm.bytes_sent());
      return;
    }
    auto take = [&](const std::vector<float>& flags, const float* ls, const float* os) {
      for (size_t row = 0; row < rows; ++row) {
        if (flags[row] == 0.0f) continue;
        result.l[row] = ls[row];
        std::copy(os + row * s.head_dim, os + (row + 1) * s.head_dim,
                  result.o.begin() + row * s.head_dim);
      }
    };
    take(mine, l.data(), o.data());
    for (int from = 1; from < gpus; ++from) {
      std::vector<float> m = comm.recv(from, kTagGather);
      std::vector<float> flags(m.begin(), m.begin() + rows);
      take(flags, m.data() + rows, m.data() + 2 * rows);
    }
  });
  kernels::round_all(p.storage, result.o);
  for (double b : sent) result.bytes_sent += b;
  return result;
}

}  // namespace xring::executor
