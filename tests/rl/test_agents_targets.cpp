// DQN targets, PQN lambda-returns and the Q regression losses against hand-computed cases: termination and
// truncation at different positions, the auto-reset observation never bootstrapped from, Huber values and
// gradients (float64 finite differences).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/ops/ops.h"
#include "rl/agents/targets.h"

using namespace moelab;
using namespace moelab::rl;

TEST(DqnTargets, HandComputed) {
  // gamma 0.5: r + 0.5 * (1 - terminated) * max_a next_q
  const std::vector<float> rewards = {1.f, 0.f, -1.f, 2.f};
  const std::vector<uint8_t> terminated = {0, 1, 0, 0};
  const std::vector<float> next_q = {0.f, 4.f, 2.f,     // max 4
                                     9.f, 9.f, 9.f,     // terminated: ignored
                                     -2.f, -6.f, -4.f,  // max -2
                                     1.f, 3.f, 3.f};    // max 3
  std::vector<float> out(4);
  dqn_targets(rewards, terminated, next_q.data(), 3, 0.5, out);
  EXPECT_FLOAT_EQ(out[0], 3.f);
  EXPECT_FLOAT_EQ(out[1], 0.f);
  EXPECT_FLOAT_EQ(out[2], -2.f);
  EXPECT_FLOAT_EQ(out[3], 3.5f);

  // The tensor form gives the same numbers and no gradient path.
  Tensor q = Tensor::from_vector<float>(next_q, Shape{4, 3});
  q.requires_grad_();
  Tensor t = dqn_targets(Tensor::from_vector<float>(rewards, Shape{4}),
                         Tensor::from_vector<float>({0.f, 1.f, 0.f, 0.f}, Shape{4}), q, 0.5);
  EXPECT_FALSE(t.requires_grad());
  EXPECT_EQ(t.to_vector<float>(), out);
  EXPECT_THROW(dqn_targets(Tensor::zeros(Shape{3}), Tensor::zeros(Shape{4}), q, 0.5), std::invalid_argument);
}

namespace {
// T = 4 steps of N = 4 envs, gamma = lambda = 0.5 (exact in binary). Env 0 runs through, env 1 terminates at
// t = 1, env 2 is truncated at t = 2, env 3 terminates at the last step and is truncated at t = 0.
struct Case {
  static constexpr int T = 4, N = 4;
  std::vector<float> rewards = {1, 0, 1, 2,  //
                                2, 1, 0, 0,  //
                                0, 0, 3, 1,  //
                                4, 0, 0, 5};
  std::vector<uint8_t> terminated = {0, 0, 0, 0,  //
                                     0, 1, 0, 0,  //
                                     0, 0, 0, 0,  //
                                     0, 0, 0, 1};
  std::vector<uint8_t> truncated = {0, 0, 0, 1,  //
                                    0, 0, 0, 0,  //
                                    0, 0, 1, 0,  //
                                    0, 0, 0, 0};
  // values[t] = max_a Q(obs_t); after an episode ends the next row holds the reset observation's value (100),
  // which no return may use.
  std::vector<float> values = {8, 2, 6, 4,      //
                               4, 6, 2, 100,    //
                               2, 100, 4, 2,    //
                               6, 4, 100, 8,    //
                               10, 12, 14, 100};
  std::vector<float> final_values = {0, 0, 0, 20,  //
                                     0, 0, 0, 0,   //
                                     0, 0, 16, 0,  //
                                     0, 0, 0, 0};
};
}  // namespace

