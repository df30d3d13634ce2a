#pragma once
// The Trainer: runs one Task from a resolved config into a run dir (docs/architecture.md §3-§4): loop,
// optimizer, logging, NaN/Inf guard, Ctrl-C, checkpoints and resume, summary.json, the report.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/util/progress.h"
#include "experiments/lib/task.h"
#include "experiments/lib/training_step.h"

namespace moelab::experiments {

struct TrainerOptions {
  std::filesystem::path run_dir;        // created when missing
  bool resume = false;                  // continue from the newest complete checkpoint in run_dir
  ProgressMode progress = ProgressMode::Auto;  // core/util/progress.h
  std::vector<std::string> argv;        // the command line, for cmdline.txt
  std::vector<std::string> overrides;   // as given, for overrides.txt
  bool write_report = true;
};

// How a run ended. status: "completed", "interrupted" (Ctrl-C; a checkpoint was written), "failed"
// (NaN/Inf guard or an exception; `error` says why).
struct RunOutcome {
  std::string status;
  std::string error;
  int64_t steps = 0;            // optimizer steps completed
  nlohmann::ordered_json summary;
  std::filesystem::path run_dir;
  int exit_code() const { return status == "completed" ? 0 : 1; }
};

// Runs the task the config names. Config problems (including a resume whose config changed what is
// trained) throw ConfigError before anything is written; failures during training are reported in
// the outcome (and in summary.json).
RunOutcome run_training(const Config& cfg, const TrainerOptions& options);

}  // namespace moelab::experiments
