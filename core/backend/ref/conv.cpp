// ref: im2col / col2im for one NCHW image, as direct loops over the column matrix.
#include "core/backend/ref/ref_backend.h"

namespace moelab {

void RefBackend::im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols) {
  int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  dispatch_float(x.dtype(), "im2col", [&]<typename T>() {
    const T* px = x.data<T>();
    T* pc = cols.data<T>();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          int64_t row = (c * kh + i) * kw + j;
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t h = oh * stride - pad + i, w = ow * stride - pad + j;
              bool inside = h >= 0 && h < H && w >= 0 && w < W;
              pc[row * OH * OW + oh * OW + ow] = inside ? px[(c * H + h) * W + w] : T(0);
            }
        }
  });
}

void RefBackend::col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& gx) {
  int64_t C = gx.size(0), H = gx.size(1), W = gx.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  dispatch_float(cols.dtype(), "col2im", [&]<typename T>() {
    const T* pc = cols.data<T>();
    T* pg = gx.data<T>();
    // Every image element sums its column entries in double, in (i, j, oh, ow) order.
    std::vector<double> acc(static_cast<size_t>(C * H * W));
    for (size_t k = 0; k < acc.size(); ++k) acc[k] = double(pg[k]);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j) {
          int64_t row = (c * kh + i) * kw + j;
          for (int64_t oh = 0; oh < OH; ++oh)
            for (int64_t ow = 0; ow < OW; ++ow) {
              int64_t h = oh * stride - pad + i, w = ow * stride - pad + j;
              if (h >= 0 && h < H && w >= 0 && w < W)
                acc[(c * H + h) * W + w] += double(pc[row * OH * OW + oh * OW + ow]);
            }
        }
    for (size_t k = 0; k < acc.size(); ++k) pg[k] = static_cast<T>(acc[k]);
  });
}

}  // namespace moelab
