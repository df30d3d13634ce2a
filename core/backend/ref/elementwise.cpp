// ref: element-wise kernels as plain loops, computed in double (the specification).
#include "core/backend/ref/ref_backend.h"
#include "core/backend/strided.h"

namespace moelab {

void RefBackend::fill(Tensor& out, double value) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0, n = out.numel(); i < n; ++i) p[i] = static_cast<T>(value);
  });
}

void RefBackend::copy(const Tensor& src, Tensor& dst) {
  dispatch_dtype(src.dtype(), [&]<typename S>() {
    dispatch_dtype(dst.dtype(), [&]<typename D>() {
      const S* s = src.data<S>();
      D* d = dst.data<D>();
      const Strides* st[2] = {&src.strides(), &dst.strides()};
      for_each_strided<2>(dst.shape(), st, 0, dst.numel(),
                          [&](int64_t, const int64_t* o) { d[o[1]] = static_cast<D>(s[o[0]]); });
    });
  });
}

void RefBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    dispatch_unary(op, [&]<UnaryOp OP>() {
      for (int64_t i = 0, n = x.numel(); i < n; ++i)
        po[i] = static_cast<T>(kern::unary<OP, double>(static_cast<double>(px[i]), alpha));
    });
  });
}

void RefBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                double alpha) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T *px = x.data<T>(), *py = y.data<T>(), *pg = gy.data<T>();
    T* po = gx.data<T>();
    dispatch_unary(op, [&]<UnaryOp OP>() {
      for (int64_t i = 0, n = x.numel(); i < n; ++i)
        po[i] = static_cast<T>(double(pg[i]) * kern::unary_derivative<OP, double>(px[i], py[i], alpha));
    });
  });
}

void RefBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    const Strides* st[3] = {&a.strides(), &b.strides(), &out.strides()};
    dispatch_binary(op, [&]<BinaryOp OP>() {
      for_each_strided<3>(out.shape(), st, 0, out.numel(), [&](int64_t, const int64_t* o) {
        po[o[2]] = static_cast<T>(kern::binary<OP, double>(double(pa[o[0]]), double(pb[o[1]])));
      });
    });
  });
}

}  // namespace moelab
