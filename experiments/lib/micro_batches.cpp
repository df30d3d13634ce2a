#include "experiments/lib/micro_batches.h"

#include <omp.h>

#include <chrono>
#include <exception>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::experiments {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void check_workers_supported(const Task& task, const Config& cfg, Device device) {
  const int64_t workers = cfg.get_int("train.workers");
  if (workers == 1) return;
  const std::string where = cfg.origin("train.workers").str() + ": train.workers = " + std::to_string(workers);
  if (!task.supports_workers())
    throw ConfigError({where + ": task \"" + cfg.get_string("task") +
                       "\" does not run concurrent micro-batches; use train.workers = 1"});
  // Workers exist to keep CPU cores busy; a GPU already runs each micro-batch's ops in parallel.
  if (device.is_cuda())
    throw ConfigError({where + ": concurrent micro-batches run on the CPU only; use train.workers = 1 with device = \"" +
                       cfg.get_string("device") + "\""});
}

MicroBatchRunner::MicroBatchRunner(Task& task, const Config& cfg, const NamedTensors& params)
    : task_(task),
      accum_(static_cast<int>(cfg.get_int("train.grad_accum"))),
      workers_(static_cast<int>(cfg.get_int("train.workers"))) {
  for (const auto& [name, p] : params) params_.push_back(p);
  if (workers_ == 1) return;
  check_workers_supported(task_, cfg, Device::cpu());
  task_.start_workers(workers_);
  for (int w = 0; w < workers_; ++w) {
    NamedTensors replica = task_.worker_parameters(w);
    MOELAB_CHECK(replica.size() == params.size(), "worker " << w << " has " << replica.size() << " parameters, the model "
                                                            << params.size());
    std::vector<Tensor> list;
    for (size_t i = 0; i < replica.size(); ++i) {
      MOELAB_CHECK(replica[i].first == params[i].first && replica[i].second.shape() == params[i].second.shape(),
                   "worker " << w << " parameter " << i << " is " << replica[i].first << ", the model's "
                             << params[i].first);
      list.push_back(replica[i].second);
    }
    worker_params_.push_back(std::move(list));
  }
  // Ops inside a worker run on its thread alone (the cpu kernels and OpenBLAS go serial in a parallel region).
  omp_set_max_active_levels(1);
}

MicroBatchOutcome MicroBatchRunner::forward_backward(int64_t step, int micro, int worker) {
  MicroBatchOutcome o;
  auto t0 = std::chrono::steady_clock::now();
  o.result = workers_ > 1 ? task_.worker_step(step, micro, worker) : task_.train_step(step, micro);
  const StepResult& r = o.result;
  MOELAB_CHECK(r.loss.defined() && r.loss.numel() == 1, "the task returned no scalar loss");
  o.loss = r.loss.item();
  Tensor total = r.loss;
  for (const auto& aux : r.aux_losses) {
    o.aux_values.push_back(aux.value.item());
    if (aux.weight != 0) total = total + aux.value * aux.weight;
  }
  if (accum_ > 1) total = total * (1.0 / accum_);
  o.forward_s = seconds_since(t0);
  auto t1 = std::chrono::steady_clock::now();
  total.backward();
  o.backward_s = seconds_since(t1);
  return o;
}

std::vector<MicroBatchOutcome> MicroBatchRunner::run(int64_t step) {
  std::vector<MicroBatchOutcome> out(static_cast<size_t>(accum_));
  if (workers_ == 1) {
    for (int micro = 0; micro < accum_; ++micro) out[micro] = forward_backward(step, micro, 0);
    return out;
  }
  for (int micro = 0; micro < accum_; ++micro) task_.prepare_micro_batch(step, micro);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers_));
#pragma omp parallel num_threads(workers_)
  {
    // The team may be smaller than asked (OMP_DYNAMIC): the threads present share out every micro-batch.
    const int w = omp_get_thread_num(), team = omp_get_num_threads();
    try {
      for (int micro = w; micro < accum_; micro += team) out[micro] = forward_backward(step, micro, w);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  task_.end_worker_steps();
  sum_worker_gradients();
  return out;
}

void MicroBatchRunner::sum_worker_gradients() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor sum = params_[i].grad();
    for (auto& worker : worker_params_) {
      Tensor g = worker[i].grad();
      if (!g.defined()) continue;
      sum = sum.defined() ? add(sum, g) : g;  // worker 0's gradient is handed over, not copied
      worker[i].zero_grad();
    }
    if (sum.defined()) params_[i].set_grad(sum);
  }
}

}  // namespace moelab::experiments
