// Hugging Face config -> ModelSpec. Parameter counts are computed from the architecture.
#include "xring/planner/hf_import.hpp"

#include <cmath>
#include <cstdio>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

using nlohmann::json;

// Largest values read from a config, far above any released model, so that every product
// below stays exact in 64 bits (image_size 1e10 would overflow tokens per tile).
constexpr int64_t kMaxLayers = 100000;        // ModelSpec's own limit on layers
constexpr int64_t kMaxWidth = 1 << 20;        // ModelSpec's limit on hidden sizes and head_dim
constexpr int64_t kMaxVocab = 1 << 24;        // ModelSpec's limit on vocab_size
constexpr int64_t kMaxHeads = 4096;           // ModelSpec's limit on heads
constexpr int64_t kMaxHeadDim = 1024;         // ModelSpec's limit on head_dim
constexpr int64_t kMaxImagePixels = 1 << 16;  // image_size and patch_size, pixels per side
constexpr int64_t kMaxTiles = 1024;           // max_num_tiles, max_aspect_ratio_id

std::string dtype_of(ObjectReader& cfg, std::vector<std::string>& assumed) {
  std::string t;
  if (cfg.has("torch_dtype") && !cfg.raw("torch_dtype").is_null()) t = cfg.string("torch_dtype");
  if (t == "bfloat16") return "bf16";
  if (t == "float16") return "fp16";
  if (t == "float32") return "fp32";
  assumed.push_back("dtype bf16 (torch_dtype is \"" + quoted_excerpt(t) + "\")");
  return "bf16";
}

bool tied_embeddings(ObjectReader& cfg) {
  if (!cfg.has("tie_word_embeddings")) return false;
  const json& v = cfg.raw("tie_word_embeddings");
  if (!v.is_boolean())
    cfg.fail("tie_word_embeddings", "must be true or false, got " + describe_json_value(v));
  return v.get<bool>();
}

/// Decoder-only text model geometry shared by llama, mistral, qwen2 and mllama's text part.
struct Text {
  long long layers, hidden, heads, kv_heads, head_dim, mlp, vocab;
};

Text read_text(ObjectReader& cfg, std::vector<std::string>& assumed) {
  Text t;
  t.layers = cfg.integer("num_hidden_layers", 1, kMaxLayers);
  t.hidden = cfg.integer("hidden_size", 1, kMaxWidth);
  t.heads = cfg.integer("num_attention_heads", 1, kMaxHeads);
  if (cfg.has("num_key_value_heads")) {
    t.kv_heads = cfg.integer("num_key_value_heads", 1, kMaxHeads);
  } else {
    t.kv_heads = t.heads;
    assumed.push_back("kv heads = attention heads (" + cfg.path_of("num_key_value_heads") +
                      " is absent: no GQA)");
  }
  // What the model reader requires of the spec written (found by fuzz_hf_config).
  if (t.heads % t.kv_heads != 0)
    cfg.fail("num_key_value_heads", "num_attention_heads (" + std::to_string(t.heads) +
                                        ") must be a multiple of num_key_value_heads (" +
                                        std::to_string(t.kv_heads) + ") for grouped-query attention");
  if (cfg.has("head_dim") && !cfg.raw("head_dim").is_null()) {
    t.head_dim = cfg.integer("head_dim", 1, kMaxHeadDim);
  } else {
    t.head_dim = t.hidden / t.heads;
    if (t.head_dim < 1 || t.head_dim > kMaxHeadDim)
      cfg.fail("hidden_size", "hidden_size / num_attention_heads = " + std::to_string(t.head_dim) +
                                  " is not a head_dim between 1 and " +
                                  std::to_string(kMaxHeadDim) + "; give head_dim");
    assumed.push_back("head_dim = hidden_size / num_attention_heads = " +
                      std::to_string(t.head_dim));
  }
  t.mlp = cfg.integer("intermediate_size", 1, kMaxWidth);
  t.vocab = cfg.integer("vocab_size", 1, kMaxVocab);
  return t;
}

