#pragma once
// `moelab eval`: rebuilds a run's task from its config.toml, loads a checkpoint (weights, buffers such as
// router biases, task state) and runs the task's final evaluation on it.
#include <cstdint>
#include <filesystem>
#include <optional>

#include "experiments/lib/task.h"

namespace moelab::experiments {

struct CheckpointEval {
  int64_t step = 0;
  std::filesystem::path checkpoint;
  EvalResult result;
  std::vector<std::string> label_names;
  std::vector<std::string> headline;
  std::vector<std::pair<std::string, double>> label_mi_bits;  // I(label; expert) per MoE layer path
};

// The newest complete checkpoint when `step` is empty. Throws moelab::Error (no checkpoint, mismatched
// weights) or ConfigError (unreadable config).
CheckpointEval evaluate_checkpoint(const std::filesystem::path& run_dir, std::optional<int64_t> step);

}  // namespace moelab::experiments
