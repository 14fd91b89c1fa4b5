// Hugging Face config -> ModelSpec. Parameter counts are computed from the architecture.
#include "xring/planner/hf_import.hpp"

#include <cmath>
#include <cstdio>

#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring {
namespace {

using nlohmann::json;

/// A whole-number field of `cfg`, named by its path in the config for errors.
long long count(const json& cfg, const std::string& key, const std::string& origin,
                const std::string& path) {
  if (!cfg.contains(key))
    throw Error(origin + ": at \"" + path + key + "\": required to build a ModelSpec but missing");
  const json& v = cfg[key];
  if (!v.is_number_integer() || v.get<long long>() <= 0)
    throw Error(origin + ": at \"" + path + key + "\": must be a positive whole number, got " +
                v.dump());
  return v.get<long long>();
}

std::string dtype_of(const json& cfg, std::vector<std::string>& assumed) {
  std::string t = cfg.value("torch_dtype", "");
  if (t == "bfloat16") return "bf16";
  if (t == "float16") return "fp16";
  if (t == "float32") return "fp32";
  assumed.push_back("dtype bf16 (torch_dtype is \"" + t + "\")");
  return "bf16";
}

/// Decoder-only text model geometry shared by llama, mistral, qwen2 and mllama's text part.
struct Text {
  long long layers, hidden, heads, kv_heads, head_dim, mlp, vocab;
};

Text read_text(const json& cfg, const std::string& origin, const std::string& path,
               std::vector<std::string>& assumed) {
  Text t;
  t.layers = count(cfg, "num_hidden_layers", origin, path);
  t.hidden = count(cfg, "hidden_size", origin, path);
  t.heads = count(cfg, "num_attention_heads", origin, path);
  if (cfg.contains("num_key_value_heads")) {
    t.kv_heads = count(cfg, "num_key_value_heads", origin, path);
  } else {
    t.kv_heads = t.heads;
    assumed.push_back("kv heads = attention heads (" + path +
                      "num_key_value_heads is absent: no GQA)");
  }
  if (cfg.contains("head_dim") && !cfg["head_dim"].is_null()) {
    t.head_dim = count(cfg, "head_dim", origin, path);
  } else {
    t.head_dim = t.hidden / t.heads;
    assumed.push_back("head_dim = hidden_size / num_attention_heads = " +
                      std::to_string(t.head_dim));
  }
  t.mlp = count(cfg, "intermediate_size", origin, path);
  t.vocab = count(cfg, "vocab_size", origin, path);
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
  if (!config.contains("model_type") || !config["model_type"].is_string())
    throw Error(origin + ": at \"model_type\": required (one of mllama, llama, mistral, qwen2)");
  const std::string type = config["model_type"].get<std::string>();
  ImportedModel out;
  auto& assumed = out.assumed;
  json& spec = out.spec;
  spec["name"] = name;
  spec["source"] = "imported by xring import hf from " + origin + " (model_type " + type + ")";
  spec["dtype"] = dtype_of(config, assumed);

  if (type == "llama" || type == "mistral" || type == "qwen2") {
    Text t = read_text(config, origin, "", assumed);
    const bool tied = config.value("tie_word_embeddings", false);
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
    if (!config.contains("text_config") || !config["text_config"].is_object())
      throw Error(origin + ": at \"text_config\": required for mllama");
    if (!config.contains("vision_config") || !config["vision_config"].is_object())
      throw Error(origin + ": at \"vision_config\": required for mllama");
    const json& tc = config["text_config"];
    const json& vc = config["vision_config"];
    Text t = read_text(tc, origin, "text_config.", assumed);
    if (!tc.contains("cross_attention_layers") || !tc["cross_attention_layers"].is_array())
      throw Error(origin +
                  ": at \"text_config.cross_attention_layers\": required (the cross-attention "
                  "layer indices)");
    json cross = tc["cross_attention_layers"];
    for (size_t i = 0; i < cross.size(); ++i)
      if (!cross[i].is_number_integer() || cross[i].get<long long>() < 0 ||
          cross[i].get<long long>() >= t.layers)
        throw Error(origin + ": at \"text_config.cross_attention_layers[" + std::to_string(i) +
                    "]\": must be a layer index below num_hidden_layers");
    const long long image = count(vc, "image_size", origin, "vision_config.");
    const long long patch = count(vc, "patch_size", origin, "vision_config.");
    const long long tiles = count(vc, "max_num_tiles", origin, "vision_config.");
    const long long width = count(vc, "hidden_size", origin, "vision_config.");
    const long long local_layers = count(vc, "num_hidden_layers", origin, "vision_config.");
    const long long global_layers = count(vc, "num_global_layers", origin, "vision_config.");
    const long long vision_mlp = count(vc, "intermediate_size", origin, "vision_config.");
    const long long output_dim = count(vc, "vision_output_dim", origin, "vision_config.");
    const long long per_tile = (image / patch) * (image / patch) + 1;
    const long long tokens = tiles * per_tile;
    // Text: self-attention layers, cross-attention layers (same shapes plus q/k norms and two
    // gates), embeddings with 8 extra rows, untied LM head.
    const double cross_layers = static_cast<double>(cross.size());
    double text = (t.layers - cross_layers) * layer_params(t) +
                  cross_layers * (layer_params(t) + 2.0 * t.head_dim + 2) +
                  static_cast<double>(t.vocab + 8) * t.hidden +
                  static_cast<double>(t.vocab) * t.hidden + t.hidden;
    // Vision: patch embedding, class and positional embeddings (incl. the tile table), the
    // local and global encoder layers (with biases), and the projector to the text width.
    const long long aspect_ratios = vc.value("max_aspect_ratio_id", 8LL) + 1;
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
  throw Error(origin + ": at \"model_type\": \"" + type +
              "\" is not supported; supported: mllama, llama, mistral, qwen2");
}

}  // namespace xring
