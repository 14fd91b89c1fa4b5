// `xring heads`: make head-importance profiles, synthetic or from measured scores.
#include <fmt/core.h>

#include "commands.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/heads.hpp"
#include "xring/planner/json_reader.hpp"

namespace xring::cli {

namespace {

/// The model `heads build` checks the scores against: --model when given, else the built-in
/// the scores' `model` names. Either way its name must be the scores' `model` (the profile's
/// `model`, which planning requires to be the planned model's name).
ModelSpec scores_model(const std::string& scores, const std::string& named,
                       const std::string& flag) {
  SpecJson j;
  try {
    j = load_spec_json(SpecKind::model, flag.empty() ? named : flag);
  } catch (const Error& e) {
    if (!flag.empty()) throw;
    throw Error(scores + ": at \"model\": " + e.what() +
                "; pass --model FILE for a model that is not built in");
  }
  ModelSpec model = model_from_json(j.value, j.origin);
  if (model.name != named)
    throw Error(scores + ": at \"model\": names " + quoted_excerpt(named) + " but " +
                (flag.empty() ? j.origin : "--model " + flag) + " is model " + model.name +
                "; a profile belongs to the model it names");
  return model;
}

}  // namespace

void attach_heads(CLI::App& sub, int& exit_code) {
  sub.require_subcommand(1);
  sub.footer(
      "Profiles feed the adaptive kv_policy (workload field head_profile; default: the model's "
      "name).\n"
      "Examples:\n"
      "  xring heads synth --model llama-3-70b --sigma 1.0 --seed 70 -o "
      "profiles/heads/llama-3-70b.json\n"
      "  xring heads build scores.json -o my-model.json   # then --set "
      "workload.head_profile=my-model.json");

  struct Synth {
    std::string model = "llama-3-70b";
    double sigma = 1.0;
    uint64_t seed = 1;
    std::string output;
  };
  auto synth = std::make_shared<Synth>();
  CLI::App* s = sub.add_subcommand("synth", "A synthetic profile with lognormal head skew");
  s->add_option("-m,--model", synth->model, "Built-in model name or a ModelSpec .json file")
      ->capture_default_str();
  s->add_option("--sigma", synth->sigma, "Skew: shares = softmax(sigma * z), z ~ N(0,1)")
      ->capture_default_str()
      ->check(finite_in(0.0, 10.0));
  s->add_option("--seed", synth->seed, "Random seed")->capture_default_str();
  s->add_option("-o,--output", synth->output, "Write the profile here instead of stdout")
      ->check(output_file());
  s->callback([synth, &exit_code] {
    refuse_shared_paths({{"-o", synth->output}}, {{"--model", synth->model}});
    SpecJson j = load_spec_json(SpecKind::model, synth->model);
    HeadProfile p =
        synthetic_head_profile(model_from_json(j.value, j.origin), synth->sigma, synth->seed);
    json out = to_json(p);
    out["skew_model"] = "lognormal: sigma " + fmt::format("{:g}", synth->sigma) + ", seed " +
                        std::to_string(synth->seed);
    std::string text = to_text(out);
    if (synth->output.empty())
      std::fputs(text.c_str(), stdout);
    else
      write_file_atomically(synth->output, text);
    exit_code = 0;
  });

  struct Build {
    std::string scores;
    std::string model;  ///< empty: the scores' own `model`
    int bins = 32;
    std::string output;
  };
  auto build = std::make_shared<Build>();
  CLI::App* b =
      sub.add_subcommand("build", "A histogram profile from measured per-token head scores");
  b->add_option(
       "scores", build->scores,
       "JSON {\"model\", \"source\", \"scores\": [layer][kv head][token]} (positive scores)")
      ->required();
  b->add_option("-m,--model", build->model,
                "Built-in model name or ModelSpec .json file the scores were measured on "
                "(default: the scores' \"model\"); they must hold one row per self-attention "
                "layer and one entry per kv head of it");
  b->add_option("--bins", build->bins, "Log-spaced score bins")->capture_default_str();
  b->add_option("-o,--output", build->output, "Write the profile here instead of stdout")
      ->check(output_file());
  b->callback([build, &exit_code] {
    refuse_shared_paths({{"-o", build->output}},
                        {{"the scores", build->scores}, {"--model", build->model}});
    HeadProfile p =
        head_profile_from_scores(read_json_file(build->scores), build->scores, build->bins);
    require_model_shape(p, scores_model(build->scores, p.model, build->model), build->scores,
                        "scores");
    std::string text = to_text(to_json(p));
    if (build->output.empty())
      std::fputs(text.c_str(), stdout);
    else
      write_file_atomically(build->output, text);
    exit_code = 0;
  });
}

}  // namespace xring::cli
