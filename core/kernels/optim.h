#pragma once
// Per-element optimizer updates shared by the ref, cpu and cuda backends (PyTorch semantics).
// The per-step scalars are computed once on the host (the *_coeffs functions), the loops call the
// MOELAB_HD bodies with them.
#include <cmath>
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab::kern {

// AdamW (decoupled weight decay, bias-corrected), as torch.optim.AdamW:
//   p *= 1 - lr*wd;  m = lerp(m, g, 1-b1);  v = b2 v + (1-b2) g^2;
//   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
template <typename T> struct AdamWCoeffs {
  T decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bias_correction2_sqrt, eps;
};
template <typename T>
inline AdamWCoeffs<T> adamw_coeffs(double lr, double beta1, double beta2, double eps, double weight_decay,
                                   int64_t step) {
  double bc1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  double bc2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  return {T(1.0 - lr * weight_decay), T(1.0 - beta1), T(beta2), T(1.0 - beta2), T(lr / bc1), T(std::sqrt(bc2)),
          T(eps)};
}
template <typename T> MOELAB_HD void adamw_element(T& p, T g, T& m, T& v, const AdamWCoeffs<T>& c) {
  p = p * c.decay;
  m = m + c.one_minus_beta1 * (g - m);
  v = c.beta2 * v + c.one_minus_beta2 * g * g;
  T denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
  p = p - c.step_size * (m / denom);
}

// SGD with momentum (dampening 0), as torch.optim.SGD:
//   g += wd p;  buf = first ? g : momentum buf + g;  g = nesterov ? g + momentum buf : buf;  p -= lr g
// With momentum == 0 the buffer is not touched (it may be empty).
template <typename T> struct SgdCoeffs {
  T lr, momentum, weight_decay;
  bool nesterov, first_step;
};
template <typename T> MOELAB_HD void sgd_element(T& p, T g, T* buf, const SgdCoeffs<T>& c) {
  g = g + c.weight_decay * p;
  if (c.momentum != T(0)) {
    T b = c.first_step ? g : c.momentum * *buf + g;
    *buf = b;
    g = c.nesterov ? g + c.momentum * b : b;
  }
  p = p - c.lr * g;
}

// RMSprop (no momentum), as torch.optim.RMSprop; eps is added outside the square root:
//   g += wd p;  sq = alpha sq + (1-alpha) g^2;
//   centered: ga = lerp(ga, g, 1-alpha), avg = sqrt(sq - ga^2) + eps;  else avg = sqrt(sq) + eps
//   p -= lr g / avg
template <typename T> struct RmspropCoeffs {
  T lr, alpha, one_minus_alpha, eps, weight_decay;
  bool centered;
};
template <typename T> MOELAB_HD void rmsprop_element(T& p, T g, T& square_avg, T* grad_avg, const RmspropCoeffs<T>& c) {
  g = g + c.weight_decay * p;
  square_avg = c.alpha * square_avg + c.one_minus_alpha * g * g;
  T avg;
  if (c.centered) {
    T ga = *grad_avg + c.one_minus_alpha * (g - *grad_avg);
    *grad_avg = ga;
    avg = std::sqrt(square_avg - ga * ga) + c.eps;
  } else {
    avg = std::sqrt(square_avg) + c.eps;
  }
  p = p - c.lr * (g / avg);
}

}  // namespace moelab::kern
