// Freeway rules (docs/minatar.md §1.4).
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "rl/envs/environment.h"
#include "rl/envs/freeway.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;
using moelab::rl::testing::at;
using moelab::rl::testing::observe;

namespace {
constexpr int C = Freeway::kChannels;
}

TEST(Freeway, ResetCarsFromRandintThenSignOfRand) {
  NumpyRandom rng(42), oracle(42);
  Freeway game;
  game.reset(rng);
  int speeds[8];
  for (int& s : speeds) s = static_cast<int>(oracle.randint(1, 6));
  for (int i = 0; i < 8; ++i) {
    const int dir = oracle.rand() > 0.5 ? 1 : -1;
    EXPECT_EQ(game.cars[i].velocity, speeds[i] * dir) << "car " << i;
    EXPECT_EQ(game.cars[i].timer, speeds[i]);
    EXPECT_EQ(game.cars[i].x, 0) << "all cars start at x = 0";
  }
  EXPECT_EQ(rng.next_uint32(), oracle.next_uint32());
  const auto obs = observe(game);
  EXPECT_TRUE(at(obs, 9, 4, Freeway::kChicken, C));
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(at(obs, i + 1, 0, Freeway::kCar, C));
    const int back = game.cars[i].velocity > 0 ? 9 : 1;  // behind the car, wrapping round
    EXPECT_TRUE(at(obs, i + 1, back, Freeway::kSpeed1 + std::abs(game.cars[i].velocity) - 1, C));
  }
}

TEST(Freeway, EveryEpisodeLasts2501Steps) {
  for (int action : {kNoop, kUp}) {
    Environment env(GameId::kFreeway, {0.1, true, 7u});
    for (int episode = 0; episode < 2; ++episode) {
      int steps = 0;
      StepResult r;
      do {
        r = env.act(action);
        ++steps;
      } while (!r.terminal && steps < 3000);
      EXPECT_EQ(steps, 2501) << "action " << action << " episode " << episode;
      env.reset();
    }
  }
}

TEST(Freeway, CarsMoveEveryAbsVPlusOneSteps) {
  NumpyRandom rng(5);
  Freeway game;
  game.reset(rng);
  std::vector<std::vector<int>> moves(8);
  for (int step = 1; step <= 40; ++step) {
    int before[8];
    for (int i = 0; i < 8; ++i) before[i] = game.cars[i].x;
    game.act(kNoop, rng);
    for (int i = 0; i < 8; ++i) {
      if (game.cars[i].x != before[i]) {
        moves[i].push_back(step);
        const int expected = (before[i] + (game.cars[i].velocity > 0 ? 1 : 9)) % 10;  // wrap 0 <-> 9
        EXPECT_EQ(game.cars[i].x, expected);
      }
    }
  }
  for (int i = 0; i < 8; ++i) {
    const int period = std::abs(game.cars[i].velocity) + 1;
    ASSERT_FALSE(moves[i].empty());
    EXPECT_EQ(moves[i][0], period) << "car " << i;
    for (size_t k = 1; k < moves[i].size(); ++k) EXPECT_EQ(moves[i][k] - moves[i][k - 1], period) << "car " << i;
  }
}

TEST(Freeway, CrossingScoresAndRerandomisesSpeedsOnly) {
  NumpyRandom rng(11);
  Freeway game;
  game.reset(rng);
  for (auto& car : game.cars) car = {7, 3, 3};  // parked away from the chicken's column
  game.pos = 1;
  game.move_timer = 0;
  NumpyRandom oracle = rng;
  int speeds[8];
  for (int& s : speeds) s = static_cast<int>(oracle.randint(1, 6));
  const StepResult r = game.act(kUp, rng);
  EXPECT_EQ(r.reward, 1);
  EXPECT_EQ(game.pos, 9);
  EXPECT_EQ(game.move_timer, 2);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(std::abs(game.cars[i].velocity), speeds[i]);
    EXPECT_EQ(game.cars[i].x, 7) << "positions are kept on a crossing";
  }
}

TEST(Freeway, PlayerMovesEveryThirdStepAndACarSendsItBack) {
  NumpyRandom rng(11);
  Freeway game;
  game.reset(rng);
  for (auto& car : game.cars) car = {0, 100, 1};
  std::vector<int> rows;
  for (int step = 1; step <= 9; ++step) {
    game.act(kUp, rng);
    rows.push_back(game.pos);
  }
  // move_timer starts at 3: the first move is on step 4, then every 3 steps.
  EXPECT_EQ(rows, (std::vector<int>{9, 9, 9, 8, 8, 8, 7, 7, 7}));
  game.cars[6] = {4, 100, 1};  // car on row 7 in the chicken's column
  game.act(kNoop, rng);
  EXPECT_EQ(game.pos, 9);
}
