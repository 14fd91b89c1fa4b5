// Replays the seed corpus (every JSON file in profiles/ and tests/) and a fixed number of seeded
// mutations of each through every parser entry point: each must accept the document or throw
// xring::Error (exit 2); any other exception would be an "internal error" and a crash fails the
// test binary. Deterministic: the mutations come from a fixed seed (issue 16).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "xring/planner/device_profile.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/heads.hpp"
#include "xring/planner/hf_import.hpp"
#include "xring/planner/inputs.hpp"
#include "xring/planner/json_reader.hpp"
#include "xring/planner/planner.hpp"
#include "xring/planner/specs.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace xring;

namespace {

constexpr int kMutationsPerSeed = 150;
constexpr uint32_t kSeed = 16;

std::vector<fs::path> seed_corpus() {
  const fs::path data = XRING_TEST_DATA;
  std::vector<fs::path> files;
  for (const fs::path& root : {data.parent_path().parent_path() / "profiles", data.parent_path()})
    for (const auto& e : fs::recursive_directory_iterator(root))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Values that broke parsers before: wrapping integers, non-finite and huge numbers, wrong
/// types, deep nesting, long strings.
const std::vector<std::string>& hostile_tokens() {
  static const std::vector<std::string> tokens = {"4294967296",
                                                  "4294967295",
                                                  "2147483647",
                                                  "-2147483649",
                                                  "18446744073709551615",
                                                  "9223372036854775807",
                                                  "-1",
                                                  "0",
                                                  "1e8",
                                                  "1e400",
                                                  "-1e400",
                                                  "1e308",
                                                  "0.5",
                                                  "null",
                                                  "true",
                                                  "\"\"",
                                                  "\"1e300PFLOP/s\"",
                                                  "[]",
                                                  "{}",
                                                  std::string(100, '[') + std::string(100, ']'),
                                                  "\"" + std::string(5000, 'x') + "\"",
                                                  "[1,2,3]",
                                                  "{\"a\":{\"b\":1}}"};
  return tokens;
}

/// One seeded mutation of `text`: a byte edit, a token spliced in at a value position, or a
/// range deleted or duplicated.
std::string mutate(const std::string& text, std::mt19937& rng) {
  if (text.empty()) return hostile_tokens()[rng() % hostile_tokens().size()];
  std::string out = text;
  const size_t at = rng() % out.size();
  switch (rng() % 5) {
    case 0:
      out[at] = static_cast<char>(rng() % 256);
      break;
    case 1: {  // replace the value after a ':' with a hostile token
      size_t colon = out.find(':', at);
      if (colon == std::string::npos) colon = out.find(':');
      if (colon == std::string::npos) break;
      size_t end = out.find_first_of(",}]", colon + 1);
      if (end == std::string::npos) end = out.size();
      out.replace(colon + 1, end - colon - 1, hostile_tokens()[rng() % hostile_tokens().size()]);
      break;
    }
    case 2:
      out.insert(at, hostile_tokens()[rng() % hostile_tokens().size()]);
      break;
    case 3:
      out.erase(at, 1 + rng() % 16);
      break;
    default: {
      const size_t n = std::min<size_t>(1 + rng() % 64, out.size() - at);
      out.insert(at, out.substr(at, n));
      break;
    }
  }
  return out;
}

/// Every parser entry point the binary uses, on one parsed document.
void parse_with_every_reader(const json& j, const std::string& origin) {
  const std::vector<std::function<void()>> readers = {
      [&] { model_from_json(j, origin); },
      [&] { cluster_from_json(j, origin); },
      [&] { workload_from_json(j, origin); },
      [&] { gpu_from_json(j, origin); },
      [&] { device_profile_from_json(j, origin); },
      [&] { head_profile_from_json(j, origin); },
      [&] { head_profile_from_scores(j, origin, 32); },
      [&] { import_hf_config(j, origin, "fuzz"); },
      [&] { gate::read_document(j, origin); },
      [&] { gate::read_rules(j, origin); },
      [&] {
        Plan p = plan_from_json(j, origin);
        check_plan_against_inputs(p, plan_inputs(p, origin), origin);
      },
  };
  for (size_t r = 0; r < readers.size(); ++r) {
    try {
      readers[r]();
    } catch (const xring::Error&) {
      // bad input, reported with file and field: what a mutation should get
    } catch (const std::exception& e) {
      ADD_FAILURE() << origin << ": reader " << r << " threw a non-xring exception: " << e.what();
    }
  }
}

void replay(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = parse_json_text(text, origin);
  } catch (const xring::Error&) {
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << origin << ": the parser threw a non-xring exception: " << e.what();
    return;
  }
  parse_with_every_reader(j, origin);
}

}  // namespace

TEST(FuzzReplay, SeedCorpusAndSeededMutationsNeverEscapeAsAnythingButBadInput) {
  const std::vector<fs::path> corpus = seed_corpus();
  ASSERT_GE(corpus.size(), 50u);
  std::mt19937 rng(kSeed);
  size_t cases = 0;
  for (const auto& file : corpus) {
    const std::string text = read_text(file);
    replay(text, file.string());
    ++cases;
    for (int m = 0; m < kMutationsPerSeed; ++m, ++cases)
      replay(mutate(text, rng), file.string() + " (mutation " + std::to_string(m) + ")");
  }
  EXPECT_EQ(cases, corpus.size() * (1 + kMutationsPerSeed));
}

TEST(FuzzReplay, OverridesAndVaryValuesNeverEscapeAsAnythingButBadInput) {
  std::mt19937 rng(kSeed);
  const std::vector<std::string> fields = {"model.layers", "workload.frames",
                                           "cluster.gpu.peak_bf16", "model.a.b.c"};
  for (const auto& field : fields)
    for (const auto& token : hostile_tokens()) {
      const std::string text = field + "=" + mutate(token, rng);
      try {
        SpecJson model = load_spec_json(SpecKind::model, "tiny");
        SpecJson cluster = load_spec_json(SpecKind::cluster, "h100-sxm-8");
        SpecJson workload = load_spec_json(SpecKind::workload, "video-qa");
        const std::vector<Override> overrides = {parse_override(text)};
        apply_overrides(model, SpecKind::model, overrides);
        apply_overrides(cluster, SpecKind::cluster, overrides);
        apply_overrides(workload, SpecKind::workload, overrides);
        inputs_from_json(model, cluster, workload, {text});
      } catch (const xring::Error&) {
      } catch (const std::exception& e) {
        ADD_FAILURE() << "--set " << text.substr(0, 80) << ": " << e.what();
      }
    }
}
