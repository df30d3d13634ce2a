#pragma once
// Optimizers with PyTorch semantics and per-parameter state: SGD, AdamW and RMSprop; the per-element
// maths is in core/kernels/optim.h. Usage and the rules for parameters without a gradient: docs/nn.md.
#include <cstdint>
#include <string>
#include <vector>

#include "core/nn/module.h"

namespace moelab::optim {

using nn::NamedTensors;

class Optimizer {
 public:
  Optimizer(const NamedTensors& params, double lr, std::string type_name);
  virtual ~Optimizer() = default;

  // One update of every parameter that has a gradient (no autograd recording).
  void step();
  // Drops every tracked parameter's gradient.
  void zero_grad();
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  int64_t steps_taken() const { return steps_; }  // calls to step()
  const std::string& type_name() const { return type_name_; }
  size_t num_params() const { return params_.size(); }
  // A parameter group: this parameter's learning rate is lr() * lr_scale, and its weight decay `weight_decay`
  // (< 0: the optimizer's). Throws for an unknown name.
  void set_param_group(const std::string& name, double lr_scale, double weight_decay);

  // "step" (i64, calls to step()) and, per parameter, "<name>.step" and "<name>.<state>" (exp_avg,
  // exp_avg_sq, momentum_buffer, square_avg, grad_avg) with the parameter's dotted name.
  NamedTensors state_dict() const;
  // Strict: the same names and shapes as state_dict(); errors list every offending name.
  void load_state_dict(const NamedTensors& state);

 protected:
  struct ParamState {
    std::string name;
    Tensor param;
    int64_t step = 0;
    double lr_scale = 1.0, weight_decay = -1.0;  // the parameter group's (weight_decay < 0: the optimizer's)
    std::vector<std::pair<std::string, Tensor>> buffers;  // named state, same shape/dtype/device as param
    Tensor& buffer(size_t i) { return buffers[i].second; }
  };
  // Adds a zero state buffer named `buffer_name` to every parameter (call from the constructor).
  void add_state(const std::string& buffer_name);
  // Updates one parameter whose grad is defined; s.step is already incremented.
  virtual void update(ParamState& s, const Tensor& grad) = 0;
  double lr_of(const ParamState& s) const { return lr_ * s.lr_scale; }
  static double decay_of(const ParamState& s, double fallback) { return s.weight_decay >= 0 ? s.weight_decay : fallback; }

  std::vector<ParamState> params_;
  double lr_;

 private:
  std::string type_name_;
  int64_t steps_ = 0;
};

struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double weight_decay = 0.0;  // L2, added to the gradient
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(const NamedTensors& params, const SgdOptions& options);
  SgdOptions options;

 protected:
  void update(ParamState& s, const Tensor& grad) override;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // decoupled: p *= 1 - lr * weight_decay
  // When set, parameters with fewer than 2 dimensions (biases, norm gains) get no weight decay.
  bool no_decay_for_vectors = false;
};
class AdamW : public Optimizer {
 public:
  AdamW(const NamedTensors& params, const AdamWOptions& options);
  AdamWOptions options;

 protected:
  void update(ParamState& s, const Tensor& grad) override;
};

struct RmspropOptions {
  double lr = 1e-2;
  double alpha = 0.99;  // smoothing constant of the square average
  double eps = 1e-8;    // added outside the square root
  double weight_decay = 0.0;
  bool centered = false;  // divide by the estimated std (subtracts grad_avg^2)
};
class RMSprop : public Optimizer {
 public:
  RMSprop(const NamedTensors& params, const RmspropOptions& options);
  RmspropOptions options;

 protected:
  void update(ParamState& s, const Tensor& grad) override;
};

}  // namespace moelab::optim
