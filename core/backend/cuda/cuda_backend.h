#pragma once
// The `cuda` backend's kernels; each family is defined in its own file in this folder. Tensors passed in
// live on one CUDA device; kernels run on that device's stream (cuda_util.h) and never block the host,
// except where a comment says the host waits (device-to-host copies, sum_squares).
#include "core/backend/backend.h"

namespace moelab {

class CudaBackend final : public Backend {
 public:
  BackendKind kind() const override { return BackendKind::cuda; }
  bool available() const override;  // context.cpp: false without driver or device

  // context.cpp
  void* device_allocate(size_t nbytes, Device d) override;
  void device_free(void* p, Device d) override;
  void copy_across(const Tensor& src, Tensor& dst) override;
  void synchronize() override;

  // elementwise.cu
  void fill(Tensor& out, double value) override;
  void copy(const Tensor& src, Tensor& dst) override;
  void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha) override;
  void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                      double alpha) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) override;

  // reduce.cu
  void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
              Tensor* index) override;
  double sum_squares(const Tensor& x) override;

  // matmul.cu
  void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b, double alpha,
              double beta) override;

  // softmax.cu
  void softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq) override;
  void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log) override;
  void logsumexp(const Tensor& x, Tensor& out) override;

  // attention.cu
  void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid, bool causal,
                         double scale, Tensor& out, Tensor& lse) override;
  void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid, bool causal,
                          double scale, const Tensor& out, const Tensor& lse, const Tensor& gout, Tensor& gq,
                          Tensor& gk, Tensor& gv) override;

  // cross_entropy.cu
  void cross_entropy(const Tensor& logits, const Tensor& target, double smoothing, int64_t ignore_index,
                     Tensor& loss) override;
  void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                              double smoothing, int64_t ignore_index, Tensor& glogits) override;

  // layernorm.cu
  void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                 Tensor& mean, Tensor& rstd) override;
  void layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                          const Tensor& gy, Tensor& gx, Tensor& ggamma, Tensor& gbeta) override;

  // indexing.cu
  void gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m, int64_t inner,
              Tensor& out) override;
  void scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m, int64_t inner,
                   Tensor& out) override;
  void index_select_rows(const Tensor& src, const Tensor& index, Tensor& out) override;
  void index_add_rows(const Tensor& src, const Tensor& index, Tensor& out) override;
  void topk(const Tensor& x, int64_t k, Tensor& values, Tensor& indices) override;

  // conv.cu
  void im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols) override;
  void col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& gx) override;
  // conv_cudnn.cpp: cuDNN with deterministic algorithms (false when moelab was built without cuDNN)
  bool conv2d_library(const Tensor& x, const Tensor& w, int64_t stride, int64_t pad, Tensor& out) override;
  bool conv2d_library_backward(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t stride, int64_t pad,
                               Tensor* gx, Tensor* gw) override;

  // random.cu
  void random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi) override;
  void random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std) override;
  void dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p) override;

  // optim.cu
  void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p) override;
  void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                  double weight_decay, bool nesterov, bool first_step) override;
  void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                      double alpha, double eps, double weight_decay, bool centered) override;

  // moe_dispatch.cu
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

  // moe_ffn.cu (expert_offsets on the host; see there)
  void moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w, Tensor& h,
                      Tensor& g, Tensor& a, Tensor& y_rows) override;
  void moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                               const Tensor& h, const Tensor& g, const Tensor& a, const Tensor& gy_rows,
                               Tensor& gx_rows, ExpertWeights& grads) override;
};

}  // namespace moelab
