// Seaquest rules (docs/minatar.md §1.5).
#include <gtest/gtest.h>

#include "rl/envs/environment.h"
#include "rl/envs/seaquest.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;
using moelab::rl::testing::at;
using moelab::rl::testing::count_channel;
using moelab::rl::testing::observe;

namespace {
constexpr int C = Seaquest::kChannels;

void no_spawns(Seaquest& g) {
  g.enemy_spawn_timer = 1 << 20;
  g.diver_spawn_timer = 1 << 20;
}
}  // namespace

TEST(Seaquest, OxygenRunsOutOnStep201) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  StepResult r = game.act(kDown, rng);
  int steps = 1;
  while (!r.terminal && steps < 400) {
    r = game.act(kNoop, rng);
    ++steps;
    if (steps == 100) {
      const auto obs = observe(game);
      EXPECT_EQ(count_channel(obs, Seaquest::kOxygenGauge, C), 5);  // 100 * 10 / 200
    }
  }
  EXPECT_EQ(steps, 201);
  EXPECT_EQ(game.oxygen, -1);
  const auto obs = observe(game);
  EXPECT_EQ(count_channel(obs, Seaquest::kOxygenGauge, C), 0);
}

TEST(Seaquest, SurfacingWithoutDiversTerminates) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  EXPECT_FALSE(game.act(kDown, rng).terminal);
  EXPECT_TRUE(game.act(kUp, rng).terminal);
}

TEST(Seaquest, DiverCountGoesNegativeAfterASixDiverSurface) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  game.act(kDown, rng);
  game.diver_count = 6;
  auto obs = observe(game);
  EXPECT_EQ(count_channel(obs, Seaquest::kDiverGauge, C), 6);
  EXPECT_TRUE(at(obs, 9, 3, Seaquest::kDiverGauge, C) && at(obs, 9, 8, Seaquest::kDiverGauge, C));
  StepResult r = game.act(kUp, rng);
  EXPECT_FALSE(r.terminal);
  EXPECT_EQ(r.reward, 199 * 10 / 200);
  EXPECT_EQ(game.diver_count, -1);
  EXPECT_EQ(game.oxygen, 200);
  EXPECT_EQ(game.ramp_index, 1);
  obs = observe(game);
  EXPECT_EQ(count_channel(obs, Seaquest::kDiverGauge, C), 0);
  // A count of -1 is not 0: surfacing again is allowed and decrements further.
  for (int expected : {-2, -3}) {
    game.act(kDown, rng);
    r = game.act(kUp, rng);
    EXPECT_FALSE(r.terminal);
    EXPECT_EQ(r.reward, 0);
    EXPECT_EQ(game.diver_count, expected);
  }
}

TEST(Seaquest, SurfaceRampLowersSpawnAndMoveSpeeds) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  game.diver_count = -100;  // surfacing never ends the episode
  for (int ramp = 0; ramp < 25; ++ramp) {
    no_spawns(game);
    game.act(kDown, rng);
    game.act(kUp, rng);
  }
  EXPECT_EQ(game.enemy_spawn_speed, 1);
  EXPECT_EQ(game.move_speed, 2);
  EXPECT_EQ(game.ramp_index, 19);  // stops once spawn 1 and move 2 are reached
}

TEST(Seaquest, ASubShotOnItsMoveStillFires) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  game.sub_x = 0;
  game.sub_y = 7;
  game.subs.push_back({4, 3, true, 0, 0});          // moves right this step, shot timer 0
  game.friendly_bullets.push_back({6, 3, false});  // moves left to (5, 3) first
  const StepResult r = game.act(kNoop, rng);
  EXPECT_EQ(r.reward, 1);
  EXPECT_EQ(game.subs.size, 0);
  EXPECT_EQ(game.friendly_bullets.size, 0);
  ASSERT_EQ(game.enemy_bullets.size, 1);
  // The bullet appeared on the sub's last cell (5, 3) and moved with it to (6, 3) in the same step.
  EXPECT_EQ(game.enemy_bullets[0].x, 6);
  const auto obs = observe(game);
  EXPECT_TRUE(at(obs, 3, 6, Seaquest::kEnemyBullet, C));
  EXPECT_EQ(count_channel(obs, Seaquest::kEnemySub, C), 0);
}

