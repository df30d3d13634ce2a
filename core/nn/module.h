#pragma once
// Module: the base of every layer and model: named parameters, buffers and child modules with PyTorch-style
// dotted names (`blocks.3.attn.qkv.weight`), so checkpoints map 1:1 onto PyTorch modules. docs/nn.md has
// the full contract (handles stay valid across to() and load_state_dict(); replicas share state).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/nn/context.h"
#include "core/tensor/tensor.h"

namespace moelab::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What the trainer tells every module after an optimizer step.
struct StepEnd {
  int64_t step = 0;                            // optimizer steps taken, this one included
  const moe::RoutingLog* routing = nullptr;    // the routing of the step's training forwards (all workers)
};

class Module {
 public:
  explicit Module(std::string type_name) : type_name_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- forward ----
  // The one-tensor forward of layers that need no context (Linear, LayerNorm). The default runs
  // forward(x, ctx) with an empty context (aux losses and routing are dropped).
  virtual Tensor forward(const Tensor& x);
  // The forward with its context (side inputs, draws, aux losses, routing). Modules that read the context
  // (MoE layers, attention with masks, dropout) and containers override this; the default is forward(x).
  virtual Tensor forward(const Tensor& x, ForwardContext& ctx) { return forward(x); }

  // Called by the trainer after each optimizer step on every module (parents before children) via
  // after_optimizer_step_all(); e.g. the aux-loss-free router bias update. Default: nothing.
  virtual void after_optimizer_step(const StepEnd& end) {}
  void after_optimizer_step_all(const StepEnd& end);

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
  // The dotted path of this module from the root of the tree it is registered in ("blocks.3.moe"; "" for
  // the root). Routing statistics, aux losses and draw streams are keyed by it.
  const std::string& path() const { return path_; }

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
  void set_path(const std::string& path);

  std::string type_name_, path_;
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
