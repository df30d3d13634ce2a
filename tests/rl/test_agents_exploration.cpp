// Epsilon schedules at their endpoints (MinAtar dqn.py, purejaxql PQN) and epsilon-greedy selection:
// greedy at 0, uniform at 1, the right exploration rate between, deterministic for a seed and resumable.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "rl/agents/exploration.h"

using namespace moelab;
using namespace moelab::rl;

TEST(EpsilonSchedule, DqnAsInMinAtarExample) {
  const LinearSchedule eps = dqn_epsilon_schedule();
  // dqn.py: random actions while t < 5000, then
  // epsilon = 0.1 if t - 5000 >= 100000 else ((0.1 - 1.0) / 100000) * (t - 5000) + 1.0
  auto reference = [](int64_t t) {
    if (t < 5000) return 1.0;
    return t - 5000 >= 100000 ? 0.1 : ((0.1 - 1.0) / 100000) * (t - 5000) + 1.0;
  };
  for (int64_t t : {0, 1, 4999, 5000, 5001, 30000, 55000, 104999, 105000, 105001, 5000000})
    EXPECT_NEAR(eps.at(t), reference(t), 1e-12) << t;
  EXPECT_DOUBLE_EQ(eps.at(0), 1.0);
  EXPECT_DOUBLE_EQ(eps.at(5000), 1.0);
  EXPECT_DOUBLE_EQ(eps.at(55000), 0.55);
  EXPECT_DOUBLE_EQ(eps.at(105000), 0.1);
  EXPECT_DOUBLE_EQ(eps.at(4999999), 0.1);
}

TEST(EpsilonSchedule, PqnAsInPurejaxql) {
  // pqn_minatar: NUM_UPDATES_DECAY = 1e7 // 32 // 128 = 2441; linear_schedule(1, 0.05, 0.1 * 2441) at n_updates.
  const int64_t updates = 10000000 / 32 / 128;
  ASSERT_EQ(updates, 2441);
  const LinearSchedule eps = pqn_epsilon_schedule(updates);
  EXPECT_DOUBLE_EQ(eps.at(0), 1.0);
  EXPECT_NEAR(eps.at(122), 1.0 - 0.95 * 122 / 244.1, 1e-12);
  EXPECT_NEAR(eps.at(244), 1.0 - 0.95 * 244 / 244.1, 1e-12);
  EXPECT_GT(eps.at(244), 0.05);
  EXPECT_DOUBLE_EQ(eps.at(245), 0.05);
  EXPECT_DOUBLE_EQ(eps.at(2440), 0.05);
  EXPECT_THROW(pqn_epsilon_schedule(0), std::invalid_argument);
}

namespace {
std::vector<float> random_q(int n, int a, uint64_t seed) {
  RngStream rng(seed, "q");
  std::vector<float> q(static_cast<size_t>(n) * a);
  for (float& v : q) v = static_cast<float>(rng.normal());
  return q;
}
}  // namespace

TEST(EpsilonGreedy, GreedyAtZeroWithFirstMaximumOnTies) {
  const std::vector<float> q = {1, 3, 3, 0,  //
                                -1, -2, -1, -5,
                                0, 0, 0, 7};
  std::vector<int> actions(3);
  greedy_actions(q.data(), 3, 4, actions.data());
  EXPECT_EQ(actions, (std::vector<int>{1, 0, 3}));
  EpsilonGreedy explore(1);
  std::vector<int> chosen(3);
  explore.select(q.data(), 3, 4, 0.0, chosen.data());
  EXPECT_EQ(chosen, actions);
  EXPECT_EQ(explore.rng().counter(), 6u);  // two draws per row, whatever epsilon is
}

TEST(EpsilonGreedy, ExplorationRates) {
  const int n = 20000, A = 6;
  const std::vector<float> q = random_q(n, A, 2);
  std::vector<int> greedy(n), actions(n);
  greedy_actions(q.data(), n, A, greedy.data());
  EpsilonGreedy explore(7);
  explore.select(q.data(), n, A, 1.0, actions.data());
  std::map<int, int> counts;
  for (int a : actions) ++counts[a];
  ASSERT_EQ(counts.size(), 6u);
  for (const auto& [a, c] : counts) EXPECT_NEAR(c, n / 6.0, 5 * std::sqrt(n / 6.0 * 5 / 6)) << "action " << a;
  explore.select(q.data(), n, A, 0.3, actions.data());
  int off_greedy = 0;
  for (int i = 0; i < n; ++i) off_greedy += actions[i] != greedy[i];
  const double p = 0.3 * 5 / 6;  // a random pick equals the greedy action 1 time in 6
  EXPECT_NEAR(off_greedy, n * p, 5 * std::sqrt(n * p * (1 - p)));
}

TEST(EpsilonGreedy, DeterministicForASeedAndResumable) {
  const int n = 128, A = 4;
  const std::vector<float> q = random_q(n, A, 3);
  EpsilonGreedy a(42), b(42), c(43);
  std::vector<int> xa(n), xb(n), xc(n);
  for (int step = 0; step < 3; ++step) {
    a.select(q.data(), n, A, 0.5, xa.data());
    b.select(q.data(), n, A, 0.5, xb.data());
    c.select(q.data(), n, A, 0.5, xc.data());
    EXPECT_EQ(xa, xb);
    EXPECT_NE(xa, xc);
  }
  // A stream saved as (key, counter) continues exactly.
  EpsilonGreedy resumed(RngStream::from_state(a.rng().key(), a.rng().counter()));
  a.select(q.data(), n, A, 0.25, xa.data());
  resumed.select(q.data(), n, A, 0.25, xb.data());
  EXPECT_EQ(xa, xb);
  // ... and so does one restored from its named tensor.
  const auto [name, saved] = a.state();
  EXPECT_EQ(name, "explore.rng");
  EpsilonGreedy restored(0);
  restored.load_state(name, saved);
  a.select(q.data(), n, A, 0.25, xa.data());
  restored.select(q.data(), n, A, 0.25, xb.data());
  EXPECT_EQ(xa, xb);
  EXPECT_THROW(restored.load_state(name, Tensor::zeros(Shape{3}, DType::i64)), std::invalid_argument);
  // The tensor form uses the same draws.
  EpsilonGreedy d(42), e(42);
  d.select(q.data(), n, A, 0.5, xa.data());
  e.select(Tensor::from_vector<float>(q, Shape{n, A}), 0.5, xb);
  EXPECT_EQ(xa, xb);
}
