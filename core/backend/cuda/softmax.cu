// cuda: softmax, log-softmax (with the causal mask fused in: the attention scores' masked softmax),
// their backward and logsumexp. One block per row over the shared row maths (core/kernels/softmax.h):
// the row max, then the sum of exp(x - shift) in double, in a fixed reduction order.
#include <limits>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/softmax.h"

namespace moelab {

using namespace cuda;

namespace {

// Row max over the first `kept` entries, ignoring NaN (as the shared row maths specify).
template <typename T>
__device__ __forceinline__ T row_max(const T* xr, int64_t kept) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t j = threadIdx.x; j < kept; j += kRowThreads) mx = xr[j] > mx ? xr[j] : mx;
  return block_reduce(mx, MaxOp{});
}

template <typename T>
__device__ __forceinline__ double row_sum_exp(const T* xr, int64_t kept, T shift) {
  double sum = 0;
  for (int64_t j = threadIdx.x; j < kept; j += kRowThreads)
    sum += static_cast<double>(std::exp(xr[j] - shift));
  return block_sum(sum);
}

// x: (M, N) -> out: (M, N)
template <typename T>
__global__ void softmax_kernel(const T* x, T* out, int64_t M, int64_t N, int64_t causal_tq, bool log) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T* xr = x + r * N;
    T* yr = out + r * N;
    int64_t kept = kern::softmax_kept(r, N, causal_tq);
    T shift = kern::softmax_shift(row_max(xr, kept));
    double sum = row_sum_exp(xr, kept, shift);
    T sum_t = static_cast<T>(sum), log_sum = static_cast<T>(std::log(sum));
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads)
      yr[j] = j < kept ? kern::softmax_value(xr[j], shift, sum_t, log_sum, log)
                       : kern::softmax_masked_value<T>(log);
  }
}

// y, gy: (M, N) -> gx: (M, N)
template <typename T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t M, int64_t N, bool log) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T *yr = y + r * N, *gr = gy + r * N;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads) {
      if (log)
        dot += kern::log_softmax_counts(yr[j]) ? static_cast<double>(gr[j]) : 0.0;
      else
        dot += static_cast<double>(gr[j]) * static_cast<double>(yr[j]);
    }
    T dot_t = static_cast<T>(block_sum(dot));
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads)
      gx[r * N + j] = kern::softmax_grad(yr[j], gr[j], dot_t, log);
  }
}

// x: (M, N) -> out: (M)
template <typename T>
__global__ void logsumexp_kernel(const T* x, T* out, int64_t M, int64_t N) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T* xr = x + r * N;
    T mx = row_max(xr, N);
    double sum = row_sum_exp(xr, N, kern::softmax_shift(mx));
    if (threadIdx.x == 0) out[r] = static_cast<T>(kern::logsumexp_value(static_cast<double>(mx), sum));
  }
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq) {
  int64_t M = x.size(0), N = x.size(1);
  if (M * N == 0) return;
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "softmax", [&]<typename T>() {
    softmax_kernel<T><<<row_grid(M), kRowThreads, 0, st>>>(x.data<T>(), out.data<T>(), M, N, causal_tq, log);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) {
  int64_t M = y.size(0), N = y.size(1);
  if (M * N == 0) return;
  cudaStream_t st = stream_for(y);
  for_float_dtype(y.dtype(), "softmax_backward", [&]<typename T>() {
    softmax_backward_kernel<T>
        <<<row_grid(M), kRowThreads, 0, st>>>(y.data<T>(), gy.data<T>(), gx.data<T>(), M, N, log);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::logsumexp(const Tensor& x, Tensor& out) {
  int64_t M = x.size(0), N = x.size(1);
  if (M == 0) return;
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "logsumexp", [&]<typename T>() {
    logsumexp_kernel<T><<<row_grid(M), kRowThreads, 0, st>>>(x.data<T>(), out.data<T>(), M, N);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
