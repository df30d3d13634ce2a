#include "rl/envs/game.h"

#include <stdexcept>

namespace moelab::rl {

const GameInfo& game_info(GameId id) {
  static const GameInfo kInfos[kNumGames] = {
      {GameId::kBreakout, "breakout", {"paddle", "ball", "trail", "brick"}, {0, 1, 3}},
      {GameId::kAsterix, "asterix", {"player", "enemy", "trail", "gold"}, {0, 1, 2, 3, 4}},
      {GameId::kFreeway,
       "freeway",
       {"chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5"},
       {0, 2, 4}},
      {GameId::kSeaquest,
       "seaquest",
       {"sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish", "enemy_sub",
        "oxygen_guage", "diver_guage", "diver"},
       {0, 1, 2, 3, 4, 5}},
      {GameId::kSpaceInvaders,
       "space_invaders",
       {"cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet"},
       {0, 1, 3, 5}},
  };
  const int index = static_cast<int>(id);
  if (index < 0 || index >= kNumGames) throw std::invalid_argument("game_info: unknown game id " + std::to_string(index));
  return kInfos[index];
}

const std::array<GameId, kNumGames>& all_games() {
  static const std::array<GameId, kNumGames> kAll = {GameId::kBreakout, GameId::kAsterix, GameId::kFreeway,
                                                     GameId::kSeaquest, GameId::kSpaceInvaders};
  return kAll;
}

GameId game_id_from_name(std::string_view name) {
  for (GameId id : all_games())
    if (game_info(id).name == name) return id;
  std::string message = "unknown MinAtar game '" + std::string(name) + "'; valid games:";
  for (GameId id : all_games()) message += " " + std::string(game_info(id).name);
  throw std::invalid_argument(message);
}

std::string_view action_name(int action) {
  static constexpr std::string_view kNames[kNumActions] = {"noop", "left", "up", "right", "down", "fire"};
  if (action < 0 || action >= kNumActions) throw std::invalid_argument("action must be in 0..5, got " + std::to_string(action));
  return kNames[action];
}

}  // namespace moelab::rl
