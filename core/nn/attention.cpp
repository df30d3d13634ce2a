// Multi-head self-attention (fused qkv, timm layout).
#include "core/nn/attention.h"

#include "core/ops/ops.h"

namespace moelab::nn {

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& opt, RngStream& rng)
    : Module("MultiHeadAttention"), options(opt) {
  MOELAB_CHECK(opt.dim > 0 && opt.num_heads > 0 && opt.dim % opt.num_heads == 0,
               "MultiHeadAttention: dim " << opt.dim << " must be a positive multiple of num_heads "
                                          << opt.num_heads);
  qkv = register_module("qkv", std::make_shared<Linear>(opt.dim, 3 * opt.dim, opt.qkv_bias, rng, opt.init, opt.dtype));
  proj = register_module("proj", std::make_shared<Linear>(opt.dim, opt.dim, opt.proj_bias, rng, opt.init, opt.dtype));
}

Tensor MultiHeadAttention::forward(const Tensor& x, ForwardContext& ctx) {
  const int64_t d = options.dim, H = options.num_heads, Dh = d / H;
  MOELAB_CHECK(x.dim() == 3 && x.size(2) == d,
               "MultiHeadAttention(dim " << d << "): input " << x.shape().str() << " is not (B, T, " << d << ")");
  const int64_t B = x.size(0), T = x.size(1);
  // (B, T, 3d) -> (B, T, 3, H, Dh) -> (3, B, H, T, Dh)
  Tensor qkv_heads = qkv->forward(x).reshape(Shape{B, T, 3, H, Dh}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv_heads.select(0, 0), k = qkv_heads.select(0, 1), v = qkv_heads.select(0, 2);
  // Keys are masked causally (options.causal) and where the batch marks padding.
  Tensor o = scaled_dot_product_attention(q, k, v, AttentionMask{options.causal, ctx.batch().padding_mask});  // (B, H, T, Dh)
  return proj->forward(o.transpose(1, 2).reshape(Shape{B, T, d}));
}

}  // namespace moelab::nn
