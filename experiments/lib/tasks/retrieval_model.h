#pragma once
// The models of the retrieval task: two towers (the ViT of vision/ and a text tower, each projected to the
// joint space) and one tower (LIMoE: one shared MoE transformer over image patches and words with modality
// embeddings). Both give L2-normalized embeddings and own the learnable log logit scale.
#include <cstdint>
#include <memory>

#include "core/nn/module.h"
#include "experiments/lib/tasks/retrieval_text.h"
#include "vision/model/vit.h"

namespace moelab::experiments {

enum Modality : int64_t { kImageModality = 0, kTextModality = 1 };

class ContrastiveModel : public nn::Module {
 public:
  ContrastiveModel(const std::string& type, double init_logit_scale, DType dtype);
  // images (B, 3, H, W) -> (B, E) unit rows. `labels` (B): routing-monitor labels, may be undefined.
  virtual Tensor encode_images(const Tensor& images, const Tensor& labels, nn::ForwardContext& ctx) = 0;
  // tokens, padding_mask (B, T) -> (B, E) unit rows.
  virtual Tensor encode_texts(const Tensor& tokens, const Tensor& padding_mask, const Tensor& labels,
                              nn::ForwardContext& ctx) = 0;
  Tensor forward(const Tensor& images, nn::ForwardContext& ctx) override { return encode_images(images, {}, ctx); }
  using nn::Module::forward;
  Tensor logit_scale;  // (1): log of the logit scale, CLIP's temperature parameter
};

// x: (B, E) -> x / |x| per row
Tensor l2_normalize_rows(const Tensor& x);

class TwoTowerModel : public ContrastiveModel {
 public:
  // image.num_classes is the joint dimension (the ViT's head is the image projection).
  TwoTowerModel(const vision::ViTOptions& image, const moe::MoEConfig& image_moe, const TextTowerOptions& text,
                bool bag_of_words, double init_logit_scale, RngStream& rng);
  Tensor encode_images(const Tensor& images, const Tensor& labels, nn::ForwardContext& ctx) override;
  Tensor encode_texts(const Tensor& tokens, const Tensor& padding_mask, const Tensor& labels,
                      nn::ForwardContext& ctx) override;
  std::shared_ptr<vision::VisionTransformer> image;
  std::shared_ptr<TextTower> text;
};

struct OneTowerOptions {
  vision::ViTOptions image;  // patch embedding, image size; dim, depth, heads, mlp_ratio, moe_layers of the tower
  int64_t vocab_size = 0, max_len = 48, embed_dim = 64;
  moe::MoEConfig moe;
};

// LIMoE: patches and words go through the same blocks in separate sequences, each with its modality's
// embedding added; each modality has its own position table and output projection.
class OneTowerModel : public ContrastiveModel {
 public:
  OneTowerModel(const OneTowerOptions& o, double init_logit_scale, RngStream& rng);
  Tensor encode_images(const Tensor& images, const Tensor& labels, nn::ForwardContext& ctx) override;
  Tensor encode_texts(const Tensor& tokens, const Tensor& padding_mask, const Tensor& labels,
                      nn::ForwardContext& ctx) override;
  OneTowerOptions options;
  std::shared_ptr<vision::PatchEmbed> patch_embed;
  std::shared_ptr<nn::Embedding> word_embed;
  Tensor image_pos, text_pos;  // (1, N, d), (1, max_len, d)
  Tensor modality_embed;       // (2, d)
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> image_proj, text_proj;

 private:
  Tensor encode_tokens(Tensor x, Modality modality, const Tensor& padding_mask, nn::ForwardContext& ctx);
};

}  // namespace moelab::experiments
