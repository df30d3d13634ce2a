// The Q-network: tokenization shapes and element order, parameter counts of the controls, and the MoE
// layer's invariants inside it (one expert equals the scaled-expert control, batch independence, routing
// tallied under the layer's path with the labels, gradients for every router and capacity mode).
#include <gtest/gtest.h>

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/routing_stats.h"
#include "core/nn/batch.h"
#include "core/nn/context.h"
#include "core/ops/ops.h"
#include "rl/agents/q_network.h"

namespace moelab::rl {
namespace {

Tensor random_observations(int64_t B, int64_t C, uint64_t seed) {
  RngStream rng(seed, "obs");
  std::vector<float> v(static_cast<size_t>(B * C * 100));
  for (auto& x : v) x = rng.uniform() < 0.2 ? 1.0f : 0.0f;
  return Tensor::from_vector(v, Shape{B, C, 10, 10});
}

moe::MoEConfig moe_config(const std::string& router, int64_t experts, int64_t top_k) {
  moe::MoEConfig c;
  c.router = router;
  c.num_experts = experts;
  c.top_k = top_k;
  c.activation = ExpertActivation::relu;
  c.switch_loss = 0;
  return c;
}

QNetworkOptions options(Penultimate p, Tokenization t = Tokenization::per_conv, bool ln = false) {
  QNetworkOptions o;
  o.in_channels = 4;
  o.num_actions = 3;
  o.penultimate = p;
  o.tokenization = t;
  o.layer_norm = ln;
  o.moe = moe_config("soft_moe", 4, 1);
  o.moe.expert_d_ff = 32;
  return o;
}

TEST(QNetwork, TokenizationsHaveTheirShapesAndElementOrder) {
  const int64_t B = 2, P = 64, C = 16;
  std::vector<float> v(B * P * C);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor h = Tensor::from_vector(v, Shape{B, P, C});
  EXPECT_EQ(num_tokens(Tokenization::per_conv, P, C), 64);
  EXPECT_EQ(token_dim(Tokenization::per_conv, P, C), 16);
  EXPECT_EQ(num_tokens(Tokenization::per_feat, P, C), 16);
  EXPECT_EQ(token_dim(Tokenization::per_feat, P, C), 64);
  EXPECT_EQ(num_tokens(Tokenization::per_samp, P, C), 1);
  EXPECT_EQ(token_dim(Tokenization::per_samp, P, C), 1024);

  const Tensor conv = tokenize(h, Tokenization::per_conv), feat = tokenize(h, Tokenization::per_feat),
               samp = tokenize(h, Tokenization::per_samp);
  EXPECT_EQ(conv.shape(), (Shape{B, 64, 16}));
  EXPECT_EQ(feat.shape(), (Shape{B, 16, 64}));
  EXPECT_EQ(samp.shape(), (Shape{B, 1, 1024}));
  const auto fv = feat.to_vector<float>(), sv = samp.to_vector<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const float want = v[(b * P + p) * C + c];  // position p's channel c
        ASSERT_EQ(fv[(b * C + c) * P + p], want);   // PerFeat: token c holds channel c's map
        ASSERT_EQ(sv[b * P * C + p * C + c], want); // PerSamp: the whole vector
      }
}

TEST(QNetwork, DenseHasMinAtarsLayersAndParameterCount) {
  RngStream rng(1, "init");
  QNetwork net(options(Penultimate::dense), rng);
  // Conv2d(4, 16, 3) + Linear(1024, 128) + Linear(128, 3), as MinAtar's QNetwork.
  EXPECT_EQ(net.num_parameters(), (4 * 16 * 9 + 16) + (1024 * 128 + 128) + (128 * 3 + 3));
  const Tensor q = net.forward(random_observations(5, 4, 2));
  EXPECT_EQ(q.shape(), (Shape{5, 3}));
  RngStream rng2(1, "init");
  QNetwork with_ln(options(Penultimate::dense, Tokenization::per_conv, true), rng2);
  EXPECT_EQ(with_ln.num_parameters(), net.num_parameters() + 2 * 16 + 2 * 128);
}

TEST(QNetwork, WideDenseMatchesTheMoeParameterCount) {
  for (Tokenization t : {Tokenization::per_conv, Tokenization::per_feat, Tokenization::per_samp})
    for (bool ln : {false, true}) {
      SCOPED_TRACE(std::string(tokenization_name(t)) + (ln ? " ln" : ""));
      const int64_t moe_params = q_network_parameters(options(Penultimate::moe, t, ln));
      RngStream rng(3, "init");
      QNetwork wide(options(Penultimate::wide_dense, t, ln), rng);
      // One unit of width changes the count by 1024 + 1 + actions (+ 2 with LayerNorm).
      const int64_t unit = 1024 + 1 + 3 + (ln ? 2 : 0);
      EXPECT_LE(std::llabs(wide.num_parameters() - moe_params), unit / 2 + 1);
      EXPECT_GT(wide.hidden_width(), 0);
    }
}

TEST(QNetwork, ScaledExpertIsNumExpertsTimesWider) {
  RngStream rng(4, "init");
  QNetwork net(options(Penultimate::scaled_expert, Tokenization::per_feat), rng);
  EXPECT_EQ(net.expert->options.hidden, 4 * 32);
  EXPECT_EQ(net.expert->options.dim, 64);
  EXPECT_EQ(net.head->in_features, 16 * 64);
  EXPECT_EQ(net.forward(random_observations(3, 4, 5)).shape(), (Shape{3, 3}));
}

// One expert with top-1 token choice routes every token to it with weight 1: the network equals the
// scaled-expert control (width 1 x d_ff) holding the same weights.
TEST(QNetwork, OneExpertTopOneEqualsTheScaledExpertControl) {
  for (Tokenization t : {Tokenization::per_conv, Tokenization::per_feat, Tokenization::per_samp})
    for (bool ln : {false, true}) {
      SCOPED_TRACE(std::string(tokenization_name(t)) + (ln ? " ln" : ""));
      QNetworkOptions o = options(Penultimate::moe, t, ln);
      o.moe = moe_config("top_k", 1, 1);
      o.moe.expert_d_ff = 24;
      RngStream r1(6, "init"), r2(7, "init");
      QNetwork moe_net(o, r1);
      QNetworkOptions so = o;
      so.penultimate = Penultimate::scaled_expert;
      QNetwork control(so, r2);
      {
        NoGradGuard ng;
        control.conv->weight.copy_(moe_net.conv->weight);
        control.conv->bias.copy_(moe_net.conv->bias);
        control.head->weight.copy_(moe_net.head->weight);
        control.head->bias.copy_(moe_net.head->bias);
        if (ln) {
          control.conv_norm->weight.copy_(rand_uniform(Shape{16}, 0.5, 1.5, r1));
          moe_net.conv_norm->weight.copy_(control.conv_norm->weight);
          control.fc_norm->bias.copy_(rand_uniform(control.fc_norm->bias.shape(), -0.5, 0.5, r1));
          moe_net.fc_norm->bias.copy_(control.fc_norm->bias);
        }
        auto& ex = *moe_net.moe_layer->experts;
        control.expert->fc1->weight.copy_(contiguous(transpose(ex.w1.select(0, 0), 0, 1)));
        control.expert->fc1->bias.copy_(reshape(ex.b1, control.expert->fc1->bias.shape()));
        control.expert->fc2->weight.copy_(contiguous(transpose(ex.w2.select(0, 0), 0, 1)));
        control.expert->fc2->bias.copy_(reshape(ex.b2, control.expert->fc2->bias.shape()));
      }
      const Tensor x = random_observations(6, 4, 8);
      const auto a = moe_net.forward(x).to_vector<float>(), b = control.forward(x).to_vector<float>();
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5 * (1 + std::fabs(b[i])));
    }
}

