#pragma once
// What the five MinAtar games share: the 10x10 grid, the 6-action map, the step result, the game table
// and the plain-struct shape of a game (docs/rl.md, The game interface).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::rl {

inline constexpr int kGridSize = 10;
inline constexpr int kNumActions = 6;  // every game: n l u r d f
enum Action : int { kNoop = 0, kLeft = 1, kUp = 2, kRight = 3, kDown = 4, kFire = 5 };

struct StepResult {
  int reward = 0;
  bool terminal = false;
};

enum class GameId : int { kBreakout = 0, kAsterix, kFreeway, kSeaquest, kSpaceInvaders };
inline constexpr int kNumGames = 5;

// Static facts of one game: its MinAtar name, channel names, minimal action set.
struct GameInfo {
  GameId id;
  std::string_view name;
  std::vector<std::string_view> channels;
  std::vector<int> minimal_actions;
};

const GameInfo& game_info(GameId id);
// Looks a game up by its MinAtar name (breakout, asterix, freeway, seaquest, space_invaders);
// throws std::invalid_argument listing the valid names otherwise.
GameId game_id_from_name(std::string_view name);
const std::array<GameId, kNumGames>& all_games();
std::string_view action_name(int action);

// Index of cell (y, x), channel c in a (10, 10, C) observation.
constexpr int obs_index(int y, int x, int c, int channels) { return (y * kGridSize + x) * channels + c; }
constexpr int obs_size(int channels) { return kGridSize * kGridSize * channels; }

}  // namespace moelab::rl
