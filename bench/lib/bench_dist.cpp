// `moelab bench dist`: all-reduce and all-to-all bandwidth of the job's communicator at several message
// sizes; run it under `mpirun -np N ./build/moelab bench dist` (one process measures local copies).
// Each figure is the median over repeats of the slowest rank's time (ranks start together after a
// barrier). Rank 0 prints one JSON line per (collective, size):
//   {"bench": "dist", "collective": "all_reduce", "communicator": "mpi", "ranks": 2, "bytes": ...,
//    "ms": ..., "algbw_gbs": bytes / time, "busbw_gbs": ..., "mpi_allreduce_ms": ...}
// busbw is the traffic each rank puts on its link per second: all_reduce moves 2 (N-1)/N of the buffer,
// all_to_all (N-1)/N of it (the own block stays). For all_reduce the MPI build also times MPI_Allreduce on
// the same buffer (sum, order left to MPI) to show what the fixed rank order costs.
// With --train CONFIG it times instead one training step of the config on the job's ranks, as `moelab run`
// trains it under mpirun (experiments/lib/distributed_training.h), and the bytes each rank sends per step:
//   {"bench": "dist", "collective": "train_step", "ranks": 2, "expert_parallel": 1, "ms_per_step": ...,
//    "exchange_ms": ..., "gradient_bytes": ..., "gradient_bytes_sent": ..., "expert_all_to_all_bytes_sent": ...}
// exchange_ms: the ranks' median time in the gradient all-reduce and results exchange after backward, the
// largest over ranks (it includes waiting for a slower rank's backward) and the smallest (the last rank to
// arrive waits least: about the communication alone).
#ifdef MOELAB_HAVE_MPI
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>
#endif

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/lib/bench.h"
#include "core/backend/device_select.h"
#include "core/dist/communicator.h"
#include "core/moe/expert_parallel.h"
#include "experiments/lib/distributed_training.h"
#include "experiments/lib/run_config.h"
#include "experiments/lib/training_step.h"

namespace moelab::bench {
namespace {


struct Options {
  std::vector<int64_t> sizes{int64_t(1) << 12, int64_t(1) << 16, int64_t(1) << 20, int64_t(1) << 24,
                             int64_t(1) << 26};
  int repeats = 9, warmup = 2;
  std::string device = "cpu";
  std::string train_config;             // --train: time training steps of this config instead
  std::vector<std::string> overrides;   // --set key=value
};

void usage(const char* argv0) {
  std::printf(
      "usage: [mpirun -np N] %s [--bytes B1,B2,...] [--repeats R] [--warmup W] [--device cpu|cuda:K]\n"
      "  All-reduce (sum, f32) and variable all-to-all (f32, equal blocks) of the job's communicator at each\n"
      "  size in bytes (default 4 KiB, 64 KiB, 1 MiB, 16 MiB, 64 MiB). Rank 0 prints one JSON line per case:\n"
      "  ms (median over repeats of the slowest rank), algbw_gbs = bytes / time, busbw_gbs = per-rank link\n"
      "  traffic per second (all_reduce: 2 (N-1)/N bytes, all_to_all: (N-1)/N bytes), and for all_reduce\n"
      "  under MPI mpi_allreduce_ms (MPI_Allreduce on the same buffer). --device cuda:K uses NCCL when built.\n"
      "  --train CONFIG [--set key=value ...]: instead, the median ms of a training step of CONFIG on the job's\n"
      "  ranks (slowest rank; --repeats steps after --warmup) and the bytes each rank sends per step.\n",
      argv0);
}

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--bytes") {
      o.sizes = parse_int_list(value());
      if (o.sizes.empty()) throw std::runtime_error("--bytes needs at least one size");
      for (int64_t b : o.sizes)
        if (b < 4) throw std::runtime_error("--bytes: " + std::to_string(b) + " is below one f32 element");
    } else if (a == "--repeats") {
      o.repeats = std::stoi(value());
    } else if (a == "--warmup") {
      o.warmup = std::stoi(value());
    } else if (a == "--device") {
      o.device = value();
    } else if (a == "--train") {
      o.train_config = value();
    } else if (a == "--set") {
      o.overrides.push_back(value());
    } else if (a == "-h" || a == "--help") {
      usage(argv[0]);
      return false;
    } else {
      throw std::runtime_error("unknown option '" + a + "' (see --help)");
    }
  }
  if (o.repeats < 1) throw std::runtime_error("--repeats must be at least 1");
  return true;
}

// Median over repeats of the slowest rank's time for fn (every rank starts after a barrier).
template <typename F> double time_collective(dist::Communicator& comm, const Options& o, F&& fn) {
  for (int i = 0; i < o.warmup; ++i) fn();
  std::vector<double> slowest;
  for (int i = 0; i < o.repeats; ++i) {
    comm.barrier();
    double t0 = now_s();
    fn();
    Tensor sync = Tensor::zeros({1}, DType::f32, comm.device());  // a device communicator finishes its stream
    (void)sync.to(Device::cpu());
    std::vector<double> all = comm.all_gather(std::vector<double>{now_s() - t0});
    slowest.push_back(*std::max_element(all.begin(), all.end()));
  }
  return median(slowest);
}

void print_line(dist::Communicator& comm, const char* collective, int64_t bytes, double s, double bus_factor,
                const std::string& extra) {
  if (comm.rank() != 0) return;
  std::printf(
      "{\"bench\": \"dist\", \"collective\": \"%s\", \"communicator\": \"%s\", \"ranks\": %d, \"bytes\": %ld, "
      "\"ms\": %.4f, \"algbw_gbs\": %.3f, \"busbw_gbs\": %.3f%s}\n",
      collective, comm.name().c_str(), comm.size(), long(bytes), s * 1e3, bytes / s / 1e9,
      bytes / s / 1e9 * bus_factor, extra.c_str());
  std::fflush(stdout);
}