struct RouterCase {
  std::string name;
  moe::MoEConfig cfg;
  bool batch_independent;  // dropless token choice and per-sequence Soft MoE do not mix examples
};

std::vector<RouterCase> router_cases() {
  std::vector<RouterCase> out;
  out.push_back({"top1_dropless", moe_config("top_k", 4, 1), true});
  auto c = moe_config("top_k", 4, 1);
  c.capacity_mode = moe::CapacityMode::capacity;
  c.capacity_factor = 0.5;
  c.min_capacity = 1;
  out.push_back({"top1_capacity_drops", c, false});
  c = moe_config("top_k", 4, 2);
  c.switch_loss = 0.01;
  c.z_loss = 1e-3;
  c.importance_loss = 0.01;
  c.load_loss = 0.01;
  c.local_entropy_loss = 0.01;
  c.global_entropy_loss = 0.01;
  c.noise = moe::NoiseKind::gaussian;
  out.push_back({"top2_all_balancing_noise", c, false});
  out.push_back({"soft_moe", moe_config("soft_moe", 4, 1), true});
  out.push_back({"expert_choice", moe_config("expert_choice", 4, 1), false});
  out.push_back({"hash", moe_config("hash", 4, 1), true});
  out.push_back({"sinkhorn", moe_config("sinkhorn", 4, 1), false});
  c = moe_config("top_k", 4, 1);
  moe::set_moe_config_value(c, "selection_bias", true);
  c.score = moe::ScoreKind::sigmoid;
  out.push_back({"top1_sigmoid_selection_bias", c, true});
  return out;
}

