#pragma once
// A SentencePiece tokenizer (unigram or BPE) trained in-process on the corpus's train split, with byte
// fallback so that every UTF-8 string round-trips, and identity normalization (no text is rewritten: code
// whitespace, tabs and newlines survive). Cached by corpus checksum and options.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/check.h"
#include "text/data/corpus.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace moelab::text {

struct TokenizerOptions {
  std::string model_type = "unigram";  // "unigram" or "bpe"
  int vocab_size = 8192;               // including <unk>, <s>, </s>, <pad> and the 256 byte pieces
  uint32_t seed = 0;                   // sentencepiece::SetRandomGeneratorSeed
  double character_coverage = 0.9995;  // rarer characters are spelled with byte pieces
  int num_threads = 2;                 // part of the cache key: the trained model may depend on it
  std::string cache_dir;               // "" = the corpus cache root (default_text_cache_root())
};

// SentencePiece could not train the requested vocabulary (too large for the corpus, too small for its
// characters, ...). message() says which; reason() is SentencePiece's own text.
class TokenizerTrainingError : public Error {
 public:
  TokenizerTrainingError(const std::string& message, std::string reason)
      : Error(message), reason_(std::move(reason)) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

class Tokenizer {
 public:
  // From a serialized SentencePiece model (the bytes of a .model file); throws moelab::Error if malformed.
  explicit Tokenizer(const std::string& serialized_model);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // text (any bytes; ill-formed UTF-8 is encoded as U+FFFD) -> ids. No <s> or </s> is added.
  std::vector<int32_t> encode(std::string_view text) const;
  // ids -> text; control ids (<s>, </s>, <pad>) decode to nothing.
  std::string decode(std::span<const int32_t> ids) const;

  int vocab_size() const { return static_cast<int>(piece_bytes_.size()); }
  int32_t unk_id() const { return 0; }
  int32_t bos_id() const { return 1; }
  int32_t eos_id() const { return 2; }
  int32_t pad_id() const { return 3; }
  // UTF-8 bytes that each id contributes to decoded text (0 for control ids, 1 for byte pieces): the sum over
  // an encoding is the byte length of the text, the denominator of bits per byte.
  const std::vector<int32_t>& piece_bytes() const { return piece_bytes_; }
  std::string piece(int32_t id) const;  // the piece as SentencePiece spells it ("▁the", "<0x0A>")
  bool is_byte_piece(int32_t id) const;
  const std::string& serialized_model() const { return serialized_; }

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  std::string serialized_;
  std::vector<int32_t> piece_bytes_;
};

// Trains on the corpus's train split, in memory. Throws TokenizerTrainingError when SentencePiece refuses
// the options, moelab::Error for options that are wrong before training starts.
Tokenizer train_tokenizer(const Corpus& corpus, const TokenizerOptions& options);

struct TokenizerCacheInfo {
  std::string dir;               // <cache root>/tokenizer-<hash of corpus checksum and options>
  bool was_cached = false;
  double train_seconds = 0;      // of this call's training (0 when cached)
};

// <cache root>/tokenizer-<hash>: tokenizer.model (SentencePiece's serialized model) and tokenizer.json.
std::string tokenizer_cache_dir(const Corpus& corpus, const TokenizerOptions& options);
Tokenizer load_or_train_tokenizer(const Corpus& corpus, const TokenizerOptions& options,
                                  TokenizerCacheInfo* info = nullptr);

}  // namespace moelab::text
