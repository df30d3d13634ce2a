#pragma once
// Row-major GEMMs on cuBLAS (host code). cuBLAS is column-major, and a row-major matrix read column-major
// is its transpose, so the row-major C = op(A) op(B) is run as the column-major C^T = op(B)^T op(A)^T:
// the operands swap places and keep their transpose flags.
#include <cstdint>
#include <vector>

namespace moelab::cuda {

// C (M, N) = alpha op(A) op(B) + beta C; all row-major and contiguous. op(A) is (M, K): A is (M, K), or
// (K, M) when trans_a; op(B) is (K, N): B is (K, N), or (N, K) when trans_b.
template <typename T>
struct RowMajorGemm {
  const T* a;
  const T* b;
  T* c;
  int64_t M, N, K;
  bool trans_a = false, trans_b = false;
};

// `batch` products that share shapes; operand i starts at a + i*stride_a etc. (a stride of 0 shares one
// matrix across the batch). Runs on the device's stream with its cuBLAS handle.
template <typename T>
void gemm_strided_batched(const RowMajorGemm<T>& g, int64_t stride_a, int64_t stride_b, int64_t stride_c,
                          int64_t batch, double alpha, double beta, int device);

// Independent products of different shapes in one cuBLAS grouped batched GEMM (the MoE expert segments).
// Products with M, N or K equal to 0 must be left out by the caller.
template <typename T>
void gemm_grouped(const std::vector<RowMajorGemm<T>>& gemms, double alpha, double beta, int device);

}  // namespace moelab::cuda
