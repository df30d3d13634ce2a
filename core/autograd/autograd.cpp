#include "core/autograd/autograd.h"

#include <algorithm>
#include <atomic>
#include <unordered_map>
#include <unordered_set>

#include "core/ops/ops.h"

namespace moelab {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_tape_position{0};
}  // namespace

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : inputs)
    if (t && t->defined() && t->requires_grad()) return true;
  return false;
}

void record(Tensor& out, const char* op, std::vector<Tensor> inputs,
            std::function<std::vector<Tensor>(const Tensor&)> backward) {
  if (!g_grad_enabled) return;
  bool any = false;
  for (auto& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return;
  auto node = std::make_shared<Node>();
  node->seq = g_tape_position.fetch_add(1, std::memory_order_relaxed);
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  out.impl()->grad_fn = std::move(node);
  out.impl()->requires_grad = true;
}

namespace {
// Nothing but this handle can reach g's memory (no other handle, view or saved closure shares its
// storage): a leaf's .grad may then take g itself instead of a copy.
bool sole_owner(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.offset() == 0 && g.is_contiguous() &&
         !g.grad_fn();
}

void accumulate(Tensor& slot, const Tensor& g) {
  if (!slot.defined())
    slot = g.is_contiguous() ? g : g.contiguous();
  else
    slot = add(slot, g);
}
}  // namespace

void run_backward(const Tensor& root, const Tensor& grad) { run_backward(std::vector<Tensor>{root}, {grad}); }

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads) {
  MOELAB_CHECK(roots.size() == root_grads.size(),
               "backward(): " << roots.size() << " roots but " << root_grads.size() << " gradients");
  NoGradGuard no_grad;
  std::unordered_map<Node*, Tensor> grads;
  std::vector<Node*> stack;
  std::unordered_set<Node*> seen;
  for (size_t r = 0; r < roots.size(); ++r) {
    const Tensor& root = roots[r];
    MOELAB_CHECK(root.defined() && root.requires_grad(),
                 "backward() on a tensor that does not require grad (was it computed under NoGradGuard?)");
    Tensor g0 = root_grads[r];
    if (!g0.defined()) {
      MOELAB_CHECK(root.numel() == 1, "backward() without a gradient needs a scalar, got " << root.shape().str());
      g0 = Tensor::ones(root.shape(), root.dtype(), root.device());
    }
    MOELAB_CHECK(g0.shape() == root.shape(), "backward(): gradient shape " << g0.shape().str() << " != "
                                                                           << root.shape().str());
    if (!root.grad_fn()) {  // a leaf: its .grad gets its own storage (the caller may reuse `grad`)
      Tensor slot = root.grad();
      if (slot.defined()) accumulate(slot, g0);
      else slot = g0.clone();
      root.impl()->grad = slot.impl_ptr();
      continue;
    }
    accumulate(grads[root.grad_fn().get()], g0);
    if (seen.insert(root.grad_fn().get()).second) stack.push_back(root.grad_fn().get());
  }
  // Collect the nodes reachable from the roots, then run them in reverse tape order.
  std::vector<Node*> order;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (auto& in : n->inputs) {
      if (!in.defined() || !in.requires_grad() || !in.grad_fn()) continue;
      Node* c = in.grad_fn().get();
      if (seen.insert(c).second) stack.push_back(c);
    }
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->seq > b->seq; });
  std::unordered_map<TensorImpl*, std::pair<Tensor, Tensor>> leaf_grads;  // leaf -> (leaf, its gradient)
  for (Node* n : order) {
    auto it = grads.find(n);
    if (it == grads.end()) continue;
    Tensor gout = std::move(it->second);
    grads.erase(it);
    std::vector<Tensor> gin = n->backward(gout);
    MOELAB_CHECK(gin.size() == n->inputs.size(), "backward of '" << n->op << "' returned " << gin.size()
                                                                  << " gradients for " << n->inputs.size()
                                                                  << " inputs");
    for (size_t i = 0; i < gin.size(); ++i) {
      const Tensor& in = n->inputs[i];
      if (!gin[i].defined() || !in.defined() || !in.requires_grad()) continue;
      MOELAB_CHECK(gin[i].shape() == in.shape(), "backward of '" << n->op << "': gradient " << i << " has shape "
                                                                 << gin[i].shape().str() << ", input has "
                                                                 << in.shape().str());
      if (in.grad_fn()) {
        accumulate(grads[in.grad_fn().get()], gin[i]);
      } else {
        auto [it, first] = leaf_grads.try_emplace(in.impl(), in, gin[i]);
        if (!first) accumulate(it->second.second, gin[i]);
      }
    }
  }
  // This backward's gradient of each leaf is complete before it is added to .grad, so that .grad =
  // earlier + (this backward's sum) whichever thread ran the earlier backwards (train.workers).
  for (auto& [impl, entry] : leaf_grads) {
    auto& [leaf, g] = entry;
    Tensor slot = leaf.grad();
    // Leaf gradients get their own storage: gradients passed through (add, views) may alias others,
    // and optimizers modify .grad in place (clipping). A gradient nothing else can see is taken as it is.
    slot = slot.defined() ? add(slot, g) : sole_owner(g) ? g : g.clone();
    impl->grad = slot.impl_ptr();
  }
}

}  // namespace moelab
