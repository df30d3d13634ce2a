#include "experiments/lib/tasks/retrieval_text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "core/moe/moe_layer.h"
#include "core/nn/init.h"
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
  embed = register_module("embed", std::make_shared<nn::Embedding>(o.vocab_size, o.dim, rng, o.init, o.dtype));
  Tensor pos = Tensor::zeros({1, o.max_len, o.dim}, o.dtype);
  nn::trunc_normal_(pos, 0.0, 0.02, -0.04, 0.04, rng);
  pos_embed = register_parameter("pos_embed", pos);
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  const int64_t d_ff = static_cast<int64_t>(std::llround(o.mlp_ratio * double(o.dim)));
  for (int64_t i = 0; i < o.depth; ++i) {
    nn::TransformerBlockOptions bo;
    bo.dim = o.dim;
    bo.num_heads = o.num_heads;
    bo.mlp_ratio = o.mlp_ratio;
    bo.init = o.init;
    bo.dtype = o.dtype;
    std::shared_ptr<nn::Module> ffn;
    if (std::find(o.moe_layers.begin(), o.moe_layers.end(), i) != o.moe_layers.end()) {
      bo.ffn_name = "moe";
      moe::MoELayerOptions mo{.d_model = o.dim, .d_ff = d_ff, .seq_len = o.max_len, .init = o.init, .dtype = o.dtype};
      ffn = std::make_shared<moe::MoELayer>(o.moe, mo, rng);
    }
    blocks->push_back(std::make_shared<nn::TransformerBlock>(bo, rng, ffn));
  }
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(o.dim, 1e-5, true, o.dtype));
  proj = register_module("proj", std::make_shared<nn::Linear>(o.dim, o.out_dim, true, rng, o.init, o.dtype));
}

Tensor TransformerTextTower::encode(const Tensor& tokens, const Tensor& padding_mask, nn::ForwardContext& ctx) {
  const int64_t t = tokens.size(1);
  MOELAB_CHECK(t <= options.max_len, "text tower: " << t << " tokens exceed max_len " << options.max_len);
  Tensor x = embed->forward(tokens) + slice(pos_embed, 1, 0, t);
  for (size_t i = 0; i < blocks->size(); ++i) x = (*blocks)[i].forward(x, ctx);
  return proj->forward(masked_mean(norm->forward(x), padding_mask));
}

}  // namespace moelab::experiments
