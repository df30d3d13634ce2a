// cuda: fused scaled dot-product attention with causal and key-padding masks, forward and backward, as
// straightforward row kernels (one block per query row, or per key row for dk and dv). Scores are
// recomputed where needed and never stored whole; sums run in double in a fixed order (no atomics).
// Extra memory: delta (B, H, Tq) in double.
#include <limits>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"
#include "core/kernels/attention.h"

namespace moelab {

using namespace cuda;

namespace {

struct AttnDims {
  int64_t B, H, Tq, Tk, D, Dv;
  bool causal;
  double scale;
};

template <typename T>
struct HeadView {  // one (B, H, T, D) operand with a unit last-dim stride
  const T* data;
  kern::HeadStrides s;
  __device__ __forceinline__ const T* row(int64_t b, int64_t h, int64_t t) const {
    return data + b * s.batch + h * s.head + t * s.row;
  }
};
template <typename T>
HeadView<T> head_view(const Tensor& x) {
  return {x.data<T>(), {x.strides()[0], x.strides()[1], x.strides()[2]}};
}

template <typename T>
__device__ __forceinline__ double dot(const T* a, const T* b, int64_t n) {
  double s = 0;
  for (int64_t d = 0; d < n; ++d) s += static_cast<double>(a[d]) * static_cast<double>(b[d]);
  return s;
}

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// One block per query row: the row max and sum over the seen keys, then out in chunks of kRowThreads
// keys whose probabilities go through shared memory.
template <typename T>
__global__ void attention_forward_kernel(HeadView<T> q, HeadView<T> k, HeadView<T> v,
                                         const int32_t* key_valid, AttnDims n, T* out, T* lse) {
  __shared__ double p_chunk[kRowThreads];
  const int64_t rows = n.B * n.H * n.Tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % n.Tq, b = r / (n.H * n.Tq), h = (r / n.Tq) % n.H;
    const int32_t* valid = key_valid ? key_valid + b * n.Tk : nullptr;
    const T* qi = q.row(b, h, i);
    double mx = kNegInf;
    for (int64_t j = threadIdx.x; j < n.Tk; j += kRowThreads)
      if (kern::attention_sees(i, j, n.Tq, n.Tk, n.causal, valid)) {
        double s = n.scale * dot(qi, k.row(b, h, j), n.D);
        mx = s > mx ? s : mx;
      }
    mx = block_reduce(mx, MaxOp{});
    T* oi = out + r * n.Dv;
    if (mx == kNegInf) {  // the query sees no key
      for (int64_t d = threadIdx.x; d < n.Dv; d += kRowThreads) oi[d] = T(0);
      if (threadIdx.x == 0) lse[r] = -std::numeric_limits<T>::infinity();
      continue;
    }
    double sum = 0;
    for (int64_t j = threadIdx.x; j < n.Tk; j += kRowThreads)
      if (kern::attention_sees(i, j, n.Tq, n.Tk, n.causal, valid))
        sum += exp(n.scale * dot(qi, k.row(b, h, j), n.D) - mx);
    sum = block_sum(sum);
    if (threadIdx.x == 0) lse[r] = static_cast<T>(mx + log(sum));
    for (int64_t d0 = 0; d0 < n.Dv; d0 += kRowThreads) {
      const int64_t d = d0 + threadIdx.x;
      double acc = 0;
      for (int64_t j0 = 0; j0 < n.Tk; j0 += kRowThreads) {
        const int64_t j = j0 + threadIdx.x;
        p_chunk[threadIdx.x] = j < n.Tk && kern::attention_sees(i, j, n.Tq, n.Tk, n.causal, valid)
                                   ? exp(n.scale * dot(qi, k.row(b, h, j), n.D) - mx) / sum
                                   : 0.0;
        __syncthreads();
        const int64_t m = n.Tk - j0 < kRowThreads ? n.Tk - j0 : kRowThreads;
        if (d < n.Dv)
          for (int64_t c = 0; c < m; ++c) acc += p_chunk[c] * static_cast<double>(v.row(b, h, j0 + c)[d]);
        __syncthreads();
      }
      if (d < n.Dv) oi[d] = static_cast<T>(acc);
    }
  }
}

// delta (B*H*Tq) = rowsum(gout * out), one block per row.
template <typename T>
__global__ void attention_delta_kernel(HeadView<T> gout, const T* out, AttnDims n, double* delta) {
  const int64_t rows = n.B * n.H * n.Tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % n.Tq, b = r / (n.H * n.Tq), h = (r / n.Tq) % n.H;
    const T *g = gout.row(b, h, i), *o = out + r * n.Dv;
    double s = 0;
    for (int64_t d = threadIdx.x; d < n.Dv; d += kRowThreads)
      s += static_cast<double>(g[d]) * static_cast<double>(o[d]);
    s = block_sum(s);
    if (threadIdx.x == 0) delta[r] = s;
  }
}