/// Attention (q, k, v, o) and gated MLP weights of one layer.
double layer_params(const Text& t) {
  double attention = static_cast<double>(t.hidden) * t.head_dim * (2 * t.heads + 2 * t.kv_heads);
  return attention + 3.0 * t.hidden * t.mlp + 2.0 * t.hidden;  // + two norms
}

/// The spec fields a text geometry fills, shared by every family.
void write_geometry(json& spec, const Text& t) {
  spec["layers"] = t.layers;
  spec["hidden_size"] = t.hidden;
  spec["heads"] = t.heads;
  spec["kv_heads"] = t.kv_heads;
  spec["head_dim"] = t.head_dim;
  spec["mlp_size"] = t.mlp;
  spec["vocab_size"] = t.vocab;
}

}  // namespace

std::string format_count(double n) {
  const char* suffix = n >= 1e9 ? "B" : n >= 1e6 ? "M" : n >= 1e3 ? "K" : "";
  double scaled = n >= 1e9 ? n / 1e9 : n >= 1e6 ? n / 1e6 : n >= 1e3 ? n / 1e3 : n;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g%s", scaled, suffix);
  return buf;
}

ImportedModel import_hf_config(const json& config, const std::string& origin,
                               const std::string& name) {
  if (!config.is_object()) throw Error(origin + ": a Hugging Face config must be a JSON object");
  // Through the validated reader; HF configs hold many fields xring does not read, so unknown
  // keys are allowed (no finish()).
  ObjectReader top(config, origin, "");
  if (!config.contains("model_type") || !config["model_type"].is_string())
    throw Error(origin + ": at \"model_type\": required (one of mllama, llama, mistral, qwen2)");
  const std::string type = quoted_excerpt(config["model_type"].get<std::string>());
  ImportedModel out;
  auto& assumed = out.assumed;
  json& spec = out.spec;
  spec["name"] = name;
  spec["source"] = "imported by xring import hf from " + origin + " (model_type " + type + ")";
  spec["dtype"] = dtype_of(top, assumed);

  if (type == "llama" || type == "mistral" || type == "qwen2") {
    Text t = read_text(top, assumed);
    const bool tied = tied_embeddings(top);
    double params = t.layers * layer_params(t) +
                    static_cast<double>(t.vocab) * t.hidden * (tied ? 1 : 2) + t.hidden;
    if (type == "qwen2")
      params +=
          t.layers * static_cast<double>(t.head_dim) * (t.heads + 2 * t.kv_heads);  // qkv bias
    write_geometry(spec, t);
    spec["cross_attention_layers"] = json::array();
    spec["params"] = format_count(params);
    assumed.push_back("params " + format_count(params) +
                      " counted from the architecture (gated MLP, " +
                      std::string(tied ? "tied" : "untied") + " embeddings)");
    return out;
  }
  if (type == "mllama") {
    ObjectReader tc = top.object("text_config");
    ObjectReader vc = top.object("vision_config");
    Text t = read_text(tc, assumed);
    const json cross = tc.integer_list("cross_attention_layers", 0, t.layers - 1);
    for (size_t i = 0; i < cross.size(); ++i)  // the model reader refuses repeats too
      for (size_t j = 0; j < i; ++j)
        if (cross[i] == cross[j])
          tc.fail("cross_attention_layers[" + std::to_string(i) + "]",
                  "layer " + cross[i].dump() + " is listed twice");
    const long long image = vc.integer("image_size", 1, kMaxImagePixels);
    const long long patch = vc.integer("patch_size", 1, image);
    const long long tiles = vc.integer("max_num_tiles", 1, kMaxTiles);
    const long long width = vc.integer("hidden_size", 1, kMaxWidth);
    const long long local_layers = vc.integer("num_hidden_layers", 1, kMaxLayers);
    const long long global_layers = vc.integer("num_global_layers", 1, kMaxLayers);
    const long long vision_mlp = vc.integer("intermediate_size", 1, kMaxWidth);
    const long long output_dim = vc.integer("vision_output_dim", 1, kMaxWidth);
    const long long per_tile = (image / patch) * (image / patch) + 1;
    const long long tokens = tiles * per_tile;
    if (tokens > kMaxWidth)  // the model reader's limit on tokens_per_frame
      vc.fail("max_num_tiles", "max_num_tiles x ((image_size / patch_size)^2 + 1) = " +
                                   std::to_string(tokens) + " tokens per image, more than " +
                                   std::to_string(kMaxWidth));
    // Text: self-attention layers, cross-attention layers (same shapes plus q/k norms and two
    // gates), embeddings with 8 extra rows, untied LM head.
    const double cross_layers = static_cast<double>(cross.size());
    double text = (t.layers - cross_layers) * layer_params(t) +
                  cross_layers * (layer_params(t) + 2.0 * t.head_dim + 2) +
                  static_cast<double>(t.vocab + 8) * t.hidden +
                  static_cast<double>(t.vocab) * t.hidden + t.hidden;
    // Vision: patch embedding, class and positional embeddings (incl. the tile table), the
    // local and global encoder layers (with biases), and the projector to the text width.
    const long long aspect_ratios =
        vc.optional_integer("max_aspect_ratio_id", 0, kMaxTiles).value_or(8) + 1;
    double vision_layer = 4.0 * width * width + 4.0 * width + 2.0 * width * vision_mlp +
                          vision_mlp + width + 4.0 * width;
    double vision = 3.0 * patch * patch * width + width +
                    per_tile * width * (1.0 + aspect_ratios * tiles) +
                    (local_layers + global_layers) * vision_layer + global_layers * 2.0 +
                    2.0 * aspect_ratios * tiles * width + 4.0 * width +
                    static_cast<double>(output_dim) * t.hidden + t.hidden;
    write_geometry(spec, t);
    spec["cross_attention_layers"] = cross;
    spec["cross_attention_kind"] = "separate";
    spec["params"] = format_count(text);
    spec["tokens_per_frame"] = tokens;
    spec["visual_hidden_size"] = t.hidden;
    spec["vision_encoder"] = {{"params", format_count(vision)}, {"tokens_per_frame", tokens}};
    assumed.push_back("tokens per image = max_num_tiles x ((image_size / patch_size)^2 + 1) = " +
                      std::to_string(tiles) + " x " + std::to_string(per_tile) + " = " +
                      std::to_string(tokens) + " (every image padded to the maximum tiles)");
    assumed.push_back("visual tokens reach cross-attention at the text width (" +
                      std::to_string(t.hidden) + ", after the " + std::to_string(output_dim) +
                      " -> " + std::to_string(t.hidden) + " projector)");
    assumed.push_back(
        "cross-attention layers replace self-attention (separate) with the text geometry");
    assumed.push_back("params " + format_count(text) + " (text) and " + format_count(vision) +
                      " (vision + projector) counted from the architecture");
    return out;
  }
  // Self-attention VLMs (LLaVA, Qwen2-VL) put visual tokens in the text sequence: no
  // cross-attention layer for xring to plan, but their language model can still be imported.
  const bool self_attention_vlm = type == "llava" || type == "llava_next" || type == "qwen2_vl" ||
                                  type == "qwen2_5_vl" || type == "llava_onevision";
  throw Error(origin + ": at \"model_type\": \"" + type + "\" is not supported; supported: mllama, " +
              "llama, mistral, qwen2" +
              (self_attention_vlm
                   ? std::string(". This model feeds image tokens into self-attention, so it has "
                                 "no cross-attention layer to plan; to size its language model, "
                                 "import its text_config: save that object as a config.json (it "
                                 "has model_type llama or qwen2) and import it")
                   : std::string("; for another architecture write a ModelSpec by hand "
                                 "(xring show model tiny > my-model.json is a start)")));
}

}  // namespace xring
