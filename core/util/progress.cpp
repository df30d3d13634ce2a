#include "core/util/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/util/check.h"

namespace moelab {
namespace {

// Display columns of UTF-8 text (one per code point; the bar's block characters are one column).
size_t columns(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string printf_string(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// 3 significant digits without exponent: 125, 36.2, 4.00.
std::string three_digits(double v) {
  if (v >= 99.95) return printf_string("%.0f", v);
  if (v >= 9.995) return printf_string("%.1f", v);
  return printf_string("%.2f", v);
}

double steady_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

int terminal_width(std::FILE* stream) {
  struct winsize ws {};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* cols = std::getenv("COLUMNS")) {
    int c = std::atoi(cols);
    if (c > 0) return c;
  }
  return 80;
}

std::mutex g_active_mutex;
Progress* g_active = nullptr;

}  // namespace

ProgressMode parse_progress_mode(std::string_view text) {
  if (text == "auto") return ProgressMode::Auto;
  if (text == "bar") return ProgressMode::Bar;
  if (text == "plain") return ProgressMode::Plain;
  if (text == "none") return ProgressMode::None;
  MOELAB_FAIL("unknown progress mode '" << text << "'; use auto, bar, plain or none");
}

std::string_view progress_mode_name(ProgressMode mode) {
  switch (mode) {
    case ProgressMode::Auto: return "auto";
    case ProgressMode::Bar: return "bar";
    case ProgressMode::Plain: return "plain";
    case ProgressMode::None: return "none";
  }
  return "?";
}

std::string format_interval(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = static_cast<long long>(seconds);
  const long long h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[48];
  if (h) std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", h, m, s);
  else std::snprintf(buf, sizeof(buf), "%02lld:%02lld", m, s);
  return buf;
}

std::string format_rate(double r) {
  if (!std::isfinite(r) || r <= 0) return "?it/s";
  if (r >= 1) return three_digits(r) + "it/s";
  return three_digits(1 / r) + "s/it";
}

std::string format_metric(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1e-3 && a < 1000) return printf_string("%.3g", v);
  if (a >= 1000 && a < 1e5) return printf_string("%.0f", v);
  // Scientific with the mantissa's trailing zeros and the exponent's padding removed: 3e-4, 1.2e5.
  std::string s = printf_string("%.2e", v);
  const size_t e = s.find('e');
  std::string mantissa = s.substr(0, e);
  if (mantissa.find('.') != std::string::npos) {
    mantissa.erase(mantissa.find_last_not_of('0') + 1);
    if (mantissa.back() == '.') mantissa.pop_back();
  }
  return mantissa + "e" + std::to_string(std::atoi(s.c_str() + e + 1));
}

std::string format_bar_line(const ProgressSnapshot& s, int width) {
  std::string postfix;
  for (const auto& [name, v] : s.postfix) postfix += ", " + name + "=" + format_metric(v);
  const std::string elapsed = format_interval(s.elapsed_s);
  const std::string rate = format_rate(s.rate);
  const std::string desc = s.desc.empty() ? "" : s.desc + ": ";
  if (s.total <= 0)
    return desc + std::to_string(s.n) + "it [" + elapsed + ", " + rate + postfix + "]";

  const double frac = std::clamp(double(s.n) / double(s.total), 0.0, 1.0);
  const std::string remaining = s.rate > 0 ? format_interval(double(s.total - s.n) / s.rate) : "?";
  const std::string left = desc + printf_string("%3.0f", frac * 100) + "%|";
  const std::string right = "| " + std::to_string(s.n) + "/" + std::to_string(s.total) + " [" + elapsed + "<" +
                            remaining + ", " + rate + postfix + "]";
  const int bar_width = std::max(1, width - int(columns(left) + columns(right)));
  static const char* const kPartial[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  const int eighths = static_cast<int>(frac * bar_width * 8);
  std::string bar;
  for (int i = 0; i < eighths / 8; ++i) bar += "█";
  bar += kPartial[eighths % 8];
  bar.append(size_t(bar_width) - columns(bar), ' ');
  return left + bar + right;
}

std::string format_plain_line(const ProgressSnapshot& s, bool final) {
  std::string out = (s.desc.empty() ? "" : s.desc + " ") + "step " + std::to_string(s.n);
  if (s.total > 0) out += "/" + std::to_string(s.total);
  for (const auto& [name, v] : s.postfix) out += " " + name + " " + format_metric(v);
  if (s.rate >= 1) out += " " + three_digits(s.rate) + " it/s";
  else if (s.rate > 0) out += " " + three_digits(1 / s.rate) + " s/it";
  if (final) out += " in " + format_interval(s.elapsed_s);
  else if (s.total > 0 && s.rate > 0) out += " eta " + format_interval(double(s.total - s.n) / s.rate);
  return out;
}

// ---- Progress ----

Progress::Progress(std::string desc, int64_t total, ProgressOptions options)
    : desc_(std::move(desc)), total_(total), n_(options.initial), options_(std::move(options)) {
  if (!options_.clock) options_.clock = steady_seconds;
  if (!options_.stream) options_.stream = stderr;
  mode_ = options_.mode;
  if (mode_ == ProgressMode::Auto) {
    const char* term = std::getenv("TERM");
    const bool tty = ::isatty(::fileno(options_.stream)) && !(term && std::strcmp(term, "dumb") == 0);
    mode_ = tty ? ProgressMode::Bar : ProgressMode::Plain;
  }
  width_ = options_.width > 0 ? options_.width : terminal_width(options_.stream);
  start_ = last_plain_ = now();
  if (mode_ == ProgressMode::Bar) {
    std::lock_guard<std::mutex> g(g_active_mutex);
    g_active = this;
  }
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

ProgressSnapshot Progress::snapshot() const {
  ProgressSnapshot s;
  s.desc = desc_;
  s.n = n_;
  s.total = total_;
  s.elapsed_s = std::max(0.0, now() - start_);
  s.rate = s.elapsed_s > 0 ? double(n_ - options_.initial) / s.elapsed_s : 0;
  s.postfix = postfix_;
  return s;
}

void Progress::write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), options_.stream);
  std::fflush(options_.stream);
}

