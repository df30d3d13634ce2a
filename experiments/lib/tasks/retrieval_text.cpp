#include "experiments/lib/tasks/retrieval_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "core/ops/ops.h"
#include "core/util/check.h"
#include "vision/data/scene.h"

namespace moelab::experiments {

namespace {
std::vector<std::string> split_words(const std::string& text) {
  std::string spaced;
  for (char c : text) {
    if (c == ':' || c == ',') {
      spaced += ' ';
      spaced += c;
      spaced += ' ';
    } else {
      spaced += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  std::istringstream in(spaced);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}
}  // namespace

CaptionVocabulary::CaptionVocabulary() {
  words_ = {"<pad>", "<unk>", "a",     "an",    "one",  "two",    "three", "item",  "items",  ":",     ",",
            "and",   "small", "large", "at",    "the",  "top",    "left",  "right", "bottom", "on",    "in",
            "centre", "above", "below", "to",   "of",   "it",     "photo", "picture"};
  auto add = [&](const std::string& phrase) {
    for (const std::string& w : split_words(phrase))
      if (std::find(words_.begin(), words_.end(), w) == words_.end()) words_.push_back(w);
  };
  for (const std::string& c : vision::colour_names()) add(c);
  for (const std::string& n : vision::class_nouns()) add(n);
  for (const std::string& n : vision::class_plurals()) add(n);
}

std::vector<int64_t> CaptionVocabulary::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& w : split_words(text)) {
    auto it = std::find(words_.begin(), words_.end(), w);
    ids.push_back(it == words_.end() ? kUnknown : static_cast<int64_t>(it - words_.begin()));
  }
  return ids;
}

std::vector<std::string> CaptionVocabulary::unknown_words(const std::string& text) const {
  std::vector<std::string> out;
  for (const std::string& w : split_words(text))
    if (std::find(words_.begin() + 2, words_.end(), w) == words_.end()) out.push_back(w);
  return out;
}

TokenBatch encode_captions(const CaptionVocabulary& vocab, const std::vector<std::string>& captions, int64_t max_len) {
  MOELAB_CHECK(!captions.empty(), "encode_captions: no captions");
  std::vector<std::vector<int64_t>> ids;
  int64_t longest = 1;
  for (const std::string& c : captions) {
    ids.push_back(vocab.encode(c));
    const int64_t n = static_cast<int64_t>(ids.back().size());
    MOELAB_CHECK(n <= max_len, "caption of " << n << " words exceeds the text tower's max_len " << max_len << ": \""
                                             << c << "\"");
    longest = std::max(longest, n);
  }
  const int64_t b = static_cast<int64_t>(captions.size());
  std::vector<int64_t> tok(static_cast<size_t>(b * longest), CaptionVocabulary::kPad), mask(tok.size(), 0);
  for (int64_t i = 0; i < b; ++i) {
    const auto& row = ids[static_cast<size_t>(i)];
    for (size_t t = 0; t < row.size(); ++t) {
      tok[static_cast<size_t>(i * longest) + t] = row[t];
      mask[static_cast<size_t>(i * longest) + t] = 1;
    }
    // an empty query still gets one (unknown) word, so every row has a real token to pool
    if (row.empty()) {
      tok[static_cast<size_t>(i * longest)] = CaptionVocabulary::kUnknown;
      mask[static_cast<size_t>(i * longest)] = 1;
    }
  }
  return {Tensor::from_vector(tok, Shape{b, longest}), Tensor::from_vector(mask, Shape{b, longest})};
}

Tensor masked_mean(const Tensor& x, const Tensor& mask) {
  Tensor m = cast(mask, x.dtype()).unsqueeze(2);  // (B, T, 1)
  return div(sum(mul(x, m), {1}), sum(m, {1}));
}

BowTextTower::BowTextTower(const TextTowerOptions& o, RngStream& rng) : TextTower("BowTextTower") {
  embed = register_module("embed", std::make_shared<nn::Embedding>(o.vocab_size, o.dim, rng, o.init, o.dtype));
  const int64_t hidden = static_cast<int64_t>(std::llround(o.mlp_ratio * double(o.dim)));
  fc1 = register_module("fc1", std::make_shared<nn::Linear>(o.dim, hidden, true, rng, o.init, o.dtype));
  proj = register_module("proj", std::make_shared<nn::Linear>(hidden, o.out_dim, true, rng, o.init, o.dtype));
}

Tensor BowTextTower::encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext&) {
  Tensor bag = masked_mean(embed->forward(tokens), padding_mask);  // (B, dim)
  return proj->forward(gelu(fc1->forward(bag)));
}

TransformerTextTower::TransformerTextTower(const TextTowerOptions& o, RngStream& rng)
    : TextTower("TransformerTextTower"), options(o) {
  MOELAB_CHECK(o.dim % o.num_heads == 0, "text tower: dim " << o.dim << " is not a multiple of num_heads "
                                                            << o.num_heads);
  text::TextTransformerOptions t;
  t.vocab_size = o.vocab_size;
  t.dim = o.dim;
  t.depth = o.depth;
  t.num_heads = o.num_heads;
  t.mlp_ratio = o.mlp_ratio;
  t.causal = false;
  t.positions = text::PositionKind::learned;
  t.max_len = o.max_len;
  t.init = o.init;
  t.moe_layers = o.moe_layers;
  t.dtype = o.dtype;
  text::FfnFactory make_moe;
  if (!o.moe_layers.empty()) make_moe = text::moe_layer_factory(o.moe, t, o.max_len);
  encoder = register_module("encoder", std::make_shared<text::TextTransformer>(t, rng, make_moe));
  proj = register_module("proj", std::make_shared<nn::Linear>(o.dim, o.out_dim, true, rng, o.init, o.dtype));
}

Tensor TransformerTextTower::encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext& ctx) {
  MOELAB_CHECK(tokens.size(1) <= options.max_len,
               "text tower: " << tokens.size(1) << " tokens exceed max_len " << options.max_len);
  MOELAB_CHECK(ctx.batch().padding_mask.defined() && ctx.batch().padding_mask.shape() == padding_mask.shape(),
               "text tower: the forward context must carry the tokens' padding mask");
  return proj->forward(encoder->encode(tokens, ctx));  // pools over ctx.batch().padding_mask
}

}  // namespace moelab::experiments
