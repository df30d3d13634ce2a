#pragma once
// PQN's rollout storage: T steps of N envs, lambda-return targets over them, and epochs of shuffled
// minibatches from a counter-based stream. Usage: docs/rl.md (Agents' building blocks).
#include <cstdint>
#include <span>
#include <vector>

#include "core/util/rng.h"
#include "rl/agents/targets.h"

namespace moelab::rl {

struct RolloutConfig {
  int num_steps = 32;         // T
  int num_envs = 128;         // N
  int observation_size = 0;   // bytes per observation, 10 * 10 * C
  int num_actions = 0;        // A
};

class Rollout {
 public:
  explicit Rollout(const RolloutConfig& config);

  // Starts a new rollout (keeps the memory).
  void clear();
  // One step of all envs: obs (N, obs) the observations acted on, q (N, A) their Q-values, actions (N),
  // then the step's rewards, terminated, truncated (N) and final_values (N) = max_a Q(true last
  // observation) where truncated (null when no env was truncated).
  void add(const uint8_t* obs, const float* q, const int* actions, const float* rewards, const uint8_t* terminated,
           const uint8_t* truncated, const float* final_values);
  // last_values (N): max_a Q(observation after the last step) with the current network. Call when full().
  void finish(const float* last_values);
  // Fills targets() with lambda-returns; needs finish().
  void compute_targets(const LambdaReturnOptions& options);

  // A fresh permutation of the T * N transitions (Fisher-Yates, T * N - 1 draws of rng).
  void shuffle(RngStream& rng);
  // Indices of minibatch m of `count` (equal parts of the current permutation; count must divide T * N).
  std::span<const int32_t> minibatch(int m, int count) const;
  // Copies the transitions at flat indices t * N + n: obs (M, obs), actions (M), targets (M).
  void gather(std::span<const int32_t> indices, uint8_t* obs, int32_t* actions, float* targets) const;

  bool full() const { return steps_ == config_.num_steps; }
  int steps() const { return steps_; }
  int64_t size() const { return static_cast<int64_t>(config_.num_steps) * config_.num_envs; }
  const RolloutConfig& config() const { return config_; }
  // (T, N, ...) row-major views.
  const std::vector<uint8_t>& observations() const { return obs_; }
  const std::vector<float>& q_values() const { return q_; }
  const std::vector<int32_t>& actions() const { return actions_; }
  const std::vector<float>& rewards() const { return rewards_; }
  const std::vector<uint8_t>& terminated() const { return terminated_; }
  const std::vector<uint8_t>& truncated() const { return truncated_; }
  const std::vector<float>& values() const { return values_; }  // (T + 1, N): max_a Q at obs_t; row T last
  const std::vector<float>& targets() const { return targets_; }
  const std::vector<int32_t>& permutation() const { return permutation_; }

  // Everything above as bytes for checkpoints (rollout_state.cpp); load_state needs the same config and
  // says what does not match.
  std::vector<uint8_t> save_state() const;
  void load_state(std::span<const uint8_t> bytes);

 private:
  RolloutConfig config_;
  int steps_ = 0;
  bool finished_ = false, have_targets_ = false;
  std::vector<uint8_t> obs_, terminated_, truncated_;
  std::vector<float> q_, rewards_, values_, final_values_, targets_;
  std::vector<int32_t> actions_, permutation_;
};

}  // namespace moelab::rl
