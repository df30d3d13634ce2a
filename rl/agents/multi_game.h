#pragma once
// Observation layouts for agents: one common channel layout for all five games (the union of their
// channels by name, table in docs/rl.md), optional game-id one-hot planes, the 6-action set shared by the
// games, and u8 observations -> f32 network input tensors.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/tensor/tensor.h"
#include "rl/envs/game.h"

namespace moelab::rl {

// The common channels in order: each game's channels in game order (breakout, asterix, freeway, seaquest,
// space_invaders), a name met again ("trail", "friendly_bullet", "enemy_bullet") reusing its first slot.
const std::vector<std::string_view>& common_channels();
int num_common_channels();  // 27
// channel c of `game` -> its common channel (size game_channels(game)); injective per game.
const std::vector<int>& common_channel_map(GameId game);

struct MultiGameLayout {
  bool game_id_one_hot = false;  // adds kNumGames constant planes: plane g is all 1 for game g
  int channels() const { return num_common_channels() + (game_id_one_hot ? kNumGames : 0); }
  int observation_size() const { return obs_size(channels()); }
};

// src: (B, 10, 10, C_game) bytes -> dst: (B, 10, 10, layout.channels()); channels the game lacks are 0.
void embed_observations(GameId game, const uint8_t* src, int batch, const MultiGameLayout& layout, uint8_t* dst);
// The inverse on the game's own channels: src (B, 10, 10, layout.channels()) -> dst (B, 10, 10, C_game).
void extract_observations(GameId game, const uint8_t* src, int batch, const MultiGameLayout& layout, uint8_t* dst);
// out: (kNumGames) with 1 at the game's index.
std::array<float, kNumGames> game_one_hot(GameId game);

// The common action set is the 6 MinAtar actions (n l u r d f). With the minimal action set (gymnax
// protocol) a game accepts only some of them: legal[a] says which, and env_action maps a common action to
// the index VectorEnv expects (-1 where the game has no such action). Without it every action is legal.
std::array<uint8_t, kNumActions> legal_actions(GameId game, bool minimal_action_set);
int env_action(GameId game, int common_action, bool minimal_action_set);

enum class TensorLayout { nchw, nhwc };
// obs: (B, 10, 10, C) bytes -> f32 (B, C, 10, 10) (nchw, for conv2d) or (B, 10, 10, C), times `scale`.
Tensor observations_to_tensor(const uint8_t* obs, int batch, int channels, TensorLayout layout = TensorLayout::nchw,
                              float scale = 1.0f, Device device = Device::cpu());

}  // namespace moelab::rl
