#pragma once
// The pre-LN transformer block: x + attn(norm1(x)), then h + ffn(norm2(h)). Its FFN is any Module (the
// dense MLP by default, an MoE layer when the config says so); both get the forward context.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/nn/attention.h"
#include "core/nn/init.h"
#include "core/nn/layers.h"
#include "core/nn/mlp.h"
#include "core/nn/module.h"

namespace moelab::nn {

struct TransformerBlockOptions {
  int64_t dim = 0;
  int64_t num_heads = 1;
  bool causal = false;
  double ln_eps = 1e-5;
  double dropout = 0.0;     // residual dropout after attention and after the FFN (training only)
  bool qkv_bias = true;
  bool rotary = false;           // rotary positions on q and k (AttentionOptions::rotary)
  double rotary_base = 10000.0;
  std::string ffn_name = "mlp";  // the FFN's child name in parameter paths ("mlp", "moe")
  // Used only when no FFN is given: the dense MLP of width mlp_ratio * dim.
  double mlp_ratio = 4.0;
  Activation activation = Activation::gelu_tanh;
  bool gated = false;
  InitOptions init;
  DType dtype = DType::f32;
};

class TransformerBlock : public Module {
 public:
  // ffn == nullptr builds the dense MLP from the options.
  TransformerBlock(const TransformerBlockOptions& options, RngStream& rng, std::shared_ptr<Module> ffn = nullptr);
  // x: (B, T, d) -> (B, T, d); attention masks keys by ctx.batch().padding_mask (and causally when set).
  Tensor forward(const Tensor& x, ForwardContext& ctx) override;
  using Module::forward;
  // The same with the attention's key/value cache (MultiHeadAttention::forward with a cache): x holds the
  // next tokens of the cached sequences. cache == nullptr is forward(x, ctx).
  Tensor forward(const Tensor& x, ForwardContext& ctx, KVCache* cache);
  // Swaps the FFN (same child name), e.g. for an MoE layer built after the block.
  void set_ffn(std::shared_ptr<Module> ffn);

  TransformerBlockOptions options;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiHeadAttention> attn;
  std::shared_ptr<Module> ffn;
  std::shared_ptr<Dropout> drop;  // only when options.dropout > 0 (no parameters)
};

// Builds the FFN of block `block` (an MoE layer) for make_block_stack.
using FfnFactory = std::function<std::shared_ptr<Module>(int64_t block, RngStream& rng)>;

// `depth` blocks with the options `block`: those listed in moe_layers take make_moe's FFN (child "moe"),
// the others the dense MLP. `owner` names the model in errors ("ViT").
std::shared_ptr<ModuleList> make_block_stack(const TransformerBlockOptions& block, int64_t depth,
                                             const std::vector<int64_t>& moe_layers, const FfnFactory& make_moe,
                                             RngStream& rng, const std::string& owner);

}  // namespace moelab::nn
