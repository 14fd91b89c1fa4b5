// CPU reference kernels; see reference.hpp for the contracts.
#include "xring/kernels/reference.hpp"

#include "xring/kernels/cpu_isa.hpp"
#include "xring/nvtx.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace xring::kernels {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float bf16_round(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u) return x;  // inf, nan
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  bits = (bits + rounding) & 0xffff0000u;
  std::memcpy(&x, &bits, 4);
  return x;
}

float fp16_round(float x) {
  // Round to 11 significant bits, with fp16's range: subnormals below 2^-14, max 65504.
  if (!std::isfinite(x) || x == 0) return x;
  float a = std::fabs(x);
  if (a >= 65520.0f) return std::copysign(std::numeric_limits<float>::infinity(), x);
  int exponent;
  std::frexp(a, &exponent);  // a = f·2^exponent, f in [0.5, 1)
  int e = std::max(exponent - 1, -14);
  float quantum = std::ldexp(1.0f, e - 10);
  return std::copysign(std::nearbyint(a / quantum) * quantum, x);
}

long long kv_head_of(const Shape& s, int h) { return h / (s.heads / s.kv_heads); }

}  // namespace

const char* to_string(Storage s) {
  switch (s) {
    case Storage::fp32:
      return "fp32";
    case Storage::fp16:
      return "fp16";
    case Storage::bf16:
      return "bf16";
  }
  return "?";
}

float round_to(Storage s, float x) {
  switch (s) {
    case Storage::fp32:
      return x;
    case Storage::fp16:
      return fp16_round(x);
    case Storage::bf16:
      return bf16_round(x);
  }
  return x;
}

void round_all(Storage s, std::vector<float>& v) {
  for (float& x : v) x = round_to(s, x);
}

float ulp(Storage s, float x) {
  int bits = s == Storage::fp32 ? 24 : s == Storage::fp16 ? 11 : 8;
  int exponent;
  std::frexp(std::max(std::fabs(x), s == Storage::fp16 ? 6.1e-5f : 1e-30f), &exponent);
  return std::ldexp(1.0f, exponent - bits);
}

float Shape::scale() const { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }

void attention_forward(const float* q, const float* k, const float* v, const Shape& s, Rows qr,
                       Rows kr, const Mask& mask, float* o, float* l) {
  XRING_RANGE("attention_forward (cpu)");
  attention_forward_on(active_cpu_isa(), q, k, v, s, qr, kr, mask, o, l);
}

void attention_forward_naive(const float* q, const float* k, const float* v, const Shape& s,
                             Rows qr, Rows kr, const Mask& mask, float* o, float* l) {
  const int d = s.head_dim;
  const float scale = s.scale();
  std::vector<float> scores(static_cast<size_t>(kr.rows));
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      const long long hk = kv_head_of(s, h);
      const float* kb = k + ((b * s.kv_heads + hk) * kr.rows) * d;
      const float* vb = v + ((b * s.kv_heads + hk) * kr.rows) * d;
      for (long long i = 0; i < qr.rows; ++i) {
        const long long row = (static_cast<long long>(b) * s.heads + h) * qr.rows + i;
        const float* qi = q + row * d;
        float* oi = o + row * d;
        float m = kNegInf;
        for (long long j = 0; j < kr.rows; ++j) {
          if (!mask.allowed(qr.first + i, kr.first + j)) {
            scores[j] = kNegInf;
            continue;
          }
          float dot = 0;
          for (int c = 0; c < d; ++c) dot += qi[c] * kb[j * d + c];
          scores[j] = dot * scale;
          m = std::max(m, scores[j]);
        }
        std::fill(oi, oi + d, 0.0f);
        if (m == kNegInf) {
          l[row] = kNegInf;
          continue;
        }
        float sum = 0;
        for (long long j = 0; j < kr.rows; ++j) {
          if (scores[j] == kNegInf) continue;
          float p = std::exp(scores[j] - m);
          sum += p;
          for (int c = 0; c < d; ++c) oi[c] += p * vb[j * d + c];
        }
        for (int c = 0; c < d; ++c) oi[c] /= sum;
        l[row] = m + std::log(sum);
      }
    }
}

void merge_partial(float* o, float* l, const float* o_part, const float* l_part, long long rows,
                   int d) {
  XRING_RANGE("merge_partial (cpu)");
  for (long long r = 0; r < rows; ++r) {
    const float l1 = l[r], l2 = l_part[r];
    if (l2 == kNegInf) continue;
    if (l1 == kNegInf) {
      l[r] = l2;
      std::copy(o_part + r * d, o_part + (r + 1) * d, o + r * d);
      continue;
    }
    const float m = std::max(l1, l2);
    const float merged = m + std::log(std::exp(l1 - m) + std::exp(l2 - m));
    const float w1 = std::exp(l1 - merged), w2 = std::exp(l2 - merged);
    for (int c = 0; c < d; ++c) o[r * d + c] = o[r * d + c] * w1 + o_part[r * d + c] * w2;
    l[r] = merged;
  }
}

