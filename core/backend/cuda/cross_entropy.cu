// cuda: fused softmax + cross-entropy (label smoothing, ignore_index) and its backward, one block per row
// over the shared maths (core/kernels/loss.h, softmax.h). Row statistics in double, fixed reduction order.
// Targets are validated on the device; a bad one is reported after the kernel (the host waits for it).
#include <limits>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/loss.h"
#include "core/kernels/softmax.h"

namespace moelab {

using namespace cuda;

namespace {

// The row's shift (max ignoring NaN, 0 when infinite) and sum of exp(x - shift).
template <typename T>
__device__ __forceinline__ void row_stats(const T* xr, int64_t C, double& shift, double& sum) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t c = threadIdx.x; c < C; c += kRowThreads) mx = xr[c] > mx ? xr[c] : mx;
  shift = kern::softmax_shift(static_cast<double>(block_reduce(mx, MaxOp{})));
  double s = 0;
  for (int64_t c = threadIdx.x; c < C; c += kRowThreads) s += std::exp(static_cast<double>(xr[c]) - shift);
  sum = block_sum(s);
}

// The row's target, or -1 for an ignored row; a target outside [0, C) is recorded as bad.
template <typename I>
__device__ __forceinline__ int64_t row_target(const I* target, int64_t r, int64_t C, int64_t ignore_index,
                                              unsigned long long* bad) {
  int64_t t = static_cast<int64_t>(target[r]);
  if (t == ignore_index) return -1;
  if (t < 0 || t >= C) {
    if (threadIdx.x == 0) record_bad_index(bad, r);
    return -1;
  }
  return t;
}

// logits (M, C), target (M) -> loss (M)
template <typename T, typename I>
__global__ void cross_entropy_kernel(const T* logits, const I* target, double smoothing, int64_t ignore_index,
                                     T* loss, int64_t M, int64_t C, unsigned long long* bad) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    int64_t t = row_target(target, r, C, ignore_index, bad);
    if (t < 0) {  // uniform across the block: every thread read the same target
      if (threadIdx.x == 0) loss[r] = T(0);
      continue;
    }
    const T* xr = logits + r * C;
    double shift, sum;
    row_stats(xr, C, shift, sum);
    double sx = 0;
    for (int64_t c = threadIdx.x; c < C; c += kRowThreads) sx += static_cast<double>(xr[c]);
    double sum_x = block_sum(sx);
    if (threadIdx.x == 0) {
      double lse = shift + std::log(sum);
      loss[r] = static_cast<T>(kern::cross_entropy_row(lse, static_cast<double>(xr[t]), sum_x, C, smoothing));
    }
  }
}

// -> glogits (M, C) = gloss[m] * (softmax - smoothed one-hot), 0 on ignored rows
template <typename T, typename I>
__global__ void cross_entropy_backward_kernel(const T* logits, const I* target, const T* gloss,
                                              double smoothing, int64_t ignore_index, T* glogits, int64_t M,
                                              int64_t C, unsigned long long* bad) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    int64_t t = row_target(target, r, C, ignore_index, bad);
    T* gr = glogits + r * C;
    if (t < 0) {
      for (int64_t c = threadIdx.x; c < C; c += kRowThreads) gr[c] = T(0);
      continue;
    }
    const T* xr = logits + r * C;
    double shift, sum;
    row_stats(xr, C, shift, sum);
    double gl = static_cast<double>(gloss[r]);
    for (int64_t c = threadIdx.x; c < C; c += kRowThreads) {
      double p = std::exp(static_cast<double>(xr[c]) - shift) / sum;
      gr[c] = static_cast<T>(kern::cross_entropy_grad(p, c == t, C, smoothing, gl));
    }
  }
}

void check_targets(const IndexFault& fault, const Tensor& target, int64_t C, int64_t ignore_index,
                   const char* k) {
  int64_t bad = fault.first_bad();
  MOELAB_CHECK(bad < 0, k << ": target " << read_index_at(target, bad < 0 ? 0 : bad) << " at row " << bad
                          << " is not a class in [0, " << C << ") nor ignore_index " << ignore_index);
}

}  // namespace

void CudaBackend::cross_entropy(const Tensor& logits, const Tensor& target, double smoothing,
                                int64_t ignore_index, Tensor& loss) {
  int64_t M = logits.size(0), C = logits.size(1);
  if (M == 0) return;
  int dev = device_of(logits);
  cudaStream_t st = stream_for(logits);
  IndexFault fault(dev);
  for_float_dtype(logits.dtype(), "cross_entropy", [&]<typename T>() {
    for_index_dtype(target.dtype(), "cross_entropy", [&]<typename I>() {
      cross_entropy_kernel<T, I><<<row_grid(M), kRowThreads, 0, st>>>(
          logits.data<T>(), target.data<I>(), smoothing, ignore_index, loss.data<T>(), M, C, fault.slot());
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  check_targets(fault, target, C, ignore_index, "cross_entropy");
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                                         double smoothing, int64_t ignore_index, Tensor& glogits) {
  int64_t M = logits.size(0), C = logits.size(1);
  if (M == 0) return;
  int dev = device_of(logits);
  cudaStream_t st = stream_for(logits);
  IndexFault fault(dev);
  for_float_dtype(logits.dtype(), "cross_entropy_backward", [&]<typename T>() {
    for_index_dtype(target.dtype(), "cross_entropy_backward", [&]<typename I>() {
      cross_entropy_backward_kernel<T, I><<<row_grid(M), kRowThreads, 0, st>>>(
          logits.data<T>(), target.data<I>(), gloss.data<T>(), smoothing, ignore_index, glogits.data<T>(), M,
          C, fault.slot());
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  check_targets(fault, target, C, ignore_index, "cross_entropy_backward");
}

}  // namespace moelab
