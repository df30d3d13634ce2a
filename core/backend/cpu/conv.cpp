// cpu: im2col / col2im for one NCHW image. im2col runs column-matrix rows in parallel; col2im gives
// each channel to one thread (a channel's image plane is written only from its own kh*kw rows), so the
// accumulation order is fixed.
#include <algorithm>

#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

namespace {
// Output positions ow in [lo, hi) read inside the image: 0 <= ow*stride - pad + j < W.
inline void valid_range(int64_t j, int64_t stride, int64_t pad, int64_t W, int64_t OW, int64_t& lo,
                        int64_t& hi) {
  lo = pad - j > 0 ? std::min<int64_t>((pad - j + stride - 1) / stride, OW) : 0;
  hi = W + pad - j > 0 ? std::clamp<int64_t>((W + pad - j + stride - 1) / stride, lo, OW) : lo;
}
}  // namespace

void CpuBackend::im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols) {
  int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  dispatch_float(x.dtype(), "im2col", [&]<typename T>() {
    const T* px = x.data<T>();
    T* pc = cols.data<T>();
    cpu::parallel_for(C * kh * kw, cpu::row_grain(OH * OW), [&](int64_t row0, int64_t row1) {
      for (int64_t row = row0; row < row1; ++row) {
        int64_t c = row / (kh * kw), i = row / kw % kh, j = row % kw;
        int64_t lo, hi;
        valid_range(j, stride, pad, W, OW, lo, hi);
        T* crow = pc + row * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          int64_t h = oh * stride - pad + i;
          T* dst = crow + oh * OW;
          if (h < 0 || h >= H) {
            std::fill(dst, dst + OW, T(0));
            continue;
          }
          const T* src = px + (c * H + h) * W - pad + j;
          std::fill(dst, dst + lo, T(0));
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * stride];
          std::fill(dst + hi, dst + OW, T(0));
        }
      }
    });
  });
}

void CpuBackend::col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& gx) {
  int64_t C = gx.size(0), H = gx.size(1), W = gx.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  dispatch_float(cols.dtype(), "col2im", [&]<typename T>() {
    const T* pc = cols.data<T>();
    T* pg = gx.data<T>();
    cpu::parallel_for(C, cpu::row_grain(kh * kw * OH * OW), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            int64_t lo, hi;
            valid_range(j, stride, pad, W, OW, lo, hi);
            const T* crow = pc + ((c * kh + i) * kw + j) * OH * OW;
            for (int64_t oh = 0; oh < OH; ++oh) {
              int64_t h = oh * stride - pad + i;
              if (h < 0 || h >= H) continue;
              T* dst = pg + (c * H + h) * W - pad + j;
              const T* src = crow + oh * OW;
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * stride] += src[ow];
            }
          }
    });
  });
}

}  // namespace moelab
