#include "text/tokenizer/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <unordered_map>

#include "core/io/atomic_file.h"
#include "text/data/cache_dir.h"
#include "text/data/sha256.h"
#include "text/data/utf8.h"

namespace moelab::text {
namespace fs = std::filesystem;
namespace {

// Feeds the documents of one split to the trainer, one document per "sentence".
class DocumentIterator : public sentencepiece::SentenceIterator {
 public:
  explicit DocumentIterator(const std::vector<Document>& docs) : docs_(docs) {}
  bool done() const override { return index_ >= docs_.size(); }
  void Next() override { ++index_; }
  const std::string& value() const override { return docs_[index_].text; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  const std::vector<Document>& docs_;
  size_t index_ = 0;
};

// SentencePiece prefixes its messages with the failed check ("./src/trainer_interface.cc(660) [a == b] ");
// the sentence after it is the reason a user can act on.
std::string sentencepiece_reason(const sentencepiece::util::Status& status) {
  std::string text = status.message();
  if (text.find(".cc(") != std::string::npos) {
    const size_t close = text.find("] ");
    if (close != std::string::npos) text = text.substr(close + 2);
  }
  return text;
}

nlohmann::json options_json(const TokenizerOptions& o) {
  return {{"model_type", o.model_type},     {"vocab_size", o.vocab_size},
          {"seed", o.seed},                 {"character_coverage", o.character_coverage},
          {"num_threads", o.num_threads},   {"format", 1}};
}

void validate_options(const TokenizerOptions& o) {
  if (o.model_type != "unigram" && o.model_type != "bpe")
    throw Error("tokenizer: model type '" + o.model_type + "' is not one of unigram, bpe");
  if (o.vocab_size <= 0) throw Error("tokenizer: vocab_size must be positive, got " + std::to_string(o.vocab_size));
  if (!(o.character_coverage > 0 && o.character_coverage <= 1))
    throw Error("tokenizer: character_coverage must be in (0, 1], got " + std::to_string(o.character_coverage));
  if (o.num_threads <= 0) throw Error("tokenizer: num_threads must be positive");
}

}  // namespace

Tokenizer::Tokenizer(const std::string& serialized_model)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()), serialized_(serialized_model) {
  const sentencepiece::util::Status status = processor_->LoadFromSerializedProto(serialized_);
  MOELAB_CHECK(status.ok(), "tokenizer: cannot load the SentencePiece model: " << status.ToString());
  MOELAB_CHECK(processor_->unk_id() == unk_id() && processor_->bos_id() == bos_id() &&
                   processor_->eos_id() == eos_id() && processor_->pad_id() == pad_id(),
               "tokenizer: the model's special ids (unk " << processor_->unk_id() << ", bos " << processor_->bos_id()
                                                          << ", eos " << processor_->eos_id() << ", pad "
                                                          << processor_->pad_id() << ") are not 0, 1, 2, 3");
  const int n = processor_->GetPieceSize();
  piece_bytes_.resize(static_cast<size_t>(n));
  for (int id = 0; id < n; ++id) {
    if (processor_->IsControl(id)) piece_bytes_[id] = 0;
    else if (processor_->IsByte(id)) piece_bytes_[id] = 1;
    else piece_bytes_[id] = static_cast<int32_t>(processor_->DecodeIds({id}).size());
  }
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  if (is_valid_utf8(text)) ids = processor_->EncodeAsIds(text);
  else ids = processor_->EncodeAsIds(repair_utf8(text).text);
  return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::vector<int> v(ids.begin(), ids.end());
  for (int id : v) MOELAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id " << id << " is outside [0, " << vocab_size() << ")");
  return processor_->DecodeIds(v);
}

std::string Tokenizer::piece(int32_t id) const {
  MOELAB_CHECK(id >= 0 && id < vocab_size(), "tokenizer: id " << id << " is outside [0, " << vocab_size() << ")");
  return processor_->IdToPiece(id);
}

bool Tokenizer::is_byte_piece(int32_t id) const { return id >= 0 && id < vocab_size() && processor_->IsByte(id); }

Tokenizer train_tokenizer(const Corpus& corpus, const TokenizerOptions& options) {
  validate_options(options);
  const std::vector<Document>& docs = corpus.split(Split::kTrain);
  MOELAB_CHECK(!docs.empty(), "tokenizer: the corpus has no training documents");
  size_t longest = 0, total = 0;
  for (const Document& d : docs) {
    longest = std::max(longest, d.text.size());
    total += d.text.size();
  }
  // Identity normalization and no dummy prefix: decode(encode(text)) == text byte for byte, and the piece
  // byte lengths add up to the text's length.
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", options.model_type},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"character_coverage", std::to_string(options.character_coverage)},
      {"byte_fallback", "true"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"split_digits", "true"},
      {"max_sentence_length", std::to_string(std::max<size_t>(longest + 1, 4192))},
      {"input_sentence_size", "0"},
      {"num_threads", std::to_string(options.num_threads)},
      {"unk_id", "0"}, {"bos_id", "1"}, {"eos_id", "2"}, {"pad_id", "3"},
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(options.seed);
  DocumentIterator iterator(docs);
  std::string serialized;
  const sentencepiece::util::Status status = sentencepiece::SentencePieceTrainer::Train(args, &iterator, &serialized);
  if (!status.ok()) {
    const std::string reason = sentencepiece_reason(status);
    throw TokenizerTrainingError("tokenizer: SentencePiece cannot train a " + options.model_type + " vocabulary of " +
                                     std::to_string(options.vocab_size) + " pieces on the corpus's train split (" +
                                     std::to_string(docs.size()) + " documents, " + std::to_string(total) +
                                     " bytes): " + reason,
                                 reason);
  }
  return Tokenizer(serialized);
}

std::string tokenizer_cache_dir(const Corpus& corpus, const TokenizerOptions& options) {
  std::string root = options.cache_dir;
  if (root.empty()) root = corpus.dir().empty() ? default_text_cache_root() : fs::path(corpus.dir()).parent_path().string();
  const std::string key = corpus.manifest().checksum + "\n" + options_json(options).dump();
  return (fs::path(root) / ("tokenizer-" + sha256_hex(key).substr(0, 16))).string();
}

Tokenizer load_or_train_tokenizer(const Corpus& corpus, const TokenizerOptions& options, TokenizerCacheInfo* info) {
  validate_options(options);
  const std::string dir = tokenizer_cache_dir(corpus, options);
  const fs::path model_path = fs::path(dir) / "tokenizer.model";
  if (info) *info = {dir, true, 0};
  if (fs::exists(fs::path(dir) / "tokenizer.json")) return Tokenizer(io::read_file_bytes(model_path.string()));
  const auto start = std::chrono::steady_clock::now();
  Tokenizer tokenizer = train_tokenizer(corpus, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  publish_directory(dir, [&](const std::string& staging) {
    io::write_file_atomic((fs::path(staging) / "tokenizer.model").string(), tokenizer.serialized_model());
    nlohmann::json j = {{"options", options_json(options)},
                        {"corpus_checksum", corpus.manifest().checksum},
                        {"corpus_options_hash", corpus.manifest().options_hash},
                        {"vocab_size", tokenizer.vocab_size()},
                        {"train_seconds", seconds}};
    io::write_file_atomic((fs::path(staging) / "tokenizer.json").string(), j.dump(2) + "\n");
  });
  if (info) *info = {dir, false, seconds};
  return tokenizer;
}

}  // namespace moelab::text
