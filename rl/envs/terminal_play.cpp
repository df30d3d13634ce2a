#include "rl/envs/terminal_play.h"

#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "rl/envs/environment.h"
#include "rl/envs/render.h"

namespace moelab::rl {

std::string ansi_frame(const uint8_t* obs, int channels) {
  std::ostringstream out;
  for (int y = 0; y < kGridSize; ++y) {
    for (int x = 0; x < kGridSize; ++x) {
      int top = -1;
      for (int c = 0; c < channels; ++c)
        if (obs[obs_index(y, x, c, channels)]) top = c;
      if (top < 0) {
        out << "\x1b[48;2;0;0;0m  ";
      } else {
        const auto colour = channel_colour(top, channels);
        out << "\x1b[48;2;" << int(colour[0]) << ';' << int(colour[1]) << ';' << int(colour[2]) << "m  ";
      }
    }
    out << "\x1b[0m\n";
  }
  return out.str();
}

std::vector<KeyEvent> decode_keys(std::string_view bytes) {
  std::vector<KeyEvent> events;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char ch = bytes[i];
    if (ch == '\x1b' && i + 2 < bytes.size() && (bytes[i + 1] == '[' || bytes[i + 1] == 'O')) {
      const char code = bytes[i + 2];
      i += 2;
      if (code == 'A') events.push_back({KeyCommand::kAction, kUp});
      else if (code == 'B') events.push_back({KeyCommand::kAction, kDown});
      else if (code == 'C') events.push_back({KeyCommand::kAction, kRight});
      else if (code == 'D') events.push_back({KeyCommand::kAction, kLeft});
      continue;
    }
    switch (ch) {
      case ' ': case 'f': events.push_back({KeyCommand::kAction, kFire}); break;
      case 'w': events.push_back({KeyCommand::kAction, kUp}); break;
      case 's': events.push_back({KeyCommand::kAction, kDown}); break;
      case 'a': events.push_back({KeyCommand::kAction, kLeft}); break;
      case 'd': events.push_back({KeyCommand::kAction, kRight}); break;
      case 'n': events.push_back({KeyCommand::kAction, kNoop}); break;
      case 'q': case '\x03': events.push_back({KeyCommand::kQuit}); break;
      case 'p': events.push_back({KeyCommand::kPause}); break;
      case 'r': events.push_back({KeyCommand::kRestart}); break;
      default: break;
    }
  }
  return events;
}

namespace {

// Raw, non-echoing input and a hidden cursor while alive; the terminal is restored on exit.
class RawTerminal {
 public:
  RawTerminal() {
    if (!isatty(STDIN_FILENO)) throw std::runtime_error("moelab play needs an interactive terminal (stdin is not a TTY)");
    if (tcgetattr(STDIN_FILENO, &saved_) != 0) throw std::runtime_error("moelab play: cannot read terminal settings");
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    std::cout << "\x1b[?25l\x1b[2J" << std::flush;
  }
  ~RawTerminal() {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    std::cout << "\x1b[0m\x1b[?25h" << std::flush;
  }

  // Waits at most timeout_ms (forever when negative) for input; returns what was read.
  std::string read(int timeout_ms) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(STDIN_FILENO, &set);
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    const int ready = select(STDIN_FILENO + 1, &set, nullptr, nullptr, timeout_ms < 0 ? nullptr : &tv);
    std::string bytes;
    if (ready <= 0) return bytes;
    char buffer[64];
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof(buffer));
    if (n > 0) bytes.assign(buffer, static_cast<size_t>(n));
    return bytes;
  }

 private:
  termios saved_{};
};

}  // namespace

int play_in_terminal(const PlayOptions& options) {
  if (!options.turn_based && !(options.steps_per_second > 0)) throw std::invalid_argument("moelab play: --speed must be > 0");
  EnvironmentOptions env_options{options.sticky_action_prob, options.difficulty_ramping, std::nullopt};
  if (options.seeded) env_options.seed = options.seed;
  Environment env(options.game, env_options);
  const GameInfo& info = game_info(options.game);
  std::vector<uint8_t> obs(env.observation_size());
  RawTerminal terminal;
  using Clock = std::chrono::steady_clock;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options.turn_based ? 0.0 : 1.0 / options.steps_per_second));
  int score = 0, steps = 0, episode = 1, action = kNoop;
  bool paused = false, over = false;

  auto draw = [&] {
    env.observe(obs.data());
    std::ostringstream out;
    out << "\x1b[H" << info.name << "  episode " << episode << "  score " << score << "  steps " << steps
        << "  ramp " << env.difficulty_ramp() << "\x1b[K\n";
    out << ansi_frame(obs.data(), env.channels());
    for (int c = 0; c < env.channels(); ++c) {
      const auto colour = channel_colour(c, env.channels());
      out << "\x1b[48;2;" << int(colour[0]) << ';' << int(colour[1]) << ';' << int(colour[2]) << "m  \x1b[0m "
          << info.channels[c] << (c % 4 == 3 ? "\n" : "  ");
    }
    out << "\x1b[K\n";
    if (over) out << "Game over: score " << score << ". r: play again, q: quit\x1b[K\n";
    else if (paused) out << "Paused. p: resume, q: quit\x1b[K\n";
    else out << "arrows move, space fires, p pause, r restart, q quit\x1b[K\n";
    std::cout << out.str() << "\x1b[J" << std::flush;
  };
  auto restart = [&] {
    env.reset();
    score = steps = 0;
    ++episode;
    over = paused = false;
    action = kNoop;
  };

  draw();
  auto next_step = Clock::now() + period;
  for (;;) {
    const bool waiting = over || paused || options.turn_based;
    const int timeout_ms =
        waiting ? -1 : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_step - Clock::now()).count());
    bool stepped_by_key = false;
    for (const KeyEvent& key : decode_keys(terminal.read(std::max(timeout_ms, waiting ? -1 : 0)))) {
      if (key.command == KeyCommand::kQuit) return score;
      if (key.command == KeyCommand::kRestart) restart();
      else if (key.command == KeyCommand::kPause && !over) paused = !paused;
      else if (key.command == KeyCommand::kAction && !over && !paused) {
        action = key.action;
        stepped_by_key = options.turn_based;
      }
    }
    const bool due = options.turn_based ? stepped_by_key : (!over && !paused && Clock::now() >= next_step);
    if (due) {
      const StepResult result = env.act(action);
      score += result.reward;
      ++steps;
      over = result.terminal;
      action = kNoop;  // a key acts for one step; holding it repeats
      next_step += period;
      if (Clock::now() > next_step) next_step = Clock::now() + period;
    }
    if (paused || over) next_step = Clock::now() + period;
    draw();
  }
}

}  // namespace moelab::rl
