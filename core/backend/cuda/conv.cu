// cuda: im2col / col2im for one NCHW image (the op layer runs conv2d as im2col + cuBLAS GEMM). col2im is
// owner-computes: each image element sums its column entries in (i, j) order, in double, onto its old
// value, so no two threads write the same element and no atomics are needed.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

// x (C, H, W) -> cols (C*kh*kw, OH*OW); one thread per column-matrix entry.
template <typename T>
__global__ void im2col_kernel(const T* x, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                              int64_t stride, int64_t pad, int64_t OH, int64_t OW, T* cols) {
  int64_t L = OH * OW;
  MOELAB_GRID_STRIDE(t, C * kh * kw * L) {
    int64_t row = t / L, col = t % L;
    int64_t c = row / (kh * kw), i = row / kw % kh, j = row % kw;
    int64_t h = col / OW * stride - pad + i, w = col % OW * stride - pad + j;
    cols[t] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(c * H + h) * W + w] : T(0);
  }
}

// cols (C*kh*kw, OH*OW) -> gx (C, H, W) += ...; one thread per image element.
template <typename T>
__global__ void col2im_kernel(const T* cols, int64_t C, int64_t H, int64_t W, int64_t kh, int64_t kw,
                              int64_t stride, int64_t pad, int64_t OH, int64_t OW, T* gx) {
  MOELAB_GRID_STRIDE(t, C * H * W) {
    int64_t c = t / (H * W), h = t / W % H, w = t % W;
    double acc = static_cast<double>(gx[t]);
    for (int64_t i = 0; i < kh; ++i) {
      int64_t hh = h + pad - i;  // = oh * stride for the output row that reads (h, w) through kernel row i
      if (hh < 0 || hh % stride != 0 || hh / stride >= OH) continue;
      int64_t oh = hh / stride;
      for (int64_t j = 0; j < kw; ++j) {
        int64_t ww = w + pad - j;
        if (ww < 0 || ww % stride != 0 || ww / stride >= OW) continue;
        acc += static_cast<double>(cols[((c * kh + i) * kw + j) * OH * OW + oh * OW + ww / stride]);
      }
    }
    gx[t] = static_cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols) {
  int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  int64_t total = C * kh * kw * OH * OW;
  if (total <= 0) return;
  int dev = device_of(x);
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "im2col", [&]<typename T>() {
    im2col_kernel<T><<<grid_for(total, dev), kThreads, 0, st>>>(x.data<T>(), C, H, W, kh, kw, stride, pad, OH,
                                                                OW, cols.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad,
                         Tensor& gx) {
  int64_t C = gx.size(0), H = gx.size(1), W = gx.size(2);
  int64_t OH = (H + 2 * pad - kh) / stride + 1, OW = (W + 2 * pad - kw) / stride + 1;
  if (C * H * W == 0 || OH <= 0 || OW <= 0) return;
  int dev = device_of(gx);
  cudaStream_t st = stream_for(gx);
  for_float_dtype(cols.dtype(), "col2im", [&]<typename T>() {
    col2im_kernel<T><<<grid_for(C * H * W, dev), kThreads, 0, st>>>(cols.data<T>(), C, H, W, kh, kw, stride,
                                                                    pad, OH, OW, gx.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
