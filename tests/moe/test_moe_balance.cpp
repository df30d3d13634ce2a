// Balancing terms (docs/moe.md §2): hand-computed values on small fixed examples, float64 finite-
// difference gradients (standalone and through the whole layer with the expert choice held fixed by
// replay), and the aux-loss-free bias update equalizing a skewed router.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/autograd/autograd.h"
#include "core/moe/balance.h"
#include "core/moe/moe_layer.h"
#include "core/ops/ops.h"
#include "core/helpers_grad.h"
#include "moe/helpers_moe.h"

namespace moelab {
namespace {

using moe::MoEConfig;
using moe::MoELayer;

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }
double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

const std::vector<double> kP = {0.5, 0.3, 0.2, 0.1, 0.7, 0.2, 0.2, 0.2, 0.6, 0.6, 0.3, 0.1};  // (4, 3)

TEST(MoeBalance, SwitchLossHandComputed) {
  // Top-1 choices [0, 1, 2, 0]: c = [2, 1, 1], f = [.5, .25, .25], P = [.35, .375, .275].
  Tensor v = moe::switch_balance_loss(f64(kP, Shape{4, 3}), {2, 1, 1}, 4, 1);
  EXPECT_NEAR(v.item(), 3 * (0.5 * 0.35 + 0.25 * 0.375 + 0.25 * 0.275), 1e-12);
  EXPECT_NEAR(v.item(), 1.0125, 1e-12);
  // Sequence scope, two sequences of two tokens: 3 * mean(0.4, 0.375).
  Tensor s = moe::switch_balance_loss_per_sequence(f64(kP, Shape{4, 3}), {1, 1, 0, 1, 0, 1}, 2, 1);
  EXPECT_NEAR(s.item(), 1.1625, 1e-12);
  // Uniform routing gives exactly 1.
  std::vector<double> u(12, 1.0 / 3);
  EXPECT_NEAR(moe::switch_balance_loss(f64(u, Shape{4, 3}), {4, 4, 4}, 4, 3).item(), 1.0, 1e-12);
}

TEST(MoeBalance, SwitchLossGradientIsEFOverT) {
  std::vector<double> counts{2, 1, 1};
  EXPECT_EQ(test::check_gradients([&](const std::vector<Tensor>& in) {
              return moe::switch_balance_loss(in[0], counts, 4, 1);
            }, {f64(kP, Shape{4, 3})}), "");
  Tensor p = f64(kP, Shape{4, 3}).requires_grad_();
  moe::switch_balance_loss(p, counts, 4, 1).backward();
  std::vector<double> g = p.grad().to_vector<double>();
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(g[t * 3 + i], 3.0 * (counts[i] / 4.0) / 4.0, 1e-12);
  EXPECT_EQ(test::check_gradients([&](const std::vector<Tensor>& in) {
              return moe::switch_balance_loss_per_sequence(in[0], {1, 1, 0, 1, 0, 1}, 2, 1);
            }, {f64(kP, Shape{4, 3})}), "");
}

TEST(MoeBalance, ZLossHandComputedAndGradientMatchesSpec) {
  Tensor z = f64({0, 0, std::log(3.0), 0}, Shape{2, 2});
  double ln2 = std::log(2.0);
  EXPECT_NEAR(moe::router_z_loss(z).item(), 2.5 * ln2 * ln2, 1e-12);
  Tensor zr = test::randn(Shape{5, 4}, 3, 2.0, DType::f64).requires_grad_();
  moe::router_z_loss(zr).backward();
  std::vector<double> zv = zr.detach().to_vector<double>(), g = zr.grad().to_vector<double>();
  for (int t = 0; t < 5; ++t) {
    double mx = -1e300, se = 0;
    for (int j = 0; j < 4; ++j) mx = std::max(mx, zv[t * 4 + j]);
    for (int j = 0; j < 4; ++j) se += std::exp(zv[t * 4 + j] - mx);
    double lse = mx + std::log(se);
    for (int j = 0; j < 4; ++j)  // dL/dz = (2 / T) lse softmax(z)
      EXPECT_NEAR(g[t * 4 + j], 2.0 / 5.0 * lse * std::exp(zv[t * 4 + j] - lse), 1e-12);
  }
  EXPECT_EQ(test::check_gradients([](const std::vector<Tensor>& in) { return moe::router_z_loss(in[0]); },
                                  {test::randn(Shape{6, 5}, 4, 1.5, DType::f64)}), "");
}

TEST(MoeBalance, EntropyTermsHandComputed) {
  Tensor p = f64({0.5, 0.5, 1.0, 0.0}, Shape{2, 2});
  double ln2 = std::log(2.0), h = -(0.75 * std::log(0.75) + 0.25 * std::log(0.25));
  EXPECT_NEAR(moe::local_entropy(p).item(), ln2 / 2, 1e-12);
  EXPECT_NEAR(moe::global_entropy(p, 0).item(), -h, 1e-12);
  EXPECT_NEAR(moe::global_entropy(p, 1.0).item(), 1.0 - h, 1e-12);
  EXPECT_NEAR(moe::global_entropy(p, 0.3).item(), 0.0, 1e-12) << "inactive above the threshold";
  for (double thr : {0.0, 2.0}) {
    EXPECT_EQ(test::check_gradients([&](const std::vector<Tensor>& in) {
                Tensor q = softmax(in[0], -1);
                return moe::local_entropy(q) + moe::global_entropy(q, thr) * 0.7;
              }, {test::randn(Shape{6, 4}, 5, 1.0, DType::f64)}), "");
  }
}

TEST(MoeBalance, ImportanceAndLoadHandComputed) {
  Tensor gates = f64({0.6, 0, 0.4, 0, 1, 0}, Shape{2, 3});
  EXPECT_NEAR(moe::importance_loss(gates).item(), 0.14, 1e-9);  // importance [.6, 1, .4]
  // One token, k = 1: expert 0 is selected (noisy logit 1.2); thresholds 0.1 (for 0) and 1.2 (for 1, 2).
  Tensor clean = f64({1, 0, -1}, Shape{1, 3}), noisy = f64({1.2, 0.1, -2}, Shape{1, 3}), sigma = f64({1, 1, 1}, Shape{1, 3});
  std::vector<double> load{Phi(0.9), Phi(-1.2), Phi(-2.2)};
  double m = (load[0] + load[1] + load[2]) / 3, var = 0;
  for (double l : load) var += (l - m) * (l - m) / 3;
  EXPECT_NEAR(moe::load_loss(clean, noisy, sigma, {1, 0, 0}).item(), var / (m * m + 1e-10), 1e-9);
  // Gradients through the clean logits, the thresholds (noisy logits) and sigma.
  Tensor c2 = test::randn(Shape{5, 4}, 6, 1.0, DType::f64), n2 = test::randn(Shape{5, 4}, 7, 1.0, DType::f64);
  Tensor s2 = add(abs(test::randn(Shape{5, 4}, 8, 1.0, DType::f64)), 0.5);
  std::vector<uint8_t> sel(20, 0);
  std::vector<double> nv = n2.to_vector<double>();
  for (int t = 0; t < 5; ++t) {  // top-2 of the noisy logits
    std::vector<int> idx{0, 1, 2, 3};
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return nv[t * 4 + a] > nv[t * 4 + b]; });
    sel[t * 4 + idx[0]] = sel[t * 4 + idx[1]] = 1;
  }
  EXPECT_EQ(test::check_gradients([&](const std::vector<Tensor>& in) { return moe::load_loss(in[0], in[1], in[2], sel); },
                                  {c2, n2, s2}), "");
  EXPECT_EQ(test::check_gradients([](const std::vector<Tensor>& in) { return moe::importance_loss(in[0]); },
                                  {abs(test::randn(Shape{6, 3}, 9, 1.0, DType::f64))}), "");
}

