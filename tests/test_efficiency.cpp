// Efficiency by shape (issue 15, item 11): the published attention tables of the GPU specs, the
// short-query tile rule and the GEMM roofline, each against numbers derived by hand from the
// tables in profiles/gpus/*.json and the rules in docs/cost-model.md.
#include <gtest/gtest.h>

#include <cmath>

#include "xring/planner/efficiency.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/specs.hpp"
#include "xring/planner/strategy.hpp"

using namespace xring;

namespace {

GpuSpec builtin_gpu(const std::string& name) {
  SpecJson j = load_spec_json(SpecKind::gpu, name);
  return gpu_from_json(j.value, j.origin);
}

}  // namespace

// An OpenFlamingo-like block (128 text queries, 64 visual keys of one image, head dim 64)
// against an 8K x 8K block of head dim 128 on H100 (FlashAttention-3 table, Shah et al. 2024).
TEST(Efficiency, OpenFlamingoBlockVersusLongBlockOnH100) {
  const GpuSpec h100 = builtin_gpu("h100-sxm");
  // d=64: 0.337 at 512 keys, 0.396 at 1024. 64 keys are three halvings below 512, so the first
  // segment's slope (0.059 per doubling) extended: 0.337 - 3 x 0.059 = 0.160; 128 queries fill
  // their one tile.
  EXPECT_NEAR(attention_efficiency(h100, 64, 128, 64), 0.160, 1e-9);
  // d=128 at 8192 keys is a table point: 0.653 (646 of 989 TFLOP/s); 8192 queries fill 64 tiles.
  EXPECT_NEAR(attention_efficiency(h100, 128, 8192, 8192), 0.653, 1e-9);
  // Split over 2 ranks the OpenFlamingo block has 64 queries: half of its one tile is used.
  EXPECT_NEAR(attention_efficiency(h100, 64, 64, 64), 0.080, 1e-9);
  // Between points, linear in log(keys): d=128, 3000 keys between 2048 (0.632) and 4096 (0.645):
  // t = ln(3000/2048)/ln 2 = 0.55075, 0.632 + 0.013 t = 0.639160.
  EXPECT_NEAR(attention_efficiency(h100, 128, 4096, 3000),
              0.632 + 0.013 * std::log(3000.0 / 2048) / std::log(2.0), 1e-12);
  EXPECT_NEAR(attention_efficiency(h100, 128, 4096, 3000), 0.639160, 1e-6);
  // Past the last point the plateau holds; 200 queries use 200 of 256 tile rows.
  EXPECT_NEAR(attention_efficiency(h100, 256, 200, 1 << 20), 0.764 * 200 / 256, 1e-12);
  // Head dim 80 takes the nearest table head dim, 64.
  EXPECT_NEAR(attention_efficiency(h100, 80, 128, 512), 0.337, 1e-12);
}

TEST(Efficiency, FewKeysAreFlooredAndSiblingsShareTables) {
  const GpuSpec h100 = builtin_gpu("h100-sxm");
  // 4 keys: 0.337 - 7 x 0.059 < 0, so the floor, 0.05.
  EXPECT_NEAR(attention_efficiency(h100, 64, 128, 4), kMinAttentionEfficiency, 1e-12);
  // H200 uses H100's table (architecture sibling); A100 its derived FlashAttention-2 table
  // (d=128 at 16k: 0.73 of peak); a GPU without published points keeps the flat 0.5.
  EXPECT_NEAR(attention_efficiency(builtin_gpu("h200"), 128, 8192, 8192), 0.653, 1e-12);
  EXPECT_NEAR(attention_efficiency(builtin_gpu("a100-80gb"), 128, 16384, 16384), 0.73, 1e-12);
  EXPECT_EQ(attention_efficiency(builtin_gpu("l40s"), 64, 7, 9), 0.5);
}

TEST(Efficiency, QueryTileFraction) {
  EXPECT_DOUBLE_EQ(query_tile_fraction(128), 1.0);
  EXPECT_DOUBLE_EQ(query_tile_fraction(1), 1.0 / 128);
  EXPECT_DOUBLE_EQ(query_tile_fraction(129), 129.0 / 256);
  EXPECT_DOUBLE_EQ(query_tile_fraction(0), 1.0);
}

TEST(Efficiency, MatmulRooflineWithTileQuantisation) {
  GpuSpec g;
  g.peak_bf16_flop_per_s = 1000;
  g.hbm_bytes_per_s = 10;  // ridge 100 FLOP/byte
  g.matmul_efficiency = 0.6;
  // m=64, n=256, k=1024, 2-byte: tiles 64/128 = 0.5 and 1; intensity 2·64·256·1024 /
  // (2·(64·1024 + 1024·256 + 64·256)) = 33554432 / 688128 = 48.762 FLOP/byte, over the ridge
  // 0.48762; 0.6 x 0.5 x 0.48762 = 0.146286.
  EXPECT_NEAR(matmul_efficiency(g, 1000, 64, 256, 1024, 2), 0.6 * 0.5 * 33554432.0 / 688128 / 100,
              1e-12);
  EXPECT_NEAR(matmul_efficiency(g, 1000, 64, 256, 1024, 2), 0.146286, 1e-6);
  // A large square GEMM is compute-bound with full tiles: the flat 0.6.
  EXPECT_DOUBLE_EQ(matmul_efficiency(g, 1000, 4096, 4096, 4096, 2), 0.6);
}

TEST(Efficiency, TableIsValidated) {
  json j = load_spec_json(SpecKind::gpu, "h100-sxm").value;
  j["attention_efficiency_table"][3]["efficiency"] = 1.5;
  try {
    gpu_from_json(j, "g.json");
    FAIL() << "accepted an efficiency above 1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("g.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("attention_efficiency_table[3]"), std::string::npos)
        << e.what();
  }
  j = load_spec_json(SpecKind::gpu, "h100-sxm").value;
  j["attention_efficiency_table"][1]["keys"] = 512;  // repeats point 0 (d=64, 512 keys)
  EXPECT_THROW(gpu_from_json(j, "g.json"), Error);
}

// A device profile's measured rate still wins over the table.
TEST(Efficiency, PlacementUsesTheTableWithoutAProfile) {
  const GpuSpec h100 = builtin_gpu("h100-sxm");
  LayerShape s;
  s.heads = 8;
  s.head_dim = 64;
  Placement p;
  p.gpu = &h100;
  p.peak_flop_per_s = 989e12;
  p.attention_flop_per_s = 1;  // would be absurdly slow if used
  // 4·1·8·128·64·64 = 16,777,216 FLOPs at 0.160 x 989e12 = 106.02 ns, plus no launch.
  EXPECT_NEAR(attention_s(s, 128, 64, 8, p, Pass::forward), 16777216.0 / (0.160 * 989e12), 1e-18);
  p.kernel_launch_s = 3e-6;
  EXPECT_NEAR(attention_s(s, 128, 64, 8, p, Pass::forward), 16777216.0 / (0.160 * 989e12) + 3e-6,
              1e-15);
}
