// K/V projections around the ring algorithms, with and without LV-XAttn's recomputation.
#include "xring/executor/projection.hpp"

#include <algorithm>
#include <limits>
#include <mutex>

#include "rings.hpp"
#include "xring/planner/error.hpp"

namespace xring::executor {
namespace {

constexpr int kTagReduce = 31;

/// Rows of X, [B][rows][D_v].
std::vector<float> x_rows(const ProjectedProblem& p, kernels::Rows rows) {
  const int B = p.attention.shape.batch, D = p.visual_hidden;
  std::vector<float> out;
  out.reserve(static_cast<size_t>(B) * rows.rows * D);
  for (int b = 0; b < B; ++b) {
    const float* src = p.x.data() + (static_cast<long long>(b) * p.attention.s_kv + rows.first) * D;
    out.insert(out.end(), src, src + rows.rows * D);
  }
  return out;
}

}  // namespace

std::vector<float> project(const ProjectedProblem& p, const std::vector<float>& w,
                           kernels::Rows rows) {
  const auto& s = p.attention.shape;
  const int D = p.visual_hidden, d = s.head_dim, width = s.kv_heads * d;
  const std::vector<float> x = x_rows(p, rows);
  std::vector<float> out(static_cast<size_t>(s.batch) * s.kv_heads * rows.rows * d, 0.0f);
  for (int b = 0; b < s.batch; ++b)
    for (long long t = 0; t < rows.rows; ++t) {
      const float* xt = x.data() + (static_cast<long long>(b) * rows.rows + t) * D;
      for (int h = 0; h < s.kv_heads; ++h)
        for (int c = 0; c < d; ++c) {
          float sum = 0;
          for (int i = 0; i < D; ++i) sum += xt[i] * w[static_cast<size_t>(i) * width + h * d + c];
          out[((static_cast<size_t>(b) * s.kv_heads + h) * rows.rows + t) * d + c] = sum;
        }
    }
  kernels::round_all(p.attention.storage, out);
  return out;
}

ProjectedResult run_projected(Strategy strategy, int ranks, const ProjectedProblem& p,
                              bool recompute) {
  if (strategy != Strategy::query_ring && strategy != Strategy::kv_ring &&
      strategy != Strategy::single)
    throw Error("projected attention runs query_ring, kv_ring or single, not " +
                to_string(strategy));
  if (strategy == Strategy::single && ranks != 1) throw Error("single runs on one rank");
  const AttentionProblem& a = p.attention;
  const auto& s = a.shape;
  const int d = s.head_dim, D = p.visual_hidden, width = s.kv_heads * d, B = s.batch;
  ProjectedResult out;
  out.o.assign(a.q.size(), 0.0f);
  out.l.assign(static_cast<size_t>(B) * s.heads * a.s_q, -std::numeric_limits<float>::infinity());
  out.dq.assign(a.q.size(), 0.0f);
  out.dx.assign(p.x.size(), 0.0f);
  std::mutex saved_mutex;
  run_on_threads(ranks, [&](Communicator& comm) {
    const int P = comm.size(), r = comm.rank();
    detail::RingLocal x{
        s,  a.mask, a.s_q, a.s_kv, P, r, block_of(a.s_q, P, r), block_of(a.s_kv, P, r),
        {}, {},     {},    {}};
    x.q = kernels::slice_rows(a.q, B, s.heads, a.s_q, d, x.qr);
    x.d_o = kernels::slice_rows(a.d_o, B, s.heads, a.s_q, d, x.qr);
    x.k = project(p, p.wk, x.kr);
    x.v = project(p, p.wv, x.kr);
    std::vector<float> o, l;
    if (strategy == Strategy::kv_ring)
      detail::kv_ring_forward(comm, x, o, l);
    else
      detail::query_ring_forward(comm, x, o, l);
    kernels::round_all(a.storage, o);
    // What this rank keeps until its backward, beyond Q and its visual tokens.
    long long saved = static_cast<long long>(o.size() + l.size());
    if (recompute) {
      x.k.clear();  // dropped after the forward; rebuilt from the visual tokens below
      x.v.clear();
      x.k.shrink_to_fit();
      x.v.shrink_to_fit();
    } else {
      saved += static_cast<long long>(2 * block_of(a.s_kv, P, r).rows) * B * s.kv_heads * d;
    }
    {
      std::lock_guard<std::mutex> lock(saved_mutex);
      out.saved_elements_max = std::max(out.saved_elements_max, saved);
    }
    kernels::place_rows(out.o, B, s.heads, a.s_q, d, x.qr, o.data());
    kernels::place_rows(out.l, B, s.heads, a.s_q, 1, x.qr, l.data());
    if (recompute) {
      x.k = project(p, p.wk, x.kr);
      x.v = project(p, p.wv, x.kr);
    }
    std::vector<float> dq, dk, dv;
    if (strategy == Strategy::kv_ring)
      detail::kv_ring_backward(comm, x, o, l, dq, dk, dv);
    else
      detail::query_ring_backward(comm, x, o, l, dq, dk, dv);
    kernels::round_all(a.storage, dq);
    kernels::place_rows(out.dq, B, s.heads, a.s_q, d, x.qr, dq.data());
    // Through the projections: dX = dK·Wkᵀ + dV·Wvᵀ (local rows), dW = Xᵀ·dK summed over ranks.
    const std::vector<float> xs = x_rows(p, x.kr);
    std::vector<float> dwk(static_cast<size_t>(D) * width, 0.0f), dwv(dwk.size(), 0.0f);
    for (int b = 0; b < B; ++b)
      for (long long t = 0; t < x.kr.rows; ++t) {
        float* dxt = out.dx.data() + (static_cast<long long>(b) * a.s_kv + x.kr.first + t) * D;
        const float* xt = xs.data() + (static_cast<long long>(b) * x.kr.rows + t) * D;
        for (int h = 0; h < s.kv_heads; ++h)
          for (int c = 0; c < d; ++c) {
            const size_t g = ((static_cast<size_t>(b) * s.kv_heads + h) * x.kr.rows + t) * d + c;
            for (int i = 0; i < D; ++i) {
              const size_t wi = static_cast<size_t>(i) * width + h * d + c;
              dxt[i] += dk[g] * p.wk[wi] + dv[g] * p.wv[wi];
              dwk[wi] += xt[i] * dk[g];
              dwv[wi] += xt[i] * dv[g];
            }
          }
      }
    comm.all_reduce_sum(dwk, kTagReduce);
    comm.all_reduce_sum(dwv, kTagReduce + 1);
    if (r == 0) {
      out.dwk = std::move(dwk);
      out.dwv = std::move(dwv);
    }
  });
  kernels::round_all(a.storage, out.dx);
  kernels::round_all(a.storage, out.dwk);
  kernels::round_all(a.storage, out.dwv);
  return out;
}

}  // namespace xring::executor
