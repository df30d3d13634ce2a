// cpu: element-wise kernels; contiguous fast paths vectorize, strided inputs go through for_each_strided.
#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"
#include "core/backend/strided.h"
#include "core/kernels/fast_math.h"

namespace moelab {

using cpu::kParallelGrain;
using cpu::parallel_for;

void CpuBackend::fill(Tensor& out, double value) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T* p = out.data<T>();
    T v = static_cast<T>(value);
    parallel_for(out.numel(), kParallelGrain * 4, [&](int64_t b, int64_t e) { std::fill(p + b, p + e, v); });
  });
}

void CpuBackend::copy(const Tensor& src, Tensor& dst) {
  dispatch_dtype(src.dtype(), [&]<typename S>() {
    dispatch_dtype(dst.dtype(), [&]<typename D>() {
      const S* s = src.data<S>();
      D* d = dst.data<D>();
      if (src.is_contiguous() && dst.is_contiguous()) {
        parallel_for(dst.numel(), kParallelGrain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) d[i] = static_cast<D>(s[i]);
        });
        return;
      }
      const Strides* st[2] = {&src.strides(), &dst.strides()};
      parallel_for(dst.numel(), kParallelGrain, [&](int64_t b, int64_t e) {
        for_each_strided_run<2>(dst.shape(), st, b, e - b,
                                [&](int64_t, const int64_t* o, const int64_t* step, int64_t run) {
                                  const S* sp = s + o[0];
                                  D* dp = d + o[1];
                                  if (step[0] == 1 && step[1] == 1) {  // rows of a transpose that keeps the last dim
                                    for (int64_t r = 0; r < run; ++r) dp[r] = static_cast<D>(sp[r]);
                                  } else {
                                    for (int64_t r = 0; r < run; ++r) dp[r * step[1]] = static_cast<D>(sp[r * step[0]]);
                                  }
                                });
      });
    });
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>) {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      T a = static_cast<T>(alpha);
      dispatch_unary(op, [&]<UnaryOp OP>() {
        parallel_for(x.numel(), kParallelGrain / 4, [&](int64_t b, int64_t e) {
#pragma omp simd
          for (int64_t i = b; i < e; ++i) po[i] = kern::fast_unary<OP, T>(px[i], a);
        });
      });
    } else {
      ref_backend().unary(op, x, out, alpha);  // integer maths is rare: the reference loop serves
    }
  });
}

void CpuBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                double alpha) {
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    if constexpr (std::is_floating_point_v<T>) {
      const T *px = x.data<T>(), *py = y.data<T>(), *pg = gy.data<T>();
      T* po = gx.data<T>();
      T a = static_cast<T>(alpha);
      dispatch_unary(op, [&]<UnaryOp OP>() {
        parallel_for(x.numel(), kParallelGrain / 4, [&](int64_t b, int64_t e) {
#pragma omp simd
          for (int64_t i = b; i < e; ++i) po[i] = pg[i] * kern::fast_unary_derivative<OP, T>(px[i], py[i], a);
        });
      });
    } else {
      ref_backend().unary_backward(op, x, y, gy, gx, alpha);
    }
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    int64_t n = out.numel();
    dispatch_binary(op, [&]<BinaryOp OP>() {
      bool ca = a.is_contiguous() && a.numel() == n, cb = b.is_contiguous() && b.numel() == n;
      if (ca && cb) {
        parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; ++i) po[i] = kern::binary<OP, T>(pa[i], pb[i]);
        });
        return;
      }
      // Row broadcast (x + bias): b's last-dim stride 1 and all outer strides 0.
      int nd = out.dim();
      if (ca && nd >= 1 && b.numel() > 0) {
        bool row = b.strides()[nd - 1] == 1 || out.shape()[nd - 1] == 1;
        for (int d = 0; d + 1 < nd; ++d) row = row && (b.strides()[d] == 0 || out.shape()[d] == 1);
        if (row) {
          int64_t cols = out.shape()[nd - 1], rows = n / std::max<int64_t>(cols, 1);
          parallel_for(rows, std::max<int64_t>(1, kParallelGrain / std::max<int64_t>(cols, 1)),
                       [&](int64_t r0, int64_t r1) {
                         for (int64_t r = r0; r < r1; ++r)
                           for (int64_t c = 0; c < cols; ++c)
                             po[r * cols + c] = kern::binary<OP, T>(pa[r * cols + c], pb[c]);
                       });
          return;
        }
      }
      const Strides* st[3] = {&a.strides(), &b.strides(), &out.strides()};
      parallel_for(n, kParallelGrain, [&](int64_t s, int64_t e) {
        for_each_strided_run<3>(out.shape(), st, s, e - s,
                                [&](int64_t, const int64_t* o, const int64_t* step, int64_t run) {
                                  const T *ra = pa + o[0], *rb = pb + o[1];
                                  T* ro = po + o[2];
                                  if (step[0] == 1 && step[1] == 1 && step[2] == 1) {
                                    for (int64_t r = 0; r < run; ++r) ro[r] = kern::binary<OP, T>(ra[r], rb[r]);
                                  } else if (step[0] == 1 && step[1] == 0 && step[2] == 1) {  // b broadcast along the run
                                    const T bv = rb[0];
                                    for (int64_t r = 0; r < run; ++r) ro[r] = kern::binary<OP, T>(ra[r], bv);
                                  } else {
                                    for (int64_t r = 0; r < run; ++r)
                                      ro[r * step[2]] = kern::binary<OP, T>(ra[r * step[0]], rb[r * step[1]]);
                                  }
                                });
      });
    });
  });
}

}  // namespace moelab
