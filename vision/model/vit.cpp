#include "vision/model/vit.h"

#include <algorithm>

#include "core/nn/init.h"
#include "core/ops/ops.h"

namespace moelab::vision {

PatchEmbedKind parse_patch_embed(const std::string& name) {
  if (name == "conv") return PatchEmbedKind::conv;
  if (name == "linear") return PatchEmbedKind::linear;
  if (name == "conv_stem") return PatchEmbedKind::conv_stem;
  MOELAB_FAIL("unknown patch embedding '" << name << "'; use one of: conv, linear, conv_stem");
}

PatchEmbed::PatchEmbed(const ViTOptions& o, RngStream& rng)
    : Module("PatchEmbed"), kind(o.patch_embed), patch_size(o.patch_size), dim(o.dim) {
  const int64_t p = o.patch_size;
  switch (kind) {
    case PatchEmbedKind::conv:
      proj = register_module("proj", std::make_shared<nn::Conv2d>(o.channels, o.dim, p, p, 0, true, rng, o.init, o.dtype));
      break;
    case PatchEmbedKind::linear:
      linear = register_module("proj", std::make_shared<nn::Linear>(o.channels * p * p, o.dim, true, rng, o.init, o.dtype));
      break;
    case PatchEmbedKind::conv_stem: {
      int64_t convs = 0;
      while ((int64_t{1} << convs) < p) ++convs;
      MOELAB_CHECK((int64_t{1} << convs) == p && convs >= 1,
                   "conv_stem patch embedding needs a patch size that is a power of two >= 2 (one stride-2 conv "
                   "per halving), got "
                       << p);
      const int64_t n_convs = static_cast<int64_t>(o.stem_channels.size());
      MOELAB_CHECK(n_convs >= convs, "conv_stem with patch size " << p << " needs at least " << convs
                                                                  << " stem channel counts, got " << n_convs);
      stem = register_module("stem", std::make_shared<nn::ModuleList>());
      int64_t in = o.channels;
      for (int64_t i = 0; i < n_convs; ++i) {
        const int64_t c = o.stem_channels[static_cast<size_t>(i)], stride = i >= n_convs - convs ? 2 : 1;
        MOELAB_CHECK(c > 0, "conv_stem channel counts must be positive, got " << c);
        // Kaiming-style default init for the convs: they feed ReLUs, not residual streams.
        stem->push_back(std::make_shared<nn::Conv2d>(in, c, 3, stride, 1, true, rng, nn::InitOptions{}, o.dtype));
        in = c;
      }
      proj = register_module("proj", std::make_shared<nn::Conv2d>(in, o.dim, 1, 1, 0, true, rng, o.init, o.dtype));
      break;
    }
  }
}

Tensor PatchEmbed::forward(const Tensor& images) {
  MOELAB_CHECK(images.dim() == 4, "PatchEmbed: images " << images.shape().str() << " are not (B, C, H, W)");
  const int64_t b = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  MOELAB_CHECK(h % patch_size == 0 && w % patch_size == 0,
               "PatchEmbed: image " << h << "x" << w << " is not a multiple of the patch size " << patch_size);
  if (kind == PatchEmbedKind::linear) {
    const int64_t p = patch_size, gh = h / p, gw = w / p;
    // (B, C, gh, p, gw, p) -> (B, gh, gw, C, p, p) -> (B, N, C*p*p): timm's flattening order per patch.
    Tensor patches = images.reshape({b, c, gh, p, gw, p}).permute({0, 2, 4, 1, 3, 5}).reshape({b, gh * gw, c * p * p});
    return linear->forward(patches);
  }
  Tensor x = images;
  // ReLU in the stem as in Xiao et al.: as good there as GELU and several times cheaper on CPU.
  if (stem)
    for (size_t i = 0; i < stem->size(); ++i) x = relu((*stem)[i].forward(x));
  x = proj->forward(x);  // (B, dim, gh, gw)
  const int64_t n = x.size(2) * x.size(3);
  return x.reshape({b, dim, n}).transpose(1, 2).contiguous();
}

VisionTransformer::VisionTransformer(const ViTOptions& o, RngStream& rng, const FfnFactory& make_moe)
    : Module("VisionTransformer"), options(o) {
  MOELAB_CHECK(o.image_size > 0 && o.patch_size > 0 && o.image_size % o.patch_size == 0,
               "ViT: image size " << o.image_size << " must be a positive multiple of the patch size "
                                  << o.patch_size);
  MOELAB_CHECK(o.dim > 0 && o.num_heads > 0 && o.dim % o.num_heads == 0,
               "ViT: dim " << o.dim << " must be a positive multiple of num_heads " << o.num_heads);
  MOELAB_CHECK(o.depth > 0, "ViT: depth must be positive, got " << o.depth);
  MOELAB_CHECK(o.moe_layers.empty() || make_moe, "ViT: MoE layers requested but no MoE factory given");
  patch_embed = register_module("patch_embed", std::make_shared<PatchEmbed>(o, rng));
  if (o.class_token) {
    Tensor cls = Tensor::zeros({1, 1, o.dim}, o.dtype);
    nn::trunc_normal_(cls, 0.0, 0.02, -0.04, 0.04, rng);
    cls_token = register_parameter("cls_token", cls);
  }
  Tensor pos = Tensor::zeros({1, o.num_tokens(), o.dim}, o.dtype);
  nn::trunc_normal_(pos, 0.0, 0.02, -0.04, 0.04, rng);
  pos_embed = register_parameter("pos_embed", pos);
  nn::TransformerBlockOptions bo;
  bo.dim = o.dim;
  bo.num_heads = o.num_heads;
  bo.mlp_ratio = o.mlp_ratio;
  bo.activation = nn::Activation::gelu_tanh;
  bo.dropout = o.dropout;
  bo.init = o.init;
  bo.dtype = o.dtype;
  blocks = register_module("blocks", nn::make_block_stack(bo, o.depth, o.moe_layers, make_moe, rng, "ViT"));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(o.dim, 1e-5, true, o.dtype));
  head = register_module("head", std::make_shared<nn::Linear>(o.dim, o.num_classes, true, rng, o.init, o.dtype));
}

Tensor VisionTransformer::forward(const Tensor& images, nn::ForwardContext& ctx) {
  MOELAB_CHECK(images.dim() == 4 && images.size(1) == options.channels && images.size(2) == options.image_size &&
                   images.size(3) == options.image_size,
               "ViT: images " << images.shape().str() << " are not (B, " << options.channels << ", "
                              << options.image_size << ", " << options.image_size << ")");
  const int64_t b = images.size(0);
  Tensor x = patch_embed->forward(images);  // (B, N, d)
  if (options.class_token) x = concat({cls_token.expand({b, 1, options.dim}), x}, 1);
  x = x + pos_embed;
  for (size_t i = 0; i < blocks->size(); ++i) x = (*blocks)[i].forward(x, ctx);
  x = norm->forward(x);
  Tensor pooled = options.class_token ? x.select(1, 0) : mean(x, {1});
  return head->forward(pooled);
}

std::vector<std::pair<int64_t, nn::Module*>> VisionTransformer::moe_modules() const {
  std::vector<std::pair<int64_t, nn::Module*>> out;
  for (int64_t i : options.moe_layers) out.emplace_back(i, blocks->at<nn::TransformerBlock>(i)->ffn.get());
  return out;
}

}  // namespace moelab::vision
