#include "experiments/lib/run_dir.h"

#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>

#include "core/io/atomic_file.h"

namespace fs = std::filesystem;

namespace moelab::experiments {

namespace {
// Output of a shell command, or "" when it fails.
std::string capture(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  if (!pipe) return "";
  std::string out;
  char buf[256];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  return out;
}

void append_file(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::app);
  MOELAB_CHECK(f, "cannot write " << path.string());
  f << text;
}
}  // namespace

fs::path default_run_dir(const std::string& name, const fs::path& root) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  ::localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
  fs::path base = root / name / stamp;
  fs::path dir = base;
  for (int i = 2; fs::exists(dir); ++i) dir = base.string() + "-" + std::to_string(i);
  return dir;
}

std::string shell_join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                                   "_-+=.,/:@%") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

void write_run_files(const fs::path& run_dir, const Config& cfg, const std::vector<std::string>& argv,
                     const std::vector<std::string>& overrides, bool resuming) {
  fs::create_directories(run_dir);
  io::write_file_atomic((run_dir / "config.toml").string(), cfg.to_toml(false));
  std::string ovr;
  for (const auto& o : overrides) ovr += o + "\n";
  std::string cmd = shell_join(argv) + "\n";
  if (resuming) {
    append_file(run_dir / "cmdline.txt", cmd);
    if (!ovr.empty()) append_file(run_dir / "overrides.txt", ovr);
    return;
  }
  io::write_file_atomic((run_dir / "cmdline.txt").string(), cmd);
  io::write_file_atomic((run_dir / "overrides.txt").string(), ovr);
  std::string head = capture("git rev-parse HEAD 2>/dev/null");
  std::string git;
  if (head.empty()) {
    git = "not a git checkout\n";
  } else {
    std::string dirty = capture("git status --porcelain --untracked-files=no 2>/dev/null");
    git = "commit " + head + "dirty " + (dirty.empty() ? "false" : "true") + "\n";
  }
  io::write_file_atomic((run_dir / "git.txt").string(), git);
}

RunLog::RunLog(const fs::path& path, bool console) : console_(console) {
  fs::create_directories(path.parent_path());
  file_ = std::fopen(path.string().c_str(), "a");
  MOELAB_CHECK(file_, "cannot open " << path.string() << " for appending");
}

RunLog::~RunLog() {
  if (file_) std::fclose(file_);
}

void RunLog::line(const std::string& text) {
  if (console_) std::cout << text << "\n" << std::flush;
  file_only(text);
}

void RunLog::file_only(const std::string& text) {
  if (!file_) return;
  std::fputs(text.c_str(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);
}

}  // namespace moelab::experiments
