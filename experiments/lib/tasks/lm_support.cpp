// Token streams, sequence batches and the LM model from a config (task `lm`, `moelab generate`).
#include "experiments/lib/tasks/lm_support.h"

#include <algorithm>

#include "experiments/lib/moe_support.h"

namespace moelab::experiments {

TokenStream make_token_stream(const std::vector<text::Document>& docs, const std::vector<std::vector<int32_t>>& ids,
                              const std::vector<int64_t>& order, int32_t eos_id) {
  MOELAB_CHECK(docs.size() == ids.size(), "token stream: " << docs.size() << " documents but " << ids.size()
                                                           << " token lists");
  TokenStream s;
  size_t total = 1;
  for (const auto& v : ids) total += v.size() + 1;
  s.tokens.reserve(total);
  s.domains.reserve(total);
  const size_t n = order.empty() ? docs.size() : order.size();
  for (size_t i = 0; i < n; ++i) {
    const size_t d = order.empty() ? i : static_cast<size_t>(order[i]);
    MOELAB_CHECK(d < docs.size(), "token stream: document index " << d << " out of " << docs.size());
    const uint8_t domain = static_cast<uint8_t>(docs[d].domain);
    if (s.tokens.empty()) {  // the leading </s> takes the first document's domain
      s.tokens.push_back(eos_id);
      s.domains.push_back(domain);
    }
    s.tokens.insert(s.tokens.end(), ids[d].begin(), ids[d].end());
    s.tokens.push_back(eos_id);
    s.domains.insert(s.domains.end(), ids[d].size() + 1, domain);
  }
  return s;
}

int64_t count_sequences(int64_t stream_size, int64_t seq_len) {
  MOELAB_CHECK(seq_len > 0, "seq_len must be positive, got " << seq_len);
  return stream_size < 2 ? 0 : (stream_size - 1 + seq_len - 1) / seq_len;
}

nn::Batch sequence_batch(const TokenStream& stream, int64_t L, int64_t first, int64_t count) {
  const int64_t total = count_sequences(stream.size(), L);
  MOELAB_CHECK(first >= 0 && count > 0 && first + count <= total,
               "sequence batch: sequences " << first << ".." << first + count - 1 << " outside the stream's " << total);
  const int64_t T = std::min(L, stream.size() - 1 - (first + count - 1) * L);  // the last one may be shorter
  MOELAB_CHECK(count == 1 || T == L, "sequence batch: a short final sequence must be batched alone");
  std::vector<int64_t> in(static_cast<size_t>(count * T)), out(in.size()), dom(in.size());
  for (int64_t b = 0; b < count; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const size_t p = static_cast<size_t>((first + b) * L + t), i = static_cast<size_t>(b * T + t);
      in[i] = stream.tokens[p];
      out[i] = stream.tokens[p + 1];
      dom[i] = stream.domains[p];
    }
  nn::Batch batch;
  batch.tokens = Tensor::from_vector(in, Shape{count, T});
  batch.token_ids = batch.tokens;
  batch.targets = Tensor::from_vector(out, Shape{count, T});
  batch.labels = Tensor::from_vector(dom, Shape{count, T});
  return batch;
}

text::TextTransformerOptions lm_model_options(const io::Config& cfg, int64_t vocab_size) {
  text::TextTransformerOptions o;
  o.vocab_size = vocab_size;
  o.dim = cfg.get_int("model.dim");
  o.depth = cfg.get_int("model.depth");
  o.num_heads = cfg.get_int("model.num_heads");
  o.mlp_ratio = cfg.get_float("model.mlp_ratio");
  o.causal = true;
  o.positions = text::parse_position_kind(cfg.get_string("model.positions"));
  o.max_len = cfg.get_int("data.seq_len");
  o.rotary_base = cfg.get_float("model.rotary_base");
  o.dropout = cfg.get_float("model.dropout");
  o.init = {nn::InitScheme::normal, cfg.get_float("model.init_std")};
  o.moe_layers = moe_blocks_from(cfg, o.depth);
  return o;
}

std::shared_ptr<text::TextTransformer> make_lm_model(const io::Config& cfg, int64_t vocab_size, uint64_t seed) {
  const text::TextTransformerOptions o = lm_model_options(cfg, vocab_size);
  RngStream init(seed, "init");
  text::FfnFactory factory;
  if (!o.moe_layers.empty()) factory = text::moe_layer_factory(moe_config_from(cfg), o, cfg.get_int("data.seq_len"));
  return std::make_shared<text::TextTransformer>(o, init, factory);
}

text::CorpusOptions lm_corpus_options(const io::Config& cfg) {
  text::CorpusOptions o;
  o.cache_dir = cfg.get_string("data.cache_dir");
  o.max_domain_bytes = static_cast<uint64_t>(cfg.get_int("data.max_domain_bytes"));
  return o;
}

text::TokenizerOptions lm_tokenizer_options(const io::Config& cfg) {
  text::TokenizerOptions o;
  o.cache_dir = cfg.get_string("data.cache_dir");
  o.model_type = cfg.get_string("data.tokenizer");
  o.vocab_size = static_cast<int>(cfg.get_int("data.vocab_size"));
  o.seed = static_cast<uint32_t>(cfg.get_int("data.tokenizer_seed"));
  return o;
}

std::filesystem::path run_tokenizer_path(const std::filesystem::path& run_dir) {
  return run_dir / "text" / "tokenizer.model";
}

}  // namespace moelab::experiments
