#pragma once
// Gradient clipping by global norm (torch.nn.utils.clip_grad_norm_).
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::optim {

// The L2 norm of all defined gradients of `params`, taken together.
double global_grad_norm(const std::vector<Tensor>& params);
// Scales every gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm; returns the
// norm before clipping. A non-finite norm leaves the gradients unchanged (the caller may skip the step).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace moelab::optim
