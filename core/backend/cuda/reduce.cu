// cuda: reductions over the middle axis of x viewed as (outer, n, inner), and the sum of squares used for
// gradient clipping. Sums accumulate in double; every partition and combining order is fixed by the shape
// alone (not by the device), so results are bitwise reproducible. max/min return the first occurrence,
// and a NaN wins over numbers (its first occurrence), as in `ref`.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

template <typename T>
struct Best {
  T v;
  int64_t i;
};

// The better of two candidates for max (or min): NaN first, then the larger (smaller) value, then the
// smaller position. Associative and commutative, so any fixed tree gives the sequential answer.
template <typename T>
__device__ __forceinline__ Best<T> better_of(Best<T> a, Best<T> b, bool is_max) {
  bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) {
    if (an && bn) return a.i < b.i ? a : b;
    return an ? a : b;
  }
  if (a.v == b.v) return a.i < b.i ? a : b;
  return (is_max ? b.v > a.v : b.v < a.v) ? b : a;
}

// inner == 1: one block per row, each thread a strided slice, then a fixed tree over the block.
template <typename T>
__global__ void reduce_rows_kernel(const T* x, int64_t outer, int64_t n, T* out, int64_t* index,
                                   ReduceOp op) {
  __shared__ double sum_shm[kRowThreads];
  __shared__ Best<T> best_shm[kRowThreads];
  for (int64_t row = blockIdx.x; row < outer; row += gridDim.x) {
    const T* p = x + row * n;
    if (op == ReduceOp::sum) {
      double acc = 0;
      for (int64_t j = threadIdx.x; j < n; j += kRowThreads) acc += static_cast<double>(p[j]);
      sum_shm[threadIdx.x] = acc;
      __syncthreads();
      for (int s = kRowThreads / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sum_shm[threadIdx.x] += sum_shm[threadIdx.x + s];
        __syncthreads();
      }
      if (threadIdx.x == 0) out[row] = static_cast<T>(sum_shm[0]);
    } else {
      bool is_max = op == ReduceOp::max;
      Best<T> b{n > 0 ? p[0] : T(0), 0};
      for (int64_t j = threadIdx.x; j < n; j += kRowThreads) b = better_of(b, Best<T>{p[j], j}, is_max);
      best_shm[threadIdx.x] = b;
      __syncthreads();
      for (int s = kRowThreads / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s)
          best_shm[threadIdx.x] = better_of(best_shm[threadIdx.x], best_shm[threadIdx.x + s], is_max);
        __syncthreads();
      }
      if (threadIdx.x == 0) {
        out[row] = best_shm[0].v;
        if (index) index[row] = best_shm[0].i;
      }
    }
    __syncthreads();  // the shared arrays are reused by the next row
  }
}

// inner > 1: a block is 32 adjacent columns (coalesced) x kColSplit slices of n, combined in slice order.
constexpr int kColWidth = 32, kColSplit = 8;

template <typename T>
__global__ void reduce_cols_kernel(const T* x, int64_t outer, int64_t n, int64_t inner, T* out,
                                   int64_t* index, ReduceOp op) {
  __shared__ double sum_shm[kColSplit][kColWidth];
  __shared__ Best<T> best_shm[kColSplit][kColWidth];
  int tx = threadIdx.x, ty = threadIdx.y;
  int64_t i = int64_t(blockIdx.x) * kColWidth + tx;
  bool is_max = op == ReduceOp::max;
  for (int64_t o = blockIdx.y; o < outer; o += gridDim.y) {
    const T* p = x + o * n * inner + i;
    if (op == ReduceOp::sum) {
      double acc = 0;
      if (i < inner)
        for (int64_t j = ty; j < n; j += kColSplit) acc += static_cast<double>(p[j * inner]);
      sum_shm[ty][tx] = acc;
    } else {
      Best<T> b{T(0), 0};
      if (i < inner && n > 0) {
        b = Best<T>{p[0], 0};
        for (int64_t j = ty; j < n; j += kColSplit) b = better_of(b, Best<T>{p[j * inner], j}, is_max);
      }
      best_shm[ty][tx] = b;
    }
    __syncthreads();
    if (ty == 0 && i < inner) {
      if (op == ReduceOp::sum) {
        double acc = sum_shm[0][tx];
        for (int k = 1; k < kColSplit; ++k) acc += sum_shm[k][tx];
        out[o * inner + i] = static_cast<T>(acc);
      } else {
        Best<T> b = best_shm[0][tx];
        for (int k = 1; k < kColSplit; ++k) b = better_of(b, best_shm[k][tx], is_max);
        out[o * inner + i] = b.v;
        if (index) index[o * inner + i] = b.i;
      }
    }
    __syncthreads();
  }
}

