// How long `plan` takes: the planner is interactive and sits inside sweeps (whatif,
// recommend), so it must stay in the millisecond range. Spec loading is timed separately.
#include <benchmark/benchmark.h>

#include <fstream>
#include <ostream>
#include <random>
#include <streambuf>
#include <string>

#include "xring/planner/heads.hpp"
#include "xring/planner/inputs.hpp"

#include "reference/previous.hpp"
#include "xring/planner/placement.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/recommend.hpp"
#include "xring/planner/specs.hpp"
#include "xring/planner/sweep.hpp"
#include "xring/planner/trace.hpp"

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
    benchmark::DoNotOptimize(
        xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
}
BENCHMARK(BM_LoadInputs)->Unit(benchmark::kMicrosecond);

void BM_PlanToJson(benchmark::State& state) {
  xring::Plan p =
      xring::plan(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan_json_text(p));
}
BENCHMARK(BM_PlanToJson)->Unit(benchmark::kMicrosecond);

/// The plan as a document (recommend's requirements and run's plan hash read it): parsed
/// from the text now, built directly before.
void BM_PlanToDocument(benchmark::State& state) {
  xring::Plan p =
      xring::plan(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
  for (auto _ : state) benchmark::DoNotOptimize(xring::to_json(p));
}
BENCHMARK(BM_PlanToDocument)->Unit(benchmark::kMicrosecond);

void BM_PlanToDocumentBefore(benchmark::State& state) {
  xring::Plan p =
      xring::plan(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}));
  for (auto _ : state) benchmark::DoNotOptimize(xring::previous::plan_document(p));
}
BENCHMARK(BM_PlanToDocumentBefore)->Unit(benchmark::kMicrosecond);

/// Llama-3.2-11B-Vision stretched to 4,000 layers, every one cross-attention (issue 18's
/// "JSON of a 4,000-layer model": a 10.8 MB plan file).
xring::Inputs four_thousand_layer_inputs() {
  std::string layers = "model.cross_attention_layers=[0";
  for (int i = 1; i < 4000; ++i) layers.append(",").append(std::to_string(i));
  layers.append("]");
  return xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa",
                            {"model.layers=4000", layers});
}

void BM_Plan4000Layers(benchmark::State& state) {
  const xring::Inputs in = four_thousand_layer_inputs();
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_Plan4000Layers)->Unit(benchmark::kMillisecond);

/// Before: the plan built as a JSON document, then the document printed (`xring plan -o`
/// until issue 18).
void BM_PlanJson4000LayersBefore(benchmark::State& state) {
  const xring::Plan p = xring::plan(four_thousand_layer_inputs());
  for (auto _ : state) benchmark::DoNotOptimize(xring::previous::plan_document(p).dump(2));
}
BENCHMARK(BM_PlanJson4000LayersBefore)->Unit(benchmark::kMillisecond);

/// After: the same bytes written straight from the plan.
void BM_PlanJson4000Layers(benchmark::State& state) {
  const xring::Plan p = xring::plan(four_thousand_layer_inputs());
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan_json_text(p));
}
BENCHMARK(BM_PlanJson4000Layers)->Unit(benchmark::kMillisecond);

/// Discards what is written (the trace benchmarks time making the text, not the disk).
class DiscardingBuffer : public std::streambuf {
 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
  int_type overflow(int_type c) override { return c; }
};

/// Issue 18's trace: Llama-3.2-11B-Vision, 1,562 frames, a query ring on 256 H100s (the
/// trace draws 64 of them; 256 steps per layer). `xring plan -c h100-sxm-32 --set
/// cluster.nodes=32 --set workload.frames=1562 --strategy query_ring --ranks 256 --trace`.
xring::Plan ring_of_256_plan() {
  xring::PlannerOptions o;
  o.strategy = xring::Strategy::query_ring;
  o.ranks = 256;
  return xring::plan(xring::load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa",
                                        {"cluster.nodes=32", "workload.frames=1562"}),
                     o);
}

/// Before: every step an event in one document, then the document printed (39 MB).
void BM_TraceRingOf256Before(benchmark::State& state) {
  const xring::Plan p = ring_of_256_plan();
  DiscardingBuffer discard;
  std::ostream out(&discard);
  for (auto _ : state) out << xring::previous::trace_document(p).dump() << "\n";
}
BENCHMARK(BM_TraceRingOf256Before)->Unit(benchmark::kMillisecond);

