// MoEConfig errors and key table; routing statistics, the labels x experts monitor and its mutual
// information; per-token records.
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

TEST(MoeConfig, ErrorsNameTheKey) {
  MoEConfig c;
  c.top_k = 9;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe.top_k = 9 exceeds moe.num_experts = 8"), std::string::npos);
  c = MoEConfig();
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe.capacity_factor = 0 must be > 0 in capacity mode"), std::string::npos);
  c.capacity_factor = -1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe.capacity_factor"), std::string::npos);
  c = MoEConfig();
  std::string e = error_of([&] { moe::set_moe_config_value(c, "router", std::string("top2")); });
  EXPECT_NE(e.find("moe.router = 'top2' is not one of: top_k, expert_choice, soft_moe, hash, random, sinkhorn"),
            std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "topk", int64_t(2)); });
  EXPECT_NE(e.find("unknown key moe.topk (did you mean moe.top_k?)"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_value(c, "top_k", std::string("two")); });
  EXPECT_NE(e.find("moe.top_k must be an integer"), std::string::npos) << e;
  e = error_of([&] { moe::set_moe_config_text(c, "capacity_factor", "lots"); });
  EXPECT_NE(e.find("moe.capacity_factor must be a number"), std::string::npos) << e;
  c = MoEConfig();
  c.load_loss = 0.01;
  EXPECT_NE(error_of([&] { c.validate(); }).find("set moe.noise = gaussian or learned"), std::string::npos);
  c = MoEConfig();
  c.router = moe::RouterKind::expert_choice;
  c.renormalize = true;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe.renormalize"), std::string::npos);
  c = MoEConfig();
  c.num_experts = 0;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe.num_experts = 0"), std::string::npos);
  // The layer validates on construction.
  c = MoEConfig();
  c.top_k = 9;
  RngStream rng(1, "init");
  moe::MoELayerOptions o;
  o.d_model = 4;
  o.d_ff = 4;
  EXPECT_THROW(moe::MoELayer(c, o, rng), Error);
  MoEConfig ok;
  EXPECT_EQ(error_of([&] { ok.validate(); }), "");
}

TEST(MoeConfig, KeyTableRoundTrips) {
  const auto& keys = moe::moe_config_keys();
  EXPECT_GE(keys.size(), 40u);
  std::set<std::string> names;
  MoEConfig defaults, c;
  for (const auto& k : keys) {
    EXPECT_TRUE(names.insert(k.key).second) << "duplicate key " << k.key;
    EXPECT_FALSE(k.doc.empty()) << k.key;
    EXPECT_FALSE(k.default_text.empty()) << k.key;
    if (k.type == moe::MoEKeyType::string) {
      EXPECT_FALSE(k.allowed.empty()) << k.key;
      for (const auto& a : k.allowed) moe::set_moe_config_text(c, k.key, a);  // every listed value is accepted
      moe::set_moe_config_text(c, k.key, k.default_text);
    } else {
      moe::set_moe_config_text(c, k.key, k.default_text);
    }
    if (k.type == moe::MoEKeyType::floating) {
      EXPECT_NE(k.default_text.find_first_of(".e"), std::string::npos) << k.key << " default must read as a TOML float";
      EXPECT_EQ(std::stod(k.default_text), std::get<double>(moe::get_moe_config_value(defaults, k.key))) << k.key;
    }
  }
  EXPECT_EQ(c.describe(), defaults.describe());
  moe::set_moe_config_text(c, "top_k", "1");
  moe::set_moe_config_text(c, "router", "expert_choice");
  moe::set_moe_config_text(c, "capacity_factor", "2");  // an integer for a float key
  moe::set_moe_config_text(c, "renormalize", "true");
  EXPECT_EQ(c.top_k, 1);
  EXPECT_EQ(c.router, moe::RouterKind::expert_choice);
  EXPECT_EQ(c.capacity_factor, 2.0);
  EXPECT_TRUE(c.renormalize);
  EXPECT_EQ(std::get<std::string>(moe::get_moe_config_value(c, "router")), "expert_choice");
}

TEST(MoeStats, MutualInformationInBits) {
  std::vector<std::vector<double>> diag(4, std::vector<double>(4, 0.0));
  for (int i = 0; i < 4; ++i) diag[i][i] = 10;
  EXPECT_NEAR(moe::mutual_information_bits(diag), 2.0, 1e-12);
  EXPECT_NEAR(moe::mutual_information_bits({{5, 5, 5}, {1, 1, 1}}), 0.0, 1e-12);
  double h = -(0.75 * std::log2(0.75) + 0.25 * std::log2(0.25));
  EXPECT_NEAR(moe::mutual_information_bits({{3, 1}, {1, 3}}), 1.0 - h, 1e-12);
  moe::RoutingMonitor m(2);
  m.add({0, 0, 1, 1}, {0, 1, 0, 1, 1, 0, 1, 1}, {0, 2, 4, 6, 8});
  EXPECT_EQ(m.counts(), (std::vector<std::vector<double>>{{2, 2}, {1, 3}}));
  EXPECT_EQ(m.to_csv(), "label,e0,e1\n0,2,2\n1,1,3\n");
  EXPECT_THROW(m.add_count(-1, 0), Error);
}

