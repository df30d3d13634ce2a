#pragma once
// Sweeps: a base config, a grid of overrides and seeds, one `moelab run` per (grid point, seed) in a fixed
// directory, so a rerun skips finished runs and resumes the rest. Sweep file format: docs/runner.md.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace moelab::experiments {

struct SweepRun {
  std::vector<std::string> overrides;  // fixed overrides, then the point's, then seed=<s>
  std::string point;                   // "router=top_k,num_experts=4" (directory name)
  int64_t seed = 0;
  std::filesystem::path run_dir;
};

struct SweepSpec {
  std::filesystem::path file, base;
  std::string name;
  std::vector<int64_t> seeds;
  std::vector<std::string> overrides;
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;  // key -> values as TOML text
  std::filesystem::path out_dir;
  std::vector<SweepRun> runs;  // grid order (first key slowest), seeds innermost
};

// Parses the sweep file and expands the grid. `out_dir` empty -> runs/sweeps/<name>. Throws
// io::ConfigError with file:line:col for malformed sweeps, and for any run whose config is invalid
// (naming the point), so that nothing starts when one point is wrong.
SweepSpec load_sweep(const std::filesystem::path& file, const std::filesystem::path& out_dir = {});

struct SweepOptions {
  int jobs = 1;
  std::filesystem::path moelab_binary;  // default: this program (/proc/self/exe)
  std::string progress = "none";        // --progress of every run
};

struct SweepResult {
  int64_t skipped = 0, completed = 0, failed = 0;
};

// Runs what is not finished, `jobs` at a time, each as a child process whose output goes to
// <run_dir>/stdout.txt; prints one line per started and finished run.
SweepResult run_sweep(const SweepSpec& spec, const SweepOptions& options);

// Whether a run directory holds a completed run.
bool run_completed(const std::filesystem::path& run_dir);

}  // namespace moelab::experiments