void backward_row_terms(const float* o, const float* d_o, long long rows, int d, float* out) {
  for (long long r = 0; r < rows; ++r) {
    float sum = 0;
    for (int c = 0; c < d; ++c) sum += o[r * d + c] * d_o[r * d + c];
    out[r] = sum;
  }
}

void attention_backward(const float* q, const float* k, const float* v, const float* l,
                        const float* dterm, const float* d_o, const Shape& s, Rows qr, Rows kr,
                        const Mask& mask, float* dq, float* dk, float* dv) {
  XRING_RANGE("attention_backward (cpu)");
  attention_backward_on(active_cpu_isa(), q, k, v, l, dterm, d_o, s, qr, kr, mask, dq, dk, dv);
}

void attention_backward_naive(const float* q, const float* k, const float* v, const float* l,
                              const float* dterm, const float* d_o, const Shape& s, Rows qr,
                              Rows kr, const Mask& mask, float* dq, float* dk, float* dv) {
  const int d = s.head_dim;
  const float scale = s.scale();
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads; ++h) {
      const long long hk = kv_head_of(s, h);
      const long long kv_base = ((b * s.kv_heads + hk) * kr.rows) * d;
      for (long long i = 0; i < qr.rows; ++i) {
        const long long row = (static_cast<long long>(b) * s.heads + h) * qr.rows + i;
        if (l[row] == -std::numeric_limits<float>::infinity()) continue;
        const float* qi = q + row * d;
        const float* doi = d_o + row * d;
        float* dqi = dq + row * d;
        for (long long j = 0; j < kr.rows; ++j) {
          if (!mask.allowed(qr.first + i, kr.first + j)) continue;
          const float* kj = k + kv_base + j * d;
          const float* vj = v + kv_base + j * d;
          float dot = 0, dp = 0;
          for (int c = 0; c < d; ++c) {
            dot += qi[c] * kj[c];
            dp += doi[c] * vj[c];
          }
          const float p = std::exp(dot * scale - l[row]);
          const float ds = p * (dp - dterm[row]);
          float* dkj = dk + kv_base + j * d;
          float* dvj = dv + kv_base + j * d;
          for (int c = 0; c < d; ++c) {
            dvj[c] += p * doi[c];
            dqi[c] += scale * ds * kj[c];
            dkj[c] += scale * ds * qi[c];
          }
        }
      }
    }
}

std::vector<long long> top_k_positions(const float* scores, long long n, long long k) {
  k = std::clamp<long long>(k, 0, n);
  std::vector<long long> order(static_cast<size_t>(n));
  for (long long i = 0; i < n; ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](long long a, long long b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  order.resize(static_cast<size_t>(k));
  std::sort(order.begin(), order.end());
  return order;
}

std::vector<float> gather_rows(const float* t, int width, const std::vector<long long>& positions) {
  std::vector<float> out;
  out.reserve(positions.size() * width);
  for (long long p : positions) out.insert(out.end(), t + p * width, t + (p + 1) * width);
  return out;
}

void decode_attention(const float* q, const std::vector<const float*>& k,
                      const std::vector<const float*>& v, const std::vector<long long>& len,
                      const Shape& s, float* o, float* l) {
  XRING_RANGE("decode_attention (cpu)");
  const int group = s.heads / s.kv_heads;
  const Shape one_kv_head{1, group, 1, s.head_dim};  // the query heads reading kv head hk
  for (int hk = 0; hk < s.kv_heads; ++hk) {
    const long long first = static_cast<long long>(hk) * group;
    attention_forward(q + first * s.head_dim, k[hk], v[hk], one_kv_head, Rows{0, 1},
                      Rows{0, len[hk]}, Mask{}, o + first * s.head_dim, l + first);
  }
}

std::vector<float> slice_rows(const std::vector<float>& t, int batch, int heads, long long total,
                              int d, Rows r) {
  std::vector<float> out(static_cast<size_t>(batch) * heads * r.rows * d);
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h) {
      const float* src = t.data() + ((static_cast<long long>(b) * heads + h) * total + r.first) * d;
      std::copy(src, src + r.rows * d,
                out.data() + (static_cast<long long>(b) * heads + h) * r.rows * d);
    }
  return out;
}

void place_rows(std::vector<float>& t, int batch, int heads, long long total, int d, Rows r,
                const float* block) {
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h) {
      const float* src = block + (static_cast<long long>(b) * heads + h) * r.rows * d;
      std::copy(src, src + r.rows * d,
                t.data() + ((static_cast<long long>(b) * heads + h) * total + r.first) * d);
    }
}

}  // namespace xring::kernels
