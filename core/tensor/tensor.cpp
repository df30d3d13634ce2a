#include "core/tensor/tensor.h"

#include <cstring>
#include <sstream>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/ops/ops.h"

namespace moelab {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) MOELAB_CHECK(d >= 0, "negative dimension in shape " << shape.str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (t.numel() > 0) backend_for(device).fill(t, value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full(Shape{}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  Tensor t = empty(Shape{n}, dtype, Device::cpu());
  dispatch_dtype(dtype, [&]<typename T>() {
    T* p = t.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(i);
  });
  return t.to(device);
}

template <typename T> Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device device) {
  MOELAB_CHECK(static_cast<int64_t>(values.size()) == numel_of(shape),
               "from_vector: " << values.size() << " values for shape " << shape.str());
  Tensor t = empty(shape, dtype_of<T>::value, Device::cpu());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t.to(device);
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&, Device);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&, Device);
template Tensor Tensor::from_vector<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&, Device);

Tensor Tensor::view_of(const Tensor& base, const Shape& shape, const Strides& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl_->storage;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int d) const { return impl_->shape[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

Tensor& Tensor::requires_grad_(bool on) {
  MOELAB_CHECK(!on || is_floating(dtype()), "only float tensors can require grad, got " << dtype_name(dtype()));
  impl_->requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  Tensor d = view_of(*this, shape(), strides(), offset());
  return d;
}

void Tensor::backward(const Tensor& grad) const { run_backward(*this, grad); }

Tensor Tensor::reshape(const Shape& s) const { return moelab::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const {
  MOELAB_CHECK(is_contiguous(), "view" << s.str() << " of a non-contiguous tensor " << shape().str()
                                       << "; use reshape() (which copies) instead");
  return moelab::reshape(*this, s);
}
Tensor Tensor::flatten(int start_dim, int end_dim) const {
  if (dim() == 0) return reshape(Shape{1});
  int s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  Shape ns;
  for (int i = 0; i < s; ++i) ns.push_back(shape()[i]);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= shape()[i];
  ns.push_back(m);
  for (int i = e + 1; i < dim(); ++i) ns.push_back(shape()[i]);
  return reshape(ns);
}
Tensor Tensor::transpose(int d0, int d1) const { return moelab::transpose(*this, d0, d1); }
Tensor Tensor::permute(const std::vector<int>& dims) const { return moelab::permute(*this, dims); }
Tensor Tensor::slice(int d, int64_t start, int64_t end, int64_t step) const {
  return moelab::slice(*this, d, start, end, step);
}
Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  int64_t n = shape()[d];
  if (index < 0) index += n;
  MOELAB_CHECK(index >= 0 && index < n, "select: index " << index << " out of range for dim of size " << n);
  return slice(d, index, index + 1).squeeze(d);
}
Tensor Tensor::expand(const Shape& s) const { return moelab::expand(*this, s); }
Tensor Tensor::unsqueeze(int d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(d, 1);
  return reshape(s);
}
Tensor Tensor::squeeze(int d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape();
  s.erase(d);
  return reshape(s);
}
Tensor Tensor::contiguous() const { return is_contiguous() ? *this : moelab::contiguous(*this); }

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor src = contiguous();
  Tensor out = empty(shape(), dtype(), device);
  if (numel() > 0) (device.is_cuda() ? backend_for(device) : backend_for(this->device())).copy_across(src, out);
  return out;
}

Tensor Tensor::to(DType t) const { return t == dtype() ? *this : cast(*this, t); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  if (numel() > 0) backend_for(device()).copy(*this, out);
  return out;
}

double Tensor::item() const {
  MOELAB_CHECK(numel() == 1, "item() needs a single-element tensor, got shape " << shape().str());
  Tensor h = to(Device::cpu());
  return dispatch_dtype(dtype(), [&]<typename T>() { return static_cast<double>(*h.data<T>()); });
}

template <typename T> std::vector<T> Tensor::to_vector() const {
  Tensor h = to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  std::vector<T> v(static_cast<size_t>(numel()));
  if (!v.empty()) std::memcpy(v.data(), h.raw_data(), v.size() * sizeof(T));
  return v;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

std::string Tensor::str(int max_elements) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor" << shape().str() << " " << dtype_name(dtype()) << " " << device().str() << " [";
  std::vector<double> v = to_vector<double>();
  for (size_t i = 0; i < v.size() && static_cast<int>(i) < max_elements; ++i) os << (i ? ", " : "") << v[i];
  if (static_cast<int>(v.size()) > max_elements) os << ", ...";
  os << "]";
  return os.str();
}

Tensor& Tensor::fill_(double value) {
  if (numel() == 0) return *this;
  if (is_contiguous()) {
    backend_for(device()).fill(*this, value);
  } else {
    Tensor src = full(shape(), value, dtype(), device());
    backend_for(device()).copy(src, *this);
  }
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  MOELAB_CHECK(src.shape() == shape(), "copy_: source shape " << src.shape().str() << " != " << shape().str());
  if (numel() == 0) return *this;
  Tensor s = src.device() == device() ? src : src.to(device());
  backend_for(device()).copy(s, *this);
  return *this;
}

}  // namespace moelab
