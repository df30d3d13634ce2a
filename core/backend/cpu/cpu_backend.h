#pragma once
// The `cpu` backend's kernels; each family is defined in its own file in this folder.
#include "core/backend/backend.h"

namespace moelab {

class CpuBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::cpu; }

  // elementwise.cpp
  void fill(Tensor& out, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      double alpha) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;
  // reduce.cpp
  void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
              Tensor* index) override;
  // matmul.cpp
  void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b, double alpha,
              double beta) override;

  // ---- further kernel families: one section per file ----
  // moe_dispatch.cpp
  void moe_plan(const Tensor& slot_expert, const Tensor& slot_priority, int64_t num_experts, int64_t capacity,
                Tensor& expert_counts, Tensor& expert_offsets, Tensor& row_slot, Tensor& slot_row) override;
  void moe_gather_rows(const Tensor& x, const Tensor& slot_row, const Tensor& token_offsets,
                       Tensor& x_rows) override;
  void moe_scatter_rows(const Tensor& g_rows, const Tensor& slot_row, const Tensor& token_offsets,
                        Tensor& gx) override;
  void moe_combine(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                   const Tensor& token_offsets, Tensor& out) override;
  void moe_combine_backward(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                            const Tensor& token_offsets, const Tensor& gout, Tensor& gy_rows,
                            Tensor& gslot_weight) override;
  void moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w, Tensor& h,
                      Tensor& g, Tensor& a, Tensor& y_rows) override;
  void moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                               const Tensor& h, const Tensor& g, const Tensor& a, const Tensor& gy_rows,
                               Tensor& gx_rows, ExpertWeights& grads) override;
  // optim.cpp
  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) override;
  void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                  double weight_decay, bool nesterov, bool first_step) override;
  void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                      double alpha, double eps, double weight_decay, bool centered) override;
  double sum_squares(const Tensor& x) override;
};

}  // namespace moelab
