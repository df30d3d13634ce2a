#pragma once
// The kernel interface every backend implements: `ref` (the executable specification), `cpu` and
// `cuda`. Kernels write into preallocated outputs; a kernel a backend lacks throws NotSupported.
// Argument rules (contiguity, aliasing, dtypes): docs/ops.md (Kernel contract).
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
enum class Kernel : uint8_t;  // core/backend/kernel_support.h

// The activation of an MoE expert FFN: relu, gelu (tanh form) or swiglu (silu(x W1) * (x W3)).
enum class ExpertActivation : uint8_t { relu, gelu, swiglu };
// Stacked expert weights (docs/moe.md §3): w1 (E, d, f), w2 (E, f, d), b1 (E, f) and b2 (E, d) or
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
  // Whether this backend runs kernel `k` on dtype `dt` (probed once, core/backend/kernel_support.h).
  bool supports(Kernel k, DType dt);

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
  // x: (M, N) -> out: (M, N). causal_tq > 0 masks keys: row r is query i = r % causal_tq and keeps keys
  // j <= i + (N - causal_tq) (bottom-right aligned, as with a key cache); masked entries get 0 (softmax)
  // or -inf (log-softmax); a row with every key masked is all 0 / all -inf. causal_tq = 0: no mask.
  virtual void softmax(const Tensor& x, Tensor& out, bool log, int64_t causal_tq);
  // gx = y * (gy - sum(gy*y)) for softmax; gx = gy - exp(y) * sum(gy) for log-softmax, where entries with
  // y = -inf (masked) get gx = 0 and are left out of sum(gy).
  virtual void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx, bool log);
  // x: (M, N) -> out: (M) = log(sum_j exp(x[m, j])); -inf for an all -inf row, +inf when a row holds +inf.
  virtual void logsumexp(const Tensor& x, Tensor& out);

  // ---- fused attention (attention.cpp / attention.cu of each backend) ----
  // q: (B, H, Tq, D), k: (B, H, Tk, D), v: (B, H, Tk, Dv), gout: (B, H, Tq, Dv): unit stride on the last dim,
  // row stride >= that dim, any strides on B and H (head-layout views need no copy). key_valid: (B, Tk)
  // contiguous i32, nonzero = a real key, or undefined (all real). Query i sees key j when key_valid[b, j]
  // and, with `causal`, j <= i + (Tk - Tq) (bottom-right aligned). Outputs are contiguous.
  // -> out (B, H, Tq, Dv) = softmax over the seen keys of scale * q k^T, times v; lse (B, H, Tq) = log of
  // the row's sum of exp over the seen keys. A query that sees no key gets out = 0, lse = -inf.
  virtual void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid,
                                 bool causal, double scale, Tensor& out, Tensor& lse);
  // Its backward from the forward's out and lse -> gq, gk, gv (contiguous, overwritten). Probabilities are
  // recomputed tile by tile from q, k and lse; no (Tq, Tk) matrix is kept. Rows that see no key give 0.
  virtual void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_valid,
                                  bool causal, double scale, const Tensor& out, const Tensor& lse,
                                  const Tensor& gout, Tensor& gq, Tensor& gk, Tensor& gv);

  // ---- normalization ----
  // x: (M, N), gamma/beta: (N) or undefined -> out (M, N), mean (M), rstd (M) (x's dtype; biased variance,
  // rstd = 1/sqrt(var + eps))
  virtual void layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& out,
                         Tensor& mean, Tensor& rstd);
  // -> gx (M, N); ggamma, gbeta (N) when defined (overwritten, not accumulated)
  virtual void layernorm_backward(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                                  const Tensor& gy, Tensor& gx, Tensor& ggamma, Tensor& gbeta);

  // ---- indexing ----
  // Index tensors are i32 or i64; data tensors any dtype (scatter_add/index_add_rows: f32, f64, i32, i64).
  // An index outside [0, n) throws an Error naming the kernel, the position and the value.
  // src viewed (O, N, I), index (O, M, I) -> out (O, M, I): out[o,m,i] = src[o, index[o,m,i], i]
  virtual void gather(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                      int64_t inner, Tensor& out);
  // out (O, N, I) += src (O, M, I) scattered by index (O, M, I); deterministic (each output element adds
  // its contributions in increasing m; no atomics).
  virtual void scatter_add(const Tensor& src, const Tensor& index, int64_t outer, int64_t n, int64_t m,
                           int64_t inner, Tensor& out);
  // rows: src (N, R), index (M) -> out (M, R)
  virtual void index_select_rows(const Tensor& src, const Tensor& index, Tensor& out);
  // rows: out (N, R) += src (M, R) at index (M); deterministic (each row adds in increasing m).
  virtual void index_add_rows(const Tensor& src, const Tensor& index, Tensor& out);
  // x: (M, N) float -> values (M, k) descending, indices (M, k) i64; ties -> lower index first; NaN counts
  // as larger than every number.
  virtual void topk(const Tensor& x, int64_t k, Tensor& values, Tensor& indices);

  // ---- convolution helpers (NCHW) ----
  // x (C, H, W) one image -> cols (C*kh*kw, OH*OW), OH = (H + 2 pad - kh) / stride + 1; row
  // (c*kh + i)*kw + j, column oh*OW + ow holds x[c, oh*stride - pad + i, ow*stride - pad + j] (0 outside).
  virtual void im2col(const Tensor& x, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& cols);
  // cols (C*kh*kw, OH*OW) -> gx (C, H, W) (accumulated; gx zeroed by the caller)
  virtual void col2im(const Tensor& cols, int64_t kh, int64_t kw, int64_t stride, int64_t pad, Tensor& gx);
  // A whole conv2d through a vendor library (cuDNN on cuda). Returns false when the backend has none; the
  // op then runs im2col + GEMM. x (B, C, H, W), w (O, C, kh, kw), contiguous -> out (B, O, OH, OW), no bias.
  virtual bool conv2d_library(const Tensor& x, const Tensor& w, int64_t stride, int64_t pad, Tensor& out) {
    return false;
  }
  // Its backward: gx (B, C, H, W) and/or gw (O, C, kh, kw) (either may be null) from gy (B, O, OH, OW).
  virtual bool conv2d_library_backward(const Tensor& x, const Tensor& w, const Tensor& gy, int64_t stride,
                                       int64_t pad, Tensor* gx, Tensor* gw) {
    return false;
  }

  // ---- losses ----
  // logits (M, C), target (M) i32/i64 -> loss (M) = lse - (1-eps) x[target] - eps/C sum_c x[c]; rows whose
  // target is ignore_index get 0; any other target outside [0, C) throws.
  virtual void cross_entropy(const Tensor& logits, const Tensor& target, double smoothing, int64_t ignore_index,
                             Tensor& loss);
  // glogits = gloss[m] * (softmax - smoothed one-hot), 0 on ignored rows.
  virtual void cross_entropy_backward(const Tensor& logits, const Tensor& target, const Tensor& gloss,
                                      double smoothing, int64_t ignore_index, Tensor& glogits);

  // ---- random (Philox 4x32-10; element i uses counter offset + i, so every backend draws the same) ----
  // out_i = lo + (hi - lo) u_i with u_i = philox::uniform_at(key, offset + i), kept below hi after rounding
  virtual void random_uniform(Tensor& out, uint64_t key, uint64_t offset, double lo, double hi);
  // out_i = mean + std * philox::normal_at(key, offset + i)
  virtual void random_normal(Tensor& out, uint64_t key, uint64_t offset, double mean, double std);
  // out_i = u_i >= p ? 1/(1-p) : 0 (element i is kept with probability 1-p)
  virtual void dropout_mask(Tensor& out, uint64_t key, uint64_t offset, double p);

  // ---- optimizer updates (in place, per element; shared functions in core/kernels/optim.h) ----
  virtual void adamw_update(Tensor& param, const Tensor& grad, Tensor& m, Tensor& v, const AdamWParams& p);
  virtual void sgd_update(Tensor& param, const Tensor& grad, Tensor& momentum_buf, double lr, double momentum,
                          double weight_decay, bool nesterov, bool first_step);
  virtual void rmsprop_update(Tensor& param, const Tensor& grad, Tensor& square_avg, Tensor& grad_avg, double lr,
                              double alpha, double eps, double weight_decay, bool centered);
  // sum of squares of x as double (for global-norm clipping)
  virtual double sum_squares(const Tensor& x);

  // ---- MoE dispatch (docs/moe.md §3; driven by core/moe/dispatch.h) ----
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
