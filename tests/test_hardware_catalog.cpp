// The GPU, system and fabric catalogue: every entry parses to its datasheet figures (written out
// here by hand from the cited datasheets) and cites a source; clusters name GPUs, systems and
// fabrics, also through --set; recommend sizes whole systems.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "test_util.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/plan.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/recommend.hpp"
#include "xring/planner/systems.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

constexpr double GiB = 1024.0 * 1024 * 1024;

struct GpuRow {
  const char* name;
  double memory_gib, bf16_tflops, hbm_gb_per_s;
  const char* system;
};

// Dense BF16 (sparsity figures halved where the datasheet only gives those), memory, HBM.
const GpuRow kGpus[] = {
    {"a100-40gb", 40, 312, 1555, "hgx-a100"},  {"a100-80gb", 80, 312, 2039, "hgx-a100"},
    {"a30", 24, 165, 933, "pcie-gen4-8"},      {"l40s", 48, 362.05, 864, "pcie-gen4-8"},
    {"h100-sxm", 80, 989, 3350, "hgx-h100"},   {"h100-pcie", 80, 756, 2000, "pcie-gen5-8"},
    {"h200", 141, 989, 4800, "hgx-h200"},      {"b200", 180, 2250, 8000, "dgx-b200"},
    {"gb200", 186, 2500, 8000, "gb200-nvl72"}, {"mi300x", 192, 1307.4, 5300, "mi300x-platform"},
};

struct SystemRow {
  const char* name;
  int gpus_per_node;
  double intra_gb_per_s;  // each way, per GPU
  const char* gpu;
  const char* fabric;
};

const SystemRow kSystems[] = {
    {"hgx-a100", 8, 300, "a100-80gb", "ib-hdr-200"},
    {"hgx-h100", 8, 450, "h100-sxm", "ib-ndr-400"},
    {"hgx-h200", 8, 450, "h200", "ib-ndr-400"},
    {"dgx-b200", 8, 900, "b200", "ib-ndr-400"},
    {"gb200-nvl72", 72, 900, "gb200", "ib-ndr-400"},
    {"pcie-gen4-8", 8, 32, "l40s", "ethernet-100"},
    {"pcie-gen5-8", 8, 64, "h100-pcie", "roce-400"},
    {"mi300x-platform", 8, 64, "mi300x", "roce-400"},
};

struct FabricRow {
  const char* name;
  double gb_per_s, latency_us;
};

const FabricRow kFabrics[] = {
    {"ib-hdr-200", 25, 5},      {"ib-ndr-400", 50, 5}, {"ib-xdr-800", 100, 5},
    {"roce-200", 25, 8},        {"roce-400", 50, 8},   {"ethernet-100", 12.5, 30},
    {"ethernet-25", 3.125, 30},
};

template <typename Row, size_t N>
std::set<std::string> names_of(const Row (&rows)[N]) {
  std::set<std::string> names;
  for (const auto& r : rows) names.insert(r.name);
  return names;
}

std::set<std::string> builtin_set(SpecKind kind) {
  auto v = builtin_names(kind);
  return {v.begin(), v.end()};
}

}  // namespace

TEST(HardwareCatalog, EveryEntryHasARowInTheseTests) {
  EXPECT_EQ(builtin_set(SpecKind::gpu), names_of(kGpus));
  EXPECT_EQ(builtin_set(SpecKind::system), names_of(kSystems));
  EXPECT_EQ(builtin_set(SpecKind::fabric), names_of(kFabrics));
}

class CatalogGpu : public ::testing::TestWithParam<GpuRow> {};

TEST_P(CatalogGpu, ParsesToItsDatasheetFiguresAndCitesThem) {
  const GpuRow& row = GetParam();
  SpecJson j = load_spec_json(SpecKind::gpu, row.name);
  GpuSpec g = gpu_from_json(j.value, j.origin);
  EXPECT_GT(g.source.size(), 40u);
  EXPECT_DOUBLE_EQ(g.memory_bytes, row.memory_gib * GiB);
  EXPECT_DOUBLE_EQ(g.peak_bf16_flop_per_s, row.bf16_tflops * 1e12);
  EXPECT_DOUBLE_EQ(g.peak_fp16_flop_per_s, row.bf16_tflops * 1e12);
  EXPECT_DOUBLE_EQ(g.hbm_bytes_per_s, row.hbm_gb_per_s * 1e9);
  EXPECT_EQ(g.default_system, row.system);
  EXPECT_FALSE(g.vendor.empty());
  EXPECT_FALSE(g.form_factor.empty());
  // The flat efficiencies stay the documented defaults until measured.
  EXPECT_DOUBLE_EQ(g.attention_efficiency, 0.5);
  EXPECT_DOUBLE_EQ(g.matmul_efficiency, 0.6);
  EXPECT_TRUE(j.value.contains("efficiency_source"));
}