// p and ds = p (gout_i . v_j - delta_i) of one (query, key) pair; both 0 when i does not see j.
template <typename T>
__device__ __forceinline__ void pair_grad(const HeadView<T>& q, const HeadView<T>& k, const HeadView<T>& v,
                                          const HeadView<T>& gout, const T* lse, const double* delta,
                                          const int32_t* valid, const AttnDims& n, int64_t b, int64_t h,
                                          int64_t i, int64_t j, double& p, double& ds) {
  p = ds = 0;
  if (!kern::attention_sees(i, j, n.Tq, n.Tk, n.causal, valid)) return;
  const int64_t r = (b * n.H + h) * n.Tq + i;
  p = exp(n.scale * dot(q.row(b, h, i), k.row(b, h, j), n.D) - static_cast<double>(lse[r]));
  ds = p * (dot(gout.row(b, h, i), v.row(b, h, j), n.Dv) - delta[r]);
}

// gq: one block per query row, keys in chunks.
template <typename T>
__global__ void attention_dq_kernel(HeadView<T> q, HeadView<T> k, HeadView<T> v, HeadView<T> gout,
                                    const int32_t* key_valid, const T* lse, const double* delta, AttnDims n,
                                    T* gq) {
  __shared__ double ds_chunk[kRowThreads];
  const int64_t rows = n.B * n.H * n.Tq;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t i = r % n.Tq, b = r / (n.H * n.Tq), h = (r / n.Tq) % n.H;
    const int32_t* valid = key_valid ? key_valid + b * n.Tk : nullptr;
    for (int64_t d0 = 0; d0 < n.D; d0 += kRowThreads) {
      const int64_t d = d0 + threadIdx.x;
      double acc = 0;
      for (int64_t j0 = 0; j0 < n.Tk; j0 += kRowThreads) {
        const int64_t j = j0 + threadIdx.x;
        double p = 0, ds = 0;
        if (j < n.Tk) pair_grad(q, k, v, gout, lse, delta, valid, n, b, h, i, j, p, ds);
        ds_chunk[threadIdx.x] = ds;
        __syncthreads();
        const int64_t m = n.Tk - j0 < kRowThreads ? n.Tk - j0 : kRowThreads;
        if (d < n.D)
          for (int64_t c = 0; c < m; ++c) acc += ds_chunk[c] * static_cast<double>(k.row(b, h, j0 + c)[d]);
        __syncthreads();
      }
      if (d < n.D) gq[r * n.D + d] = static_cast<T>(n.scale * acc);
    }
  }
}

