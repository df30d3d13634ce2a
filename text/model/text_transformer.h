#pragma once
// The text transformer: one pre-LN stack of core/nn TransformerBlocks used as a causal LM (logits over the
// vocabulary, a key/value cache for incremental decoding) or a bidirectional encoder (pooled features).
// MoE FFNs come from a caller-supplied factory in chosen blocks, as in vision's ViT. docs/text.md (The model).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/moe/moe_config.h"
#include "core/nn/attention.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"
#include "core/nn/transformer.h"

namespace moelab::text {

enum class PositionKind : uint8_t { rotary, learned };
// "rotary", "learned"; throws listing the valid names.
PositionKind parse_position_kind(const std::string& name);

struct TextTransformerOptions {
  int64_t vocab_size = 0;
  int64_t dim = 128, depth = 4, num_heads = 4;
  double mlp_ratio = 4.0;               // dense FFN width / dim (and each expert's unless the MoE config says)
  bool causal = true;                   // false: a bidirectional encoder
  PositionKind positions = PositionKind::rotary;
  int64_t max_len = 512;                // learned positions: the table's length (the longest sequence)
  double rotary_base = 10000.0;
  double dropout = 0.0;                 // residual dropout in the blocks
  nn::InitOptions init{nn::InitScheme::normal, 0.02};
  std::vector<int64_t> moe_layers;      // block indices whose FFN comes from the factory (child name "moe")
  DType dtype = DType::f32;             // f64 for gradient checks
};

// Builds the MoE FFN of block `block`: input and output (B, T, dim).
using FfnFactory = nn::FfnFactory;
// The factory of core/moe MoELayers for `config` (model.moe.*), experts of width mlp_ratio * dim by default;
// seq_len: tokens per training sequence (Soft MoE slots; hash routing by position when no token ids).
FfnFactory moe_layer_factory(const moe::MoEConfig& config, const TextTransformerOptions& options, int64_t seq_len);

// Per-layer key/value caches of a batch of sequences being decoded.
struct DecodeState {
  std::vector<nn::KVCache> layers;  // one per block
  int64_t length() const { return layers.empty() ? 0 : layers.front().length(); }  // tokens seen
  void clear() {
    for (auto& l : layers) l.clear();
  }
};

class TextTransformer : public nn::Module {
 public:
  // make_moe may be empty when options.moe_layers is empty.
  TextTransformer(const TextTransformerOptions& options, RngStream& rng, const FfnFactory& make_moe = {});

  // tokens (B, T) i64 -> logits (B, T, vocab): the next-token distribution at every position (causal), with
  // the output head tied to the token embedding. Reads ctx.batch().padding_mask ((B, T), 1 = real token);
  // MoE layers read the routing side inputs (labels, token_ids for hash routing) and add aux losses.
  Tensor forward(const Tensor& tokens, nn::ForwardContext& ctx) override;
  using nn::Module::forward;
  // tokens (B, T) -> the final layer-normed hidden states (B, T, dim).
  Tensor hidden_states(const Tensor& tokens, nn::ForwardContext& ctx);
  // tokens (B, T) -> pooled features (B, dim): the mean of the final layer-normed hidden states over the real
  // tokens (padding_mask 1; all tokens without a mask). A sequence without real tokens pools to zeros.
  Tensor encode(const Tensor& tokens, nn::ForwardContext& ctx);

  // Incremental decoding (inference; causal models): tokens (B, T) are the next T tokens of the sequences in
  // `state` (positions state.length() ...); returns their logits (B, T, vocab) and appends their keys and
  // values. A fresh state comes from new_decode_state(). Routing side inputs in ctx.batch() must be (B, T)
  // for these tokens.
  DecodeState new_decode_state() const { return DecodeState{std::vector<nn::KVCache>(blocks->size())}; }
  Tensor forward_incremental(const Tensor& tokens, nn::ForwardContext& ctx, DecodeState& state);

  // The MoE modules in block order (empty for a dense model).
  std::vector<std::pair<int64_t, nn::Module*>> moe_modules() const;

  TextTransformerOptions options;
  std::shared_ptr<nn::Embedding> embed;  // (vocab, dim), also the output head
  Tensor pos_embed;                      // (max_len, dim) with learned positions
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::LayerNorm> norm;

 private:
  // tokens -> normed hidden states, through the caches when `state` is given.
  Tensor run_stack(const Tensor& tokens, nn::ForwardContext& ctx, DecodeState* state);
};

}  // namespace moelab::text
