#include "rl/envs/freeway.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace moelab::rl {

void Freeway::randomize_cars(NumpyRandom& rng, bool initialize) {
  int speeds[kNumCars];
  for (int i = 0; i < kNumCars; ++i) speeds[i] = static_cast<int>(rng.randint(1, 6));
  for (int i = 0; i < kNumCars; ++i) {
    const double u = rng.rand() - 0.5;
    const int direction = u > 0 ? 1 : (u < 0 ? -1 : 0);  // np.sign
    cars[i].velocity = speeds[i] * direction;
    cars[i].timer = std::abs(cars[i].velocity);
    if (initialize) cars[i].x = 0;
  }
}

void Freeway::reset(NumpyRandom& rng) {
  randomize_cars(rng, true);
  pos = 9;
  move_timer = kPlayerSpeed;
  terminate_timer = kTimeLimit;
  terminal = false;
}

StepResult Freeway::act(int action, NumpyRandom& rng) {
  if (terminal) return {0, true};
  int reward = 0;
  if (action == kUp && move_timer == 0) {
    move_timer = kPlayerSpeed;
    pos = std::max(0, pos - 1);
  } else if (action == kDown && move_timer == 0) {
    move_timer = kPlayerSpeed;
    pos = std::min(9, pos + 1);
  }
  if (pos == 0) {
    reward += 1;
    randomize_cars(rng, false);
    pos = 9;
  }
  for (int i = 0; i < kNumCars; ++i) {
    Car& car = cars[i];
    const int row = i + 1;
    if (car.x == kChickenColumn && row == pos) pos = 9;
    if (car.timer == 0) {
      car.timer = std::abs(car.velocity);
      car.x += car.velocity > 0 ? 1 : -1;
      if (car.x < 0) car.x = 9;
      else if (car.x > 9) car.x = 0;
      if (car.x == kChickenColumn && row == pos) pos = 9;
    } else {
      car.timer -= 1;
    }
  }
  move_timer -= move_timer > 0;
  terminate_timer -= 1;
  if (terminate_timer < 0) terminal = true;
  return {reward, terminal};
}

void Freeway::observe(uint8_t* obs) const {
  std::memset(obs, 0, obs_size(kChannels));
  obs[obs_index(pos, kChickenColumn, kChicken, kChannels)] = 1;
  for (int i = 0; i < kNumCars; ++i) {
    const Car& car = cars[i];
    obs[obs_index(i + 1, car.x, kCar, kChannels)] = 1;
    int back_x = car.velocity > 0 ? car.x - 1 : car.x + 1;
    if (back_x < 0) back_x = 9;
    else if (back_x > 9) back_x = 0;
    const int speed = std::abs(car.velocity);
    // speed 0 (a draw of exactly 0.5, probability 2^-53) has no trail channel in the reference either.
    if (speed >= 1) obs[obs_index(i + 1, back_x, kSpeed1 + speed - 1, kChannels)] = 1;
  }
}

}  // namespace moelab::rl
