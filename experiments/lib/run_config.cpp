#include "experiments/lib/run_config.h"

#include <filesystem>

#include "core/io/text_util.h"

namespace moelab::experiments {

void declare_common_config(Schema& s) {
  std::vector<std::string> tasks;
  for (const auto& t : task_table()) tasks.push_back(t.name);
  s.add_choice("task", tasks.empty() ? "" : tasks.front(), tasks, "the task this config trains").require();
  s.add_string("name", "", "experiment name: runs go to runs/<name>/<timestamp> (default: the config file's stem)");
  s.add_int("seed", 0, "the one seed every random stream (init, data, routing noise) is derived from").at_least(0);
  s.add_string("device", "cpu", "where the model trains: cpu, cuda (= cuda:0) or cuda:N");

  s.add_section("train", "the training loop (shared by every task)");
  s.add_int("train.steps", 1000, "optimizer steps to train for (ignored when train.epochs > 0)").at_least(1);
  s.add_int("train.epochs", 0, "passes over the training data; > 0 overrides train.steps").at_least(0);
  s.add_int("train.examples", 0, "training examples to see; > 0 overrides train.steps (not with train.epochs)")
      .at_least(0);
  s.add_int("train.frames", 0, "environment frames to play (tasks with environments); > 0 overrides train.steps")
      .at_least(0);
  s.add_int("train.grad_accum", 1, "micro-batches accumulated into one optimizer step").at_least(1);
  s.add_int("train.eval_every", 0, "evaluate every N steps (0: only at the end)").at_least(0);
  s.add_int("train.eval_every_frames", 0,
            "evaluate every N environment frames (tasks with environments; > 0 overrides train.eval_every)")
      .at_least(0);
  s.add_int("train.checkpoint_every", 0, "checkpoint every N steps (0: only at the end)").at_least(0);
  s.add_int("train.keep_checkpoints", 3, "complete checkpoints to keep (0: keep all)").at_least(0);
  s.add_int("train.log_every", 10, "log averaged training scalars every N steps").at_least(1);
  s.add_float("train.progress_every_s", 10.0, "seconds between plain progress lines (when not on a terminal)")
      .greater_than(0);
  s.add_int("train.threads", 0, "CPU threads (0: OpenMP's default); results are bitwise stable per thread count")
      .at_least(0);
  s.add_int("train.workers", 1,
            "micro-batches of one step trained concurrently, one thread and model replica each (needs "
            "train.grad_accum >= workers; bitwise the result of train.threads = 1)")
      .range(1, 64);
  s.add_check([](const Config& c, io::ConfigReporter& r) {
    const int64_t workers = c.get_int("train.workers"), accum = c.get_int("train.grad_accum");
    if (workers > accum)
      r.error("train.workers", "train.workers = " + std::to_string(workers) + " exceeds train.grad_accum = " +
                                   std::to_string(accum) + ": each worker trains whole micro-batches of a step");
  });
  s.add_check([](const Config& c, io::ConfigReporter& r) {
    int budgets = 0;
    for (const char* k : {"train.epochs", "train.examples", "train.frames"}) budgets += c.get_int(k) > 0 ? 1 : 0;
    if (budgets > 1)
      r.error(c.get_int("train.frames") > 0 ? "train.frames" : "train.examples",
              "train.epochs, train.examples and train.frames each set the budget; keep one (or none: train.steps)");
  });
  s.add_choice("train.on_non_finite", "stop", {"stop", "skip"},
               "a NaN or Inf loss or gradient: stop the run (a checkpoint stays), or skip that step's update and go on");
  s.add_bool("train.allow_tf32", false,
             "CUDA: TF32 tensor-core maths in f32 matmuls (faster; about 1e-3 relative error instead of f32 rounding)");

  s.add_section("optim", "optimizer, learning-rate schedule and gradient clipping");
  s.add_choice("optim.name", "adamw", {"adamw", "sgd", "rmsprop"}, "optimizer");
  s.add_float("optim.lr", 1e-3, "peak learning rate").greater_than(0).at_most(10);
  s.add_float("optim.weight_decay", 0.0, "weight decay (decoupled for adamw, L2 for sgd and rmsprop)").at_least(0);
  s.add_bool("optim.no_decay_for_vectors", true, "no weight decay on biases and norm gains (adamw)");
  s.add_float("optim.beta1", 0.9, "adamw first-moment decay").at_least(0).less_than(1);
  s.add_float("optim.beta2", 0.999, "adamw second-moment decay").at_least(0).less_than(1);
  s.add_float("optim.eps", 1e-8, "adamw / rmsprop epsilon").greater_than(0);
  s.add_float("optim.momentum", 0.0, "sgd momentum").at_least(0).less_than(1);
  s.add_float("optim.alpha", 0.99, "rmsprop smoothing constant").greater_than(0).less_than(1);
  s.add_bool("optim.centered", false, "rmsprop: divide by the estimated standard deviation");
  s.add_choice("optim.schedule", "cosine", {"constant", "cosine", "linear"}, "learning-rate schedule after warmup");
  s.add_int("optim.warmup_steps", 0, "linear warmup steps").at_least(0);
  s.add_float("optim.min_lr_ratio", 0.0, "final learning rate as a fraction of optim.lr (cosine, linear)").range(0, 1);
  s.add_float("optim.clip_grad_norm", 1.0, "clip the global gradient norm to this value (0: off)").at_least(0);
  s.add_string_list("optim.param_groups", {},
                    "per-parameter settings, first match wins: \"PATTERN: lr_scale=X weight_decay=Y\" where PATTERN "
                    "matches parameter names with * (e.g. \"*.router.*: lr_scale=0.1 weight_decay=0\")");

  s.add_open_section("notes", "free-form notes kept with the run (add keys with +notes.key=value)");
}

std::shared_ptr<Schema> make_task_schema(const std::string& task_name) {
  const TaskInfo& info = find_task(task_name);
  auto schema = std::make_shared<Schema>(info.name, info.help);
  declare_common_config(*schema);
  info.make()->declare_config(*schema);
  return schema;
}

std::string config_task_name(const std::string& path, const std::vector<std::string>& overrides) {
  for (const auto& o : overrides)
    if (o.rfind("task=", 0) == 0) return o.substr(5);
  Config raw = Config::from_file(path);
  const toml::node* t = raw.table().get("task");
  if (!t) throw ConfigError({path + ": missing the top-level key `task = \"...\"` that names the task"});
  if (!t->is_string()) throw ConfigError({raw.origin("task").str() + ": task: expected a string naming the task"});
  std::string name = t->as_string()->get();
  try {
    find_task(name);
  } catch (const ConfigError& e) {
    throw ConfigError({raw.origin("task").str() + ": " + e.what()});
  }
  return name;
}

Config load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto schema = make_task_schema(config_task_name(path, overrides));
  Config cfg = load_config(*schema, path, overrides);
  if (cfg.get_string("name").empty()) {
    std::vector<std::string> with_name = overrides;
    with_name.push_back("name=" + std::filesystem::path(path).stem().string());
    cfg = load_config(*schema, path, with_name);
  }
  return cfg;
}

