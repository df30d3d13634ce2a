// `moelab data text [--cache DIR] [--max-domain-bytes N] [--vocab N] [--model unigram|bpe] [--seed S]`:
// builds (or finds in the cache) the multi-domain text corpus and its SentencePiece tokenizer, then prints
// the manifest table: documents, bytes, tokens and bytes per token for every domain and split.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include "experiments/cli/command.h"
#include "text/data/corpus.h"
#include "text/tokenizer/token_stats.h"
#include "text/tokenizer/tokenizer.h"

namespace {

using namespace moelab::text;

struct TextArgs {
  std::string cache;
  uint64_t max_domain_bytes = CorpusOptions{}.max_domain_bytes;
  int vocab = TokenizerOptions{}.vocab_size;
  std::string model = TokenizerOptions{}.model_type;
  uint32_t seed = 0;
} g_text;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string row(const std::string& domain, const std::string& split, const TokenCounts& c) {
  char line[160];
  std::snprintf(line, sizeof line, "%-8s %-10s %10llu %12llu %12llu %8.3f\n", domain.c_str(), split.c_str(),
                static_cast<unsigned long long>(c.documents), static_cast<unsigned long long>(c.bytes),
                static_cast<unsigned long long>(c.tokens), c.bytes_per_token());
  return line;
}

void run_text() {
  CorpusOptions corpus_options;
  corpus_options.cache_dir = g_text.cache;
  corpus_options.max_domain_bytes = g_text.max_domain_bytes;
  auto start = std::chrono::steady_clock::now();
  bool corpus_cached = false;
  const Corpus corpus = load_or_build_corpus(corpus_options, &corpus_cached);
  const CorpusManifest& m = corpus.manifest();
  std::cout << "corpus:    " << corpus.dir() << (corpus_cached ? " (cached, loaded in " : " (built in ")
            << seconds_since(start) << " s)\n";

  TokenizerOptions tokenizer_options;
  tokenizer_options.model_type = g_text.model;
  tokenizer_options.vocab_size = g_text.vocab;
  tokenizer_options.seed = g_text.seed;
  tokenizer_options.cache_dir = g_text.cache;
  start = std::chrono::steady_clock::now();
  TokenizerCacheInfo info;
  std::optional<Tokenizer> tokenizer;
  try {
    tokenizer.emplace(load_or_train_tokenizer(corpus, tokenizer_options, &info));
  } catch (const TokenizerTrainingError& e) {
    moelab::cli::set_exit_code(moelab::cli::kBadUsage);
    throw moelab::Error("--vocab " + std::to_string(g_text.vocab) + " --model " + g_text.model + ": " + e.message());
  }
  std::cout << "tokenizer: " << info.dir << " (" << g_text.model << ", " << tokenizer->vocab_size() << " pieces; "
            << (info.was_cached ? "cached, loaded in " : "trained in ") << seconds_since(start) << " s)\n";
  std::cout << "checksum:  " << m.checksum << "\n\n";

  start = std::chrono::steady_clock::now();
  const std::vector<std::array<TokenCounts, 3>> counts = count_corpus_tokens(corpus, *tokenizer);
  const double encode_seconds = seconds_since(start);
  std::cout << "domain   split       documents        bytes       tokens  bytes/token\n";
  std::array<TokenCounts, 3> totals{};
  uint64_t mismatched = 0;
  for (size_t d = 0; d < counts.size(); ++d) {
    for (Split s : kAllSplits) {
      const TokenCounts& c = counts[d][static_cast<int>(s)];
      std::cout << row(m.domains[d].name, split_name(s), c);
      TokenCounts& t = totals[static_cast<int>(s)];
      t.documents += c.documents;
      t.bytes += c.bytes;
      t.tokens += c.tokens;
      mismatched += c.mismatched_documents + (c.decoded_bytes != c.bytes ? 1 : 0);
    }
  }
  for (Split s : kAllSplits) std::cout << row("all", split_name(s), totals[static_cast<int>(s)]);
  std::cout << "\ndomain   files  source bytes  duplicates  utf8 repairs  packages\n";
  for (const DomainManifest& d : m.domains) {
    char line[256];
    std::snprintf(line, sizeof line, "%-8s %5llu %13llu %11llu %13llu  %s\n", d.name.c_str(),
                  static_cast<unsigned long long>(d.files), static_cast<unsigned long long>(d.source_bytes),
                  static_cast<unsigned long long>(d.duplicate_documents),
                  static_cast<unsigned long long>(d.utf8_repairs), d.packages.c_str());
    std::cout << line;
  }
  std::cout << "\nencoded and decoded every document in " << encode_seconds << " s; round-trip "
            << (mismatched == 0 ? "exact" : "FAILED") << "\n";
  if (mismatched != 0) moelab::cli::set_exit_code(moelab::cli::kRunFailed);
}

moelab::cli::Registration reg{"data", "Build or inspect cached data sets: `data text` (corpus and tokenizer)", [](CLI::App& sub) {
  sub.require_subcommand(1);
  CLI::App* text = sub.add_subcommand("text", "Build (or find cached) the text corpus and tokenizer; print the manifest table");
  text->add_option("--cache", g_text.cache, "cache directory (default ~/.cache/moelab/text)");
  text->add_option("--max-domain-bytes", g_text.max_domain_bytes, "bytes per domain, over all splits (default 1048576)")
      ->check(CLI::PositiveNumber);
  text->add_option("--vocab", g_text.vocab, "tokenizer vocabulary size (default 8192)")->check(CLI::PositiveNumber);
  text->add_option("--model", g_text.model, "tokenizer model: unigram (default) or bpe")
      ->check(CLI::IsMember({"unigram", "bpe"}));
  text->add_option("--seed", g_text.seed, "tokenizer training seed (default 0)");
  text->callback([] { run_text(); });
}};

}  // namespace
