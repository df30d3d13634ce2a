#pragma once
// `moelab play GAME --agent RUN_DIR`: rebuilds a dqn/pqn run's Q-network from its config.toml and a
// checkpoint, plays one episode greedily and reports, per step, the action and each MoE layer's chosen
// expert per token; frames with the experts overlaid go to a video and/or the terminal.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/core.hpp>

namespace moelab::experiments {

struct AgentPlayOptions {
  std::string game;                     // a game of the run (empty: the run's only game)
  std::optional<int64_t> checkpoint;    // checkpoint step (default: the newest complete one)
  uint32_t seed = 0;                    // the episode's environment seed
  int64_t max_steps = 5000;
  double epsilon = 0;                   // 0: greedy; else ε-greedy from RngStream(seed, "play")
  int cell_pixels = 32;
  std::string video_path;               // .mp4 or .avi (empty: none)
  std::string frames_dir;               // PNG frames frame_00000.png ... (empty: none)
  double fps = 10;
};

struct LayerExperts {
  std::string path;                     // the MoE layer's module path ("moe")
  int64_t num_experts = 0;
  std::vector<int64_t> expert;          // per token: the highest-weight kept expert (-1: dropped)
};

struct AgentStep {
  int64_t t = 0;
  int action = 0;                       // the network's output index (the run's action set)
  int env_action = 0;                   // what the environment was given
  std::vector<float> q;                 // the Q-values the action was chosen from
  double return_before = 0;             // the episode's return before this step
  double reward = 0;                    // set after the step (not yet in on_step)
  bool done = false;
  std::string tokenization;             // the run's model.tokenization
  std::vector<LayerExperts> layers;     // empty for a dense network
};

struct AgentEpisode {
  std::string game, protocol, tokenization;
  int64_t checkpoint_step = 0;
  int64_t steps = 0;
  double episode_return = 0;
  bool ended = false;                   // terminated or truncated (else max_steps was reached)
  // Per layer path: how many tokens went to each expert over the episode.
  std::vector<std::pair<std::string, std::vector<int64_t>>> expert_tokens;
  int64_t video_frames = 0;             // frames rendered (video and/or PNGs)
};

// obs: (10, 10, C) -> the rendered board with each step's experts drawn on it: per_conv tokens (8 x 8 conv
// positions) as a coloured frame around the centre cell of each position, other tokenizations as a strip of
// coloured squares under the board; a caption line with step, action and return so far. `step` null: the
// board alone (the final frame). RGB.
cv::Mat render_agent_frame(const uint8_t* obs, int channels, const AgentStep* step, const std::string& tokenization,
                           int cell_pixels);
// Colour of expert e (RGB), distinct for the first 10.
cv::Scalar expert_colour(int64_t e);

// Plays one episode; `on_step(step, observation before the step)` is called for every step.
// Throws moelab::Error for a directory that is not a dqn/pqn run, a game the run did not train on, or a
// checkpoint that does not match the network.
AgentEpisode play_agent(const std::filesystem::path& run_dir, const AgentPlayOptions& options,
                        const std::function<void(const AgentStep&, const uint8_t* obs, int channels)>& on_step = {});

}  // namespace moelab::experiments
