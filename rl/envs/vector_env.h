#pragma once
// N MinAtar games stepped together on a thread pool into one (N, 10, 10, C) byte batch; an episode
// that ends is reset at once and its last observation kept in final_observations(). Usage: docs/rl.md.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rl/envs/environment.h"
#include "rl/envs/thread_pool.h"

namespace moelab::rl {

// The two protocols of docs/minatar.md §2. Record which one every result used.
struct ProtocolPreset {
  std::string_view name;
  bool minimal_action_set;
  double sticky_action_prob;
  int time_limit;           // steps, 0 = none
  int freeway_time_limit;   // Freeway's own value
  std::string_view budget;  // what the literature trains for
  int time_limit_for(GameId game) const { return game == GameId::kFreeway ? freeway_time_limit : time_limit; }
};
const std::vector<ProtocolPreset>& protocol_presets();
// Throws std::invalid_argument listing the presets when the name is unknown.
const ProtocolPreset& protocol_preset(std::string_view name);

struct VectorEnvConfig {
  GameId game = GameId::kBreakout;
  int num_envs = 1;
  std::string protocol = "paper";     // the preset these settings came from ("custom" once edited by hand)
  bool minimal_action_set = false;    // actions index the game's minimal set (mapped before stickiness)
  double sticky_action_prob = 0.1;
  int time_limit = 0;                 // truncate episodes after this many steps; 0 = no limit
  bool difficulty_ramping = true;
  uint32_t seed = 0;                  // env i is seeded with seed + i ...
  std::vector<uint32_t> seeds;        // ... unless per-env seeds are given here (size num_envs)
  int num_threads = 0;                // 0 = all hardware threads (never more than num_envs)
};
VectorEnvConfig protocol_config(std::string_view protocol, GameId game, int num_envs, uint32_t seed = 0);

class VectorEnv {
 public:
  explicit VectorEnv(const VectorEnvConfig& config);

  // Seeds every env with its seed, resets it and writes all observations; clears episode counters.
  void reset();
  // actions: (N,) in [0, num_actions()). Writes observations, rewards, terminated, truncated and,
  // for the envs whose episode ended, final observations and episode statistics.
  void step(std::span<const int> actions);

  int num_envs() const { return static_cast<int>(envs_.size()); }
  int num_threads() const { return pool_ ? pool_->size() : 1; }
  int channels() const { return channels_; }
  int observation_size() const { return obs_size(channels_); }  // per env: 10 * 10 * C
  int num_actions() const { return static_cast<int>(action_set_.size()); }
  const std::vector<int>& action_set() const { return action_set_; }
  const VectorEnvConfig& config() const { return config_; }

  // Points observation writes at caller memory of num_envs() * observation_size() bytes (nullptr: own buffer).
  void bind_observations(uint8_t* buffer);
  const uint8_t* observations() const { return obs_; }
  // Valid for env i only where terminated()[i] or truncated()[i] after the last step.
  const uint8_t* final_observations() const { return final_obs_.data(); }
  const float* rewards() const { return rewards_.data(); }
  const uint8_t* terminated() const { return terminated_.data(); }
  const uint8_t* truncated() const { return truncated_.data(); }
  // Return and length of the episode that ended at the last step (valid where it ended).
  const float* episode_returns() const { return episode_returns_.data(); }
  const int32_t* episode_lengths() const { return episode_lengths_.data(); }
  Environment& env(int i) { return envs_[i]; }

  // The exact state for checkpoints (vector_env_state.cpp): every env's game, random stream and sticky
  // action, the running episode returns and lengths, and the current observations, as bytes in this
  // build's layout. load_state checks the size, game and env count and says which is wrong.
  std::vector<uint8_t> save_state() const;
  void load_state(std::span<const uint8_t> bytes);

 private:
  void step_range(int begin, int end, const int* actions);

  VectorEnvConfig config_;
  int channels_;
  std::vector<int> action_set_;
  std::vector<Environment> envs_;
  std::unique_ptr<ThreadPool> pool_;
  std::vector<uint8_t> own_obs_, final_obs_, terminated_, truncated_;
  uint8_t* obs_ = nullptr;
  std::vector<float> rewards_, running_returns_, episode_returns_;
  std::vector<int32_t> running_lengths_, episode_lengths_;
};

}  // namespace moelab::rl
