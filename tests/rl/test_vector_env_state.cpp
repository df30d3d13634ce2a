// VectorEnv::save_state / load_state: a restored vector env continues exactly as the original (games,
// random streams, sticky actions, time limits, episode statistics), and a mismatched state is refused.
#include <gtest/gtest.h>

#include <vector>

#include "core/util/rng.h"
#include "rl/envs/vector_env.h"

namespace moelab::rl {
namespace {

struct Trace {
  std::vector<uint8_t> obs;
  std::vector<float> rewards, returns;
  std::vector<uint8_t> flags;
};

void run(VectorEnv& venv, RngStream& rng, int steps, Trace& t) {
  std::vector<int> actions(venv.num_envs());
  for (int s = 0; s < steps; ++s) {
    for (int& a : actions) a = static_cast<int>(rng.below(static_cast<uint64_t>(venv.num_actions())));
    venv.step(actions);
    const int n = venv.num_envs();
    t.obs.insert(t.obs.end(), venv.observations(), venv.observations() + n * venv.observation_size());
    for (int i = 0; i < n; ++i) {
      t.rewards.push_back(venv.rewards()[i]);
      t.flags.push_back(static_cast<uint8_t>(venv.terminated()[i] | (venv.truncated()[i] << 1)));
      if (venv.terminated()[i] || venv.truncated()[i]) t.returns.push_back(venv.episode_returns()[i]);
    }
  }
}

TEST(VectorEnvState, RestoredEnvsContinueExactly) {
  for (GameId game : {GameId::kBreakout, GameId::kAsterix, GameId::kFreeway, GameId::kSeaquest, GameId::kSpaceInvaders})
    for (const char* protocol : {"paper", "gymnax"}) {
      SCOPED_TRACE(std::string(game_info(game).name) + " " + protocol);
      VectorEnvConfig cfg = protocol_config(protocol, game, 6, 11);
      cfg.time_limit = cfg.time_limit > 0 ? 150 : 0;  // truncations inside the test's span
      cfg.num_threads = 1;
      VectorEnv a(cfg);
      a.reset();
      RngStream rng(3, "actions");
      Trace warm;
      run(a, rng, 400, warm);
      const std::vector<uint8_t> state = a.save_state();
      RngStream rng_b = rng;
      Trace ta, tb;
      run(a, rng, 2200, ta);  // past the end of Freeway's 2501-step episodes
      VectorEnv b(cfg);
      b.reset();
      b.load_state(state);
      run(b, rng_b, 2200, tb);
      EXPECT_EQ(ta.obs, tb.obs);
      EXPECT_EQ(ta.rewards, tb.rewards);
      EXPECT_EQ(ta.flags, tb.flags);
      EXPECT_EQ(ta.returns, tb.returns);
      EXPECT_FALSE(ta.returns.empty());
    }
}

TEST(VectorEnvState, RefusesAStateOfAnotherGameOrSize) {
  VectorEnv a(protocol_config("paper", GameId::kBreakout, 4, 1));
  a.reset();
  const std::vector<uint8_t> state = a.save_state();
  VectorEnv other_game(protocol_config("paper", GameId::kAsterix, 4, 1));
  EXPECT_THROW(other_game.load_state(state), std::invalid_argument);
  VectorEnv other_size(protocol_config("paper", GameId::kBreakout, 5, 1));
  EXPECT_THROW(other_size.load_state(state), std::invalid_argument);
  std::vector<uint8_t> cut(state.begin(), state.end() - 3);
  VectorEnv same(protocol_config("paper", GameId::kBreakout, 4, 1));
  EXPECT_THROW(same.load_state(cut), std::invalid_argument);
}

}  // namespace
}  // namespace moelab::rl
