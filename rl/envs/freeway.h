#pragma once
// Freeway (docs/minatar.md §1.4): channels chicken 0, car 1, speed1..speed5 = 2..6. The chicken is in
// column 4; car i is on row i+1. Episodes last exactly 2501 steps; cars move every |v|+1 steps.
#include <cstdint>

#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"

namespace moelab::rl {

struct Freeway {
  static constexpr int kChannels = 7;
  enum Channel : int { kChicken = 0, kCar = 1, kSpeed1 = 2 };
  static constexpr int kNumCars = 8, kPlayerSpeed = 3, kTimeLimit = 2500, kChickenColumn = 4;

  struct Car {
    int x = 0, timer = 0, velocity = 0;  // velocity in -5..5; the reference never draws 0 in practice
  };

  explicit Freeway(bool ramping = true) {}
  void reset(NumpyRandom& rng);
  StepResult act(int action, NumpyRandom& rng);
  void observe(uint8_t* obs) const;  // obs: (10, 10, 7)
  int difficulty_ramp() const { return 0; }  // the reference returns None: no ramping

  int pos = 9, move_timer = kPlayerSpeed, terminate_timer = kTimeLimit;
  Car cars[kNumCars] = {};
  bool terminal = false;

 private:
  // randint(1, 6, 8) speeds, then sign(rand(8) - 0.5) directions; positions kept unless initializing.
  void randomize_cars(NumpyRandom& rng, bool initialize);
};

}  // namespace moelab::rl
