// MoEConfig validation (issues keyed by config key), the key table with router-family keys, routing
// statistics (loads, mutual information, tallies and the routing log), per-token records.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "core/moe/moe_layer.h"
#include "core/ops/ops.h"
#include "moe/helpers_moe.h"

namespace moelab {
namespace {

using moe::MoEConfig;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The issues of validate("model.moe") as "key: message" lines.
std::vector<std::string> issues_of(const MoEConfig& c) {
  std::vector<std::string> out;
  for (const auto& i : c.validate("model.moe")) out.push_back(i.key + ": " + i.message);
  return out;
}

bool has_issue(const MoEConfig& c, const std::string& key, const std::string& text) {
  for (const auto& i : c.validate("model.moe"))
    if (i.key == key && i.message.find(text) != std::string::npos) return true;
  return false;
}

TEST(MoeConfig, ValidatorsReturnTheKeyAndTheMessage) {
  MoEConfig c;
  c.top_k = 9;
  EXPECT_TRUE(has_issue(c, "model.moe.top_k", "model.moe.top_k = 9 exceeds model.moe.num_experts = 8"));
  c = MoEConfig();
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0;
  EXPECT_TRUE(has_issue(c, "model.moe.capacity_factor", "model.moe.capacity_factor = 0 must be > 0 in capacity mode"));
  c = MoEConfig();
  c.load_loss = 0.01;
  EXPECT_TRUE(has_issue(c, "model.moe.load_loss", "set model.moe.noise = gaussian or learned"));
  c = MoEConfig();
  c.router = "expert_choice";
  c.renormalize = true;
  EXPECT_TRUE(has_issue(c, "model.moe.renormalize", "not defined for router = expert_choice"));
  c = MoEConfig();
  c.num_experts = 0;
  EXPECT_TRUE(has_issue(c, "model.moe.num_experts", "model.moe.num_experts = 0"));
  // Family rules: a router's own keys and features.
  c = MoEConfig();
  c.router = "soft_moe";
  c.noise = moe::NoiseKind::gaussian;
  EXPECT_TRUE(has_issue(c, "model.moe.noise", "not soft_moe"));
  c = MoEConfig();
  c.router = "sinkhorn";
  c.score = moe::ScoreKind::cosine;
  EXPECT_TRUE(has_issue(c, "model.moe.score", "supported with router = top_k"));
  c = MoEConfig();
  moe::set_moe_config_value(c, "softmax_order", std::string("after"));
  c.score = moe::ScoreKind::sigmoid;
  EXPECT_TRUE(has_issue(c, "model.moe.softmax_order", "softmax_order = after needs router = top_k"));
  // Another family's key away from its default would be ignored silently: an issue at that key.
  c = MoEConfig();
  c.router = "expert_choice";
  moe::set_moe_config_value(c, "sinkhorn_iterations", int64_t{5});
  EXPECT_TRUE(has_issue(c, "model.moe.sinkhorn_iterations", "read by router = top_k or sinkhorn, not expert_choice"))
      << ::testing::PrintToString(issues_of(c));
  moe::set_moe_config_value(c, "sinkhorn_iterations", int64_t{20});  // back at its default: fine
  EXPECT_TRUE(issues_of(c).empty()) << ::testing::PrintToString(issues_of(c));
  // check() throws every issue; the layer checks on construction.
  c = MoEConfig();
  c.top_k = 9;
  EXPECT_NE(error_of([&] { c.check(); }).find("moe.top_k = 9 exceeds moe.num_experts = 8"), std::string::npos);
  RngStream rng(1, "init");
  EXPECT_THROW(moe::MoELayer(c, {.d_model = 4, .d_ff = 4}, rng), Error);
  EXPECT_TRUE(issues_of(MoEConfig()).empty());
}

TEST(MoeConfig, SettersNameTheKeyAndTheValidValues) {
  MoEConfig c;
  std::string e = error_of([&] { moe::set_moe_config_value(c, "router", std::string("top2")); });
  EXPECT_NE(e.find("moe.router = 'top2' is not one of: top_k, sinkhorn, expert_choice, soft_moe, hash, random"),
            std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "topk", int64_t(2)); });
  EXPECT_NE(e.find("unknown key moe.topk (did you mean moe.top_k?)"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "top_k", std::string("two")); });
  EXPECT_NE(e.find("moe.top_k must be an integer"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_text(c, "capacity_factor", "lots"); });
  EXPECT_NE(e.find("moe.capacity_factor must be a number"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "softmax_order", std::string("sideways")); });
  EXPECT_NE(e.find("moe.softmax_order = 'sideways' is not one of: before, after"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "slots_per_expert", true); });
  EXPECT_NE(e.find("moe.slots_per_expert must be an integer"), std::string::npos) << e;
}

