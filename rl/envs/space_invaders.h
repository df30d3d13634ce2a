#pragma once
// Space Invaders (docs/minatar.md §1.6): channels cannon 0, alien 1, alien_left 2, alien_right 3,
// friendly_bullet 4, enemy_bullet 5. No draws inside the game. The three 10x10 maps are row bitmasks
// (bit x = column x); np.roll becomes a shift or rotation.
#include <cstdint>

#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"

namespace moelab::rl {

struct SpaceInvaders {
  static constexpr int kChannels = 6;
  enum Channel : int { kCannon = 0, kAlien, kAlienLeft, kAlienRight, kFriendlyBullet, kEnemyBullet };
  static constexpr int kShotCoolDown = 5, kEnemyMoveInterval = 12, kEnemyShotInterval = 10;

  explicit SpaceInvaders(bool ramping = true) : ramping(ramping) {}
  void reset(NumpyRandom& rng);
  StepResult act(int action, NumpyRandom& rng);
  void observe(uint8_t* obs) const;  // obs: (10, 10, 6)
  int difficulty_ramp() const { return ramp_index; }
  int alien_count() const;
  // The alien that shoots: the lowest one in the column nearest to `pos`, ties to the lower column.
  // Returns false when there is no alien.
  bool nearest_alien(int pos, int& row, int& column) const;

  bool ramping;
  int pos = 5;
  uint16_t aliens[kGridSize] = {}, friendly_bullets[kGridSize] = {}, enemy_bullets[kGridSize] = {};
  int alien_dir = -1, enemy_move_interval = kEnemyMoveInterval, alien_move_timer = kEnemyMoveInterval;
  int alien_shot_timer = kEnemyShotInterval, ramp_index = 0, shot_timer = 0;
  bool terminal = false;
};

}  // namespace moelab::rl