/// After: laid out (ring steps merged past 10 MB), then streamed (340 KB).
void BM_TraceRingOf256(benchmark::State& state) {
  const xring::Plan p = ring_of_256_plan();
  DiscardingBuffer discard;
  std::ostream out(&discard);
  for (auto _ : state) xring::write_trace(p, xring::plan_trace(p), out);
}
BENCHMARK(BM_TraceRingOf256)->Unit(benchmark::kMillisecond);

/// A trace that stays step by step near its 10 MB size: the 256-rank ring's 8 layers with
/// 32 ranks drawn (the size is measured by formatting it, then it is written).
void BM_TraceStepByStepNear10MB(benchmark::State& state) {
  const xring::Plan p = ring_of_256_plan();
  DiscardingBuffer discard;
  std::ostream out(&discard);
  for (auto _ : state) {
    const xring::TraceLayout layout = xring::plan_trace(p, 8);
    if (layout.steps_merged) state.SkipWithError("expected a trace step by step");
    xring::write_trace(p, layout, out);
  }
}
BENCHMARK(BM_TraceStepByStepNear10MB)->Unit(benchmark::kMillisecond);

void BM_PlanFairKvDecodeLlama70b(benchmark::State& state) {
  xring::Inputs in = xring::load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {});
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_PlanFairKvDecodeLlama70b)->Unit(benchmark::kMillisecond);

/// A copy of llama-3-70b with `kv_heads` kv heads (and as many query heads when that is more,
/// head_dim shrunk to keep the hidden size), written to /tmp with a synthetic head profile
/// (sigma 1, seed 70); returns the inputs of fairkv-decode on `gpus_per_node` H100s.
xring::Inputs decode_inputs_with_kv_heads(int kv_heads, int gpus_per_node) {
  const std::string tag = std::to_string(kv_heads);
  nlohmann::json m = xring::load_spec_json(xring::SpecKind::model, "llama-3-70b").value;
  m["name"] = "llama-3-70b-kv" + tag;
  m["kv_heads"] = kv_heads;
  if (kv_heads > m["heads"].get<int>()) {
    m["head_dim"] = m["hidden_size"].get<int>() / kv_heads;
    m["heads"] = kv_heads;
  }
  const std::string model_path = "/tmp/xring-bench-llama-3-70b-kv" + tag + ".json";
  const std::string heads_path = "/tmp/xring-bench-heads-kv" + tag + ".json";
  std::ofstream(model_path) << m.dump(2);
  xring::ModelSpec spec = xring::model_from_json(m, model_path);
  std::ofstream(heads_path) << xring::to_json(xring::synthetic_head_profile(spec, 1.0, 70)).dump();
  return xring::load_inputs(
      model_path, "h100-sxm-8", "fairkv-decode",
      {"workload.head_profile=" + heads_path,
       "cluster.gpus_per_node=" + std::to_string(gpus_per_node)});
}

/// The single-plan targets: decode plans whose heads outnumber the GPUs.
void BM_PlanDecode16KvHeadsOn8Gpus(benchmark::State& state) {
  xring::Inputs in = decode_inputs_with_kv_heads(16, 8);
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_PlanDecode16KvHeadsOn8Gpus)->Unit(benchmark::kMillisecond);

void BM_PlanDecode128KvHeadsOn64Gpus(benchmark::State& state) {
  xring::Inputs in = decode_inputs_with_kv_heads(128, 64);
  for (auto _ : state) benchmark::DoNotOptimize(xring::plan(in));
}
BENCHMARK(BM_PlanDecode128KvHeadsOn64Gpus)->Unit(benchmark::kMillisecond);

