#pragma once
// Playing a MinAtar game in a terminal: ANSI true-colour frames and key decoding (arrow keys move,
// space fires, p pauses, r restarts, q quits).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "rl/envs/game.h"

namespace moelab::rl {

// obs: (10, 10, C) -> 10 lines of coloured cells (two spaces each), colours as in render.h.
std::string ansi_frame(const uint8_t* obs, int channels);

enum class KeyCommand { kAction, kQuit, kPause, kRestart };
struct KeyEvent {
  KeyCommand command;
  int action = kNoop;  // for kAction
};
// Decodes raw terminal input: ESC [ A/B/C/D (and ESC O A.. in application mode) are up/down/right/left,
// space or f fires, w/a/s/d move too, n is a no-op; unknown bytes are skipped.
std::vector<KeyEvent> decode_keys(std::string_view bytes);

struct PlayOptions {
  GameId game = GameId::kBreakout;
  double steps_per_second = 8;   // the game advances on this clock; the last key pressed is the action
  bool turn_based = false;       // instead: one step per key press
  double sticky_action_prob = 0.1;
  bool difficulty_ramping = true;
  uint32_t seed = 0;
  bool seeded = false;           // false: an entropy seed
};
// Runs the interactive loop on the controlling terminal (stdin must be a TTY); returns the last score.
int play_in_terminal(const PlayOptions& options);

}  // namespace moelab::rl
