#include "rl/envs/trace.h"

#include <istream>
#include <ostream>
#include <stdexcept>

#include "rl/envs/environment.h"

namespace moelab::rl {

std::vector<int> parse_actions(std::istream& in, const std::string& source) {
  std::vector<int> actions;
  std::string token;
  while (in >> token) {
    const bool valid = token.size() == 1 && token[0] >= '0' && token[0] < '0' + kNumActions;
    if (!valid) {
      throw std::invalid_argument(source + ": action #" + std::to_string(actions.size() + 1) + " is '" + token +
                                  "'; actions are integers 0..5 (noop left up right down fire)");
    }
    actions.push_back(token[0] - '0');
  }
  return actions;
}

std::string observation_string(const uint8_t* obs, int channels) {
  std::string s(obs_size(channels), '0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = obs[i] ? '1' : '0';
  return s;
}

void write_trace(std::ostream& out, GameId game, std::span<const int> actions, const TraceOptions& options) {
  Environment env(game, {options.sticky_action_prob, options.difficulty_ramping, options.seed});
  std::vector<uint8_t> obs(env.observation_size());
  auto print_reset = [&] {
    env.observe(obs.data());
    out << "reset " << observation_string(obs.data(), env.channels()) << '\n';
  };
  print_reset();
  for (int action : actions) {
    const StepResult result = env.act(action);
    env.observe(obs.data());
    out << "step " << action << ' ' << result.reward << ' ' << (result.terminal ? 1 : 0) << ' '
        << observation_string(obs.data(), env.channels()) << '\n';
    if (result.terminal) {
      env.reset();
      print_reset();
    }
  }
}

}  // namespace moelab::rl
