// `moelab bench train CONFIG [key=value ...] [--steps N] [--warmup W] [--threads T] [--device D] [--dtype T]`:
// the cost of one
// training step of any task config, as the Trainer runs it (micro-batches with their balancing terms,
// backward, gradient clipping, optimizer update, after-step hooks: experiments/lib/training_step.h) on the
// config's device, without a run directory.
// Prints a table and one JSON line:
//   {"bench": "train", "config": ..., "threads": 2, "steps": 20, "ms_per_step": ..., "images_per_s": ...,
//    "forward_ms": ..., "backward_ms": ..., "optimizer_ms": ..., "cpu_ms_per_step": ..., plus the device,
//    CPU model and ISA (or GPU), the parameters' dtype and the peak memory of the timed steps}
// forward/backward/optimizer split the step (with train.workers > 1, forward and backward are each
// worker's share); cpu_ms_per_step sums every thread's CPU time, so a machine
// shared with other work shows up as wall time well above cpu time / threads.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/lib/bench.h"
#include "bench/lib/bench_machine.h"
#include "core/backend/device_select.h"
#include "core/ops/ops.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/training_step.h"

namespace {

using Clock = std::chrono::steady_clock;
using moelab::Tensor;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct StepTimes {
  double forward = 0, backward = 0, optimizer = 0, total = 0;
  int64_t examples = 0;
};

int bench_train_main(int argc, char** argv) {
  CLI::App app{"Milliseconds per training step and examples (images) per second of a config"};
  std::string config_path;
  std::vector<std::string> overrides;
  int steps = 20, warmup = 3, threads = 0;
  std::string device_flag, dtype_flag;
  app.add_option("config", config_path, "experiment config (TOML)")->required()->check(CLI::ExistingFile);
  app.add_option("overrides", overrides, "key=value overrides, as for `moelab run`");
  app.add_option("--steps", steps, "timed optimizer steps")->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", warmup, "untimed steps first (allocator and caches)")->check(CLI::Range(0, 1000000));
  app.add_option("--threads", threads, "OpenMP threads (0: the config's train.threads, else OpenMP's default)");
  app.add_option("--device", device_flag, "run on this device instead of the config's (cpu, cuda, cuda:N)");
  app.add_option("--dtype", dtype_flag, "the parameters' dtype to expect (the config's precision: f32)");
  CLI11_PARSE(app, argc, argv);

  using namespace moelab;
  std::vector<std::string> all_overrides = overrides;
  if (!device_flag.empty()) all_overrides.push_back("device=" + device_flag);  // as a config key: validated there
  io::Config cfg = experiments::load_run_config(config_path, all_overrides);
  if (threads <= 0) threads = static_cast<int>(cfg.get_int("train.threads"));
  if (threads > 0) omp_set_num_threads(threads);
  threads = omp_get_max_threads();

  // The config's device, as `moelab run` resolves it (a config error when absent).
  Device device = Device::cpu();
  try {
    device = resolve_device(cfg.get_string("device"));
  } catch (const Error& e) {
    throw io::ConfigError({cfg.origin("device").str() + ": " + e.message()});
  }
  set_cuda_allow_tf32(cfg.get_bool("train.allow_tf32"));
  std::unique_ptr<experiments::Task> task = experiments::find_task(cfg.get_string("task")).make();
  experiments::TaskContext ctx;
  ctx.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  ctx.device = device;
  ctx.log = [](const std::string& line) { std::cerr << line << "\n"; };
  task->build(cfg, ctx);
  std::shared_ptr<nn::Module> model = task->make_model();
  model->to(device);
  model->train(true);
  task->set_model(model);
  const int64_t num_params = model->num_parameters();
  DType dtype = DType::f32;
  for (auto& [name, p] : model->named_parameters()) {
    dtype = p.dtype();
    break;
  }
  if (!dtype_flag.empty()) {
    DType want = bench::parse_bench_dtype(dtype_flag);
    if (want != dtype) {
      std::fprintf(stderr, "moelab bench train: --dtype %s, but %s trains with %s parameters\n", dtype_flag.c_str(),
                   config_path.c_str(), std::string(dtype_name(dtype)).c_str());
      return 2;
    }
  }
  experiments::TrainingStep training(*task, *model, cfg, ctx.seed, device);
  const int workers = training.workers();

  auto one_step = [&](int64_t step) {
    StepTimes t;
    const auto t0 = Clock::now();
    experiments::StepOutcome o = training.run(step, cfg.get_float("optim.lr"));
    backend_for(device).synchronize();
    // With workers the micro-batches overlap: forward and backward are each worker's share of the step.
    for (const auto& m : o.micro) {
      t.forward += m.forward_s / workers;
      t.backward += m.backward_s / workers;
      t.examples += m.result.examples;
    }
    t.optimizer = o.optimizer_s;
    t.total = since(t0);
    return t;
  };

  for (int i = 0; i < warmup; ++i) one_step(i);
  std::vector<double> totals;
  StepTimes sum;
  bench::reset_peak_memory(device);
  const double cpu0 = cpu_seconds();
  const auto wall0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    StepTimes t = one_step(warmup + i);
    totals.push_back(t.total);
    sum.forward += t.forward;
    sum.backward += t.backward;
    sum.optimizer += t.optimizer;
    sum.examples += t.examples;
  }
  const double wall = since(wall0), cpu = cpu_seconds() - cpu0;
  const uint64_t peak = bench::peak_memory_bytes(device);
  std::sort(totals.begin(), totals.end());
  const double ms = 1e3 * wall / steps, median_ms = 1e3 * totals[totals.size() / 2], min_ms = 1e3 * totals.front();

