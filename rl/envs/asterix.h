#pragma once
// Asterix (docs/minatar.md §1.3): channels player 0, enemy 1, trail 2, gold 3. Entity slot i lives on
// row i+1; spawns draw rand(), rand() and (only when a slot is free) randint(#free).
#include <cstdint>

#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"

namespace moelab::rl {

struct Asterix {
  static constexpr int kChannels = 4;
  enum Channel : int { kPlayer = 0, kEnemy = 1, kTrail = 2, kGold = 3 };
  static constexpr int kSlots = 8;
  static constexpr int kRampInterval = 100, kInitSpawnSpeed = 10, kInitMoveInterval = 5;

  struct Entity {
    bool present = false;
    int8_t x = 0;
    bool moving_right = false, is_gold = false;
  };

  explicit Asterix(bool ramping = true) : ramping(ramping) {}
  void reset(NumpyRandom& rng);
  StepResult act(int action, NumpyRandom& rng);
  void observe(uint8_t* obs) const;  // obs: (10, 10, 4)
  int difficulty_ramp() const { return ramp_index; }

  bool ramping;
  int player_x = 5, player_y = 5;
  Entity entities[kSlots] = {};
  int spawn_speed = kInitSpawnSpeed, spawn_timer = kInitSpawnSpeed;
  int move_speed = kInitMoveInterval, move_timer = kInitMoveInterval;
  int ramp_timer = kRampInterval, ramp_index = 0;
  bool terminal = false;

 private:
  void spawn_entity(NumpyRandom& rng);
  // Gold at the player's cell is collected (+1), an enemy ends the episode.
  void collide(int slot, int& reward);
};

}  // namespace moelab::rl
