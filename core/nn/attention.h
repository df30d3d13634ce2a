#pragma once
// Multi-head self-attention with a fused qkv projection (timm/ViT layout: qkv.weight is (3d, d), rows
// [q; k; v], each split into heads of d/num_heads), scaled dot-product attention and an output projection.
#include <cstdint>

#include "core/nn/init.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"

namespace moelab::nn {

struct AttentionOptions {
  int64_t dim = 0;
  int64_t num_heads = 1;
  bool causal = false;
  bool qkv_bias = true;
  bool proj_bias = true;
  InitOptions init;
  DType dtype = DType::f32;
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionOptions& options, RngStream& rng);
  // x: (B, T, d) -> (B, T, d); keys masked causally (options.causal) and where ctx.batch().padding_mask is 0.
  Tensor forward(const Tensor& x, ForwardContext& ctx) override;
  using Module::forward;
  AttentionOptions options;
  std::shared_ptr<Linear> qkv, proj;
};

}  // namespace moelab::nn
