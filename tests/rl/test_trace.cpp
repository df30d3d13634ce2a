// The reproducibility trace (`moelab env trace`): format, determinism, parsing, and the command itself.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rl/envs/trace.h"

using namespace moelab::rl;

namespace {
std::string trace(GameId game, uint32_t seed, const std::vector<int>& actions, double sticky = 0.1, bool ramping = true) {
  std::ostringstream out;
  write_trace(out, game, actions, {seed, sticky, ramping});
  return out.str();
}
std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST(Trace, FormatAndResetAfterTerminal) {
  // Breakout with no-ops ends when the ball first reaches the bottom; the trace then resets.
  std::vector<int> actions(40, 0);
  const auto out = lines(trace(GameId::kBreakout, 3, actions, 0.0));
  ASSERT_GE(out.size(), 42u);
  ASSERT_EQ(out[0].rfind("reset ", 0), 0u);
  EXPECT_EQ(out[0].size(), 6u + 400u);
  int terminals = 0;
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].rfind("step ", 0) == 0) {
      std::istringstream fields(out[i]);
      std::string word, obs;
      int a, r, t;
      fields >> word >> a >> r >> t >> obs;
      EXPECT_EQ(a, 0);
      EXPECT_EQ(obs.size(), 400u);
      EXPECT_EQ(obs.find_first_not_of("01"), std::string::npos);
      if (t == 1) {
        ++terminals;
        ASSERT_LT(i + 1, out.size());
        EXPECT_EQ(out[i + 1].rfind("reset ", 0), 0u) << "a reset follows every terminal step";
      }
    }
  }
  EXPECT_GE(terminals, 1);
}

TEST(Trace, SameSeedSameTraceOtherSeedOtherTrace) {
  std::vector<int> actions;
  for (int i = 0; i < 600; ++i) actions.push_back((i * 7 + i / 5) % 6);
  for (GameId game : all_games()) {
    const std::string a = trace(game, 5, actions), b = trace(game, 5, actions);
    EXPECT_EQ(a, b) << game_info(game).name;
    if (game != GameId::kSpaceInvaders) {
      EXPECT_NE(a, trace(game, 6, actions)) << game_info(game).name;
    }
  }
  // Space Invaders draws nothing in the game: only stickiness differs between seeds.
  EXPECT_NE(trace(GameId::kSpaceInvaders, 5, actions, 0.5), trace(GameId::kSpaceInvaders, 6, actions, 0.5));
  EXPECT_EQ(trace(GameId::kSpaceInvaders, 5, actions, 0.0), trace(GameId::kSpaceInvaders, 6, actions, 0.0));
}

TEST(Trace, ParseActionsRejectsBadTokens) {
  std::istringstream good(" 0 1\n2 3\t4 5 ");
  EXPECT_EQ(parse_actions(good, "good"), (std::vector<int>{0, 1, 2, 3, 4, 5}));
  std::istringstream bad("0 1 6");
  try {
    parse_actions(bad, "actions.txt");
    FAIL() << "6 is not an action";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("actions.txt: action #3 is '6'"), std::string::npos) << e.what();
  }
  std::istringstream word("0 up");
  EXPECT_THROW(parse_actions(word, "x"), std::invalid_argument);
}

TEST(Trace, MoelabEnvTraceCommandPrintsTheSameTrace) {
  const std::filesystem::path binary = std::filesystem::path(MOELAB_BINARY_DIR) / "moelab";
  if (!std::filesystem::exists(binary)) GTEST_SKIP() << "the moelab program is not built at " << binary;
  const auto dir = std::filesystem::temp_directory_path() / ("moelab_trace_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<int> actions;
  for (int i = 0; i < 300; ++i) actions.push_back((i * 5 + 1) % 6);
  {
    std::ofstream f(dir / "actions.txt");
    for (int a : actions) f << a << ' ';
  }
  const std::string cmd = binary.string() + " env trace --game seaquest --seed 9 --actions " + (dir / "actions.txt").string() +
                          " --sticky 0.25 --no-ramping > " + (dir / "out.txt").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir / "out.txt");
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), trace(GameId::kSeaquest, 9, actions, 0.25, false));
  std::filesystem::remove_all(dir);
}
