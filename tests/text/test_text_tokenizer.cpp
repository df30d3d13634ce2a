// The SentencePiece tokenizer: exact round-trips on every domain of the real corpus (capped small) and on
// hard strings (Cyrillic, code whitespace, emoji through byte pieces), piece byte lengths that add up,
// determinism, the cache, and SentencePiece's refusals carried as errors that leave no cache behind.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "text/data/corpus.h"
#include "text/data/utf8.h"
#include "text/helpers_text_sources.h"
#include "text/tokenizer/token_stats.h"
#include "text/tokenizer/tokenizer.h"

using namespace moelab::text;
namespace fs = std::filesystem;

namespace {

fs::path temp_root() { return fs::temp_directory_path() / ("moelab_test_text_tokenizer_" + std::to_string(::getpid())); }

struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(temp_root()); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// ctest runs every test in a process of its own; they share one cache per build of this program, so the
// corpus is read and the tokenizer trained once, and a rebuilt library never meets a stale cache.
fs::path shared_cache_dir() {
  const fs::path parent = fs::path(MOELAB_BINARY_DIR) / "test_cache";
  const auto stamp = fs::last_write_time("/proc/self/exe").time_since_epoch().count();
  const std::string name = "text_tokenizer_" + std::to_string(stamp);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec))
    if (e.path().filename().string().rfind("text_tokenizer_", 0) == 0 && e.path().filename() != name)
      fs::remove_all(e.path(), ec);  // caches of earlier builds
  return parent / name;
}

uint64_t sum_piece_bytes(const Tokenizer& t, const std::vector<int32_t>& ids) {
  uint64_t n = 0;
  for (int32_t id : ids) n += static_cast<uint64_t>(t.piece_bytes()[static_cast<size_t>(id)]);
  return n;
}

// One small real corpus (20 kB per domain) and a unigram tokenizer on it, shared by the tests.
class RealCorpusTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    CorpusOptions options;
    options.cache_dir = shared_cache_dir().string();
    options.max_domain_bytes = 20000;
    corpus_ = new Corpus(load_or_build_corpus(options));
    TokenizerOptions t;
    t.vocab_size = 800;
    tokenizer_ = new Tokenizer(load_or_train_tokenizer(*corpus_, t));
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    delete corpus_;
  }
  static Corpus* corpus_;
  static Tokenizer* tokenizer_;
};
Corpus* RealCorpusTokenizer::corpus_ = nullptr;
Tokenizer* RealCorpusTokenizer::tokenizer_ = nullptr;

const std::vector<std::string>& hard_strings() {
  static const std::vector<std::string> strings = {
      "Съешь же ещё этих мягких французских булок, да выпей чаю.",
      "int main() {\n\tif (x)  {\n        return 1;\n    }\n\n\n}\n",
      "\t\t  \t\n  \n\n\n    trailing   \r\n",
      "emoji 🎉👍🏽 👨‍👩‍👧 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and 日本語 and ☃",
      " leading space",
      "",
      "Zażółć gęślą jaźń; Příliš žluťoučký kůň; Straße; ¿qué?",
  };
  return strings;
}

}  // namespace

TEST_F(RealCorpusTokenizer, EveryDocumentOfEveryDomainRoundTrips) {
  const std::vector<std::array<TokenCounts, 3>> counts = count_corpus_tokens(*corpus_, *tokenizer_);
  ASSERT_EQ(counts.size(), 11u);
  for (size_t d = 0; d < counts.size(); ++d)
    for (Split s : kAllSplits) {
      const TokenCounts& c = counts[d][static_cast<int>(s)];
      const std::string where = corpus_->manifest().domains[d].name + " " + split_name(s);
      EXPECT_EQ(c.mismatched_documents, 0u) << where;
      EXPECT_EQ(c.decoded_bytes, c.bytes) << where;
      EXPECT_EQ(c.bytes, corpus_->manifest().domains[d].splits[static_cast<int>(s)].bytes) << where;
      if (s == Split::kTrain) {
        EXPECT_GT(c.bytes_per_token(), 1.0) << where << ": the vocabulary should merge bytes";
      }
    }
}

TEST_F(RealCorpusTokenizer, HardStringsRoundTripThroughBytePieces) {
  for (const std::string& text : hard_strings()) {
    const std::vector<int32_t> ids = tokenizer_->encode(text);
    EXPECT_EQ(tokenizer_->decode(ids), text);
    EXPECT_EQ(sum_piece_bytes(*tokenizer_, ids), text.size()) << text;
    for (int32_t id : ids) {
      EXPECT_GE(id, 4);  // never <unk> or a control id
      EXPECT_LT(id, tokenizer_->vocab_size());
    }
  }
  // Emoji are not in an 800-piece vocabulary: they are spelled byte by byte.
  const std::vector<int32_t> party = tokenizer_->encode("🎉");
  ASSERT_EQ(party.size(), 4u);
  for (int32_t id : party) EXPECT_TRUE(tokenizer_->is_byte_piece(id));
  EXPECT_EQ(tokenizer_->piece(party[0]), "<0xF0>");
  // Tabs, runs of spaces and newlines are kept as they are (identity normalization).
  EXPECT_EQ(tokenizer_->decode(tokenizer_->encode("a\t\tb    c\n\n\nd")), "a\t\tb    c\n\n\nd");
}

TEST_F(RealCorpusTokenizer, IllFormedInputIsEncodedAsReplacementCharacters) {
  const std::string bad = "Gr\xfc\xdf Gott \xe2\x82";
  EXPECT_EQ(tokenizer_->decode(tokenizer_->encode(bad)), repair_utf8(bad).text);
}

