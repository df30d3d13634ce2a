#include "rl/envs/asterix.h"

#include <algorithm>
#include <cstring>

namespace moelab::rl {

void Asterix::reset(NumpyRandom&) {
  player_x = 5;
  player_y = 5;
  for (auto& e : entities) e = Entity{};
  spawn_speed = spawn_timer = kInitSpawnSpeed;
  move_speed = move_timer = kInitMoveInterval;
  ramp_timer = kRampInterval;
  ramp_index = 0;
  terminal = false;
}

void Asterix::spawn_entity(NumpyRandom& rng) {
  const bool left_to_right = rng.rand() < 1.0 / 2.0;
  const bool is_gold = rng.rand() < 1.0 / 3.0;
  int free_slots[kSlots], num_free = 0;
  for (int i = 0; i < kSlots; ++i)
    if (!entities[i].present) free_slots[num_free++] = i;
  if (num_free == 0) return;  // all rows taken: no randint is drawn
  const int slot = free_slots[rng.randint(num_free)];
  entities[slot] = Entity{true, static_cast<int8_t>(left_to_right ? 0 : 9), left_to_right, is_gold};
}

void Asterix::collide(int slot, int& reward) {
  Entity& e = entities[slot];
  if (!e.present || e.x != player_x || slot + 1 != player_y) return;
  if (e.is_gold) {
    e.present = false;
    reward += 1;
  } else {
    terminal = true;
  }
}

StepResult Asterix::act(int action, NumpyRandom& rng) {
  if (terminal) return {0, true};
  int reward = 0;
  if (spawn_timer == 0) {
    spawn_entity(rng);
    spawn_timer = spawn_speed;
  }
  if (action == kLeft) player_x = std::max(0, player_x - 1);
  else if (action == kRight) player_x = std::min(9, player_x + 1);
  else if (action == kUp) player_y = std::max(1, player_y - 1);
  else if (action == kDown) player_y = std::min(8, player_y + 1);

  for (int i = 0; i < kSlots; ++i) collide(i, reward);
  if (move_timer == 0) {
    move_timer = move_speed;
    for (int i = 0; i < kSlots; ++i) {
      Entity& e = entities[i];
      if (!e.present) continue;
      e.x = static_cast<int8_t>(e.x + (e.moving_right ? 1 : -1));
      if (e.x < 0 || e.x > 9) e.present = false;
      else collide(i, reward);
    }
  }
  spawn_timer -= 1;
  move_timer -= 1;

  // A ramp fires when ramp_timer has run below zero: every 102 steps.
  if (ramping && (spawn_speed > 1 || move_speed > 1)) {
    if (ramp_timer >= 0) {
      ramp_timer -= 1;
    } else {
      if (move_speed > 1 && ramp_index % 2 == 1) move_speed -= 1;
      if (spawn_speed > 1) spawn_speed -= 1;
      ramp_index += 1;
      ramp_timer = kRampInterval;
    }
  }
  return {reward, terminal};
}

void Asterix::observe(uint8_t* obs) const {
  std::memset(obs, 0, obs_size(kChannels));
  obs[obs_index(player_y, player_x, kPlayer, kChannels)] = 1;
  for (int i = 0; i < kSlots; ++i) {
    const Entity& e = entities[i];
    if (!e.present) continue;
    obs[obs_index(i + 1, e.x, e.is_gold ? kGold : kEnemy, kChannels)] = 1;
    const int back_x = e.moving_right ? e.x - 1 : e.x + 1;
    if (back_x >= 0 && back_x <= 9) obs[obs_index(i + 1, back_x, kTrail, kChannels)] = 1;
  }
}

}  // namespace moelab::rl
