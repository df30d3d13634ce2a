#pragma once
// Progress output (docs/formats.md §4): a tqdm-style bar on a terminal, plain periodic lines
// otherwise. Usage and line formats: docs/io.md (Progress output).
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moelab {

enum class ProgressMode { Auto, Bar, Plain, None };
// "auto" | "bar" | "plain" | "none"; throws moelab::Error naming the choices otherwise.
ProgressMode parse_progress_mode(std::string_view text);
std::string_view progress_mode_name(ProgressMode mode);

// ---- formatting (pure, for tests and for other writers) ----
// tqdm's interval: "00:12", "59:59", "1:02:03".
std::string format_interval(double seconds);
// "36.2it/s", "4.00it/s", "125it/s"; below one per second "2.50s/it"; "?it/s" when unknown.
std::string format_rate(double items_per_second);
// Compact metric values: "2.31", "0.0123", "1234", "3e-4", "1.2e5", "nan".
std::string format_metric(double value);

struct ProgressSnapshot {
  std::string desc;
  int64_t n = 0, total = 0;  // total <= 0: unknown
  double elapsed_s = 0;
  double rate = 0;           // items per second; <= 0: unknown
  std::vector<std::pair<std::string, double>> postfix;
};
// The tqdm line, `width` columns wide (the bar takes what the text leaves).
std::string format_bar_line(const ProgressSnapshot& s, int width);
// The plain line; `final` ends with "in <elapsed>" instead of "eta <remaining>".
std::string format_plain_line(const ProgressSnapshot& s, bool final = false);

struct ProgressOptions {
  ProgressMode mode = ProgressMode::Auto;  // Auto: Bar when `stream` is a terminal, else Plain
  std::FILE* stream = stderr;
  double min_redraw_s = 0.1;              // bar: redraw at most this often
  double plain_every_s = 10.0;            // plain: one line this often
  int width = 0;                          // bar columns; 0: the terminal's width (or 80)
  int64_t initial = 0;                    // starting position (resume); the rate counts from here
  std::function<double()> clock{};        // monotonic seconds; defaults to steady_clock
};

class Progress {
 public:
  Progress(std::string desc, int64_t total, ProgressOptions options = {});
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Moves to absolute position `n`, with the values shown after the counters.
  void update(int64_t n, std::vector<std::pair<std::string, double>> postfix = {});
  void advance(int64_t by = 1) { update(n_ + by, postfix_); }
  // Prints a whole line without breaking the bar (it is redrawn underneath).
  void log(std::string_view line);
  // Draws the final state and ends the line. Called by the destructor if needed.
  void finish();
  ProgressMode mode() const { return mode_; }  // Bar, Plain or None (never Auto)
  ProgressSnapshot snapshot() const;

 private:
  void draw_bar();
  void write(std::string_view text);
  double now() const { return options_.clock(); }

  std::string desc_;
  int64_t total_, n_;
  std::vector<std::pair<std::string, double>> postfix_;
  ProgressOptions options_;
  ProgressMode mode_;
  int width_;
  double start_, last_draw_ = -1e300, last_plain_;
  size_t drawn_columns_ = 0;  // width of the bar on screen, to blank it out
  bool finished_ = false;
  mutable std::mutex mutex_;
};

// Prints a line through the active bar if one is drawing (so it is not broken), else to stderr.
void progress_print(std::string_view line);

}  // namespace moelab
