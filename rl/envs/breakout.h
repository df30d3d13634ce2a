#pragma once
// Breakout (docs/minatar.md §1.2): channels paddle 0, ball 1, trail 2, brick 3. No ramping; the only
// draw is randint(2) at reset.
#include <cstdint>

#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"

namespace moelab::rl {

struct Breakout {
  static constexpr int kChannels = 4;
  enum Channel : int { kPaddle = 0, kBall = 1, kTrail = 2, kBrick = 3 };
  static constexpr uint16_t kFullRow = 0x3FF;  // bit x = column x

  explicit Breakout(bool ramping = true) {}
  void reset(NumpyRandom& rng);
  StepResult act(int action, NumpyRandom& rng);
  void observe(uint8_t* obs) const;  // obs: (10, 10, 4)
  int difficulty_ramp() const { return 0; }  // the reference returns None: no ramping

  int ball_x = 0, ball_y = 3, ball_dir = 2;  // dir 0 up-left, 1 up-right, 2 down-right, 3 down-left
  int last_x = 0, last_y = 3;
  int pos = 4;  // paddle column on row 9
  bool strike = false, terminal = false;
  uint16_t bricks[kGridSize] = {};
};

}  // namespace moelab::rl