TEST_F(RealCorpusTokenizer, SpecialIdsAndPieceBytes) {
  EXPECT_EQ(tokenizer_->vocab_size(), 800);
  EXPECT_EQ(tokenizer_->piece(tokenizer_->unk_id()), "<unk>");
  EXPECT_EQ(tokenizer_->piece(tokenizer_->bos_id()), "<s>");
  EXPECT_EQ(tokenizer_->piece(tokenizer_->eos_id()), "</s>");
  EXPECT_EQ(tokenizer_->piece(tokenizer_->pad_id()), "<pad>");
  for (int32_t id = 1; id < 4; ++id) EXPECT_EQ(tokenizer_->piece_bytes()[id], 0);
  // Control ids decode to nothing, so separators between documents add no bytes.
  std::vector<int32_t> ids = tokenizer_->encode("one");
  ids.insert(ids.begin(), tokenizer_->bos_id());
  ids.push_back(tokenizer_->eos_id());
  EXPECT_EQ(tokenizer_->decode(ids), "one");
  // Every ordinary piece: its byte length is that of its text with "▁" read as a space.
  for (int32_t id = 4; id < tokenizer_->vocab_size(); ++id) {
    std::string piece = tokenizer_->piece(id);
    if (tokenizer_->is_byte_piece(id)) {
      EXPECT_EQ(tokenizer_->piece_bytes()[id], 1);
      continue;
    }
    size_t expected = 0;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
        expected += 1;
        i += 3;
      } else {
        expected += 1;
        i += 1;
      }
    }
    EXPECT_EQ(static_cast<size_t>(tokenizer_->piece_bytes()[id]), expected) << piece;
  }
}

TEST_F(RealCorpusTokenizer, TrainingIsDeterministicAndCached) {
  TokenizerOptions options;
  options.vocab_size = 800;
  TokenizerCacheInfo info;
  const Tokenizer again = load_or_train_tokenizer(*corpus_, options, &info);
  EXPECT_TRUE(info.was_cached);
  EXPECT_EQ(again.serialized_model(), tokenizer_->serialized_model());
  // Training again from scratch gives the same model byte for byte.
  const Tokenizer retrained = train_tokenizer(*corpus_, options);
  EXPECT_EQ(retrained.serialized_model(), tokenizer_->serialized_model());
  // Other options are another cache entry.
  options.vocab_size = 700;
  EXPECT_NE(tokenizer_cache_dir(*corpus_, options), info.dir);
}

TEST_F(RealCorpusTokenizer, BpeRoundTripsToo) {
  TokenizerOptions options;
  options.model_type = "bpe";
  options.vocab_size = 700;
  const Tokenizer bpe = train_tokenizer(*corpus_, options);
  EXPECT_EQ(bpe.vocab_size(), 700);
  EXPECT_NE(bpe.serialized_model(), tokenizer_->serialized_model());
  for (const std::string& text : hard_strings()) {
    const std::vector<int32_t> ids = bpe.encode(text);
    EXPECT_EQ(bpe.decode(ids), text);
    EXPECT_EQ(sum_piece_bytes(bpe, ids), text.size());
  }
  for (const Document& d : corpus_->split(Split::kValidation)) EXPECT_EQ(bpe.decode(bpe.encode(d.text)), d.text);
}

// On the small fake tree: what SentencePiece refuses comes back with its reason, and no cache is written.
TEST(Tokenizer, UnsupportedVocabularyIsAnErrorWithTheReason) {
  const fs::path root = temp_root() / "fake";
  fs::remove_all(root);
  fs::create_directories(root / "sources");
  moelab::testing::write_fake_text_sources(root / "sources");
  CorpusOptions corpus_options;
  corpus_options.source_root = (root / "sources").string();
  corpus_options.cache_dir = (root / "cache").string();
  const Corpus corpus = load_or_build_corpus(corpus_options);
  const std::vector<std::string> before = entries_of(root / "cache");
  ASSERT_EQ(before.size(), 1u);  // the corpus

  TokenizerOptions options;
  options.vocab_size = 50000;
  try {
    load_or_train_tokenizer(corpus, options);
    FAIL() << "a 50000-piece vocabulary on a tiny corpus was accepted";
  } catch (const TokenizerTrainingError& e) {
    EXPECT_NE(e.reason().find("Vocabulary size too high (50000)"), std::string::npos) << e.reason();
    EXPECT_NE(std::string(e.what()).find("unigram vocabulary of 50000 pieces"), std::string::npos) << e.what();
    EXPECT_EQ(e.reason().find(".cc("), std::string::npos) << "source location left in: " << e.reason();
  }
  options.vocab_size = 100;  // fewer than the 256 byte pieces and the characters
  try {
    load_or_train_tokenizer(corpus, options);
    FAIL() << "a 100-piece vocabulary was accepted";
  } catch (const TokenizerTrainingError& e) {
    EXPECT_NE(e.reason().find("Vocabulary size is smaller than required_chars"), std::string::npos) << e.reason();
  }
  options.vocab_size = 1000;
  options.model_type = "wordpiece";
  EXPECT_THROW(load_or_train_tokenizer(corpus, options), moelab::Error);
  EXPECT_EQ(entries_of(root / "cache"), before);  // no tokenizer directory, no staging left
}

TEST(Tokenizer, MalformedModelIsRejected) {
  EXPECT_THROW(Tokenizer("not a sentencepiece model"), moelab::Error);
}
