// cuda: batched matmul on cuBLAS (row-major mapping in gemm.cpp). f32 uses plain FP32 maths unless
// set_cuda_allow_tf32(true) (core/backend/device_select.h). Integer matmuls take a plain kernel.
#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/gemm.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

// Integer products (rare: masks and counts), one thread per output, accumulated in double as in `ref`.
template <typename T>
__global__ void matmul_int_kernel(const T* a, const T* b, T* out, int64_t B, int64_t M, int64_t N, int64_t K,
                                  int64_t sa, int64_t sb, bool ta, bool tb, double alpha, double beta) {
  MOELAB_GRID_STRIDE(idx, B * M * N) {
    int64_t n = idx % N, m = (idx / N) % M, bi = idx / (M * N);
    double acc = 0;
    for (int64_t k = 0; k < K; ++k) {
      double av = ta ? double(a[bi * sa + k * M + m]) : double(a[bi * sa + m * K + k]);
      double bv = tb ? double(b[bi * sb + n * K + k]) : double(b[bi * sb + k * N + n]);
      acc += av * bv;
    }
    out[idx] = static_cast<T>(alpha * acc + (beta == 0 ? 0.0 : beta * double(out[idx])));
  }
}

}  // namespace

void CudaBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b,
                         double alpha, double beta) {
  // a: (Ba, M, K) [trans_a: (Ba, K, M)], b: (Bb, K, N) [trans_b: (Bb, N, K)] -> out: (B, M, N); Ba, Bb in {B,
  // 1}
  int64_t B = out.size(0), M = out.size(1), N = out.size(2);
  int64_t K = trans_a ? a.size(1) : a.size(2);
  if (B == 0 || M == 0 || N == 0) return;
  MOELAB_CHECK(a.is_contiguous() && b.is_contiguous() && out.is_contiguous(),
               "cuda matmul: operands must be contiguous");
  int dev = device_of(out);
  cudaStream_t st = stream_for(out);
  int64_t sa = a.size(0) == 1 ? 0 : a.size(1) * a.size(2), sb = b.size(0) == 1 ? 0 : b.size(1) * b.size(2);
  if (!is_floating(out.dtype())) {
    dispatch_dtype(out.dtype(), [&]<typename T>() {
      matmul_int_kernel<T><<<grid_for(B * M * N, dev), kThreads, 0, st>>>(
          a.data<T>(), b.data<T>(), out.data<T>(), B, M, N, K, sa, sb, trans_a, trans_b, alpha, beta);
    });
    MOELAB_CUDA_CHECK_LAUNCH();
    return;
  }
  if (K == 0) {  // an empty sum: out = beta * out
    if (beta == 0)
      fill(out, 0.0);
    else if (beta != 1)
      unary(UnaryOp::mul_scalar, out, out, beta);
    return;
  }
  for_float_dtype(out.dtype(), "matmul", [&]<typename T>() {
    RowMajorGemm<T> g{a.data<T>(), b.data<T>(), out.data<T>(), M, N, K, trans_a, trans_b};
    if (b.size(0) == 1 && !trans_a && a.size(0) == B) {
      g.M = B * M;  // one shared right matrix: the batch folds into the rows of a single GEMM
      gemm_strided_batched<T>(g, 0, 0, 0, 1, alpha, beta, dev);
    } else {
      gemm_strided_batched<T>(g, sa, sb, M * N, B, alpha, beta, dev);
    }
  });
}

}  // namespace moelab
