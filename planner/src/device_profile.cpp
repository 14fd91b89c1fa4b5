// Device profiles: strict reading, writing, and the shape interpolation of attention rates.
#include "xring/planner/device_profile.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "xring/planner/error.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

constexpr double kHuge = 1e30;

/// Linear interpolation of (x, rate) pairs sorted by x, clamped at both ends.
double interpolate(const std::vector<std::pair<double, double>>& xs, double x) {
  if (x <= xs.front().first) return xs.front().second;
  if (x >= xs.back().first) return xs.back().second;
  auto hi = std::lower_bound(xs.begin(), xs.end(), x,
                             [](const auto& p, double v) { return p.first < v; });
  auto lo = hi - 1;
  const double t = (x - lo->first) / (hi->first - lo->first);
  return lo->second + t * (hi->second - lo->second);
}

/// The rate at (x, y) over points of one key: linear in y within each x column, then in x.
double interpolate_grid(const std::vector<const AttentionPoint*>& points, double x, double y) {
  std::map<double, std::vector<std::pair<double, double>>> columns;
  for (const AttentionPoint* p : points)
    columns[std::log(p->q_rows())].push_back(
        {std::log(static_cast<double>(p->s_kv)), p->flop_per_s});
  std::vector<std::pair<double, double>> along_x;
  for (auto& [cx, column] : columns) {
    std::sort(column.begin(), column.end());
    along_x.push_back({cx, interpolate(column, y)});
  }
  return interpolate(along_x, x);
}

/// `residuals` as `xring validate` writes it: quantiles of measured / predicted.
ResidualSpread residuals_from(ObjectReader r) {
  ResidualSpread s;
  s.samples = r.int32("samples", 1, 1 << 20);
  s.low_quantile = r.number("low_quantile", 0, 1);
  s.high_quantile = r.number("high_quantile", s.low_quantile, 1);
  s.low_ratio = r.number("low_ratio", 1e-6, 1e6);
  s.high_ratio = r.number("high_ratio", s.low_ratio, 1e6);
  r.finish();
  return s;
}

}  // namespace

std::string to_string(Pass p) { return p == Pass::forward ? "forward" : "backward"; }

std::optional<double> DeviceProfile::attention_flop_per_s(Pass pass, DType dtype, int head_dim,
                                                          bool causal, double q_rows, double s_kv,
                                                          std::string* basis) const {
  // Candidates in order of preference: the exact key, the other 16-bit dtype, the forward
  // rate for a backward pass; within each, the nearest measured head dim.
  std::vector<std::pair<Pass, DType>> tries = {{pass, dtype}};
  const bool half = dtype != DType::fp32;
  const DType twin = dtype == DType::bf16 ? DType::fp16 : DType::bf16;
  if (half) tries.push_back({pass, twin});
  if (pass == Pass::backward) {
    tries.push_back({Pass::forward, dtype});
    if (half) tries.push_back({Pass::forward, twin});
  }
  for (const auto& [p, d] : tries) {
    int best_dim = -1;
    for (const AttentionPoint& a : attention)
      if (a.pass == p && a.dtype == d && a.causal == causal &&
          (best_dim < 0 || std::abs(a.head_dim - head_dim) < std::abs(best_dim - head_dim)))
        best_dim = a.head_dim;
    if (best_dim < 0) continue;
    std::vector<const AttentionPoint*> points;
    for (const AttentionPoint& a : attention)
      if (a.pass == p && a.dtype == d && a.causal == causal && a.head_dim == best_dim)
        points.push_back(&a);
    if (basis)
      *basis = to_string(p) + " " + to_string(d) + " d=" + std::to_string(best_dim) +
               (causal ? " causal" : "") + " grid (" + std::to_string(points.size()) + " points)";
    return interpolate_grid(points, std::log(std::max(q_rows, 1.0)), std::log(std::max(s_kv, 1.0)));
  }
  return std::nullopt;
}

std::optional<double> DeviceProfile::matmul_rate(DType dtype) const {
  for (const auto& [d, rate] : matmul_flop_per_s)
    if (d == dtype) return rate;
  for (const auto& [d, rate] : matmul_flop_per_s)
    if (d != DType::fp32 && dtype != DType::fp32) return rate;  // the other 16-bit type
  return std::nullopt;
}

