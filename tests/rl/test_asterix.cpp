// Asterix rules (docs/minatar.md §1.3).
#include <gtest/gtest.h>

#include <vector>

#include "rl/envs/asterix.h"
#include "rl/envs/environment.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;
using moelab::rl::testing::at;
using moelab::rl::testing::observe;

namespace {
constexpr int C = Asterix::kChannels;
int entity_count(const Asterix& g) {
  int n = 0;
  for (const auto& e : g.entities) n += e.present;
  return n;
}
}  // namespace

TEST(Asterix, FirstSpawnOnStep11WithTheSpecDraws) {
  NumpyRandom rng(42);
  Asterix game;
  game.reset(rng);
  for (int step = 1; step <= 10; ++step) {
    game.act(kNoop, rng);
    EXPECT_EQ(entity_count(game), 0) << "step " << step;
  }
  NumpyRandom oracle = rng;  // the game draws nothing before the first spawn
  const bool left_to_right = oracle.rand() < 0.5;
  const bool is_gold = oracle.rand() < 1.0 / 3.0;
  const int slot = static_cast<int>(oracle.randint(8));
  game.act(kNoop, rng);
  ASSERT_EQ(entity_count(game), 1);
  const auto& e = game.entities[slot];
  ASSERT_TRUE(e.present);
  EXPECT_EQ(e.moving_right, left_to_right);
  EXPECT_EQ(e.is_gold, is_gold);
  // Spawned at x = 0 (or 9), then moved in the same step: entities move on steps 6, 11, 16, ...
  EXPECT_EQ(e.x, left_to_right ? 1 : 8);
  EXPECT_EQ(rng.next_uint32(), oracle.next_uint32());
  const auto obs = observe(game);
  EXPECT_TRUE(at(obs, slot + 1, e.x, is_gold ? Asterix::kGold : Asterix::kEnemy, C));
  EXPECT_TRUE(at(obs, slot + 1, left_to_right ? 0 : 9, Asterix::kTrail, C)) << "the trail is behind it";
  // Spawns every spawn_speed = 10 steps: the next is on step 21.
  EXPECT_EQ(game.spawn_timer, 9);
}

TEST(Asterix, RampEvery102Steps) {
  NumpyRandom rng(1);
  Asterix game;
  game.reset(rng);
  int spawn = 10, move = 5, index = 0;
  for (int step = 1; step <= 1100; ++step) {
    for (auto& e : game.entities) e.present = false;  // keep the player alive; ramping does not care
    game.act(kNoop, rng);
    if (step % 102 == 0 && step <= 918) {
      if (index % 2 == 1) --move;
      --spawn;
      ++index;
    }
    ASSERT_EQ(game.spawn_speed, spawn) << "step " << step;
    ASSERT_EQ(game.move_speed, move) << "step " << step;
    ASSERT_EQ(game.ramp_index, index) << "step " << step;
  }
  EXPECT_EQ(game.spawn_speed, 1);
  EXPECT_EQ(game.move_speed, 1);
  EXPECT_EQ(game.ramp_index, 9);
}

TEST(Asterix, NoRampingKeepsSpeeds) {
  NumpyRandom rng(1);
  Asterix game(false);
  game.reset(rng);
  for (int step = 1; step <= 500; ++step) {
    for (auto& e : game.entities) e.present = false;
    game.act(kNoop, rng);
  }
  EXPECT_EQ(game.spawn_speed, 10);
  EXPECT_EQ(game.move_speed, 5);
  EXPECT_EQ(game.difficulty_ramp(), 0);
}

TEST(Asterix, FullSlotsSpawnDrawsNoRandint) {
  NumpyRandom rng(3);
  Asterix game;
  game.reset(rng);
  for (int i = 0; i < Asterix::kSlots; ++i) game.entities[i] = {true, 0, true, true};  // gold at x = 0
  game.player_x = 9;
  game.spawn_timer = 0;
  game.move_timer = 3;
  NumpyRandom oracle = rng;
  oracle.rand();
  oracle.rand();
  game.act(kNoop, rng);
  EXPECT_EQ(rng.next_uint32(), oracle.next_uint32()) << "two rand() and no randint";
  EXPECT_EQ(entity_count(game), 8);

  // With one free slot the spawn draws randint(1), which is a range of one value: still no word.
  NumpyRandom rng2(3);
  game.entities[4].present = false;
  game.spawn_timer = 0;
  NumpyRandom oracle2 = rng2;
  oracle2.rand();
  oracle2.rand();
  game.act(kNoop, rng2);
  EXPECT_TRUE(game.entities[4].present);
  EXPECT_EQ(rng2.next_uint32(), oracle2.next_uint32());
}

TEST(Asterix, GoldRewardsEnemyTerminates) {
  NumpyRandom rng(0);
  Asterix game;
  game.reset(rng);
  game.entities[4] = {true, 6, false, true};  // gold on row 5, right of the player
  StepResult r = game.act(kRight, rng);        // the player steps onto it
  EXPECT_EQ(r.reward, 1);
  EXPECT_FALSE(r.terminal);
  EXPECT_FALSE(game.entities[4].present);
  game.entities[3] = {true, 6, true, false};  // an enemy on row 4 above the player
  r = game.act(kUp, rng);
  EXPECT_TRUE(r.terminal);
}

TEST(Asterix, EntitiesMoveEveryMoveSpeedStepsAndLeave) {
  NumpyRandom rng(0);
  Asterix game;
  game.reset(rng);
  game.player_y = 8;
  game.entities[0] = {true, 8, true, false};  // row 1, moving right
  std::vector<int> moves_at;
  for (int step = 1; step <= 16; ++step) {
    const int before = game.entities[0].present ? game.entities[0].x : 10;
    game.spawn_timer = 5;  // no spawn
    game.act(kNoop, rng);
    const int after = game.entities[0].present ? game.entities[0].x : 10;
    if (after != before) moves_at.push_back(step);
  }
  // move_timer counts 5 down to 0 (move on step 6), then the period is exactly move_speed = 5.
  EXPECT_EQ(moves_at, (std::vector<int>{6, 11}));
  EXPECT_FALSE(game.entities[0].present) << "x 9 -> 10 leaves the screen";
}
