#pragma once
// Row formulas of layer normalization (biased variance, as PyTorch), shared by every backend.
#include <cmath>

#include "core/kernels/hd.h"

namespace moelab::kern {

template <typename T>
MOELAB_HD T layernorm_rstd(T var, T eps) {
  return T(1) / std::sqrt(var + eps);
}

// out = (x - mean) * rstd * gamma + beta (gamma = 1, beta = 0 when absent)
template <typename T>
MOELAB_HD T layernorm_value(T x, T mean, T rstd, T gamma, T beta) {
  return (x - mean) * rstd * gamma + beta;
}

// gx from dxhat = gy * gamma, xhat and the row means of dxhat and dxhat * xhat:
// gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
template <typename T>
MOELAB_HD T layernorm_grad_x(T dxhat, T xhat, T rstd, T mean_dxhat, T mean_dxhat_xhat) {
  return rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
}

}  // namespace moelab::kern
