#pragma once
// The config of a run: the keys every task shares (declared here) plus the task's own
// (Task::declare_config). The shared keys are listed in docs/runner.md (Configs).
#include <memory>
#include <string>
#include <vector>

#include "experiments/lib/task.h"

namespace moelab::experiments {

void declare_common_config(Schema& schema);
// The common keys plus the task's; throws ConfigError for an unknown task.
std::shared_ptr<Schema> make_task_schema(const std::string& task_name);
// The task a config file names (a `task=` override wins). Throws ConfigError naming the file.
std::string config_task_name(const std::string& path, const std::vector<std::string>& overrides);
// Reads, overrides and validates a run config against its task's schema.
Config load_run_config(const std::string& path, const std::vector<std::string>& overrides);

// Optimizer steps of the run: train.steps, or train.epochs / train.examples / train.frames converted with the
// task's micro-batches per epoch / examples per micro-batch / frames per step. ConfigError at the key when the
// task cannot.
int64_t budget_steps(const Config& cfg, const Task& task);
// Steps between evaluations: train.eval_every_frames / the task's frames per step when set, else
// train.eval_every. ConfigError at the key for a task without frames.
int64_t eval_every_steps(const Config& cfg, const Task& task);

// Keys that may differ between a run's saved config and the one given with --resume: they change how
// long and how often, not what is trained.
bool resume_may_change(const std::string& key);

}  // namespace moelab::experiments