TEST(LambdaReturns, HandComputedWithTerminationAndTruncation) {
  Case c;
  std::vector<float> g(Case::T * Case::N);
  lambda_returns(Case::T, Case::N, c.rewards.data(), c.terminated.data(), c.truncated.data(), c.values.data(),
                 c.final_values.data(), {0.5, 0.5, true}, g.data());
  auto G = [&](int t, int n) { return g[t * Case::N + n]; };
  // Env 0: G3 = 4 + 0.5*10 = 9; G2 = 0 + 0.5*(0.5*6 + 0.5*9) = 3.75; G1 = 2 + 0.5*(0.5*2 + 0.5*3.75) = 3.4375;
  //        G0 = 1 + 0.5*(0.5*4 + 0.5*3.4375) = 2.859375
  EXPECT_FLOAT_EQ(G(3, 0), 9.f);
  EXPECT_FLOAT_EQ(G(2, 0), 3.75f);
  EXPECT_FLOAT_EQ(G(1, 0), 3.4375f);
  EXPECT_FLOAT_EQ(G(0, 0), 2.859375f);
  // Env 1 terminates at t = 1: G1 = 1 (the reset value 100 at t = 2 is not used); G0 = 0 + 0.5*(0.5*6 + 0.5*1)
  // = 1.75. After the reset: G3 = 0 + 0.5*12 = 6; G2 = 0 + 0.5*(0.5*4 + 0.5*6) = 2.5.
  EXPECT_FLOAT_EQ(G(1, 1), 1.f);
  EXPECT_FLOAT_EQ(G(0, 1), 1.75f);
  EXPECT_FLOAT_EQ(G(3, 1), 6.f);
  EXPECT_FLOAT_EQ(G(2, 1), 2.5f);
  // Env 2 truncated at t = 2: G2 = 3 + 0.5*16 = 11 (true last observation, not the reset value 100);
  // G1 = 0 + 0.5*(0.5*4 + 0.5*11) = 3.75; G0 = 1 + 0.5*(0.5*2 + 0.5*3.75) = 2.4375; G3 = 0 + 0.5*14 = 7.
  EXPECT_FLOAT_EQ(G(2, 2), 11.f);
  EXPECT_FLOAT_EQ(G(1, 2), 3.75f);
  EXPECT_FLOAT_EQ(G(0, 2), 2.4375f);
  EXPECT_FLOAT_EQ(G(3, 2), 7.f);
  // Env 3 truncated at t = 0: G0 = 2 + 0.5*20 = 12; terminated at t = 3: G3 = 5 (the bootstrap value 100 at
  // row T is not used); G2 = 1 + 0.5*(0.5*8 + 0.5*5) = 4.25; G1 = 0 + 0.5*(0.5*2 + 0.5*4.25) = 1.5625.
  EXPECT_FLOAT_EQ(G(0, 3), 12.f);
  EXPECT_FLOAT_EQ(G(3, 3), 5.f);
  EXPECT_FLOAT_EQ(G(2, 3), 4.25f);
  EXPECT_FLOAT_EQ(G(1, 3), 1.5625f);
}

TEST(LambdaReturns, TruncationAsTerminationWhenAsked) {
  Case c;
  std::vector<float> g(Case::T * Case::N);
  lambda_returns(Case::T, Case::N, c.rewards.data(), c.terminated.data(), c.truncated.data(), c.values.data(),
                 c.final_values.data(), {0.5, 0.5, false}, g.data());
  EXPECT_FLOAT_EQ(g[2 * Case::N + 2], 3.f);  // env 2, t = 2: just the reward
  EXPECT_FLOAT_EQ(g[0 * Case::N + 3], 2.f);  // env 3, t = 0
  EXPECT_FLOAT_EQ(g[1 * Case::N + 2], 0.f + 0.5f * (0.5f * 4 + 0.5f * 3));
}

// The scan form of the recursion (bootstrap + gamma * lambda * (G_{t+1} - V_{t+1}), then done -> r, as
// purejaxql writes it but with V_{T-1} carried into step T-2), on random rollouts: equal to lambda_returns
// with truncation treated as termination.
TEST(LambdaReturns, MatchesTheScanFormOnRandomRollouts) {
  const int T = 32, N = 16;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> value(-3.f, 3.f);
  std::bernoulli_distribution ends(0.08);
  std::vector<float> rewards(T * N), values((T + 1) * N), finals(T * N, 0.f), got(T * N);
  std::vector<uint8_t> terminated(T * N), truncated(T * N);
  for (int i = 0; i < T * N; ++i) {
    rewards[i] = std::round(value(gen));
    terminated[i] = ends(gen);
    truncated[i] = !terminated[i] && ends(gen);
  }
  for (float& v : values) v = value(gen);
  const double gamma = 0.99, lambda = 0.65;
  lambda_returns(T, N, rewards.data(), terminated.data(), truncated.data(), values.data(), finals.data(),
                 {gamma, lambda, false}, got.data());
  for (int n = 0; n < N; ++n) {
    auto done = [&](int t) { return double(terminated[t * N + n] || truncated[t * N + n]); };
    double next_q = values[T * N + n] * (1 - done(T - 1));
    double ret = rewards[(T - 1) * N + n] + gamma * next_q;
    EXPECT_NEAR(got[(T - 1) * N + n], ret, 1e-5);
    next_q = values[(T - 1) * N + n];
    for (int t = T - 2; t >= 0; --t) {
      const double r = rewards[t * N + n], d = done(t);
      const double boot = r + gamma * (1 - d) * next_q;
      ret = boot + gamma * lambda * (ret - next_q);
      ret = (1 - d) * ret + d * r;
      next_q = values[t * N + n];
      ASSERT_NEAR(got[t * N + n], ret, 1e-4) << "t " << t << " env " << n;
    }
  }
}