/// The sweep target: 10,000 decode plans (80 layers x 4 placements each), all threads.
void BM_Sweep10000DecodePoints(benchmark::State& state) {
  xring::SweepRequest r;
  r.model = "llama-3-70b";
  r.cluster = "h100-sxm-8";
  r.workload = "fairkv-decode";
  r.axes = {xring::parse_vary("workload.batch=1..10000:+1")};
  for (auto _ : state) {
    double sum = 0;
    xring::run_sweep(r, [&](const xring::SweepPoint& p) {
      sum += xring::metric(p.plan, "decode_tokens_per_s");
    });
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_Sweep10000DecodePoints)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

/// The decode sweep: fairkv-decode on llama-3-70b, batch 1..100 x kv_budget
/// 256..6592:+64 (10,000 points), all threads; CSV metrics taken from every plan.
void BM_DecodeSweepBatchByBudget10000(benchmark::State& state) {
  xring::SweepRequest r;
  r.model = "llama-3-70b";
  r.cluster = "h100-sxm-8";
  r.workload = "fairkv-decode";
  r.axes = {xring::parse_vary("workload.batch=1..100:+1"),
            xring::parse_vary("workload.kv_budget=256..6592:+64")};
  for (auto _ : state) {
    double sum = 0;
    xring::run_sweep(r, [&](const xring::SweepPoint& p) {
      sum += xring::metric(p.plan, "decode_tokens_per_s");
    });
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_DecodeSweepBatchByBudget10000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

/// Peak resident bytes since the last reset (Linux: VmHWM, reset by writing 5 to clear_refs).
double peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  return 0;
}

/// Memory of a prefill sweep of video-qa frames 1..N (10,000 points: the most the previous,
/// collecting implementation allowed; 100,000: the size): the peak resident set while
/// sweeping, as counter peak_rss_bytes (the process's first, so nothing earlier inflates it).
void BM_WhatifMemoryPrefillPoints(benchmark::State& state) {
  xring::SweepRequest r;
  r.model = "llama-3.2-11b-vision";
  r.cluster = "h100-sxm-32";
  r.workload = "video-qa";
  r.axes = {xring::parse_vary("workload.frames=1.." + std::to_string(state.range(0)) + ":+1")};
  double peak = 0;
  for (auto _ : state) {
    std::ofstream("/proc/self/clear_refs") << "5";
    double sum = 0;
    xring::run_sweep(r, [&](const xring::SweepPoint& p) {
      sum += xring::metric(p.plan, "iteration_time_s");
    });
    benchmark::DoNotOptimize(sum);
    peak = peak_resident_bytes();
  }
  state.counters["peak_rss_bytes"] = peak;
}
BENCHMARK(BM_WhatifMemoryPrefillPoints)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

/// Placement of 64 kv heads on 8 GPUs with lognormal loads, each algorithm.
xring::LayerLoad sixty_four_heads() {
  std::mt19937 rng(64);
  std::lognormal_distribution<double> skew(0.0, 1.0);
  xring::LayerLoad l;
  for (int h = 0; h < 64; ++h) l.bytes_per_request.push_back(skew(rng) * 1e6);
  l.requests = 128;
  l.gpus = 8;
  l.copy_bytes = 4e7;
  return l;
}

void BM_Place64HeadsOn8Gpus(benchmark::State& state) {
  const xring::LayerLoad l = sixty_four_heads();
  const auto kind = static_cast<xring::PlacementKind>(state.range(0));
  for (auto _ : state) {
    switch (kind) {
      case xring::PlacementKind::contiguous:
        benchmark::DoNotOptimize(xring::place_contiguous(l));
        break;
      case xring::PlacementKind::balanced:
        benchmark::DoNotOptimize(xring::place_balanced(l));
        break;
      case xring::PlacementKind::fair_copying:
        benchmark::DoNotOptimize(xring::place_fair_copying(l, 8));
        break;
      case xring::PlacementKind::optimal:
        benchmark::DoNotOptimize(xring::place_optimal(l, 1000000));
        break;
    }
  }
  state.SetLabel(xring::to_string(kind));
}
BENCHMARK(BM_Place64HeadsOn8Gpus)->DenseRange(0, 3)->Unit(benchmark::kMicrosecond);

/// The search target: 1,000+ cluster shapes (two GPU types, up to 512 GPUs, 1/2/4/8
/// per node), no pruning possible (throughput per GPU), all threads.
void BM_Recommend1920Shapes(benchmark::State& state) {
  xring::RecommendRequest r;
  r.model = "llama-3.2-11b-vision";
  r.workload = "video-qa";
  r.gpus = {"h100-sxm", "a100-80gb"};
  r.max_gpus = 512;
  r.gpus_per_node = {1, 2, 4, 8};
  r.objective = xring::Objective::max_throughput_per_gpu;
  for (auto _ : state) benchmark::DoNotOptimize(xring::recommend(r));
}
BENCHMARK(BM_Recommend1920Shapes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
