// cuda: the grouped expert FFN of the MoE layer and its backward (docs/moe.md §3 step 4 and 6). Each
// expert's rows are one contiguous segment; the GEMMs of all non-empty experts run as one cuBLAS grouped
// batched GEMM per weight (gemm.cpp), sized from the expert offsets on the host. Host synchronization:
// given a device tensor for expert_offsets, each call reads it back once (a small device->host copy);
// given a host tensor (as the interface intends), none. Bias, activation and their gradients are
// element-wise kernels over the shared per-element functions; bias gradients are per-expert column sums
// in row order (deterministic).
#include <vector>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/gemm.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

template <ExpertActivation A, typename T>
__device__ __forceinline__ T act_value(T h) {
  if constexpr (A == ExpertActivation::relu)
    return kern::unary<UnaryOp::relu, T>(h, T(0));
  else if constexpr (A == ExpertActivation::gelu)
    return kern::unary<UnaryOp::gelu_tanh, T>(h, T(0));
  else
    return kern::unary<UnaryOp::silu, T>(h, T(0));
}
template <ExpertActivation A, typename T>
__device__ __forceinline__ T act_derivative(T h, T y) {
  if constexpr (A == ExpertActivation::relu)
    return kern::unary_derivative<UnaryOp::relu, T>(h, y, T(0));
  else if constexpr (A == ExpertActivation::gelu)
    return kern::unary_derivative<UnaryOp::gelu_tanh, T>(h, y, T(0));
  else
    return kern::unary_derivative<UnaryOp::silu, T>(h, y, T(0));
}

// The expert owning row r: the last e with offsets[e] <= r (empty experts are skipped over).
__device__ __forceinline__ int64_t expert_of_row(const int64_t* offsets, int64_t E, int64_t r) {
  int64_t lo = 0, hi = E;  // offsets[lo] <= r < offsets[hi]
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    if (offsets[mid] <= r)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

// h += b1[e]; a = act(h) (* g for swiglu). h, g, a: (R, f)
template <ExpertActivation A, typename T>
__global__ void bias_act_kernel(T* h, const T* g, T* a, const T* b1, const int64_t* offsets, int64_t E,
                                int64_t R, int64_t f) {
  MOELAB_GRID_STRIDE(idx, R * f) {
    int64_t r = idx / f, j = idx % f;
    T hv = h[idx] + (b1 ? b1[expert_of_row(offsets, E, r) * f + j] : T(0));
    h[idx] = hv;
    T av = act_value<A>(hv);
    if constexpr (A == ExpertActivation::swiglu) av *= g[idx];
    a[idx] = av;
  }
}

// y += b2[e]. y: (R, d)
template <typename T>
__global__ void add_row_bias_kernel(T* y, const T* b2, const int64_t* offsets, int64_t E, int64_t R,
                                    int64_t d) {
  MOELAB_GRID_STRIDE(idx, R * d) {
    int64_t r = idx / d, j = idx % d;
    y[idx] += b2[expert_of_row(offsets, E, r) * d + j];
  }
}

// da -> dh = da * act'(h) (* g), dg = da * act(h) for swiglu (in place: da becomes dh).
template <ExpertActivation A, typename T>
__global__ void act_backward_kernel(T* da_dh, T* dg, const T* h, const T* g, int64_t n) {
  MOELAB_GRID_STRIDE(idx, n) {
    T hv = h[idx], av = act_value<A>(hv), da = da_dh[idx];
    if constexpr (A == ExpertActivation::swiglu) {
      da_dh[idx] = da * g[idx] * act_derivative<A>(hv, av);
      dg[idx] = da * av;
    } else {
      da_dh[idx] = da * act_derivative<A>(hv, av);
    }
  }
}

// gb[e, j] = sum over expert e's rows (in order) of src[r, j]. src: (R, cols), gb: (E, cols)
template <typename T>
__global__ void segment_column_sums_kernel(const T* src, const int64_t* offsets, int64_t E, int64_t cols,
                                           T* gb) {
  MOELAB_GRID_STRIDE(idx, E * cols) {
    int64_t e = idx / cols, j = idx % cols;
    double acc = 0;
    for (int64_t r = offsets[e]; r < offsets[e + 1]; ++r) acc += static_cast<double>(src[r * cols + j]);
    gb[idx] = static_cast<T>(acc);
  }
}

template <typename F>
void dispatch_activation(ExpertActivation act, F&& f) {
  switch (act) {
    case ExpertActivation::relu:
      return f.template operator()<ExpertActivation::relu>();
    case ExpertActivation::gelu:
      return f.template operator()<ExpertActivation::gelu>();
    case ExpertActivation::swiglu:
      return f.template operator()<ExpertActivation::swiglu>();
  }
  MOELAB_FAIL("cuda moe: unknown expert activation");
}

// Host expert offsets (E+1) and a device copy for the kernels.
struct Segments {
  std::vector<int64_t> host;
  Scratch device;
  Segments(const Tensor& offsets, int64_t E, int64_t R, int dev)
      : host(offsets.to_vector<int64_t>()), device(host.size() * sizeof(int64_t), dev) {
    MOELAB_CHECK(static_cast<int64_t>(host.size()) == E + 1 && host.front() == 0 && host.back() == R,
                 "cuda moe_expert_ffn: expert_offsets must run from 0 to R = " << R << " over E + 1 = "
                                                                               << E + 1 << " entries");
    for (int64_t e = 0; e < E; ++e)
      MOELAB_CHECK(host[e] <= host[e + 1], "cuda moe_expert_ffn: expert_offsets decrease at expert " << e);
    MOELAB_CUDA_CHECK(cudaMemcpyAsync(device.get(), host.data(), host.size() * sizeof(int64_t),
                                      cudaMemcpyHostToDevice, stream(dev)));
  }
  int64_t rows(int64_t e) const { return host[e + 1] - host[e]; }
  const int64_t* dev() const { return device.as<int64_t>(); }
};

// One product per non-empty expert e: C_e = op(A_e) op(B_e), built by `make(e, rows)`.
template <typename T, typename Make>
std::vector<RowMajorGemm<T>> per_expert(const Segments& seg, int64_t E, Make&& make) {
  std::vector<RowMajorGemm<T>> gemms;
  for (int64_t e = 0; e < E; ++e)
    if (seg.rows(e) > 0) gemms.push_back(make(e, seg.host[e], seg.rows(e)));
  return gemms;
}

}  // namespace