TEST(LambdaReturns, LambdaZeroIsOneStepAndLambdaOneIsMonteCarlo) {
  const int T = 5, N = 1;
  const std::vector<float> rewards = {1, 2, 3, 4, 5};
  const std::vector<uint8_t> none(T, 0);
  const std::vector<float> values = {10, 20, 30, 40, 50, 60}, finals(T, 0.f);
  std::vector<float> g(T);
  lambda_returns(T, N, rewards.data(), none.data(), none.data(), values.data(), finals.data(), {0.5, 0.0, true},
                 g.data());
  for (int t = 0; t < T; ++t) EXPECT_FLOAT_EQ(g[t], rewards[t] + 0.5f * values[t + 1]);
  lambda_returns(T, N, rewards.data(), none.data(), none.data(), values.data(), finals.data(), {0.5, 1.0, true},
                 g.data());
  // 1 + .5*2 + .25*3 + .125*4 + .0625*5 + .03125*60
  EXPECT_FLOAT_EQ(g[0], 1 + 1 + 0.75f + 0.5f + 0.3125f + 1.875f);
}

TEST(Huber, ValuesAndGradientOfTheTakenAction) {
  // q (3, 2); actions pick 1.5, -1.0, 4.0 against targets 1.0, 2.0, 0.5: differences 0.5, -3, 3.5
  Tensor q = Tensor::from_vector<float>({0.f, 1.5f, -1.f, 7.f, 2.f, 4.f}, Shape{3, 2});
  q.requires_grad_();
  Tensor actions = Tensor::from_vector<int64_t>({1, 0, 1}, Shape{3});
  Tensor targets = Tensor::from_vector<float>({1.f, 2.f, 0.5f}, Shape{3});
  Tensor loss = dqn_loss(q, actions, targets);
  // 0.5 * 0.25 = 0.125; |d| > 1: |d| - 0.5 = 2.5 and 3.0; mean = 5.625 / 3
  EXPECT_FLOAT_EQ(static_cast<float>(loss.item()), 5.625f / 3);
  loss.backward();
  const std::vector<float> grad = q.grad().to_vector<float>();
  const std::vector<float> expected = {0.f, 0.5f / 3, -1.f / 3, 0.f, 0.f, 1.f / 3};
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(grad[i], expected[i]) << i;

  Tensor q2 = Tensor::from_vector<float>({0.f, 1.5f, -1.f, 7.f, 2.f, 4.f}, Shape{3, 2});
  EXPECT_FLOAT_EQ(static_cast<float>(pqn_loss(q2, actions, targets).item()),
                  0.5f * (0.25f + 9.f + 12.25f) / 3);
}

TEST(Huber, GradientMatchesFiniteDifferencesInFloat64) {
  std::mt19937 gen(3);
  std::normal_distribution<double> normal(0.0, 2.0);
  const int B = 6, A = 4;
  std::vector<double> qv(B * A), tv(B);
  for (double& v : qv) v = normal(gen);
  for (double& v : tv) v = normal(gen);
  const Tensor actions = Tensor::from_vector<int64_t>({0, 3, 1, 2, 3, 0}, Shape{B});
  const Tensor targets = Tensor::from_vector<double>(tv, Shape{B});
  for (int kind = 0; kind < 2; ++kind) {
    auto loss_at = [&](const std::vector<double>& values) {
      Tensor q = Tensor::from_vector<double>(values, Shape{B, A});
      return (kind == 0 ? dqn_loss(q, actions, targets) : pqn_loss(q, actions, targets)).item();
    };
    Tensor q = Tensor::from_vector<double>(qv, Shape{B, A});
    q.requires_grad_();
    (kind == 0 ? dqn_loss(q, actions, targets) : pqn_loss(q, actions, targets)).backward();
    const std::vector<double> grad = q.grad().to_vector<double>();
    for (int i = 0; i < B * A; ++i) {
      std::vector<double> plus = qv, minus = qv;
      plus[i] += 1e-6;
      minus[i] -= 1e-6;
      EXPECT_NEAR(grad[i], (loss_at(plus) - loss_at(minus)) / 2e-6, 1e-7) << "kind " << kind << " element " << i;
    }
  }
}
