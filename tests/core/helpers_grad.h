#pragma once
// Finite-difference gradient checks for ops, modules and MoE layers: float64 central differences of a
// scalar projection of f(inputs) against the gradient that backward() computes.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::test {

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct GradCheckOptions {
  double eps = 1e-6;      // central-difference step
  double tol = 1e-6;      // an element fails when |analytic - numeric| > tol * max(1, |numeric|)
  std::vector<bool> wrt;  // which inputs to check; empty = every float input
  uint64_t seed = 7;      // seeds the fixed weights w of the projection L = sum(f(x) * w)
  Device device = Device::cpu();  // where f runs: inputs are copied there for every evaluation
};

// Float inputs are cloned as float64 leaves (integer inputs, e.g. indices, pass through unchanged); f must
// accept them. The output of f (any shape) is reduced to L = sum(f(x) * w) with fixed random weights w,
// L.backward() gives the analytic gradients, and each element of each checked input is perturbed by
// +-eps for the numeric ones. Returns "" when all agree, else a message naming the input, the element,
// both values and the largest error.
std::string check_gradients(const TensorFn& f, std::vector<Tensor> inputs, double tol = 1e-6);
std::string check_gradients(const TensorFn& f, std::vector<Tensor> inputs, const GradCheckOptions& options);

}  // namespace moelab::test
