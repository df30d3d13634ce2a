// Breakout rules (docs/minatar.md §1.2).
#include <gtest/gtest.h>

#include "rl/envs/breakout.h"
#include "rl/envs/environment.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;
using moelab::rl::testing::at;
using moelab::rl::testing::count_channel;
using moelab::rl::testing::observe;

namespace {
constexpr int C = Breakout::kChannels;
}

TEST(Breakout, ResetDrawsOneRandint2) {
  for (uint32_t seed : {0u, 1u, 2u, 3u, 42u}) {
    NumpyRandom oracle(seed), rng(seed);
    const bool from_right = oracle.randint(2) == 1;
    Breakout game;
    game.reset(rng);
    EXPECT_EQ(game.ball_x, from_right ? 9 : 0);
    EXPECT_EQ(game.ball_dir, from_right ? 3 : 2);
    EXPECT_EQ(game.ball_y, 3);
    EXPECT_EQ(rng.next_uint32(), oracle.next_uint32()) << "reset must draw exactly one word";
    const auto obs = observe(game);
    EXPECT_EQ(count_channel(obs, Breakout::kBrick, C), 30);
    for (int x = 0; x < 10; ++x) EXPECT_TRUE(at(obs, 1, x, Breakout::kBrick, C) && at(obs, 3, x, Breakout::kBrick, C));
    EXPECT_TRUE(at(obs, 9, 4, Breakout::kPaddle, C));
    EXPECT_TRUE(at(obs, 3, game.ball_x, Breakout::kBall, C));
    EXPECT_TRUE(at(obs, 3, game.ball_x, Breakout::kTrail, C));  // last == ball at reset
  }
}

TEST(Breakout, TunnelsThroughABrickRightAfterAStrike) {
  NumpyRandom rng(0);
  Breakout game;
  game.reset(rng);
  // Row 1 full, a gap at (2, 4) where the ball sits and one at (3, 3) below it.
  game.bricks[2] = Breakout::kFullRow & ~(1u << 4);
  game.bricks[3] = Breakout::kFullRow & ~(1u << 3);
  game.ball_x = 4;
  game.ball_y = 2;
  game.ball_dir = 1;  // up-right

  // Strike (1, 5): +1, the brick goes, the ball returns to row 2 moving down-right, into brick (2, 5).
  StepResult r = game.act(kNoop, rng);
  EXPECT_EQ(r.reward, 1);
  EXPECT_FALSE(game.bricks[1] >> 5 & 1);
  EXPECT_EQ(game.ball_x, 5);
  EXPECT_EQ(game.ball_y, 2);
  EXPECT_EQ(game.ball_dir, 2);
  EXPECT_TRUE(game.strike);

  // Next cell (3, 6) holds a brick but `strike` is still set: the ball enters it, nothing breaks.
  r = game.act(kNoop, rng);
  EXPECT_EQ(r.reward, 0);
  EXPECT_TRUE(game.bricks[3] >> 6 & 1);
  EXPECT_EQ(game.ball_x, 6);
  EXPECT_EQ(game.ball_y, 3);
  EXPECT_TRUE(game.strike) << "the strike toggle keeps strike set while inside bricks";
  const auto obs = observe(game);
  EXPECT_TRUE(at(obs, 3, 6, Breakout::kBall, C) && at(obs, 3, 6, Breakout::kBrick, C));

  // Out of the bricks: strike clears.
  r = game.act(kNoop, rng);
  EXPECT_EQ(r.reward, 0);
  EXPECT_EQ(game.ball_y, 4);
  EXPECT_FALSE(game.strike);
}

TEST(Breakout, PaddleBouncesAndMissTerminates) {
  NumpyRandom rng(0);
  Breakout game;
  game.reset(rng);
  // Ball above the paddle moving down-right: old x == pos bounces straight back up (up-left).
  game.ball_x = 4, game.ball_y = 8, game.ball_dir = 2, game.pos = 4;
  EXPECT_FALSE(game.act(kNoop, rng).terminal);
  EXPECT_EQ(game.ball_dir, 1);
  EXPECT_EQ(game.ball_y, 8);
  EXPECT_EQ(game.ball_x, 5);
  // The new x on the paddle reverses the direction.
  game.ball_x = 4, game.ball_y = 8, game.ball_dir = 2, game.pos = 5;
  EXPECT_FALSE(game.act(kNoop, rng).terminal);
  EXPECT_EQ(game.ball_dir, 0);
  // A miss ends the episode; the ball is drawn on row 9; later acts change nothing.
  game.ball_x = 4, game.ball_y = 8, game.ball_dir = 2, game.pos = 0;
  EXPECT_TRUE(game.act(kNoop, rng).terminal);
  EXPECT_EQ(game.ball_y, 9);
  const StepResult after = game.act(kRight, rng);
  EXPECT_TRUE(after.terminal);
  EXPECT_EQ(after.reward, 0);
  EXPECT_EQ(game.pos, 0);
}

TEST(Breakout, BricksRefillWhenTheBallReachesThePaddleRow) {
  NumpyRandom rng(0);
  Breakout game;
  game.reset(rng);
  for (auto& row : game.bricks) row = 0;
  game.ball_x = 2, game.ball_y = 8, game.ball_dir = 3, game.pos = 2;
  game.act(kNoop, rng);
  for (int y = 1; y <= 3; ++y) EXPECT_EQ(game.bricks[y], Breakout::kFullRow);
}

TEST(Breakout, SideAndTopWallsReflect) {
  NumpyRandom rng(0);
  Breakout game;
  game.reset(rng);
  for (auto& row : game.bricks) row = 0;
  game.ball_x = 9, game.ball_y = 5, game.ball_dir = 1;  // up-right into the right wall
  game.act(kNoop, rng);
  EXPECT_EQ(game.ball_x, 9);
  EXPECT_EQ(game.ball_y, 4);
  EXPECT_EQ(game.ball_dir, 0);
  game.ball_x = 5, game.ball_y = 0, game.ball_dir = 0;  // up-left into the top
  game.act(kNoop, rng);
  EXPECT_EQ(game.ball_y, 0);
  EXPECT_EQ(game.ball_x, 4);
  EXPECT_EQ(game.ball_dir, 3);
}

TEST(Breakout, WrapperDrawsStickyThenGame) {
  // seed(s), reset: the reset's randint(2) is the first draw; then every act draws one rand().
  Environment env(GameId::kBreakout, {0.0, true, 42u});
  NumpyRandom oracle(42);
  const bool from_right = oracle.randint(2) == 1;
  const auto& game = std::get<Breakout>(env.game());
  EXPECT_EQ(game.ball_x, from_right ? 9 : 0);
  env.act(kNoop);
  oracle.rand();
  EXPECT_EQ(env.random().next_uint32(), oracle.next_uint32());
  EXPECT_EQ(env.num_actions(), 6);
  EXPECT_EQ(env.minimal_action_set(), (std::vector<int>{0, 1, 3}));
}
