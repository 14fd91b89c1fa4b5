// Capacity search: pruning never changes the answer (against exhaustive search), every
// recommendation is feasible and meets the requirements, and a miss names the closest shape.
#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "test_util.hpp"
#include "xring/planner/gate.hpp"
#include "xring/planner/recommend.hpp"

using namespace xring;
using xring::test::error_of;

namespace {

RecommendRequest small_space(const std::string& model, const std::string& workload) {
  RecommendRequest r;
  r.model = model;
  r.workload = workload;
  r.gpus = {"h100-sxm", "a100-80gb", "a30"};
  r.max_gpus = 16;
  r.gpus_per_node = {1, 2, 4, 8};
  r.threads = 2;
  return r;
}

}  // namespace

TEST(Recommend, PruningFindsWhatExhaustiveSearchFinds) {
  for (const char* model : {"mplug-owl3-7b", "llama-3.2-11b-vision"}) {
    for (Objective objective :
         {Objective::min_gpus, Objective::max_throughput_per_gpu, Objective::min_latency}) {
      for (const std::vector<std::string>& requirements :
           {std::vector<std::string>{}, std::vector<std::string>{"frames_per_s>=300"}}) {
        RecommendRequest r = small_space(model, "video-qa");
        r.objective = objective;
        r.requirements = requirements;
        Recommendation pruned = recommend(r);
        r.prune = false;
        Recommendation all = recommend(r);
        EXPECT_EQ(all.pruned, 0);
        ASSERT_FALSE(all.ranked.empty()) << model;
        ASSERT_FALSE(pruned.ranked.empty()) << model;
        const Candidate& a = all.ranked.front();
        const Candidate& b = pruned.ranked.front();
        EXPECT_EQ(a.gpu + std::to_string(a.nodes) + "x" + std::to_string(a.gpus_per_node),
                  b.gpu + std::to_string(b.nodes) + "x" + std::to_string(b.gpus_per_node))
            << model << " objective " << static_cast<int>(objective);
      }
    }
  }
}

TEST(Recommend, EveryRecommendationIsFeasibleAndMeetsTheRequirements) {
  RecommendRequest r = small_space("llama-3.2-11b-vision", "video-qa");
  r.objective = Objective::max_throughput_per_gpu;
  r.requirements = {"frames_per_s>=200", "peak_memory_bytes_per_rank<=40GiB"};
  Recommendation rec = recommend(r);
  ASSERT_FALSE(rec.ranked.empty());
  for (const auto& c : rec.ranked) {
    EXPECT_TRUE(c.plan.feasible);
    EXPECT_GE(*c.plan.predicted.frames_per_s, 200.0);
    EXPECT_LE(c.plan.predicted.peak_memory_bytes_per_rank, 40.0 * (1ull << 30));
  }
  for (size_t i = 1; i < rec.ranked.size(); ++i)
    EXPECT_GE(rec.ranked[i - 1].throughput_per_gpu, rec.ranked[i].throughput_per_gpu);
  int frontier = 0;
  for (const auto& c : rec.ranked) frontier += c.pareto;
  EXPECT_GE(frontier, 1);
  // No shape off the frontier beats a frontier shape on both axes.
  for (const auto& f : rec.ranked)
    for (const auto& c : rec.ranked)
      if (f.pareto) {
        EXPECT_FALSE(c.throughput_per_gpu > f.throughput_per_gpu && c.latency_s < f.latency_s);
      }
}

TEST(Recommend, NothingMeetsNamesTheClosest) {
  RecommendRequest r = small_space("llama-3.2-11b-vision", "video-qa");
  r.requirements = {"frames_per_s>=1e9"};
  Recommendation rec = recommend(r);
  EXPECT_TRUE(rec.ranked.empty());
  ASSERT_NE(rec.closest(), nullptr);
  EXPECT_NE(rec.closest()->failures.front().find("frames_per_s>=1e9"), std::string::npos);
}

TEST(Recommend, ClosestIsTheSmallestRelativeMissOnTheRequiredMetric) {
  RecommendRequest r = small_space("llama-3.2-11b-vision", "video-qa");
  r.requirements = {"iteration_time_s<=1us"};
  Recommendation rec = recommend(r);
  ASSERT_TRUE(rec.ranked.empty());
  const Candidate* c = rec.closest();
  ASSERT_NE(c, nullptr);
  // No evaluated feasible shape reaches a smaller iteration time than the closest one.
  double fastest = std::numeric_limits<double>::infinity();
  for (const auto& x : rec.all)
    if (x.evaluated && x.plan.feasible) fastest = std::min(fastest, *x.plan.predicted.iteration_time_s);
  ASSERT_EQ(c->misses.size(), 1u);
  EXPECT_EQ(c->misses[0].metric, "iteration_time_s");
  EXPECT_DOUBLE_EQ(c->misses[0].bound, 1e-6);
  ASSERT_TRUE(c->misses[0].reached.has_value());
  EXPECT_DOUBLE_EQ(*c->misses[0].reached, fastest);
  EXPECT_DOUBLE_EQ(c->relative_miss, (fastest - 1e-6) / 1e-6);
}

TEST(Recommend, BadInputIsRefused) {
  RecommendRequest r = small_space("tiny", "video-qa");
  r.gpus = {"h300"};
  EXPECT_NE(error_of([&] { recommend(r); }).find("--gpu h300"), std::string::npos);
  r.gpus = {"h100-sxm"};
  r.overrides = {"cluster.nodes=2"};
  EXPECT_NE(error_of([&] { recommend(r); }).find("recommend chooses the cluster"),
            std::string::npos);
  r.overrides = {};
  r.requirements = {"frames_per_sec>=1"};
  EXPECT_NE(error_of([&] { recommend(r); }).find("did you mean"), std::string::npos);
  EXPECT_THROW(objective_from_string("fastest"), Error);
}

TEST(Recommend, DecodeWorkloadsKeepTheirKvPolicyUnlessAsked) {
  RecommendRequest r = small_space("llama-3-70b", "fairkv-decode");
  r.gpus = {"h100-sxm"};
  r.objective = Objective::max_throughput_per_gpu;
  Recommendation rec = recommend(r);
  ASSERT_FALSE(rec.ranked.empty());
  for (const auto& c : rec.all) EXPECT_EQ(c.kv_policy, "");
  // fairkv-decode asks for adaptive budgets; recommend must not trade them for uniform ones.
  for (const auto& c : rec.ranked) {
    ASSERT_TRUE(c.plan.decode.has_value());
    EXPECT_EQ(c.plan.decode->policy, "adaptive");
  }
}

TEST(Recommend, DecodeWorkloadsSearchKvPolicyWhenAsked) {
  RecommendRequest r = small_space("llama-3-70b", "fairkv-decode");
  r.gpus = {"h100-sxm"};
  r.objective = Objective::max_throughput_per_gpu;
  r.search_kv_policy = true;
  Recommendation rec = recommend(r);
  std::set<std::string> tried;
  for (const auto& c : rec.all) tried.insert(c.kv_policy);
  EXPECT_EQ(tried, (std::set<std::string>{"full", "uniform", "adaptive"}));
  ASSERT_FALSE(rec.ranked.empty());
  for (const auto& c : rec.ranked) {
    ASSERT_TRUE(c.plan.decode.has_value());
    EXPECT_EQ(c.plan.decode->policy, c.kv_policy);
  }
}