TEST(MoeConfig, KeyTableRoundTripsWithEveryRouterFamilysKeys) {
  const auto& keys = moe::moe_config_keys();
  std::set<std::string> names;
  MoEConfig defaults, c;
  for (const auto& k : keys) {
    EXPECT_TRUE(names.insert(k.key).second) << "duplicate key " << k.key;
    EXPECT_FALSE(k.doc.empty()) << k.key;
    EXPECT_FALSE(k.default_text.empty()) << k.key;
    if (k.type == moe::MoEKeyType::string) {
      EXPECT_FALSE(k.allowed.empty()) << k.key;
      for (const auto& a : k.allowed) moe::set_moe_config_text(c, k.key, a);  // every listed value is accepted
    }
    moe::set_moe_config_text(c, k.key, k.default_text);
    if (k.type == moe::MoEKeyType::floating) {
      EXPECT_NE(k.default_text.find_first_of(".e"), std::string::npos) << k.key << " default must read as a TOML float";
      EXPECT_EQ(std::stod(k.default_text), std::get<double>(moe::get_moe_config_value(defaults, k.key))) << k.key;
    }
  }
  // Every family's keys are in the table; the routers of today all have a family.
  for (const auto& f : moe::router_families())
    for (const auto& k : f.keys) EXPECT_TRUE(names.count(k.key)) << k.key;
  EXPECT_EQ(moe::router_names(),
            (std::vector<std::string>{"top_k", "sinkhorn", "expert_choice", "soft_moe", "hash", "random"}));
  for (std::string key : {"softmax_order", "sinkhorn_iterations", "selection_bias", "bias_update_rate", "bias_recenter",
                          "slots_per_expert", "soft_normalize"})
    EXPECT_TRUE(names.count(key)) << key;
  moe::set_moe_config_text(c, "top_k", "1");
  moe::set_moe_config_text(c, "router", "expert_choice");
  moe::set_moe_config_text(c, "capacity_factor", "2");  // an integer for a float key
  moe::set_moe_config_text(c, "renormalize", "true");
  moe::set_moe_config_text(c, "sinkhorn_iterations", "7");
  EXPECT_EQ(c.top_k, 1);
  EXPECT_EQ(c.router, "expert_choice");
  EXPECT_EQ(c.capacity_factor, 2.0);
  EXPECT_TRUE(c.renormalize);
  EXPECT_EQ(c.option_int("sinkhorn_iterations"), 7);
  EXPECT_EQ(defaults.option_int("sinkhorn_iterations"), 20) << "unset options read their declared default";
  EXPECT_EQ(std::get<std::string>(moe::get_moe_config_value(c, "router")), "expert_choice");
}

TEST(MoeStats, LoadStatisticsAndMutualInformationInBits) {
  std::vector<double> diag(16, 0.0);
  for (int i = 0; i < 4; ++i) diag[i * 4 + i] = 10;
  EXPECT_NEAR(moe::mutual_information_bits(diag, 4, 4), 2.0, 1e-12);
  EXPECT_NEAR(moe::label_entropy_bits(diag, 4, 4), 2.0, 1e-12);
  EXPECT_NEAR(moe::mutual_information_bits({5, 5, 5, 1, 1, 1}, 2, 3), 0.0, 1e-12);
  const double h = -(0.75 * std::log2(0.75) + 0.25 * std::log2(0.25));
  EXPECT_NEAR(moe::mutual_information_bits({3, 1, 1, 3}, 2, 2), 1.0 - h, 1e-12);
  EXPECT_EQ(moe::mutual_information_bits({1, 2, 3}, 2, 2), 0.0) << "not a 2 x 2 matrix";
  moe::LoadStats ls = moe::load_stats({6, 2, 0, 0});
  EXPECT_EQ(ls.fraction, (std::vector<double>{0.75, 0.25, 0, 0}));
  EXPECT_EQ(ls.unused, 2);
  EXPECT_NEAR(ls.max_over_mean, 3.0, 1e-12);
  EXPECT_NEAR(ls.cv, std::sqrt((16 + 0 + 4 + 4) / 4.0) / 2.0, 1e-12);
}

