// Spec readers: every built-in loads; bad values name the field and the rule.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/planner.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

json builtin(SpecKind kind, const std::string& name) { return load_spec_json(kind, name).value; }

}  // namespace

TEST(Catalog, HasEveryNameTheProductPromises) {
  for (const char* m :
       {"llama-3.2-11b-vision", "mplug-owl3-7b", "mplug-owl3-2b", "mplug-owl3-1b",
        "openflamingo-9b", "openflamingo-3b", "llama-3-70b", "mistral-small-24b", "tiny"})
    EXPECT_NO_THROW(model_from_json(builtin(SpecKind::model, m), m)) << m;
  for (const char* c :
       {"a100-80gb-16", "a30-8", "a100-40gb-12", "h100-sxm-8", "h100-sxm-32", "h100-1", "h200-1"})
    EXPECT_NO_THROW(cluster_from_json(builtin(SpecKind::cluster, c), c)) << c;
  for (const char* w : {"video-qa", "image-chat", "long-text"})
    EXPECT_NO_THROW(workload_from_json(builtin(SpecKind::workload, w), w)) << w;
}

TEST(Catalog, EverySpecCitesItsSource) {
  for (const auto& b : builtin_specs()) {
    if (b.kind == SpecKind::workload) continue;
    json j = json::parse(b.text);
    ASSERT_TRUE(j.contains("source")) << b.name;
    EXPECT_GT(j["source"].get<std::string>().size(), 20u) << b.name;
  }
}

TEST(Catalog, ClustersMatchTheirDescriptions) {
  ClusterSpec a100 = cluster_from_json(builtin(SpecKind::cluster, "a100-80gb-16"), "t");
  EXPECT_EQ(a100.nodes, 4);
  EXPECT_EQ(a100.gpus_per_node, 4);
  EXPECT_EQ(a100.inter_node.bytes_per_s, 25e9);
  ClusterSpec a30 = cluster_from_json(builtin(SpecKind::cluster, "a30-8"), "t");
  EXPECT_EQ(a30.gpus(), 8);
  EXPECT_EQ(a30.inter_node.bytes_per_s, 1.25e9);
  ClusterSpec a40 = cluster_from_json(builtin(SpecKind::cluster, "a100-40gb-12"), "t");
  EXPECT_EQ(a40.nodes * a40.gpus_per_node, 12);
  EXPECT_EQ(a40.intra_node.bytes_per_s, 64e9);
  ClusterSpec h32 = cluster_from_json(builtin(SpecKind::cluster, "h100-sxm-32"), "t");
  EXPECT_EQ(h32.gpus(), 32);
  EXPECT_EQ(h32.inter_node.bytes_per_s, 50e9);  // 400 Gb/s
  EXPECT_EQ(h32.gpu.memory_bytes, 80.0 * (1ull << 30));
  ClusterSpec h200 = cluster_from_json(builtin(SpecKind::cluster, "h200-1"), "t");
  EXPECT_EQ(h200.gpus(), 1);
  EXPECT_EQ(h200.gpu.memory_bytes, 141.0 * (1ull << 30));  // the H200 datasheet's 141 GB
  EXPECT_EQ(h200.gpu.hbm_bytes_per_s, 4.8e12);
}

TEST(Catalog, ModelGeometry) {
  ModelSpec l = model_from_json(builtin(SpecKind::model, "llama-3.2-11b-vision"), "t");
  EXPECT_EQ(l.layers, 40);
  EXPECT_EQ(l.cross_attention_layers.size(), 8u);
  EXPECT_EQ(l.cross_attention.heads, 32);
  EXPECT_EQ(l.cross_attention.kv_heads, 8);
  EXPECT_EQ(l.tokens_per_frame, 6404);
  ModelSpec f = model_from_json(builtin(SpecKind::model, "openflamingo-9b"), "t");
  EXPECT_EQ(f.cross_attention.heads, 8);
  EXPECT_EQ(f.cross_attention.head_dim, 64);
  EXPECT_EQ(f.tokens_per_frame, 64);
  EXPECT_EQ(f.self_attention.head_dim, 128);  // cross geometry differs from self
  ModelSpec o = model_from_json(builtin(SpecKind::model, "mplug-owl3-7b"), "t");
  EXPECT_EQ(o.cross_attention_layers.size(), 4u);
  EXPECT_EQ(o.tokens_per_frame, 729);
}

