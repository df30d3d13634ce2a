#pragma once
// Device-side helpers for the cuda backend's .cu files: grid-stride loops, strided index maps, and
// block reductions in a fixed order (so results are bitwise reproducible run to run).
#include <cuda_runtime.h>

#include <array>
#include <type_traits>

#include "core/backend/cuda/cuda_util.h"
#include "core/tensor/tensor.h"

namespace moelab::cuda {

// for (i = global thread; i < n; i += all threads)
#define MOELAB_GRID_STRIDE(i, n)                                   \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, \
               moelab_gs_step_ = int64_t(blockDim.x) * gridDim.x;  \
       i < (n); i += moelab_gs_step_)

// Element offsets of N operands that share one logical shape but have their own strides. Adjacent dims
// that are contiguous in every operand are merged on the host, so most calls walk one or two dims.
template <int N>
struct StridedMap {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];

  __device__ __forceinline__ void offsets(int64_t linear, int64_t (&off)[N]) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t idx = linear % shape[d];
      linear /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += idx * strides[k][d];
    }
  }
};

template <int N>
StridedMap<N> make_strided_map(const Shape& shape, const std::array<const Strides*, N>& st) {
  StridedMap<N> m;
  for (int d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;  // size-1 dims contribute nothing
    bool merge = m.nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = m.strides[k][m.nd - 1] == (*st[k])[d] * shape[d];
    if (merge) {
      m.shape[m.nd - 1] *= shape[d];
      for (int k = 0; k < N; ++k) m.strides[k][m.nd - 1] = (*st[k])[d];
    } else {
      m.shape[m.nd] = shape[d];
      for (int k = 0; k < N; ++k) m.strides[k][m.nd] = (*st[k])[d];
      ++m.nd;
    }
  }
  return m;
}

// Row-wise kernels use one block of kRowThreads per row.
constexpr int kRowThreads = 256;

// Grid for one block per row (rows beyond it are taken by a grid-stride loop).
inline unsigned row_grid(int64_t rows) {
  return static_cast<unsigned>(rows < 1 ? 1 : (rows < (int64_t(1) << 20) ? rows : (int64_t(1) << 20)));
}

// Combines one value per thread over the block in a fixed tree order (bitwise reproducible); every
// thread gets the result. Requires blockDim.x == kRowThreads; `op` must be associative.
template <typename A, typename Op>
__device__ __forceinline__ A block_reduce(A v, Op op) {
  __shared__ A shm[kRowThreads];
  shm[threadIdx.x] = v;
  __syncthreads();
  for (int s = kRowThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shm[threadIdx.x] = op(shm[threadIdx.x], shm[threadIdx.x + s]);
    __syncthreads();
  }
  A r = shm[0];
  __syncthreads();
  return r;
}
struct SumOp {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return a + b;
  }
};
// The larger of two values that are never NaN (partial maxima that skipped NaN inputs).
struct MaxOp {
  template <typename A>
  __device__ __forceinline__ A operator()(A a, A b) const {
    return b > a ? b : a;
  }
};
template <typename A>
__device__ __forceinline__ A block_sum(A v) {
  return block_reduce(v, SumOp{});
}

// Out-of-range indices: a kernel records the lowest bad position here (integer atomicMin: the result
// does not depend on thread timing); IndexFault (cuda_util.h) reads it back.
__device__ __forceinline__ void record_bad_index(unsigned long long* slot, int64_t position) {
  atomicMin(slot, static_cast<unsigned long long>(position));
}
template <typename I>
__device__ __forceinline__ bool index_ok(I v, int64_t limit) {
  return v >= 0 && static_cast<int64_t>(v) < limit;
}

// Runs f.template operator()<T>() for f32/f64 tensors; other dtypes are an error naming the kernel.
template <typename F>
void for_float_dtype(DType t, const char* kernel, F&& f) {
  if (t == DType::f32) return f.template operator()<float>();
  if (t == DType::f64) return f.template operator()<double>();
  MOELAB_FAIL("cuda " << kernel << ": expects f32 or f64, got " << dtype_name(t));
}

// Index tensors may be i32 or i64.
template <typename F>
void for_index_dtype(DType t, const char* kernel, F&& f) {
  if (t == DType::i64) return f.template operator()<int64_t>();
  if (t == DType::i32) return f.template operator()<int32_t>();
  MOELAB_FAIL("cuda " << kernel << ": index tensor must be i32 or i64, got " << dtype_name(t));
}

inline int device_of(const Tensor& t) {
  MOELAB_CHECK(t.device().is_cuda(), "cuda kernel given a tensor on " << t.device().str());
  return t.device().index;
}

}  // namespace moelab::cuda
