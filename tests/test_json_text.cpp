// JsonTextWriter and the plan file's text (issue 18): the writer prints what nlohmann's dump
// printed, so plan files stay byte-identical to the ones the document-building writer made.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "reference/previous.hpp"
#include "xring/planner/json_text.hpp"
#include "xring/planner/planner.hpp"

using namespace xring;

namespace {

/// `build` run against a writer with `indent`, and the text it produced.
template <typename F>
std::string written(int indent, F build) {
  std::string out;
  JsonTextWriter w(out, indent);
  build(w);
  EXPECT_TRUE(w.done());
  return out;
}

}  // namespace

TEST(JsonTextWriter, PrintsWhatNlohmannDumpPrintsPrettyAndCompact) {
  const json doc = json::parse(R"({"a": [], "b": {}, "c": [1, -2, 3.5, 1e-07, 1e+300, 100.0],
      "d": {"e": null, "f": true, "g": "x"}, "h": [[], [{}], {"i": [false]}]})");
  for (int indent : {-1, 0, 2, 4}) {
    const std::string text = written(indent, [](JsonTextWriter& w) {
      w.begin_object();
      w.key("a").begin_array().end_array();
      w.key("b").begin_object().end_object();
      w.key("c").begin_array().value(1).value(-2ll).value(3.5).value(1e-7).value(1e300).value(
          100.0);
      w.end_array();
      w.key("d").begin_object().key("e").null().key("f").value(true).key("g").value("x");
      w.end_object();
      w.key("h").begin_array().begin_array().end_array().begin_array().begin_object();
      w.end_object().end_array().begin_object().key("i").begin_array().value(false);
      w.end_array().end_object().end_array();
      w.end_object();
    });
    EXPECT_EQ(text, doc.dump(indent)) << "indent " << indent;
  }
}

TEST(JsonTextWriter, EscapesStringsAsNlohmannDoes) {
  // Quotes, backslashes, the short escapes, other control bytes as \u00xx (lowercase), DEL
  // as is, and UTF-8 passed through.
  const std::string s = "q\"b\\ \b\f\n\r\t \x01\x1f\x7f caf\xc3\xa9 \xe2\x80\x94";
  EXPECT_EQ(written(2, [&](JsonTextWriter& w) { w.value(s); }), json(s).dump(2));
  EXPECT_EQ(written(2, [&](JsonTextWriter& w) { w.value(s); }),
            "\"q\\\"b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\x7f caf\xc3\xa9 \xe2\x80\x94\"");
  // Invalid UTF-8 is refused, as nlohmann's dump refuses it.
  EXPECT_THROW(written(2, [](JsonTextWriter& w) { w.value("\xff"); }), json::type_error);
}

TEST(JsonTextWriter, IntegralDoublesPrintAsNlohmannPrintsThem) {
  // The writer prints integral values under 10^15 itself; nlohmann's Grisu2 is the oracle.
  std::vector<double> values = {1,
                                -1,
                                7,
                                10,
                                100,
                                1e6,
                                1056768,
                                21350000000.0,
                                999999999999999,
                                1e15,
                                1e15 + 1,
                                123456789012345678.0,
                                -0.0,
                                0.0,
                                4.5,
                                -2.5e-7};
  std::mt19937_64 rng(18);
  for (int i = 0; i < 200000; ++i) {
    values.push_back(static_cast<double>(rng() % 100000));
    values.push_back(static_cast<double>(rng() % 1000000000000000ull));
    values.push_back(-static_cast<double>(rng() >> (rng() % 64)));
  }
  for (double v : values) {
    const std::string text = written(-1, [&](JsonTextWriter& w) { w.value(v); });
    ASSERT_EQ(text, json(v).dump()) << v;
  }
}

TEST(JsonTextWriter, NonFiniteNumbersPrintNull) {
  EXPECT_EQ(written(-1,
                    [](JsonTextWriter& w) {
                      w.begin_array().value(1.0 / 0.0).value(std::optional<double>()).end_array();
                    }),
            "[null,null]");
}

