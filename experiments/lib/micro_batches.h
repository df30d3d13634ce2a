#pragma once
// The micro-batches of one optimizer step, shared by the Trainer and `moelab bench train`: for each, the
// task's batch, its forward on a model (the trained one or a worker's replica), the loss plus Σ weight·aux
// (divided by train.grad_accum) and its backward.
//
// With train.workers = W > 1 the micro-batches run concurrently on W OpenMP threads, worker w taking
// micro-batches w, w+W, ... on its own replica (nn::Module::share_state_with); ops inside a worker run
// single-threaded. The replicas' gradients are summed into the parameters in worker order, so for
// W = grad_accum the sums are the same floating-point operations as on one thread. Draws come from the
// forward context, keyed by (seed, step, micro-batch), so they do not depend on the worker either.
#include <memory>
#include <vector>

#include "experiments/lib/task.h"

namespace moelab::experiments {

struct MicroBatchOutcome {
  StepResult result;
  double loss = 0;                   // result.loss.item()
  std::vector<nn::AuxLoss> aux;      // the forward's aux losses (values detached)
  std::vector<double> aux_values;    // aux[i].value.item()
  moe::RoutingLog routing;           // the forward's routing tallies
  double forward_s = 0, backward_s = 0;
};

// ConfigError at train.workers when workers are asked for on a CUDA device.
void check_workers_supported(const Config& cfg, Device device);

class MicroBatchRunner {
 public:
  // Reads train.grad_accum and train.workers; builds one replica of `model` per worker (task.make_model()).
  MicroBatchRunner(Task& task, nn::Module& model, const Config& cfg, uint64_t seed, Device device);
  // Runs every micro-batch of optimizer step `step`; gradients accumulate into the model's .grad.
  std::vector<MicroBatchOutcome> run(int64_t step);
  int workers() const { return workers_; }
  int grad_accum() const { return accum_; }

 private:
  MicroBatchOutcome forward_backward(nn::Module& model, const nn::Batch& batch, int64_t step, int micro);
  void sum_worker_gradients();

  Task& task_;
  nn::Module& model_;
  uint64_t seed_;
  Device device_;
  std::vector<std::shared_ptr<nn::Module>> replicas_;  // one per worker when workers > 1
  std::vector<Tensor> params_;
  std::vector<std::vector<Tensor>> worker_params_;  // [worker][parameter], same order as params_
  int accum_ = 1, workers_ = 1;
  int64_t nan_at_step_ = -1;
};

}  // namespace moelab::experiments
