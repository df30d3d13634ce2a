#pragma once
// Reverse-mode autograd: ops record Nodes with backward closures and a tape position; backward() runs
// the reachable nodes in reverse tape order, with recording off (docs/architecture.md §2).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab {

struct Node {
  uint64_t seq = 0;            // tape position
  const char* op = "";         // op name, for error messages
  std::vector<Tensor> inputs;  // differentiable inputs (may include ones that do not require grad)
  // grad_out -> one gradient per input (undefined where the input needs none)
  std::function<std::vector<Tensor>(const Tensor& grad_out)> backward;
};

bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording for its lifetime (evaluation, acting in RL, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when an op on these inputs must be recorded.
bool needs_grad(std::initializer_list<const Tensor*> inputs);

// Marks `out` as produced by `op` from `inputs` with the given backward closure (no-op when grad is off
// or no input requires grad). Closures must capture detached tensors (x.detach()) to avoid cycles.
void record(Tensor& out, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward);

// Runs backward from `root` (see Tensor::backward).
void run_backward(const Tensor& root, const Tensor& grad);
// Runs one backward from several roots (e.g. a layer's output with its gradient and a scalar aux loss):
// each node runs once, with the sum of what reaches it. grads[i] undefined: roots[i] must be a scalar (1).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads);

}  // namespace moelab
