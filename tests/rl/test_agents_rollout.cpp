// PQN rollout storage: what is stored, targets equal to lambda_returns on the stored arrays, epochs of
// shuffled minibatches that partition the rollout, deterministic for a stream state.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "rl/agents/rollout.h"

using namespace moelab;
using namespace moelab::rl;

namespace {
// Fills a rollout with step-dependent data; env 1 terminates at t = 1 and env 2 is truncated at t = 2.
void fill(Rollout& r) {
  const RolloutConfig& c = r.config();
  std::vector<uint8_t> obs(c.num_envs * c.observation_size);
  std::vector<float> q(c.num_envs * c.num_actions), rewards(c.num_envs), finals(c.num_envs);
  std::vector<int> actions(c.num_envs);
  std::vector<uint8_t> term(c.num_envs), trunc(c.num_envs);
  for (int t = 0; t < c.num_steps; ++t) {
    for (int n = 0; n < c.num_envs; ++n) {
      for (int k = 0; k < c.observation_size; ++k) obs[n * c.observation_size + k] = static_cast<uint8_t>(t * 16 + n);
      for (int a = 0; a < c.num_actions; ++a) q[n * c.num_actions + a] = static_cast<float>((t + n + a) % 5);
      actions[n] = (t + n) % c.num_actions;
      rewards[n] = static_cast<float>(t - n);
      term[n] = t == 1 && n == 1 % c.num_envs;
      trunc[n] = t == 2 && n == 2 % c.num_envs;
      finals[n] = 100.f + n;
    }
    r.add(obs.data(), q.data(), actions.data(), rewards.data(), term.data(), trunc.data(), finals.data());
  }
}
}  // namespace

TEST(Rollout, StoresStepsAndComputesTargets) {
  Rollout r({.num_steps = 4, .num_envs = 3, .observation_size = 5, .num_actions = 4});
  EXPECT_THROW(r.finish(nullptr), std::logic_error);
  fill(r);
  EXPECT_TRUE(r.full());
  const std::vector<float> last = {7.f, 8.f, 9.f};
  r.finish(last.data());
  const LambdaReturnOptions options{0.9, 0.65, true};
  r.compute_targets(options);
  // values[t, n] = max over actions of (t + n + a) % 5 for a in 0..3
  for (int t = 0; t < 4; ++t)
    for (int n = 0; n < 3; ++n) {
      float best = 0;
      for (int a = 0; a < 4; ++a) best = std::max(best, static_cast<float>((t + n + a) % 5));
      EXPECT_EQ(r.values()[t * 3 + n], best);
    }
  EXPECT_EQ(std::vector<float>(r.values().end() - 3, r.values().end()), last);
  std::vector<float> final_values(12, 0.f);
  final_values[2 * 3 + 2] = 102.f;  // only the truncated step's final value is kept
  std::vector<float> expected(12);
  lambda_returns(4, 3, r.rewards().data(), r.terminated().data(), r.truncated().data(), r.values().data(),
                 final_values.data(), options, expected.data());
  EXPECT_EQ(r.targets(), expected);
  EXPECT_FLOAT_EQ(r.targets()[1 * 3 + 1], 0.f);          // terminated: reward 1 - 1
  EXPECT_FLOAT_EQ(r.targets()[2 * 3 + 2], 0.f + 0.9f * 102.f);  // truncated: reward 0 + gamma * final value

  std::vector<int32_t> all(12);
  std::iota(all.begin(), all.end(), 0);
  std::vector<uint8_t> obs(12 * 5);
  std::vector<int32_t> actions(12);
  std::vector<float> targets(12);
  r.gather(all, obs.data(), actions.data(), targets.data());
  EXPECT_EQ(obs, r.observations());
  EXPECT_EQ(actions, r.actions());
  EXPECT_EQ(targets, r.targets());
  EXPECT_EQ(obs[(2 * 3 + 1) * 5], 2 * 16 + 1);
  r.clear();
  EXPECT_FALSE(r.full());
}

TEST(Rollout, EpochsOfShuffledMinibatches) {
  // purejaxql's MinAtar sizes: 32 steps x 128 envs, 32 minibatches of 128 per epoch, 2 epochs.
  Rollout r({.num_steps = 32, .num_envs = 128, .observation_size = 1, .num_actions = 3});
  RngStream rng(9, "minibatches");
  std::vector<std::vector<int32_t>> epochs;
  for (int epoch = 0; epoch < 2; ++epoch) {
    r.shuffle(rng);
    std::vector<int32_t> seen;
    for (int m = 0; m < 32; ++m) {
      const auto mb = r.minibatch(m, 32);
      ASSERT_EQ(mb.size(), 128u);
      seen.insert(seen.end(), mb.begin(), mb.end());
    }
    epochs.push_back(seen);
    std::sort(seen.begin(), seen.end());
    for (int i = 0; i < 4096; ++i) ASSERT_EQ(seen[i], i);  // a partition of the rollout
  }
  EXPECT_NE(epochs[0], epochs[1]);
  EXPECT_EQ(rng.counter(), 2u * 4095);
  // The same stream state gives the same permutations.
  Rollout again({.num_steps = 32, .num_envs = 128, .observation_size = 1, .num_actions = 3});
  RngStream rng2(9, "minibatches");
  again.shuffle(rng2);
  EXPECT_EQ(std::vector<int32_t>(again.permutation().begin(), again.permutation().end()), epochs[0]);
  EXPECT_THROW(r.minibatch(0, 30), std::invalid_argument);
  EXPECT_THROW(r.gather(r.minibatch(0, 32), nullptr, nullptr, nullptr), std::logic_error);  // no targets yet
}
