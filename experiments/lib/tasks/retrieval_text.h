#pragma once
// The text side of the retrieval task: a word-level vocabulary of the caption grammar (docs/scenes.md),
// caption batches as padded token ids, and the two text towers (bag of words, transformer with MoE).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/moe/moe_config.h"
#include "core/nn/layers.h"
#include "core/nn/module.h"
#include "core/nn/transformer.h"
#include "text/model/text_transformer.h"

namespace moelab::experiments {

// Every word the caption grammar and the zero-shot prompts use, after two specials: 0 = padding, 1 = unknown.
class CaptionVocabulary {
 public:
  CaptionVocabulary();
  static constexpr int64_t kPad = 0, kUnknown = 1;
  int64_t size() const { return static_cast<int64_t>(words_.size()); }
  const std::string& word(int64_t id) const { return words_.at(static_cast<size_t>(id)); }
  // Lower-cased words, ':' and ',' split off as words of their own; unknown words map to kUnknown.
  std::vector<int64_t> encode(const std::string& text) const;
  // Words of `text` the vocabulary lacks (for a warning on a user query).
  std::vector<std::string> unknown_words(const std::string& text) const;

 private:
  std::vector<std::string> words_;
};

struct TokenBatch {
  Tensor tokens;        // (B, T) i64, padded with kPad
  Tensor padding_mask;  // (B, T) i64: 1 = a word, 0 = padding
};
// Pads to the longest caption; a caption longer than max_len is an error naming it and its length.
TokenBatch encode_captions(const CaptionVocabulary& vocab, const std::vector<std::string>& captions, int64_t max_len);

struct TextTowerOptions {
  int64_t vocab_size = 0, max_len = 48;
  int64_t dim = 64, depth = 2, num_heads = 4;
  double mlp_ratio = 2.0;
  int64_t out_dim = 64;                 // the joint space
  std::vector<int64_t> moe_layers;      // transformer blocks whose FFN is an MoE layer
  moe::MoEConfig moe;
  nn::InitOptions init{nn::InitScheme::trunc_normal, 0.02};
  DType dtype = DType::f32;
};

// A text encoder: tokens (B, T) with the padding mask of ctx.batch() -> (B, out_dim), not normalized.
class TextTower : public nn::Module {
 public:
  using nn::Module::Module;
  virtual Tensor encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext& ctx) = 0;
};

// Bag of words: the masked mean of word embeddings through a two-layer MLP (word order is invisible to it).
class BowTextTower : public TextTower {
 public:
  BowTextTower(const TextTowerOptions& o, RngStream& rng);
  Tensor encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext& ctx) override;
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::Linear> fc1, proj;
};

// Transformer encoder: the text transformer of text/model in encoder mode (bidirectional, learned positions,
// padding masked, MoE FFNs in chosen blocks), its mean over the real words, then a linear projection.
class TransformerTextTower : public TextTower {
 public:
  TransformerTextTower(const TextTowerOptions& o, RngStream& rng);
  Tensor encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext& ctx) override;
  TextTowerOptions options;
  std::shared_ptr<text::TextTransformer> encoder;
  std::shared_ptr<nn::Linear> proj;
};

// x: (B, T, d), mask: (B, T) i64 1/0 -> (B, d): the mean over the rows whose mask is 1.
Tensor masked_mean(const Tensor& x, const Tensor& mask);

}  // namespace moelab::experiments