TEST(MoeBalance, BiasUpdateRule) {
  std::vector<double> b(4, 0.0);
  moe::aux_free_bias_update(b, {10, 2, 4, 4}, 0.1, false);
  EXPECT_EQ(b, (std::vector<double>{-0.1, 0.1, 0.1, 0.1}));
  moe::aux_free_bias_update(b, {5, 5, 5, 5}, 0.1, true);  // balanced: unchanged, then centred
  EXPECT_NEAR(b[0], -0.15, 1e-12);
  EXPECT_NEAR(b[1], 0.05, 1e-12);
}

// total = sum(y * g) + sum_i coef_i * term_i; finite differences over sampled elements of x and every
// parameter, with the routing replayed (expert choice fixed) and the noise stream reset each time.
size_t layer_fd_check(const MoEConfig& cfg, bool training, int64_t seed) {
  RngStream rng(seed, "init");
  moe::MoELayerOptions o;
  o.d_model = 5;
  o.d_ff = 6;
  o.seq_len = 6;
  o.dtype = DType::f64;
  MoELayer layer(cfg, o, rng);
  layer.train(training);
  for (auto& [name, p] : layer.router->named_parameters())
    if (name == "noise_weight") {
      NoGradGuard ng;
      p.detach().copy_(test::randn(p.shape(), seed + 7, 0.5, DType::f64));
    }
  Tensor x = test::randn(Shape{2, 6, 5}, seed + 1, 1.0, DType::f64);
  Tensor g = test::randn(Shape{2, 6, 5}, seed + 2, 1.0, DType::f64);
  // A fixed forward key: every evaluation of the loss draws the same noise.
  const uint64_t key = 77;
  nn::Batch batch;
  if (cfg.local_entropy_loss > 0) {
    batch.groups = Tensor::from_vector(std::vector<int64_t>{0, 1}, Shape{2});
    batch.num_groups = 2;
  }
  test::LayerRun first = test::run_layer(layer, x, batch, 0, key);
  if (cfg.router != "soft_moe")
    batch.replay = std::make_shared<nn::RoutingReplay>(
        nn::RoutingReplay{{layer.path(), std::make_shared<moe::RoutingRecord>(first.record(layer))}});
  size_t num_terms = 0;
  auto total = [&](const Tensor& xin) {
    test::LayerRun out = test::run_layer(layer, xin, batch, 0, key);
    num_terms = out.aux.size();
    Tensor t = sum(out.y * g);
    return out.aux_total.defined() ? t + out.aux_total : t;
  };
  layer.zero_grad();
  Tensor xg = x.clone().requires_grad_();
  total(xg).backward();
  // (name, tensor perturbed in place, its analytic gradient)
  std::vector<std::tuple<std::string, Tensor, Tensor>> targets{{"x", x, xg.grad()}};
  for (auto& [name, p] : layer.named_parameters()) targets.emplace_back(name, p, p.grad());
  const double eps = 1e-6;
  for (auto& [name, t, grad] : targets) {
    EXPECT_TRUE(grad.defined()) << name << " has no gradient";
    if (!grad.defined()) continue;
    std::vector<double> gv = grad.to_vector<double>();
    double* data = t.detach().data<double>();
    int64_t n = t.numel();
    for (int64_t j = 0; j < std::min<int64_t>(n, 10); ++j) {
      int64_t i = (j * 7919 + seed) % n;
      double orig = data[i], lp, lm;
      {
        NoGradGuard ng;
        data[i] = orig + eps;
        lp = total(x).item();
        data[i] = orig - eps;
        lm = total(x).item();
        data[i] = orig;
      }
      double num = (lp - lm) / (2 * eps);
      EXPECT_NEAR(gv[i], num, 2e-6 * std::max(1.0, std::abs(num))) << name << "[" << i << "]";
    }
  }
  return num_terms;
}