TEST(QNetwork, EveryRouterRoutesTrainsAndTalliesInsideTheNetwork) {
  for (const auto& rc : router_cases())
    for (Tokenization t : {Tokenization::per_conv, Tokenization::per_feat}) {
      SCOPED_TRACE(rc.name + " " + tokenization_name(t));
      EXPECT_TRUE(rc.cfg.validate("model.moe").empty());
      QNetworkOptions o = options(Penultimate::moe, t, true);
      o.moe = rc.cfg;
      o.moe.expert_d_ff = 16;
      RngStream rng(9, "init");
      QNetwork net(o, rng);
      const int64_t B = 8, N = num_tokens(t, 64, 16);
      const Tensor x = random_observations(B, 4, 10);
      nn::Batch batch;
      batch.images = x;
      std::vector<int64_t> labels(B);
      for (int64_t i = 0; i < B; ++i) labels[i] = i % 3;
      batch.labels = Tensor::from_vector(labels, Shape{B});
      moe::RoutingLog routing;
      nn::ForwardContext ctx(batch, 0, nn::forward_draw_key(1, 0, 0));
      ctx.routing = &routing;
      Tensor q = net.forward(x, ctx);
      ASSERT_EQ(q.shape(), (Shape{B, 3}));
      for (float v : q.to_vector<float>()) ASSERT_TRUE(std::isfinite(v));
      const moe::RoutingTally* tally = routing.find("moe");
      ASSERT_NE(tally, nullptr);
      EXPECT_EQ(tally->tokens, B * N);
      EXPECT_EQ(tally->label_rows(), 3);  // the per-example labels reach every token
      Tensor loss = sum(square(q));
      if (Tensor aux = ctx.total_aux_loss(); aux.defined()) loss = loss + aux;
      loss.backward();
      // The conv below the MoE layer and the router receive gradient through the routed tokens.
      EXPECT_TRUE(net.conv->weight.grad().defined());
      double router_norm = 0;
      for (const auto& [name, p] : net.moe_layer->named_parameters())
        if (name.rfind("router.", 0) == 0 && p.grad().defined())
          for (float g : p.grad().to_vector<float>()) router_norm += std::fabs(g);
      if (rc.cfg.router != "hash") {
        EXPECT_GT(router_norm, 0.0) << "the router got no gradient";
      }
      if (rc.batch_independent) {
        NoGradGuard ng;
        const auto all = net.forward(x).to_vector<float>();
        const auto one = net.forward(slice(x, 0, 5, 6)).to_vector<float>();
        for (int a = 0; a < 3; ++a) EXPECT_NEAR(one[a], all[5 * 3 + a], 1e-5 * (1 + std::fabs(all[5 * 3 + a])));
      }
    }
}

TEST(QNetwork, ParsesItsNamesAndRejectsOthers) {
  EXPECT_EQ(parse_penultimate("wide_dense"), Penultimate::wide_dense);
  EXPECT_EQ(parse_tokenization("per_samp"), Tokenization::per_samp);
  EXPECT_THROW(parse_penultimate("sparse"), std::invalid_argument);
  EXPECT_THROW(parse_tokenization("per_pixel"), std::invalid_argument);
}

}  // namespace
}  // namespace moelab::rl
