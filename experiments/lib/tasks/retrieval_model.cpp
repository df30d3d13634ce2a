#include "experiments/lib/tasks/retrieval_model.h"

#include <algorithm>
#include <cmath>

#include "core/moe/moe_layer.h"
#include "core/nn/batch.h"
#include "core/nn/context.h"
#include "core/nn/init.h"
#include "core/ops/ops.h"
#include "core/util/check.h"

namespace moelab::experiments {

ContrastiveModel::ContrastiveModel(const std::string& type, double init_logit_scale, DType dtype) : nn::Module(type) {
  MOELAB_CHECK(init_logit_scale > 0, "the initial logit scale must be > 0, got " << init_logit_scale);
  logit_scale = register_parameter("logit_scale", Tensor::full(Shape{1}, std::log(init_logit_scale), dtype));
}

Tensor l2_normalize_rows(const Tensor& x) { return x * rsqrt(sum(square(x), {-1}, true) + 1e-12); }

namespace {
// A batch holding only what one tower reads: the other tower's padding mask must not reach it.
nn::Batch tower_batch(const Tensor& labels, Modality modality, int64_t b, bool groups, const Tensor& mask = {}) {
  nn::Batch out;
  out.labels = labels;
  out.padding_mask = mask;
  if (groups) {
    out.groups = Tensor::full(Shape{b}, double(modality), DType::i64);
    out.num_groups = 2;
  }
  return out;
}
}  // namespace

TwoTowerModel::TwoTowerModel(const vision::ViTOptions& image_options, const moe::MoEConfig& image_moe,
                             const TextTowerOptions& text_options, bool bag_of_words, double init_logit_scale,
                             RngStream& rng)
    : ContrastiveModel("TwoTowerModel", init_logit_scale, image_options.dtype) {
  const int64_t d_ff = static_cast<int64_t>(std::llround(image_options.mlp_ratio * double(image_options.dim)));
  moe::MoELayerOptions mo{.d_model = image_options.dim, .d_ff = d_ff, .seq_len = image_options.num_tokens(),
                          .init = image_options.init, .dtype = image_options.dtype};
  image = register_module("image", std::make_shared<vision::VisionTransformer>(
                                       image_options, rng, [&](int64_t, RngStream& r) {
                                         return std::make_shared<moe::MoELayer>(image_moe, mo, r);
                                       }));
  if (bag_of_words)
    text = register_module("text", std::static_pointer_cast<TextTower>(std::make_shared<BowTextTower>(text_options, rng)));
  else
    text = register_module("text", std::static_pointer_cast<TextTower>(
                                       std::make_shared<TransformerTextTower>(text_options, rng)));
}

Tensor TwoTowerModel::encode_images(const Tensor& images, const Tensor& labels, nn::ForwardContext& ctx) {
  const nn::Batch b = tower_batch(labels, kImageModality, images.size(0), false);
  return l2_normalize_rows(nn::with_batch(ctx, b, [&] { return image->forward(images, ctx); }));
}

Tensor TwoTowerModel::encode_texts(const Tensor& tokens, const Tensor& padding_mask, const Tensor& labels,
                                   nn::ForwardContext& ctx) {
  const nn::Batch b = tower_batch(labels, kTextModality, tokens.size(0), false, padding_mask);
  return l2_normalize_rows(nn::with_batch(ctx, b, [&] { return text->encode(tokens, padding_mask, ctx); }));
}

OneTowerModel::OneTowerModel(const OneTowerOptions& o, double init_logit_scale, RngStream& rng)
    : ContrastiveModel("OneTowerModel", init_logit_scale, o.image.dtype), options(o) {
  const vision::ViTOptions& v = o.image;
  MOELAB_CHECK(v.dim % v.num_heads == 0, "one tower: dim " << v.dim << " is not a multiple of num_heads " << v.num_heads);
  patch_embed = register_module("patch_embed", std::make_shared<vision::PatchEmbed>(v, rng));
  word_embed = register_module("word_embed", std::make_shared<nn::Embedding>(o.vocab_size, v.dim, rng, v.init, v.dtype));
  auto table = [&](const Shape& s) {
    Tensor t = Tensor::zeros(s, v.dtype);
    nn::trunc_normal_(t, 0.0, 0.02, -0.04, 0.04, rng);
    return t;
  };
  image_pos = register_parameter("image_pos", table({1, v.num_patches(), v.dim}));
  text_pos = register_parameter("text_pos", table({1, o.max_len, v.dim}));
  modality_embed = register_parameter("modality_embed", table({2, v.dim}));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  const int64_t d_ff = static_cast<int64_t>(std::llround(v.mlp_ratio * double(v.dim)));
  for (int64_t i = 0; i < v.depth; ++i) {
    nn::TransformerBlockOptions bo;
    bo.dim = v.dim;
    bo.num_heads = v.num_heads;
    bo.mlp_ratio = v.mlp_ratio;
    bo.init = v.init;
    bo.dtype = v.dtype;
    std::shared_ptr<nn::Module> ffn;
    if (std::find(v.moe_layers.begin(), v.moe_layers.end(), i) != v.moe_layers.end()) {
      bo.ffn_name = "moe";
      moe::MoELayerOptions mo{.d_model = v.dim, .d_ff = d_ff, .seq_len = std::max(v.num_patches(), o.max_len),
                              .init = v.init, .dtype = v.dtype};
      ffn = std::make_shared<moe::MoELayer>(o.moe, mo, rng);
    }
    blocks->push_back(std::make_shared<nn::TransformerBlock>(bo, rng, ffn));
  }
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(v.dim, 1e-5, true, v.dtype));
  image_proj = register_module("image_proj", std::make_shared<nn::Linear>(v.dim, o.embed_dim, true, rng, v.init, v.dtype));
  text_proj = register_module("text_proj", std::make_shared<nn::Linear>(v.dim, o.embed_dim, true, rng, v.init, v.dtype));
}

Tensor OneTowerModel::encode_tokens(Tensor x, Modality modality, const Tensor& padding_mask, nn::ForwardContext& ctx) {
  x = x + reshape(slice(modality_embed, 0, modality, modality + 1), Shape{1, 1, options.image.dim});
  for (size_t i = 0; i < blocks->size(); ++i) x = (*blocks)[i].forward(x, ctx);
  x = norm->forward(x);
  return padding_mask.defined() ? masked_mean(x, padding_mask) : mean(x, {1});
}

Tensor OneTowerModel::encode_images(const Tensor& images, const Tensor& labels, nn::ForwardContext& ctx) {
  const nn::Batch b = tower_batch(labels, kImageModality, images.size(0), true);
  Tensor pooled = nn::with_batch(ctx, b, [&] {
    return encode_tokens(patch_embed->forward(images) + image_pos, kImageModality, Tensor(), ctx);
  });
  return l2_normalize_rows(image_proj->forward(pooled));
}

Tensor OneTowerModel::encode_texts(const Tensor& tokens, const Tensor& padding_mask, const Tensor& labels,
                                   nn::ForwardContext& ctx) {
  const int64_t t = tokens.size(1);
  MOELAB_CHECK(t <= options.max_len, "one tower: " << t << " tokens exceed max_len " << options.max_len);
  const nn::Batch b = tower_batch(labels, kTextModality, tokens.size(0), true, padding_mask);
  Tensor pooled = nn::with_batch(ctx, b, [&] {
    return encode_tokens(word_embed->forward(tokens) + slice(text_pos, 1, 0, t), kTextModality, padding_mask, ctx);
  });
  return l2_normalize_rows(text_proj->forward(pooled));
}

}  // namespace moelab::experiments
