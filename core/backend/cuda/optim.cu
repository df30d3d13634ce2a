// cuda: fused optimizer updates, one thread per element over the shared per-element update functions
// (core/kernels/optim.h), in the parameter's precision as on the cpu backend. The per-step scalars are
// computed once on the host (kern::*_coeffs) and passed by value.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/optim.h"

namespace moelab {

using namespace cuda;

namespace {

template <typename T>
__global__ void adamw_kernel(T* param, const T* grad, T* m, T* v, int64_t n, kern::AdamWCoeffs<T> c) {
  MOELAB_GRID_STRIDE(i, n) {
    T p = param[i], mm = m[i], vv = v[i];
    kern::adamw_element<T>(p, grad[i], mm, vv, c);
    param[i] = p;
    m[i] = mm;
    v[i] = vv;
  }
}

// buf is null when momentum == 0 (the buffer may then be empty).
template <typename T>
__global__ void sgd_kernel(T* param, const T* grad, T* buf, int64_t n, kern::SgdCoeffs<T> c) {
  MOELAB_GRID_STRIDE(i, n) {
    T p = param[i], b = buf ? buf[i] : T(0);
    kern::sgd_element<T>(p, grad[i], buf ? &b : nullptr, c);
    param[i] = p;
    if (buf) buf[i] = b;
  }
}

// grad_avg is null unless centered.
template <typename T>
__global__ void rmsprop_kernel(T* param, const T* grad, T* square_avg, T* grad_avg, int64_t n,
                               kern::RmspropCoeffs<T> c) {
  MOELAB_GRID_STRIDE(i, n) {
    T p = param[i], s = square_avg[i], a = grad_avg ? grad_avg[i] : T(0);
    kern::rmsprop_element<T>(p, grad[i], s, grad_avg ? &a : nullptr, c);
    param[i] = p;
    square_avg[i] = s;
    if (grad_avg) grad_avg[i] = a;
  }
}

void check_pair(const Tensor& p, const Tensor& other, const char* kernel, const char* what) {
  MOELAB_CHECK(other.defined() && other.numel() == p.numel() && other.dtype() == p.dtype() &&
                   other.device() == p.device(),
               kernel << ": " << what << " must match the parameter (" << p.numel() << " x "
                      << dtype_name(p.dtype()) << " on " << p.device().str() << ")");
  MOELAB_CHECK(other.is_contiguous(), kernel << ": " << what << " must be contiguous");
}

}  // namespace

void CudaBackend::adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
                               const AdamWParams& h) {
  check_pair(param, grad, "adamw_update", "grad");
  check_pair(param, m, "adamw_update", "exp_avg");
  check_pair(param, v, "adamw_update", "exp_avg_sq");
  int64_t n = param.numel();
  if (n == 0) return;
  int dev = device_of(param);
  cudaStream_t st = stream_for(param);
  for_float_dtype(param.dtype(), "adamw_update", [&]<typename T>() {
    auto c = kern::adamw_coeffs<T>(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.step);
    adamw_kernel<T><<<grid_for(n, dev), kThreads, 0, st>>>(param.data<T>(), grad.data<T>(), m.data<T>(),
                                                           v.data<T>(), n, c);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::sgd_update(Tensor& param, const Tensor& grad, Tensor& buf, double lr, double momentum,
                             double weight_decay, bool nesterov, bool first_step) {
  check_pair(param, grad, "sgd_update", "grad");
  if (momentum != 0) check_pair(param, buf, "sgd_update", "momentum buffer");
  int64_t n = param.numel();
  if (n == 0) return;
  int dev = device_of(param);
  cudaStream_t st = stream_for(param);
  for_float_dtype(param.dtype(), "sgd_update", [&]<typename T>() {
    kern::SgdCoeffs<T> c{T(lr), T(momentum), T(weight_decay), nesterov, first_step};
    sgd_kernel<T><<<grid_for(n, dev), kThreads, 0, st>>>(param.data<T>(), grad.data<T>(),
                                                         momentum != 0 ? buf.data<T>() : nullptr, n, c);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg,
                                 double lr, double alpha, double eps, double weight_decay, bool centered) {
  check_pair(param, grad, "rmsprop_update", "grad");
  check_pair(param, square_avg, "rmsprop_update", "square_avg");
  if (centered) check_pair(param, grad_avg, "rmsprop_update", "grad_avg");
  int64_t n = param.numel();
  if (n == 0) return;
  int dev = device_of(param);
  cudaStream_t st = stream_for(param);
  for_float_dtype(param.dtype(), "rmsprop_update", [&]<typename T>() {
    kern::RmspropCoeffs<T> c{T(lr), T(alpha), T(1.0 - alpha), T(eps), T(weight_decay), centered};
    rmsprop_kernel<T><<<grid_for(n, dev), kThreads, 0, st>>>(
        param.data<T>(), grad.data<T>(), square_avg.data<T>(), centered ? grad_avg.data<T>() : nullptr, n, c);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