void run(const Options& o) {
  Device device = Device::parse(o.device);
  dist::Communicator& comm = dist::communicator_for(device);
  const int n = comm.size();
  for (int64_t bytes : o.sizes) {
    const int64_t elems = bytes / 4;
    Tensor x = Tensor::full({elems}, 1.0, DType::f32, device);
    double s = time_collective(comm, o, [&] { comm.all_reduce_sum(x); });
    std::string extra;
#ifdef MOELAB_HAVE_MPI
    if (comm.name() == "mpi") {
      std::vector<float> a(elems, 1.f), b(elems);
      double m = time_collective(comm, o, [&] {
        MPI_Allreduce(a.data(), b.data(), static_cast<int>(elems), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      });
      char buf[64];
      std::snprintf(buf, sizeof buf, ", \"mpi_allreduce_ms\": %.4f", m * 1e3);
      extra = buf;
    }
#endif
    print_line(comm, "all_reduce", elems * 4, s, 2.0 * (n - 1) / n, extra);

    const int64_t block = elems / n;  // rows of one element: block elements to every rank
    Tensor y = Tensor::full({block * n}, 1.0, DType::f32, device);
    std::vector<int64_t> counts(n, block);
    std::vector<int64_t> recv = comm.exchange_counts(counts);
    double t = time_collective(comm, o, [&] { (void)comm.all_to_all_v(y, counts, recv); });
    print_line(comm, "all_to_all", block * n * 4, t, double(n - 1) / n, "");
  }
}

// One training step of a config on the job's ranks, as the Trainer runs it, and what it communicates.
void run_train(const Options& o) {
  using namespace experiments;
  Config cfg = load_run_config(o.train_config, o.overrides);
  if (const int64_t threads = cfg.get_int("train.threads"); threads > 0) omp_set_num_threads(static_cast<int>(threads));
  const Device device = resolve_device(cfg.get_string("device"));
  std::unique_ptr<Task> task = find_task(cfg.get_string("task")).make();
  TaskContext ctx;
  ctx.seed = static_cast<uint64_t>(cfg.get_int("seed"));
  ctx.device = device;
  ctx.log = [](const std::string&) {};
  task->build(cfg, ctx);
  std::shared_ptr<nn::Module> model = task->make_model();
  model->to(device);
  model->train(true);
  task->set_model(model);
  DistributedTraining dist(cfg, device);
  dist.attach_moe_layers(*model, cfg);
  TrainingStep training(*task, *model, cfg, ctx.seed, device);
  training.set_distributed(&dist);
  dist.broadcast_model(*model);
  dist::Communicator& comm = dist.comm();
  const int n = comm.size();
  int64_t step = 0, gradient_bytes = 0, examples = 0;
  std::vector<double> exchange_ms;  // this rank's time in the gradient all-reduce and results exchange
  auto one_step = [&] {
    StepOutcome out = training.run(step++, cfg.get_float("optim.lr"));
    gradient_bytes = out.all_reduce_bytes;
    exchange_ms.push_back(out.exchange_s * 1e3);
    examples = 0;
    for (const auto& m : out.micro) examples += m.result.examples;
  };
  for (int i = 0; i < o.warmup; ++i) one_step();
  moe::reset_expert_parallel_bytes();
  exchange_ms.clear();
  Options timed = o;
  timed.warmup = 0;  // done above, before the byte counter was reset
  const double s = time_collective(comm, timed, one_step);
  std::vector<int64_t> ep{moe::expert_parallel_bytes_sent() / o.repeats};
  ep = comm.all_gather(ep);
  const std::vector<double> exchange = comm.all_gather(std::vector<double>{median(exchange_ms)});
  if (comm.rank() != 0) return;
  std::printf(
      "{\"bench\": \"dist\", \"collective\": \"train_step\", \"config\": \"%s\", \"communicator\": \"%s\", "
      "\"ranks\": %d, \"expert_parallel\": %d, \"parameters\": %lld, \"examples_per_step\": %lld, \"ms_per_step\": %.3f, "
      "\"exchange_ms\": %.3f, \"exchange_ms_min\": %.3f, \"gradient_bytes\": %lld, \"gradient_bytes_sent\": %lld, \"expert_all_to_all_bytes_sent\": %lld}\n",
      o.train_config.c_str(), comm.name().c_str(), n, dist.expert_parallel(), static_cast<long long>(model->num_parameters()),
      static_cast<long long>(examples), s * 1e3, *std::max_element(exchange.begin(), exchange.end()),
      *std::min_element(exchange.begin(), exchange.end()),
      static_cast<long long>(gradient_bytes),
      static_cast<long long>(gradient_bytes * 2 * (n - 1) / n), static_cast<long long>(*std::max_element(ep.begin(), ep.end())));
  std::fflush(stdout);
}

int bench_dist_main(int argc, char** argv) {
  Options o;
  try {
    if (!parse(argc, argv, o)) return 0;
    if (!o.train_config.empty()) run_train(o);
    else run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moelab bench dist: %s\n", e.what());
    if (dist::world_is_distributed()) dist::abort_job(e.what());
    return 2;
  }
  return 0;
}

BenchRegistration reg{"dist", "all-reduce and all-to-all bandwidth of the communicator (run under mpirun -np N)",
                      &bench_dist_main};

}  // namespace
}  // namespace moelab::bench
