// `xring import hf`: a Hugging Face config.json turned into a ModelSpec (mllama, llama,
// mistral, qwen2), with the assumptions the mapping had to make.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace xring {

struct ImportedModel {
  nlohmann::json spec;               ///< a ModelSpec, valid for model_from_json
  std::vector<std::string> assumed;  ///< what the config did not say and we filled in
};

/// Maps a Hugging Face config. `name` becomes the spec's name. Throws xring::Error naming
/// `origin` and the field for anything it cannot map (unknown model_type, missing fields).
ImportedModel import_hf_config(const nlohmann::json& config, const std::string& origin,
                               const std::string& name);

/// A parameter count as the specs write it: 3 significant digits with a K/M/B suffix.
std::string format_count(double n);

}  // namespace xring