TEST(Seaquest, EnemySpawnSkipsARowWithOppositeTraffic) {
  NumpyRandom rng(4);
  Seaquest game;
  game.reset(rng);
  NumpyRandom oracle = rng;
  const bool right = oracle.rand() < 0.5;
  oracle.rand();
  const int row = static_cast<int>(oracle.randint(1, 9));
  game.fish.push_back({5, static_cast<int8_t>(row), !right, 3});
  game.enemy_spawn_timer = 0;
  game.diver_spawn_timer = 1 << 20;
  game.sub_y = 0;
  game.act(kNoop, rng);
  EXPECT_EQ(game.fish.size + game.subs.size, 1) << "the spawn was skipped";
  EXPECT_EQ(rng.next_uint32(), oracle.next_uint32()) << "but its draws were spent";
}

TEST(Seaquest, FireHasACoolDownAndBulletsLeaveTheScreen) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  game.act(kFire, rng);
  ASSERT_EQ(game.friendly_bullets.size, 1);
  EXPECT_EQ(game.friendly_bullets[0].x, 4);  // fired left from x = 5, moved once
  game.act(kFire, rng);  // still cooling down
  EXPECT_EQ(game.friendly_bullets.size, 1);
  for (int i = 0; i < 4; ++i) game.act(kNoop, rng);
  EXPECT_EQ(game.friendly_bullets.size, 0);
}

TEST(Seaquest, DiversArePickedUpAtMostSix) {
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  game.act(kDown, rng);
  game.divers.push_back({5, 1, true, 3});
  game.act(kNoop, rng);
  EXPECT_EQ(game.diver_count, 1);
  EXPECT_EQ(game.divers.size, 0);
  game.diver_count = 6;
  game.divers.push_back({5, 1, true, 3});
  game.act(kNoop, rng);
  EXPECT_EQ(game.diver_count, 6);
  EXPECT_EQ(game.divers.size, 1);
}

TEST(Seaquest, ListRemoveTakesTheFirstEqualElementAndReversedRevisits) {
  // Python's list.remove removes the first *equal* element. Bullets [A, X, B]: B moves onto A's value
  // and hits a fish there; remove() erases A, so reversed() visits B again, then X. The list ends as
  // [X, B] (Python's order) rather than [A, X].
  NumpyRandom rng(0);
  Seaquest game;
  game.reset(rng);
  no_spawns(game);
  game.sub_x = 0;
  game.sub_y = 8;
  game.friendly_bullets.push_back({6, 4, true});   // A
  game.friendly_bullets.push_back({2, 6, false});  // X
  game.friendly_bullets.push_back({5, 4, true});   // B: moves to (6, 4), equal to A
  game.fish.push_back({6, 4, false, 3});
  const StepResult r = game.act(kNoop, rng);
  EXPECT_EQ(r.reward, 1);
  ASSERT_EQ(game.friendly_bullets.size, 2);
  EXPECT_EQ(game.friendly_bullets[0].x, 1);  // X moved once
  EXPECT_EQ(game.friendly_bullets[0].y, 6);
  EXPECT_EQ(game.friendly_bullets[1].x, 7);  // B moved twice
  EXPECT_EQ(game.friendly_bullets[1].y, 4);
}

TEST(Seaquest, SmallListRemoveSemantics) {
  SmallList<Seaquest::Bullet, 4> list;
  list.push_back({1, 1, true});
  list.push_back({2, 2, false});
  list.push_back({1, 1, true});
  EXPECT_EQ(list.remove({1, 1, true}), 0);
  ASSERT_EQ(list.size, 2);
  EXPECT_EQ(list[0].x, 2);
  EXPECT_THROW(list.remove({9, 9, true}), std::logic_error);
  list.push_back({3, 3, true});
  list.push_back({4, 4, true});
  EXPECT_THROW(list.push_back({5, 5, true}), std::length_error);
}