MoEConfig small(int64_t E = 4, int64_t k = 2) {
  MoEConfig c;
  c.num_experts = E;
  c.top_k = k;
  c.switch_loss = 0.5;
  return c;
}

TEST(MoeBalance, LayerGradientsWithChoiceHeldFixed) {
  struct Case {
    std::string name;
    MoEConfig cfg;
    bool training;
    size_t terms;
  };
  std::vector<Case> cases;
  MoEConfig c = small();
  c.renormalize = true;
  c.z_loss = 0.3;
  c.local_entropy_loss = 0.2;
  c.global_entropy_loss = 0.4;
  c.importance_loss = 0.6;
  cases.push_back({"softmax_all_terms_grouped_entropy", c, false, 5});
  c = small();
  c.noise = moe::NoiseKind::learned;
  c.load_loss = 0.5;
  c.importance_loss = 0.5;
  cases.push_back({"learned_noise_load_importance", c, true, 3});
  c = small();
  c.noise = moe::NoiseKind::gaussian;
  c.noise_std = 2.0;
  c.load_loss = 0.5;
  cases.push_back({"gaussian_noise_load", c, true, 2});
  c = small();
  c.score = moe::ScoreKind::sigmoid;
  c.renormalize = true;
  c.weight_scale = 2.0;
  moe::set_moe_config_value(c, "selection_bias", true);
  c.switch_loss_scope = moe::BalanceScope::sequence;
  cases.push_back({"sigmoid_bias_sequence_scope", c, true, 1});
  c = small();
  c.score = moe::ScoreKind::cosine;
  moe::set_moe_config_value(c, "softmax_order", std::string("after"));
  c.cosine_dim = 3;
  c.temperature = 0.7;
  c.z_loss = 0.1;
  cases.push_back({"cosine_softmax_after", c, true, 2});
  c = small();
  c.router = "expert_choice";
  c.z_loss = 0.1;
  c.global_entropy_loss = 0.3;
  c.global_entropy_threshold = 5.0;
  cases.push_back({"expert_choice", c, true, 3});
  c = small();
  c.router = "sinkhorn";
  cases.push_back({"sinkhorn", c, true, 1});
  c = small();
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0.6;
  c.min_capacity = 1;
  c.drop_policy = moe::DropPolicy::probability;
  c.shared_experts = 2;
  c.shared_expert_gate = true;
  c.activation = ExpertActivation::swiglu;
  cases.push_back({"capacity_probability_shared_swiglu", c, true, 1});
  c = small();
  c.router = "soft_moe";
  moe::set_moe_config_value(c, "soft_normalize", true);
  moe::set_moe_config_value(c, "slots_per_expert", int64_t{2});
  c.shared_experts = 1;
  cases.push_back({"soft_moe", c, true, 0});
  int64_t seed = 100;
  for (auto& cs : cases) {
    SCOPED_TRACE(cs.name);
    EXPECT_EQ(layer_fd_check(cs.cfg, cs.training, seed += 10), cs.terms);
  }
}

