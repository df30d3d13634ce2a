// The text transformer: token embedding (tied head), rotary or learned positions, pre-LN blocks, final norm.
#include "text/model/text_transformer.h"

#include <algorithm>
#include <cmath>

#include "core/moe/moe_layer.h"
#include "core/nn/init.h"
#include "core/ops/ops.h"

namespace moelab::text {

PositionKind parse_position_kind(const std::string& name) {
  if (name == "rotary") return PositionKind::rotary;
  if (name == "learned") return PositionKind::learned;
  MOELAB_FAIL("unknown position encoding '" << name << "'; use one of: rotary, learned");
}

FfnFactory moe_layer_factory(const moe::MoEConfig& config, const TextTransformerOptions& o, int64_t seq_len) {
  const int64_t d_ff = static_cast<int64_t>(std::llround(o.mlp_ratio * double(o.dim)));
  moe::MoELayerOptions mo{.d_model = o.dim, .d_ff = d_ff, .seq_len = seq_len, .init = o.init, .dtype = o.dtype};
  return [config, mo](int64_t, RngStream& rng) { return std::make_shared<moe::MoELayer>(config, mo, rng); };
}

TextTransformer::TextTransformer(const TextTransformerOptions& o, RngStream& rng, const FfnFactory& make_moe)
    : Module("TextTransformer"), options(o) {
  MOELAB_CHECK(o.vocab_size > 0, "TextTransformer: vocab_size must be positive, got " << o.vocab_size);
  MOELAB_CHECK(o.dim > 0 && o.num_heads > 0 && o.dim % o.num_heads == 0,
               "TextTransformer: dim " << o.dim << " must be a positive multiple of num_heads " << o.num_heads);
  MOELAB_CHECK(o.depth > 0, "TextTransformer: depth must be positive, got " << o.depth);
  MOELAB_CHECK(o.positions != PositionKind::learned || o.max_len > 0,
               "TextTransformer: learned positions need max_len > 0, got " << o.max_len);
  MOELAB_CHECK(o.moe_layers.empty() || make_moe, "TextTransformer: MoE layers requested but no MoE factory given");
  for (int64_t i : o.moe_layers)
    MOELAB_CHECK(i >= 0 && i < o.depth, "TextTransformer: MoE block " << i << " is outside 0.." << o.depth - 1);
  embed = register_module("embed", std::make_shared<nn::Embedding>(o.vocab_size, o.dim, rng, o.init, o.dtype));
  if (o.positions == PositionKind::learned) {
    Tensor pos = Tensor::zeros({o.max_len, o.dim}, o.dtype);
    nn::trunc_normal_(pos, 0.0, 0.02, -0.04, 0.04, rng);
    pos_embed = register_parameter("pos_embed", pos);
  }
  nn::TransformerBlockOptions bo;
  bo.dim = o.dim;
  bo.num_heads = o.num_heads;
  bo.causal = o.causal;
  bo.rotary = o.positions == PositionKind::rotary;
  bo.rotary_base = o.rotary_base;
  bo.mlp_ratio = o.mlp_ratio;
  bo.activation = nn::Activation::gelu_tanh;
  bo.dropout = o.dropout;
  bo.init = o.init;
  bo.dtype = o.dtype;
  blocks = register_module("blocks",
                           nn::make_block_stack(bo, o.depth, o.moe_layers, make_moe, rng, "TextTransformer"));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(o.dim, 1e-5, true, o.dtype));
}

Tensor TextTransformer::run_stack(const Tensor& tokens, nn::ForwardContext& ctx, DecodeState* state) {
  MOELAB_CHECK(tokens.dim() == 2, "TextTransformer: tokens " << tokens.shape().str() << " are not (B, T)");
  const int64_t T = tokens.size(1), first = state ? state->length() : 0;
  if (state) {
    MOELAB_CHECK(options.causal, "TextTransformer: incremental decoding needs a causal model");
    MOELAB_CHECK(state->layers.size() == blocks->size(),
                 "TextTransformer: decode state has " << state->layers.size() << " layers, the model "
                                                      << blocks->size() << " (use new_decode_state())");
  }
  Tensor x = embed->forward(tokens);  // (B, T, d)
  if (options.positions == PositionKind::learned) {
    MOELAB_CHECK(first + T <= options.max_len, "TextTransformer: positions " << first << ".." << first + T - 1
                                                   << " exceed the learned position table (max_len "
                                                   << options.max_len << ")");
    x = x + pos_embed.slice(0, first, first + T);
  }
  for (size_t i = 0; i < blocks->size(); ++i)
    x = blocks->at<nn::TransformerBlock>(i)->forward(x, ctx, state ? &state->layers[i] : nullptr);
  return norm->forward(x);
}

Tensor TextTransformer::hidden_states(const Tensor& tokens, nn::ForwardContext& ctx) {
  return run_stack(tokens, ctx, nullptr);
}

Tensor TextTransformer::forward(const Tensor& tokens, nn::ForwardContext& ctx) {
  return linear(run_stack(tokens, ctx, nullptr), embed->weight);  // tied head: h E^T
}

Tensor TextTransformer::forward_incremental(const Tensor& tokens, nn::ForwardContext& ctx, DecodeState& state) {
  return linear(run_stack(tokens, ctx, &state), embed->weight);
}

Tensor TextTransformer::encode(const Tensor& tokens, nn::ForwardContext& ctx) {
  Tensor h = run_stack(tokens, ctx, nullptr);  // (B, T, d)
  const Tensor& mask = ctx.batch().padding_mask;
  if (!mask.defined()) return mean(h, {1});
  MOELAB_CHECK(mask.dim() == 2 && mask.size(0) == tokens.size(0) && mask.size(1) == tokens.size(1),
               "TextTransformer::encode: padding mask " << mask.shape().str() << " does not match the tokens "
                                                         << tokens.shape().str());
  Tensor m = mask.to(h.dtype()).reshape(Shape{tokens.size(0), tokens.size(1), 1});  // (B, T, 1), 1 = real
  Tensor count = clamp_min(sum(m, {1}), 1.0);                                          // (B, 1)
  return sum(h * m, {1}) / count;
}

std::vector<std::pair<int64_t, nn::Module*>> TextTransformer::moe_modules() const {
  std::vector<std::pair<int64_t, nn::Module*>> out;
  for (int64_t i : options.moe_layers) out.emplace_back(i, blocks->at<nn::TransformerBlock>(static_cast<size_t>(i))->ffn.get());
  return out;
}

}  // namespace moelab::text
