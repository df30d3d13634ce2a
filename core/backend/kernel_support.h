#pragma once
// Which kernels of the Backend interface a backend runs, per dtype: answered by calling each kernel once on
// tiny inputs and noting whether it throws NotSupported (cached), so the answer cannot drift from the code.
// `moelab bench ops --support` prints the matrix; the op-table test requires cpu to cover what ref covers.
#include <cstdint>
#include <vector>

#include "core/backend/backend.h"

namespace moelab {

enum class Kernel : uint8_t {
  fill, copy, unary, unary_backward, binary, reduce, matmul, softmax, softmax_backward, logsumexp, layernorm,
  layernorm_backward, gather, scatter_add, index_select_rows, index_add_rows, topk, im2col, col2im,
  cross_entropy, cross_entropy_backward, random_uniform, random_normal, dropout_mask, adamw_update, sgd_update,
  rmsprop_update, sum_squares, moe_plan, moe_gather_rows, moe_scatter_rows, moe_combine, moe_combine_backward,
  moe_expert_ffn, moe_expert_ffn_backward, attention_forward, attention_backward, count_
};

const char* kernel_name(Kernel k);
std::vector<Kernel> all_kernels();
// The dtypes the support matrix covers: f32, f64, i32, i64.
std::vector<DType> support_dtypes();

// Whether `backend` runs kernel `k` on data of dtype `dt` (index tensors stay i64). False for a backend that
// is not available (the cuda stub, or no device).
bool backend_supports(Backend& backend, Kernel k, DType dt);

}  // namespace moelab