void Progress::draw_bar() {
  const std::string line = format_bar_line(snapshot(), width_);
  const size_t cols = columns(line);
  std::string out = "\r" + line;
  if (cols < drawn_columns_) out.append(drawn_columns_ - cols, ' ');  // blank out a longer previous line
  write(out);
  drawn_columns_ = cols;
  last_draw_ = now();
}

void Progress::update(int64_t n, std::vector<std::pair<std::string, double>> postfix) {
  std::lock_guard<std::mutex> g(mutex_);
  if (finished_) return;
  n_ = n;
  postfix_ = std::move(postfix);
  const double t = now();
  if (mode_ == ProgressMode::Bar) {
    if (t - last_draw_ >= options_.min_redraw_s || (total_ > 0 && n_ >= total_)) draw_bar();
  } else if (mode_ == ProgressMode::Plain) {
    if (t - last_plain_ >= options_.plain_every_s) {
      write(format_plain_line(snapshot()) + "\n");
      last_plain_ = t;
    }
  }
}

void Progress::log(std::string_view line) {
  std::lock_guard<std::mutex> g(mutex_);
  if (mode_ == ProgressMode::Bar && !finished_ && drawn_columns_ > 0) {
    write("\r" + std::string(drawn_columns_, ' ') + "\r" + std::string(line) + "\n");
    drawn_columns_ = 0;
    draw_bar();
  } else {
    write(std::string(line) + "\n");
  }
}

void Progress::finish() {
  {
    std::lock_guard<std::mutex> g(g_active_mutex);  // taken first, as progress_print does
    if (g_active == this) g_active = nullptr;
  }
  std::lock_guard<std::mutex> g(mutex_);
  if (finished_) return;
  finished_ = true;
  if (mode_ == ProgressMode::Bar) {
    draw_bar();
    write("\n");
  } else if (mode_ == ProgressMode::Plain) {
    write(format_plain_line(snapshot(), /*final=*/true) + "\n");
  }
}

void progress_print(std::string_view line) {
  std::lock_guard<std::mutex> g(g_active_mutex);
  if (g_active) {
    g_active->log(line);
    return;
  }
  std::string text(line);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

}  // namespace moelab
