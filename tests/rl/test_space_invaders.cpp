// Space Invaders rules (docs/minatar.md §1.6).
#include <gtest/gtest.h>

#include <cstring>

#include "rl/envs/environment.h"
#include "rl/envs/space_invaders.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;
using moelab::rl::testing::at;
using moelab::rl::testing::count_channel;
using moelab::rl::testing::observe;

namespace {
constexpr int C = SpaceInvaders::kChannels;

void clear_aliens(SpaceInvaders& g) { std::memset(g.aliens, 0, sizeof(g.aliens)); }
}  // namespace

TEST(SpaceInvaders, ResetBlockAndChannels) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  const auto obs = observe(game);
  EXPECT_EQ(count_channel(obs, SpaceInvaders::kAlien, C), 24);
  EXPECT_EQ(count_channel(obs, SpaceInvaders::kAlienLeft, C), 24);  // direction -1
  EXPECT_EQ(count_channel(obs, SpaceInvaders::kAlienRight, C), 0);
  EXPECT_TRUE(at(obs, 0, 2, SpaceInvaders::kAlien, C) && at(obs, 3, 7, SpaceInvaders::kAlien, C));
  EXPECT_FALSE(at(obs, 4, 2, SpaceInvaders::kAlien, C) || at(obs, 0, 1, SpaceInvaders::kAlien, C));
  EXPECT_TRUE(at(obs, 9, 5, SpaceInvaders::kCannon, C));
}

TEST(SpaceInvaders, NearestColumnTiesGoToTheLowerColumn) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  clear_aliens(game);
  game.aliens[2] |= 1u << 3;  // column 3, row 2
  game.aliens[1] |= 1u << 7;  // column 7, row 1
  game.aliens[4] |= 1u << 7;  // column 7, row 4 (lowest of its column)
  int row = -1, column = -1;
  ASSERT_TRUE(game.nearest_alien(5, row, column));
  EXPECT_EQ(column, 3) << "|3-5| == |7-5|: the stable sort keeps the lower column first";
  EXPECT_EQ(row, 2);
  ASSERT_TRUE(game.nearest_alien(6, row, column));
  EXPECT_EQ(column, 7);
  EXPECT_EQ(row, 4) << "the lowest alien of the column";

  // In a step: the shot lands on the alien's own cell (first shot timer runs out on step 11).
  game.alien_move_timer = 100;
  game.alien_shot_timer = 0;
  game.act(kNoop, rng);
  const auto obs = observe(game);
  EXPECT_TRUE(at(obs, 2, 3, SpaceInvaders::kEnemyBullet, C));
  EXPECT_EQ(count_channel(obs, SpaceInvaders::kEnemyBullet, C), 1);
  EXPECT_EQ(game.alien_shot_timer, 9);
}

TEST(SpaceInvaders, FirstAlienShotOnStep11) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  for (int step = 1; step <= 11; ++step) {
    game.act(kNoop, rng);
    const auto obs = observe(game);
    EXPECT_EQ(count_channel(obs, SpaceInvaders::kEnemyBullet, C), step == 11 ? 1 : 0) << "step " << step;
  }
}

TEST(SpaceInvaders, ClearingTheWaveRefillsAndRamps) {
  for (bool ramping : {true, false}) {
    NumpyRandom rng(0);
    SpaceInvaders game(ramping);
    game.reset(rng);
    clear_aliens(game);
    game.aliens[5] = 1u << 8;             // the last alien
    game.friendly_bullets[6] = 1u << 8;   // rolls up into it this step
    game.alien_dir = 1;
    game.alien_move_timer = 7;
    const StepResult r = game.act(kNoop, rng);
    EXPECT_EQ(r.reward, 1);
    EXPECT_EQ(game.alien_count(), 24);
    for (int y = 0; y < 4; ++y) EXPECT_EQ(game.aliens[y], 0b0011111100);
    EXPECT_EQ(game.alien_dir, 1) << "direction is not reset";
    EXPECT_EQ(game.alien_move_timer, 6) << "the move timer is not reset";
    EXPECT_EQ(game.enemy_move_interval, ramping ? 11 : 12);
    EXPECT_EQ(game.ramp_index, ramping ? 1 : 0);
  }
}

TEST(SpaceInvaders, RampStopsAtMoveInterval6) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  for (int wave = 0; wave < 10; ++wave) {
    clear_aliens(game);
    game.aliens[0] = 1u << 0;
    game.friendly_bullets[1] = 1u << 0;
    game.alien_move_timer = 5;
    game.alien_shot_timer = 5;
    game.act(kNoop, rng);
  }
  EXPECT_EQ(game.enemy_move_interval, 6);
  EXPECT_EQ(game.ramp_index, 6);
}

TEST(SpaceInvaders, AliensMoveThenDropAtTheEdge) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  game.pos = 9;  // out of the aliens' columns: their shots (at the nearest column) miss
  // The block (columns 2..7) moves left every 12 steps: on steps 13, 25; then it is at the edge.
  int step = 0;
  while (step < 25) {
    game.act(kNoop, rng);
    ++step;
    if (step == 13) {
      EXPECT_EQ(game.aliens[0], 0b0001111110);
    }
  }
  EXPECT_EQ(game.aliens[0], 0b0000111111);
  // The next move (step 37) flips the direction and drops every row by one.
  while (step < 37) {
    game.act(kNoop, rng);
    ++step;
  }
  EXPECT_EQ(game.alien_dir, 1);
  EXPECT_EQ(game.aliens[0], 0);
  EXPECT_EQ(game.aliens[1], 0b0000111111);
  EXPECT_EQ(game.aliens[4], 0b0000111111);
}

TEST(SpaceInvaders, EdgeDropWithAnAlienOnRow9TerminatesAndWraps) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  clear_aliens(game);
  game.aliens[9] = 1u << 0;  // bottom-left corner, direction -1: at the edge
  game.aliens[8] = 1u << 1;
  game.pos = 7;
  game.alien_move_timer = 0;
  game.alien_shot_timer = 5;
  const StepResult r = game.act(kNoop, rng);
  EXPECT_TRUE(r.terminal);
  // np.roll(aliens, 1, axis=0): row 9 wraps round to row 0.
  EXPECT_EQ(game.aliens[0], 1u << 0);
  EXPECT_EQ(game.aliens[9], 1u << 1);
  EXPECT_EQ(game.alien_move_timer, 1);  // min(2 aliens, 12), then the unconditional decrement
}

TEST(SpaceInvaders, CannonFiresWithCoolDownAndDiesToABullet) {
  NumpyRandom rng(0);
  SpaceInvaders game;
  game.reset(rng);
  game.act(kFire, rng);
  EXPECT_EQ(game.friendly_bullets[8], 1u << 5);  // placed on row 9, rolled up once
  game.act(kFire, rng);                            // cooling down: no new bullet
  EXPECT_EQ(game.friendly_bullets[9] | game.friendly_bullets[8], 0);
  EXPECT_EQ(game.friendly_bullets[7], 1u << 5);
  game.enemy_bullets[8] = 1u << 5;
  EXPECT_TRUE(game.act(kNoop, rng).terminal);
}