void CudaBackend::moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                                 Tensor& h, Tensor& g, Tensor& a, Tensor& y_rows) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2), R = x_rows.size(0);
  if (R == 0) return;
  int dev = device_of(x_rows);
  cudaStream_t st = stream_for(x_rows);
  Segments seg(expert_offsets, E, R, dev);
  bool swiglu = w.act == ExpertActivation::swiglu;
  for_float_dtype(x_rows.dtype(), "moe_expert_ffn", [&]<typename T>() {
    const T *x = x_rows.data<T>(), *w1 = w.w1.data<T>(), *w2 = w.w2.data<T>();
    T *ph = h.data<T>(), *pa = a.data<T>(), *py = y_rows.data<T>();
    if (f > 0 && d > 0) {
      // h_e = x_e W1[e]; g_e = x_e W3[e] (swiglu)
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{x + r0 * d, w1 + e * d * f, ph + r0 * f, n, f,
                                                             d};
                                    }),
                      1.0, 0.0, dev);
      if (swiglu) {
        const T* w3 = w.w3.data<T>();
        T* pg = g.data<T>();
        gemm_grouped<T>(per_expert<T>(seg, E,
                                      [&](int64_t e, int64_t r0, int64_t n) {
                                        return RowMajorGemm<T>{x + r0 * d, w3 + e * d * f, pg + r0 * f, n, f,
                                                               d};
                                      }),
                        1.0, 0.0, dev);
      }
    } else if (R * f > 0) {  // d == 0: empty products
      MOELAB_CUDA_CHECK(cudaMemsetAsync(ph, 0, size_t(R * f) * sizeof(T), st));
      if (swiglu) MOELAB_CUDA_CHECK(cudaMemsetAsync(g.data<T>(), 0, size_t(R * f) * sizeof(T), st));
    }
    if (R * f > 0) {
      dispatch_activation(w.act, [&]<ExpertActivation A>() {
        bias_act_kernel<A, T><<<grid_for(R * f, dev), kThreads, 0, st>>>(
            ph, swiglu ? g.data<T>() : nullptr, pa, w.b1.defined() ? w.b1.data<T>() : nullptr, seg.dev(), E,
            R, f);
      });
      MOELAB_CUDA_CHECK_LAUNCH();
    }
    if (d == 0) return;
    // y_e = a_e W2[e] + b2[e]
    if (f > 0)
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{
                                          pa + r0 * f, w2 + e * f * d, py + r0 * d, n, d, f};
                                    }),
                      1.0, 0.0, dev);
    else
      MOELAB_CUDA_CHECK(cudaMemsetAsync(py, 0, size_t(R * d) * sizeof(T), st));
    if (w.b2.defined()) {
      add_row_bias_kernel<T>
          <<<grid_for(R * d, dev), kThreads, 0, st>>>(py, w.b2.data<T>(), seg.dev(), E, R, d);
      MOELAB_CUDA_CHECK_LAUNCH();
    }
  });
}

