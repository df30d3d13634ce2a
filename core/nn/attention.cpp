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
  const int64_t d = options.dim, H = options.num_heads;
  MOELAB_CHECK(x.dim() == 3 && x.size(2) == d,
               "MultiHeadAttention(dim " << d << "): input " << x.shape().str() << " is not (B, T, " << d << ")");
  // (B, T, 3d) -> (B, T, d): heads split and merged inside the op (no head-layout copies). Keys are masked
  // causally (options.causal) and where the batch marks padding.
  Tensor o = attention_packed_qkv(qkv->forward(x), H, AttentionMask{options.causal, ctx.batch().padding_mask});
  return proj->forward(o);
}

}  // namespace moelab::nn
