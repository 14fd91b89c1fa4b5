// How long `plan` takes: the planner is interactive and sits inside sweeps (whatif,
// recommend), so it must stay in the millisecond range. Spec loading is timed separately.
#include <benchmark/benchmark.h>

#include "xring/planner/planner.hpp"

namespace {

void BM_PlanLlama32VisionOnH100x32(benchmark::State& state) {
  xring::Inputs in = xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {});
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_PlanLlama32VisionOnH100x32)->Unit(benchmark::kMicrosecond);

void BM_PlanTrainingOpenFlamingo3bOnA100x16(benchmark::State& state) {
  xring::Inputs in = xring::load_inputs("openflamingo-3b", "a100-80gb-16", "video-qa",
                                        {"workload.phase=training"});
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_PlanTrainingOpenFlamingo3bOnA100x16)->Unit(benchmark::kMicrosecond);

void BM_LoadInputs(benchmark::State& state) {
  for (auto _ : state)
    benchmark::DoNotOptimize(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
}
BENCHMARK(BM_LoadInputs)->Unit(benchmark::kMicrosecond);

void BM_PlanToJson(benchmark::State& state) {
  xring::Plan p = xring::plan(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
  for (auto _ : state) benchmark::DoNotOptimize(xring::to_json(p).dump());
}
BENCHMARK(BM_PlanToJson)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
