// cuda: layer normalization over the last dim, forward and backward, over the shared row formulas
// (core/kernels/layernorm.h). One block per row; statistics in double with a fixed reduction order. The
// gamma/beta gradients are column sums over rows: fixed chunks of rows give partial sums that a second
// kernel adds in chunk order (deterministic, no atomics).
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/layernorm.h"

namespace moelab {

using namespace cuda;

namespace {

// x: (M, N), gamma/beta: (N) or null -> out (M, N), mean (M), rstd (M)
template <typename T>
__global__ void layernorm_kernel(const T* x, const T* gamma, const T* beta, double eps, T* out, T* mean,
                                 T* rstd, int64_t M, int64_t N) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T* xr = x + r * N;
    double s = 0;
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads) s += static_cast<double>(xr[j]);
    double mu = block_sum(s) / static_cast<double>(N);
    double v = 0;
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads) {
      double c = static_cast<double>(xr[j]) - mu;
      v += c * c;
    }
    double var = block_sum(v) / static_cast<double>(N);
    double rs = kern::layernorm_rstd(var, eps);
    if (threadIdx.x == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    T mu_t = static_cast<T>(mu), rs_t = static_cast<T>(rs);
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads)
      out[r * N + j] =
          kern::layernorm_value(xr[j], mu_t, rs_t, gamma ? gamma[j] : T(1), beta ? beta[j] : T(0));
  }
}

// -> gx (M, N)
template <typename T>
__global__ void layernorm_backward_kernel(const T* x, const T* gamma, const T* mean, const T* rstd,
                                          const T* gy, T* gx, int64_t M, int64_t N) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T *xr = x + r * N, *gr = gy + r * N;
    double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
    double sd = 0, sdx = 0;
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads) {
      double xhat = (static_cast<double>(xr[j]) - mu) * rs;
      double d = static_cast<double>(gr[j]) * (gamma ? static_cast<double>(gamma[j]) : 1.0);
      sd += d;
      sdx += d * xhat;
    }
    double mean_d = block_sum(sd) / static_cast<double>(N), mean_dx = block_sum(sdx) / static_cast<double>(N);
    for (int64_t j = threadIdx.x; j < N; j += kRowThreads) {
      double xhat = (static_cast<double>(xr[j]) - mu) * rs;
      double d = static_cast<double>(gr[j]) * (gamma ? static_cast<double>(gamma[j]) : 1.0);
      gx[r * N + j] = static_cast<T>(kern::layernorm_grad_x(d, xhat, rs, mean_d, mean_dx));
    }
  }
}

// Column partial sums of gy * xhat (-> ggamma) and gy (-> gbeta) over chunks of kChunkRows rows.
// Block (32 columns x 8 row lanes); lanes are combined in lane order.
constexpr int kColWidth = 32, kLanes = 8, kChunkRows = 256;

template <typename T>
__global__ void layernorm_param_partial_kernel(const T* x, const T* mean, const T* rstd, const T* gy,
                                               int64_t M, int64_t N, double* part_gamma, double* part_beta) {
  __shared__ double sg[kLanes][kColWidth], sb[kLanes][kColWidth];
  int tx = threadIdx.x, ty = threadIdx.y;
  int64_t j = int64_t(blockIdx.x) * kColWidth + tx, chunk = blockIdx.y;
  int64_t r0 = chunk * kChunkRows, r1 = r0 + kChunkRows < M ? r0 + kChunkRows : M;
  double ag = 0, ab = 0;
  if (j < N)
    for (int64_t r = r0 + ty; r < r1; r += kLanes) {
      double g = static_cast<double>(gy[r * N + j]);
      ag += g * (static_cast<double>(x[r * N + j]) - static_cast<double>(mean[r])) *
            static_cast<double>(rstd[r]);
      ab += g;
    }
  sg[ty][tx] = ag;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && j < N) {
    for (int k = 1; k < kLanes; ++k) {
      ag += sg[k][tx];
      ab += sb[k][tx];
    }
    if (part_gamma) part_gamma[chunk * N + j] = ag;
    if (part_beta) part_beta[chunk * N + j] = ab;
  }
}

template <typename T>
__global__ void sum_chunks_kernel(const double* part, int64_t chunks, int64_t N, T* out) {
  MOELAB_GRID_STRIDE(j, N) {
    double acc = 0;
    for (int64_t c = 0; c < chunks; ++c) acc += part[c * N + j];
    out[j] = static_cast<T>(acc);
  }
}

}  // namespace

void CudaBackend::layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                            Tensor& mean, Tensor& rstd) {
  int64_t M = x.size(0), N = x.size(1);
  if (M == 0) return;
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "layernorm", [&]<typename T>() {
    layernorm_kernel<T><<<row_grid(M), kRowThreads, 0, st>>>(
        x.data<T>(), gamma.defined() ? gamma.data<T>() : nullptr, beta.defined() ? beta.data<T>() : nullptr,
        eps, out.data<T>(), mean.data<T>(), rstd.data<T>(), M, N);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& gy, Tensor& gx, Tensor& ggamma,
                                     Tensor& gbeta) {
  int64_t M = x.size(0), N = x.size(1);
  if (N == 0) return;
  int dev = device_of(x);
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "layernorm_backward", [&]<typename T>() {
    if (M > 0)
      layernorm_backward_kernel<T><<<row_grid(M), kRowThreads, 0, st>>>(
          x.data<T>(), gamma.defined() ? gamma.data<T>() : nullptr, mean.data<T>(), rstd.data<T>(),
          gy.data<T>(), gx.data<T>(), M, N);
    MOELAB_CUDA_CHECK_LAUNCH();
    if (!ggamma.defined() && !gbeta.defined()) return;
    int64_t chunks = std::max<int64_t>((M + kChunkRows - 1) / kChunkRows, 1);
    MOELAB_CHECK(chunks <= 65535,
                 "cuda layernorm_backward: " << M << " rows exceed the supported " << 65535 * kChunkRows);
    Scratch part(size_t(2 * chunks * N) * sizeof(double), dev);
    double* pg = ggamma.defined() ? part.as<double>() : nullptr;
    double* pb = gbeta.defined() ? part.as<double>() + chunks * N : nullptr;
    MOELAB_CUDA_CHECK(cudaMemsetAsync(part.get(), 0, size_t(2 * chunks * N) * sizeof(double), st));
    dim3 block(kColWidth, kLanes),
        grid(static_cast<unsigned>((N + kColWidth - 1) / kColWidth), static_cast<unsigned>(chunks));
    layernorm_param_partial_kernel<T>
        <<<grid, block, 0, st>>>(x.data<T>(), mean.data<T>(), rstd.data<T>(), gy.data<T>(), M, N, pg, pb);
    MOELAB_CUDA_CHECK_LAUNCH();
    if (pg) sum_chunks_kernel<T><<<grid_for(N, dev), kThreads, 0, st>>>(pg, chunks, N, ggamma.data<T>());
    if (pb) sum_chunks_kernel<T><<<grid_for(N, dev), kThreads, 0, st>>>(pb, chunks, N, gbeta.data<T>());
    MOELAB_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace moelab
