// cpu: matmul on OpenBLAS (its OpenMP build shares our thread pool).
#include "core/backend/cpu/blas.h"
#include "core/backend/cpu/cpu_backend.h"
#include "core/backend/cpu/parallel.h"

namespace moelab {

using cpu::gemm;

void CpuBackend::matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b,
                        double alpha, double beta) {
  int64_t B = out.size(0), M = out.size(1), N = out.size(2);
  int64_t K = trans_a ? a.size(1) : a.size(2);
  if (M == 0 || N == 0) return;
  if (K == 0) {  // an empty sum: out = beta * out
    if (beta == 0)
      fill(out, 0.0);
    else if (beta != 1)
      unary(UnaryOp::mul_scalar, out, out, beta);
    return;
  }
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (!std::is_floating_point_v<T>) {
      ref_backend().matmul(a, b, out, trans_a, trans_b, alpha, beta);
    } else {
      const T *pa = a.data<T>(), *pb = b.data<T>();
      T* po = out.data<T>();
      int64_t lda = trans_a ? M : K, ldb = trans_b ? K : N;
      if (b.size(0) == 1 && !trans_a && a.size(0) == B) {
        // One shared right matrix: fold the batch into M for a single large GEMM.
        gemm<T>(false, trans_b, B * M, N, K, alpha, pa, lda, pb, ldb, beta, po, N);
        return;
      }
      int64_t sa = a.size(0) == 1 ? 0 : a.size(1) * a.size(2),
              sb = b.size(0) == 1 ? 0 : b.size(1) * b.size(2);
      if (B > 1 && M * N * K < (int64_t(1) << 18)) {
        // Many small products (attention heads): batches split across threads, BLAS single-threaded inside;
        // tiny batches stay on one thread (a parallel region costs more than they do).
        int64_t step = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(M * N * K, 1));
        cpu::parallel_chunks(B, step, [&](int64_t, int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i)
            gemm<T>(trans_a, trans_b, M, N, K, alpha, pa + i * sa, lda, pb + i * sb, ldb, beta,
                    po + i * M * N, N);
        });
        return;
      }
      for (int64_t i = 0; i < B; ++i)
        gemm<T>(trans_a, trans_b, M, N, K, alpha, pa + i * sa, lda, pb + i * sb, ldb, beta, po + i * M * N,
                N);
    }
  });
}

}  // namespace moelab