TEST(MoeStats, LayerStatisticsAndMonitor) {
  MoEConfig cfg;
  cfg.num_experts = 4;
  cfg.top_k = 1;
  cfg.capacity_mode = moe::CapacityMode::capacity;
  cfg.capacity_factor = 1.0;
  cfg.min_capacity = 1;
  RngStream rng(3, "init");
  moe::MoELayerOptions o;
  o.d_model = 6;
  o.d_ff = 6;
  moe::MoELayer layer(cfg, o, rng);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, Shape{3});  // one per sequence
  layer.set_context({.labels = labels});
  nn::ForwardOutput out = layer.forward_aux(test::randn(Shape{3, 10, 6}, 4, 2.0));
  const moe::MoEStats& st = layer.last_stats();
  const moe::RoutingRecord& rec = layer.last_record();
  std::vector<double> counts(4, 0.0);
  for (int64_t e : rec.slot_expert) counts[e] += 1;
  double mean = 30.0 / 4, mx = *std::max_element(counts.begin(), counts.end()), var = 0;
  for (double c : counts) var += (c - mean) * (c - mean) / 4;
  EXPECT_EQ(st.tokens, 30);
  EXPECT_EQ(st.assignments, 30);
  for (int e = 0; e < 4; ++e) EXPECT_NEAR(st.load[e], counts[e] / 30, 1e-12);
  EXPECT_NEAR(st.load_cv, std::sqrt(var) / mean, 1e-12);
  EXPECT_NEAR(st.load_max_over_mean, mx / mean, 1e-12);
  int64_t kept = 0;
  for (auto k : rec.slot_kept) kept += k;
  EXPECT_EQ(st.dropped, 30 - kept);
  EXPECT_NEAR(st.dropped_fraction, double(30 - kept) / 30, 1e-12);
  EXPECT_GT(st.router_entropy, 0.0);
  EXPECT_LE(st.router_entropy, std::log(4.0) + 1e-9);
  EXPECT_GE(st.router_confidence, 0.25);
  ASSERT_EQ(st.terms.size(), 1u);
  EXPECT_EQ(st.terms[0].first, "switch_loss");
  // Stats as named tensors for loggers.
  std::set<std::string> names;
  for (auto& [n, t] : out.stats) names.insert(n);
  for (std::string want : {"load", "load_cv", "load_max_over_mean", "unused_experts", "dropped_fraction",
                           "router_entropy", "router_confidence"})
    EXPECT_TRUE(names.count(want)) << want;
  // The monitor counted each sequence's tokens under its label.
  const auto& m = layer.monitor().counts();
  ASSERT_EQ(m.size(), 3u);
  for (int l = 0; l < 3; ++l) {
    double row = 0;
    for (double c : m[l]) row += c;
    EXPECT_EQ(row, 10.0);
    for (int e = 0; e < 4; ++e) {
      double c = 0;
      for (int t = l * 10; t < l * 10 + 10; ++t) c += rec.slot_expert[t] == e ? 1 : 0;
      EXPECT_EQ(m[l][e], c);
    }
  }
  // The accumulator sums counts over forwards.
  layer.forward_aux(test::randn(Shape{3, 10, 6}, 5, 2.0));
  moe::MoEStats acc = layer.stats_accumulator().summary();
  EXPECT_EQ(acc.tokens, 60);
  EXPECT_EQ(layer.stats_accumulator().forwards(), 2);
  // Per-token records.
  auto recs = moe::token_records(layer.last_record(), 2);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[1].experts.size(), 1u);
  EXPECT_EQ(moe::token_records_csv(recs).substr(0, 27), "token,slot,expert,weight,ke");
  EXPECT_THROW(layer.set_context({.labels = Tensor::from_vector(std::vector<int64_t>{0, 1}, Shape{2})});
               layer.forward(test::randn(Shape{3, 10, 6}, 6)), Error);
}

TEST(MoeStats, HashRoutingIsFixedAndUsesTokenIds) {
  MoEConfig cfg;
  cfg.num_experts = 8;
  cfg.top_k = 2;
  cfg.router = moe::RouterKind::hash;
  RngStream rng(4, "init");
  moe::MoELayerOptions o;
  o.d_model = 4;
  o.d_ff = 4;
  moe::MoELayer layer(cfg, o, rng);
  EXPECT_TRUE(layer.router->named_parameters().empty()) << "hash routing has no learned router";
  Tensor ids = Tensor::from_vector(std::vector<int64_t>{7, 3, 7, 9}, Shape{4});
  layer.set_context({.token_ids = ids});
  layer.forward(test::randn(Shape{4, 4}, 1));
  auto a = layer.last_record().slot_expert;
  layer.forward(test::randn(Shape{4, 4}, 2));
  EXPECT_EQ(layer.last_record().slot_expert, a) << "hash routing does not depend on the input";
  EXPECT_EQ(a[0], a[4]);  // the same id goes to the same experts
  EXPECT_EQ(a[1], a[5]);
  EXPECT_EQ((a[0] + 1) % 8, a[1]);
}

}  // namespace
}  // namespace moelab