// sum of squares: a fixed number of blocks (independent of the device) write partials; one block adds them.
constexpr int kSumSqBlocks = 512;

template <typename T>
__global__ void sum_squares_partial_kernel(const T* x, int64_t n, double* partial) {
  double acc = 0;
  for (int64_t i = int64_t(blockIdx.x) * kRowThreads + threadIdx.x; i < n;
       i += int64_t(kRowThreads) * kSumSqBlocks) {
    double v = static_cast<double>(x[i]);
    acc += v * v;
  }
  acc = block_sum(acc);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

__global__ void sum_partials_kernel(const double* partial, int count, double* result) {
  double acc = 0;
  for (int i = threadIdx.x; i < count; i += kRowThreads) acc += partial[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *result = acc;
}

}  // namespace

void CudaBackend::reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
                         Tensor* index) {
  if (outer * inner == 0) return;
  MOELAB_CHECK(x.is_contiguous() && out.is_contiguous(), "cuda reduce: tensors must be contiguous");
  cudaStream_t st = stream_for(x);
  int64_t* pi = (index && index->defined()) ? index->data<int64_t>() : nullptr;
  dispatch_dtype(x.dtype(), [&]<typename T>() {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (inner == 1) {
      unsigned grid = static_cast<unsigned>(std::min<int64_t>(outer, int64_t(1) << 20));
      reduce_rows_kernel<T><<<grid, kRowThreads, 0, st>>>(px, outer, n, po, pi, op);
    } else {
      dim3 block(kColWidth, kColSplit);
      dim3 grid(static_cast<unsigned>((inner + kColWidth - 1) / kColWidth),
                static_cast<unsigned>(std::min<int64_t>(outer, 65535)));
      MOELAB_CHECK(grid.x <= 0x7fffffffu, "cuda reduce: inner dimension " << inner << " too large");
      reduce_cols_kernel<T><<<grid, block, 0, st>>>(px, outer, n, inner, po, pi, op);
    }
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

// The host waits here for the result (clipping needs the norm on the host).
double CudaBackend::sum_squares(const Tensor& x) {
  int64_t n = x.numel();
  if (n == 0) return 0.0;
  Tensor c = x.contiguous();
  cudaStream_t st = stream_for(c);
  int dev = device_of(x);
  Scratch partial((kSumSqBlocks + 1) * sizeof(double), dev);
  double* pp = partial.as<double>();
  dispatch_dtype(c.dtype(), [&]<typename T>() {
    sum_squares_partial_kernel<T><<<kSumSqBlocks, kRowThreads, 0, st>>>(c.data<T>(), n, pp);
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  sum_partials_kernel<<<1, kRowThreads, 0, st>>>(pp, kSumSqBlocks, pp + kSumSqBlocks);
  MOELAB_CUDA_CHECK_LAUNCH();
  double result = 0;
  MOELAB_CUDA_CHECK(cudaMemcpyAsync(&result, pp + kSumSqBlocks, sizeof(double), cudaMemcpyDeviceToHost, st));
  MOELAB_CUDA_CHECK(cudaStreamSynchronize(st));
  return result;
}

}  // namespace moelab
