#pragma once
// The `ref` backend's kernels; each family is defined in its own file in this folder.
#include "core/backend/backend.h"

namespace moelab {

class RefBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::ref; }

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
  // optim.cpp
  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) override;
  void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                  double weight_decay, bool nesterov, bool first_step) override;
  void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                      double alpha, double eps, double weight_decay, bool centered) override;
  double sum_squares(const Tensor& x) override;
};

}  // namespace moelab
