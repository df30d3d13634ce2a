// The expert-parallel MoE layer against the one-process layer: outputs, input gradients and the summed
// parameter gradients of every rank's tokens, dropless and with capacity drops; and the global-scope Switch
// loss against counts summed by hand. Each rank rebuilds every rank's tokens from their seeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/autograd/autograd.h"
#include "core/dist/grad_sync.h"
#include "core/moe/balance.h"
#include "core/moe/moe_layer.h"
#include "dist_testing.h"

namespace moelab {
namespace {

constexpr int64_t kD = 6, kFf = 5;

// Rank r's tokens: a different count per rank (some ranks send an expert nothing).
Tensor tokens_of(int r) { return test::rank_data(40, r, 5 + 3 * r, kD, DType::f32); }
Tensor loss_weights_of(int r) { return test::rank_data(41, r, 5 + 3 * r, kD, DType::f32); }

std::shared_ptr<moe::MoELayer> make_layer(const moe::MoEConfig& cfg) {
  RngStream rng(7, "init");  // the same parameters on every rank
  auto layer = std::make_shared<moe::MoELayer>(cfg, moe::MoELayerOptions{.d_model = kD, .d_ff = kFf}, rng);
  layer->train(true);
  return layer;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to(DType::f64).to_vector<double>(), y = b.to(DType::f64).to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

void expect_equals_one_process(moe::MoEConfig cfg) {
  dist::Communicator& comm = dist::world();
  const int N = comm.size(), me = comm.rank();
  cfg.num_experts = 2 * N;
  cfg.top_k = 2;
  // One process: every rank's tokens through the plain layer; its parameter gradients summed over ranks.
  auto ref = make_layer(cfg);
  Tensor ref_y, ref_gx;
  for (int s = 0; s < N; ++s) {
    Tensor x = tokens_of(s).requires_grad_(true);
    Tensor y = ref->forward(x);
    sum(y * loss_weights_of(s)).backward();
    if (s == me) ref_y = y.detach(), ref_gx = x.grad();
  }
  // Expert parallel over all ranks: this rank's tokens only.
  auto ep = make_layer(cfg);
  ep->parallel = {&comm, 0, N};
  Tensor x = tokens_of(me).requires_grad_(true);
  Tensor y = ep->forward(x);
  sum(y * loss_weights_of(me)).backward();
  EXPECT_LT(max_abs_diff(y, ref_y), 1e-5);
  EXPECT_LT(max_abs_diff(x.grad(), ref_gx), 1e-5);
  std::vector<Tensor> params;
  for (const auto& [name, p] : ep->named_parameters()) params.push_back(p);
  dist::all_reduce_gradients(comm, params);
  const auto ref_params = ref->named_parameters();
  size_t i = 0;
  for (const auto& [name, p] : ep->named_parameters()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(p.grad().defined());
    EXPECT_LT(max_abs_diff(p.grad(), ref_params[i++].second.grad()), 1e-5);
  }
  // Rank me computed only its own experts: its local expert gradient is zero outside its share.
}

TEST(ExpertParallel, DroplessEqualsOneProcess) { expect_equals_one_process(moe::MoEConfig{}); }

TEST(ExpertParallel, CapacityDropsEqualOneProcess) {
  moe::MoEConfig cfg;
  cfg.capacity_mode = moe::CapacityMode::capacity;
  cfg.capacity_factor = 0.5;  // drops on every rank: capacity is applied per rank, as one process applies it
  cfg.min_capacity = 1;
  expect_equals_one_process(cfg);
}

TEST(ExpertParallel, OwnExpertsOnlyGetGradients) {
  dist::Communicator& comm = dist::world();
  const int N = comm.size(), me = comm.rank();
  moe::MoEConfig cfg;
  cfg.num_experts = 2 * N;
  cfg.top_k = 2;
  auto ep = make_layer(cfg);
  ep->parallel = {&comm, 0, N};
  Tensor x = tokens_of(me).requires_grad_(true);
  sum(ep->forward(x) * loss_weights_of(me)).backward();
  std::vector<double> g = ep->experts->w1.grad().to(DType::f64).to_vector<double>();
  const size_t per_expert = static_cast<size_t>(kD * kFf);
  for (int64_t e = 0; e < cfg.num_experts; ++e) {
    double norm = 0;
    for (size_t j = 0; j < per_expert; ++j) norm += std::abs(g[e * per_expert + j]);
    if (e / 2 == me) EXPECT_GT(norm, 0) << "expert " << e;
    else EXPECT_EQ(norm, 0) << "expert " << e << " belongs to rank " << e / 2;
  }
}

// switch_loss_scope = "global": f from the counts of every rank's tokens, P from this rank's tokens.
TEST(ExpertParallel, GlobalSwitchLossUsesCountsOfAllRanks) {
  dist::Communicator& comm = dist::world();
  const int N = comm.size(), me = comm.rank();
  moe::MoEConfig cfg;
  cfg.num_experts = 4;
  cfg.top_k = 1;
  cfg.switch_loss = 1.0;
  cfg.switch_loss_scope = moe::BalanceScope::global;
  auto layer = make_layer(cfg);
  layer->parallel.comm = &comm;
  nn::ForwardContext ctx;
  layer->forward(tokens_of(me), ctx);
  ASSERT_EQ(ctx.aux_losses().size(), 1u);
  const double got = ctx.aux_losses()[0].value.item();
  // By hand: route every rank's tokens with this layer's router, count, and apply E sum_i f_i P_i.
  std::vector<double> counts(4, 0.0);
  double tokens = 0;
  Tensor my_probs;
  for (int s = 0; s < N; ++s) {
    moe::RouteInputs in;
    RngStream unused(0, "unused");
    in.rng = &unused;
    moe::Routing r = layer->router->route(tokens_of(s), in);
    for (int64_t e : r.slot_expert) counts[e] += 1;
    tokens += static_cast<double>(tokens_of(s).size(0));
    if (s == me) my_probs = r.probs.detach();
  }
  std::vector<double> p = my_probs.to(DType::f64).to_vector<double>();
  const int64_t T = my_probs.size(0);
  double expected = 0;
  for (int64_t e = 0; e < 4; ++e) {
    double P = 0;
    for (int64_t t = 0; t < T; ++t) P += p[t * 4 + e];
    expected += 4 * (counts[e] / tokens) * (P / T);
  }
  EXPECT_NEAR(got, expected, 1e-5 * std::abs(expected));
}

}  // namespace
}  // namespace moelab