TEST(Catalog, UnknownNameSuggestsTheClosest) {
  std::string e = error_of([] { load_spec_json(SpecKind::model, "llama-3.2-11b-vison"); });
  EXPECT_NE(e.find("did you mean \"llama-3.2-11b-vision\""), std::string::npos) << e;
}

TEST(Specs, UnknownKeyGetsDidYouMean) {
  json j = builtin(SpecKind::model, "tiny");
  j["kv_head"] = 2;
  std::string e = error_of([&] { model_from_json(j, "m.json"); });
  EXPECT_NE(e.find("m.json"), std::string::npos) << e;
  EXPECT_NE(e.find("\"kv_head\": unknown field; did you mean \"kv_heads\"?"), std::string::npos)
      << e;
}

TEST(Specs, HeadsMustBeAMultipleOfKvHeads) {
  json j = builtin(SpecKind::model, "tiny");
  j["kv_heads"] = 3;
  std::string e = error_of([&] { model_from_json(j, "m.json"); });
  EXPECT_NE(e.find("at \"kv_heads\""), std::string::npos) << e;
  EXPECT_NE(e.find("multiple of kv_heads"), std::string::npos) << e;
}

TEST(Specs, NestedPathsAreNamed) {
  json j = builtin(SpecKind::cluster, "a100-80gb-16");
  j["gpu"]["memory"] = 80;
  std::string e = error_of([&] { cluster_from_json(j, "c.json"); });
  EXPECT_NE(e.find("c.json: at \"gpu.memory\": needs an explicit unit"), std::string::npos) << e;
  j = builtin(SpecKind::cluster, "a100-80gb-16");
  j["inter_node"]["bandwidth"] = "25GB";
  e = error_of([&] { cluster_from_json(j, "c.json"); });
  EXPECT_NE(e.find("at \"inter_node.bandwidth\""), std::string::npos) << e;
  EXPECT_NE(e.find("GB/s"), std::string::npos) << e;  // lists the accepted units
}

TEST(Specs, ImpossibleValuesAreRejected) {
  json c = builtin(SpecKind::cluster, "h100-sxm-8");
  c["gpus_per_node"] = 0;
  EXPECT_NE(error_of([&] { cluster_from_json(c, "c"); }).find("between 1 and 1024, got 0"),
            std::string::npos);
  json w = builtin(SpecKind::workload, "video-qa");
  w["batch"] = -1;
  EXPECT_NE(error_of([&] { workload_from_json(w, "w"); }).find("\"batch\""), std::string::npos);
  w = builtin(SpecKind::workload, "video-qa");
  w["visual_tokens"] = 1000;
  EXPECT_NE(error_of([&] { workload_from_json(w, "w"); }).find("either frames"), std::string::npos);
  json m = builtin(SpecKind::model, "tiny");
  m["cross_attention_layers"] = json::array({1, 9});
  EXPECT_NE(error_of([&] { model_from_json(m, "m"); }).find("cross_attention_layers[1]"),
            std::string::npos);
  m = builtin(SpecKind::model, "llama-3.2-11b-vision");
  m["params"] = "9.78M";
  EXPECT_NE(error_of([&] { model_from_json(m, "m"); }).find("check the unit"), std::string::npos);
}

TEST(Specs, WorkloadTokensPerFrameDefaultsToTheModels) {
  ModelSpec m = model_from_json(builtin(SpecKind::model, "tiny"), "m");
  WorkloadSpec w = workload_from_json(builtin(SpecKind::workload, "video-qa"), "w");
  EXPECT_EQ(visual_tokens(w, m), 256 * 16);
  w.tokens_per_frame = 10;
  EXPECT_EQ(visual_tokens(w, m), 2560);
  w.frames.reset();
  w.tokens_per_frame.reset();
  w.visual_tokens = 100;
  EXPECT_EQ(visual_tokens(w, m), 100);
  EXPECT_DOUBLE_EQ(frames(w, m), 100.0 / 16);
}