TEST(JsonTextWriter, EmbedsADocumentAtItsDepth) {
  const json inner = {{"k", {1, 2}}, {"m", json::object()}};
  const json outer = {{"x", {{"inner", inner}}}};
  EXPECT_EQ(written(2,
                    [&](JsonTextWriter& w) {
                      w.begin_object().key("x").begin_object().key("inner").value(inner);
                      w.end_object().end_object();
                    }),
            outer.dump(2));
}

TEST(JsonTextWriter, KeysOutOfOrderAndMisplacedValuesAreProgrammingErrors) {
  std::string out;
  JsonTextWriter w(out, 2);
  w.begin_object().key("b").value(1);
  EXPECT_THROW(w.key("a"), std::logic_error);  // nlohmann would have sorted it first
  EXPECT_THROW(w.key("b"), std::logic_error);  // a duplicate
  EXPECT_THROW(w.value(2), std::logic_error);  // a value where a key is due
  EXPECT_THROW(w.end_array(), std::logic_error);
  w.key("c").value(3).end_object();
  EXPECT_TRUE(w.done());
  EXPECT_THROW(w.value(4), std::logic_error);  // a second document
}

namespace {

/// Plans of every kind the planner makes: each shipped baseline's combination (prefill,
/// decode, streaming), training, an infeasible plan, a pinned hybrid and a 4,000-layer model.
std::vector<Plan> plans_of_every_kind() {
  std::vector<Plan> plans;
  const std::vector<std::vector<std::string>> combos = {
      {"llama-3-70b", "h100-sxm-8", "fairkv-decode"},
      {"llama-3.2-11b-vision", "h100-1", "video-stream"},
      {"llama-3.2-11b-vision", "h100-sxm-32", "video-qa"},
      {"mistral-small-24b", "h100-sxm-8", "fairkv-decode"},
      {"mplug-owl3-2b", "a100-80gb-16", "image-chat"},
      {"openflamingo-9b", "a30-8", "video-qa"}};
  for (const auto& c : combos) plans.push_back(plan(load_inputs(c[0], c[1], c[2], {})));
  plans.push_back(plan(
      load_inputs("openflamingo-3b", "a100-80gb-16", "video-qa", {"workload.phase=training"})));
  plans.push_back(
      plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa", {"model.params=900B"})));
  PlannerOptions hybrid;
  hybrid.strategy = Strategy::hybrid;
  plans.push_back(plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-32", "video-qa", {}), hybrid));
  std::string layers = "model.cross_attention_layers=[0";
  for (int i = 1; i < 4000; ++i) layers.append(",").append(std::to_string(i));
  layers.append("]");
  plans.push_back(plan(load_inputs("llama-3.2-11b-vision", "h100-sxm-8", "video-qa",
                                   {"model.layers=4000", layers})));
  return plans;
}

}  // namespace

TEST(PlanJsonText, IsByteIdenticalToTheDocumentWriterForEveryKindOfPlan) {
  std::vector<Plan> plans = plans_of_every_kind();
  ASSERT_FALSE(plans[7].feasible);
  ASSERT_TRUE(plans[0].decode.has_value());
  ASSERT_TRUE(plans[1].streaming.has_value());
  ASSERT_EQ(plans.back().layers.size(), 4000u);
  // Strings that need escaping, in a note and a layer's reason.
  plans[2].notes.push_back("tab\there, \"quoted\", \x01, caf\xc3\xa9");
  plans[2].layers[0].reason += " \\ back\nslash";
  for (const Plan& p : plans) {
    const std::string before = previous::plan_document(p).dump(2);
    const std::string now = plan_json_text(p);
    ASSERT_EQ(now.size(), before.size()) << p.inputs["model"]["name"] << " " << p.phase;
    EXPECT_TRUE(now == before) << p.inputs["model"]["name"] << " " << p.phase;
    EXPECT_EQ(to_json(p), previous::plan_document(p));
  }
}

TEST(PlanJsonText, ReadsBackToTheSamePlanText) {
  const Plan p = plan(load_inputs("llama-3-70b", "h100-sxm-8", "fairkv-decode", {}));
  const std::string text = plan_json_text(p);
  EXPECT_EQ(plan_json_text(plan_from_json(json::parse(text), "p.json")), text);
}
