// Replays the seed corpus (every JSON file in profiles/ and tests/) and a fixed number of seeded
// mutations of each through the parser entry points the libFuzzer targets call
// (tests/fuzz/fuzz_entry_points.hpp): each must accept the input or throw xring::Error (exit 2);
// any other exception would be an "internal error" and a crash fails the test binary.
// Deterministic: the mutations come from a fixed seed (issue 16). No clang needed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz_entry_points.hpp"
#include "xring/planner/error.hpp"
#include "xring/planner/json_reader.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace xring;

namespace {

constexpr int kMutationsPerSeed = 150;
constexpr uint32_t kSeed = 16;
/// Mutations of each seed per fuzz target (the cross-reader replay above has its own count).
constexpr int kMutationsPerTargetSeed = 100;

fs::path source_root() { return fs::path(XRING_TEST_DATA).parent_path().parent_path(); }

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

/// Feeds one input to one entry point; anything but acceptance or xring::Error is a finding.
std::optional<fuzz::FuzzOutcome> replay_one(fuzz::FuzzTarget t, const std::string& text,
                                            const std::string& origin) {
  try {
    return fuzz::fuzz_one_input(t, text);
  } catch (const std::exception& e) {
    ADD_FAILURE() << origin << ": fuzz_" << fuzz::to_string(t)
                  << " threw a non-xring exception: " << e.what();
    return std::nullopt;
  }
}

/// Every JSON reader on one document: a file of one kind must not break a reader of another.
void parse_with_every_reader(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = parse_json_text(text, origin);
  } catch (const xring::Error&) {
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << origin << ": the parser threw a non-xring exception: " << e.what();
    return;
  }
  for (fuzz::FuzzTarget t : fuzz::all_fuzz_targets()) {
    if (t == fuzz::FuzzTarget::set_override) continue;
    try {
      fuzz::fuzz_one_document(t, j, origin);
    } catch (const std::exception& e) {
      ADD_FAILURE() << origin << ": reader " << fuzz::to_string(t)
                    << " threw a non-xring exception: " << e.what();
    }
  }
}

struct Seed {
  fs::path file;
  bool from_bad_inputs = false;  ///< tests/data/bad: must be refused
};

/// A target's seeds as tests/fuzz/seeds.txt names them (the libFuzzer binaries get the same
/// folders from tests/fuzz/CMakeLists.txt), plus every file in tests/fuzz/corpus/<target>.
std::vector<Seed> seeds_of(fuzz::FuzzTarget t) {
  const fs::path root = source_root();
  std::vector<Seed> seeds;
  std::ifstream table(root / "tests/fuzz/seeds.txt");
  for (std::string line; std::getline(table, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string target, folder, prefix;
    fields >> target >> folder >> prefix;
    if (target != fuzz::to_string(t)) continue;
    for (const auto& e : fs::directory_iterator(root / folder)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file() && e.path().extension() == ".json" && name.starts_with(prefix))
        seeds.push_back({e.path(), folder == "tests/data/bad"});
    }
  }
  const fs::path committed = root / "tests/fuzz/corpus" / fuzz::to_string(t);
  if (fs::is_directory(committed))
    for (const auto& e : fs::directory_iterator(committed))
      if (e.is_regular_file()) seeds.push_back({e.path(), false});
  std::sort(seeds.begin(), seeds.end(),
            [](const Seed& a, const Seed& b) { return a.file < b.file; });
  return seeds;
}

/// Field names of a JSON document, recursively.
void collect_keys(const json& j, std::set<std::string>& keys) {
  if (j.is_object())
    for (const auto& [k, v] : j.items()) {
      keys.insert(k);
      collect_keys(v, keys);
    }
  else if (j.is_array())
    for (const auto& v : j) collect_keys(v, keys);
}

}  // namespace

TEST(FuzzReplay, SeedCorpusAndSeededMutationsNeverEscapeAsAnythingButBadInput) {
  const std::vector<fs::path> corpus = seed_corpus();
  ASSERT_GE(corpus.size(), 50u);
  std::mt19937 rng(kSeed);
  size_t cases = 0;
  for (const auto& file : corpus) {
    const std::string text = read_text(file);
    parse_with_every_reader(text, file.string());
    ++cases;
    for (int m = 0; m < kMutationsPerSeed; ++m, ++cases)
      parse_with_every_reader(mutate(text, rng),
                              file.string() + " (mutation " + std::to_string(m) + ")");
  }
  EXPECT_EQ(cases, corpus.size() * (1 + kMutationsPerSeed));
}

