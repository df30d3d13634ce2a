#pragma once
// One optimizer step exactly as the Trainer runs it, shared with `moelab bench train`: the micro-batches
// (micro_batches.h), the non-finite guard, gradient clipping, the optimizer update with parameter groups,
// then every module's after_optimizer_step (with the step's routing) and the task's.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/optim/optimizer.h"
#include "experiments/lib/micro_batches.h"

namespace moelab::experiments {

class DistributedTraining;

// Thrown when a non-finite value is found with train.on_non_finite = "stop"; what() names the step and the
// first offending tensor.
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

// The optimizer the config names (optim.*), with optim.param_groups applied. ConfigError at
// optim.param_groups for a pattern that matches no parameter.
std::unique_ptr<optim::Optimizer> make_optimizer(const Config& cfg, const NamedTensors& params);

struct StepOutcome {
  std::vector<MicroBatchOutcome> micro;
  moe::RoutingLog routing;   // every micro-batch's routing, merged in order
  double grad_norm = 0;      // before clipping
  double optimizer_s = 0;
  int64_t all_reduce_bytes = 0;  // gradient bytes this rank handed to all-reduce (several ranks)
  double exchange_s = 0;         // wall time of the gradient all-reduce and results exchange (several ranks)
  bool skipped = false;      // a non-finite value with train.on_non_finite = "skip": no update was made
  std::string skip_reason;
};

class TrainingStep {
 public:
  TrainingStep(Task& task, nn::Module& model, const Config& cfg, uint64_t seed, Device device);
  // Runs optimizer step `step` (0-based) at learning rate `lr`.
  StepOutcome run(int64_t step, double lr);

  // Several ranks: this rank trains its share of the micro-batches and the gradients are summed over ranks
  // before clipping (distributed_training.h); `dist` must outlive this.
  void set_distributed(const DistributedTraining* dist);
  optim::Optimizer& optimizer() { return *optimizer_; }
  const NamedTensors& params() const { return params_; }
  int workers() const { return micro_batches_.workers(); }
  int grad_accum() const { return micro_batches_.grad_accum(); }

 private:
  // "" when every value is finite, else what is not (and the first offending parameter).
  std::string non_finite(const StepOutcome& o, double norm, int64_t step) const;

  Task& task_;
  nn::Module& model_;
  NamedTensors params_;
  std::vector<Tensor> param_list_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  MicroBatchRunner micro_batches_;
  double clip_ = 0;
  bool skip_non_finite_ = false;
  const DistributedTraining* dist_ = nullptr;
};

}  // namespace moelab::experiments
