#pragma once
// Multi-head self-attention with a fused qkv projection (timm/ViT layout: qkv.weight is (3d, d), rows
// [q; k; v], each split into heads of d/num_heads), optional rotary positions on q and k, scaled dot-product
// attention, an output projection, and a key/value cache for incremental decoding.
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
  bool rotary = false;           // rotate q and k by their positions (apply_rotary); needs an even head width
  double rotary_base = 10000.0;  // the angle of pair i at position p is p * base^(-2i/Dh)
  InitOptions init;
  DType dtype = DType::f32;
};

// Rotary position embedding (Su et al., RoFormer) in the half-split layout: element i of each head is paired
// with element i + Dh/2 and the pair is rotated by the angle p * base^(-2i/Dh), p = first_position + t.
// Built from differentiable ops, so its backward is theirs.
// x: (B, H, T, Dh) (Dh even) -> (B, H, T, Dh)
Tensor apply_rotary(const Tensor& x, int64_t first_position, double base = 10000.0);

// The keys and values of the tokens an attention layer has seen, for incremental decoding.
struct KVCache {
  Tensor k, v;         // (B, H, Tc, Dh) each, detached
  Tensor key_padding;  // (B, Tc) i64, defined once any step had a padding mask
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
  void clear() { k = v = key_padding = Tensor(); }
};

class MultiHeadAttention : public Module {
 public:
  MultiHeadAttention(const AttentionOptions& options, RngStream& rng);
  // x: (B, T, d) -> (B, T, d); keys masked causally (options.causal) and where ctx.batch().padding_mask is 0.
  Tensor forward(const Tensor& x, ForwardContext& ctx) override;
  using Module::forward;
  // With a cache: x holds the next T tokens (positions cache->length() ...); their keys and values are
  // appended to the cache and the queries see every cached key (causally: key j <= query position).
  // ctx.batch().padding_mask, when defined, is (B, T) for the new tokens. Inference only (no gradient
  // flows into the cache). cache == nullptr is forward(x, ctx).
  Tensor forward(const Tensor& x, ForwardContext& ctx, KVCache* cache);
  AttentionOptions options;
  std::shared_ptr<Linear> qkv, proj;
};

}  // namespace moelab::nn