  std::printf("config            %s\n", config_path.c_str());
  std::printf("task              %s, %lld parameters, %d threads, %d worker%s, device %s\n",
              cfg.get_string("task").c_str(), static_cast<long long>(num_params), threads, workers,
              workers > 1 ? "s" : "", device.str().c_str());
  std::printf("ms per step       %.2f (median %.2f, min %.2f) over %d steps after %d warmup\n", ms, median_ms, min_ms,
              steps, warmup);
  std::printf("  forward         %.2f ms\n  backward        %.2f ms\n  optimizer       %.2f ms\n",
              1e3 * sum.forward / steps, 1e3 * sum.backward / steps, 1e3 * sum.optimizer / steps);
  std::printf("examples per s    %.1f (%lld per step)\n", static_cast<double>(sum.examples) / wall,
              static_cast<long long>(sum.examples / steps));
  std::printf("cpu ms per step   %.2f (%.2f cores busy on average)\n", 1e3 * cpu / steps, cpu / wall);
  std::printf("machine           %s\n", bench::machine_line(device, dtype).c_str());
  std::printf("peak memory       %.1f MiB (%s)\n", double(peak) / (1 << 20),
              device.is_cuda() ? "allocator pool high-water mark" : "peak RSS of the process");

  nlohmann::ordered_json j;
  j["bench"] = "train";
  j["config"] = config_path;
  j["overrides"] = overrides;
  j["task"] = cfg.get_string("task");
  j["parameters"] = num_params;
  j["threads"] = threads;
  j["workers"] = workers;
  const nlohmann::ordered_json machine = nlohmann::ordered_json::parse("{" + bench::machine_json(device, dtype, peak) + "}");
  j.update(machine);
  j["steps"] = steps;
  j["ms_per_step"] = ms;
  j["median_ms_per_step"] = median_ms;
  j["min_ms_per_step"] = min_ms;
  j["images_per_s"] = static_cast<double>(sum.examples) / wall;
  j["forward_ms"] = 1e3 * sum.forward / steps;
  j["backward_ms"] = 1e3 * sum.backward / steps;
  j["optimizer_ms"] = 1e3 * sum.optimizer / steps;
  j["cpu_ms_per_step"] = 1e3 * cpu / steps;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

moelab::bench::BenchRegistration reg{"train", "ms per training step and images/s of a config (any task)",
                                     &bench_train_main};

}  // namespace
