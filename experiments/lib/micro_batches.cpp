// Micro-batches of one optimizer step: sequential batches, forwards and backwards on replicas, gradient sums.
#include "experiments/lib/micro_batches.h"

#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <limits>
#include <exception>

#include "core/autograd/autograd.h"
#include "core/ops/ops.h"

namespace moelab::experiments {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

void check_workers_supported(const Config& cfg, Device device) {
  const int64_t workers = cfg.get_int("train.workers");
  // Workers exist to keep CPU cores busy; a GPU already runs each micro-batch's ops in parallel.
  if (workers > 1 && device.is_cuda())
    throw ConfigError({cfg.origin("train.workers").str() + ": train.workers = " + std::to_string(workers) +
                       ": concurrent micro-batches run on the CPU only; use train.workers = 1 with device = \"" +
                       cfg.get_string("device") + "\""});
}

MicroBatchRunner::MicroBatchRunner(Task& task, nn::Module& model, const Config& cfg, uint64_t seed, Device device)
    : task_(task),
      model_(model),
      seed_(seed),
      device_(device),
      accum_(static_cast<int>(cfg.get_int("train.grad_accum"))),
      workers_(static_cast<int>(cfg.get_int("train.workers"))) {
  const NamedTensors params = model.named_parameters();
  for (const auto& [name, p] : params) params_.push_back(p);
  // Tests poison the loss at an exact step to exercise the non-finite guard: MOELAB_TEST_NAN_AT_STEP=N (1-based).
  if (const char* env = std::getenv("MOELAB_TEST_NAN_AT_STEP")) nan_at_step_ = std::atoll(env);
  if (workers_ == 1) return;
  check_workers_supported(cfg, device);
  for (int w = 0; w < workers_; ++w) {
    std::shared_ptr<nn::Module> replica = task_.make_model();
    replica->to(device);
    replica->share_state_with(model);
    replica->train(true);
    std::vector<Tensor> list;
    for (const auto& [name, p] : replica->named_parameters()) list.push_back(p);
    worker_params_.push_back(std::move(list));
    replicas_.push_back(std::move(replica));
  }
  // Ops inside a worker run on its thread alone (the cpu kernels and OpenBLAS go serial in a parallel region).
  omp_set_max_active_levels(1);
}

MicroBatchOutcome MicroBatchRunner::forward_backward(nn::Module& model, const nn::Batch& batch, int64_t step, int micro) {
  MicroBatchOutcome o;
  auto t0 = std::chrono::steady_clock::now();
  nn::ForwardContext ctx(batch, step, nn::forward_draw_key(seed_, step, micro));
  ctx.routing = &o.routing;
  o.result = task_.train_step(model, batch, ctx);
  if (nan_at_step_ == step + 1) o.result.loss = o.result.loss * std::numeric_limits<double>::quiet_NaN();
  const StepResult& r = o.result;
  MOELAB_CHECK(r.loss.defined() && r.loss.numel() == 1, "the task returned no scalar loss");
  o.loss = r.loss.item();
  Tensor total = r.loss;
  for (const auto& aux : ctx.aux_losses()) {
    o.aux_values.push_back(aux.value.item());
    o.aux.push_back({aux.module, aux.name, aux.value.detach(), aux.weight});
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
  std::vector<nn::Batch> batches(static_cast<size_t>(accum_));
  auto mine = [&](int micro) { return micro % shard_ranks_ == shard_rank_; };
  if (workers_ == 1) {
    for (int micro = 0; micro < accum_; ++micro) {
      nn::Batch b = task_.next_batch(step, micro);
      if (mine(micro)) out[micro] = forward_backward(model_, b.to(device_), step, micro);
    }
    return out;
  }
  std::vector<int> own;
  for (int micro = 0; micro < accum_; ++micro) {
    batches[micro] = task_.next_batch(step, micro);
    if (mine(micro)) {
      batches[micro] = batches[micro].to(device_);
      own.push_back(micro);
    }
  }
  const int n_own = static_cast<int>(own.size());
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers_));
#pragma omp parallel num_threads(workers_)
  {
    // The team may be smaller than asked (OMP_DYNAMIC): the threads present share out every micro-batch.
    const int w = omp_get_thread_num(), team = omp_get_num_threads();
    try {
      for (int i = w; i < n_own; i += team) out[own[i]] = forward_backward(*replicas_[w], batches[own[i]], step, own[i]);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  }
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
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