// In one process the global scope covers the one micro-batch: the micro-batch term, value and gradient.
// (Several ranks: tests/dist/mpi_test_expert_parallel.cpp.)
TEST(MoeBalance, GlobalScopeInOneProcessIsTheMicroBatchTerm) {
  MoEConfig cfg = small(4, 2);
  EXPECT_TRUE(cfg.validate("model.moe").empty());
  cfg.switch_loss_scope = moe::BalanceScope::global;
  EXPECT_TRUE(cfg.validate("model.moe").empty());
  RngStream xs(3, "x");
  Tensor x = rand_normal({7, 5}, 0.0, 1.0, xs);
  std::vector<double> values, grads;
  for (auto scope : {moe::BalanceScope::micro_batch, moe::BalanceScope::global}) {
    cfg.switch_loss_scope = scope;
    RngStream rng(9, "init");
    MoELayer layer(cfg, {.d_model = 5, .d_ff = 6}, rng);
    nn::ForwardContext ctx;
    layer.forward(x, ctx);
    ASSERT_EQ(ctx.aux_losses().size(), 1u);
    values.push_back(ctx.aux_losses()[0].value.item());
    ctx.aux_losses()[0].value.backward();
    grads.push_back(sum(abs(layer.router->named_parameters().front().second.grad())).item());
  }
  EXPECT_EQ(values[0], values[1]);
  EXPECT_GT(grads[0], 0);
  EXPECT_EQ(grads[0], grads[1]);
}

