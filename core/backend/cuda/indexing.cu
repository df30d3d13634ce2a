// cuda: gather, scatter_add, row select/add and top-k. The adds are deterministic without atomics: the
// (column, index) keys are stably sorted (sort.cu), so each output element's contributions form one run
// in increasing m, which a single thread adds in order onto the element's old value (double for floats,
// int64 for integers, as `ref`). Index tensors are validated on the device; the host waits to report a
// bad one (before scatter_add/index_add_rows touch their output).
#include <climits>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/backend/cuda/sort.h"

namespace moelab {

using namespace cuda;

namespace {

template <typename T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

// src viewed (O, N, I), index (O, M, I) -> out (O, M, I)
template <typename T, typename I>
__global__ void gather_kernel(const T* src, const I* index, int64_t n, int64_t m, int64_t inner, T* out,
                              int64_t total, unsigned long long* bad) {
  MOELAB_GRID_STRIDE(at, total) {
    int64_t o = at / (m * inner), i = at % inner;
    I v = index[at];
    if (!index_ok(v, n)) {
      record_bad_index(bad, at);
      out[at] = T(0);
      continue;
    }
    out[at] = src[(o * n + static_cast<int64_t>(v)) * inner + i];
  }
}

// Sort keys for scatter_add: key = (o * inner + i) * n + index, value = the flat position in src.
template <typename I>
__global__ void scatter_keys_kernel(const I* index, int64_t n, int64_t m, int64_t inner, int64_t total,
                                    uint64_t* keys, int64_t* values, unsigned long long* bad) {
  MOELAB_GRID_STRIDE(at, total) {
    int64_t o = at / (m * inner), i = at % inner;
    I v = index[at];
    if (!index_ok(v, n)) {
      record_bad_index(bad, at);
      v = 0;
    }
    keys[at] = static_cast<uint64_t>((o * inner + i) * n + static_cast<int64_t>(v));
    values[at] = at;
  }
}

// One thread per run of equal keys: out[key's element] = old + contributions in run order.
template <typename T>
__global__ void scatter_runs_kernel(const T* src, const uint64_t* keys, const int64_t* values, int64_t total,
                                    int64_t n, int64_t inner, T* out) {
  MOELAB_GRID_STRIDE(q, total) {
    uint64_t key = keys[q];
    if (q > 0 && keys[q - 1] == key) continue;  // not the start of a run
    int64_t column = static_cast<int64_t>(key) / n, idx = static_cast<int64_t>(key) % n;
    int64_t o = column / inner, i = column % inner;
    T* dst = out + (o * n + idx) * inner + i;
    Acc<T> acc = static_cast<Acc<T>>(*dst);
    for (int64_t r = q; r < total && keys[r] == key; ++r) acc += static_cast<Acc<T>>(src[values[r]]);
    *dst = static_cast<T>(acc);
  }
}

// rows: src (N, R), index (M) -> out (M, R)
template <typename T, typename I>
__global__ void index_select_rows_kernel(const T* src, const I* index, int64_t N, int64_t R, T* out,
                                         int64_t total, unsigned long long* bad) {
  MOELAB_GRID_STRIDE(t, total) {
    int64_t j = t / R, r = t % R;
    I v = index[j];
    if (!index_ok(v, N)) {
      if (r == 0) record_bad_index(bad, j);
      out[t] = T(0);
      continue;
    }
    out[t] = src[static_cast<int64_t>(v) * R + r];
  }
}

template <typename I>
__global__ void row_keys_kernel(const I* index, int64_t N, int64_t M, uint64_t* keys, int64_t* values,
                                unsigned long long* bad) {
  MOELAB_GRID_STRIDE(j, M) {
    I v = index[j];
    if (!index_ok(v, N)) {
      record_bad_index(bad, j);
      v = 0;
    }
    keys[j] = static_cast<uint64_t>(v);
    values[j] = j;
  }
}

// Thread (q, r) with q the start of a run of equal rows adds the run's src rows, column r, in order.
template <typename T>
__global__ void add_row_runs_kernel(const T* src, const uint64_t* keys, const int64_t* values, int64_t M,
                                    int64_t R, T* out) {
  MOELAB_GRID_STRIDE(t, M * R) {
    int64_t q = t / R, r = t % R;
    uint64_t key = keys[q];
    if (q > 0 && keys[q - 1] == key) continue;
    T* dst = out + static_cast<int64_t>(key) * R + r;
    Acc<T> acc = static_cast<Acc<T>>(*dst);
    for (int64_t p = q; p < M && keys[p] == key; ++p) acc += static_cast<Acc<T>>(src[values[p] * R + r]);
    *dst = static_cast<T>(acc);
  }
}

// Top-k order: NaN before numbers (NaNs by index), then larger values, then lower index.
template <typename T>
struct Cand {
  T v;
  int64_t i;
};
template <typename T>
__device__ __forceinline__ bool comes_before(const Cand<T>& a, const Cand<T>& b) {
  bool an = a.v != a.v, bn = b.v != b.v;
  if (an != bn) return an;
  if (!an && a.v != b.v) return a.v > b.v;
  return a.i < b.i;
}
struct FirstOp {
  template <typename C>
  __device__ __forceinline__ C operator()(const C& a, const C& b) const {
    if (b.i < 0) return a;
    if (a.i < 0) return b;
    return comes_before(b, a) ? b : a;
  }
};

// x: (M, N) -> values (M, k), indices (M, k). Pick j is the first element (in top-k order) after pick j-1:
// k block-wide selections, each exact and deterministic.
template <typename T>
__global__ void topk_kernel(const T* x, int64_t M, int64_t N, int64_t k, T* values, int64_t* indices) {
  for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
    const T* xr = x + r * N;
    Cand<T> prev{T(0), -1};
    for (int64_t j = 0; j < k; ++j) {
      Cand<T> best{T(0), -1};
      for (int64_t c = threadIdx.x; c < N; c += kRowThreads) {
        Cand<T> e{xr[c], c};
        if (prev.i >= 0 && !comes_before(prev, e)) continue;
        if (best.i < 0 || comes_before(e, best)) best = e;
      }
      best = block_reduce(best, FirstOp{});
      if (threadIdx.x == 0) {
        values[r * k + j] = best.v;
        indices[r * k + j] = best.i;
      }
      prev = best;
    }
  }
}

}  // namespace

