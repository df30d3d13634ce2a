// The common observation layout of the five games: the channel table, embed/extract round trips on real
// observations, the game-id planes, the 6-action set under the minimal-action protocol, and the f32 input.
#include <gtest/gtest.h>

#include <vector>

#include "rl/agents/multi_game.h"
#include "rl/envs/vector_env.h"

using namespace moelab;
using namespace moelab::rl;

TEST(MultiGame, CommonChannelTable) {
  // The table of docs/rl.md.
  const std::vector<std::string_view> expected = {
      "paddle",  "ball",      "trail",           "brick",        "player",       "enemy",     "gold",
      "chicken", "car",       "speed1",          "speed2",       "speed3",       "speed4",    "speed5",
      "sub_front", "sub_back", "friendly_bullet", "enemy_bullet", "enemy_fish",  "enemy_sub", "oxygen_guage",
      "diver_guage", "diver", "cannon",          "alien",        "alien_left",   "alien_right"};
  EXPECT_EQ(common_channels(), expected);
  EXPECT_EQ(num_common_channels(), 27);
  EXPECT_EQ(common_channel_map(GameId::kAsterix), (std::vector<int>{4, 5, 2, 6}));
  EXPECT_EQ(common_channel_map(GameId::kSeaquest), (std::vector<int>{14, 15, 16, 2, 17, 18, 19, 20, 21, 22}));
  EXPECT_EQ(common_channel_map(GameId::kSpaceInvaders), (std::vector<int>{23, 24, 25, 26, 16, 17}));
  for (GameId game : all_games()) {
    const std::vector<int>& map = common_channel_map(game);
    ASSERT_EQ(static_cast<int>(map.size()), game_channels(game));
    for (size_t c = 0; c < map.size(); ++c) EXPECT_EQ(common_channels()[map[c]], game_info(game).channels[c]);
  }
}

TEST(MultiGame, EmbedExtractRoundTripOnPlayedObservations) {
  for (bool one_hot : {false, true}) {
    const MultiGameLayout layout{one_hot};
    EXPECT_EQ(layout.channels(), one_hot ? 32 : 27);
    for (GameId game : all_games()) {
      VectorEnvConfig config = protocol_config("paper", game, 4, 5);
      config.num_threads = 1;
      VectorEnv venv(config);
      venv.reset();
      const int cg = venv.channels(), n = venv.num_envs();
      std::vector<int> actions(n);
      std::vector<uint8_t> embedded(static_cast<size_t>(n) * layout.observation_size()), back(n * venv.observation_size());
      const std::vector<int>& map = common_channel_map(game);
      for (int t = 0; t < 60; ++t) {
        for (int i = 0; i < n; ++i) actions[i] = (t + 2 * i) % 6;
        venv.step(actions);
        embed_observations(game, venv.observations(), n, layout, embedded.data());
        extract_observations(game, embedded.data(), n, layout, back.data());
        ASSERT_EQ(back, std::vector<uint8_t>(venv.observations(), venv.observations() + back.size()));
        for (int i = 0; i < n; ++i)
          for (int y = 0; y < kGridSize; ++y)
            for (int x = 0; x < kGridSize; ++x)
              for (int c = 0; c < layout.channels(); ++c) {
                const uint8_t v = embedded[static_cast<size_t>(i) * layout.observation_size() +
                                           obs_index(y, x, c, layout.channels())];
                if (c >= num_common_channels()) {
                  ASSERT_EQ(v, c - num_common_channels() == static_cast<int>(game) ? 1 : 0);
                  continue;
                }
                int source = -1;
                for (int k = 0; k < cg; ++k)
                  if (map[k] == c) source = k;
                const uint8_t want =
                    source < 0 ? 0 : venv.observations()[i * venv.observation_size() + obs_index(y, x, source, cg)];
                ASSERT_EQ(v, want) << game_info(game).name << " channel " << c;
              }
      }
    }
  }
  const auto hot = game_one_hot(GameId::kFreeway);
  EXPECT_EQ(std::vector<float>(hot.begin(), hot.end()), (std::vector<float>{0, 0, 1, 0, 0}));
}

TEST(MultiGame, ActionSetUnderBothProtocols) {
  for (GameId game : all_games()) {
    const auto all = legal_actions(game, false);
    for (int a = 0; a < kNumActions; ++a) {
      EXPECT_EQ(all[a], 1);
      EXPECT_EQ(env_action(game, a, false), a);
    }
    const std::vector<int>& minimal = game_info(game).minimal_actions;
    const auto legal = legal_actions(game, true);
    int count = 0;
    for (int a = 0; a < kNumActions; ++a) {
      const int index = env_action(game, a, true);
      EXPECT_EQ(index >= 0, legal[a] == 1);
      if (index >= 0) {
        EXPECT_EQ(minimal[index], a);
      }
      count += legal[a];
    }
    EXPECT_EQ(count, static_cast<int>(minimal.size()));
  }
  EXPECT_EQ(env_action(GameId::kBreakout, 3, true), 2);   // breakout minimal set n, l, r
  EXPECT_EQ(env_action(GameId::kBreakout, 5, true), -1);  // no fire
  EXPECT_THROW(env_action(GameId::kBreakout, 6, true), std::invalid_argument);
}

TEST(MultiGame, ObservationsToTensorLayouts) {
  const int B = 2, C = 3;
  std::vector<uint8_t> obs(B * obs_size(C), 0);
  obs[obs_size(C) + obs_index(4, 7, 2, C)] = 1;  // batch 1, y 4, x 7, channel 2
  obs[obs_index(0, 1, 0, C)] = 1;
  const Tensor nchw = observations_to_tensor(obs.data(), B, C, TensorLayout::nchw, 0.5f);
  EXPECT_EQ(nchw.shape(), (Shape{B, C, 10, 10}));
  const std::vector<float> a = nchw.to_vector<float>();
  EXPECT_FLOAT_EQ(a[((1 * C + 2) * 10 + 4) * 10 + 7], 0.5f);
  EXPECT_FLOAT_EQ(a[((0 * C + 0) * 10 + 0) * 10 + 1], 0.5f);
  float total = 0;
  for (float v : a) total += v;
  EXPECT_FLOAT_EQ(total, 1.0f);
  const Tensor nhwc = observations_to_tensor(obs.data(), B, C, TensorLayout::nhwc);
  EXPECT_EQ(nhwc.shape(), (Shape{B, 10, 10, C}));
  const std::vector<float> b = nhwc.to_vector<float>();
  for (size_t i = 0; i < obs.size(); ++i) ASSERT_EQ(b[i], obs[i]);
}
