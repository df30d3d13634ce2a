// `moelab env trace|info|record`: the MinAtar environments from the command line (docs/minatar.md).
//   moelab env trace --game G --seed S --actions FILE [--sticky P] [--no-ramping]
//   moelab env info GAME
//   moelab env record --game G [--seed S] [--steps N] [--video out.mp4] [--frames DIR]
#include <fstream>
#include <iostream>
#include <random>

#include "experiments/cli/command.h"
#include "rl/envs/render.h"
#include "rl/envs/trace.h"
#include "rl/envs/vector_env.h"

namespace {

using namespace moelab::rl;

struct TraceArgs {
  std::string game, actions_file;
  uint32_t seed = 0;
  double sticky = 0.1;
  bool no_ramping = false;
} g_trace;

struct RecordArgs {
  std::string game, video, frames;
  uint32_t seed = 0;
  double sticky = 0.1, fps = 10;
  bool no_ramping = false;
  int steps = 1000, cell = 32;
} g_record;

std::string g_info_game;

void run_trace() {
  std::ifstream in(g_trace.actions_file);
  if (!in) throw std::invalid_argument("moelab env trace: cannot open actions file '" + g_trace.actions_file + "'");
  const std::vector<int> actions = parse_actions(in, g_trace.actions_file);
  std::ios::sync_with_stdio(false);
  write_trace(std::cout, game_id_from_name(g_trace.game), actions,
              {g_trace.seed, g_trace.sticky, !g_trace.no_ramping});
  std::cout.flush();
}

void run_info() {
  const GameInfo& info = game_info(game_id_from_name(g_info_game));
  std::cout << "game: " << info.name << "\n";
  std::cout << "observation: (10, 10, " << info.channels.size() << ") booleans, [y][x][c], y = 0 at the top\n";
  std::cout << "channels:\n";
  for (size_t c = 0; c < info.channels.size(); ++c) std::cout << "  " << c << " " << info.channels[c] << "\n";
  std::cout << "actions (all games): ";
  for (int a = 0; a < kNumActions; ++a) std::cout << (a ? ", " : "") << a << " " << action_name(a);
  std::cout << "\nminimal action set:";
  for (size_t i = 0; i < info.minimal_actions.size(); ++i)
    std::cout << (i ? "," : "") << " " << i << " -> " << info.minimal_actions[i] << " " << action_name(info.minimal_actions[i]);
  std::cout << "\nprotocol presets:\n";
  for (const ProtocolPreset& p : protocol_presets()) {
    const int limit = p.time_limit_for(info.id);
    std::cout << "  " << p.name << ": actions " << (p.minimal_action_set ? "minimal set" : "all 6")
              << ", sticky " << p.sticky_action_prob << ", time limit "
              << (limit ? std::to_string(limit) + " steps" : std::string("none")) << ", budget " << p.budget << "\n";
  }
}

void run_record() {
  RecordOptions options;
  options.game = game_id_from_name(g_record.game);
  options.seed = g_record.seed;
  options.sticky_action_prob = g_record.sticky;
  options.difficulty_ramping = !g_record.no_ramping;
  options.max_steps = g_record.steps;
  options.cell_pixels = g_record.cell;
  options.fps = g_record.fps;
  options.frames_dir = g_record.frames;
  options.video_path = g_record.video;
  if (options.frames_dir.empty() && options.video_path.empty())
    throw std::invalid_argument("moelab env record: give --video FILE (.mp4/.avi) and/or --frames DIR");
  // A uniformly random policy, seeded from the environment seed so that the recording is reproducible.
  std::mt19937 policy_rng(options.seed ^ 0x9E3779B9u);
  const RecordSummary s = record_episode(options, [&](int) { return static_cast<int>(policy_rng() % kNumActions); });
  std::cout << "recorded " << g_record.game << ": " << s.steps << " steps, return " << s.episode_return
            << (s.terminal ? " (episode ended)" : " (step limit)") << "\n";
  if (!options.video_path.empty()) std::cout << "video: " << options.video_path << "\n";
  if (!options.frames_dir.empty()) std::cout << "frames: " << options.frames_dir << "/frame_*.png\n";
}

// Runs a command body, turning bad arguments into exit code 2 with a clear message.
void guarded(void (*body)()) {
  try {
    body();
  } catch (const std::invalid_argument&) {
    moelab::cli::set_exit_code(moelab::cli::kBadUsage);
    throw;
  }
}

moelab::cli::Registration reg{
    "env", "MinAtar environments: reproducibility trace, game info, episode recording", [](CLI::App& sub) {
      sub.require_subcommand(1);
      CLI::App* trace = sub.add_subcommand("trace", "Print the reproducibility trace of an action sequence");
      trace->add_option("--game", g_trace.game, "breakout, asterix, freeway, seaquest or space_invaders")->required();
      trace->add_option("--seed", g_trace.seed, "seed of the shared MT19937 stream")->required();
      trace->add_option("--actions", g_trace.actions_file, "file of whitespace-separated actions 0..5")->required();
      trace->add_option("--sticky", g_trace.sticky, "sticky-action probability (default 0.1)");
      trace->add_flag("--no-ramping", g_trace.no_ramping, "turn difficulty ramping off");
      trace->callback([] { guarded(run_trace); });

      CLI::App* info = sub.add_subcommand("info", "Print a game's channels, action sets and protocol presets");
      info->add_option("game", g_info_game, "game name")->required();
      info->callback([] { guarded(run_info); });

      CLI::App* record = sub.add_subcommand("record", "Play one episode at random and write PNG frames and/or a video");
      record->add_option("--game", g_record.game, "game name")->required();
      record->add_option("--seed", g_record.seed, "environment seed (also seeds the random policy)");
      record->add_option("--sticky", g_record.sticky, "sticky-action probability (default 0.1)");
      record->add_flag("--no-ramping", g_record.no_ramping, "turn difficulty ramping off");
      record->add_option("--steps", g_record.steps, "step limit (default 1000)");
      record->add_option("--video", g_record.video, "video file, .mp4 (mp4v) or .avi (MJPG)");
      record->add_option("--frames", g_record.frames, "directory for frame_00000.png ...");
      record->add_option("--cell", g_record.cell, "pixels per cell (default 32)");
      record->add_option("--fps", g_record.fps, "video frame rate (default 10)");
      record->callback([] { guarded(run_record); });
    }};

}  // namespace
