#include "core/ops/op_util.h"

namespace moelab::detail {

Backend& backend_of(std::initializer_list<const Tensor*> xs, const char* op) {
  const Tensor* first = nullptr;
  for (const Tensor* t : xs) {
    if (!t || !t->defined()) continue;
    if (!first) first = t;
    MOELAB_CHECK(t->device() == first->device(), op << ": inputs on different devices ("
                                                    << first->device().str() << " and " << t->device().str()
                                                    << ")");
  }
  MOELAB_CHECK(first, op << ": no defined input");
  return backend_for(first->device());
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  MOELAB_CHECK(a.dtype() == b.dtype(), op << ": dtype mismatch (" << dtype_name(a.dtype()) << " and "
                                          << dtype_name(b.dtype()) << ")");
}

void check_float(const Tensor& x, const char* op) {
  MOELAB_CHECK(is_floating(x.dtype()), op << " needs a float tensor, got " << dtype_name(x.dtype()));
}

}  // namespace moelab::detail

namespace moelab::detail {

void check_index(const Tensor& index, const char* op) {
  MOELAB_CHECK(index.dtype() == DType::i32 || index.dtype() == DType::i64,
               op << " needs an i32 or i64 index tensor, got " << dtype_name(index.dtype()));
}

Tensor contiguous_input(const Tensor& x) {
  if (x.is_contiguous()) return x.detach();
  NoGradGuard ng;
  return x.contiguous().detach();
}

}  // namespace moelab::detail
