// The optimizer base: parameter tracking, the step loop and the strict state dict.
#include "core/optim/optimizer.h"

#include <map>
#include <set>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"

namespace moelab::optim {

Optimizer::Optimizer(const NamedTensors& params, double lr, std::string type_name)
    : lr_(lr), type_name_(std::move(type_name)) {
  MOELAB_CHECK(lr >= 0, type_name_ << ": learning rate must be >= 0, got " << lr);
  std::set<std::string> names;
  for (const auto& [name, p] : params) {
    MOELAB_CHECK(p.defined(), type_name_ << ": parameter '" << name << "' is undefined");
    if (!p.requires_grad()) continue;
    MOELAB_CHECK(p.is_leaf(), type_name_ << ": parameter '" << name << "' is not a leaf tensor");
    MOELAB_CHECK(is_floating(p.dtype()), type_name_ << ": parameter '" << name << "' is not float");
    MOELAB_CHECK(names.insert(name).second, type_name_ << ": parameter name '" << name << "' appears twice");
    params_.push_back({name, p, 0, 1.0, -1.0, {}});
  }
}

void Optimizer::add_state(const std::string& buffer_name) {
  for (auto& s : params_)
    s.buffers.emplace_back(buffer_name, Tensor::zeros(s.param.shape(), s.param.dtype(), s.param.device()));
}

void Optimizer::step() {
  NoGradGuard ng;
  for (auto& s : params_) {
    Tensor g = s.param.grad();
    if (!g.defined()) continue;
    MOELAB_CHECK(g.shape() == s.param.shape() && g.dtype() == s.param.dtype() && g.device() == s.param.device(),
                 type_name_ << ": gradient of '" << s.name << "' is " << g.shape().str() << " "
                            << dtype_name(g.dtype()) << ", parameter is " << s.param.shape().str() << " "
                            << dtype_name(s.param.dtype()));
    MOELAB_CHECK(s.param.is_contiguous(), type_name_ << ": parameter '" << s.name << "' is not contiguous");
    ++s.step;
    update(s, g.contiguous());
  }
  ++steps_;
}

void Optimizer::zero_grad() {
  for (auto& s : params_) s.param.zero_grad();
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  out.emplace_back("step", Tensor::scalar(static_cast<double>(steps_), DType::i64));
  for (const auto& s : params_) {
    out.emplace_back(s.name + ".step", Tensor::scalar(static_cast<double>(s.step), DType::i64));
    for (const auto& [b, t] : s.buffers) out.emplace_back(s.name + "." + b, t.detach());
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [n, t] : state) given.emplace(n, &t);
  NamedTensors own = state_dict();
  std::set<std::string> own_names;
  std::ostringstream problems;
  for (const auto& [n, t] : own) {
    own_names.insert(n);
    auto it = given.find(n);
    if (it == given.end())
      problems << "\n  missing: " << n;
    else if (it->second->shape() != t.shape())
      problems << "\n  shape mismatch: " << n << " expects " << t.shape().str() << ", got "
               << it->second->shape().str();
  }
  for (const auto& [n, t] : state)
    if (!own_names.count(n)) problems << "\n  unexpected: " << n;
  std::string p = problems.str();
  MOELAB_CHECK(p.empty(), type_name_ << ".load_state_dict: the state does not match the optimizer:" << p);
  NoGradGuard ng;
  steps_ = static_cast<int64_t>(given.at("step")->item());
  for (auto& s : params_) {
    s.step = static_cast<int64_t>(given.at(s.name + ".step")->item());
    for (auto& [b, t] : s.buffers) t.copy_(*given.at(s.name + "." + b));
  }
}

void Optimizer::set_param_group(const std::string& name, double lr_scale, double weight_decay) {
  for (auto& s : params_)
    if (s.name == name) {
      MOELAB_CHECK(lr_scale >= 0, type_name_ << ": parameter group of " << name << ": lr_scale must be >= 0");
      s.lr_scale = lr_scale;
      s.weight_decay = weight_decay;
      return;
    }
  MOELAB_FAIL(type_name_ << ": no trained parameter named '" << name << "'");
}

// ---- SGD ----
SGD::SGD(const NamedTensors& params, const SgdOptions& o) : Optimizer(params, o.lr, "SGD"), options(o) {
  MOELAB_CHECK(o.momentum >= 0, "SGD: momentum must be >= 0, got " << o.momentum);
  MOELAB_CHECK(!o.nesterov || o.momentum > 0, "SGD: nesterov needs momentum > 0");
  if (o.momentum > 0) add_state("momentum_buffer");
}

void SGD::update(ParamState& s, const Tensor& grad) {
  Tensor empty;
  Tensor& buf = s.buffers.empty() ? empty : s.buffer(0);
  backend_for(s.param.device())
      .sgd_update(s.param, grad, buf, lr_of(s), options.momentum, decay_of(s, options.weight_decay), options.nesterov,
                  s.step == 1);
}

// ---- AdamW ----
AdamW::AdamW(const NamedTensors& params, const AdamWOptions& o) : Optimizer(params, o.lr, "AdamW"), options(o) {
  MOELAB_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1,
               "AdamW: betas must be in [0, 1), got (" << o.beta1 << ", " << o.beta2 << ")");
  add_state("exp_avg");
  add_state("exp_avg_sq");
}

void AdamW::update(ParamState& s, const Tensor& grad) {
  double wd = decay_of(s, options.no_decay_for_vectors && s.param.dim() < 2 ? 0.0 : options.weight_decay);
  AdamWParams h{lr_of(s), options.beta1, options.beta2, options.eps, wd, s.step};
  backend_for(s.param.device()).adamw_update(s.param, grad, s.buffer(0), s.buffer(1), h);
}

// ---- RMSprop ----
RMSprop::RMSprop(const NamedTensors& params, const RmspropOptions& o)
    : Optimizer(params, o.lr, "RMSprop"), options(o) {
  MOELAB_CHECK(o.alpha >= 0 && o.alpha < 1, "RMSprop: alpha must be in [0, 1), got " << o.alpha);
  add_state("square_avg");
  if (o.centered) add_state("grad_avg");
}

void RMSprop::update(ParamState& s, const Tensor& grad) {
  Tensor empty;
  Tensor& grad_avg = options.centered ? s.buffer(1) : empty;
  backend_for(s.param.device())
      .rmsprop_update(s.param, grad, s.buffer(0), grad_avg, lr_of(s), options.alpha, options.eps,
                      decay_of(s, options.weight_decay), options.centered);
}

}  // namespace moelab::optim
