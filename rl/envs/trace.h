#pragma once
// The reproducibility trace of `moelab env trace`: `reset OBS`, then `step A R T OBS` per action,
// with OBS as '0'/'1' characters over [y][x][c]. Format details: docs/rl.md (Commands).
#include <cstdint>
#include <iosfwd>
#include <span>
#include <string>
#include <vector>

#include "rl/envs/game.h"

namespace moelab::rl {

struct TraceOptions {
  uint32_t seed = 0;
  double sticky_action_prob = 0.1;
  bool difficulty_ramping = true;
};

// Whitespace-separated actions 0..5; throws std::invalid_argument naming `source` and the token's index.
std::vector<int> parse_actions(std::istream& in, const std::string& source);
std::string observation_string(const uint8_t* obs, int channels);
void write_trace(std::ostream& out, GameId game, std::span<const int> actions, const TraceOptions& options);

}  // namespace moelab::rl
