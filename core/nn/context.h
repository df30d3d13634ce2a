#pragma once
// The context of one forward pass: the batch's side inputs, the optimizer step, this forward's random draws
// (keyed by module path, so replicas and workers draw the same), and where aux losses and routing go.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/nn/batch.h"
#include "core/util/rng.h"

namespace moelab::moe {
class RoutingLog;
}

namespace moelab::nn {

class Module;

// A balancing term or other auxiliary loss. `value` is the raw 0-d term (logged as is); the trainer adds
// weight * value to the task loss.
struct AuxLoss {
  std::string module;  // the path of the module that added it ("blocks.3.moe"); "" for the model
  std::string name;    // the term ("switch_loss", "z_loss")
  Tensor value;
  double weight = 1.0;
  // "blocks.3.moe.switch_loss"
  std::string full_name() const { return module.empty() ? name : module + "." + name; }
};

// sum_i weight_i * value_i (a 0-d tensor), or an undefined Tensor when there are no terms.
Tensor total_aux_loss(const std::vector<AuxLoss>& terms);

class ForwardContext {
 public:
  // An empty batch, step 0, draw key 0: for tests and one-off forwards.
  ForwardContext() : batch_(&empty_) {}
  // `batch` must outlive the context. draw_key: the key of this forward's draws (the trainer derives it
  // from the seed, the step and the micro-batch).
  explicit ForwardContext(const Batch& batch, int64_t step = 0, uint64_t draw_key = 0)
      : batch_(&batch), step_(step), draw_key_(draw_key) {}
  ForwardContext(const ForwardContext&) = delete;
  ForwardContext& operator=(const ForwardContext&) = delete;

  const Batch& batch() const { return *batch_; }
  // Swaps the side inputs (a tower of a two-tower model sees its own part); returns the previous batch.
  const Batch& set_batch(const Batch& batch) {
    const Batch& prev = *batch_;
    batch_ = &batch;
    return prev;
  }
  // Optimizer steps taken so far (schedules inside layers, e.g. router temperature annealing).
  int64_t step() const { return step_; }
  uint64_t draw_key() const { return draw_key_; }

  // The stream of `module`'s draws in this forward: keyed by (draw key, module path); a module that draws
  // twice in one forward continues its stream.
  RngStream& rng(const Module& module);

  void add_aux_loss(const Module& module, std::string name, Tensor value, double weight);
  const std::vector<AuxLoss>& aux_losses() const { return aux_; }
  Tensor total_aux_loss() const { return nn::total_aux_loss(aux_); }

  // Where MoE layers tally their routing (core/moe/routing_stats.h); null: not collected.
  moe::RoutingLog* routing = nullptr;

 private:
  Batch empty_;
  const Batch* batch_;
  int64_t step_ = 0;
  uint64_t draw_key_ = 0;
  std::map<std::string, RngStream> streams_;
  std::vector<AuxLoss> aux_;
};

// Runs `forward` with `batch` as the context's side inputs, restoring the previous batch afterwards.
template <typename F> auto with_batch(ForwardContext& ctx, const Batch& batch, F&& forward) {
  struct Restore {
    ForwardContext& c;
    const Batch& prev;
    ~Restore() { c.set_batch(prev); }
  } restore{ctx, ctx.set_batch(batch)};
  return forward();
}

// The draw key of one forward: training micro-batch `micro` of optimizer step `step`, or an evaluation.
uint64_t forward_draw_key(uint64_t seed, int64_t step, int64_t micro);
uint64_t evaluation_draw_key(uint64_t seed, int64_t step);

}  // namespace moelab::nn
