#pragma once
// The run directory (docs/architecture.md §4): naming, the files that record how a run was started, and the
// run's log (console and log.txt).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/lib/task.h"

namespace moelab::experiments {

// runs/<name>/<YYYYMMDD-HHMMSS> below `root` (local time); "-2", "-3" ... appended when it exists.
std::filesystem::path default_run_dir(const std::string& name, const std::filesystem::path& root = "runs");

// config.toml (resolved), overrides.txt (one per line), cmdline.txt (the full command line, quoted
// where needed) and git.txt (commit and dirty flag of the working directory, when it is a git checkout).
// On resume the start is appended to cmdline.txt and overrides.txt instead.
void write_run_files(const std::filesystem::path& run_dir, const Config& cfg, const std::vector<std::string>& argv,
                     const std::vector<std::string>& overrides, bool resuming);

// "moelab run 'a b' c" (shell-quoted where needed).
std::string shell_join(const std::vector<std::string>& argv);

// Lines for the console (stdout) and <run_dir>/log.txt (appended).
class RunLog {
 public:
  RunLog() = default;
  // console = false: lines go to the file only (ranks other than 0 of a distributed run).
  explicit RunLog(const std::filesystem::path& path, bool console = true);
  ~RunLog();
  RunLog(const RunLog&) = delete;
  RunLog& operator=(const RunLog&) = delete;
  void line(const std::string& text);      // console and file
  void file_only(const std::string& text);  // file only (progress lines already on stderr)

 private:
  std::FILE* file_ = nullptr;
  bool console_ = true;
};

}  // namespace moelab::experiments
