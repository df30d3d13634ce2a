#pragma once
// The micro-batches of one optimizer step, shared by the Trainer and `moelab bench train`: for each,
// the task's forward, the loss plus Σ weight·aux (divided by train.grad_accum) and its backward.
//
// With train.workers = W > 1 the micro-batches run concurrently on W OpenMP threads, worker w taking
// micro-batches w, w+W, ... on its own model replica (Task::start_workers); every op inside a worker
// runs single-threaded. Small models gain most: one thread per half batch keeps both cores busy where
// splitting each small op across threads costs more in wake-ups than it saves. The replicas' gradients
// are summed into the parameters in worker order, so for W = grad_accum the sums are the same floating-
// point operations as on one thread (bitwise the same result unless routing noise or dropout draw).
#include <vector>

#include "experiments/lib/task.h"

namespace moelab::experiments {

struct MicroBatchOutcome {
  StepResult result;
  double loss = 0;                 // result.loss.item()
  std::vector<double> aux_values;  // result.aux_losses[i].value.item()
  double forward_s = 0, backward_s = 0;
};

// ConfigError at train.workers when it asks for workers the task does not support, or on a CUDA device.
void check_workers_supported(const Task& task, const Config& cfg, Device device);

class MicroBatchRunner {
 public:
  // Reads train.grad_accum and train.workers; throws ConfigError at train.workers when the task cannot
  // run concurrent micro-batches.
  MicroBatchRunner(Task& task, const Config& cfg, const NamedTensors& params);
  // Runs every micro-batch of optimizer step `step`; gradients accumulate into the parameters' .grad.
  std::vector<MicroBatchOutcome> run(int64_t step);
  int workers() const { return workers_; }
  int grad_accum() const { return accum_; }

 private:
  MicroBatchOutcome forward_backward(int64_t step, int micro, int worker);
  void sum_worker_gradients();

  Task& task_;
  std::vector<Tensor> params_;
  std::vector<std::vector<Tensor>> worker_params_;  // [worker][parameter], same order as params_
  int accum_ = 1, workers_ = 1;
};

}  // namespace moelab::experiments
