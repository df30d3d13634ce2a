#pragma once
// The multi-domain text corpus: documents labelled by domain (text/data/sources.h), each domain capped in
// bytes, split into train / validation / test by a hash of the document text, with a JSON manifest of byte
// counts, document counts and SHA-256 checksums per domain and split. Cached on disk, written atomically.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace moelab::text {

struct CorpusOptions {
  std::string cache_dir;                  // "" = default_text_cache_root() (~/.cache/moelab/text)
  uint64_t max_domain_bytes = 1u << 20;   // per domain, over all splits
  uint64_t max_document_bytes = 4096;     // longer natural units are cut into chunks of whole paragraphs
  double validation_fraction = 0.05;
  double test_fraction = 0.05;
  std::string source_root = "/";          // prefix of every source path (tests use a fake tree)
  std::vector<std::string> domains;       // subset of corpus_domain_names(); empty = all
};

enum class Split : int { kTrain = 0, kValidation = 1, kTest = 2 };
inline constexpr std::array<Split, 3> kAllSplits{Split::kTrain, Split::kValidation, Split::kTest};
const char* split_name(Split split);  // "train", "validation", "test"

struct Document {
  int domain = 0;  // index into Corpus::domain_names()
  std::string text;
};

struct SplitStats {
  uint64_t documents = 0, bytes = 0;
  std::string sha256;  // over the documents in order, each as "<byte length>:<text>"
};

struct DomainManifest {
  std::string name, description, packages, sources;
  uint64_t files = 0;                // source files read
  uint64_t source_bytes = 0;         // bytes read from them
  uint64_t source_documents = 0;     // documents found (after cutting to max_document_bytes)
  uint64_t duplicate_documents = 0;  // dropped: same text as an earlier document of the domain
  uint64_t utf8_repairs = 0;         // ill-formed UTF-8 subsequences replaced by U+FFFD
  std::array<SplitStats, 3> splits;  // selected documents, by Split
};

struct CorpusManifest {
  int format = 1;
  std::string options_hash;  // names the cache directory
  nlohmann::json options;    // the options that determine the contents, with resolved source paths
  std::vector<DomainManifest> domains;
  std::array<SplitStats, 3> totals;
  std::string checksum;      // SHA-256 over every domain and split checksum
};

class Corpus {
 public:
  Corpus() = default;
  Corpus(CorpusManifest manifest, std::array<std::vector<Document>, 3> splits, std::string dir);

  const CorpusManifest& manifest() const { return manifest_; }
  const std::vector<Document>& split(Split s) const { return splits_[static_cast<int>(s)]; }
  std::vector<std::string> domain_names() const;
  int num_domains() const { return static_cast<int>(manifest_.domains.size()); }
  const std::string& dir() const { return dir_; }  // cache directory; "" for a corpus built in memory
  void set_dir(std::string dir) { dir_ = std::move(dir); }

 private:
  CorpusManifest manifest_;
  std::array<std::vector<Document>, 3> splits_;
  std::string dir_;
};

// The split of a document: a pure function of its text (bytes 8..15 of its SHA-256 as a fraction of 2^64:
// below test_fraction -> test, below test + validation -> validation, else train).
Split split_of_document(std::string_view text, double validation_fraction, double test_fraction);

// Reads the sources and builds the corpus in memory. Throws moelab::Error on bad options or sources.
Corpus build_corpus(const CorpusOptions& options);

// The cache directory of these options: <cache root>/corpus-<options hash>.
std::string corpus_cache_dir(const CorpusOptions& options);

// Loads the cached corpus, or builds it and writes the cache atomically. *was_cached tells which happened.
Corpus load_or_build_corpus(const CorpusOptions& options, bool* was_cached = nullptr);

// Loads a cache directory, checking every count and checksum against its manifest.
Corpus load_corpus(const std::string& dir);

// Writes manifest.json and {train,validation,test}.jsonl into `dir` (each file atomically).
void write_corpus_files(const Corpus& corpus, const std::string& dir);

nlohmann::json manifest_to_json(const CorpusManifest& manifest);
CorpusManifest manifest_from_json(const nlohmann::json& j, const std::string& path);

}  // namespace moelab::text
