#pragma once
// Helpers for the program-level tests: run the built `moelab` binary, make fresh run directories under
// the temp directory, write tiny configs, read metrics without their wall-clock fields.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::testing {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `moelab <args>` with optional "NAME=value" environment assignments.
inline CommandResult run_moelab(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::string cmd;
  for (const auto& e : env) cmd += e + " ";
  cmd += shell_quote(std::string(MOELAB_BINARY_DIR) + "/moelab");
  for (const auto& a : args) cmd += " " + shell_quote(a);
  cmd += " 2>&1";
  CommandResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, pipe)) r.output.append(buf, n);
  int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A fresh, empty directory <tmp>/moelab_<test>_<pid>/<name>.
inline fs::path fresh_dir(const std::string& test, const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("moelab_" + test + "_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A toy_mixture config that trains in about a second: 24 steps, evaluation and checkpoints every 8.
inline std::string tiny_config(const std::string& extra = "") {
  return R"(task = "toy_mixture"
seed = 1

[data]
clusters = 3
train_size = 256
eval_size = 128
batch_size = 32

[model]
d_model = 16
d_ff = 16
layers = 2

[model.moe]
num_experts = 4
top_k = 1

[train]
steps = 24
eval_every = 8
checkpoint_every = 8
keep_checkpoints = 0
log_every = 4

[optim]
lr = 0.003
warmup_steps = 2
)" + extra;
}

// metrics.jsonl records without the wall-clock field "time".
inline std::vector<nlohmann::json> metrics_without_time(const fs::path& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("time");
    out.push_back(j);
  }
  return out;
}

}  // namespace moelab::testing
