// cuda: batched matmul on cuBLAS. cuBLAS is column-major, and a row-major matrix read column-major is its
// transpose, so the row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T:
// the operands swap places and keep their transpose flags. f32 uses plain FP32 maths unless
// set_cuda_allow_tf32(true) (core/backend/device_select.h). Integer matmuls take a plain kernel.
#include <climits>

#include "core/backend/cuda/cuda_backend.h"
#include "core/backend/cuda/kernel_util.cuh"

namespace moelab {

using namespace cuda;

namespace {

template <typename T>
void gemm_strided_batched(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n, int k,
                          T alpha, const T* a, int lda, long long stride_a, const T* b, int ldb, long long stride_b,
                          T beta, T* c, int ldc, long long stride_c, int batch) {
  if constexpr (std::is_same_v<T, float>) {
    if (batch == 1)
      MOELAB_CUBLAS_CHECK(cublasSgemm(h, op_a, op_b, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
    else
      MOELAB_CUBLAS_CHECK(cublasSgemmStridedBatched(h, op_a, op_b, m, n, k, &alpha, a, lda, stride_a, b, ldb,
                                                    stride_b, &beta, c, ldc, stride_c, batch));
  } else {
    if (batch == 1)
      MOELAB_CUBLAS_CHECK(cublasDgemm(h, op_a, op_b, m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc));
    else
      MOELAB_CUBLAS_CHECK(cublasDgemmStridedBatched(h, op_a, op_b, m, n, k, &alpha, a, lda, stride_a, b, ldb,
                                                    stride_b, &beta, c, ldc, stride_c, batch));
  }
}

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

void CudaBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b, double alpha,
                         double beta) {
  // a: (Ba, M, K) [trans_a: (Ba, K, M)], b: (Bb, K, N) [trans_b: (Bb, N, K)] -> out: (B, M, N); Ba, Bb in {B, 1}
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
    if (beta == 0) fill(out, 0.0);
    else if (beta != 1) unary(UnaryOp::mul_scalar, out, out, beta);
    return;
  }
  cublasHandle_t h = cublas(dev);
  for_float_dtype(out.dtype(), "matmul", [&]<typename T>() {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* po = out.data<T>();
    cublasOperation_t op_first = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;   // row-major b, read column-major
    cublasOperation_t op_second = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;  // row-major a, read column-major
    int64_t ld_first = trans_b ? K : N, ld_second = trans_a ? M : K;
    int64_t rows = M, batch = B;
    if (b.size(0) == 1 && !trans_a && a.size(0) == B) {
      rows = B * M;  // one shared right matrix: the batch folds into the rows of a single GEMM
      batch = 1;
    }
    MOELAB_CHECK(rows <= INT_MAX && N <= INT_MAX && K <= INT_MAX && batch <= INT_MAX,
                 "cuda matmul: dimensions exceed cuBLAS's 32-bit sizes");
    gemm_strided_batched<T>(h, op_first, op_second, int(N), int(rows), int(K), T(alpha), pb, int(ld_first), sb, pa,
                            int(ld_second), sa, T(beta), po, int(N), M * N, int(batch));
  });
}

}  // namespace moelab
