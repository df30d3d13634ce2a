#include "rl/envs/space_invaders.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

namespace moelab::rl {

namespace {
constexpr uint16_t kBlockRow = 0b0011111100;  // columns 2..7

void fill_alien_block(uint16_t* aliens) {
  for (int y = 0; y < 4; ++y) aliens[y] = kBlockRow;
}
bool bit(uint16_t row, int x) { return (row >> x) & 1; }

// Bit count without a library call (baseline x86-64 has no POPCNT instruction).
inline int popcount64(uint64_t v) {
  v = v - ((v >> 1) & 0x5555555555555555ull);
  v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
  v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
  return static_cast<int>((v * 0x0101010101010101ull) >> 56);
}

// Cells set in a 10-row map: rows 0..5 and 6..9 packed into two words.
inline int count_cells(const uint16_t* rows) {
  uint64_t low = 0, high = 0;
  for (int y = 0; y < 6; ++y) low |= static_cast<uint64_t>(rows[y]) << (10 * y);
  for (int y = 6; y < kGridSize; ++y) high |= static_cast<uint64_t>(rows[y]) << (10 * (y - 6));
  return popcount64(low) + popcount64(high);
}
}  // namespace

void SpaceInvaders::reset(NumpyRandom&) {
  pos = 5;
  std::memset(aliens, 0, sizeof(aliens));
  std::memset(friendly_bullets, 0, sizeof(friendly_bullets));
  std::memset(enemy_bullets, 0, sizeof(enemy_bullets));
  fill_alien_block(aliens);
  alien_dir = -1;
  enemy_move_interval = alien_move_timer = kEnemyMoveInterval;
  alien_shot_timer = kEnemyShotInterval;
  ramp_index = 0;
  shot_timer = 0;
  terminal = false;
}

int SpaceInvaders::alien_count() const { return count_cells(aliens); }

bool SpaceInvaders::nearest_alien(int from, int& row, int& column) const {
  uint16_t occupied = 0;
  for (int y = 0; y < kGridSize; ++y) occupied |= aliens[y];
  // Stable sort of columns by |x - from|: from, from-1, from+1, from-2, from+2, ...
  for (int distance = 0; distance < kGridSize; ++distance) {
    for (int x : {from - distance, from + distance}) {
      if (x < 0 || x > 9 || !bit(occupied, x)) continue;
      column = x;
      for (row = kGridSize - 1; !bit(aliens[row], x); --row) {
      }
      return true;
    }
  }
  return false;
}

StepResult SpaceInvaders::act(int action, NumpyRandom&) {
  if (terminal) return {0, true};
  int reward = 0;
  if (action == kFire && shot_timer == 0) {
    friendly_bullets[9] |= static_cast<uint16_t>(1u << pos);
    shot_timer = kShotCoolDown;
  } else if (action == kLeft) {
    pos = std::max(0, pos - 1);
  } else if (action == kRight) {
    pos = std::min(9, pos + 1);
  }

  // Friendly bullets roll up (row 0 wraps to 9, then row 9 is cleared); enemy bullets roll down.
  for (int y = 0; y < kGridSize - 1; ++y) friendly_bullets[y] = friendly_bullets[y + 1];
  friendly_bullets[9] = 0;
  for (int y = kGridSize - 1; y > 0; --y) enemy_bullets[y] = enemy_bullets[y - 1];
  enemy_bullets[0] = 0;
  if (bit(enemy_bullets[9], pos)) terminal = true;

  if (bit(aliens[9], pos)) terminal = true;
  if (alien_move_timer == 0) {
    alien_move_timer = std::min(alien_count(), enemy_move_interval);
    uint16_t occupied = 0;
    for (int y = 0; y < kGridSize; ++y) occupied |= aliens[y];
    if ((bit(occupied, 0) && alien_dir < 0) || (bit(occupied, 9) && alien_dir > 0)) {
      alien_dir = -alien_dir;
      if (aliens[9] != 0) terminal = true;
      // np.roll(aliens, 1, axis=0): row 9 wraps round to row 0.
      const uint16_t bottom = aliens[9];
      for (int y = kGridSize - 1; y > 0; --y) aliens[y] = aliens[y - 1];
      aliens[0] = bottom;
    } else {
      for (int y = 0; y < kGridSize; ++y) {
        const unsigned row = aliens[y];
        const unsigned rolled = alien_dir > 0 ? ((row << 1) | (row >> 9)) : ((row >> 1) | ((row & 1u) << 9));
        aliens[y] = static_cast<uint16_t>(rolled & 0x3FFu);
      }
    }
    if (bit(aliens[9], pos)) terminal = true;
  }
  if (alien_shot_timer == 0) {
    alien_shot_timer = kEnemyShotInterval;
    int row = 0, column = 0;
    if (nearest_alien(pos, row, column)) enemy_bullets[row] |= static_cast<uint16_t>(1u << column);
  }

  uint16_t kills[kGridSize];
  for (int y = 0; y < kGridSize; ++y) {
    kills[y] = aliens[y] & friendly_bullets[y];
    aliens[y] &= static_cast<uint16_t>(~kills[y]);
    friendly_bullets[y] &= static_cast<uint16_t>(~kills[y]);
  }
  reward += count_cells(kills);

  shot_timer -= shot_timer > 0;
  alien_move_timer -= 1;
  alien_shot_timer -= 1;
  if (alien_count() == 0) {
    // New wave: faster if ramping; direction and move timer are kept.
    if (enemy_move_interval > 6 && ramping) {
      enemy_move_interval -= 1;
      ramp_index += 1;
    }
    fill_alien_block(aliens);
  }
  return {reward, terminal};
}

void SpaceInvaders::observe(uint8_t* obs) const {
  std::memset(obs, 0, obs_size(kChannels));
  obs[obs_index(9, pos, kCannon, kChannels)] = 1;
  const int direction_channel = alien_dir < 0 ? kAlienLeft : kAlienRight;
  for (int y = 0; y < kGridSize; ++y) {
    for (uint32_t row = aliens[y]; row != 0; row &= row - 1) {
      const int x = std::countr_zero(row);
      obs[obs_index(y, x, kAlien, kChannels)] = 1;
      obs[obs_index(y, x, direction_channel, kChannels)] = 1;
    }
    for (uint32_t row = friendly_bullets[y]; row != 0; row &= row - 1)
      obs[obs_index(y, std::countr_zero(row), kFriendlyBullet, kChannels)] = 1;
    for (uint32_t row = enemy_bullets[y]; row != 0; row &= row - 1)
      obs[obs_index(y, std::countr_zero(row), kEnemyBullet, kChannels)] = 1;
  }
}

}  // namespace moelab::rl