TEST(MoeStats, TalliesMergeAndRoundTripExactly) {
  moe::RoutingTally t(2);
  t.add_labels({0, 0, 1, 1}, {0, 1, 0, 1, 1, 0, 1, 1}, {0, 2, 4, 6, 8});
  EXPECT_EQ(t.label_matrix(2), (std::vector<double>{2, 2, 1, 3}));
  EXPECT_EQ(t.label_matrix(3), (std::vector<double>{2, 2, 1, 3, 0, 0})) << "padded to the requested rows";
  EXPECT_THROW(t.add_label_count(-1, 0), Error);
  moe::RoutingLog a, b;
  moe::RoutingTally& ta = a.layer("image.blocks.3.moe", 2);
  ta.tokens = 3;
  ta.expert_counts = {1.0 / 3, 2};
  b.layer("text.blocks.3.moe", 2).tokens = 5;
  b.layer("image.blocks.3.moe", 2).tokens = 4;
  a.merge(b);
  ASSERT_EQ(a.layers().size(), 2u) << "two towers' layers with the same block index stay apart";
  EXPECT_EQ(a.find("image.blocks.3.moe")->tokens, 7);
  EXPECT_EQ(a.find("text.blocks.3.moe")->tokens, 5);
  EXPECT_THROW(a.layer("image.blocks.3.moe", 4), Error) << "a layer cannot change its expert count";
  moe::RoutingLog back = moe::RoutingLog::deserialize(a.serialize());
  EXPECT_EQ(back.serialize(), a.serialize());
  EXPECT_EQ(back.find("image.blocks.3.moe")->expert_counts[0], 1.0 / 3) << "hex floats keep every bit";
  EXPECT_EQ(moe::labels_experts_csv({2, 2, 1, 3}, 2, 2, {"shirt", "bag, large"}),
            "label,expert_0,expert_1\nshirt,2,2\n\"bag, large\",1,3\n");
}

TEST(MoeStats, LayerTalliesItsRoutingUnderItsPath) {
  MoEConfig cfg;
  cfg.num_experts = 4;
  cfg.top_k = 1;
  cfg.capacity_mode = moe::CapacityMode::capacity;
  cfg.capacity_factor = 1.0;
  cfg.min_capacity = 1;
  RngStream rng(3, "init");
  moe::MoELayer layer(cfg, {.d_model = 6, .d_ff = 6}, rng);
  nn::Batch batch;
  batch.labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, Shape{3});  // one per sequence
  test::LayerRun run = test::run_layer(layer, test::randn(Shape{3, 10, 6}, 4, 2.0), batch);
  const moe::RoutingTally& st = run.tally(layer);
  const moe::RoutingRecord& rec = run.record(layer);
  std::vector<double> counts(4, 0.0);
  for (int64_t e : rec.slot_expert) counts[e] += 1;
  EXPECT_EQ(st.tokens, 30);
  EXPECT_EQ(st.assignments, 30);
  EXPECT_EQ(st.expert_counts, counts);
  int64_t kept = 0;
  for (auto k : rec.slot_kept) kept += k;
  EXPECT_EQ(st.dropped, 30 - kept);
  EXPECT_NEAR(st.dropped_fraction(), double(30 - kept) / 30, 1e-12);
  EXPECT_GT(st.router_entropy(), 0.0);
  EXPECT_LE(st.router_entropy(), std::log(4.0) + 1e-9);
  EXPECT_GE(st.router_confidence(), 0.25);
  ASSERT_EQ(run.aux.size(), 1u);
  EXPECT_EQ(run.aux[0].name, "switch_loss");
  // Each sequence's tokens are counted under its label.
  ASSERT_EQ(st.label_rows(), 3);
  for (int l = 0; l < 3; ++l)
    for (int e = 0; e < 4; ++e) {
      double c = 0;
      for (int t = l * 10; t < l * 10 + 10; ++t) c += rec.slot_expert[t] == e ? 1 : 0;
      EXPECT_EQ(st.label_counts[l * 4 + e], c);
    }
  EXPECT_EQ(rec.token_labels[12], 1);
  // Per-token records as CSV, with the labels.
  std::string csv = moe::token_records_csv(rec, 2);
  EXPECT_EQ(csv.substr(0, 34), "token,label,slot,expert,weight,kep");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  // Labels that are neither per sequence nor per token are an error naming both counts.
  nn::Batch bad;
  bad.labels = Tensor::from_vector(std::vector<int64_t>{0, 1}, Shape{2});
  std::string e = error_of([&] { test::run_layer(layer, test::randn(Shape{3, 10, 6}, 6), bad); });
  EXPECT_NE(e.find("per token (30) or per sequence (3)"), std::string::npos) << e;
}

TEST(MoeStats, HashRoutingIsFixedAndUsesTokenIds) {
  MoEConfig cfg;
  cfg.num_experts = 8;
  cfg.top_k = 2;
  cfg.router = "hash";
  RngStream rng(4, "init");
  moe::MoELayer layer(cfg, {.d_model = 4, .d_ff = 4}, rng);
  EXPECT_TRUE(layer.router->named_parameters().empty()) << "hash routing has no learned router";
  nn::Batch batch;
  batch.token_ids = Tensor::from_vector(std::vector<int64_t>{7, 3, 7, 9}, Shape{4});
  auto a = test::run_layer(layer, test::randn(Shape{4, 4}, 1), batch).record(layer).slot_expert;
  EXPECT_EQ(test::run_layer(layer, test::randn(Shape{4, 4}, 2), batch).record(layer).slot_expert, a)
      << "hash routing does not depend on the input";
  EXPECT_EQ(a[0], a[4]);  // the same id goes to the same experts
  EXPECT_EQ(a[1], a[5]);
  EXPECT_EQ((a[0] + 1) % 8, a[1]);
}

}  // namespace
}  // namespace moelab
