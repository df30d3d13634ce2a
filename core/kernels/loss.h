#pragma once
// Per-row and per-element maths of the fused softmax + cross-entropy, shared by every backend.
// With label smoothing eps the target distribution is q = (1 - eps) one_hot(t) + eps / C.
#include <cstdint>

#include "core/kernels/hd.h"

namespace moelab::kern {

// loss = -sum_c q_c log p_c = lse - (1 - eps) x_t - (eps / C) sum_c x_c
template <typename T>
MOELAB_HD T cross_entropy_row(T lse, T x_target, T sum_x, int64_t classes, T smoothing) {
  T loss = lse - (T(1) - smoothing) * x_target;
  if (smoothing != T(0)) loss -= smoothing / T(classes) * sum_x;
  return loss;
}

// d loss / d x_c = p_c - q_c, times the row's incoming gradient
template <typename T>
MOELAB_HD T cross_entropy_grad(T p, bool is_target, int64_t classes, T smoothing, T gloss) {
  T q = smoothing / T(classes) + (is_target ? T(1) - smoothing : T(0));
  return gloss * (p - q);
}

}  // namespace moelab::kern
