// `xring import hf`: a Hugging Face config.json to a ModelSpec.
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "verbosity.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/hf_import.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::cli {

void attach_import(CLI::App& sub, int& exit_code) {
  sub.require_subcommand(1);
  struct Options {
    std::string config, output, name;
  };
  auto o = std::make_shared<Options>();
  sub.footer(
      "Examples:\n"
      "  xring import hf config.json -o my-model.json && xring plan --model my-model.json\n"
      "  xring import hf config.json --name my-vlm -o my-vlm.json\n"
      "Exit codes: 0 imported, 2 bad input (an unsupported model_type says which are).");
  CLI::App* hf =
      sub.add_subcommand("hf", "A Hugging Face config.json (mllama, llama, mistral, qwen2)");
  hf->add_option("config", o->config, "The model's config.json")->required();
  hf->add_option("-o,--output", o->output, "Write the ModelSpec here (default: stdout)")
      ->check(output_file());
  hf->add_option("--name", o->name,
                 "The spec's name (default: the config's _name_or_path, lowercased, without its "
                 "organisation; else the file's stem)");
  hf->footer(
      "What the config does not say is assumed and listed on stderr (e.g. tokens per image).\n"
      "Example:\n  xring import hf config.json -o my-model.json && xring plan --model "
      "my-model.json");
  hf->callback([o, &exit_code] {
    refuse_shared_paths({{"-o", o->output}}, {{"the config", o->config}});
    const nlohmann::json config = read_json_file(o->config);
    std::string name = o->name;
    if (name.empty() && config.is_object() && config.value("_name_or_path", json()).is_string()) {
      std::string id = config["_name_or_path"].get<std::string>();  // "meta-llama/Llama-3.2-11B"
      id = id.substr(id.find_last_of('/') == std::string::npos ? 0 : id.find_last_of('/') + 1);
      for (auto& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      name = id;
    }
    if (name.empty()) name = std::filesystem::path(o->config).stem().string();
    ImportedModel m = import_hf_config(config, o->config, name);
    model_from_json(m.spec, o->config + " (imported)");  // the result must be a valid spec
    std::string text = m.spec.dump(2) + "\n";
    for (const auto& a : m.assumed) notice("xring import: assumed " + a);
    if (o->output.empty())
      std::fputs(text.c_str(), stdout);
    else
      write_file_atomically(o->output, text);
    exit_code = 0;
  });
}

}  // namespace xring::cli
