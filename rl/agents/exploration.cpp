#include "rl/agents/exploration.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/util/philox.h"

namespace moelab::rl {

double LinearSchedule::at(int64_t t) const {
  if (!(duration > 0)) throw std::invalid_argument("LinearSchedule: duration must be > 0");
  const double frac = static_cast<double>(t - begin) / duration;
  if (frac <= 0) return start;
  if (frac >= 1) return end;  // exactly `end` (start + (end - start) can round off it)
  return start + (end - start) * frac;
}

LinearSchedule dqn_epsilon_schedule(int64_t replay_start, int64_t anneal_frames, double end) {
  if (replay_start < 0 || anneal_frames < 1)
    throw std::invalid_argument("dqn_epsilon_schedule: replay_start must be >= 0 and anneal_frames >= 1");
  return {1.0, end, replay_start, static_cast<double>(anneal_frames)};
}

LinearSchedule pqn_epsilon_schedule(int64_t total_updates, double fraction, double end) {
  if (total_updates < 1 || !(fraction > 0))
    throw std::invalid_argument("pqn_epsilon_schedule: total_updates must be >= 1 and fraction > 0");
  return {1.0, end, 0, fraction * static_cast<double>(total_updates)};
}

void greedy_actions(const float* q, int n, int num_actions, int* actions) {
  if (num_actions < 1) throw std::invalid_argument("greedy_actions: num_actions must be >= 1");
  for (int i = 0; i < n; ++i) {
    const float* row = q + static_cast<int64_t>(i) * num_actions;
    actions[i] = static_cast<int>(std::max_element(row, row + num_actions) - row);  // first maximum
  }
}

void EpsilonGreedy::select(const float* q, int n, int num_actions, double epsilon, int* actions) {
  if (num_actions < 1) throw std::invalid_argument("EpsilonGreedy::select: num_actions must be >= 1");
  const uint64_t key = rng_.key();
  const uint64_t base = rng_.advance(2 * static_cast<uint64_t>(n));
  greedy_actions(q, n, num_actions, actions);
  for (int i = 0; i < n; ++i) {
    const double coin = philox::uniform_at(key, base + 2 * static_cast<uint64_t>(i));
    if (coin >= epsilon) continue;
    const double pick = philox::uniform_at(key, base + 2 * static_cast<uint64_t>(i) + 1);
    actions[i] = std::min(num_actions - 1, static_cast<int>(pick * num_actions));
  }
}

void EpsilonGreedy::select(const Tensor& q, double epsilon, std::span<int> actions) {
  if (q.dim() != 2 || q.size(0) != static_cast<int64_t>(actions.size()))
    throw std::invalid_argument("EpsilonGreedy::select: q must be (N, A) with N = " + std::to_string(actions.size()) +
                                " actions, got " + q.shape().str());
  const std::vector<float> host = q.to_vector<float>();
  select(host.data(), static_cast<int>(q.size(0)), static_cast<int>(q.size(1)), epsilon, actions.data());
}

std::pair<std::string, Tensor> EpsilonGreedy::state(const std::string& name) const {
  const std::vector<int64_t> v = {static_cast<int64_t>(rng_.key()), static_cast<int64_t>(rng_.counter())};
  return {name, Tensor::from_vector<int64_t>(v, Shape{2})};
}

void EpsilonGreedy::load_state(const std::string& name, const Tensor& tensor) {
  if (!tensor.defined() || tensor.dtype() != DType::i64 || tensor.shape() != Shape{2})
    throw std::invalid_argument("EpsilonGreedy::load_state: tensor '" + name + "' must be i64 (2) = (key, counter)" +
                                (tensor.defined() ? ", got " + std::string(dtype_name(tensor.dtype())) + " " +
                                                        tensor.shape().str()
                                                  : std::string(", got none")));
  const std::vector<int64_t> v = tensor.to_vector<int64_t>();
  rng_ = RngStream::from_state(static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1]));
}

}  // namespace moelab::rl
