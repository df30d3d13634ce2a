// The vectorized environment: equal to N single environments, auto-reset with the true terminal
// observation, protocols, time limits, thread-count independence.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "rl/envs/vector_env.h"

using namespace moelab::rl;

namespace {
// A fixed, game-independent action sequence: a small LCG.
struct ActionStream {
  uint32_t state;
  int next(int n) {
    state = state * 1664525u + 1013904223u;
    return static_cast<int>((state >> 16) % static_cast<uint32_t>(n));
  }
};
}  // namespace

class VectorEnvPerGame : public ::testing::TestWithParam<GameId> {};

TEST_P(VectorEnvPerGame, EqualsSingleEnvironmentsSteppedAlone) {
  const GameId game = GetParam();
  const int n = 5, steps = 1500;
  VectorEnvConfig config = protocol_config("paper", game, n, 1000);
  config.num_threads = 2;
  VectorEnv venv(config);
  venv.reset();
  std::vector<Environment> singles;
  for (int i = 0; i < n; ++i) singles.emplace_back(game, EnvironmentOptions{0.1, true, 1000u + i});
  const int size = venv.observation_size();
  std::vector<uint8_t> obs(size);
  ActionStream stream{7};
  std::vector<int> actions(n);
  int episodes = 0;
  for (int i = 0; i < n; ++i) {
    singles[i].observe(obs.data());
    ASSERT_EQ(std::memcmp(obs.data(), venv.observations() + i * size, size), 0);
  }
  for (int t = 0; t < steps; ++t) {
    for (int& a : actions) a = stream.next(6);
    venv.step(actions);
    for (int i = 0; i < n; ++i) {
      const StepResult r = singles[i].act(actions[i]);
      ASSERT_EQ(venv.rewards()[i], static_cast<float>(r.reward)) << "env " << i << " step " << t;
      ASSERT_EQ(venv.terminated()[i], r.terminal) << "env " << i << " step " << t;
      EXPECT_EQ(venv.truncated()[i], 0);
      singles[i].observe(obs.data());
      if (r.terminal) {
        ++episodes;
        // The true last observation is kept; the batch holds the next episode's first one.
        ASSERT_EQ(std::memcmp(obs.data(), venv.final_observations() + i * size, size), 0);
        singles[i].reset();
        singles[i].observe(obs.data());
      }
      ASSERT_EQ(std::memcmp(obs.data(), venv.observations() + i * size, size), 0) << "env " << i << " step " << t;
    }
  }
  if (game != GameId::kFreeway) {
    EXPECT_GT(episodes, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(AllGames, VectorEnvPerGame,
                         ::testing::Values(GameId::kBreakout, GameId::kAsterix, GameId::kFreeway, GameId::kSeaquest,
                                           GameId::kSpaceInvaders),
                         [](const auto& info) { return std::string(game_info(info.param).name); });

TEST(VectorEnv, EpisodeStatisticsOnTermination) {
  VectorEnv venv(protocol_config("paper", GameId::kBreakout, 3, 5));
  venv.reset();
  std::vector<float> returns(3, 0.f);
  std::vector<int> lengths(3, 0);
  std::vector<int> actions(3);
  ActionStream stream{3};
  int finished = 0;
  for (int t = 0; t < 2000; ++t) {
    for (int& a : actions) a = stream.next(6);
    venv.step(actions);
    for (int i = 0; i < 3; ++i) {
      returns[i] += venv.rewards()[i];
      lengths[i] += 1;
      if (venv.terminated()[i]) {
        EXPECT_EQ(venv.episode_returns()[i], returns[i]);
        EXPECT_EQ(venv.episode_lengths()[i], lengths[i]);
        returns[i] = 0.f;
        lengths[i] = 0;
        ++finished;
      }
    }
  }
  EXPECT_GT(finished, 10);
}

TEST(VectorEnv, GymnaxPresetTruncatesAndUsesMinimalActions) {
  VectorEnvConfig config = protocol_config("gymnax", GameId::kFreeway, 2, 0);
  EXPECT_EQ(config.time_limit, 2500);
  EXPECT_EQ(config.sticky_action_prob, 0.0);
  EXPECT_TRUE(config.minimal_action_set);
  EXPECT_EQ(protocol_config("gymnax", GameId::kSeaquest, 1).time_limit, 1000);
  EXPECT_EQ(protocol_config("paper", GameId::kSeaquest, 1).time_limit, 0);
  VectorEnv venv(config);
  EXPECT_EQ(venv.num_actions(), 3);
  EXPECT_EQ(venv.action_set(), (std::vector<int>{0, 2, 4}));
  venv.reset();
  std::vector<int> actions = {1, 0};  // env 0: index 1 = up
  int t = 0;
  for (; t < 2500; ++t) {
    venv.step(actions);
    if (venv.truncated()[0]) break;
    ASSERT_FALSE(venv.terminated()[0]);
  }
  EXPECT_EQ(t + 1, 2500) << "truncated at the time limit, one step before Freeway ends itself";
  EXPECT_TRUE(venv.truncated()[1]);
  EXPECT_GT(venv.episode_returns()[0], 0.f) << "moving up scores";
  EXPECT_EQ(venv.episode_returns()[1], 0.f);
  EXPECT_EQ(venv.episode_lengths()[0], 2500);
  EXPECT_THROW(venv.step(std::vector<int>{3, 0}), std::invalid_argument);
}

TEST(VectorEnv, ResultsDoNotDependOnThreadCount) {
  std::vector<std::vector<uint8_t>> runs;
  for (int threads : {1, 2, 3}) {
    VectorEnvConfig config = protocol_config("paper", GameId::kSeaquest, 7, 11);
    config.num_threads = threads;
    VectorEnv venv(config);
    EXPECT_EQ(venv.num_threads(), threads);
    venv.reset();
    ActionStream stream{5};
    std::vector<int> actions(7);
    std::vector<uint8_t> all;
    for (int t = 0; t < 300; ++t) {
      for (int& a : actions) a = stream.next(6);
      venv.step(actions);
      all.insert(all.end(), venv.observations(), venv.observations() + 7 * venv.observation_size());
    }
    runs.push_back(std::move(all));
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(runs[0], runs[2]);
}

TEST(VectorEnv, PerEnvSeedsAndCallerBuffer) {
  VectorEnvConfig config = protocol_config("paper", GameId::kAsterix, 2);
  config.seeds = {77, 77};
  VectorEnv venv(config);
  std::vector<uint8_t> buffer(2 * venv.observation_size(), 0xAB);
  venv.bind_observations(buffer.data());
  venv.reset();
  const int size = venv.observation_size();
  for (int t = 0; t < 200; ++t) {
    venv.step(std::vector<int>{t % 5, t % 5});
    ASSERT_EQ(std::memcmp(buffer.data(), buffer.data() + size, size), 0) << "same seed, same actions";
  }
  for (uint8_t v : buffer) ASSERT_LE(v, 1);
  config.seeds = {1, 2, 3};
  EXPECT_THROW(VectorEnv{config}, std::invalid_argument);
  EXPECT_THROW(protocol_preset("atari"), std::invalid_argument);
}

TEST(ThreadPool, SharesWorkAndSurvivesLateWorkersAndErrors) {
  for (int i = 0; i < 100; ++i) ThreadPool quick(3);  // destroyed before its workers may even start
  ThreadPool pool(3);
  EXPECT_EQ(pool.size(), 3);
  for (int run = 0; run < 2000; ++run) {
    std::atomic<int> next{0}, sum{0};
    pool.run([&] {
      for (int i = next.fetch_add(1); i < 100; i = next.fetch_add(1)) sum.fetch_add(i);
    });
    ASSERT_EQ(sum.load(), 4950) << "run " << run;
  }
  std::atomic<int> calls{0};
  EXPECT_THROW(pool.run([&] {
    if (calls.fetch_add(1) == 0) throw std::runtime_error("boom");
  }), std::runtime_error);
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
}
