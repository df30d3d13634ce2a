#pragma once
// Small helpers shared by the tests of rl/envs.
#include <cstdint>
#include <string>
#include <vector>

#include "rl/envs/game.h"

namespace moelab::rl::testing {

inline bool at(const std::vector<uint8_t>& obs, int y, int x, int c, int channels) {
  return obs[obs_index(y, x, c, channels)] != 0;
}

inline int count_channel(const std::vector<uint8_t>& obs, int c, int channels) {
  int n = 0;
  for (int y = 0; y < kGridSize; ++y)
    for (int x = 0; x < kGridSize; ++x) n += at(obs, y, x, c, channels);
  return n;
}

// FNV-1a 64 of the observation bytes, as tests/rl/data/minatar_reference_trace.py computes it.
inline uint64_t fnv1a64(const uint8_t* data, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 0x100000001B3ull;
  }
  return h;
}

template <class Game>
std::vector<uint8_t> observe(const Game& game) {
  std::vector<uint8_t> obs(obs_size(Game::kChannels));
  game.observe(obs.data());
  return obs;
}

}  // namespace moelab::rl::testing