void CudaBackend::moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets,
                                          const ExpertWeights& w, const Tensor& h, const Tensor& g,
                                          const Tensor& a, const Tensor& gy_rows, Tensor& gx_rows,
                                          ExpertWeights& grads) {
  int64_t E = w.w1.size(0), d = w.w1.size(1), f = w.w1.size(2), R = x_rows.size(0);
  int dev = device_of(x_rows);
  cudaStream_t st = stream_for(x_rows);
  Segments seg(expert_offsets, E, R, dev);
  bool swiglu = w.act == ExpertActivation::swiglu;
  for_float_dtype(x_rows.dtype(), "moe_expert_ffn_backward", [&]<typename T>() {
    // Weight gradients of experts without rows are zero; the GEMMs below overwrite the others.
    auto zero_empty = [&](Tensor& t, int64_t per_expert_elems) {
      if (!t.defined()) return;
      for (int64_t e = 0; e < E; ++e)
        if (seg.rows(e) == 0 && per_expert_elems > 0)
          MOELAB_CUDA_CHECK(cudaMemsetAsync(t.data<T>() + e * per_expert_elems, 0,
                                            size_t(per_expert_elems) * sizeof(T), st));
    };
    zero_empty(grads.w1, d * f);
    zero_empty(grads.w2, f * d);
    zero_empty(grads.w3, d * f);
    if (R > 0 && (d == 0 || f == 0)) {  // empty inner dims: the products below are empty sums
      for (Tensor* t : {&grads.w1, &grads.w2, &grads.w3, &gx_rows})
        if (t->defined() && t->numel() > 0)
          MOELAB_CUDA_CHECK(cudaMemsetAsync(t->raw_data(), 0, t->nbytes(), st));
    }
    const T *x = x_rows.data<T>(), *w1 = w.w1.data<T>(), *w2 = w.w2.data<T>(), *gy = gy_rows.data<T>();
    const T *ph = h.data<T>(), *pa = a.data<T>();
    Scratch dh_buf(size_t(R * f) * sizeof(T), dev), dg_buf(swiglu ? size_t(R * f) * sizeof(T) : 0, dev);
    T *dh = dh_buf.as<T>(), *dg = dg_buf.as<T>();
    bool products = R > 0 && d > 0 && f > 0;
    if (products) {
      // da_e = gy_e W2[e]^T -> dh (and dg) in place
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{gy + r0 * d, w2 + e * f * d, dh + r0 * f, n, f,
                                                             d,           false,          true};
                                    }),
                      1.0, 0.0, dev);
      dispatch_activation(w.act, [&]<ExpertActivation A>() {
        act_backward_kernel<A, T>
            <<<grid_for(R * f, dev), kThreads, 0, st>>>(dh, dg, ph, swiglu ? g.data<T>() : nullptr, R * f);
      });
      MOELAB_CUDA_CHECK_LAUNCH();
      // gW2[e] = a_e^T gy_e; gW1[e] = x_e^T dh_e; gW3[e] = x_e^T dg_e
      T* gw2 = grads.w2.data<T>();
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{
                                          pa + r0 * f, gy + r0 * d, gw2 + e * f * d, f, d, n, true, false};
                                    }),
                      1.0, 0.0, dev);
      T* gw1 = grads.w1.data<T>();
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{
                                          x + r0 * d, dh + r0 * f, gw1 + e * d * f, d, f, n, true, false};
                                    }),
                      1.0, 0.0, dev);
      if (swiglu) {
        T* gw3 = grads.w3.data<T>();
        gemm_grouped<T>(per_expert<T>(seg, E,
                                      [&](int64_t e, int64_t r0, int64_t n) {
                                        return RowMajorGemm<T>{
                                            x + r0 * d, dg + r0 * f, gw3 + e * d * f, d, f, n, true, false};
                                      }),
                        1.0, 0.0, dev);
      }
      // gx_e = dh_e W1[e]^T (+ dg_e W3[e]^T)
      T* gx = gx_rows.data<T>();
      gemm_grouped<T>(per_expert<T>(seg, E,
                                    [&](int64_t e, int64_t r0, int64_t n) {
                                      return RowMajorGemm<T>{dh + r0 * f, w1 + e * d * f, gx + r0 * d, n, d,
                                                             f,           false,          true};
                                    }),
                      1.0, 0.0, dev);
      if (swiglu) {
        const T* w3 = w.w3.data<T>();
        gemm_grouped<T>(per_expert<T>(seg, E,
                                      [&](int64_t e, int64_t r0, int64_t n) {
                                        return RowMajorGemm<T>{dg + r0 * f, w3 + e * d * f, gx + r0 * d, n, d,
                                                               f,           false,          true};
                                      }),
                        1.0, 1.0, dev);
      }
    } else if (R > 0 && f > 0) {
      MOELAB_CUDA_CHECK(cudaMemsetAsync(dh, 0, size_t(R * f) * sizeof(T), st));  // d == 0: da is an empty sum
    }
    // Bias gradients: per-expert column sums of gy (b2) and dh (b1), zero for experts without rows.
    if (grads.b2.defined() && E * d > 0) {
      segment_column_sums_kernel<T>
          <<<grid_for(E * d, dev), kThreads, 0, st>>>(gy, seg.dev(), E, d, grads.b2.data<T>());
      MOELAB_CUDA_CHECK_LAUNCH();
    }
    if (grads.b1.defined() && E * f > 0) {
      segment_column_sums_kernel<T>
          <<<grid_for(E * f, dev), kThreads, 0, st>>>(dh, seg.dev(), E, f, grads.b1.data<T>());
      MOELAB_CUDA_CHECK_LAUNCH();
    }
  });
}

}  // namespace moelab