DeviceProfile device_profile_from_json(const json& j, const std::string& origin) {
  if (!j.is_object()) throw Error(origin + ": a device profile is a JSON object");
  ObjectReader r(j, origin, "");
  DeviceProfile p;
  if (r.string("kind") != kDeviceProfileKind)
    r.fail("kind", std::string("must be \"") + kDeviceProfileKind +
                       "\" (is this a device profile written by xring profile?)");
  p.schema_version = r.int32("schema_version", 1);
  if (p.schema_version != kDeviceProfileSchemaVersion)
    r.fail("schema_version", "is " + std::to_string(p.schema_version) + "; this xring reads " +
                                 std::to_string(kDeviceProfileSchemaVersion) +
                                 " (re-run xring profile)");
  ObjectReader dev = r.object("device");
  p.device = dev.string("name");
  p.backend = dev.choice("backend", {"cuda", "cpu"});
  p.driver = dev.optional_string("driver").value_or("");
  p.compute_units = dev.int32("compute_units", 1, 1 << 20);
  if (dev.has("clocks")) {
    p.clocks = dev.raw("clocks");
    if (!p.clocks.is_object()) dev.fail("clocks", "must be an object");
  }
  dev.finish();
  p.date = r.optional_string("date").value_or("");
  p.xring_version = r.optional_string("xring_version").value_or("");
  if (r.has("quick")) {
    if (!r.raw("quick").is_boolean()) r.fail("quick", "must be true or false");
    p.quick = r.raw("quick").get<bool>();
  }

  const json& points = r.raw("attention");
  if (!points.is_array() || points.empty())
    r.fail("attention", "must be a non-empty array of measured kernel shapes");
  std::map<std::tuple<int, int, int, bool, long long, long long>, size_t> seen;
  for (size_t i = 0; i < points.size(); ++i) {
    const std::string at = "attention[" + std::to_string(i) + "]";
    if (!points[i].is_object()) r.fail(at, "must be an object");
    ObjectReader a(points[i], origin, at);
    AttentionPoint pt;
    pt.pass =
        a.choice("pass", {"forward", "backward"}) == "forward" ? Pass::forward : Pass::backward;
    pt.dtype = dtype_from_string(a.choice("dtype", {"fp32", "fp16", "bf16"}));
    pt.head_dim = a.int32("head_dim", 1, 1024);
    if (a.has("causal")) {
      if (!a.raw("causal").is_boolean()) a.fail("causal", "must be true or false");
      pt.causal = a.raw("causal").get<bool>();
    }
    pt.batch = a.integer("batch", 1, 1 << 20);
    pt.heads = a.int32("heads", 1, 4096);
    pt.kv_heads = a.int32("kv_heads", 1, pt.heads);
    if (pt.heads % pt.kv_heads != 0) a.fail("kv_heads", "must divide heads");
    pt.s_q = a.integer("s_q", 1);
    pt.s_kv = a.integer("s_kv", 1);
    pt.flop_per_s = a.number("flop_per_s", 1e-30, kHuge);
    a.finish();
    auto key = std::make_tuple(static_cast<int>(pt.pass), static_cast<int>(pt.dtype), pt.head_dim,
                               pt.causal, static_cast<long long>(pt.q_rows()), pt.s_kv);
    if (auto [it, fresh] = seen.emplace(key, i); !fresh)
      r.fail(at, "measures the same shape as attention[" + std::to_string(it->second) +
                     "] (same pass, dtype, head_dim, causal, B·H·S_Q and S_KV)");
    p.attention.push_back(pt);
  }

  if (r.has("matmul")) {
    ObjectReader m = r.object("matmul");
    for (const char* name : {"fp32", "fp16", "bf16"})
      if (auto rate = m.optional_number(name, 1e-30, kHuge))
        p.matmul_flop_per_s.push_back({dtype_from_string(name), *rate});
    m.finish();
  }
  if (r.has("bandwidth")) {
    ObjectReader b = r.object("bandwidth");
    p.hbm_bytes_per_s = b.optional_number("hbm_bytes_per_s", 1e-30, kHuge);
    p.decode_bytes_per_s = b.optional_number("decode_bytes_per_s", 1e-30, kHuge);
    p.copy_bytes_per_s = b.optional_number("copy_bytes_per_s", 1e-30, kHuge);
    p.copy_latency_s = b.optional_number("copy_latency_s", 0, 1e3);
    p.peer_bytes_per_s = b.optional_number("peer_bytes_per_s", 1e-30, kHuge);
    b.finish();
  }
  if (r.has("fixed_costs")) {
    ObjectReader f = r.object("fixed_costs");
    p.kernel_launch_s = f.optional_number("kernel_launch_s", 0, 1);
    p.ring_step_sync_s = f.optional_number("ring_step_sync_s", 0, 1);
    f.finish();
  } else {
    r.allow("fixed_costs");
  }
  if (r.has("nccl")) {
    const json& n = r.raw("nccl");
    if (!n.is_array()) r.fail("nccl", "must be an array of {bytes, bytes_per_s, latency_s}");
    for (size_t i = 0; i < n.size(); ++i) {
      const std::string at = "nccl[" + std::to_string(i) + "]";
      if (!n[i].is_object()) r.fail(at, "must be an object");
      ObjectReader m(n[i], origin, at);
      MessagePoint pt;
      pt.bytes = m.number("bytes", 1, kHuge);
      pt.bytes_per_s = m.number("bytes_per_s", 1e-30, kHuge);
      pt.latency_s = m.optional_number("latency_s", 0, 1e6).value_or(0);
      m.finish();
      p.nccl.push_back(pt);
    }
  }
  if (r.has("residuals")) p.residuals = residuals_from(r.object("residuals"));
  r.finish();
  return p;
}

