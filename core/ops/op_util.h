#pragma once
// Helpers shared by the op definitions in core/ops/*.cpp.
#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/tensor/tensor.h"

namespace moelab::detail {

// Same device for all defined inputs; returns that device's backend.
Backend& backend_of(std::initializer_list<const Tensor*> xs, const char* op);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_float(const Tensor& x, const char* op);
inline Tensor empty_like(const Tensor& x) { return Tensor::empty(x.shape(), x.dtype(), x.device()); }
inline Tensor zeros_like(const Tensor& x) { return Tensor::zeros(x.shape(), x.dtype(), x.device()); }

}  // namespace moelab::detail