TEST(FuzzReplay, OverridesAndVaryValuesNeverEscapeAsAnythingButBadInput) {
  std::mt19937 rng(kSeed);
  const std::vector<std::string> fields = {"model.layers", "workload.frames",
                                           "cluster.gpu.peak_bf16", "model.a.b.c"};
  size_t refused = 0;
  for (const auto& field : fields)
    for (const auto& token : hostile_tokens()) {
      const std::string text = field + "=" + mutate(token, rng);
      auto outcome = replay_one(fuzz::FuzzTarget::set_override, text, "--set " + text.substr(0, 80));
      refused += outcome == fuzz::FuzzOutcome::bad_input;
    }
  // model.a.b.c names no field: all of its 23 values are refused, whatever else is.
  EXPECT_GE(refused, hostile_tokens().size());
}

/// Each libFuzzer target's own seeds and seeded mutations through the very entry point its
/// binary calls: valid seeds are accepted (the target reaches its parser's end), the files of
/// tests/data/bad are refused, and no mutation escapes as anything but bad input.
TEST(FuzzReplay, EveryFuzzTargetReplaysItsSeedsAndSeededMutations) {
  std::mt19937 rng(kSeed + 1);
  for (fuzz::FuzzTarget t : fuzz::all_fuzz_targets()) {
    const std::vector<Seed> seeds = seeds_of(t);
    ASSERT_FALSE(seeds.empty()) << fuzz::to_string(t) << " has no seed";
    size_t accepted = 0;
    for (const Seed& seed : seeds) {
      const std::string text = read_text(seed.file);
      auto outcome = replay_one(t, text, seed.file.string());
      if (seed.from_bad_inputs) {
        EXPECT_EQ(outcome, fuzz::FuzzOutcome::bad_input) << fuzz::to_string(t) << ": " << seed.file;
      }
      accepted += outcome == fuzz::FuzzOutcome::accepted;
      for (int m = 0; m < kMutationsPerTargetSeed; ++m)
        replay_one(t, mutate(text, rng),
                   seed.file.string() + " (mutation " + std::to_string(m) + ")");
    }
    EXPECT_GT(accepted, 0u) << fuzz::to_string(t) << ": no seed reaches the parser's end";
  }
}

TEST(FuzzReplay, ValidProfilesAndBaselinesAreAcceptedByTheirTarget) {
  using fuzz::FuzzTarget;
  const fs::path root = source_root();
  const std::vector<std::pair<FuzzTarget, fs::path>> valid = {
      {FuzzTarget::model, "profiles/models"},     {FuzzTarget::cluster, "profiles/clusters"},
      {FuzzTarget::workload, "profiles/workloads"}, {FuzzTarget::plan, "tests/baselines"},
      {FuzzTarget::head_profile, "profiles/heads"}, {FuzzTarget::device_profile, "tests/data/devices"},
  };
  for (const auto& [t, folder] : valid)
    for (const auto& e : fs::directory_iterator(root / folder))
      if (e.path().extension() == ".json") {
        EXPECT_EQ(replay_one(t, read_text(e.path()), e.path().string()),
                  fuzz::FuzzOutcome::accepted)
            << fuzz::to_string(t) << ": " << e.path();
      }
}

TEST(FuzzReplay, DictionaryNamesEveryFieldOfTheSeedCorpus) {
  std::ifstream dict_file(source_root() / "tests/fuzz/xring.dict");
  ASSERT_TRUE(dict_file) << "tests/fuzz/xring.dict is missing";
  std::set<std::string> dict;
  for (std::string line; std::getline(dict_file, line);) dict.insert(line);
  for (fuzz::FuzzTarget t : fuzz::all_fuzz_targets())
    for (const Seed& seed : seeds_of(t)) {
      std::set<std::string> keys;
      try {
        collect_keys(parse_json_text(read_text(seed.file), seed.file.string()), keys);
      } catch (const xring::Error&) {
        continue;  // a known-bad file that is not JSON
      }
      for (const std::string& k : keys)
        EXPECT_TRUE(dict.count("\"\\\"" + k + "\\\"\""))
            << "\"" << k << "\" of " << seed.file << " is not in tests/fuzz/xring.dict: run "
            << "tests/fuzz/make-dict.sh";
    }
}