// gk, gv: one block per key row, queries in chunks.
template <typename T>
__global__ void attention_dkv_kernel(HeadView<T> q, HeadView<T> k, HeadView<T> v, HeadView<T> gout,
                                     const int32_t* key_valid, const T* lse, const double* delta, AttnDims n,
                                     T* gk, T* gv) {
  __shared__ double p_chunk[kRowThreads], ds_chunk[kRowThreads];
  const int64_t rows = n.B * n.H * n.Tk, width = n.D > n.Dv ? n.D : n.Dv;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t j = r % n.Tk, b = r / (n.H * n.Tk), h = (r / n.Tk) % n.H;
    const int32_t* valid = key_valid ? key_valid + b * n.Tk : nullptr;
    for (int64_t d0 = 0; d0 < width; d0 += kRowThreads) {
      const int64_t d = d0 + threadIdx.x;
      double acc_k = 0, acc_v = 0;
      for (int64_t i0 = 0; i0 < n.Tq; i0 += kRowThreads) {
        const int64_t i = i0 + threadIdx.x;
        double p = 0, ds = 0;
        if (i < n.Tq) pair_grad(q, k, v, gout, lse, delta, valid, n, b, h, i, j, p, ds);
        p_chunk[threadIdx.x] = p;
        ds_chunk[threadIdx.x] = ds;
        __syncthreads();
        const int64_t m = n.Tq - i0 < kRowThreads ? n.Tq - i0 : kRowThreads;
        for (int64_t c = 0; c < m; ++c) {
          if (d < n.D) acc_k += ds_chunk[c] * static_cast<double>(q.row(b, h, i0 + c)[d]);
          if (d < n.Dv) acc_v += p_chunk[c] * static_cast<double>(gout.row(b, h, i0 + c)[d]);
        }
        __syncthreads();
      }
      if (d < n.D) gk[r * n.D + d] = static_cast<T>(n.scale * acc_k);
      if (d < n.Dv) gv[r * n.Dv + d] = static_cast<T>(acc_v);
    }
  }
}

AttnDims dims_of(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  return {q.size(0), q.size(1), q.size(2), k.size(2), q.size(3), v.size(3), causal, scale};
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& key_valid, bool causal, double scale, Tensor& out,
                                    Tensor& lse) {
  AttnDims n = dims_of(q, k, v, causal, scale);
  const int64_t rows = n.B * n.H * n.Tq;
  if (rows == 0) return;
  cudaStream_t st = stream_for(q);
  const int32_t* valid = key_valid.defined() ? key_valid.data<int32_t>() : nullptr;
  for_float_dtype(q.dtype(), "attention_forward", [&]<typename T>() {
    attention_forward_kernel<T><<<row_grid(rows), kRowThreads, 0, st>>>(
        head_view<T>(q), head_view<T>(k), head_view<T>(v), valid, n, out.data<T>(), lse.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

void CudaBackend::attention_backward(const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& key_valid, bool causal, double scale, const Tensor& out,
                                     const Tensor& lse, const Tensor& gout, Tensor& gq, Tensor& gk,
                                     Tensor& gv) {
  AttnDims n = dims_of(q, k, v, causal, scale);
  const int64_t qrows = n.B * n.H * n.Tq, krows = n.B * n.H * n.Tk;
  cudaStream_t st = stream_for(q);
  const int32_t* valid = key_valid.defined() ? key_valid.data<int32_t>() : nullptr;
  Scratch delta(static_cast<size_t>(qrows) * sizeof(double), device_of(q));
  for_float_dtype(q.dtype(), "attention_backward", [&]<typename T>() {
    HeadView<T> qv = head_view<T>(q), kv = head_view<T>(k), vv = head_view<T>(v), gv_in = head_view<T>(gout);
    if (qrows > 0) {
      attention_delta_kernel<T>
          <<<row_grid(qrows), kRowThreads, 0, st>>>(gv_in, out.data<T>(), n, delta.as<double>());
      attention_dq_kernel<T><<<row_grid(qrows), kRowThreads, 0, st>>>(qv, kv, vv, gv_in, valid, lse.data<T>(),
                                                                      delta.as<double>(), n, gq.data<T>());
    }
    if (krows > 0)
      attention_dkv_kernel<T><<<row_grid(krows), kRowThreads, 0, st>>>(
          qv, kv, vv, gv_in, valid, lse.data<T>(), delta.as<double>(), n, gk.data<T>(), gv.data<T>());
  });
  MOELAB_CUDA_CHECK_LAUNCH();
}

}  // namespace moelab
