#pragma once
// Q-learning targets and losses: DQN's one-step target, PQN's lambda-returns over a (T, N) rollout, the
// Huber (DQN) and half-squared (PQN) regression on the Q-value of the action taken. Targets are constants
// (no gradient). Termination ends bootstrapping; truncation bootstraps from the true last observation.
#include <cstdint>
#include <span>

#include "core/tensor/tensor.h"

namespace moelab::rl {

// ---- host forms (row-major arrays) ----

// q: (B, A) -> out (B): max over actions.
void max_over_actions(const float* q, int64_t batch, int num_actions, float* out);

// One-step DQN targets: out[b] = r[b] + gamma * (1 - terminated[b]) * max_a next_q[b, a].
// next_q: (B, A), Q_target of the next observation (for a truncated step, of its true last observation).
void dqn_targets(std::span<const float> rewards, std::span<const uint8_t> terminated, const float* next_q,
                 int num_actions, double gamma, std::span<float> out);

struct LambdaReturnOptions {
  double gamma = 0.99;
  double lambda = 0.65;
  // true: a truncated step bootstraps from max_a Q(true last observation). false: truncation is treated as
  // termination, as purejaxql does with gymnax's `done` (which includes the time limit).
  bool truncation_bootstraps = true;
};

// PQN lambda-returns over a rollout of T steps of N envs, backwards in t:
//   G_t = r_t                                                    where terminated_t
//   G_t = r_t + gamma * final_values_t                           where truncated_t (the lambda chain is cut)
//   G_t = r_t + gamma * ((1 - lambda) * V_{t+1} + lambda * G_{t+1})   otherwise, with G_T = V_T
// rewards, terminated, truncated, final_values, out: (T, N); values: (T + 1, N) with
// values[t] = max_a Q(obs_t, a), obs_t the observation acted on at step t (after an auto-reset the new
// episode's first) and values[T] that of the observation after the last step. final_values[t] =
// max_a Q(true last observation of step t) is read only where truncated.
void lambda_returns(int T, int N, const float* rewards, const uint8_t* terminated, const uint8_t* truncated,
                    const float* values, const float* final_values, const LambdaReturnOptions& options,
                    float* out);

// ---- tensor forms (any device; results carry no gradient) ----

// rewards: (B) f32, terminated: (B) f32 0/1, next_q: (B, A) f32 -> (B) f32
Tensor dqn_targets(const Tensor& rewards, const Tensor& terminated, const Tensor& next_q, double gamma);
// q: (B, A), actions: (B) i32/i64 -> (B): q[b, actions[b]], differentiable in q.
Tensor q_of_actions(const Tensor& q, const Tensor& actions);
// DQN: mean Huber (delta 1, = PyTorch's smooth_l1_loss) between q[b, a_b] and targets (B). -> 0-d
Tensor dqn_loss(const Tensor& q, const Tensor& actions, const Tensor& targets);
// PQN: 0.5 * mean (q[b, a_b] - targets[b])^2. -> 0-d
Tensor pqn_loss(const Tensor& q, const Tensor& actions, const Tensor& targets);

}  // namespace moelab::rl
