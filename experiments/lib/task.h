#pragma once
// The Task interface: what a task (toy_mixture, classify, rl, ...) implements so that the shared
// Trainer (experiments/lib/trainer.h) can run it from a config. The Trainer owns everything that is the
// same for every task: the run directory, the training loop (steps or epochs, gradient accumulation,
// periodic evaluation), the optimizer and its schedule (config section `optim`), logging (metrics.jsonl,
// TensorBoard scalars, progress), the NaN/Inf guard, Ctrl-C, checkpoints and resume, summary.json and
// the HTML report. A task owns its data, its model and what it measures.
//
// Life cycle of one run (the Trainer calls, in this order):
//   declare_config(schema)           once, to build the schema the config is validated against
//   build(cfg, ctx)                  data, model (initialised from the "init" stream of cfg seed)
//   named_parameters()               what the optimizer trains and model.safetensors holds
//   [on resume] load_state(state)    after the Trainer has copied the checkpoint's weights into the
//                                    tensors named_parameters() returned, and restored the optimizer
//   repeat for step = start .. steps-1:
//     repeat grad_accum times:  r = train_step(step, micro)  -> backward of (r.loss + Σ w·aux)/accum
//     (clip, optimizer update, zero grads)
//     after_optimizer_step(step)     e.g. the aux-loss-free bias update of every MoE layer
//     every eval_every steps and at the end: evaluate(step) under a NoGradGuard
//     every checkpoint_every steps and at the end: save_state(state) (with the weights and optimizer)
//
// Determinism contract (resume must reproduce the uninterrupted run bit for bit on CPU): everything
// random must come from RngStreams derived from ctx.seed (core/util/rng.h), and everything that
// changes during training other than the parameters (data position, RNG stream counters, router
// biases and other buffers, step-dependent schedules inside the task) must round-trip through
// save_state/load_state. evaluate() must not disturb training state (use its own stream or a fixed one).
//
// Reports: the Trainer's report (experiments/lib/report.h) draws the curves, MoE statistics and the
// routing heatmaps from what the task returns. A task that has more to show writes self-contained HTML
// <section>s to <run_dir>/report/sections/<name>.html (e.g. from evaluate() at the last step); they are
// pasted into report/index.html, also when `moelab report` rebuilds it.
//
// Registering a task (in its own .cpp; experiments/lib is linked whole, so the static object is kept):
//   static moelab::experiments::TaskRegistration reg{"toy_mixture", "MoE regression on a mixture of functions",
//                                            [] { return std::make_unique<ToyMixtureTask>(); }};
// A config selects it with the top-level key `task = "toy_mixture"`.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"
#include "core/util/rng.h"
#include "core/io/config.h"
#include "core/io/config_schema.h"
#include "core/nn/module.h"

namespace moelab::experiments {

// Configs are core/io's: a Schema declared in code, a Config resolved from TOML plus overrides.
using io::Config;
using io::ConfigError;
using io::Schema;

using nn::NamedTensors;

// Routing seen in one MoE layer during one micro-step (or one evaluation pass): the raw material of
// the per-layer statistics of specs/moe.md §5. The Trainer sums counts over each logging interval and
// derives load fractions, their coefficient of variation, max/mean and the number of unused experts;
// it averages the entries of `stats` over the interval.
struct LayerRouting {
  int layer = 0;  // index of the block holding this MoE layer; tags end in "/layer_<layer>"
  // (E) assignments each expert received (token-choice: (token, slot) pairs; soft MoE: summed dispatch
  // weight; expert-choice: tokens taken).
  std::vector<double> expert_counts;
  // Anything else per layer, logged as moe/<name>/layer_<layer>: "dropped_frac", "entropy",
  // "top1_prob", "bias_range", "balance_loss", "z_loss", ... (names are free; keep them snake_case).
  std::map<std::string, double> stats;
  // Optional labels x experts routing counts, row-major (label_names().size() x E): how often tokens of
  // each label (class, cluster, domain, game) went to each expert. Empty when the task has no labels.
  std::vector<double> label_expert_counts;
};

// What one micro-batch produced.
struct StepResult {
  Tensor loss;  // scalar task loss (requires grad); logged as train/loss
  // Balancing terms (core/nn/module.h AuxLoss: raw 0-d value and its coefficient), named like
  // "layer_1/load_balance" (the form ForwardOutput::absorb gives "blocks.1.ffn.load_balance" also works).
  // The Trainer adds Σ weight·value to the loss before backward and logs each raw value as
  // moe/<term>/layer_<i> when the name holds a layer index, else as train/<name>.
  std::vector<nn::AuxLoss> aux_losses;
  std::map<std::string, double> metrics;  // extra training scalars, logged as train/<name> ("accuracy")
  std::vector<LayerRouting> routing;      // one entry per MoE layer
  int64_t examples = 0;                   // examples consumed (for the rate shown in the progress bar)
};

// What an evaluation produced.
struct EvalResult {
  // Named metrics, logged under the given names: use "val/<name>" ("val/loss", "val/accuracy").
  std::map<std::string, double> metrics;
  // Routing over the evaluation set (label_expert_counts filled where the task has labels); the report
  // draws its labels x experts heatmaps and mutual information from the last evaluation.
  std::vector<LayerRouting> routing;
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

