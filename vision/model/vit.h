#pragma once
// The Vision Transformer for small images, with MoE FFNs in chosen blocks built by a caller-supplied
// factory. Patch embeddings, pooling and the timm parameter names: docs/vision.md (The pieces).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/nn/layers.h"
#include "core/nn/module.h"
#include "core/nn/transformer.h"

namespace moelab::vision {

enum class PatchEmbedKind : uint8_t { conv, linear, conv_stem };
// "conv", "linear", "conv_stem"; throws listing the valid names.
PatchEmbedKind parse_patch_embed(const std::string& name);

struct ViTOptions {
  int64_t image_size = 28, channels = 1, num_classes = 10;
  PatchEmbedKind patch_embed = PatchEmbedKind::conv;
  int64_t patch_size = 4;
  // conv_stem only: channels of the 3x3 convs with ReLU, then a 1x1 conv to dim. The last log2(patch_size)
  // convs have stride 2; any before them keep the full resolution (stride 1).
  std::vector<int64_t> stem_channels;
  int64_t dim = 64, depth = 4, num_heads = 4;
  double mlp_ratio = 2.0;
  bool class_token = true;  // false: mean pooling over the patch tokens
  double dropout = 0.0;
  nn::InitOptions init{nn::InitScheme::trunc_normal, 0.02};
  std::vector<int64_t> moe_layers;  // block indices whose FFN comes from the factory (child name "moe")
  DType dtype = DType::f32;         // f64 for gradient checks

  int64_t grid_size() const { return image_size / patch_size; }       // patches per side
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t num_tokens() const { return num_patches() + (class_token ? 1 : 0); }
};

// Builds the MoE FFN of block `block`: input and output (B, T, dim), returns aux losses and stats.
using FfnFactory = nn::FfnFactory;

// images (B, C, H, W) -> tokens (B, N, dim)
class PatchEmbed : public nn::Module {
 public:
  PatchEmbed(const ViTOptions& options, RngStream& rng);
  Tensor forward(const Tensor& images) override;

  PatchEmbedKind kind;
  int64_t patch_size, dim;
  std::shared_ptr<nn::Conv2d> proj;       // conv: kernel = stride = patch; conv_stem: the final 1x1
  std::shared_ptr<nn::Linear> linear;     // linear: (C * p * p) -> dim, named "proj" too
  std::shared_ptr<nn::ModuleList> stem;   // conv_stem: the 3x3 stride-2 convs
};

class VisionTransformer : public nn::Module {
 public:
  // make_moe may be empty when options.moe_layers is empty.
  VisionTransformer(const ViTOptions& options, RngStream& rng, const FfnFactory& make_moe = {});

  // images (B, C, H, W) -> logits (B, num_classes); the MoE layers add their aux losses and routing to ctx.
  Tensor forward(const Tensor& images, nn::ForwardContext& ctx) override;
  using nn::Module::forward;

  // The MoE modules in block order (empty for a dense model).
  std::vector<std::pair<int64_t, nn::Module*>> moe_modules() const;

  ViTOptions options;
  std::shared_ptr<PatchEmbed> patch_embed;
  Tensor cls_token;  // (1, 1, dim) when options.class_token
  Tensor pos_embed;  // (1, num_tokens, dim)
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace moelab::vision
