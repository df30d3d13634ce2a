// `moelab play GAME --agent RUN_DIR`: a tiny pqn run with an MoE penultimate layer is trained by the
// program; playing its checkpoint greedily with the final evaluation's environment seed must reproduce the
// return that the run logged, every step must carry one expert per conv position, the video must hold every
// frame with the experts drawn on the board, and bad requests must fail with clear errors.
#include <gtest/gtest.h>

#include <opencv2/videoio.hpp>

#include "core/util/check.h"
#include "experiments/lib/agent_play.h"
#include "experiments/lib/tasks/rl_agent.h"
#include "moelab_cli_util.h"

using namespace moelab::experiments;
using namespace moelab::testing;
using nlohmann::json;

namespace {

// Trained once for the whole program: 640 frames of pqn on Breakout (gymnax protocol), 4 experts over
// per_conv tokens, one greedy evaluation episode at the end.
const fs::path& tiny_run() {
  static fs::path dir = [] {
    fs::path d = fresh_dir("agent_play", "run");
    CommandResult r = run_moelab(
        {"run", std::string(MOELAB_SOURCE_DIR) + "/configs/rl_pqn_breakout.toml", "env.num_envs=4", "agent.num_steps=8",
         "agent.minibatches=2", "train.frames=640", "train.eval_every_frames=0", "train.checkpoint_every=0",
         "train.log_every=1", "eval.episodes=1", "eval.max_steps=400", "model.penultimate=moe",
         "model.tokenization=per_conv", "model.moe.num_experts=4", "model.moe.top_k=1", "--run-dir", d.string(),
         "--progress", "none", "--no-report"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return d;
  }();
  return dir;
}

TEST(AgentPlay, GreedyEpisodeReproducesTheLoggedEvaluation) {
  const fs::path& run = tiny_run();
  json summary = json::parse(read_text(run / "summary.json"));
  ASSERT_EQ(summary["status"], "completed") << summary.dump();
  AgentPlayOptions o;
  o.seed = env_seed(static_cast<uint64_t>(summary["seed"].get<int64_t>()), "eval.breakout");  // evaluate_greedy's env 0
  o.max_steps = 400;
  int64_t steps_seen = 0;
  AgentEpisode ep = play_agent(run, o, [&](const AgentStep& s, const uint8_t* obs, int channels) {
    EXPECT_EQ(s.t, steps_seen++);
    EXPECT_EQ(channels, 4);  // Breakout's own channels
    EXPECT_NE(obs, nullptr);
    // Greedy: the first maximum of the Q-values.
    ASSERT_EQ(s.q.size(), 3u);  // gymnax: Breakout's minimal action set
    EXPECT_EQ(s.action, std::max_element(s.q.begin(), s.q.end()) - s.q.begin());
    ASSERT_EQ(s.layers.size(), 1u);
    EXPECT_EQ(s.layers[0].num_experts, 4);
    ASSERT_EQ(s.layers[0].expert.size(), 64u);  // one token per 8 x 8 conv position
    for (int64_t e : s.layers[0].expert) EXPECT_TRUE(e >= -1 && e < 4);
  });
  EXPECT_EQ(ep.steps, steps_seen);
  EXPECT_EQ(ep.game, "breakout");
  EXPECT_EQ(ep.protocol, "gymnax");
  EXPECT_TRUE(ep.ended);
  EXPECT_DOUBLE_EQ(ep.episode_return, summary["metrics"]["eval/return/breakout"].get<double>());
  EXPECT_DOUBLE_EQ(static_cast<double>(ep.steps), summary["metrics"]["eval/episode_length"].get<double>());
  ASSERT_EQ(ep.expert_tokens.size(), 1u);
  int64_t tokens = 0;
  for (int64_t c : ep.expert_tokens[0].second) tokens += c;
  EXPECT_LE(tokens, 64 * ep.steps);
  EXPECT_GT(tokens, 0);  // kept assignments (capacity may drop some)
}

TEST(AgentPlay, VideoHoldsEveryFrameWithTheExpertsOnTheBoard) {
  const fs::path& run = tiny_run();
  AgentPlayOptions o;
  o.seed = 5;
  o.max_steps = 30;
  o.video_path = (fresh_dir("agent_play", "video") / "episode.avi").string();
  o.frames_dir = (fs::path(o.video_path).parent_path() / "frames").string();
  AgentStep first;
  std::vector<uint8_t> first_obs;
  AgentEpisode ep = play_agent(run, o, [&](const AgentStep& s, const uint8_t* obs, int channels) {
    if (s.t == 0) {
      first = s;
      first_obs.assign(obs, obs + 100 * channels);
    }
  });
  EXPECT_EQ(ep.video_frames, ep.steps + 1);  // every step's board and the last one
  cv::VideoCapture cap(o.video_path);
  ASSERT_TRUE(cap.isOpened());
  EXPECT_EQ(static_cast<int64_t>(cap.get(cv::CAP_PROP_FRAME_COUNT)), ep.steps + 1);
  EXPECT_TRUE(fs::exists(fs::path(o.frames_dir) / "frame_00000.png"));
  char last[32];
  std::snprintf(last, sizeof last, "frame_%05lld.png", static_cast<long long>(ep.steps));
  EXPECT_TRUE(fs::exists(fs::path(o.frames_dir) / last));

  // The conv position (0, 0)'s expert frames cell (1, 1); position (7, 7)'s frames cell (8, 8).
  cv::Mat frame = render_agent_frame(first_obs.data(), 4, &first, "per_conv", 32);
  EXPECT_GT(frame.rows, 320);  // board and caption
  auto pixel = [&](int y, int x) {
    cv::Vec3b p = frame.at<cv::Vec3b>(y, x);
    return cv::Scalar(p[0], p[1], p[2]);
  };
  EXPECT_EQ(pixel(32, 32), expert_colour(first.layers[0].expert[0]));
  EXPECT_EQ(pixel(8 * 32 + 31, 8 * 32 + 31), expert_colour(first.layers[0].expert[63]));
}

TEST(AgentPlay, ClearErrors) {
  const fs::path& run = tiny_run();
  AgentPlayOptions o;
  o.game = "asterix";
  try {
    play_agent(run, o);
    FAIL() << "a game the run did not train on was accepted";
  } catch (const moelab::Error& e) {
    EXPECT_NE(std::string(e.what()).find("was trained on breakout, not asterix"), std::string::npos) << e.what();
  }
  fs::path toy = fresh_dir("agent_play", "toy");
  write_text(toy / "config.toml", tiny_config());
  EXPECT_THROW(play_agent(toy, {}), moelab::Error);
  CommandResult r = run_moelab({"play", "breakout", "--agent", toy.string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("not an RL agent"), std::string::npos) << r.output;
}

TEST(AgentPlay, CommandPrintsTheEpisodeAndWritesTheVideo) {
  const fs::path& run = tiny_run();
  fs::path video = fresh_dir("agent_play", "cli") / "agent.avi";
  CommandResult r = run_moelab({"play", "breakout", "--agent", run.string(), "--video", video.string(), "--max-steps", "25"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("gymnax protocol) on breakout"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("moe (per_conv): tokens per expert"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(video));
  EXPECT_GT(fs::file_size(video), 1000u);
}

}  // namespace
