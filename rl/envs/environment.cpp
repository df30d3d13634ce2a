#include "rl/envs/environment.h"

#include <random>
#include <sstream>
#include <stdexcept>

namespace moelab::rl {

AnyGame make_game(GameId id, bool ramping) {
  switch (id) {
    case GameId::kBreakout: return Breakout(ramping);
    case GameId::kAsterix: return Asterix(ramping);
    case GameId::kFreeway: return Freeway(ramping);
    case GameId::kSeaquest: return Seaquest(ramping);
    case GameId::kSpaceInvaders: return SpaceInvaders(ramping);
  }
  throw std::invalid_argument("make_game: unknown game id " + std::to_string(static_cast<int>(id)));
}

int game_channels(GameId id) { return static_cast<int>(game_info(id).channels.size()); }

Environment::Environment(GameId game, const EnvironmentOptions& options)
    : id_(game),
      channels_(game_channels(game)),
      sticky_action_prob_(options.sticky_action_prob),
      game_(make_game(game, options.difficulty_ramping)) {
  if (!(options.sticky_action_prob >= 0.0 && options.sticky_action_prob <= 1.0)) {
    std::ostringstream os;
    os << "Environment: sticky_action_prob must be in [0, 1], got " << options.sticky_action_prob;
    throw std::invalid_argument(os.str());
  }
  if (options.seed) {
    random_.seed(*options.seed);
  } else {
    std::random_device entropy;
    random_.seed(entropy());
  }
  reset();
}

void Environment::reset() {
  std::visit([this](auto& g) { g.reset(random_); }, game_);
}

StepResult Environment::act(int action) {
  if (action < 0 || action >= kNumActions) {
    throw std::invalid_argument("Environment::act: action must be in 0..5, got " + std::to_string(action));
  }
  if (random_.rand() < sticky_action_prob_) action = last_action_;
  last_action_ = action;
  return std::visit([this, action](auto& g) { return g.act(action, random_); }, game_);
}

void Environment::observe(uint8_t* obs) const {
  std::visit([obs](const auto& g) { g.observe(obs); }, game_);
}

std::vector<uint8_t> Environment::observation() const {
  std::vector<uint8_t> obs(observation_size());
  observe(obs.data());
  return obs;
}

bool Environment::terminal() const {
  return std::visit([](const auto& g) { return g.terminal; }, game_);
}

int Environment::difficulty_ramp() const {
  return std::visit([](const auto& g) { return g.difficulty_ramp(); }, game_);
}

}  // namespace moelab::rl
