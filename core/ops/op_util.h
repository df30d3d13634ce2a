#pragma once
// Helpers shared by the op definitions in core/ops/*.cpp.
#include <optional>

#include "core/autograd/autograd.h"
#include "core/backend/backend.h"
#include "core/tensor/tensor.h"

namespace moelab {
struct AttentionMask;  // ops.h
}

namespace moelab::detail {

// Same device for all defined inputs; returns that device's backend.
Backend& backend_of(std::initializer_list<const Tensor*> xs, const char* op);
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op);
void check_float(const Tensor& x, const char* op);
void check_index(const Tensor& index, const char* op);  // i32 or i64
inline Tensor empty_like(const Tensor& x) { return Tensor::empty(x.shape(), x.dtype(), x.device()); }
inline Tensor zeros_like(const Tensor& x) { return Tensor::zeros(x.shape(), x.dtype(), x.device()); }
// A contiguous, detached kernel input (no copy when x is already contiguous; nothing recorded).
Tensor contiguous_input(const Tensor& x);
// A contiguous x seen with another shape of the same numel (kernel arguments; no autograd).
inline Tensor view_as_shape(const Tensor& x, const Shape& s) {
  return Tensor::view_of(x, s, contiguous_strides(s), x.offset());
}
// Item b of a contiguous x seen as consecutive blocks of shape `s` (kernel arguments; no autograd).
inline Tensor block_view(const Tensor& x, int64_t b, const Shape& s) {
  return Tensor::view_of(x, s, contiguous_strides(s), x.offset() + b * numel_of(s));
}

// softmax / log-softmax over the last dim of x with the fused causal mask (causal_tq queries per block
// of rows, see Backend::softmax; 0 = no mask); differentiable. Used by softmax.cpp and attention.cpp.
Tensor softmax_last_dim(const Tensor& x, bool log, int64_t causal_tq);

// Attention composed from matmul and the masked softmax (scores and probabilities kept whole): the
// reference the fused scaled_dot_product_attention is tested and benchmarked against. Same semantics.
Tensor scaled_dot_product_attention_composed(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const AttentionMask& mask, std::optional<double> scale = {});

}  // namespace moelab::detail