TEST(MoeBalance, BiasUpdateEqualizesASkewedRouter) {
  MoEConfig cfg;
  cfg.num_experts = 8;
  cfg.top_k = 2;
  cfg.switch_loss = 0;
  cfg.score = moe::ScoreKind::sigmoid;
  moe::set_moe_config_value(cfg, "selection_bias", true);
  moe::set_moe_config_value(cfg, "bias_update_rate", 0.005);
  moe::set_moe_config_value(cfg, "bias_recenter", true);
  RngStream rng(5, "init");
  moe::MoELayerOptions o;
  o.d_model = 8;
  o.d_ff = 8;
  MoELayer layer(cfg, o, rng);
  {
    // Input feature 0 is a constant 1; its router column favours low expert ids strongly.
    NoGradGuard ng;
    Tensor w = layer.router->tensor("weight").detach();
    std::vector<float> wv = w.to_vector<float>();
    for (int e = 0; e < 8; ++e) wv[e * 8] = 3.0f - 0.6f * float(e);
    w.copy_(Tensor::from_vector(wv, w.shape()));
  }
  auto batch = [&](int64_t step) {
    Tensor x = test::randn(Shape{512, 8}, 1000 + step, 1.0);
    std::vector<float> v = x.to_vector<float>();
    for (int t = 0; t < 512; ++t) v[t * 8] = 1.0f;
    return Tensor::from_vector(v, Shape{512, 8});
  };
  // One training step: a forward, then the update from that step's routing (what the Trainer passes).
  auto train_step = [&](int64_t step) {
    test::LayerRun run = test::run_layer(layer, batch(step));
    layer.after_optimizer_step({step + 1, &run.log});
    return run.tally(layer).load();
  };
  const moe::LoadStats first = train_step(0);
  double cv0 = first.cv;
  EXPECT_GT(cv0, 1.0) << "the synthetic router must start skewed";
  EXPECT_GT(first.unused, 0);
  int64_t reached = -1;
  for (int64_t step = 1; step <= 400; ++step)
    if (reached < 0 && train_step(step).cv < 0.2) reached = step;
  EXPECT_GT(reached, 0) << "load CV never fell below 0.2 (from " << cv0 << ")";
  EXPECT_LT(reached, 300);
  // Stays balanced afterwards; the recentred bias has zero mean; evaluation leaves it unchanged.
  double cv_sum = 0;
  for (int64_t step = 401; step <= 420; ++step) cv_sum += train_step(step).cv;
  EXPECT_LT(cv_sum / 20, 0.2);
  std::vector<double> b = layer.router->tensor("bias").to_vector<double>();
  double mb = 0;
  for (double v : b) mb += v / 8;
  EXPECT_NEAR(mb, 0.0, 1e-6);
  // An evaluation forward is not part of any step's routing: the bias stays where training left it.
  layer.eval();
  test::run_layer(layer, batch(500));
  moe::RoutingLog no_training;
  layer.after_optimizer_step({421, &no_training});
  EXPECT_EQ(layer.router->tensor("bias").to_vector<double>(), b) << "frozen in evaluation";
}

TEST(MoeBalance, ExpertChoiceAndSoftMoeNeverDrop) {
  for (std::string router : {"expert_choice", "soft_moe"}) {
    MoEConfig cfg;
    cfg.num_experts = 8;
    cfg.top_k = 2;
    cfg.router = router;
    cfg.capacity_factor = 0.5;
    RngStream rng(7, "init");
    moe::MoELayerOptions o;
    o.d_model = 8;
    o.d_ff = 8;
    o.seq_len = 32;
    MoELayer layer(cfg, o, rng);
    for (int i = 0; i < 3; ++i) {
      test::LayerRun run = test::run_layer(layer, test::randn(Shape{4, 32, 8}, 40 + i, 3.0));
      EXPECT_EQ(run.tally(layer).dropped, 0);
      EXPECT_EQ(run.tally(layer).dropped_fraction(), 0.0);
    }
  }
}

}  // namespace
}  // namespace moelab
