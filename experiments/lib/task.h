#pragma once
// The Task interface: the config keys, data stream, model, loss and measurements a task supplies; the
// Trainer owns the rest. Walk-through and the determinism contract: docs/runner.md (Adding a task).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/io/config.h"
#include "core/io/config_schema.h"
#include "core/moe/routing_stats.h"
#include "core/nn/batch.h"
#include "core/nn/context.h"
#include "core/nn/module.h"
#include "core/tensor/tensor.h"
#include "core/util/rng.h"

namespace moelab::experiments {

// Configs are core/io's: a Schema declared in code, a Config resolved from TOML plus overrides.
using io::Config;
using io::ConfigError;
using io::Schema;

using nn::NamedTensors;

// What one training micro-batch produced (aux losses and routing are in the forward context).
struct StepResult {
  Tensor loss;                            // scalar task loss (requires grad); logged as train/loss
  std::map<std::string, double> metrics;  // extra training scalars, logged as train/<name> ("accuracy")
  int64_t examples = 0;                   // examples consumed (the progress rate; budgets in examples)
};

// What an evaluation produced: metrics logged under their names ("val/loss", "test_accuracy").
struct EvalResult {
  std::map<std::string, double> metrics;
};

// What the Trainer hands Task::evaluate. The model is in eval mode and no gradient is recorded.
class EvalContext {
 public:
  EvalContext(nn::Module& model, int64_t step, bool final, uint64_t draw_key, Device device)
      : model(model), step(step), final(final), device(device), draw_key_(draw_key) {}
  // Runs `forward(ctx)` with a context for `batch` whose routing goes to this evaluation's log.
  template <typename F> auto run(const nn::Batch& batch, F&& forward) {
    nn::ForwardContext ctx(batch, step, draw_key_);
    ctx.routing = &routing;
    return forward(ctx);
  }

  nn::Module& model;
  const int64_t step;
  const bool final;     // the run's last evaluation: the place for test sets and final pictures
  const Device device;
  // Routing of every forward run through run(), with each layer's latest record (the report's heatmaps,
  // routing/*.csv). A task that evaluates several sets clears it before the set it wants reported.
  moe::RoutingLog routing{true};

 private:
  uint64_t draw_key_;
};

// Everything a checkpoint holds for the task beyond the trained parameters and the optimizer
// (state.safetensors): data position, RNG streams, router biases and other non-trained buffers.
struct TaskState {
  NamedTensors tensors;                       // saved as "task.<name>"
  std::map<std::string, std::string> values;  // saved in the file's metadata as "task.<name>"

  void put_int(const std::string& name, int64_t v) { values[name] = std::to_string(v); }
  void put_string(const std::string& name, const std::string& v) { values[name] = v; }
  void put_rng(const std::string& name, const RngStream& rng);  // key and counter
  void put_tensor(const std::string& name, const Tensor& t) { tensors.emplace_back(name, t); }
  // Getters throw moelab::Error naming the missing entry.
  int64_t get_int(const std::string& name) const;
  std::string get_string(const std::string& name) const;
  RngStream get_rng(const std::string& name) const;
  Tensor get_tensor(const std::string& name) const;
  // Copies a saved tensor into `dst` (shapes must match).
  void load_tensor_into(const std::string& name, Tensor& dst) const;
};

// What the Trainer tells the task when building it.
struct TaskContext {
  uint64_t seed = 0;                             // the config's `seed`; derive streams with RngStream(seed, "data")
  std::string run_dir;                           // empty under `moelab eval`: then write no files
  std::function<void(const std::string&)> log;   // a line for the console and log.txt (no newline needed)
  Device device = Device::cpu();                 // the config's `device`: put the model and batches there
};

class Task {
 public:
  virtual ~Task() = default;

  // Adds the task's keys to the schema (the Trainer has added task, seed, name, device, train.*, optim.*;
  // see run_config.h). MoE layers add theirs with declare_moe_config (moe_support.h).
  virtual void declare_config(Schema& schema) const = 0;
  // Builds the data (and anything else but the model) from the validated config.
  virtual void build(const Config& cfg, const TaskContext& ctx) = 0;
  // A new model from the config, initialised from the "init" stream of the seed: the Trainer calls it once
  // for the trained model and once per worker for replicas that share its state.
  virtual std::shared_ptr<nn::Module> make_model() = 0;

  // The next training micro-batch, in order (micro = 0 .. grad_accum-1 of optimizer step `step`); called on
  // the Trainer's thread, so data position and augmentation draws stay sequential. The Trainer moves it to
  // the run's device.
  virtual nn::Batch next_batch(int64_t step, int micro) = 0;
  // Forward and loss of one micro-batch on `model` (the trained model or a worker's replica, possibly on a
  // worker thread: touch no task state here).
  virtual StepResult train_step(nn::Module& model, const nn::Batch& batch, nn::ForwardContext& ctx) = 0;
  // Called after every optimizer update, after the modules' own after_optimizer_step.
  virtual void after_optimizer_step(int64_t step) {}
  // Evaluates held-out data (see EvalContext).
  virtual EvalResult evaluate(EvalContext& ec) = 0;

  // ---- budgets (train.steps, train.epochs, train.examples, train.frames) ----
  // Micro-batches in one pass over the training data; 0 when the task has no epochs.
  virtual int64_t micro_batches_per_epoch() const { return 0; }
  // Examples in one micro-batch; 0 when the task cannot count examples ahead.
  virtual int64_t examples_per_micro_batch() const { return 0; }
  // Environment frames consumed per optimizer step (an interaction loop: acting, replay, updates); 0 for a
  // task without environments. The loop's own state (environments, replay) belongs in save_state.
  virtual int64_t frames_per_step() const { return 0; }

  // Metric names (keys of EvalResult::metrics) that summary.json and `moelab compare` lead with.
  virtual std::vector<std::string> headline_metrics() const = 0;
  // Names of the routing labels (rows of the labels x experts matrices); empty for none.
  virtual std::vector<std::string> label_names() const { return {}; }
  // What the routing labels are ("cluster", "class", "game"), for report captions.
  virtual std::string label_kind() const { return "label"; }

  // Data state beyond parameters, buffers and optimizer (see TaskState).
  virtual void save_state(TaskState& state) const {}
  virtual void load_state(const TaskState& state) {}

  // The trained model (set by the Trainer after make_model()).
  nn::Module& model() const {
    MOELAB_CHECK(model_, "the task's model is not built yet");
    return *model_;
  }
  void set_model(std::shared_ptr<nn::Module> model) { model_ = std::move(model); }

 private:
  std::shared_ptr<nn::Module> model_;
};

// ---- registry ----
using TaskFactory = std::function<std::unique_ptr<Task>()>;
struct TaskInfo {
  std::string name, help;
  TaskFactory make;
};
std::vector<TaskInfo>& task_table();
struct TaskRegistration {
  TaskRegistration(std::string name, std::string help, TaskFactory make) {
    task_table().push_back({std::move(name), std::move(help), std::move(make)});
  }
};
// Throws ConfigError listing the registered tasks (and the nearest name) for an unknown one.
const TaskInfo& find_task(const std::string& name);

}  // namespace moelab::experiments
