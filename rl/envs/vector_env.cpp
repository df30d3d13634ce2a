#include "rl/envs/vector_env.h"

#include <algorithm>
#include <atomic>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace moelab::rl {

namespace {
constexpr int kChunkSize = 32;  // envs per work item of a parallel step
}

const std::vector<ProtocolPreset>& protocol_presets() {
  static const std::vector<ProtocolPreset> kPresets = {
      {"paper", false, 0.1, 0, 0, "5M frames"},
      {"gymnax", true, 0.0, 1000, 2500, "1e7 steps"},
  };
  return kPresets;
}

const ProtocolPreset& protocol_preset(std::string_view name) {
  for (const auto& p : protocol_presets())
    if (p.name == name) return p;
  std::string message = "unknown protocol preset '" + std::string(name) + "'; valid presets:";
  for (const auto& p : protocol_presets()) message += " " + std::string(p.name);
  throw std::invalid_argument(message);
}

VectorEnvConfig protocol_config(std::string_view protocol, GameId game, int num_envs, uint32_t seed) {
  const ProtocolPreset& preset = protocol_preset(protocol);
  VectorEnvConfig config;
  config.game = game;
  config.num_envs = num_envs;
  config.protocol = std::string(preset.name);
  config.minimal_action_set = preset.minimal_action_set;
  config.sticky_action_prob = preset.sticky_action_prob;
  config.time_limit = preset.time_limit_for(game);
  config.seed = seed;
  return config;
}

VectorEnv::VectorEnv(const VectorEnvConfig& config) : config_(config), channels_(game_channels(config.game)) {
  const int n = config.num_envs;
  if (n < 1) throw std::invalid_argument("VectorEnv: num_envs must be >= 1, got " + std::to_string(n));
  if (!config.seeds.empty() && static_cast<int>(config.seeds.size()) != n) {
    throw std::invalid_argument("VectorEnv: " + std::to_string(config.seeds.size()) + " seeds given for " +
                                std::to_string(n) + " envs; give one per env or none (seed + i)");
  }
  if (config.time_limit < 0) throw std::invalid_argument("VectorEnv: time_limit must be >= 0 (0 = none)");
  if (config.minimal_action_set) {
    action_set_ = game_info(config.game).minimal_actions;
  } else {
    action_set_.resize(kNumActions);
    std::iota(action_set_.begin(), action_set_.end(), 0);
  }
  envs_.reserve(n);
  for (int i = 0; i < n; ++i) {
    // Seeded here only so that construction is deterministic; reset() reseeds.
    envs_.emplace_back(config.game, EnvironmentOptions{config.sticky_action_prob, config.difficulty_ramping, 0u});
  }
  int threads = config.num_threads > 0 ? config.num_threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, n);
  if (threads > 1) pool_ = std::make_unique<ThreadPool>(threads);
  const size_t obs_bytes = static_cast<size_t>(n) * observation_size();
  own_obs_.assign(obs_bytes, 0);
  final_obs_.assign(obs_bytes, 0);
  obs_ = own_obs_.data();
  terminated_.assign(n, 0);
  truncated_.assign(n, 0);
  rewards_.assign(n, 0.f);
  running_returns_.assign(n, 0.f);
  episode_returns_.assign(n, 0.f);
  running_lengths_.assign(n, 0);
  episode_lengths_.assign(n, 0);
}

void VectorEnv::bind_observations(uint8_t* buffer) { obs_ = buffer ? buffer : own_obs_.data(); }

void VectorEnv::reset() {
  for (int i = 0; i < num_envs(); ++i) {
    Environment& e = envs_[i];
    e.seed(config_.seeds.empty() ? config_.seed + static_cast<uint32_t>(i) : config_.seeds[i]);
    e.reset();
    e.observe(obs_ + static_cast<size_t>(i) * observation_size());
  }
  std::fill(terminated_.begin(), terminated_.end(), 0);
  std::fill(truncated_.begin(), truncated_.end(), 0);
  std::fill(rewards_.begin(), rewards_.end(), 0.f);
  std::fill(running_returns_.begin(), running_returns_.end(), 0.f);
  std::fill(running_lengths_.begin(), running_lengths_.end(), 0);
}

void VectorEnv::step_range(int begin, int end, const int* actions) {
  const int size = observation_size();
  const int* map = action_set_.data();
  for (int i = begin; i < end; ++i) {
    Environment& e = envs_[i];
    const StepResult result = e.act(map[actions[i]]);
    running_returns_[i] += static_cast<float>(result.reward);
    running_lengths_[i] += 1;
    const bool truncated = !result.terminal && config_.time_limit > 0 && running_lengths_[i] >= config_.time_limit;
    rewards_[i] = static_cast<float>(result.reward);
    terminated_[i] = result.terminal;
    truncated_[i] = truncated;
    if (result.terminal || truncated) {
      e.observe(final_obs_.data() + static_cast<size_t>(i) * size);
      episode_returns_[i] = running_returns_[i];
      episode_lengths_[i] = running_lengths_[i];
      running_returns_[i] = 0.f;
      running_lengths_[i] = 0;
      e.reset();  // the stream continues; last_action is kept (reference wrapper semantics)
    }
    e.observe(obs_ + static_cast<size_t>(i) * size);
  }
}

void VectorEnv::step(std::span<const int> actions) {
  const int n = num_envs();
  if (static_cast<int>(actions.size()) != n) {
    throw std::invalid_argument("VectorEnv::step: got " + std::to_string(actions.size()) + " actions for " +
                                std::to_string(n) + " envs");
  }
  for (int i = 0; i < n; ++i) {
    if (actions[i] < 0 || actions[i] >= num_actions()) {
      throw std::invalid_argument("VectorEnv::step: action " + std::to_string(actions[i]) + " of env " +
                                  std::to_string(i) + " is outside 0.." + std::to_string(num_actions() - 1) +
                                  (config_.minimal_action_set ? " (minimal action set)" : ""));
    }
  }
  if (!pool_) {
    step_range(0, n, actions.data());
    return;
  }
  // Chunks are handed out through an atomic counter: whichever thread is running takes the next one.
  // Each env's result depends only on its own state, so who steps it does not matter.
  const int chunk = std::max(1, std::min(kChunkSize, n / pool_->size()));
  const int num_chunks = (n + chunk - 1) / chunk;
  std::atomic<int> next_chunk{0};
  pool_->run([&] {
    for (int c = next_chunk.fetch_add(1, std::memory_order_relaxed); c < num_chunks;
         c = next_chunk.fetch_add(1, std::memory_order_relaxed)) {
      step_range(c * chunk, std::min(n, (c + 1) * chunk), actions.data());
    }
  });
}

}  // namespace moelab::rl
