#pragma once
// What the RL tasks (dqn, pqn) share: env.* keys with the protocol presets and their conflicts placed at
// the key, model.* keys of the Q-network (rl/agents/q_network.h), observation encoding for one game or the
// common multi-game layout, greedy evaluation episodes, and byte blobs in checkpoint tensors.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "experiments/lib/task.h"
#include "rl/agents/exploration.h"
#include "rl/agents/multi_game.h"
#include "rl/agents/q_network.h"
#include "rl/envs/vector_env.h"

namespace moelab::experiments {

// env.game (a game or "all" when allow_all), env.protocol (paper, gymnax, custom), env.sticky_action_prob,
// env.time_limit, env.minimal_action_set (explicit values must agree with a named preset), env.ramping,
// env.num_envs, env.threads, env.game_id_input.
void declare_rl_env_keys(Schema& s, const std::string& default_protocol, int64_t default_envs, bool allow_all);
// model.conv_channels, model.hidden, model.layer_norm, model.penultimate, model.tokenization, model.moe.*.
void declare_q_network_keys(Schema& s, bool default_layer_norm);
// eval.episodes, eval.epsilon, eval.max_steps.
void declare_rl_eval_keys(Schema& s);

struct RlEnvSettings {
  std::vector<rl::GameId> games;  // one, or all five (multi-game)
  bool multi_game = false;
  std::string protocol;
  double sticky_action_prob = 0.1;
  int time_limit = 0;             // 0: none; Freeway takes the preset's own value under gymnax
  bool gymnax_freeway_limit = false;
  bool minimal_action_set = false;
  bool ramping = true;
  int num_envs = 1;               // per game
  int threads = 1;
  bool game_id_input = false;     // multi-game: one constant plane per game appended to the input
};
RlEnvSettings rl_env_settings(const Config& cfg);
// The VectorEnv of `game` with these settings, envs seeded seed, seed + 1, ...
rl::VectorEnvConfig vector_env_config(const RlEnvSettings& s, rl::GameId game, int num_envs, uint32_t seed, int threads);
// A 32-bit env seed for a named purpose ("train.breakout", "eval.breakout").
uint32_t env_seed(uint64_t seed, const std::string& purpose);

// Observations -> network input: a game's own channels, or the common layout of all games (+ id planes).
class ObservationEncoder {
 public:
  explicit ObservationEncoder(const RlEnvSettings& s);
  int channels() const { return channels_; }
  int num_actions() const { return num_actions_; }
  // obs: (n, 10, 10, C_game) bytes -> appends (n, 10, 10, channels()) bytes to `out`.
  void append(rl::GameId game, const uint8_t* obs, int n, std::vector<uint8_t>& out) const;
  // bytes (n, 10, 10, channels()) -> f32 (n, channels(), 10, 10)
  Tensor to_tensor(const std::vector<uint8_t>& bytes, int n, Device device) const;

 private:
  bool multi_;
  rl::MultiGameLayout layout_;
  int channels_ = 0, num_actions_ = 0;
};

rl::QNetworkOptions q_network_options(const Config& cfg, int in_channels, int num_actions);

// Greedy (eval.epsilon) episodes: eval.episodes envs per game, each played to the end of its first
// episode (or eval.max_steps). Forwards run through ec.run with the game as routing label. Metrics:
// eval/return (mean over games of the mean episode return), eval/return/<game>, eval/episode_length.
EvalResult evaluate_greedy(EvalContext& ec, const Config& cfg, const RlEnvSettings& s, const ObservationEncoder& enc,
                           uint64_t seed);

// The routing labels of the RL tasks: the game (row g = game g) when multi-game, else none.
std::vector<std::string> game_label_names(const RlEnvSettings& s);

// Byte blobs (environment states) as i64 (1) length + i32 words, for TaskState tensors.
Tensor bytes_to_tensor(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> tensor_to_bytes(const Tensor& t);

// ε-greedy over a q tensor's rows [row0, row0 + n) (q on the host, (rows, A)).
void select_actions(rl::EpsilonGreedy& explore, const std::vector<float>& q, int row0, int n, int num_actions,
                    double epsilon, int* actions);

// A trained agent rebuilt from a run directory (config.toml and a checkpoint's model.safetensors), for
// players and analyses: the network in eval mode, its environment settings and observation encoding.
struct RlAgent {
  Config cfg;
  RlEnvSettings env;
  std::shared_ptr<ObservationEncoder> encoder;
  std::shared_ptr<rl::QNetwork> network;
  int64_t step = 0;  // the checkpoint's
  uint64_t seed = 0;
  // Q-values (n, num_actions) of n observations of `game` in its own layout ((n, 10, 10, C_game) bytes);
  // with `routing`, the MoE layer's choices are tallied there (the game as label).
  std::vector<float> q_values(rl::GameId game, const uint8_t* obs, int n, moe::RoutingLog* routing = nullptr) const;
  // An action of the common set to the one the game's VectorEnv takes.
  int env_action(rl::GameId game, int action) const { return env.multi_game ? rl::env_action(game, action, false) : action; }
};
// The newest complete checkpoint, or `step`'s. Throws moelab::Error for a run of another task or none.
RlAgent load_rl_agent(const std::filesystem::path& run_dir, std::optional<int64_t> step = std::nullopt);

}  // namespace moelab::experiments
