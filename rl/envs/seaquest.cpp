#include "rl/envs/seaquest.h"

#include <algorithm>
#include <cstring>

namespace moelab::rl {

namespace {
inline int8_t step_x(int8_t x, bool right) { return static_cast<int8_t>(x + (right ? 1 : -1)); }
inline bool off_screen(int x) { return x < 0 || x > 9; }

// Keeps the position of the object being visited when list.remove erased it (-1) or an equal element
// before it (the object shifts left by one).
inline int position_after_remove(int current, int removed) {
  if (removed == current) return -1;
  return removed < current ? current - 1 : current;
}

// Index of the first element at (x, y), or -1: the reference's `for x in list: if pos == x[0:2]`.
template <class List>
int first_at(const List& list, int x, int y) {
  for (int i = 0; i < list.size; ++i)
    if (list[i].x == x && list[i].y == y) return i;
  return -1;
}
}  // namespace

void Seaquest::reset(NumpyRandom&) {
  oxygen = kMaxOxygen;
  diver_count = 0;
  sub_x = 5;
  sub_y = 0;
  sub_right = false;
  friendly_bullets.clear();
  enemy_bullets.clear();
  fish.clear();
  subs.clear();
  divers.clear();
  enemy_spawn_speed = enemy_spawn_timer = kInitSpawnSpeed;
  diver_spawn_timer = kDiverSpawnSpeed;
  move_speed = kInitMoveInterval;
  ramp_index = 0;
  shot_timer = 0;
  surface = true;
  terminal = false;
}

void Seaquest::spawn_enemy(NumpyRandom& rng) {
  const bool right = rng.rand() < 1.0 / 2.0;
  const bool is_sub = rng.rand() < 1.0 / 3.0;
  const int8_t x = right ? 0 : 9;
  const int8_t y = static_cast<int8_t>(rng.randint(1, 9));
  // No spawn in a row that holds an enemy moving the other way (the draws are spent anyway).
  for (int i = 0; i < subs.size; ++i)
    if (subs[i].y == y && subs[i].right != right) return;
  for (int i = 0; i < fish.size; ++i)
    if (fish[i].y == y && fish[i].right != right) return;
  const int8_t timer = static_cast<int8_t>(move_speed);
  if (is_sub) subs.push_back({x, y, right, timer, kEnemyShotInterval});
  else fish.push_back({x, y, right, timer});
}

void Seaquest::spawn_diver(NumpyRandom& rng) {
  const bool right = rng.rand() < 1.0 / 2.0;
  const int8_t x = right ? 0 : 9;
  const int8_t y = static_cast<int8_t>(rng.randint(1, 9));
  divers.push_back({x, y, right, kDiverMoveInterval});
}

// Python's `for item in reversed(list)` yields list[i] for i = n-1, n-2, ... while 0 <= i < len(list):
// the loops below keep that index separate from where the visited object currently sits.
void Seaquest::update_friendly_bullets(int& reward) {
  for (int it = friendly_bullets.size - 1; it >= 0 && it < friendly_bullets.size; --it) {
    Bullet& stored = friendly_bullets[it];
    stored.x = step_x(stored.x, stored.right);
    const Bullet bullet = stored;
    if (off_screen(bullet.x)) {
      friendly_bullets.remove(bullet);
      continue;
    }
    if (int hit = first_at(fish, bullet.x, bullet.y); hit >= 0) {
      fish.erase_at(hit);
      friendly_bullets.remove(bullet);
      reward += 1;
    } else if (int hit_sub = first_at(subs, bullet.x, bullet.y); hit_sub >= 0) {
      subs.erase_at(hit_sub);
      friendly_bullets.remove(bullet);
      reward += 1;
    }
  }
}

void Seaquest::update_divers() {
  for (int it = divers.size - 1; it >= 0 && it < divers.size; --it) {
    Mover& stored = divers[it];
    if (stored.x == sub_x && stored.y == sub_y && diver_count < 6) {
      divers.remove(Mover(stored));
      diver_count += 1;
    } else if (stored.timer == 0) {
      stored.timer = kDiverMoveInterval;
      stored.x = step_x(stored.x, stored.right);
      const Mover diver = stored;
      if (off_screen(diver.x)) {
        divers.remove(diver);
      } else if (diver.x == sub_x && diver.y == sub_y && diver_count < 6) {
        divers.remove(diver);
        diver_count += 1;
      }
    } else {
      stored.timer -= 1;
    }
  }
}

void Seaquest::update_enemy_subs(int& reward) {
  for (int it = subs.size - 1; it >= 0 && it < subs.size; --it) {
    int current = it;
    EnemySub sub = subs[current];
    if (sub.x == sub_x && sub.y == sub_y) terminal = true;
    if (sub.timer == 0) {
      sub.timer = static_cast<int8_t>(move_speed);
      sub.x = step_x(sub.x, sub.right);
      subs[current] = sub;
      if (off_screen(sub.x)) {
        current = position_after_remove(current, subs.remove(sub));
      } else if (sub.x == sub_x && sub.y == sub_y) {
        terminal = true;
      } else if (int hit = first_at(friendly_bullets, sub.x, sub.y); hit >= 0) {
        current = position_after_remove(current, subs.remove(sub));
        friendly_bullets.erase_at(hit);
        reward += 1;
      }
    } else {
      sub.timer -= 1;
    }
    // The sub shoots even when it was just removed (off screen or shot): reference behaviour.
    if (sub.shot == 0) {
      sub.shot = kEnemyShotInterval;
      enemy_bullets.push_back({sub.x, sub.y, sub.right});
    } else {
      sub.shot -= 1;
    }
    if (current >= 0) subs[current] = sub;
  }
}

void Seaquest::update_enemy_bullets() {
  for (int it = enemy_bullets.size - 1; it >= 0 && it < enemy_bullets.size; --it) {
    Bullet& stored = enemy_bullets[it];
    if (stored.x == sub_x && stored.y == sub_y) terminal = true;
    stored.x = step_x(stored.x, stored.right);
    const Bullet bullet = stored;
    if (off_screen(bullet.x)) enemy_bullets.remove(bullet);
    else if (bullet.x == sub_x && bullet.y == sub_y) terminal = true;
  }
}

void Seaquest::update_fish(int& reward) {
  for (int it = fish.size - 1; it >= 0 && it < fish.size; --it) {
    Mover& stored = fish[it];
    if (stored.x == sub_x && stored.y == sub_y) terminal = true;
    if (stored.timer == 0) {
      stored.timer = static_cast<int8_t>(move_speed);
      stored.x = step_x(stored.x, stored.right);
      const Mover one_fish = stored;
      if (off_screen(one_fish.x)) {
        fish.remove(one_fish);
      } else if (one_fish.x == sub_x && one_fish.y == sub_y) {
        terminal = true;
      } else if (int hit = first_at(friendly_bullets, one_fish.x, one_fish.y); hit >= 0) {
        fish.remove(one_fish);
        friendly_bullets.erase_at(hit);
        reward += 1;
      }
    } else {
      stored.timer -= 1;
    }
  }
}

int Seaquest::surface_sub() {
  surface = true;
  int reward = 0;
  if (diver_count == 6) {
    diver_count = 0;
    reward = oxygen * 10 / kMaxOxygen;
  }
  oxygen = kMaxOxygen;
  diver_count -= 1;  // also after a full surfacing: the count becomes -1 (reference quirk)
  if (ramping && (enemy_spawn_speed > 1 || move_speed > 2)) {
    if (move_speed > 2 && ramp_index % 2 == 1) move_speed -= 1;
    if (enemy_spawn_speed > 1) enemy_spawn_speed -= 1;
    ramp_index += 1;
  }
  return reward;
}

StepResult Seaquest::act(int action, NumpyRandom& rng) {
  if (terminal) return {0, true};
  int reward = 0;
  if (enemy_spawn_timer == 0) {
    spawn_enemy(rng);
    enemy_spawn_timer = enemy_spawn_speed;
  }
  if (diver_spawn_timer == 0) {
    spawn_diver(rng);
    diver_spawn_timer = kDiverSpawnSpeed;
  }
  if (action == kFire) {
    if (shot_timer == 0) {
      friendly_bullets.push_back({static_cast<int8_t>(sub_x), static_cast<int8_t>(sub_y), sub_right});
      shot_timer = kShotCoolDown;
    }
  } else if (action == kLeft) {
    sub_x = std::max(0, sub_x - 1);
    sub_right = false;
  } else if (action == kRight) {
    sub_x = std::min(9, sub_x + 1);
    sub_right = true;
  } else if (action == kUp) {
    sub_y = std::max(0, sub_y - 1);
  } else if (action == kDown) {
    sub_y = std::min(8, sub_y + 1);
  }

  update_friendly_bullets(reward);
  update_divers();
  update_enemy_subs(reward);
  update_enemy_bullets();
  update_fish(reward);

  enemy_spawn_timer -= enemy_spawn_timer > 0;
  diver_spawn_timer -= diver_spawn_timer > 0;
  shot_timer -= shot_timer > 0;
  if (oxygen <= 0) terminal = true;
  if (sub_y > 0) {
    oxygen -= 1;
    surface = false;
  } else if (!surface) {
    // Surfacing with no diver ends the episode; the check is `== 0`, so negative counts surface fine.
    if (diver_count == 0) terminal = true;
    else reward += surface_sub();
  }
  return {reward, terminal};
}

void Seaquest::observe(uint8_t* obs) const {
  std::memset(obs, 0, obs_size(kChannels));
  // Entities are always on screen when observed; the guard only keeps a would-be bug from writing out of
  // bounds (numpy would wrap x = -1 to column 9 and raise for x = 10).
  auto set = [obs](int y, int x, int c) {
    if (x < 0) x += kGridSize;
    if (x >= 0 && x < kGridSize) obs[obs_index(y, x, c, kChannels)] = 1;
  };
  auto set_trail = [&set](int y, int x, bool right) {
    const int back_x = right ? x - 1 : x + 1;
    if (back_x >= 0 && back_x <= 9) set(y, back_x, kTrail);
  };
  set(sub_y, sub_x, kSubFront);
  const int back_x = sub_right ? sub_x - 1 : sub_x + 1;
  if (back_x >= 0 && back_x <= 9) set(sub_y, back_x, kSubBack);  // always in range (see spec)
  const int oxygen_cells = std::max(0, oxygen) * 10 / kMaxOxygen;
  for (int x = 0; x < oxygen_cells; ++x) set(9, x, kOxygenGauge);
  for (int x = std::max(0, 9 - diver_count); x < 9; ++x) set(9, x, kDiverGauge);
  for (int i = 0; i < friendly_bullets.size; ++i) set(friendly_bullets[i].y, friendly_bullets[i].x, kFriendlyBullet);
  for (int i = 0; i < enemy_bullets.size; ++i) set(enemy_bullets[i].y, enemy_bullets[i].x, kEnemyBullet);
  for (int i = 0; i < fish.size; ++i) {
    set(fish[i].y, fish[i].x, kEnemyFish);
    set_trail(fish[i].y, fish[i].x, fish[i].right);
  }
  for (int i = 0; i < subs.size; ++i) {
    set(subs[i].y, subs[i].x, kEnemySub);
    set_trail(subs[i].y, subs[i].x, subs[i].right);
  }
  for (int i = 0; i < divers.size; ++i) {
    set(divers[i].y, divers[i].x, kDiver);
    set_trail(divers[i].y, divers[i].x, divers[i].right);
  }
}

}  // namespace moelab::rl