void CudaBackend::gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                         int64_t inner, Tensor& out) {
  int64_t total = outer * m * inner;
  if (total == 0) return;
  int dev = device_of(src);
  cudaStream_t st = stream_for(src);
  IndexFault fault(dev);
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    for_index_dtype(index.dtype(), "gather", [&]<typename I>() {
      gather_kernel<T, I><<<grid_for(total, dev), kThreads, 0, st>>>(
          src.data<T>(), index.data<I>(), n, m, inner, out.data<T>(), total, fault.slot());
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  fault.check("gather", index, n);
}

void CudaBackend::scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                              int64_t inner, Tensor& out) {
  int64_t total = outer * m * inner;
  if (total == 0) return;
  int dev = device_of(src);
  cudaStream_t st = stream_for(src);
  Scratch keys(size_t(total) * 2 * sizeof(uint64_t), dev), values(size_t(total) * 2 * sizeof(int64_t), dev);
  uint64_t* k = keys.as<uint64_t>();
  int64_t* v = values.as<int64_t>();
  IndexFault fault(dev);
  for_index_dtype(index.dtype(), "scatter_add", [&]<typename I>() {
    scatter_keys_kernel<I>
        <<<grid_for(total, dev), kThreads, 0, st>>>(index.data<I>(), n, m, inner, total, k, v, fault.slot());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  fault.check("scatter_add", index, n);
  sort_pairs(k, k + total, v, v + total, total, key_bits_for(uint64_t(outer * inner * n - 1)), dev);
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    scatter_runs_kernel<T><<<grid_for(total, dev), kThreads, 0, st>>>(src.data<T>(), k + total, v + total,
                                                                      total, n, inner, out.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::index_select_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = src.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(M, 1);
  if (M * R == 0) return;
  int dev = device_of(src);
  cudaStream_t st = stream_for(src);
  IndexFault fault(dev);
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    for_index_dtype(index.dtype(), "index_select_rows", [&]<typename I>() {
      index_select_rows_kernel<T, I><<<grid_for(M * R, dev), kThreads, 0, st>>>(
          src.data<T>(), index.data<I>(), N, R, out.data<T>(), M * R, fault.slot());
    });
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  fault.check("index_select_rows", index, N);
}

void CudaBackend::index_add_rows(const Tensor& src, const Tensor& index, Tensor& out) {
  int64_t N = out.size(0), M = index.numel(), R = out.numel() / std::max<int64_t>(N, 1);
  if (M == 0 || R == 0) return;
  int dev = device_of(out);
  cudaStream_t st = stream_for(out);
  Scratch keys(size_t(M) * 2 * sizeof(uint64_t), dev), values(size_t(M) * 2 * sizeof(int64_t), dev);
  uint64_t* k = keys.as<uint64_t>();
  int64_t* v = values.as<int64_t>();
  IndexFault fault(dev);
  for_index_dtype(index.dtype(), "index_add_rows", [&]<typename I>() {
    row_keys_kernel<I><<<grid_for(M, dev), kThreads, 0, st>>>(index.data<I>(), N, M, k, v, fault.slot());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
  fault.check("index_add_rows", index, N);
  sort_pairs(k, k + M, v, v + M, M, key_bits_for(uint64_t(N - 1)), dev);
  dispatch_dtype(src.dtype(), [&]<typename T>() {
    add_row_runs_kernel<T>
        <<<grid_for(M * R, dev), kThreads, 0, st>>>(src.data<T>(), k + M, v + M, M, R, out.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::topk(const Tensor& x, int64_t k, Tensor& values, Tensor& indices) {
  int64_t M = x.size(0), N = x.size(1);
  MOELAB_CHECK(k >= 0 && k <= N, "topk: k = " << k << " for rows of " << N);
  if (M == 0 || k == 0) return;
  cudaStream_t st = stream_for(x);
  for_float_dtype(x.dtype(), "topk", [&]<typename T>() {
    topk_kernel<T><<<row_grid(M), kRowThreads, 0, st>>>(x.data<T>(), M, N, k, values.data<T>(),
                                                        indices.data<int64_t>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
