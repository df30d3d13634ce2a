#pragma once
// Row-major GEMM through OpenBLAS for float and double: c = alpha op(a) op(b) + beta c.
#include <cblas.h>

#include <cstdint>
#include <type_traits>

namespace moelab::cpu {

template <typename T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const T* a, int64_t lda,
                 const T* b, int64_t ldb, double beta, T* c, int64_t ldc) {
  auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, float(alpha), a, lda, b, ldb, float(beta), c, ldc);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace moelab::cpu
