// Module: registration, recursive traversal, modes, device/dtype moves and strict state dicts.
#include "core/nn/module.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/nn/tensor_file.h"
#include "core/ops/ops.h"

namespace moelab::nn {

Tensor Module::forward(const Tensor& x) {
  // Modules that define only the context form run with an empty context (aux losses and routing dropped).
  // The two defaults call each other: a module that overrides neither is caught here.
  thread_local const Module* entered = nullptr;
  MOELAB_CHECK(entered != this, type_name_ << " defines neither forward(x) nor forward(x, ctx)");
  struct Reset {
    const Module* prev;
    ~Reset() { entered = prev; }
  } reset{entered};
  entered = this;
  ForwardContext ctx;
  return forward(x, ctx);
}

void Module::after_optimizer_step_all(const StepEnd& end) {
  for (auto& [path, m] : named_modules()) m->after_optimizer_step(end);
}

void Module::set_path(const std::string& path) {
  path_ = path;
  for (auto& [name, child] : children_) child->set_path(path.empty() ? name : path + "." + name);
}

void Module::check_new_name(const std::string& name, const char* what) const {
  MOELAB_CHECK(!name.empty() && name.find('.') == std::string::npos,
               type_name_ << ": " << what << " name '" << name << "' must be non-empty and contain no '.'");
  auto taken = [&](const auto& list) {
    for (const auto& e : list)
      if (e.first == name) return true;
    return false;
  };
  MOELAB_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_),
               type_name_ << ": name '" << name << "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name, "parameter");
  MOELAB_CHECK(value.defined(), type_name_ << ": parameter '" << name << "' is undefined");
  MOELAB_CHECK(is_floating(value.dtype()), type_name_ << ": parameter '" << name << "' must be float, got "
                                                      << dtype_name(value.dtype()));
  // A parameter is a leaf: cut any history the initializer left.
  Tensor leaf = value.is_leaf() ? value : value.detach();
  leaf.requires_grad_(requires_grad);
  params_.emplace_back(name, leaf);
  return leaf;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name, "buffer");
  MOELAB_CHECK(value.defined(), type_name_ << ": buffer '" << name << "' is undefined");
  Tensor b = value.detach();
  buffers_.emplace_back(name, b);
  return b;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name, "module");
  MOELAB_CHECK(module, type_name_ << ": module '" << name << "' is null");
  module->train(training_);
  module->set_path(path_.empty() ? name : path_ + "." + name);
  children_.emplace_back(name, std::move(module));
}

void Module::replace_module(const std::string& name, std::shared_ptr<Module> module) {
  MOELAB_CHECK(module, type_name_ << ": replacement for module '" << name << "' is null");
  for (auto& [n, m] : children_)
    if (n == name) {
      module->train(training_);
      module->set_path(path_.empty() ? name : path_ + "." + name);
      m = std::move(module);
      return;
    }
  MOELAB_FAIL(type_name_ << ": no child module '" << name << "' to replace");
}

void ModuleList::add(std::shared_ptr<Module> module) {
  register_module(std::to_string(children().size()), std::move(module));
}

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
  for (const auto& [n, m] : children_) m->collect(prefix + n + ".", params, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out{{"", const_cast<Module*>(this)}};
  for (const auto& [n, m] : children_)
    for (auto& [p, sub] : m->named_modules()) out.emplace_back(p.empty() ? n : n + "." + p, sub);
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  std::ostringstream names;
  for (const auto& [n, m] : children_) {
    if (n == name) return m;
    names << " " << n;
  }
  MOELAB_FAIL(type_name_ << " has no child module '" << name << "'; children:" << names.str());
}

