// `moelab play GAME`: play a MinAtar game in the terminal (arrow keys move, space fires).
// `moelab play GAME --agent RUN_DIR [--video out.mp4] [--frames DIR]`: a trained dqn/pqn agent plays one greedy episode,
// with each step's chosen expert per token overlaid (experiments/lib/agent_play.h).
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <sstream>
#include <thread>

#include "experiments/cli/command.h"
#include "experiments/lib/agent_play.h"
#include "rl/envs/render.h"
#include "rl/envs/terminal_play.h"

namespace {

struct PlayArgs {
  std::string game, agent, video, frames;
  double speed = 8, sticky = 0.1, epsilon = 0;
  bool turn_based = false, no_ramping = false;
  int64_t seed = -1, checkpoint = -1, max_steps = 5000;
} g_play;

// One frame in the terminal: the board, then per MoE layer the expert of each token as a coloured digit
// (per_conv: an 8 x 8 map beside the board, aligned with the conv positions' centre cells).
std::string agent_frame(const moelab::experiments::AgentStep& step, const uint8_t* obs, int channels) {
  const std::string& tokenization = step.tokenization;
  std::istringstream board(moelab::rl::ansi_frame(obs, channels));
  auto cell = [](int64_t e) {
    const cv::Scalar c = moelab::experiments::expert_colour(e);
    std::ostringstream s;
    s << "\x1b[48;2;" << int(c[0]) << ';' << int(c[1]) << ';' << int(c[2]) << "m\x1b[38;2;0;0;0m"
      << (e < 0 ? std::string("-") : std::to_string(e % 10)) << " \x1b[0m";
    return s.str();
  };
  const moelab::experiments::LayerExperts* map = nullptr;
  for (const auto& l : step.layers)
    if (tokenization == "per_conv" && l.expert.size() == 64) map = &l;
  std::ostringstream out;
  std::string line;
  for (int y = 0; std::getline(board, line); ++y) {
    out << line;
    if (map && y >= 1 && y <= 8) {
      out << "   ";
      for (int x = 0; x < 8; ++x) out << cell(map->expert[static_cast<size_t>((y - 1) * 8 + x)]);
    }
    out << "\x1b[K\n";
  }
  for (const auto& l : step.layers) {
    if (&l == map) continue;
    out << l.path << ": ";
    for (int64_t e : l.expert) out << cell(e);
    out << "\x1b[K\n";
  }
  out << "step " << step.t << "  action " << step.env_action << "  return " << step.return_before << "\x1b[K\n";
  return out.str();
}

void run_agent() {
  using namespace moelab::experiments;
  AgentPlayOptions options;
  options.game = g_play.game;
  if (g_play.checkpoint >= 0) options.checkpoint = g_play.checkpoint;
  options.seed = static_cast<uint32_t>(g_play.seed < 0 ? 0 : g_play.seed);
  options.max_steps = g_play.max_steps;
  options.epsilon = g_play.epsilon;
  options.video_path = g_play.video;
  options.frames_dir = g_play.frames;
  const bool animate = g_play.video.empty() && g_play.frames.empty() && ::isatty(STDOUT_FILENO);
  AgentEpisode ep = play_agent(g_play.agent, options, [&](const AgentStep& step, const uint8_t* obs, int channels) {
    if (!animate) return;
    std::cout << "\x1b[H" << agent_frame(step, obs, channels) << "\x1b[J" << std::flush;
    if (g_play.speed > 0) std::this_thread::sleep_for(std::chrono::duration<double>(1.0 / g_play.speed));
  });
  std::cout << "agent " << g_play.agent << " (checkpoint step " << ep.checkpoint_step << ", " << ep.protocol
            << " protocol) on " << ep.game << ": " << ep.steps << " steps, return " << ep.episode_return
            << (ep.ended ? "" : " (stopped at --max-steps)") << "\n";
  for (const auto& [path, counts] : ep.expert_tokens) {
    int64_t total = 0;
    for (int64_t c : counts) total += c;
    std::cout << "  " << path << " (" << ep.tokenization << "): tokens per expert";
    for (size_t e = 0; e < counts.size(); ++e)
      std::cout << "  " << e << ": " << (total ? 100.0 * static_cast<double>(counts[e]) / static_cast<double>(total) : 0.0) << "%";
    std::cout << "\n";
  }
  if (!g_play.video.empty()) std::cout << "video: " << g_play.video << " (" << ep.video_frames << " frames)\n";
  if (!g_play.frames.empty()) std::cout << "frames: " << g_play.frames << "/frame_*.png (" << ep.video_frames << ")\n";
}

void run_play() {
  if (!g_play.agent.empty()) {
    run_agent();
    return;
  }
  moelab::rl::PlayOptions options;
  try {
    options.game = moelab::rl::game_id_from_name(g_play.game);
  } catch (const std::invalid_argument&) {
    moelab::cli::set_exit_code(moelab::cli::kBadUsage);
    throw;
  }
  options.steps_per_second = g_play.speed;
  options.turn_based = g_play.turn_based;
  options.sticky_action_prob = g_play.sticky;
  options.difficulty_ramping = !g_play.no_ramping;
  options.seeded = g_play.seed >= 0;
  options.seed = static_cast<uint32_t>(g_play.seed);
  const int score = moelab::rl::play_in_terminal(options);
  std::cout << "\nlast score: " << score << "\n";
}

moelab::cli::Registration reg{"play", "Play a MinAtar game in the terminal, or watch a trained agent (--agent RUN_DIR)",
                              [](CLI::App& sub) {
                                sub.add_option("game", g_play.game,
                                               "breakout, asterix, freeway, seaquest or space_invaders")
                                    ->required();
                                sub.add_option("--speed", g_play.speed, "game steps per second (default 8)");
                                sub.add_flag("--turn-based", g_play.turn_based, "advance one step per key press");
                                sub.add_option("--sticky", g_play.sticky, "sticky-action probability (default 0.1)");
                                sub.add_flag("--no-ramping", g_play.no_ramping, "turn difficulty ramping off");
                                sub.add_option("--seed", g_play.seed, "seed (default: a random one; with --agent 0)");
                                sub.add_option("--agent", g_play.agent,
                                               "a dqn/pqn run directory: its Q-network plays greedily under the run's "
                                               "protocol (--sticky, --no-ramping ignored)")
                                    ->check(CLI::ExistingDirectory);
                                sub.add_option("--video", g_play.video, "with --agent: write the episode to .mp4 or .avi");
                                sub.add_option("--frames", g_play.frames, "with --agent: write every frame as PNG into this directory");
                                sub.add_option("--checkpoint", g_play.checkpoint, "with --agent: checkpoint step (default newest)");
                                sub.add_option("--max-steps", g_play.max_steps, "with --agent: stop after this many steps")
                                    ->check(CLI::PositiveNumber);
                                sub.add_option("--epsilon", g_play.epsilon, "with --agent: random-action probability (default 0)")
                                    ->check(CLI::Range(0.0, 1.0));
                                sub.callback(run_play);
                              }};

}  // namespace
