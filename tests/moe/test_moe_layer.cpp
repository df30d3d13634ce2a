// The invariants of docs/moe.md §6 for the MoE layer: dense equivalences, the fast path against a naive
// per-token loop for every router and capacity mode (forward and backward), capacity bounds, replay and
// thread-count independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/moe_layer.h"
#include "core/nn/mlp.h"
#include "core/nn/transformer.h"
#include "core/ops/ops.h"
#include "moe/helpers_moe.h"

namespace moelab {
namespace {

using moe::MoEConfig;
using moe::MoELayer;
using moe::MoELayerOptions;

std::shared_ptr<MoELayer> make_layer(const MoEConfig& cfg, int64_t d, int64_t f, int64_t seq_len, DType dt,
                                     uint64_t seed = 1) {
  RngStream rng(seed, "init");
  MoELayerOptions o;
  o.d_model = d;
  o.d_ff = f;
  o.seq_len = seq_len;
  o.dtype = dt;
  return std::make_shared<MoELayer>(cfg, o, rng);
}

TEST(MoeLayer, OneExpertTopOneEqualsDenseFfn) {
  int64_t d = 10, f = 24;
  MoEConfig cfg;
  cfg.num_experts = 1;
  cfg.top_k = 1;
  auto layer = make_layer(cfg, d, f, 0, DType::f32);
  RngStream rng(2, "mlp");
  nn::MlpOptions mo;
  mo.dim = d;
  mo.hidden = f;
  nn::MLP mlp(mo, rng);
  {
    NoGradGuard ng;
    mlp.fc1->weight.detach().copy_(layer->experts->w1.select(0, 0).t());
    mlp.fc1->bias.detach().copy_(layer->experts->b1.select(0, 0));
    mlp.fc2->weight.detach().copy_(layer->experts->w2.select(0, 0).t());
    mlp.fc2->bias.detach().copy_(layer->experts->b2.select(0, 0));
  }
  Tensor x0 = test::randn(Shape{3, 7, d}, 3);
  Tensor g = test::randn(Shape{3, 7, d}, 4);
  Tensor xa = x0.clone().requires_grad_(), xb = x0.clone().requires_grad_();
  Tensor ya = layer->forward(xa), yb = mlp.forward(xb);
  EXPECT_LT(test::max_rel_diff(ya, yb), 1e-5);
  sum(ya * g).backward();
  sum(yb * g).backward();
  EXPECT_LT(test::max_rel_diff(xa.grad(), xb.grad()), 1e-5);
  EXPECT_LT(test::max_rel_diff(layer->experts->w1.grad().select(0, 0).t(), mlp.fc1->weight.grad()), 1e-4);
  EXPECT_LT(test::max_rel_diff(layer->experts->b1.grad().select(0, 0), mlp.fc1->bias.grad()), 1e-4);
  EXPECT_LT(test::max_rel_diff(layer->experts->w2.grad().select(0, 0).t(), mlp.fc2->weight.grad()), 1e-4);
  EXPECT_LT(test::max_rel_diff(layer->experts->b2.grad().select(0, 0), mlp.fc2->bias.grad()), 1e-4);
  // The router gets no gradient: its only probability is 1.
  std::vector<float> gr = layer->router->tensor("weight").grad().defined() ? layer->router->tensor("weight").grad().to_vector<float>()
                                                                  : std::vector<float>{0.f};
  for (float v : gr) EXPECT_NEAR(v, 0.f, 1e-6f);
}

TEST(MoeLayer, TopKEqualsAllExpertsIsDenseMixture) {
  int64_t d = 6, f = 8, E = 4;
  MoEConfig cfg;
  cfg.num_experts = E;
  cfg.top_k = E;
  cfg.switch_loss = 0;
  auto layer = make_layer(cfg, d, f, 0, DType::f64);
  Tensor x0 = test::randn(Shape{9, d}, 5, 1.0, DType::f64), g = test::randn(Shape{9, d}, 6, 1.0, DType::f64);
  Tensor xa = x0.clone().requires_grad_();
  Tensor ya = layer->forward(xa);
  sum(ya * g).backward();
  std::vector<Tensor> ga = test::param_grads(*layer);
  layer->zero_grad();
  Tensor xb = x0.clone().requires_grad_();
  Tensor p = softmax(linear(xb, layer->router->tensor("weight")), -1);
  Tensor yb = mul(xb, 0.0);
  for (int64_t e = 0; e < E; ++e) yb = yb + layer->experts->forward_expert(e, xb) * p.slice(1, e, e + 1);
  sum(yb * g).backward();
  std::vector<Tensor> gb = test::param_grads(*layer);
  EXPECT_LT(test::max_rel_diff(ya, yb), 1e-12);
  EXPECT_LT(test::max_rel_diff(xa.grad(), xb.grad()), 1e-12);
  for (size_t i = 0; i < ga.size(); ++i) EXPECT_LT(test::max_rel_diff(ga[i], gb[i]), 1e-11) << "parameter " << i;
}

struct NamedConfig {
  std::string name;
  MoEConfig cfg;
};

std::vector<NamedConfig> all_router_configs() {
  std::vector<NamedConfig> out;
  auto base = [] {
    MoEConfig c;
    c.num_experts = 4;
    c.top_k = 2;
    c.switch_loss = 0;
    return c;
  };
  MoEConfig c = base();
  out.push_back({"top_k_before_dropless", c});
  c = base();
  moe::set_moe_config_value(c, "softmax_order", std::string("after"));
  c.activation = ExpertActivation::relu;
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0.5;
  c.min_capacity = 1;
  out.push_back({"top_k_after_capacity_position", c});
  c = base();
  c.score = moe::ScoreKind::sigmoid;
  c.renormalize = true;
  c.weight_scale = 2.5;
  moe::set_moe_config_value(c, "selection_bias", true);
  c.activation = ExpertActivation::swiglu;
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0.75;
  c.min_capacity = 1;
  c.drop_policy = moe::DropPolicy::probability;
  out.push_back({"top_k_sigmoid_bias_capacity_probability", c});
  c = base();
  c.score = moe::ScoreKind::cosine;
  c.cosine_dim = 4;
  c.top_k = 1;
  c.temperature = 0.5;
  out.push_back({"top_k_cosine", c});
  c = base();
  c.router = "expert_choice";
  c.capacity_factor = 1.0;
  out.push_back({"expert_choice", c});
  c = base();
  c.router = "hash";
  out.push_back({"hash", c});
  c = base();
  c.router = "random";
  c.top_k = 1;
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 1.0;
  c.min_capacity = 1;
  out.push_back({"random_capacity", c});
  c = base();
  c.router = "sinkhorn";
  c.renormalize = true;
  out.push_back({"sinkhorn", c});
  c = base();
  c.shared_experts = 2;
  c.shared_expert_gate = true;
  c.expert_d_ff = 5;
  out.push_back({"shared_gated_fine_grained", c});
  c = base();
  c.router = "soft_moe";
  moe::set_moe_config_value(c, "slots_per_expert", int64_t{2});
  out.push_back({"soft_moe", c});
  c = base();
  c.router = "soft_moe";
  moe::set_moe_config_value(c, "soft_normalize", true);
  c.capacity_factor = 1.0;  // S = round(1.0 * 8 / 4) = 2
  c.shared_experts = 1;
  out.push_back({"soft_moe_normalized_shared", c});
  return out;
}

TEST(MoeLayer, FastPathMatchesNaiveLoopForEveryRouter) {
  int64_t B = 2, N = 8, d = 6, f = 7;
  for (auto& [name, cfg] : all_router_configs()) {
    SCOPED_TRACE(name);
    auto layer = make_layer(cfg, d, f, N, DType::f64, 11);
    if (cfg.router_options.count("selection_bias")) {
      NoGradGuard ng;
      layer->router->tensor("bias").detach().copy_(Tensor::from_vector(std::vector<float>{0.3f, -0.2f, 0.f, 0.1f}, Shape{4}));
    }
    Tensor x0 = test::randn(Shape{B, N, d}, 12, 1.0, DType::f64), g = test::randn(Shape{B, N, d}, 13, 1.0, DType::f64);
    Tensor xa = x0.clone().requires_grad_();
    test::LayerRun run = test::run_layer(*layer, xa);
    Tensor ya = run.y;
    sum(ya * g).backward();
    std::vector<Tensor> ga = test::param_grads(*layer);
    const bool soft = cfg.router == "soft_moe";
    moe::RoutingRecord rec = soft ? moe::RoutingRecord() : run.record(*layer);
    layer->zero_grad();
    Tensor xb = x0.clone().requires_grad_();
    Tensor yb = soft
                    ? test::naive_soft_moe_forward(*layer, xb)
                    : test::naive_moe_forward(*layer, xb.reshape(Shape{B * N, d}), rec, N).reshape(Shape{B, N, d});
    sum(yb * g).backward();
    std::vector<Tensor> gb = test::param_grads(*layer);
    EXPECT_LT(test::max_rel_diff(ya, yb), 1e-12);
    EXPECT_LT(test::max_rel_diff(xa.grad(), xb.grad()), 1e-11);
    auto names = layer->named_parameters();
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_LT(test::max_rel_diff(ga[i], gb[i]), 1e-11) << names[i].first;
    if (cfg.capacity_mode == moe::CapacityMode::capacity) {
      EXPECT_GT(run.tally(*layer).dropped, 0);
    }
  }
}

TEST(MoeLayer, FastPathMatchesNaiveLoopForEveryTokenChoiceRouterAndCapacityMode) {
  int64_t B = 2, N = 8, d = 6, f = 7;
  for (std::string router : {"top_k", "sinkhorn", "hash", "random"})
    for (int mode = 0; mode < 3; ++mode) {
      MoEConfig cfg;
      cfg.num_experts = 4;
      cfg.top_k = 2;
      cfg.router = router;
      cfg.z_loss = router == "top_k" ? 0.1 : 0.0;
      if (mode > 0) {
        cfg.capacity_mode = moe::CapacityMode::capacity;
        cfg.capacity_factor = 0.5;
        cfg.min_capacity = 1;
        cfg.drop_policy = mode == 1 ? moe::DropPolicy::position : moe::DropPolicy::probability;
      }
      SCOPED_TRACE(router + " mode " + std::to_string(mode));
      auto layer = make_layer(cfg, d, f, N, DType::f64, 71);
      Tensor x0 = test::randn(Shape{B, N, d}, 72, 1.0, DType::f64), g = test::randn(Shape{B, N, d}, 73, 1.0, DType::f64);
      Tensor xa = x0.clone().requires_grad_();
      test::LayerRun run = test::run_layer(*layer, xa);
      Tensor ya = run.y;
      sum(ya * g).backward();
      std::vector<Tensor> ga = test::param_grads(*layer);
      moe::RoutingRecord rec = run.record(*layer);
      if (mode > 0) {
        EXPECT_GT(run.tally(*layer).dropped, 0);
      }
      layer->zero_grad();
      Tensor xb = x0.clone().requires_grad_();
      Tensor yb = test::naive_moe_forward(*layer, xb.reshape(Shape{B * N, d}), rec, N).reshape(Shape{B, N, d});
      sum(yb * g).backward();
      std::vector<Tensor> gb = test::param_grads(*layer);
      EXPECT_LT(test::max_rel_diff(ya, yb), 1e-12);
      EXPECT_LT(test::max_rel_diff(xa.grad(), xb.grad()), 1e-11);
      for (size_t i = 0; i < ga.size(); ++i) EXPECT_LT(test::max_rel_diff(ga[i], gb[i]), 1e-11) << i;
    }
}

TEST(MoeLayer, CapacityBoundsAndDroplessNeverDrops) {
  int64_t T = 64, d = 8, f = 8;
  for (auto& [name, cfg0] : all_router_configs()) {
    SCOPED_TRACE(name);
    MoEConfig cfg = cfg0;
    auto layer = make_layer(cfg, d, f, T, DType::f32, 21);
    test::LayerRun run = test::run_layer(*layer, test::randn(Shape{T, d}, 22));
    const moe::RoutingTally& st = run.tally(*layer);
    if (cfg.capacity_mode == moe::CapacityMode::dropless) {
      EXPECT_EQ(st.dropped, 0);
      EXPECT_EQ(st.dropped_fraction(), 0.0);
    }
    if (cfg.router == "soft_moe") continue;
    const moe::RoutingRecord& rec = run.record(*layer);
    std::vector<int64_t> kept(static_cast<size_t>(cfg.num_experts), 0), chosen(kept.size(), 0);
    for (size_t s = 0; s < rec.slot_expert.size(); ++s) {
      ++chosen[rec.slot_expert[s]];
      kept[rec.slot_expert[s]] += rec.slot_kept[s];
    }
    if (cfg.capacity_mode == moe::CapacityMode::capacity) {
      int64_t C = std::max<int64_t>(cfg.min_capacity, int64_t(std::ceil(cfg.capacity_factor * double(T * cfg.top_k) / double(cfg.num_experts))));
      int64_t naive_dropped = 0;
      for (size_t e = 0; e < kept.size(); ++e) {
        EXPECT_LE(kept[e], C);
        naive_dropped += std::max<int64_t>(0, chosen[e] - C);
      }
      EXPECT_EQ(st.dropped, naive_dropped);
    }
    if (cfg.router == "expert_choice") {
      int64_t C = std::llround(cfg.capacity_factor * double(T * cfg.top_k) / double(cfg.num_experts));
      for (size_t e = 0; e < kept.size(); ++e) EXPECT_EQ(kept[e], C) << "expert " << e << " takes exactly C tokens";
    }
  }
}

TEST(MoeLayer, ReplayReproducesTheForward) {
  for (auto& [name, cfg] : all_router_configs()) {
    if (cfg.router == "soft_moe") continue;
    SCOPED_TRACE(name);
    auto layer = make_layer(cfg, 6, 7, 10, DType::f32, 31);
    Tensor x = test::randn(Shape{2, 10, 6}, 32);
    test::LayerRun first = test::run_layer(*layer, x);
    auto rec = std::make_shared<moe::RoutingRecord>(first.record(*layer));
    nn::Batch replay;
    replay.replay = std::make_shared<nn::RoutingReplay>(nn::RoutingReplay{{layer->path(), rec}});
    // The random router draws again in a new forward: the replay holds its choice fixed too.
    Tensor y2 = test::run_layer(*layer, x, replay, 0, 99).y;
    EXPECT_EQ(test::max_rel_diff(y2, first.y), 0.0);
    // A different input replayed keeps the recorded experts.
    test::LayerRun other = test::run_layer(*layer, test::randn(Shape{2, 10, 6}, 33), replay);
    EXPECT_EQ(other.record(*layer).slot_expert, rec->slot_expert);
  }
}

TEST(MoeLayer, ResultsDoNotDependOnThreadCount) {
  MoEConfig cfg;
  cfg.num_experts = 8;
  cfg.top_k = 2;
  cfg.z_loss = 1e-3;
  int prev = omp_get_max_threads();
  std::vector<std::vector<float>> runs;
  for (int threads : {1, std::max(2, prev)}) {
    omp_set_num_threads(threads);
    auto layer = make_layer(cfg, 32, 64, 64, DType::f32, 41);
    Tensor x = test::randn(Shape{4, 64, 32}, 42).requires_grad_();
    test::LayerRun o = test::run_layer(*layer, x);
    Tensor loss = sum(o.y * o.y) + o.aux_total;
    loss.backward();
    std::vector<float> all = o.y.to_vector<float>();
    for (Tensor g : test::param_grads(*layer)) {
      auto v = g.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
    }
    auto gx = x.grad().to_vector<float>();
    all.insert(all.end(), gx.begin(), gx.end());
    runs.push_back(all);
  }
  omp_set_num_threads(prev);
  EXPECT_TRUE(runs[0] == runs[1]);
}

TEST(MoeLayer, NoiseOnlyInTrainingAndKeyedByTheForward) {
  for (auto noise : {moe::NoiseKind::jitter, moe::NoiseKind::gaussian, moe::NoiseKind::learned}) {
    MoEConfig cfg;
    cfg.noise = noise;
    cfg.noise_std = 4.0;
    cfg.jitter_eps = 0.5;
    auto a = make_layer(cfg, 6, 7, 0, DType::f32, 51), b = make_layer(cfg, 6, 7, 0, DType::f32, 51);
    if (noise == moe::NoiseKind::learned) {
      NoGradGuard ng;
      a->router->tensor("noise_weight").detach().fill_(0.5);
      b->router->tensor("noise_weight").detach().fill_(0.5);
    }
    Tensor x = test::randn(Shape{40, 6}, 52);
    a->eval();
    Tensor e1 = test::run_layer(*a, x, {}, 0, 1).y, e2 = test::run_layer(*a, x, {}, 0, 2).y;
    EXPECT_EQ(test::max_rel_diff(e1, e2), 0.0) << "evaluation draws no noise";
    a->train();
    Tensor t1 = test::run_layer(*a, x, {}, 0, 1).y, t2 = test::run_layer(*a, x, {}, 0, 2).y;
    Tensor t1_again = test::run_layer(*a, x, {}, 0, 1).y, tb = test::run_layer(*b, x, {}, 0, 1).y;
    EXPECT_GT(test::max_rel_diff(t1, t2), 1e-4) << "another forward draws other noise for noise " << moe::noise_name(noise);
    EXPECT_EQ(test::max_rel_diff(t1, t1_again), 0.0) << "the same forward key draws the same noise";
    EXPECT_EQ(test::max_rel_diff(t1, tb), 0.0) << "a replica with the same weights draws the same noise";
  }
}

TEST(MoeLayer, TemperatureAnnealsLinearlyWithTheContextStep) {
  MoEConfig cfg;
  cfg.num_experts = 4;
  cfg.top_k = 4;  // every expert contributes, so the output depends on the tempered probabilities
  cfg.temperature = 2.0;
  cfg.temperature_final = 0.5;
  cfg.temperature_anneal_steps = 10;
  auto layer = make_layer(cfg, 4, 4, 0, DType::f64);
  EXPECT_DOUBLE_EQ(layer->router->temperature_at(0), 2.0);
  EXPECT_DOUBLE_EQ(layer->router->temperature_at(5), 1.25);
  EXPECT_DOUBLE_EQ(layer->router->temperature_at(50), 0.5);
  // A forward at step 5 routes as a layer of constant temperature 1.25 with the same weights.
  MoEConfig fixed = cfg;
  fixed.temperature = 1.25;
  fixed.temperature_anneal_steps = 0;
  auto constant = make_layer(fixed, 4, 4, 0, DType::f64);
  Tensor x = test::randn(Shape{12, 4}, 53, 1.0, DType::f64);
  Tensor at5 = test::run_layer(*layer, x, {}, 5).y;
  EXPECT_LT(test::max_rel_diff(at5, test::run_layer(*constant, x).y), 1e-14);
  EXPECT_GT(test::max_rel_diff(at5, test::run_layer(*layer, x, {}, 0).y), 1e-6);
}

TEST(MoeLayer, DropsIntoTransformerBlockWithNamedParameters) {
  MoEConfig cfg;
  cfg.num_experts = 4;
  cfg.shared_experts = 1;
  cfg.shared_expert_gate = true;
  cfg.z_loss = 1e-3;
  RngStream rng(61, "init");
  nn::TransformerBlockOptions bo;
  bo.dim = 8;
  bo.num_heads = 2;
  bo.ffn_name = "moe";
  MoELayerOptions mo;
  mo.d_model = 8;
  mo.d_ff = 16;
  auto moe_layer = std::make_shared<MoELayer>(cfg, mo, rng);
  nn::TransformerBlock block(bo, rng, moe_layer);
  std::vector<std::string> names;
  for (auto& [n, t] : block.named_parameters()) names.push_back(n);
  for (std::string want : {"moe.router.weight", "moe.experts.w1", "moe.experts.b1", "moe.experts.w2", "moe.experts.b2",
                           "moe.shared_experts.w1", "moe.shared_expert_gate.weight"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  test::LayerRun o = test::run_layer(block, test::randn(Shape{2, 5, 8}, 62));
  EXPECT_EQ(o.y.shape(), Shape({2, 5, 8}));
  std::vector<std::string> terms;
  for (auto& a : o.aux) terms.push_back(a.full_name());
  EXPECT_EQ(terms, (std::vector<std::string>{"moe.switch_loss", "moe.z_loss"}));
  // Routing is tallied under the layer's path: 2 x 5 tokens, one choice each per top_k.
  const moe::RoutingTally& t = o.tally(*moe_layer);
  EXPECT_EQ(moe_layer->path(), "moe");
  EXPECT_EQ(t.tokens, 10);
  EXPECT_EQ(t.expert_counts.size(), 4u);
  EXPECT_DOUBLE_EQ(t.assignments, 10.0 * cfg.top_k);
}

}  // namespace
}  // namespace moelab
