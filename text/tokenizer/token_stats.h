#pragma once
// Token counts of a corpus under a tokenizer, per domain and split: the manifest table of `moelab data text`
// and the bytes-per-token figure that converts token losses into bits per byte.
#include <array>
#include <cstdint>
#include <vector>

#include "text/data/corpus.h"
#include "text/tokenizer/tokenizer.h"

namespace moelab::text {

struct TokenCounts {
  uint64_t documents = 0, bytes = 0, tokens = 0;
  uint64_t decoded_bytes = 0;  // sum of piece_bytes over the tokens; equals `bytes` when nothing is lost
  uint64_t mismatched_documents = 0;  // documents whose decode(encode(text)) != text
  double bytes_per_token() const { return tokens ? static_cast<double>(bytes) / static_cast<double>(tokens) : 0.0; }
};

// counts[domain][split]; every document is encoded and decoded (in parallel over documents).
std::vector<std::array<TokenCounts, 3>> count_corpus_tokens(const Corpus& corpus, const Tokenizer& tokenizer);

}  // namespace moelab::text