  // Adds the task's keys to the schema (the Trainer has already added task, seed, name, train.*, optim.*;
  // see experiments/lib/run_config.h). MoE layers add theirs with declare_moe_config (moe_config.h).
  virtual void declare_config(Schema& schema) const = 0;
  // Builds data and model from the validated config.
  virtual void build(const Config& cfg, const TaskContext& ctx) = 0;
  // The trained parameters with PyTorch-style dotted names ("blocks.3.moe.experts.w1"); the tensors must
  // stay the same objects for the whole run (the optimizer and checkpoints hold them).
  virtual NamedTensors named_parameters() = 0;
  // Micro-batches in one pass over the training data (for train.epochs); 0 when the task has no epochs.
  virtual int64_t micro_batches_per_epoch() const { return 0; }

  // One forward pass on the next micro-batch (micro = 0 .. grad_accum-1 within optimizer step `step`).
  virtual StepResult train_step(int64_t step, int micro) = 0;
  // Called after every optimizer update (e.g. the aux-loss-free router bias update).
  virtual void after_optimizer_step(int64_t step) {}

  // ---- concurrent micro-batches (train.workers = W > 1; experiments/lib/micro_batches.h) ----
  // A task that supports them says so, and start_workers (after build) makes W model replicas sharing
  // its parameters and buffers (nn::Module::share_state_with). Per optimizer step the
  // Trainer then calls prepare_micro_batch for every micro-batch in order on its own thread (the data
  // position and augmentation draws stay sequential), worker_step concurrently (worker w takes micro-
  // batches w, w+W, ...), and end_worker_steps once all backwards are done; it sums the replicas'
  // gradients into named_parameters() in worker order.
  virtual bool supports_workers() const { return false; }
  virtual void start_workers(int workers) {}
  // Worker w's replica parameters, in the order of named_parameters().
  virtual NamedTensors worker_parameters(int worker) { return {}; }
  virtual void prepare_micro_batch(int64_t step, int micro) {}
  // Forward of prepared micro-batch `micro` on worker w's replica (called from worker w's thread).
  virtual StepResult worker_step(int64_t step, int micro, int worker) {
    MOELAB_FAIL("this task does not run concurrent micro-batches");
  }
  // Folds what the replicas gathered besides gradients (MoE selection counts) into the main model.
  virtual void end_worker_steps() {}
  // Evaluates on held-out data; called under a NoGradGuard.
  virtual EvalResult evaluate(int64_t step) = 0;

  // Metric names (keys of EvalResult::metrics) that summary.json and `moelab compare` lead with.
  virtual std::vector<std::string> headline_metrics() const = 0;
  // Names of the routing labels (rows of LayerRouting::label_expert_counts); empty for none.
  virtual std::vector<std::string> label_names() const { return {}; }
  // What the routing labels are ("cluster", "class", "game"), for report captions.
  virtual std::string label_kind() const { return "label"; }

  // Task state beyond parameters and optimizer (see TaskState).
  virtual void save_state(TaskState& state) const = 0;
  virtual void load_state(const TaskState& state) = 0;
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
