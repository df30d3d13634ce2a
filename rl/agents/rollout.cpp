#include "rl/agents/rollout.h"

#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string>

namespace moelab::rl {

Rollout::Rollout(const RolloutConfig& config) : config_(config) {
  if (config.num_steps < 1 || config.num_envs < 1 || config.observation_size < 1 || config.num_actions < 1)
    throw std::invalid_argument("Rollout: num_steps, num_envs, observation_size and num_actions must be >= 1");
  const int64_t TN = size();
  obs_.assign(TN * config.observation_size, 0);
  q_.assign(TN * config.num_actions, 0.f);
  actions_.assign(TN, 0);
  rewards_.assign(TN, 0.f);
  terminated_.assign(TN, 0);
  truncated_.assign(TN, 0);
  values_.assign(TN + config.num_envs, 0.f);
  final_values_.assign(TN, 0.f);
  targets_.assign(TN, 0.f);
  permutation_.resize(TN);
  std::iota(permutation_.begin(), permutation_.end(), 0);
}

void Rollout::clear() {
  steps_ = 0;
  finished_ = have_targets_ = false;
}

void Rollout::add(const uint8_t* obs, const float* q, const int* actions, const float* rewards,
                  const uint8_t* terminated, const uint8_t* truncated, const float* final_values) {
  if (full()) throw std::logic_error("Rollout::add: all " + std::to_string(config_.num_steps) + " steps are stored");
  const int N = config_.num_envs, A = config_.num_actions;
  const int64_t row = static_cast<int64_t>(steps_) * N;
  std::memcpy(obs_.data() + row * config_.observation_size, obs, static_cast<size_t>(N) * config_.observation_size);
  std::memcpy(q_.data() + row * A, q, sizeof(float) * N * A);
  for (int n = 0; n < N; ++n) {
    if (actions[n] < 0 || actions[n] >= A)
      throw std::invalid_argument("Rollout::add: action " + std::to_string(actions[n]) + " of env " +
                                  std::to_string(n) + " is outside 0.." + std::to_string(A - 1));
    const int64_t i = row + n;
    actions_[i] = actions[n];
    rewards_[i] = rewards[n];
    terminated_[i] = terminated[n] ? 1 : 0;
    truncated_[i] = (!terminated[n] && truncated[n]) ? 1 : 0;
    if (truncated_[i] && !final_values)
      throw std::invalid_argument("Rollout::add: env " + std::to_string(n) +
                                  " was truncated but no final values were given");
    final_values_[i] = truncated_[i] ? final_values[n] : 0.f;
  }
  max_over_actions(q, N, A, values_.data() + row);
  ++steps_;
}

void Rollout::finish(const float* last_values) {
  if (!full())
    throw std::logic_error("Rollout::finish after " + std::to_string(steps_) + " of " +
                           std::to_string(config_.num_steps) + " steps");
  std::memcpy(values_.data() + size(), last_values, sizeof(float) * config_.num_envs);
  finished_ = true;
}

void Rollout::compute_targets(const LambdaReturnOptions& options) {
  if (!finished_) throw std::logic_error("Rollout::compute_targets before finish(last_values)");
  lambda_returns(config_.num_steps, config_.num_envs, rewards_.data(), terminated_.data(), truncated_.data(),
                 values_.data(), final_values_.data(), options, targets_.data());
  have_targets_ = true;
}

void Rollout::shuffle(RngStream& rng) {
  std::iota(permutation_.begin(), permutation_.end(), 0);
  for (int64_t i = size() - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(rng.below(static_cast<uint64_t>(i + 1)));
    std::swap(permutation_[i], permutation_[j]);
  }
}

std::span<const int32_t> Rollout::minibatch(int m, int count) const {
  if (count < 1 || size() % count != 0 || m < 0 || m >= count)
    throw std::invalid_argument("Rollout::minibatch: " + std::to_string(count) + " minibatches must divide the " +
                                std::to_string(size()) + " transitions and m = " + std::to_string(m) +
                                " must be in 0..count-1");
  const int64_t per = size() / count;
  return std::span<const int32_t>(permutation_.data() + m * per, static_cast<size_t>(per));
}

void Rollout::gather(std::span<const int32_t> indices, uint8_t* obs, int32_t* actions, float* targets) const {
  if (!have_targets_) throw std::logic_error("Rollout::gather before compute_targets");
  const size_t size_obs = config_.observation_size;
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    if (i < 0 || i >= size())
      throw std::invalid_argument("Rollout::gather: index " + std::to_string(i) + " is outside 0.." +
                                  std::to_string(size() - 1));
    if (obs) std::memcpy(obs + k * size_obs, obs_.data() + i * size_obs, size_obs);
    if (actions) actions[k] = actions_[i];
    if (targets) targets[k] = targets_[i];
  }
}

}  // namespace moelab::rl