INSTANTIATE_TEST_SUITE_P(EveryGpu, CatalogGpu, ::testing::ValuesIn(kGpus), [](const auto& info) {
  std::string n = info.param.name;
  for (auto& ch : n)
    if (ch == '-') ch = '_';
  return n;
});

class CatalogSystem : public ::testing::TestWithParam<SystemRow> {};

TEST_P(CatalogSystem, ParsesToItsPublishedLinksAndCitesThem) {
  const SystemRow& row = GetParam();
  SpecJson j = load_spec_json(SpecKind::system, row.name);
  SystemSpec s = system_from_json(j.value, j.origin);
  EXPECT_GT(s.source.size(), 40u);
  EXPECT_EQ(s.gpus_per_node, row.gpus_per_node);
  EXPECT_DOUBLE_EQ(s.intra_node.bytes_per_s, row.intra_gb_per_s * 1e9);
  EXPECT_GT(s.intra_node.latency_s, 0);
  EXPECT_EQ(s.gpu, row.gpu);
  EXPECT_EQ(s.default_fabric, row.fabric);
  if (s.nccl_tests) {
    EXPECT_FALSE(s.nccl_tests->source.empty());
    EXPECT_GT(s.nccl_tests->all_reduce_busbw_bytes_per_s, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(EverySystem, CatalogSystem, ::testing::ValuesIn(kSystems),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

class CatalogFabric : public ::testing::TestWithParam<FabricRow> {};

TEST_P(CatalogFabric, ParsesToItsPublishedBandwidthAndCitesIt) {
  const FabricRow& row = GetParam();
  SpecJson j = load_spec_json(SpecKind::fabric, row.name);
  FabricSpec f = fabric_from_json(j.value, j.origin);
  EXPECT_GT(f.source.size(), 40u);
  EXPECT_DOUBLE_EQ(f.link.bytes_per_s, row.gb_per_s * 1e9);
  EXPECT_NEAR(f.link.latency_s, row.latency_us * 1e-6, 1e-15);
}

INSTANTIATE_TEST_SUITE_P(EveryFabric, CatalogFabric, ::testing::ValuesIn(kFabrics),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

TEST(HardwareCatalog, NewFieldsAreValidated) {
  json g = load_spec_json(SpecKind::gpu, "h200").value;
  g["vendor"] = "intel";
  EXPECT_NE(error_of([&] { gpu_from_json(g, "g.json"); }).find("vendor"), std::string::npos);
  g = load_spec_json(SpecKind::gpu, "h200").value;
  g["default_system"] = "hgx-h20";
  std::string e = error_of([&] { gpu_from_json(g, "g.json"); });
  EXPECT_NE(e.find("default_system"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean \"hgx-h200\""), std::string::npos) << e;
  json s = load_spec_json(SpecKind::system, "hgx-h100").value;
  s["nccl_tests"].erase("source");
  EXPECT_NE(error_of([&] { system_from_json(s, "s.json"); }).find("nccl_tests.source"),
            std::string::npos);
  s = load_spec_json(SpecKind::system, "hgx-h100").value;
  s["default_fabric"] = "ib-ndr";
  EXPECT_NE(error_of([&] { system_from_json(s, "s.json"); }).find("default_fabric"),
            std::string::npos);
  json f = load_spec_json(SpecKind::fabric, "ib-ndr-400").value;
  f["bandwidth"] = "400";
  EXPECT_NE(error_of([&] { fabric_from_json(f, "f.json"); }).find("bandwidth"), std::string::npos);
}

TEST(GpuSwap, SetClusterGpuResolvesBuiltinAndFileGpus) {
  // The bug: the cluster's GPU was resolved before --set, so a GPU name set by --set stayed a
  // string and was refused.
  for (const auto& row : kGpus) {
    Inputs in =
        load_inputs("tiny", "h100-sxm-8", "video-qa", {std::string("cluster.gpu=") + row.name});
    EXPECT_DOUBLE_EQ(in.cluster.gpu.peak_bf16_flop_per_s, row.bf16_tflops * 1e12) << row.name;
    EXPECT_DOUBLE_EQ(in.cluster.intra_node.bytes_per_s, 450e9);  // links follow only a system
  }
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("xring_gpu_" + std::to_string(::getpid()) + ".json");
  json mine = load_spec_json(SpecKind::gpu, "h200").value;
  mine["name"] = "my-h200";
  std::ofstream(file) << mine.dump();
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.gpu=" + file.string()});
  EXPECT_EQ(in.cluster.gpu.name, "my-h200");
  std::filesystem::remove(file);
  std::string e =
      error_of([] { load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.gpu=h300"}); });
  EXPECT_NE(e.find("at \"gpu\""), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean"), std::string::npos) << e;
  // A field of the GPU can still be set.
  in = load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.gpu.memory=100GiB"});
  EXPECT_DOUBLE_EQ(in.cluster.gpu.memory_bytes, 100 * GiB);
}

TEST(GpuSwap, SystemAndFabricSetTheNodeAndLinks) {
  Inputs in = load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.system=dgx-b200"});
  EXPECT_EQ(in.cluster.gpu.name, "B200-SXM-180GB");
  EXPECT_EQ(in.cluster.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(in.cluster.intra_node.bytes_per_s, 900e9);
  EXPECT_EQ(in.cluster.system, "DGX B200");
  // A GPU set beside the system wins, whatever the order.
  for (auto sets : {std::vector<std::string>{"cluster.gpu=h200", "cluster.system=dgx-b200"},
                    std::vector<std::string>{"cluster.system=dgx-b200", "cluster.gpu=h200"}}) {
    in = load_inputs("tiny", "h100-sxm-8", "video-qa", sets);
    EXPECT_EQ(in.cluster.gpu.name, "H200-SXM-141GB");
    EXPECT_DOUBLE_EQ(in.cluster.intra_node.bytes_per_s, 900e9);
  }
  // A multi-node cluster given a system and no fabric gets the system's default fabric.
  in =
      load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.nodes=2", "cluster.system=hgx-a100"});
  EXPECT_EQ(in.cluster.fabric, "InfiniBand HDR 200 Gb/s per GPU");
  EXPECT_DOUBLE_EQ(in.cluster.inter_node.bytes_per_s, 25e9);
  EXPECT_DOUBLE_EQ(in.cluster.intra_node.bytes_per_s, 300e9);
  // A fabric replaces the inter-node link of a cluster that had one.
  in = load_inputs("tiny", "h100-sxm-32", "video-qa", {"cluster.fabric=ethernet-100"});
  EXPECT_DOUBLE_EQ(in.cluster.inter_node.bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(in.cluster.inter_node.latency_s, 30e-6);
  // ... and a link field set beside it wins.
  in = load_inputs("tiny", "h100-sxm-32", "video-qa",
                   {"cluster.fabric=ethernet-100", "cluster.inter_node.latency=50us"});
  EXPECT_DOUBLE_EQ(in.cluster.inter_node.bytes_per_s, 12.5e9);
  EXPECT_DOUBLE_EQ(in.cluster.inter_node.latency_s, 50e-6);
  std::string e =
      error_of([] { load_inputs("tiny", "h100-sxm-8", "video-qa", {"cluster.system=hgx-h300"}); });
  EXPECT_NE(e.find("unknown system \"hgx-h300\""), std::string::npos) << e;
}

TEST(GpuSwap, PlansWithASystemReadBack) {
  Plan p = plan(load_inputs("tiny", "h100-sxm-8", "video-qa",
                            {"cluster.system=gb200-nvl72", "cluster.gpus_per_node=8"}));
  Inputs back = plan_inputs(plan_from_json(to_json(p), "p.json"), "p.json");
  EXPECT_EQ(back.cluster.system, "GB200 NVL72");
  EXPECT_EQ(back.cluster.gpus_per_node, 8);
  EXPECT_DOUBLE_EQ(back.cluster.gpu.peak_bf16_flop_per_s, 2.5e15);
}

TEST(RecommendSystems, SizesWholeSystemsOfEveryRequestedGpu) {
  RecommendRequest r;
  r.model = kDefaultModel;
  r.workload = kDefaultWorkload;
  r.gpus = {"h200", "b200", "mi300x"};
  r.threads = 2;
  r.prune = false;
  Recommendation rec = recommend(r);
  std::set<std::string> gpus;
  for (const auto& c : rec.all) {
    EXPECT_EQ(c.gpus_per_node, 8) << c.gpu;
    gpus.insert(c.gpu);
  }
  EXPECT_EQ(gpus, (std::set<std::string>{"h200", "b200", "mi300x"}));
  EXPECT_EQ(rec.all.size(), 3u * 8u);  // 1..8 nodes of 8 within 64 GPUs, per GPU
  ASSERT_FALSE(rec.ranked.empty());
  EXPECT_EQ(rec.ranked.front().total_gpus(), 8);
  // The MI300X's ring link is one Infinity Fabric link.
  json shape = cluster_shape("mi300x", 2, 8);
  EXPECT_EQ(shape["intra_node"]["bandwidth"], "64GB/s");
  EXPECT_EQ(shape["inter_node"]["bandwidth"], "400Gb/s");
}

TEST(RecommendSystems, GpusPerNodeConstrainsAndBigSystemsAskForRoom) {
  RecommendRequest r;
  r.model = "tiny";
  r.workload = kDefaultWorkload;
  r.gpus = {"gb200"};
  r.threads = 2;
  std::string e = error_of([&] { recommend(r); });
  EXPECT_NE(e.find("72 GPUs, more than --max-gpus 64"), std::string::npos) << e;
  r.gpus_per_node = {4};
  r.max_gpus = 8;
  Recommendation rec = recommend(r);
  for (const auto& c : rec.all) EXPECT_EQ(c.gpus_per_node, 4);
  EXPECT_EQ(rec.all.size(), 2u);
  // --set cluster.gpu is one more --gpu; cluster.fabric sets the links of every shape.
  r.gpus = {};
  r.overrides = {"cluster.gpu=l40s", "cluster.fabric=roce-200"};
  rec = recommend(r);
  ASSERT_EQ(rec.all.size(), 2u);
  EXPECT_EQ(rec.all.front().gpu, "l40s");
  json shape = cluster_shape("l40s", 2, 4, r.overrides);
  EXPECT_EQ(shape["inter_node"]["bandwidth"], "200Gb/s");
  EXPECT_EQ(shape["intra_node"]["bandwidth"], "32GB/s");
  r.overrides = {"cluster.gpus_per_node=4"};
  EXPECT_NE(error_of([&] { recommend(r); }).find("--gpus-per-node"), std::string::npos);
}

TEST(RecommendSystems, AGpuFileWithoutASystemAsksForOne) {
  // `recommend --gpu h200-8.json` used to exit 2: no built-in cluster gave its links.
  std::filesystem::path file = std::filesystem::temp_directory_path() /
                               ("xring_h200_8_" + std::to_string(::getpid()) + ".json");
  json mine = load_spec_json(SpecKind::gpu, "h200").value;
  mine["name"] = "h200-8";
  mine.erase("default_system");
  std::ofstream(file) << mine.dump();
  RecommendRequest r;
  r.model = "tiny";
  r.workload = kDefaultWorkload;
  r.gpus = {file.string()};
  r.threads = 2;
  std::string e = error_of([&] { recommend(r); });
  EXPECT_NE(e.find("--set cluster.system=NAME"), std::string::npos) << e;
  r.overrides = {"cluster.system=hgx-h200"};
  Recommendation rec = recommend(r);
  ASSERT_FALSE(rec.ranked.empty());
  EXPECT_EQ(rec.ranked.front().plan.inputs["cluster"]["gpu"]["name"], "h200-8");
  EXPECT_EQ(rec.ranked.front().gpus_per_node, 8);
  std::filesystem::remove(file);
}

TEST(RecommendSystems, TiesGoToFewerNodes) {
  Candidate one_node, two_nodes;
  one_node.nodes = 1;
  one_node.gpus_per_node = 8;
  two_nodes.nodes = 2;
  two_nodes.gpus_per_node = 4;
  for (Candidate* c : {&one_node, &two_nodes}) {
    c->throughput_per_gpu = 1000;
    c->latency_s = 0.5;
  }
  for (Objective o :
       {Objective::min_gpus, Objective::max_throughput_per_gpu, Objective::min_latency}) {
    EXPECT_TRUE(ranks_before(one_node, two_nodes, o));
    EXPECT_FALSE(ranks_before(two_nodes, one_node, o));
  }
  two_nodes.throughput_per_gpu = 1001;  // a real difference still wins
  EXPECT_TRUE(ranks_before(two_nodes, one_node, Objective::max_throughput_per_gpu));
}