TEST(Overrides, SetReplacesFieldsAndIsNamedInErrors) {
  Inputs in = load_inputs(
      "tiny", "h100-sxm-32", "video-qa",
      {"workload.frames=3600", "cluster.inter_node.bandwidth=100GB/s", "cluster.gpu.memory=40GiB"});
  EXPECT_EQ(*in.workload.frames, 3600);
  EXPECT_EQ(in.cluster.inter_node.bytes_per_s, 100e9);
  EXPECT_EQ(in.cluster.gpu.memory_bytes, 40.0 * (1ull << 30));
  std::string e =
      error_of([] { load_inputs("tiny", "h100-sxm-8", "video-qa", {"workload.frame=10"}); });
  EXPECT_NE(e.find("--set workload.frame=10"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"frames\""), std::string::npos) << e;
  e = error_of([] { parse_override("workload.frames"); });
  EXPECT_NE(e.find("missing '='"), std::string::npos) << e;
  e = error_of([] { parse_override("worklaod.frames=3"); });
  EXPECT_NE(e.find("did you mean \"workload\""), std::string::npos) << e;
}

TEST(Specs, MultimodalWorkloadOnATextModelIsRejected) {
  std::string e = error_of([] { load_inputs("llama-3-70b", "h100-sxm-8", "video-qa", {}); });
  EXPECT_NE(e.find("no cross-attention layers"), std::string::npos) << e;
}

// Any single-field corruption of any built-in spec either plans or is refused with
// xring::Error: never another exception, never a crash.
TEST(Specs, MutatedSpecsNeverCrashThePlanner) {
  const json values[] = {nullptr, -1,      0,        1,     2.5,           1e30,
                         "x",     "80GiB", "25GB/s", "2us", json::array(), json::object(),
                         true,    65536};
  int refused = 0, planned = 0;
  for (SpecKind kind : {SpecKind::model, SpecKind::cluster, SpecKind::workload}) {
    std::string name = kind == SpecKind::model     ? "mplug-owl3-7b"
                       : kind == SpecKind::cluster ? "a100-80gb-16"
                                                   : "video-qa";
    json original = builtin(kind, name);
    std::vector<std::vector<std::string>> paths;
    for (const auto& [key, value] : original.items()) {
      paths.push_back({key});
      if (value.is_object())
        for (const auto& [inner, unused] : value.items()) paths.push_back({key, inner});
    }
    for (const auto& path : paths) {
      for (const json& v : values) {
        json mutated = original;
        json* node = &mutated;
        for (size_t i = 0; i + 1 < path.size(); ++i) node = &(*node)[path[i]];
        (*node)[path.back()] = v;
        SpecJson m{builtin(SpecKind::model, "mplug-owl3-7b"), "m"};
        SpecJson c{builtin(SpecKind::cluster, "a100-80gb-16"), "c"};
        SpecJson w{builtin(SpecKind::workload, "video-qa"), "w"};
        (kind == SpecKind::model ? m : kind == SpecKind::cluster ? c : w).value = mutated;
        try {
          Inputs in = inputs_from_json(m, c, w, {});
          Plan p = plan(in);
          if (p.feasible) EXPECT_GE(*p.predicted.iteration_time_s, 0.0);
          else EXPECT_FALSE(p.predicted.iteration_time_s.has_value());
          ++planned;
        } catch (const Error&) {
          ++refused;
        } catch (const std::exception& e) {
          ADD_FAILURE() << name << " " << path.back() << " = " << v.dump() << ": " << e.what();
        }
      }
    }
  }
  EXPECT_GT(refused, 100);
  EXPECT_GT(planned, 10);
}

TEST(Overrides, MissingObjectsAreCreatedValuesInTheWayAreNot) {
  Inputs in = load_inputs(
      "tiny", "h100-sxm-8", "video-qa",
      {"cluster.nodes=2", "cluster.inter_node.bandwidth=50GB/s", "cluster.inter_node.latency=5us"});
  EXPECT_EQ(in.cluster.gpus(), 16);
  EXPECT_EQ(in.cluster.inter_node.bytes_per_s, 50e9);
  std::string e = error_of([] {
    load_inputs("tiny", "h100-sxm-8", "video-qa",
                {"cluster.nodes=2", "cluster.inter_node.bandwidth=50GB/s"});
  });
  EXPECT_NE(e.find("at \"inter_node.latency\": required field is missing"), std::string::npos) << e;
  e = error_of([] { load_inputs("tiny", "h100-sxm-8", "video-qa", {"workload.frames.x=3"}); });
  EXPECT_NE(e.find("\"frames\" is not an object"), std::string::npos) << e;
}
