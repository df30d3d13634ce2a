#pragma once
// The micro-batches of one optimizer step, shared by the Trainer and `moelab bench train`: batch,
// forward, loss plus weighted aux terms, backward. How train.workers runs them: docs/runner.md.
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
  // Several ranks: this rank trains only micro-batches with micro % ranks == rank (the others stay empty
  // until DistributedTraining::finish_backward fills them in); every batch is still drawn.
  void set_shard(int rank, int ranks) { shard_rank_ = rank, shard_ranks_ = ranks; }
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
  int shard_rank_ = 0, shard_ranks_ = 1;
  int64_t nan_at_step_ = -1;
};

}  // namespace moelab::experiments