Tensor Module::tensor(const std::string& dotted_name) const {
  for (const auto& list : {named_parameters(), named_buffers()})
    if (const Tensor* t = find_tensor(list, dotted_name)) return *t;
  MOELAB_FAIL(type_name_ << " has no parameter or buffer '" << dotted_name << "'");
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, m] : children_) m->train(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

namespace {
// Points t's impl at `moved`'s storage: every handle sharing the impl sees the new data.
void retarget(const Tensor& t, const Tensor& moved) {
  TensorImpl* impl = t.impl();
  impl->storage = moved.storage();
  impl->offset = moved.offset();
  impl->strides = moved.strides();
  impl->dtype = moved.dtype();
  impl->grad.reset();
}
}  // namespace

void Module::to(Device device) {
  NoGradGuard ng;
  for (const auto& list : {named_parameters(), named_buffers()})
    for (const auto& [n, t] : list)
      if (t.device() != device) retarget(t, t.detach().to(device));
}

void Module::to(DType dtype) {
  MOELAB_CHECK(is_floating(dtype), type_name_ << ".to(" << dtype_name(dtype) << "): only float dtypes");
  NoGradGuard ng;
  for (const auto& list : {named_parameters(), named_buffers()})
    for (const auto& [n, t] : list)
      if (is_floating(t.dtype()) && t.dtype() != dtype) retarget(t, cast(t.detach(), dtype).contiguous());
}

void Module::share_state_with(const Module& source) {
  for (bool params : {true, false}) {
    NamedTensors mine = params ? named_parameters() : named_buffers();
    NamedTensors theirs = params ? source.named_parameters() : source.named_buffers();
    const char* what = params ? "parameters" : "buffers";
    MOELAB_CHECK(mine.size() == theirs.size(), type_name_ << ".share_state_with: " << mine.size() << " " << what
                                                          << " here, " << theirs.size() << " in the source");
    for (size_t i = 0; i < mine.size(); ++i) {
      const auto& [name, t] = mine[i];
      const auto& [source_name, s] = theirs[i];
      MOELAB_CHECK(name == source_name && t.shape() == s.shape() && t.dtype() == s.dtype(),
                   type_name_ << ".share_state_with: " << what << " differ at " << name << " " << t.shape().str()
                              << " " << dtype_name(t.dtype()) << " vs " << source_name << " " << s.shape().str()
                              << " " << dtype_name(s.dtype()));
      retarget(t, s);
    }
  }
}

std::string Module::summary() const {
  std::ostringstream os;
  for (const auto& [path, m] : named_modules()) {
    int depth = path.empty() ? 0 : 1 + static_cast<int>(std::count(path.begin(), path.end(), '.'));
    os << std::string(2 * depth, ' ') << (path.empty() ? "" : path + " ") << "(" << m->type_name() << ")";
    for (const auto& [n, t] : m->params_) os << " " << n << t.shape().str();
    for (const auto& [n, t] : m->buffers_) os << " [" << n << t.shape().str() << "]";
    os << "\n";
  }
  os << "parameters: " << num_parameters() << "\n";
  return os.str();
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters();
  for (auto& e : named_buffers()) out.push_back(std::move(e));
  for (auto& [n, t] : out) t = t.detach();
  return out;
}

void Module::load_state_dict(const NamedTensors& state) {
  NamedTensors own = named_parameters();
  for (auto& e : named_buffers()) own.push_back(std::move(e));
  std::map<std::string, const Tensor*> given;
  std::ostringstream problems;
  for (const auto& [n, t] : state)
    if (!given.emplace(n, &t).second) problems << "\n  duplicate: " << n;
  std::set<std::string> own_names;
  for (const auto& [n, t] : own) {
    own_names.insert(n);
    auto it = given.find(n);
    if (it == given.end()) {
      problems << "\n  missing: " << n << " " << t.shape().str();
    } else if (it->second->shape() != t.shape()) {
      problems << "\n  shape mismatch: " << n << " expects " << t.shape().str() << ", got "
               << it->second->shape().str();
    }
  }
  for (const auto& [n, t] : state)
    if (!own_names.count(n)) problems << "\n  unexpected: " << n << " " << t.shape().str();
  std::string p = problems.str();
  MOELAB_CHECK(p.empty(), type_name_ << ".load_state_dict: the state does not match the module:" << p);
  NoGradGuard ng;
  for (auto& [n, t] : own) {
    Tensor dst = t.detach();
    dst.copy_(*given.at(n));
  }
}

void Module::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  save_tensors(path, state_dict(), metadata);
}

void Module::load(const std::string& path) {
  try {
    load_state_dict(load_tensors(path));
  } catch (const Error& e) {
    MOELAB_FAIL("loading " << path << ": " << e.what());
  }
}

}  // namespace moelab::nn
