// `xring profile`: measures the device the executor runs on and writes a DeviceProfile, and
// `xring validate`: plans and runs a grid of shapes and rank counts with that profile and
// compares the planner's prediction with the measurement.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/inputs.hpp"

namespace xring::executor {

/// Called with (what is being measured, steps done, steps in all).
using Progress = std::function<void(const std::string&, size_t, size_t)>;

struct ProfileOptions {
  std::string backend = "cpu";  ///< cpu (the reference kernels on one thread per rank) or cuda
  bool quick = false;           ///< fewer shapes and repeats: about ten seconds on a CPU
  std::vector<DType> dtypes;    ///< empty: bf16 and fp16 (quick: bf16)
  std::vector<int> head_dims;   ///< empty: 64 and 128 (quick: 64)
  Progress progress;
};

/// Measures the local device. Throws xring::Error (runtime) when the backend is unavailable.
DeviceProfile profile_device(const ProfileOptions& options);

/// The cuda backend of profile_device (builds with CUDA only).
DeviceProfile profile_cuda(const ProfileOptions& options);

/// The points `profile_device` measures, so a progress bar and --help can show the grid.
struct ProfileGrid {
  std::vector<long long> s_q, s_kv;  ///< forward grid (heads fixed)
  std::vector<long long> backward_s_q, backward_s_kv;
  int batch = 1, heads = 4, kv_heads = 2;
  std::vector<DType> dtypes;   ///< measured unless --dtype says otherwise
  std::vector<int> head_dims;  ///< measured unless --head-dim says otherwise
};
ProfileGrid profile_grid(const std::string& backend, bool quick);

/// One attention shape to measure.
struct ProfileJob {
  Pass pass;
  DType dtype;
  int head_dim;
  long long s_q, s_kv;
  std::string name() const;  ///< for the progress line
  /// The measured point: the job's FLOPs (forward 4·B·H·S_Q·S_KV·d, backward 2.5x) / seconds.
  AttentionPoint point(const struct ProfileGrid& grid, double seconds) const;
};
/// Every dtype x head dim (the options', else the grid's) x forward and backward grid point.
std::vector<ProfileJob> profile_jobs(const ProfileOptions& options, const ProfileGrid& grid);

struct ValidateOptions {
  std::string backend = "cpu";
  SpecJson profile;  ///< the device profile the predictions use
  bool quick = false;
  int repeat = 3;  ///< runs per point; the median is compared
  std::vector<std::string> strategies = {"query_ring", "kv_ring"};
  std::vector<int> ranks;                               ///< empty: 1, 2, 4 (quick: 1, 2)
  std::vector<std::pair<long long, long long>> shapes;  ///< (S_Q, S_KV); empty: a default grid
  bool training = false;  ///< forward + backward instead of forward only
  uint64_t seed = 1;
  Progress progress;
};

struct ValidatePoint {
  std::string strategy;
  int ranks = 1;
  long long s_q = 0, s_kv = 0;
  double predicted_s = 0;
  double measured_s = 0;
  /// Every repetition's time (the layer's, or the layers' sum per repetition); measured_s is
  /// their median.
  std::vector<double> measured_samples_s;
  double error = 0;  ///< (predicted − measured) / measured
  bool verified = false;
  double predicted_low_s = 0;  ///< the prediction interval (the profile's band)
  double predicted_high_s = 0;
  bool inside() const { return predicted_low_s <= measured_s && measured_s <= predicted_high_s; }
};

struct ValidateReport {
  std::string backend, device;
  std::vector<ValidatePoint> points;
  double median_abs_error = 0, worst_abs_error = 0;
  PredictionBand band;       ///< the band the intervals used (from the profile as given)
  double coverage = 0;       ///< fraction of points measured inside their interval
  ResidualSpread residuals;  ///< this run's measured / predicted spread (5% and 95%)
  std::vector<std::string> notes;
};

/// Plans each (strategy, ranks, shape) on an emulation cluster built from the profile (one
/// node of `ranks` devices linked at the measured copy rate, each rank getting
/// min(1, compute units / ranks) of the device), runs it, and compares: per point the error
/// and whether the measurement fell inside the prediction interval, overall the coverage and
/// the residual spread to store in the profile (profile_with_residuals).
ValidateReport validate_predictions(const ValidateOptions& options);

nlohmann::json to_json(const ValidateReport& r);

/// The profile JSON `profile` (as validated) with `residuals` set to `spread`: what
/// `xring validate --update-profile` writes. Every other field is kept as it was.
nlohmann::json profile_with_residuals(const nlohmann::json& profile, const ResidualSpread& spread);

}  // namespace xring::executor
