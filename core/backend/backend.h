#pragma once
// The kernel interface every backend implements: `ref` (plain loops, double accumulation; the
// executable specification), `cpu` (fast) and `cuda` (a stub saying "built without CUDA" when not built).
// Kernels write into preallocated outputs. Unless a comment says otherwise, every tensor argument is
// contiguous, outputs do not alias inputs, and float kernels accept f32 and f64.
// A kernel a backend lacks throws NotSupported; callers never #ifdef.
#include <cstdint>
#include <string>

#include "core/kernels/elementwise.h"
#include "core/tensor/tensor.h"

namespace moelab {

enum class BackendKind : uint8_t { ref, cpu, cuda };
const char* backend_name(BackendKind k);

class NotSupported : public Error {
 public:
  using Error::Error;
};

enum class ReduceOp : uint8_t { sum, max, min };

// The activation of an MoE expert FFN: relu, gelu (tanh form) or swiglu (silu(x W1) * (x W3)).
enum class ExpertActivation : uint8_t { relu, gelu, swiglu };
// Stacked expert weights (specs/moe.md §3): w1 (E, d, f), w2 (E, f, d), b1 (E, f) and b2 (E, d) or
// undefined, w3 (E, d, f) for swiglu only. Also used for their gradients.
struct ExpertWeights {
  Tensor w1, b1, w2, b2, w3;
  ExpertActivation act = ExpertActivation::gelu;
};

struct AdamWParams {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1-based, for bias correction
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual BackendKind kind() const = 0;
  const char* name() const { return backend_name(kind()); }
  // False for the cuda stub or when no device is present.
  virtual bool available() const { return true; }

  // ---- memory (device backends) ----
  virtual void* device_allocate(size_t nbytes, Device d);
  virtual void device_free(void* p, Device d);
  // Copies between host and device or within a device; both tensors contiguous, same dtype and numel.
  virtual void copy_across(const Tensor& src, Tensor& dst);
  virtual void synchronize() {}

  // ---- element-wise ----
  virtual void fill(Tensor& out, double value);
  // dst = src element by element; both any strides, same shape; dtype conversion allowed.
  virtual void copy(const Tensor& src, Tensor& dst);
  // out = op(x, alpha)
  virtual void unary(UnaryOp op, const Tensor& x, Tensor& out, double alpha);
  // gx = gy * op'(x) where y = op(x)
  virtual void unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx,
                              double alpha);
  // out = op(a, b); a and b are broadcast views of out's shape (strides may be 0 or arbitrary).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out);

  // ---- reductions ----
  // x viewed as (outer, n, inner) -> out (outer, inner); for max/min, `index` (i64, may be undefined)
  // receives the position along n (first occurrence on ties).
  virtual void reduce(ReduceOp op, const Tensor& x, int64_t outer, int64_t n, int64_t inner, Tensor& out,
                      Tensor* index);

  // ---- linear algebra ----
  // out[b] = alpha * op(a[b]) @ op(b[b]) + beta * out[b]; a (B, M, K) or (B, K, M) when trans_a, etc.
  // a and b have batch size B or 1 (1 broadcasts one matrix across the batch).
  virtual void matmul(const Tensor& a, const Tensor& b, Tensor& out, bool trans_a, bool trans_b, double alpha,
                      double beta);