int64_t budget_steps(const Config& cfg, const Task& task) {
  const int64_t accum = cfg.get_int("train.grad_accum");
  auto no = [&](const std::string& key, const std::string& why) {
    return ConfigError({cfg.origin(key).str() + ": " + key + ": task \"" + cfg.get_string("task") + "\" " + why +
                        "; use train.steps"});
  };
  if (const int64_t epochs = cfg.get_int("train.epochs"); epochs > 0) {
    const int64_t per_epoch = task.micro_batches_per_epoch();
    if (per_epoch <= 0) throw no("train.epochs", "has no epochs");
    return epochs * ((per_epoch + accum - 1) / accum);
  }
  if (const int64_t examples = cfg.get_int("train.examples"); examples > 0) {
    const int64_t per_step = task.examples_per_micro_batch() * accum;
    if (per_step <= 0) throw no("train.examples", "cannot count examples ahead");
    return std::max<int64_t>(1, (examples + per_step - 1) / per_step);
  }
  if (const int64_t frames = cfg.get_int("train.frames"); frames > 0) {
    const int64_t per_step = task.frames_per_step();
    if (per_step <= 0) throw no("train.frames", "plays no environment frames");
    return std::max<int64_t>(1, (frames + per_step - 1) / per_step);
  }
  return cfg.get_int("train.steps");
}

int64_t eval_every_steps(const Config& cfg, const Task& task) {
  if (const int64_t frames = cfg.get_int("train.eval_every_frames"); frames > 0) {
    const int64_t per_step = task.frames_per_step();
    if (per_step <= 0)
      throw ConfigError({cfg.origin("train.eval_every_frames").str() + ": train.eval_every_frames needs a task that "
                         "plays environment frames; task \"" + cfg.get_string("task") + "\" plays none"});
    return std::max<int64_t>(1, frames / per_step);
  }
  return cfg.get_int("train.eval_every");
}

bool resume_may_change(const std::string& key) {
  static const char* keys[] = {"train.steps", "train.epochs", "train.examples", "train.frames", "train.eval_every", "train.eval_every_frames", "train.checkpoint_every",
                               "train.keep_checkpoints", "train.log_every", "train.progress_every_s"};
  for (const char* k : keys)
    if (key == k) return true;
  return key.rfind("notes.", 0) == 0;
}

}  // namespace moelab::experiments
