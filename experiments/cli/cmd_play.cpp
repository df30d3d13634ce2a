// `moelab play GAME`: play a MinAtar game in the terminal (arrow keys move, space fires).
#include <iostream>

#include "experiments/cli/command.h"
#include "rl/envs/terminal_play.h"

namespace {

struct PlayArgs {
  std::string game;
  double speed = 8, sticky = 0.1;
  bool turn_based = false, no_ramping = false;
  int64_t seed = -1;
} g_play;

void run_play() {
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

moelab::cli::Registration reg{"play", "Play a MinAtar game in the terminal (arrows move, space fires, q quits)",
                              [](CLI::App& sub) {
                                sub.add_option("game", g_play.game,
                                               "breakout, asterix, freeway, seaquest or space_invaders")
                                    ->required();
                                sub.add_option("--speed", g_play.speed, "game steps per second (default 8)");
                                sub.add_flag("--turn-based", g_play.turn_based, "advance one step per key press");
                                sub.add_option("--sticky", g_play.sticky, "sticky-action probability (default 0.1)");
                                sub.add_flag("--no-ramping", g_play.no_ramping, "turn difficulty ramping off");
                                sub.add_option("--seed", g_play.seed, "seed (default: a random one)");
                                sub.callback(run_play);
                              }};

}  // namespace