  // ---- softmax family (last dim) ----
  // x: (M, N) -> out: (M, N). causal: row r is query i = r % tq with keys j <= i + (N - tq) kept.
  virtual void softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq);
  // gx = y * (gy - sum(gy*y)) for softmax; gx = gy - exp(y) * sum(gy) for log-softmax.
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log);

  // ---- normalization ----
  // x: (M, N), gamma/beta: (N) or undefined -> out (M, N), mean (M), rstd (M)
  virtual void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                         Tensor& mean, Tensor& rstd);
  // -> gx (M, N); ggamma, gbeta (N) when defined
  virtual void layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gy, Tensor& gx, Tensor& ggamma, Tensor& gbeta);

  // ---- indexing ----
  // src viewed (O, N, I), index (O, M, I) int -> out (O, M, I): out[o,m,i] = src[o, index[o,m,i], i]
  virtual void gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                      int64_t inner, Tensor& out);
  // out (O, N, I) += src (O, M, I) scattered by index; deterministic (fixed order, no atomics).
  virtual void scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                           int64_t inner, Tensor& out);
  // rows: src (N, R), index (M) -> out (M, R)
  virtual void index_select_rows(const Tensor& src, const Tensor& index, Tensor& out);
  // rows: out (N, R) += src (M, R) at index (M); deterministic.
  virtual void index_add_rows(const Tensor& src, const Tensor& index, Tensor& out);

  // ---- convolution helpers (NCHW) ----
  // x (C, H, W) one image -> cols (C*kh*kw, OH*OW)
  virtual void im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols);
  // cols (C*kh*kw, OH*OW) -> gx (C, H, W) (accumulated; gx zeroed by the caller)
  virtual void col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& gx);

  // ---- losses ----
  // logits (M, C), target (M) i64 -> loss (M); ignored rows get 0. Smoothing eps spreads eps/C mass.
  virtual void cross_entropy(const Tensor& logits, const Tensor& target, double smoothing, int64_t ignore_index,
                             Tensor& loss);
  // glogits = gloss[m] * (softmax - smoothed one-hot), 0 on ignored rows.
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                                      double smoothing, int64_t ignore_index, Tensor& glogits);

  // ---- random (Philox 4x32-10; element i uses counter offset + i, so every backend draws the same) ----
  virtual void random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi);
  virtual void random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std);
  // out = keep ? 1/(1-p) : 0
  virtual void dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p);

  // ---- optimizer updates (in place, per element; shared functions in core/kernels/optim.h) ----
  virtual void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p);
  virtual void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                          double weight_decay, bool nesterov, bool first_step);
  virtual void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                              double alpha, double eps, double weight_decay, bool centered);
  // sum of squares of x as double (for global-norm clipping)
  virtual double sum_squares(const Tensor& x);

  // ---- MoE dispatch (specs/moe.md §3; driven by core/moe/dispatch.h) ----
  // S (token, slot) assignments are token-major: the slots of token t are [token_offsets[t],
  // token_offsets[t+1]) (token_offsets: (T+1) i64). A plan groups the kept assignments into R rows,
  // expert by expert, in slot order inside each expert. Index tensors are i64.
  // slot_expert (S): expert of each slot, or -1 for none. capacity < 0 keeps every assignment; otherwise
  // each expert keeps `capacity` of its assignments: the highest slot_priority ones (ties -> lower slot)
  // when slot_priority (S, float) is defined, else the first ones in slot order.
  // -> expert_counts (E): assignments before drops; expert_offsets (E+1): kept rows per expert;
  //    row_slot (S): slot of each row (entries from expert_offsets[E] on are -1); slot_row (S): row of
  //    each slot, -1 when dropped or unassigned.
  virtual void moe_plan(const Tensor& slot_expert, const Tensor& slot_priority, int64_t num_experts,
                        int64_t capacity, Tensor& expert_counts, Tensor& expert_offsets, Tensor& row_slot,
                        Tensor& slot_row);
  // x (T, d) -> x_rows (R, d): each kept slot's token row.
  virtual void moe_gather_rows(const Tensor& x, const Tensor& slot_row, const Tensor& token_offsets,
                               Tensor& x_rows);
  // g_rows (R, d) -> gx (T, d) = sum over each token's kept slots in slot order (overwrites gx).
  virtual void moe_scatter_rows(const Tensor& g_rows, const Tensor& slot_row, const Tensor& token_offsets,
                                Tensor& gx);
  // out (T, d) = sum over each token's kept slots s, in slot order, of slot_weight[s] * y_rows[slot_row[s]].
  virtual void moe_combine(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                           const Tensor& token_offsets, Tensor& out);
  // gy_rows[slot_row[s]] = slot_weight[s] * gout[t]; gslot_weight[s] = <y_rows[slot_row[s]], gout[t]>
  // (0 for dropped slots).
  virtual void moe_combine_backward(const Tensor& y_rows, const Tensor& slot_weight, const Tensor& slot_row,
                                    const Tensor& token_offsets, const Tensor& gout, Tensor& gy_rows,
                                    Tensor& gslot_weight);
  // Grouped expert FFN over x_rows (R, d), expert e owning rows [expert_offsets[e], expert_offsets[e+1])
  // (expert_offsets: host i64). Saves h (R, f) = x W1 + b1, g (R, f) = x W3 (swiglu; else undefined),
  // a (R, f) = act(h) [* g]; writes y_rows (R, d) = a W2 + b2.
  virtual void moe_expert_ffn(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                              Tensor& h, Tensor& g, Tensor& a, Tensor& y_rows);
  // Backward of moe_expert_ffn: gx_rows (R, d) and the weight gradients in `grads` (same shapes as w's
  // defined tensors; overwritten, zero for experts without rows).
  virtual void moe_expert_ffn_backward(const Tensor& x_rows, const Tensor& expert_offsets, const ExpertWeights& w,
                                       const Tensor& h, const Tensor& g, const Tensor& a, const Tensor& gy_rows,
                                       Tensor& gx_rows, ExpertWeights& grads);

 protected:
  [[noreturn]] void not_supported(const char* kernel) const;
};

Backend& ref_backend();
Backend& cpu_backend();
Backend& cuda_backend();  // the stub when built without CUDA

// The backend that runs ops on host tensors: `cpu` by default, `ref` inside a BackendScope(ref).
Backend& host_backend();
// The backend for tensors on `d`.
Backend& backend_for(Device d);
bool cuda_built();

// Runs host ops on another backend for the scope's lifetime (tests compare cpu against ref this way).
class BackendScope {
 public:
  explicit BackendScope(BackendKind kind);
  ~BackendScope();

 private:
  BackendKind prev_;
};

}  // namespace moelab
