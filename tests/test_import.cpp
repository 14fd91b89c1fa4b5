// Hugging Face import: the imported Llama-3.2-11B-Vision equals the built-in spec on every field
// the planner uses; the text families map; unmappable configs name the field.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include "xring/planner/hf_import.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

ModelSpec imported(const std::string& file) {
  std::string path = std::string(XRING_TEST_DATA) + "/hf/" + file;
  ImportedModel m = import_hf_config(read_json_file(path), path, "imported");
  return model_from_json(m.spec, path);
}

ModelSpec builtin(const std::string& name) {
  return model_from_json(load_spec_json(SpecKind::model, name).value, name);
}

void expect_same_geometry(const ModelSpec& a, const ModelSpec& b) {
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.cross_attention_layers, b.cross_attention_layers);
  EXPECT_EQ(a.cross_attention_kind, b.cross_attention_kind);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  for (auto [x, y] : {std::pair{a.self_attention, b.self_attention},
                      std::pair{a.cross_attention, b.cross_attention}}) {
    EXPECT_EQ(x.heads, y.heads);
    EXPECT_EQ(x.kv_heads, y.kv_heads);
    EXPECT_EQ(x.head_dim, y.head_dim);
  }
  EXPECT_EQ(a.mlp_size, b.mlp_size);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.tokens_per_frame, b.tokens_per_frame);
  EXPECT_EQ(a.visual_hidden_size, b.visual_hidden_size);
  EXPECT_EQ(a.vision_params, b.vision_params);
  EXPECT_EQ(a.vision_tokens_per_frame, b.vision_tokens_per_frame);
}

}  // namespace

TEST(Import, Llama32VisionEqualsTheBuiltInSpec) {
  expect_same_geometry(imported("llama-3.2-11b-vision.json"), builtin("llama-3.2-11b-vision"));
}

TEST(Import, TextFamiliesMatchTheirBuiltIns) {
  expect_same_geometry(imported("llama-3-70b.json"), builtin("llama-3-70b"));
  expect_same_geometry(imported("mistral-small-24b.json"), builtin("mistral-small-24b"));
  ModelSpec q = imported("qwen2-7b.json");  // mPLUG-Owl3-7B's backbone
  ModelSpec owl = builtin("mplug-owl3-7b");
  EXPECT_EQ(q.layers, owl.layers);
  EXPECT_EQ(q.self_attention.heads, owl.self_attention.heads);
  EXPECT_EQ(q.self_attention.kv_heads, owl.self_attention.kv_heads);
  EXPECT_EQ(q.self_attention.head_dim, owl.self_attention.head_dim);
  EXPECT_NEAR(q.params, 7.62e9, 1e6);
}

TEST(Import, ListsWhatItAssumed) {
  std::string path = std::string(XRING_TEST_DATA) + "/hf/llama-3.2-11b-vision.json";
  ImportedModel m = import_hf_config(read_json_file(path), path, "x");
  bool tokens = false;
  for (const auto& a : m.assumed)
    tokens = tokens || a.find("tokens per image") != std::string::npos;
  EXPECT_TRUE(tokens);
}

TEST(Import, UnmappableConfigsNameTheField) {
  const std::string dir = std::string(XRING_TEST_DATA) + "/hf/";
  EXPECT_NE(error_of([&] {
              imported("unsupported.json");
            }).find("at \"model_type\": \"gpt_neox\" is not supported"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              imported("mllama-missing-field.json");
            }).find("at \"vision_config.patch_size\""),
            std::string::npos);
  json broken = read_json_file(dir + "llama-3-70b.json");
  broken["num_attention_heads"] = "64";
  EXPECT_NE(error_of([&] {
              import_hf_config(broken, "c.json", "x");
            }).find("c.json: at \"num_attention_heads\""),
            std::string::npos);
  EXPECT_EQ(format_count(70.55e9), "70.5B");
  EXPECT_EQ(format_count(895e6), "895M");
}

// Found by fuzz_hf_config (tests/fuzz/corpus/hf_config/): the importer wrote specs the model
// reader then refused (`import hf` exit 0, the next `plan` exit 2 blaming the written file).
TEST(Import, RefusesGeometriesTheModelReaderWouldRefuse) {
  const std::string dir = std::string(XRING_TEST_DATA) + "/hf/";
  json qwen = read_json_file(dir + "qwen2-7b.json");
  qwen["num_attention_heads"] = 29;  // kv heads 4
  EXPECT_NE(error_of([&] { import_hf_config(qwen, "c.json", "x"); })
                .find("c.json: at \"num_key_value_heads\": num_attention_heads (29) must be a "
                      "multiple of num_key_value_heads (4)"),
            std::string::npos);
  qwen["num_attention_heads"] = 28;
  qwen["hidden_size"] = 27;  // head_dim 27 / 28 = 0
  EXPECT_NE(error_of([&] { import_hf_config(qwen, "c.json", "x"); })
                .find("at \"hidden_size\": hidden_size / num_attention_heads = 0 is not a "
                      "head_dim between 1 and 1024"),
            std::string::npos);
  qwen["hidden_size"] = 3584;
  qwen["head_dim"] = 1025;
  EXPECT_NE(error_of([&] { import_hf_config(qwen, "c.json", "x"); })
                .find("at \"head_dim\""),
            std::string::npos);
  qwen["head_dim"] = 1024;  // the model reader's largest: imported and read back
  ImportedModel m = import_hf_config(qwen, "c.json", "x");
  EXPECT_EQ(model_from_json(m.spec, "c.json").self_attention.head_dim, 1024);

  json mllama = read_json_file(dir + "llama-3.2-11b-vision.json");
  mllama["vision_config"]["patch_size"] = 1;  // 560^2 + 1 tokens per tile, 4 tiles
  EXPECT_NE(error_of([&] { import_hf_config(mllama, "v.json", "x"); })
                .find("at \"vision_config.max_num_tiles\": max_num_tiles x ((image_size / "
                      "patch_size)^2 + 1) = 1254404 tokens per image, more than 1048576"),
            std::string::npos);
  // A cross-attention layer listed twice (found by the fuzz replay's seeded mutations).
  mllama = read_json_file(dir + "llama-3.2-11b-vision.json");
  mllama["text_config"]["cross_attention_layers"][1] =
      mllama["text_config"]["cross_attention_layers"][0];
  EXPECT_NE(error_of([&] { import_hf_config(mllama, "v.json", "x"); })
                .find("at \"text_config.cross_attention_layers[1]\": layer 3 is listed twice"),
            std::string::npos)
      << error_of([&] { import_hf_config(mllama, "v.json", "x"); });
}
