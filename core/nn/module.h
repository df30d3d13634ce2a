#pragma once
// Module: the base of every layer and model. A module owns named parameters (leaf tensors that require
// grad), named buffers (state that is saved but not trained, e.g. router biases) and named child
// modules. Names compose PyTorch-style: a parameter `weight` of child `qkv` of child `attn` of list
// element 3 of `blocks` is `blocks.3.attn.qkv.weight`, so checkpoints map 1:1 onto PyTorch modules.
//
//   class Mine : public Module {
//    public:
//     Mine(RngStream& rng) : Module("Mine") {
//       fc = register_module("fc", std::make_shared<Linear>(4, 8, true, rng));
//       scale = register_parameter("scale", Tensor::ones({8}));
//     }
//     Tensor forward(const Tensor& x) override { return fc->forward(x) * scale; }
//     std::shared_ptr<Linear> fc;
//     Tensor scale;
//   };
//
// Handles stay valid: a registered Tensor shares its TensorImpl with the registry, and to(Device),
// to(DType) and load_state_dict() change the tensors in place (same TensorImpl), so members, the
// registry and optimizer references all see the change.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor/tensor.h"

namespace moelab::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// ---- what a forward pass may return besides its output (the FFN / MoE interface) ----
//
// A balancing term or other auxiliary loss. `value` is the raw term (a 0-d differentiable tensor, logged
// as is); `weight` is its coefficient. The trainer adds weight * value to the task loss (see
// total_aux_loss), so every term can be logged separately from the loss it contributes to.
struct AuxLoss {
  std::string name;  // e.g. "load_balance", "router_z"; prefixed with the module path by containers
  Tensor value;
  double weight = 1.0;
};

// The output of forward_aux(): the main output plus auxiliary losses and statistics.
// `stats` are detached diagnostics (e.g. per-expert load (E), expert ids (N, k), dropped fraction as a
// 0-d tensor): nothing flows back through them; routing monitors and loggers read them by name.
struct ForwardOutput {
  Tensor y;
  std::vector<AuxLoss> aux_losses;
  NamedTensors stats;

  // Appends `inner`'s aux losses and stats with names prefixed by `prefix` + "." (nothing when empty).
  void absorb(std::string_view prefix, ForwardOutput&& inner);
};

// sum_i weight_i * value_i (a 0-d tensor), or an undefined Tensor when there are no terms.
Tensor total_aux_loss(const std::vector<AuxLoss>& terms);

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- forward ----
  // The one-tensor forward. Modules with other signatures (Embedding takes ids) add their own overloads;
  // the default throws an error naming the module type.
  virtual Tensor forward(const Tensor& x);
  // Forward that may also return auxiliary losses and statistics. Containers (TransformerBlock) call
  // this on their pluggable children. The default wraps forward(x) with no extras; an MoE layer
  // overrides it (and implements forward(x) as forward_aux(x).y).
  virtual ForwardOutput forward_aux(const Tensor& x) { return {forward(x), {}, {}}; }

  // Called by the trainer after each optimizer step, on every module (parents before children) via
  // after_optimizer_step_all(); e.g. the aux-loss-free router bias update. Default: nothing.
  virtual void after_optimizer_step() {}
  void after_optimizer_step_all();

  // ---- registration (call from the constructor) ----
  // Registers `value` under `name` (no dots) and returns the handle stored. Parameters become leaves
  // with requires_grad = true (false for frozen ones).
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <typename M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  // Replaces a registered child (same name), e.g. swapping the dense FFN for an MoE layer.
  void replace_module(const std::string& name, std::shared_ptr<Module> module);

  // ---- access (recursive, in registration order: own tensors first, then each child) ----
  std::vector<Tensor> parameters() const;
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  // Every module below this one with its dotted path; this module itself is first with path "".
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  // A direct child by name (throws naming the existing children when absent).
  std::shared_ptr<Module> child(const std::string& name) const;
  // A parameter or buffer by dotted path (throws when absent).
  Tensor tensor(const std::string& dotted_name) const;
  const std::string& type_name() const { return type_name_; }

  // ---- modes and utilities ----
  // Sets the training flag on this module and all descendants.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  int64_t num_parameters() const;  // elements in all parameters
  // Moves / converts parameters and buffers in place (handles stay valid; float buffers only for dtype).
  void to(Device device);
  void to(DType dtype);
  // Makes this module a replica of `source` (same architecture: same names, shapes, dtypes, checked):
  // every parameter and buffer is re-pointed at source's storage, so both compute with the same weights
  // and see every in-place update, while gradients and per-forward state (routing records) stay apart.
  // Used by concurrent micro-batches (train.workers), one replica per worker.
  void share_state_with(const Module& source);
  // A readable tree: "name (Type): param shapes".
  std::string summary() const;

  // ---- state ----
  // Parameters then buffers with dotted names; the tensors are detached handles sharing storage.
  NamedTensors state_dict() const;
  // Strict: every name must be present, no extra names, shapes must match. Values are copied into the
  // existing tensors (converted to their dtype and device). Errors list every offending name.
  void load_state_dict(const NamedTensors& state);
  // safetensors with PyTorch names (core/nn/tensor_file.h); `metadata` goes to __metadata__.
  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;
  void load(const std::string& path);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name, const char* what) const;
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

// An ordered list of modules named "0", "1", ... (PyTorch nn.ModuleList).
class ModuleList : public Module {
 public:
  ModuleList() : Module("ModuleList") {}
  void push_back(std::shared_ptr<Module> module) { add(std::move(module)); }
  size_t size() const { return children().size(); }
  Module& operator[](size_t i) const { return *children().at(i).second; }
  template <typename M> std::shared_ptr<M> at(size_t i) const {
    auto p = std::dynamic_pointer_cast<M>(children().at(i).second);
    MOELAB_CHECK(p, "ModuleList element " << i << " is a " << children().at(i).second->type_name()
                                          << ", not the requested type");
    return p;
  }

 private:
  void add(std::shared_ptr<Module> module);
};

}  // namespace moelab::nn
