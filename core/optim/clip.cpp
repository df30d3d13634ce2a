// Gradient clipping by global norm.
#include "core/optim/clip.h"

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/ops/ops.h"

namespace moelab::optim {

double global_grad_norm(const std::vector<Tensor>& params) {
  double total = 0;
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (g.defined()) total += backend_for(g.device()).sum_squares(g);
  }
  return std::sqrt(total);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  MOELAB_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got " << max_norm);
  double norm = global_grad_norm(params);
  double coef = max_norm / (norm + 1e-6);
  if (std::isfinite(norm) && coef < 1.0) {
    NoGradGuard ng;
    for (const auto& p : params) {
      Tensor g = p.grad();
      if (g.defined()) const_cast<Tensor&>(p).set_grad(mul(g, coef));
    }
  }
  return norm;
}

}  // namespace moelab::optim
