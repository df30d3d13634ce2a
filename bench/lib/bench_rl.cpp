// `moelab bench rl CONFIG [key=value ...] [--seconds S] [--warmup-frames F] [--threads T]`: environment
// frames per second of an RL task config (dqn, pqn) including acting, replay or rollouts and every
// update, as the Trainer runs a step (experiments/lib/training_step.h), without a run directory or
// evaluations. DQN's replay-start frames (no updates) are played first, untimed. One JSON line:
//   {"bench": "rl", "config": ..., "task": ..., "game": ..., "frames": ..., "frames_per_s": ...,
//    "frames_per_cpu_s": ..., "wall_s": ..., "cpu_s": ..., "threads": ...}
// frames_per_s is wall-clock; frames_per_cpu_s divides by the process's CPU time (all threads), which a
// machine shared with other work does not inflate.
#include <omp.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/lib/bench.h"
#include "core/backend/device_select.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/training_step.h"

namespace {

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int bench_rl_main(int argc, char** argv) {
  CLI::App app{"Environment frames per second of an RL config, updates included"};
  std::string config_path;
  std::vector<std::string> overrides;
  double seconds = 10;
  int64_t warmup_frames = -1;
  int threads = 0;
  app.add_option("config", config_path, "an RL task config (task dqn or pqn)")->required()->check(CLI::ExistingFile);
  app.add_option("overrides", overrides, "key=value overrides, as for `moelab run`");
  app.add_option("--seconds", seconds, "timed wall-clock seconds (whole steps)")->check(CLI::Range(0.01, 36000.0));
  app.add_option("--warmup-frames", warmup_frames,
                 "untimed frames first (default: dqn's agent.replay_start + 1000, else one rollout's frames)");
  app.add_option("--threads", threads, "OpenMP threads (0: the config's train.threads, else OpenMP's default)");
  CLI11_PARSE(app, argc, argv);

  using namespace moelab;
  io::Config cfg = experiments::load_run_config(config_path, overrides);
  if (threads <= 0) threads = static_cast<int>(cfg.get_int("train.threads"));
  if (threads > 0) omp_set_num_threads(threads);
  threads = omp_get_max_threads();
  Device device = Device::cpu();
  try {
    device = resolve_device(cfg.get_string("device"));
  } catch (const Error& e) {
    throw io::ConfigError({cfg.origin("device").str() + ": " + e.message()});
  }
  std::unique_ptr<experiments::Task> task = experiments::find_task(cfg.get_string("task")).make();
  experiments::TaskContext ctx;
  ctx.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  ctx.device = device;
  ctx.log = [](const std::string& line) { std::cerr << line << "\n"; };
  task->build(cfg, ctx);
  const int64_t frames_per_step = task->frames_per_step();
  if (frames_per_step <= 0) {
    std::cerr << "moelab bench rl: task " << cfg.get_string("task") << " plays no environment frames\n";
    return 2;
  }
  std::shared_ptr<nn::Module> model = task->make_model();
  model->to(device);
  model->train(true);
  task->set_model(model);
  experiments::TrainingStep training(*task, *model, cfg, ctx.seed, device);
  const double lr = cfg.get_float("optim.lr");

  if (warmup_frames < 0)
    warmup_frames = cfg.get_string("task") == "dqn" ? cfg.get_int("agent.replay_start") + 1000
                                                    : cfg.get_int("env.num_envs") * cfg.get_int("agent.num_steps");
  int64_t step = 0;
  for (; step * frames_per_step < warmup_frames; ++step) training.run(step, lr);

  const int64_t first = step;
  const double cpu0 = cpu_seconds();
  const auto wall0 = std::chrono::steady_clock::now();
  double wall = 0;
  do {
    training.run(step++, lr);
    wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  } while (wall < seconds);
  const double cpu = cpu_seconds() - cpu0;
  const int64_t frames = (step - first) * frames_per_step;

  nlohmann::ordered_json j;
  j["bench"] = "rl";
  j["config"] = config_path;
  j["overrides"] = overrides;
  j["task"] = cfg.get_string("task");
  j["game"] = cfg.get_string("env.game");
  j["penultimate"] = cfg.get_string("model.penultimate");
  j["parameters"] = model->num_parameters();
  j["threads"] = threads;
  j["env_threads"] = cfg.get_int("env.threads");
  j["device"] = device.str();
  j["warmup_frames"] = first * frames_per_step;
  j["steps"] = step - first;
  j["frames"] = frames;
  j["wall_s"] = wall;
  j["cpu_s"] = cpu;
  j["frames_per_s"] = static_cast<double>(frames) / wall;
  j["frames_per_cpu_s"] = static_cast<double>(frames) / cpu;
  std::cout << j.dump() << std::endl;
  return 0;
}

moelab::bench::BenchRegistration reg{"rl", "frames per second of an RL config (dqn, pqn), updates included", &bench_rl_main};

}  // namespace
