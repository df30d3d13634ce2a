// Rollout::save_state / load_state: the config's sizes, the counters, then each array with its length.
#include <cstring>
#include <stdexcept>
#include <string>

#include "rl/agents/rollout.h"

namespace moelab::rl {

namespace {
template <class T> void put_vec(std::vector<uint8_t>& out, const std::vector<T>& v) {
  const uint64_t n = v.size();
  const auto* p = reinterpret_cast<const uint8_t*>(&n);
  out.insert(out.end(), p, p + sizeof n);
  const auto* d = reinterpret_cast<const uint8_t*>(v.data());
  out.insert(out.end(), d, d + n * sizeof(T));
}
template <class T> void take_vec(std::span<const uint8_t>& in, std::vector<T>& v, const char* name) {
  uint64_t n = 0;
  if (in.size() < sizeof n) throw std::invalid_argument(std::string("Rollout::load_state: truncated before ") + name);
  std::memcpy(&n, in.data(), sizeof n);
  in = in.subspan(sizeof n);
  if (n != v.size())
    throw std::invalid_argument(std::string("Rollout::load_state: ") + name + " has " + std::to_string(n) +
                                " entries, this rollout " + std::to_string(v.size()));
  if (in.size() < n * sizeof(T)) throw std::invalid_argument(std::string("Rollout::load_state: truncated in ") + name);
  std::memcpy(v.data(), in.data(), n * sizeof(T));
  in = in.subspan(n * sizeof(T));
}
}  // namespace

std::vector<uint8_t> Rollout::save_state() const {
  std::vector<uint8_t> out;
  const std::vector<int32_t> head = {config_.num_steps, config_.num_envs, config_.observation_size, config_.num_actions,
                                     steps_, finished_ ? 1 : 0, have_targets_ ? 1 : 0};
  put_vec(out, head);
  put_vec(out, obs_);
  put_vec(out, terminated_);
  put_vec(out, truncated_);
  put_vec(out, q_);
  put_vec(out, rewards_);
  put_vec(out, values_);
  put_vec(out, final_values_);
  put_vec(out, targets_);
  put_vec(out, actions_);
  put_vec(out, permutation_);
  return out;
}

void Rollout::load_state(std::span<const uint8_t> in) {
  std::vector<int32_t> head(7);
  take_vec(in, head, "the header");
  if (head[0] != config_.num_steps || head[1] != config_.num_envs || head[2] != config_.observation_size ||
      head[3] != config_.num_actions)
    throw std::invalid_argument("Rollout::load_state: the state is of a rollout of " + std::to_string(head[0]) + " steps x " +
                                std::to_string(head[1]) + " envs (observation " + std::to_string(head[2]) + ", " +
                                std::to_string(head[3]) + " actions), this one differs");
  take_vec(in, obs_, "observations");
  take_vec(in, terminated_, "terminated");
  take_vec(in, truncated_, "truncated");
  take_vec(in, q_, "q_values");
  take_vec(in, rewards_, "rewards");
  take_vec(in, values_, "values");
  take_vec(in, final_values_, "final_values");
  take_vec(in, targets_, "targets");
  take_vec(in, actions_, "actions");
  take_vec(in, permutation_, "permutation");
  if (!in.empty()) throw std::invalid_argument("Rollout::load_state: " + std::to_string(in.size()) + " bytes left over");
  steps_ = head[4];
  finished_ = head[5] != 0;
  have_targets_ = head[6] != 0;
}

}  // namespace moelab::rl
