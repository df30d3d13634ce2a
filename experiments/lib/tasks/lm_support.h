#pragma once
// The pieces of task `lm` that `moelab generate` and the tests share: token streams of the corpus packed
// into fixed-length sequences with per-token domains, the text transformer built from a config, and the
// tokenizer kept in the run directory.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/io/config.h"
#include "core/nn/batch.h"
#include "text/data/corpus.h"
#include "text/model/text_transformer.h"
#include "text/tokenizer/tokenizer.h"

namespace moelab::experiments {

// Documents tokenized and laid end to end, each followed by </s>, after one leading </s>: the model
// predicts every token of every document (and each document's end) from the tokens before it.
struct TokenStream {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> domains;  // the domain of each token (a </s> belongs to the document it ends)
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// The documents of `docs` in the order of `order` (all, in order, when empty).
TokenStream make_token_stream(const std::vector<text::Document>& docs, const std::vector<std::vector<int32_t>>& ids,
                              const std::vector<int64_t>& order, int32_t eos_id);

// Sequence s of length L covers stream positions [s*L, s*L + L] (L inputs and their L next tokens; one token
// of overlap with the next sequence, so every token but the first is a target exactly once). The last
// sequence may be shorter. count_sequences(N, L) = ceil((N - 1) / L).
int64_t count_sequences(int64_t stream_size, int64_t seq_len);
// Sequences [first, first + count) as a batch: tokens and token_ids (B, T) i64 inputs, targets (B, T) next
// tokens, labels (B, T) the inputs' domains. All sequences of one batch must have the same length T.
nn::Batch sequence_batch(const TokenStream& stream, int64_t seq_len, int64_t first, int64_t count);

// The text transformer of a config's model.* keys (model.moe.* included) for a vocabulary.
text::TextTransformerOptions lm_model_options(const io::Config& cfg, int64_t vocab_size);
std::shared_ptr<text::TextTransformer> make_lm_model(const io::Config& cfg, int64_t vocab_size, uint64_t seed);

// The corpus and tokenizer options of a config's data.* keys.
text::CorpusOptions lm_corpus_options(const io::Config& cfg);
text::TokenizerOptions lm_tokenizer_options(const io::Config& cfg);

// <run_dir>/text/tokenizer.model: the run's tokenizer, so that generation needs no corpus.
std::filesystem::path run_tokenizer_path(const std::filesystem::path& run_dir);

}  // namespace moelab::experiments