json to_json(const ResidualSpread& s) {
  return {{"samples", s.samples},
          {"low_quantile", s.low_quantile},
          {"high_quantile", s.high_quantile},
          {"low_ratio", s.low_ratio},
          {"high_ratio", s.high_ratio}};
}

json to_json(const DeviceProfile& p) {
  json attention = json::array();
  for (const AttentionPoint& a : p.attention)
    attention.push_back({{"pass", to_string(a.pass)},
                         {"dtype", to_string(a.dtype)},
                         {"head_dim", a.head_dim},
                         {"causal", a.causal},
                         {"batch", a.batch},
                         {"heads", a.heads},
                         {"kv_heads", a.kv_heads},
                         {"s_q", a.s_q},
                         {"s_kv", a.s_kv},
                         {"flop_per_s", a.flop_per_s}});
  json j = {{"kind", kDeviceProfileKind},
            {"schema_version", p.schema_version},
            {"device",
             {{"name", p.device},
              {"backend", p.backend},
              {"compute_units", p.compute_units},
              {"clocks", p.clocks}}},
            {"quick", p.quick},
            {"attention", attention}};
  if (!p.driver.empty()) j["device"]["driver"] = p.driver;
  if (!p.date.empty()) j["date"] = p.date;
  if (!p.xring_version.empty()) j["xring_version"] = p.xring_version;
  if (!p.matmul_flop_per_s.empty()) {
    json m = json::object();
    for (const auto& [d, rate] : p.matmul_flop_per_s) m[to_string(d)] = rate;
    j["matmul"] = m;
  }
  json b = json::object();
  if (p.hbm_bytes_per_s) b["hbm_bytes_per_s"] = *p.hbm_bytes_per_s;
  if (p.decode_bytes_per_s) b["decode_bytes_per_s"] = *p.decode_bytes_per_s;
  if (p.copy_bytes_per_s) b["copy_bytes_per_s"] = *p.copy_bytes_per_s;
  if (p.copy_latency_s) b["copy_latency_s"] = *p.copy_latency_s;
  if (p.peer_bytes_per_s) b["peer_bytes_per_s"] = *p.peer_bytes_per_s;
  if (!b.empty()) j["bandwidth"] = b;
  json f = json::object();
  if (p.kernel_launch_s) f["kernel_launch_s"] = *p.kernel_launch_s;
  if (p.ring_step_sync_s) f["ring_step_sync_s"] = *p.ring_step_sync_s;
  if (!f.empty()) j["fixed_costs"] = f;
  if (!p.nccl.empty()) {
    json n = json::array();
    for (const MessagePoint& m : p.nccl)
      n.push_back({{"bytes", m.bytes}, {"bytes_per_s", m.bytes_per_s}, {"latency_s", m.latency_s}});
    j["nccl"] = n;
  }
  if (p.residuals) j["residuals"] = to_json(*p.residuals);
  return j;
}

PredictionBand prediction_band_of(const std::string& cost_kind, const DeviceProfile* profile) {
  RateSource source = RateSource::datasheet;
  if (cost_kind == "device_profile" || cost_kind == "profile" || cost_kind == "published")
    source = rate_source_from_string(cost_kind);
  return prediction_band(source, source == RateSource::profile && profile
                                     ? profile->residuals
                                     : std::optional<ResidualSpread>());
}

void attach_device_profile(Inputs& in, SpecJson profile) {
  auto p = std::make_shared<const DeviceProfile>(
      device_profile_from_json(profile.value, profile.origin));
  if (p->decode_bytes_per_s) in.cluster.gpu.hbm_bytes_per_s = *p->decode_bytes_per_s;
  in.device_profile = std::move(p);
  in.device_profile_json = std::move(profile);
}

}  // namespace xring
