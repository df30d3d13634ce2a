// Multi-head self-attention (fused qkv, timm layout), rotary positions and the key/value cache.
#include "core/nn/attention.h"

#include <cmath>
#include <vector>

#include "core/ops/ops.h"

namespace moelab::nn {

Tensor apply_rotary(const Tensor& x, int64_t first_position, double base) {
  MOELAB_CHECK(x.dim() == 4 && x.size(3) % 2 == 0,
               "apply_rotary: input " << x.shape().str() << " is not (B, H, T, Dh) with an even head width Dh");
  MOELAB_CHECK(first_position >= 0 && base > 0, "apply_rotary: first position " << first_position << " and base "
                                                                                 << base << " must be >= 0 and > 0");
  const int64_t T = x.size(2), Dh = x.size(3), half = Dh / 2;
  // The angles in double, then cast: positions in the thousands keep their precision.
  std::vector<double> cos_v(static_cast<size_t>(T * half)), sin_v(cos_v.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(first_position + t) * std::pow(base, -2.0 * double(i) / double(Dh));
      cos_v[static_cast<size_t>(t * half + i)] = std::cos(angle);
      sin_v[static_cast<size_t>(t * half + i)] = std::sin(angle);
    }
  const Tensor c = Tensor::from_vector(cos_v, Shape{T, half}).to(x.dtype()).to(x.device());
  const Tensor s = Tensor::from_vector(sin_v, Shape{T, half}).to(x.dtype()).to(x.device());
  const Tensor x1 = x.slice(3, 0, half), x2 = x.slice(3, half, Dh);
  return concat({x1 * c - x2 * s, x2 * c + x1 * s}, 3);
}

MultiHeadAttention::MultiHeadAttention(const AttentionOptions& opt, RngStream& rng)
    : Module("MultiHeadAttention"), options(opt) {
  MOELAB_CHECK(opt.dim > 0 && opt.num_heads > 0 && opt.dim % opt.num_heads == 0,
               "MultiHeadAttention: dim " << opt.dim << " must be a positive multiple of num_heads "
                                          << opt.num_heads);
  MOELAB_CHECK(!opt.rotary || (opt.dim / opt.num_heads) % 2 == 0,
               "MultiHeadAttention: rotary positions need an even head width, got dim " << opt.dim << " / "
                                                                                        << opt.num_heads << " heads");
  qkv = register_module("qkv", std::make_shared<Linear>(opt.dim, 3 * opt.dim, opt.qkv_bias, rng, opt.init, opt.dtype));
  proj = register_module("proj", std::make_shared<Linear>(opt.dim, opt.dim, opt.proj_bias, rng, opt.init, opt.dtype));
}

Tensor MultiHeadAttention::forward(const Tensor& x, ForwardContext& ctx) { return forward(x, ctx, nullptr); }

namespace {

// The cache's key padding followed by the new tokens' (ones where a part has none): (B, Tc + T) i64.
Tensor joined_key_padding(const KVCache& cache, const Tensor& new_mask, int64_t B, int64_t T) {
  const int64_t Tc = cache.length();
  Tensor old = cache.key_padding.defined() ? cache.key_padding : Tensor::ones(Shape{B, Tc}, DType::i64);
  Tensor now = new_mask.defined() ? new_mask.to(Device::cpu()).to(DType::i64) : Tensor::ones(Shape{B, T}, DType::i64);
  MOELAB_CHECK(now.dim() == 2 && now.size(0) == B && now.size(1) == T,
               "MultiHeadAttention: padding mask " << now.shape().str() << " is not (B, T) = (" << B << ", " << T
                                                   << ") for the new tokens");
  return Tc == 0 ? now.contiguous() : concat({old.to(Device::cpu()), now}, 1);
}

}  // namespace

Tensor MultiHeadAttention::forward(const Tensor& x, ForwardContext& ctx, KVCache* cache) {
  const int64_t d = options.dim, H = options.num_heads, Dh = d / H;
  MOELAB_CHECK(x.dim() == 3 && x.size(2) == d,
               "MultiHeadAttention(dim " << d << "): input " << x.shape().str() << " is not (B, T, " << d << ")");
  const int64_t B = x.size(0), T = x.size(1);
  const int64_t first = cache ? cache->length() : 0;
  MOELAB_CHECK(!cache || first == 0 || cache->k.size(0) == B,
               "MultiHeadAttention: batch of " << B << " sequences does not match the cache's " << cache->k.size(0));
  // (B, T, 3d) -> (B, T, 3, H, Dh) -> (3, B, H, T, Dh)
  Tensor qkv_heads = qkv->forward(x).reshape(Shape{B, T, 3, H, Dh}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv_heads.select(0, 0), k = qkv_heads.select(0, 1), v = qkv_heads.select(0, 2);
  if (options.rotary) {
    q = apply_rotary(q, first, options.rotary_base);
    k = apply_rotary(k, first, options.rotary_base);
  }
  Tensor key_padding = ctx.batch().padding_mask;
  if (cache) {
    if (key_padding.defined() || cache->key_padding.defined()) {
      key_padding = joined_key_padding(*cache, key_padding, B, T);
      cache->key_padding = key_padding;
      key_padding = key_padding.to(x.device());
    }
    cache->k = first == 0 ? k.detach().contiguous() : concat({cache->k, k.detach()}, 2);
    cache->v = first == 0 ? v.detach().contiguous() : concat({cache->v, v.detach()}, 2);
    k = cache->k;
    v = cache->v;
  }
  // Keys are masked causally (options.causal; bottom-right aligned, so cached keys are all earlier) and
  // where the batch marks padding.
  Tensor o = scaled_dot_product_attention(q, k, v, AttentionMask{options.causal, key_padding});  // (B, H, T, Dh)
  return proj->forward(o.transpose(1, 2).reshape(Shape{B, T, d}));
}

}  // namespace moelab::nn
