#pragma once
// MinAtar's `Environment` wrapper (docs/minatar.md §1): sticky actions from the game's MT19937 stream,
// `last_action` kept across resets, 6 actions, optional difficulty ramping. Usage: docs/rl.md.
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "rl/envs/asterix.h"
#include "rl/envs/breakout.h"
#include "rl/envs/freeway.h"
#include "rl/envs/game.h"
#include "rl/envs/numpy_random.h"
#include "rl/envs/seaquest.h"
#include "rl/envs/space_invaders.h"

namespace moelab::rl {

using AnyGame = std::variant<Breakout, Asterix, Freeway, Seaquest, SpaceInvaders>;
AnyGame make_game(GameId id, bool ramping);
int game_channels(GameId id);

struct EnvironmentOptions {
  double sticky_action_prob = 0.1;  // the reference default
  bool difficulty_ramping = true;
  // Without a seed the constructor's reset uses an entropy-seeded stream, like the reference's unseeded
  // RandomState; with one, the environment is seeded and reset (same as seed(s) then reset()).
  std::optional<uint32_t> seed;
};

class Environment {
 public:
  explicit Environment(GameId game, const EnvironmentOptions& options = {});

  // One RandomState(s) for both the wrapper and the game: their draws interleave on one stream.
  void seed(uint32_t s) { random_.seed(s); }
  void reset();
  // One rand() on every call (also with p = 0 and after the end of an episode), then the game step.
  StepResult act(int action);
  void observe(uint8_t* obs) const;  // obs: (10, 10, channels()) 0/1 bytes in [y][x][c] order
  std::vector<uint8_t> observation() const;

  GameId game_id() const { return id_; }
  int channels() const { return channels_; }
  int observation_size() const { return obs_size(channels_); }
  static constexpr int num_actions() { return kNumActions; }
  const std::vector<int>& minimal_action_set() const { return game_info(id_).minimal_actions; }
  bool terminal() const;
  int difficulty_ramp() const;
  int last_action() const { return last_action_; }
  double sticky_action_prob() const { return sticky_action_prob_; }
  const AnyGame& game() const { return game_; }
  AnyGame& game() { return game_; }
  NumpyRandom& random() { return random_; }

 private:
  GameId id_;
  int channels_;
  double sticky_action_prob_;
  int last_action_ = 0;
  NumpyRandom random_;
  AnyGame game_;
};

}  // namespace moelab::rl
