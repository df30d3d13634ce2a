#include "rl/envs/breakout.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace moelab::rl {

namespace {
constexpr int kDx[4] = {-1, 1, 1, -1};
constexpr int kDy[4] = {-1, -1, 1, 1};
constexpr int kSideBounce[4] = {1, 0, 3, 2};
constexpr int kVerticalBounce[4] = {3, 2, 1, 0};
constexpr int kReverse[4] = {2, 3, 0, 1};

void fill_brick_rows(uint16_t* bricks) {
  for (int y = 1; y <= 3; ++y) bricks[y] = Breakout::kFullRow;
}
}  // namespace

void Breakout::reset(NumpyRandom& rng) {
  ball_y = 3;
  const bool from_right = rng.randint(2) == 1;
  ball_x = from_right ? 9 : 0;
  ball_dir = from_right ? 3 : 2;
  pos = 4;
  std::memset(bricks, 0, sizeof(bricks));
  fill_brick_rows(bricks);
  strike = false;
  last_x = ball_x;
  last_y = ball_y;
  terminal = false;
}

StepResult Breakout::act(int action, NumpyRandom&) {
  StepResult result;
  if (terminal) return {0, true};
  if (action == kLeft) pos = std::max(0, pos - 1);
  else if (action == kRight) pos = std::min(9, pos + 1);

  last_x = ball_x;
  last_y = ball_y;
  int new_x = ball_x + kDx[ball_dir], new_y = ball_y + kDy[ball_dir];
  bool strike_toggle = false;
  if (new_x < 0 || new_x > 9) {
    new_x = std::clamp(new_x, 0, 9);
    ball_dir = kSideBounce[ball_dir];
  }
  if (new_y < 0) {
    new_y = 0;
    ball_dir = kVerticalBounce[ball_dir];
  } else if (bricks[new_y] >> new_x & 1) {
    strike_toggle = true;
    // While `strike` is still set from the previous step the ball tunnels into the brick (reference quirk).
    if (!strike) {
      result.reward += 1;
      strike = true;
      bricks[new_y] &= static_cast<uint16_t>(~(1u << new_x));
      new_y = last_y;
      ball_dir = kVerticalBounce[ball_dir];
    }
  } else if (new_y == 9) {
    bool any_brick = false;
    for (int y = 0; y < kGridSize; ++y) any_brick |= bricks[y] != 0;
    if (!any_brick) fill_brick_rows(bricks);
    if (ball_x == pos) {
      ball_dir = kVerticalBounce[ball_dir];
      new_y = last_y;
    } else if (new_x == pos) {
      ball_dir = kReverse[ball_dir];
      new_y = last_y;
    } else {
      terminal = true;
    }
  }
  if (!strike_toggle) strike = false;
  ball_x = new_x;
  ball_y = new_y;
  result.terminal = terminal;
  return result;
}

void Breakout::observe(uint8_t* obs) const {
  std::memset(obs, 0, obs_size(kChannels));
  obs[obs_index(ball_y, ball_x, kBall, kChannels)] = 1;
  obs[obs_index(9, pos, kPaddle, kChannels)] = 1;
  obs[obs_index(last_y, last_x, kTrail, kChannels)] = 1;
  for (int y = 0; y < kGridSize; ++y) {
    for (uint32_t row = bricks[y]; row != 0; row &= row - 1)
      obs[obs_index(y, std::countr_zero(row), kBrick, kChannels)] = 1;
  }
}

}  // namespace moelab::rl
