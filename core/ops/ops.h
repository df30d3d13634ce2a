#pragma once
// The op vocabulary. Each op is defined once (core/ops/<family>.cpp): shape rule, forward dispatch to
// the backend of its inputs' device, and its backward. All ops are differentiable in their float
// inputs unless noted. Semantics follow PyTorch.
#include <cstdint>
#include <optional>
#include <vector>

#include "core/backend/backend.h"
#include "core/tensor/tensor.h"

namespace moelab {

// ---- element-wise (elementwise.cpp) ----
Tensor unary(UnaryOp op, const Tensor& x, double alpha = 0);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
enum class GeluForm { tanh, erf };
Tensor gelu(const Tensor& x, GeluForm form = GeluForm::tanh);
Tensor silu(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor square(const Tensor& x);
Tensor softplus(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor clamp_min(const Tensor& x, double lo);

// Broadcasting binary ops (both inputs same dtype and device).
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// Scalar forms.
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor sub(double s, const Tensor& a);  // s - a
Tensor div(double s, const Tensor& a);  // s / a

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(double s, const Tensor& a);

// Sums a broadcast gradient back to `shape` (the adjoint of expand).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

// ---- reductions (reduce.cpp) ----
Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor sum(const Tensor& x);  // all elements -> 0-d
Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
// max over one dim; gradient flows to the first maximal element. `indices` (i64) optional.
Tensor max(const Tensor& x, int dim, bool keepdim = false, Tensor* indices = nullptr);
Tensor max(const Tensor& x);
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);  // i64, not differentiable

// ---- linear algebra (matmul.cpp) ----
// PyTorch matmul: 1-D/2-D/batched with broadcast batch dims. a: (..., M, K), b: (..., K, N) -> (..., M, N)
Tensor matmul(const Tensor& a, const Tensor& b);
// x: (..., in), weight: (out, in), bias: (out) or undefined -> (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- shape ops (shape_ops.cpp); views where possible ----
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor transpose(const Tensor& x, int d0, int d1);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t end, int64_t step = 1);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor contiguous(const Tensor& x);
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor stack(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);
Tensor cast(const Tensor& x, DType dtype);  // differentiable between float types

// ---- softmax and normalization (softmax.cpp, layernorm.cpp) ----
Tensor softmax(const Tensor& x, int dim = -1);
Tensor log_softmax(const Tensor& x, int dim = -1);
Tensor logsumexp(const Tensor& x, int dim = -1, bool keepdim = false);
// x: (..., N), gamma/beta: (N) or undefined
Tensor layernorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps = 1e-5);

// ---- indexing (indexing.cpp) ----
// weight: (V, D), ids: any shape of i32/i64 -> (*ids.shape, D)
Tensor embedding(const Tensor& weight, const Tensor& ids);
// rows of x (N, ...) at index (M) -> (M, ...)
Tensor index_select(const Tensor& x, const Tensor& index);
// out (N, ...) = zeros, then out[index[m]] += src[m]; deterministic
Tensor index_add(const Tensor& src, const Tensor& index, int64_t num_rows);
// PyTorch gather / scatter_add along `dim` (index may be smaller than x / src in every dim; for scatter_add
// it must match base outside `dim`). Differentiable in x, base and src.
Tensor gather(const Tensor& x, int dim, const Tensor& index);
Tensor scatter_add(const Tensor& base, int dim, const Tensor& index, const Tensor& src);
// Top-k along the last dim: values (..., k) descending and differentiable, indices (..., k) i64; ties -> lower
// index; NaN ranks above every number.
Tensor topk(const Tensor& x, int64_t k, Tensor* indices);

// ---- convolution (conv.cpp) ----
// x: (B, C, H, W), weight: (O, C, kh, kw), bias: (O) or undefined -> (B, O, OH, OW)
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride = 1, int64_t padding = 0);

// ---- losses (loss.cpp); reduction = mean over counted elements ----
// logits: (M, C) or (..., C) with target (...) i32/i64; the mean over rows whose target is not ignore_index
// (NaN when all are ignored, as in PyTorch). Fused softmax + CE per row.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0,
                     int64_t ignore_index = -100);
Tensor mse_loss(const Tensor& pred, const Tensor& target);
Tensor huber_loss(const Tensor& pred, const Tensor& target, double delta = 1.0);
// Symmetric InfoNCE (CLIP; contrastive.cpp). image, text: (N, D) embeddings (pair i matches pair i),
// log_scale: 0-d or (1) learnable log of the logit scale s = min(exp(log_scale), max_scale) -> 0-d
// (CE(s image text^T, diag) + CE(s text image^T, diag)) / 2; no gradient to log_scale at the clamp.
Tensor contrastive_loss(const Tensor& image, const Tensor& text, const Tensor& log_scale, double max_scale = 100.0);
// NegCLIP (Yuksekgonul et al., 2023): negatives (M, D) are extra captions of the image->text direction only:
// row i's CE runs over the N captions and the M negatives; the text->image CE is that of contrastive_loss.
Tensor contrastive_loss_with_negatives(const Tensor& image, const Tensor& text, const Tensor& negatives,
                                       const Tensor& log_scale, double max_scale = 100.0);

// ---- random (random.cpp); draws come from an RngStream (core/util/rng.h) ----
class RngStream;
Tensor dropout(const Tensor& x, double p, bool training, RngStream& rng);
Tensor rand_uniform(const Shape& shape, double lo, double hi, RngStream& rng, DType dtype = DType::f32,
                    Device device = Device::cpu());
Tensor rand_normal(const Shape& shape, double mean, double std, RngStream& rng, DType dtype = DType::f32,
                   Device device = Device::cpu());

// ---- attention (attention.cpp) ----
// Which keys each query may see. causal: query i sees keys j <= i + (Tk - Tq) (bottom-right aligned, as with
// a key cache). key_padding: (B, Tk) i32 or i64, nonzero = a real key, zero = padding no query sees; it
// combines with causal. Default: every query sees every key.
struct AttentionMask {
  bool causal = false;
  Tensor key_padding;
};
// q: (B, H, Tq, Dh), k: (B, H, Tk, Dh), v: (B, H, Tk, Dv) -> (B, H, Tq, Dv) = softmax(q k^T * scale over the
// seen keys) v, scale = 1/sqrt(Dh) by default. A query that sees no key gets a zero row and zero gradients.
// Fused: the backward recomputes probabilities from a saved row log-sum-exp (no (Tq, Tk) matrix is kept).
// q, k, v may be head-layout views (unit stride on the last dim): they are read in place.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const AttentionMask& mask = {},
                                    std::optional<double> scale = std::nullopt);
// The causal-or-not form (mask.causal = causal, no padding).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    std::optional<double> scale = std::nullopt);
// Multi-head attention on packed projections: qkv (B, T, 3 d) = [q | k | v], each split into `heads` heads
// of d / heads -> (B, T, d), the heads concatenated per token. Equals splitting qkv into head-layout views,
// scaled_dot_product_attention and merging the heads, with one autograd node and no head-layout copies.
Tensor attention_packed_qkv(const Tensor& qkv, int64_t heads, const AttentionMask& mask = {},
                            std::optional<double> scale = std::nullopt);

}  // namespace moelab
