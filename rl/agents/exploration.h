#pragma once
// Exploration: linear epsilon schedules (MinAtar's DQN, purejaxql's PQN) and epsilon-greedy action
// selection from a counter-based stream: every row uses exactly two draws whatever epsilon is, so the
// actions depend only on (seed, draws so far, Q-values) and a resumed run picks the same ones.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "core/tensor/tensor.h"
#include "core/util/rng.h"

namespace moelab::rl {

// value(t) = start for t <= begin, end for t >= begin + duration, linear in between.
struct LinearSchedule {
  double start = 1.0;
  double end = 0.1;
  int64_t begin = 0;
  double duration = 1.0;  // > 0, in the same unit as t (may be fractional, as optax allows)
  double at(int64_t t) const;
};

// MinAtar examples/dqn.py: uniform random actions while t < replay_start (epsilon 1), then epsilon falls
// linearly from 1 to `end` over `anneal_frames` frames: at(t) = 1 + (end - 1) * (t - replay_start) / anneal.
// t is the 0-based frame index (frames taken before this action).
LinearSchedule dqn_epsilon_schedule(int64_t replay_start = 5000, int64_t anneal_frames = 100000, double end = 0.1);
// purejaxql pqn_minatar: optax.linear_schedule(1, end, fraction * total_updates) evaluated at the number
// of completed updates (rollouts), total_updates = total_steps // (num_steps * num_envs).
LinearSchedule pqn_epsilon_schedule(int64_t total_updates, double fraction = 0.1, double end = 0.05);

// Row-wise argmax, first maximum on ties (torch.max / jnp.argmax). q: (N, A) -> actions (N)
void greedy_actions(const float* q, int n, int num_actions, int* actions);

class EpsilonGreedy {
 public:
  explicit EpsilonGreedy(uint64_t seed, std::string_view stream = "explore") : rng_(seed, stream) {}
  explicit EpsilonGreedy(const RngStream& rng) : rng_(rng) {}

  // q: (N, A) row-major -> actions (N). Row i draws u_i and v_i: a uniform action floor(v_i * A) when
  // u_i < epsilon, else the greedy one (first maximum). Uses 2N draws of the stream.
  void select(const float* q, int n, int num_actions, double epsilon, int* actions);
  // q: (N, A) f32 tensor on any device (copied to the host).
  void select(const Tensor& q, double epsilon, std::span<int> actions);

  // The stream (key, counter) for checkpoints; set_rng restores it.
  const RngStream& rng() const { return rng_; }
  void set_rng(const RngStream& rng) { rng_ = rng; }
  // The same as one named tensor: `name` i64 (2) = (key, counter); load_state checks name, dtype and shape.
  std::pair<std::string, Tensor> state(const std::string& name = "explore.rng") const;
  void load_state(const std::string& name, const Tensor& tensor);

 private:
  RngStream rng_;
};

}  // namespace moelab::rl
