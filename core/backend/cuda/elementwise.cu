// cuda: element-wise kernels over the shared per-element functions (core/kernels/elementwise.h).
// Contiguous operands take a flat grid-stride loop; strided and broadcast views go through StridedMap.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

template <typename T>
__global__ void fill_kernel(T* out, int64_t n, T value) {
  MOELAB_GRID_STRIDE(i, n) out[i] = value;
}

template <typename S, typename D>
__global__ void copy_contiguous_kernel(const S* src, D* dst, int64_t n) {
  MOELAB_GRID_STRIDE(i, n) dst[i] = static_cast<D>(src[i]);
}

template <typename S, typename D>
__global__ void copy_strided_kernel(const S* src, D* dst, int64_t n, StridedMap<2> map) {
  MOELAB_GRID_STRIDE(i, n) {
    int64_t off[2];
    map.offsets(i, off);
    dst[off[1]] = static_cast<D>(src[off[0]]);
  }
}

// T is the storage type, C the compute type (T for floats; double for integer tensors, as in `ref`).
template <UnaryOp OP, typename T, typename C>
__global__ void unary_kernel(const T* x, T* out, int64_t n, C alpha) {
  MOELAB_GRID_STRIDE(i, n) out[i] = static_cast<T>(kern::unary<OP, C>(static_cast<C>(x[i]), alpha));
}

template <UnaryOp OP, typename T>
__global__ void unary_backward_kernel(const T* x, const T* y, const T* gy, T* gx, int64_t n, T alpha) {
  MOELAB_GRID_STRIDE(i, n) gx[i] = gy[i] * kern::unary_derivative<OP, T>(x[i], y[i], alpha);
}

template <BinaryOp OP, typename T>
__global__ void binary_contiguous_kernel(const T* a, const T* b, T* out, int64_t n) {
  MOELAB_GRID_STRIDE(i, n) out[i] = kern::binary<OP, T>(a[i], b[i]);
}

template <BinaryOp OP, typename T>
__global__ void binary_strided_kernel(const T* a, const T* b, T* out, int64_t n, StridedMap<3> map) {
  MOELAB_GRID_STRIDE(i, n) {
    int64_t off[3];
    map.offsets(i, off);
    out[off[2]] = kern::binary<OP, T>(a[off[0]], b[off[1]]);
  }
}

}  // namespace

void CudaBackend::fill(Tensor& out, double value) {
  int64_t n = out.numel();
  if (n == 0) return;
  MOELAB_CHECK(out.is_contiguous(), "cuda fill: output must be contiguous");
  cudaStream_t st = stream_for(out);
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    fill_kernel<T><<<grid_for(n, device_of(out)), kThreads, 0, st>>>(out.data<T>(), n, static_cast<T>(value));
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::copy(const Tensor& src, Tensor& dst) {
  int64_t n = dst.numel();
  MOELAB_CHECK(src.shape() == dst.shape(),
               "cuda copy: shapes " << src.shape().str() << " and " << dst.shape().str());
  MOELAB_CHECK(src.device() == dst.device(), "cuda copy: tensors on " << src.device().str() << " and "
                                                                      << dst.device().str()
                                                                      << " (use copy_across)");
  if (n == 0) return;
  cudaStream_t st = stream_for(dst);
  unsigned grid = grid_for(n, device_of(dst));
  bool contiguous = src.is_contiguous() && dst.is_contiguous();
  dispatch_dtype(src.dtype(), [&]<typename S>() {
    dispatch_dtype(dst.dtype(), [&]<typename D>() {
      if (contiguous) {
        copy_contiguous_kernel<S, D><<<grid, kThreads, 0, st>>>(src.data<S>(), dst.data<D>(), n);
      } else {
        auto map = make_strided_map<2>(dst.shape(), {&src.strides(), &dst.strides()});
        copy_strided_kernel<S, D><<<grid, kThreads, 0, st>>>(src.data<S>(), dst.data<D>(), n, map);
      }
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) {
  int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t st = stream_for(x);
  unsigned grid = grid_for(n, device_of(x));
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    using C = std::conditional_t<std::is_floating_point_v<T>, T, double>;
    dispatch_unary(op, [&]<UnaryOp OP>() {
      unary_kernel<OP, T, C><<<grid, kThreads, 0, st>>>(x.data<T>(), out.data<T>(), n, static_cast<C>(alpha));
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                                 double alpha) {
  int64_t n = x.numel();
  if (n == 0) return;
  cudaStream_t st = stream_for(x);
  unsigned grid = grid_for(n, device_of(x));
  for_float_dtype(x.dtype(), "unary_backward", [&]<typename T>() {
    dispatch_unary(op, [&]<UnaryOp OP>() {
      unary_backward_kernel<OP, T><<<grid, kThreads, 0, st>>>(x.data<T>(), y.data<T>(), gy.data<T>(),
                                                              gx.data<T>(), n, static_cast<T>(alpha));
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  int64_t n = out.numel();
  if (n == 0) return;
  cudaStream_t st = stream_for(out);
  unsigned grid = grid_for(n, device_of(out));
  bool contiguous =
      a.is_contiguous() && b.is_contiguous() && out.is_contiguous() && a.numel() == n && b.numel() == n;
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    dispatch_binary(op, [&]<BinaryOp OP>() {
      if (contiguous) {
        binary_contiguous_kernel<OP, T><<<grid, kThreads, 0, st>>>(pa, pb, po, n);
      } else {
        auto map = make_strided_map<3>(out.shape(), {&a.strides(), &b.strides(), &out.strides()});
        binary_strided_kernel<OP, T><<<grid, kThreads, 0, st>>>(pa, pb, po, n, map);
      }
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
