#include "rl/agents/targets.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "core/ops/ops.h"

namespace moelab::rl {

void max_over_actions(const float* q, int64_t batch, int num_actions, float* out) {
  if (num_actions < 1) throw std::invalid_argument("max_over_actions: num_actions must be >= 1");
  for (int64_t b = 0; b < batch; ++b) {
    const float* row = q + b * num_actions;
    out[b] = *std::max_element(row, row + num_actions);
  }
}

void dqn_targets(std::span<const float> rewards, std::span<const uint8_t> terminated, const float* next_q,
                 int num_actions, double gamma, std::span<float> out) {
  const size_t B = rewards.size();
  if (terminated.size() != B || out.size() != B)
    throw std::invalid_argument("dqn_targets: rewards (" + std::to_string(B) + "), terminated (" +
                                std::to_string(terminated.size()) + ") and out (" + std::to_string(out.size()) +
                                ") must have the same length");
  max_over_actions(next_q, static_cast<int64_t>(B), num_actions, out.data());
  for (size_t b = 0; b < B; ++b)
    out[b] = static_cast<float>(rewards[b] + (terminated[b] ? 0.0 : gamma * out[b]));
}

void lambda_returns(int T, int N, const float* rewards, const uint8_t* terminated, const uint8_t* truncated,
                    const float* values, const float* final_values, const LambdaReturnOptions& options,
                    float* out) {
  if (T < 1 || N < 1) throw std::invalid_argument("lambda_returns: T and N must be >= 1");
  const double gamma = options.gamma, lambda = options.lambda;
  for (int n = 0; n < N; ++n) {
    double next_value = values[static_cast<int64_t>(T) * N + n];  // V_T
    double next_return = next_value;                               // G_T = V_T: the last step is one-step
    for (int t = T - 1; t >= 0; --t) {
      const int64_t i = static_cast<int64_t>(t) * N + n;
      double g;
      if (terminated[i] || (truncated[i] && !options.truncation_bootstraps)) {
        g = rewards[i];
      } else if (truncated[i]) {
        // What follows in the rollout is another episode: bootstrap fully from the true last observation.
        g = rewards[i] + gamma * final_values[i];
      } else {
        g = rewards[i] + gamma * ((1.0 - lambda) * next_value + lambda * next_return);
      }
      out[i] = static_cast<float>(g);
      next_return = g;
      next_value = values[i];
    }
  }
}

Tensor dqn_targets(const Tensor& rewards, const Tensor& terminated, const Tensor& next_q, double gamma) {
  if (next_q.dim() != 2 || rewards.dim() != 1 || terminated.dim() != 1 || rewards.size(0) != next_q.size(0) ||
      terminated.size(0) != next_q.size(0))
    throw std::invalid_argument("dqn_targets: expected rewards (B), terminated (B), next_q (B, A); got " +
                                rewards.shape().str() + ", " + terminated.shape().str() + ", " +
                                next_q.shape().str());
  Tensor next_max = max(next_q.detach(), 1);
  return add(rewards.detach(), mul(mul(sub(1.0, terminated.detach()), next_max), gamma));
}

Tensor q_of_actions(const Tensor& q, const Tensor& actions) {
  if (q.dim() != 2 || actions.dim() != 1 || actions.size(0) != q.size(0))
    throw std::invalid_argument("q_of_actions: expected q (B, A) and actions (B); got " + q.shape().str() + " and " +
                                actions.shape().str());
  return gather(q, 1, actions.unsqueeze(1)).squeeze(1);
}

Tensor dqn_loss(const Tensor& q, const Tensor& actions, const Tensor& targets) {
  return huber_loss(q_of_actions(q, actions), targets.detach(), 1.0);
}

Tensor pqn_loss(const Tensor& q, const Tensor& actions, const Tensor& targets) {
  return mul(mse_loss(q_of_actions(q, actions), targets.detach()), 0.5);
}

}  // namespace moelab::rl
