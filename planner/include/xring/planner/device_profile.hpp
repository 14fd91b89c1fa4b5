// A device profile: what `xring profile` measured on one device (attention kernels over a grid
// of shapes, GEMM rate, bandwidths, NCCL by message size). The planner interpolates achieved
// attention rates from it by shape instead of datasheet peak x a stated efficiency.
//
// Interpolation: for a key (pass, dtype, head dim, causal), each grid point is placed at
// x = log(B·H·S_Q) (query rows, what fills the device) and y = log(S_KV). The rate is
// interpolated linearly in y within each measured x column, then linearly in x between the two
// columns around the target; outside the grid the nearest edge value holds (no extrapolation).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "xring/planner/inputs.hpp"
#include "xring/planner/intervals.hpp"
#include "xring/planner/specs.hpp"

namespace xring {

inline constexpr int kDeviceProfileSchemaVersion = 1;
inline constexpr const char* kDeviceProfileKind = "xring-device-profile";

enum class Pass { forward, backward };
std::string to_string(Pass p);

/// One measured attention kernel shape.
struct AttentionPoint {
  Pass pass = Pass::forward;
  DType dtype = DType::bf16;
  int head_dim = 128;
  bool causal = false;
  long long batch = 1;
  int heads = 1;
  int kv_heads = 1;
  long long s_q = 1;
  long long s_kv = 1;
  double flop_per_s = 0;  ///< achieved: forward 4·B·H·S_Q·S_KV·d, backward 2.5x that, per second
  double q_rows() const { return static_cast<double>(batch) * heads * s_q; }
};

/// One point of a bandwidth-by-message-size curve (NCCL send/recv, copies).
struct MessagePoint {
  double bytes = 0;
  double bytes_per_s = 0;
  double latency_s = 0;  ///< time of the message minus bytes / asymptotic bandwidth (may be 0)
};

struct DeviceProfile {
  int schema_version = kDeviceProfileSchemaVersion;
  std::string device;   ///< e.g. "NVIDIA H100 80GB HBM3" or the CPU model
  std::string backend;  ///< "cuda" or "cpu": which executor the rates are for
  std::string driver;
  nlohmann::json clocks = nlohmann::json::object();  ///< free-form: SM / memory clocks, cores
  int compute_units = 1;  ///< SMs, or CPU threads the measurement used
  std::string date;
  std::string xring_version;
  bool quick = false;  ///< measured with `--quick` (fewer shapes, fewer repeats)
  std::vector<AttentionPoint> attention;
  /// GEMM rate per dtype name ("bf16" ...), for the K/V projections and the rest of the model.
  std::vector<std::pair<DType, double>> matmul_flop_per_s;
  std::optional<double> hbm_bytes_per_s;     ///< device memory read+write stream
  std::optional<double> decode_bytes_per_s;  ///< K/V bytes read per second by decode attention
  std::optional<double> copy_bytes_per_s;    ///< device-to-device copy (emulated ring transfers)
  std::optional<double> copy_latency_s;      ///< the fixed cost of one such transfer
  std::optional<double> peer_bytes_per_s;    ///< between two devices, when there are several
  std::vector<MessagePoint> nccl;            ///< send/recv by message size, when ranks > 1
  /// measured / predicted spread over the points `xring validate --update-profile` ran; the
  /// planner's intervals for this profile come from it (absent: the stated profile band).
  std::optional<ResidualSpread> residuals;
  std::optional<double> kernel_launch_s;     ///< fixed cost of one (tiny) attention call
  std::optional<double> ring_step_sync_s;    ///< fixed cost of one ring step's handoff

  /// Interpolated attention rate; nullopt when the profile has nothing usable for `dtype`
  /// (fp16 and bf16 stand in for each other, the nearest head dim for a missing one, the
  /// forward rate for a missing backward). `basis`, when given, receives what was used.
  std::optional<double> attention_flop_per_s(Pass pass, DType dtype, int head_dim, bool causal,
                                             double q_rows, double s_kv,
                                             std::string* basis = nullptr) const;
  std::optional<double> matmul_rate(DType dtype) const;
};

/// Reads and validates a profile; errors name `origin` and the JSON path (exit code 2).
DeviceProfile device_profile_from_json(const nlohmann::json& j, const std::string& origin);
nlohmann::json to_json(const DeviceProfile& p);
/// {samples, low_quantile, high_quantile, low_ratio, high_ratio}: a profile's `residuals`.
nlohmann::json to_json(const ResidualSpread& s);

/// The band of a plan whose cost_source.kind is `cost_kind` ("device_profile", "published",
/// "datasheet"; any other kind gets the widest, the datasheet's), with `profile`'s residuals
/// when it has them.
PredictionBand prediction_band_of(const std::string& cost_kind, const DeviceProfile* profile);

/// Validates `profile` (from load_spec_json(SpecKind::device, file or built-in name)) and
/// attaches it to `in`: the planner then takes attention and GEMM rates from it, and decode
/// reads K/V at its measured decode bandwidth. Plans echo the JSON, so they replay without it.
void attach_device_profile(Inputs& in, SpecJson profile);

}  // namespace xring
