// cuda: row-major GEMMs on cuBLAS: strided-batched (matmul) and grouped (MoE expert segments).
#include "core/backend/cuda/gemm.h"

#include <climits>

#include "core/backend/cuda/cuda_util.h"

namespace moelab::cuda {

namespace {

// The column-major description of a row-major product: C^T = op(B)^T op(A)^T.
struct ColumnMajor {
  cublasOperation_t op_first, op_second;
  int m, n, k, ld_first, ld_second, ldc;
};

template <typename T>
ColumnMajor column_major(const RowMajorGemm<T>& g) {
  MOELAB_CHECK(g.M <= INT_MAX && g.N <= INT_MAX && g.K <= INT_MAX,
               "cuda gemm: (" << g.M << " x " << g.K << ") @ (" << g.K << " x " << g.N
                              << ") exceeds cuBLAS's 32-bit sizes");
  ColumnMajor c;
  c.op_first = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;  // B first: row-major B read column-major is B^T
  c.op_second = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  c.m = static_cast<int>(g.N);
  c.n = static_cast<int>(g.M);
  c.k = static_cast<int>(g.K);
  c.ld_first = static_cast<int>(g.trans_b ? g.K : g.N);
  c.ld_second = static_cast<int>(g.trans_a ? g.M : g.K);
  c.ldc = static_cast<int>(g.N);
  return c;
}

}  // namespace

template <typename T>
void gemm_strided_batched(const RowMajorGemm<T>& g, int64_t stride_a, int64_t stride_b, int64_t stride_c,
                          int64_t batch, double alpha, double beta, int device) {
  MOELAB_CHECK(batch <= INT_MAX, "cuda gemm: batch " << batch << " exceeds cuBLAS's 32-bit sizes");
  ColumnMajor c = column_major(g);
  cublasHandle_t h = cublas(device);
  T al = static_cast<T>(alpha), be = static_cast<T>(beta);
  if constexpr (std::is_same_v<T, float>) {
    if (batch == 1)
      MOELAB_CUBLAS_CHECK(cublasSgemm(h, c.op_first, c.op_second, c.m, c.n, c.k, &al, g.b, c.ld_first, g.a,
                                      c.ld_second, &be, g.c, c.ldc));
    else
      MOELAB_CUBLAS_CHECK(cublasSgemmStridedBatched(h, c.op_first, c.op_second, c.m, c.n, c.k, &al, g.b,
                                                    c.ld_first, stride_b, g.a, c.ld_second, stride_a, &be,
                                                    g.c, c.ldc, stride_c, static_cast<int>(batch)));
  } else {
    if (batch == 1)
      MOELAB_CUBLAS_CHECK(cublasDgemm(h, c.op_first, c.op_second, c.m, c.n, c.k, &al, g.b, c.ld_first, g.a,
                                      c.ld_second, &be, g.c, c.ldc));
    else
      MOELAB_CUBLAS_CHECK(cublasDgemmStridedBatched(h, c.op_first, c.op_second, c.m, c.n, c.k, &al, g.b,
                                                    c.ld_first, stride_b, g.a, c.ld_second, stride_a, &be,
                                                    g.c, c.ldc, stride_c, static_cast<int>(batch)));
  }
}

template <typename T>
void gemm_grouped(const std::vector<RowMajorGemm<T>>& gemms, double alpha, double beta, int device) {
  if (gemms.empty()) return;
  size_t G = gemms.size();
  std::vector<cublasOperation_t> op_first(G), op_second(G);
  std::vector<int> m(G), n(G), k(G), ld_first(G), ld_second(G), ldc(G), group_size(G, 1);
  std::vector<T> alphas(G, static_cast<T>(alpha)), betas(G, static_cast<T>(beta));
  // Device pointer arrays, packed as [first operands | second operands | outputs].
  std::vector<void*> pointers(3 * G);
  for (size_t i = 0; i < G; ++i) {
    const RowMajorGemm<T>& g = gemms[i];
    MOELAB_CHECK(g.M > 0 && g.N > 0 && g.K > 0, "cuda gemm_grouped: empty product " << i);
    ColumnMajor c = column_major(g);
    op_first[i] = c.op_first, op_second[i] = c.op_second;
    m[i] = c.m, n[i] = c.n, k[i] = c.k, ld_first[i] = c.ld_first, ld_second[i] = c.ld_second, ldc[i] = c.ldc;
    pointers[i] = const_cast<T*>(g.b);
    pointers[G + i] = const_cast<T*>(g.a);
    pointers[2 * G + i] = g.c;
  }
  cudaStream_t st = stream(device);
  cublasHandle_t h = cublas(device);
  Scratch device_pointers(pointers.size() * sizeof(void*), device);
  // From pageable memory: returns once `pointers` has been read, so the vector may go out of scope.
  MOELAB_CUDA_CHECK(cudaMemcpyAsync(device_pointers.get(), pointers.data(), pointers.size() * sizeof(void*),
                                    cudaMemcpyHostToDevice, st));
  auto first = reinterpret_cast<const T* const*>(device_pointers.as<void*>());
  auto second = first + G;
  auto out = reinterpret_cast<T* const*>(device_pointers.as<void*>() + 2 * G);
  cublasStatus_t status;
  if constexpr (std::is_same_v<T, float>)
    status = cublasSgemmGroupedBatched(h, op_first.data(), op_second.data(), m.data(), n.data(), k.data(),
                                       alphas.data(), first, ld_first.data(), second, ld_second.data(),
                                       betas.data(), out, ldc.data(), static_cast<int>(G), group_size.data());
  else
    status = cublasDgemmGroupedBatched(h, op_first.data(), op_second.data(), m.data(), n.data(), k.data(),
                                       alphas.data(), first, ld_first.data(), second, ld_second.data(),
                                       betas.data(), out, ldc.data(), static_cast<int>(G), group_size.data());
  if (status == CUBLAS_STATUS_NOT_SUPPORTED) {
    // Grouped GEMM is missing on some library/device combinations: one GEMM per product instead.
    for (const RowMajorGemm<T>& g : gemms) gemm_strided_batched<T>(g, 0, 0, 0, 1, alpha, beta, device);
    return;
  }
  MOELAB_CUBLAS_CHECK(status);
}

template void gemm_strided_batched<float>(const RowMajorGemm<float>&, int64_t, int64_t, int64_t, int64_t,
                                          double, double, int);
template void gemm_strided_batched<double>(const RowMajorGemm<double>&, int64_t, int64_t, int64_t, int64_t,
                                           double, double, int);
template void gemm_grouped<float>(const std::vector<RowMajorGemm<float>>&, double, double, int);
template void gemm_grouped<double>(const std::vector<RowMajorGemm<double>>&, double, double, int);

}  // namespace moelab::cuda
