#pragma once
// Tensor: shape, strides, dtype, device and a reference-counted storage; eager, PyTorch semantics.
// A Tensor is a cheap handle (one shared_ptr); views share storage. Autograd state lives in the impl.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor/device.h"
#include "core/tensor/dtype.h"
#include "core/tensor/shape.h"
#include "core/tensor/storage.h"

namespace moelab {

struct Node;
class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Strides strides;
  DType dtype = DType::f32;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;  // set on outputs of recorded ops
  std::shared_ptr<TensorImpl> grad;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device device = Device::cpu());
  // A view of existing memory with the given strides (used by kernels and loaders); shares `base`'s storage.
  static Tensor view_of(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset);

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Strides& strides() const { return impl_->strides; }
  int64_t offset() const { return impl_->offset; }
  int dim() const { return impl_->shape.size(); }
  int64_t size(int d) const;
  int64_t numel() const { return numel_of(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& o) const { return impl_->storage == o.impl_->storage; }

  // Pointer to the first element; checks the dtype matches T.
  template <typename T> T* data() const {
    MOELAB_CHECK(dtype_of<T>::value == dtype(),
                 "tensor holds " << dtype_name(dtype()) << ", accessed as " << dtype_name(dtype_of<T>::value));
    return static_cast<T*>(impl_->storage->data()) + impl_->offset;
  }
  void* raw_data() const {
    return static_cast<char*>(impl_->storage->data()) + impl_->offset * dtype_size(dtype());
  }

  // ---- autograd ----
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  Tensor& requires_grad_(bool on = true);
  Tensor grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl_->grad = g.impl_; }
  void zero_grad() { impl_->grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl_->grad_fn; }
  bool is_leaf() const { return !impl_->grad_fn; }
  // Same storage, no autograd history.
  Tensor detach() const;
  // Reverse-mode accumulation into .grad of every leaf that requires grad. `grad` defaults to 1 for a scalar.
  void backward(const Tensor& grad = Tensor()) const;

  // ---- views (share storage; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy
  Tensor view(const Shape& shape) const;     // errors when not expressible as a view
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor transpose(int d0, int d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const std::vector<int>& dims) const;
  Tensor slice(int dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int dim, int64_t index) const;  // removes `dim`
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor contiguous() const;

  // ---- conversion and access ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor clone() const;
  double item() const;  // single-element tensor -> double
  template <typename T> std::vector<T> to_vector() const;  // contiguous host copy as T
  std::string str(int max_elements = 32) const;

  // In-place helpers for optimizers and initializers (no autograd).
  Tensor& fill_(double value);
  Tensor& copy_(const Tensor& src);  // shape must match; dtype converted; devices may differ

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// The C++ type <-> DType mapping used by from_vector and to_vector.
extern template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device);
extern template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&, Device);
extern template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
extern template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
extern template std::vector<float> Tensor::to_vector<float>() const;
extern template std::vector<double> Tensor::to_vector<double>() const;
extern template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
extern template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

}  // namespace moelab
