#pragma once
// Seaquest (docs/minatar.md §1.5, which lists its channels). SmallList and the loops in seaquest.cpp
// reproduce the reference's reverse walks and value-equal list.remove, quirks included (docs/rl.md).
#include <cstdint>
#include <stdexcept>

#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"

namespace moelab::rl {

// A fixed-capacity list with Python's list.remove semantics; no heap allocation.
template <class T, int Capacity>
struct SmallList {
  int size = 0;  // first, next to the items in use: one cache line for short lists
  T items[Capacity];

  T& operator[](int i) { return items[i]; }
  const T& operator[](int i) const { return items[i]; }
  void clear() { size = 0; }
  void push_back(const T& value) {
    if (size == Capacity) throw std::length_error("Seaquest: more entities than SmallList capacity");
    items[size++] = value;
  }
  void erase_at(int i) {
    for (int j = i; j + 1 < size; ++j) items[j] = items[j + 1];
    --size;
  }
  // list.remove(value): erases the first element equal to value and returns its index.
  int remove(const T& value) {
    for (int i = 0; i < size; ++i) {
      if (items[i] == value) {
        erase_at(i);
        return i;
      }
    }
    throw std::logic_error("Seaquest: list.remove of a value not in the list");
  }
};

struct Seaquest {
  static constexpr int kChannels = 10;
  enum Channel : int {
    kSubFront = 0, kSubBack, kFriendlyBullet, kTrail, kEnemyBullet, kEnemyFish, kEnemySub, kOxygenGauge,
    kDiverGauge, kDiver
  };
  static constexpr int kMaxOxygen = 200, kInitSpawnSpeed = 20, kDiverSpawnSpeed = 30, kInitMoveInterval = 5,
                       kShotCoolDown = 5, kEnemyShotInterval = 10, kDiverMoveInterval = 5;

  struct Bullet {  // friendly and enemy bullets: [x, y, moving_right]
    int8_t x, y;
    bool right;
    bool operator==(const Bullet&) const = default;
  };
  struct Mover {  // fish and divers: [x, y, moving_right, move_timer]
    int8_t x, y;
    bool right;
    int8_t timer;
    bool operator==(const Mover&) const = default;
  };
  struct EnemySub {  // [x, y, moving_right, move_timer, shot_timer]
    int8_t x, y;
    bool right;
    int8_t timer, shot;
    bool operator==(const EnemySub&) const = default;
  };

  explicit Seaquest(bool ramping = true) : ramping(ramping) {}
  void reset(NumpyRandom& rng);
  StepResult act(int action, NumpyRandom& rng);
  void observe(uint8_t* obs) const;  // obs: (10, 10, 10)
  int difficulty_ramp() const { return ramp_index; }

  bool ramping;
  int oxygen = kMaxOxygen, diver_count = 0;  // diver_count goes negative after a 6-diver surfacing (quirk)
  int sub_x = 5, sub_y = 0;
  bool sub_right = false;  // orientation: false faces left
  SmallList<Bullet, 16> friendly_bullets;
  SmallList<Bullet, 128> enemy_bullets;
  SmallList<Mover, 64> fish;
  SmallList<EnemySub, 64> subs;
  SmallList<Mover, 16> divers;
  int enemy_spawn_speed = kInitSpawnSpeed, enemy_spawn_timer = kInitSpawnSpeed;
  int diver_spawn_timer = kDiverSpawnSpeed;
  int move_speed = kInitMoveInterval, ramp_index = 0, shot_timer = 0;
  bool surface = true, terminal = false;

 private:
  void spawn_enemy(NumpyRandom& rng);
  void spawn_diver(NumpyRandom& rng);
  int surface_sub();  // returns the surfacing reward
  void update_friendly_bullets(int& reward);
  void update_divers();
  void update_enemy_subs(int& reward);
  void update_enemy_bullets();
  void update_fish(int& reward);
};

}  // namespace moelab::rl
