// Draw-for-draw agreement with the reference (MinAtar 1.0.15): tests/rl/data/golden_<game>.txt hold the
// reference's reward, terminal flag and observation hash at every step of scripted episodes, written by
// tests/rl/data/minatar_reference_trace.py (see its header).
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "rl/envs/environment.h"
#include "rl/rl_testing.h"

using namespace moelab::rl;

namespace {
std::string hash_hex(const Environment& env) {
  const auto obs = env.observation();
  char buffer[17];
  std::snprintf(buffer, sizeof(buffer), "%016" PRIx64, moelab::rl::testing::fnv1a64(obs.data(), obs.size()));
  return buffer;
}
}  // namespace

class GoldenTrace : public ::testing::TestWithParam<GameId> {};

TEST_P(GoldenTrace, MatchesTheReferenceStepByStep) {
  const std::string name(game_info(GetParam()).name);
  const std::string path = std::string(MOELAB_SOURCE_DIR) + "/tests/rl/data/golden_" + name + ".txt";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path;
  std::unique_ptr<Environment> env;
  int segments = 0, steps = 0, terminals = 0, line_number = 0;
  bool expect_reset = false;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    const std::string where = path + ":" + std::to_string(line_number);
    if (kind == "segment") {
      uint32_t seed;
      double sticky;
      int ramping, length;
      fields >> seed >> sticky >> ramping >> length;
      env = std::make_unique<Environment>(GetParam(), EnvironmentOptions{sticky, ramping != 0, seed});
      expect_reset = true;
      ++segments;
    } else if (kind == "reset") {
      ASSERT_TRUE(expect_reset) << where << ": unexpected reset";
      std::string hash;
      fields >> hash;
      ASSERT_EQ(hash_hex(*env), hash) << where << ": observation after reset differs";
      expect_reset = false;
    } else if (kind == "step") {
      ASSERT_FALSE(expect_reset) << where << ": the reference reset here";
      int action, reward, terminal;
      std::string hash;
      fields >> action >> reward >> terminal >> hash;
      const StepResult r = env->act(action);
      ASSERT_EQ(r.reward, reward) << where;
      ASSERT_EQ(r.terminal ? 1 : 0, terminal) << where;
      ASSERT_EQ(hash_hex(*env), hash) << where << ": observation differs";
      ++steps;
      if (r.terminal) {
        env->reset();
        expect_reset = true;
        ++terminals;
      }
    } else {
      FAIL() << where << ": unknown line kind '" << kind << "'";
    }
  }
  EXPECT_EQ(segments, 2);
  EXPECT_EQ(steps, 4000);
  EXPECT_GT(terminals, 0);
}

INSTANTIATE_TEST_SUITE_P(AllGames, GoldenTrace,
                         ::testing::Values(GameId::kBreakout, GameId::kAsterix, GameId::kFreeway, GameId::kSeaquest,
                                           GameId::kSpaceInvaders),
                         [](const auto& info) { return std::string(game_info(info.param).name); });
