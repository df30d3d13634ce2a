// The multi-domain corpus: reading each kind of source, determinism, the hash split, the manifest and the
// atomic cache, on a small fake source tree (tests/text/helpers_text_sources.h) and on the real packages.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/io/atomic_file.h"
#include "core/util/check.h"
#include "text/data/cache_dir.h"
#include "text/data/corpus.h"
#include "text/data/utf8.h"
#include "text/helpers_text_sources.h"

using namespace moelab::text;
namespace fs = std::filesystem;

namespace {

fs::path temp_root() { return fs::temp_directory_path() / ("moelab_test_text_corpus_" + std::to_string(::getpid())); }

struct RemoveTempDir : ::testing::Environment {
  void TearDown() override { fs::remove_all(temp_root()); }
};
[[maybe_unused]] ::testing::Environment* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

fs::path fresh(const std::string& name) {
  fs::path dir = temp_root() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A fake source tree and a cache directory for one test.
struct FakeSetup {
  fs::path sources, cache;
  CorpusOptions options;
  explicit FakeSetup(const std::string& name) : sources(fresh(name + "/root")), cache(temp_root() / name / "cache") {
    moelab::testing::write_fake_text_sources(sources);
    options.source_root = sources.string();
    options.cache_dir = cache.string();
    options.max_document_bytes = 256;
    options.validation_fraction = 0.2;  // large enough that the small tree fills every split
    options.test_fraction = 0.2;
  }
};

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const moelab::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) { return haystack.find(needle) != std::string::npos; }

}  // namespace

TEST(Corpus, ReadsEveryDomainOfTheFakeTree) {
  FakeSetup setup("every_domain");
  const Corpus corpus = build_corpus(setup.options);
  const CorpusManifest& m = corpus.manifest();
  ASSERT_EQ(corpus.domain_names(), (std::vector<std::string>{"en", "de", "es", "it", "ru", "pl", "cs", "cpp", "python", "dict", "licence"}));
  std::map<std::string, uint64_t> documents;
  for (Split s : kAllSplits)
    for (const Document& d : corpus.split(s)) {
      EXPECT_LE(d.text.size(), setup.options.max_document_bytes);
      EXPECT_TRUE(is_valid_utf8(d.text));
      for (const std::string& marker : moelab::testing::fake_source_excluded_markers())
        EXPECT_FALSE(contains(d.text, marker)) << "read a file the corpus must skip: " << d.text;
      ++documents[m.domains[d.domain].name];
    }
  EXPECT_EQ(documents["en"], 60u);  // two files of 30 fortunes; the symlinks and .dat files are skipped
  EXPECT_EQ(documents["de"], 61u);  // plus the Latin-1 fortune
  EXPECT_EQ(documents["es"], 60u);  // off/ is skipped
  EXPECT_EQ(documents["dict"], 80u + 25u);  // 4 x 20 glosses and 25 entries (one shared by two headwords)
  EXPECT_EQ(m.domains[1].utf8_repairs, static_cast<uint64_t>(moelab::testing::kFakeGermanUtf8Errors));
  EXPECT_EQ(m.domains[0].utf8_repairs, 0u);
  EXPECT_EQ(m.domains[0].files, 2u);
  EXPECT_TRUE(contains(m.domains[7].sources, "/usr/include/c++/12"));  // the newest version
  EXPECT_TRUE(contains(m.domains[8].sources, "/usr/lib/python3.11"));
  // The Latin-1 German fortune is kept, with U+FFFD where the bytes were ill-formed.
  bool found_repaired = false;
  for (Split s : kAllSplits)
    for (const Document& d : corpus.split(s)) found_repaired |= d.text == "Gr\uFFFD\uFFFD Gott, sagte der Mann \uFFFD am Bahnhof.";
  EXPECT_TRUE(found_repaired);
  // Manifest counts add up to the documents.
  for (Split s : kAllSplits) {
    uint64_t docs = 0, bytes = 0;
    for (const Document& d : corpus.split(s)) {
      ++docs;
      bytes += d.text.size();
    }
    EXPECT_EQ(m.totals[static_cast<int>(s)].documents, docs);
    EXPECT_EQ(m.totals[static_cast<int>(s)].bytes, bytes);
    EXPECT_GT(docs, 0u) << split_name(s);
  }
}

TEST(Corpus, DomainCapIsRespected) {
  FakeSetup setup("cap");
  setup.options.max_domain_bytes = 700;
  const Corpus corpus = build_corpus(setup.options);
  for (const DomainManifest& d : corpus.manifest().domains) {
    uint64_t bytes = 0;
    for (const SplitStats& s : d.splits) bytes += s.bytes;
    EXPECT_LE(bytes, 700u) << d.name;
    EXPECT_GT(bytes, 400u) << d.name << ": the cap should be nearly filled";
  }
}

TEST(Corpus, SameOptionsGiveTheSameChecksums) {
  FakeSetup a("determinism_a"), b("determinism_b");
  const Corpus first = build_corpus(a.options);
  const Corpus second = build_corpus(a.options);
  b.options.source_root = a.options.source_root;  // same sources, another cache: same contents
  const Corpus third = build_corpus(b.options);
  EXPECT_EQ(first.manifest().checksum, second.manifest().checksum);
  EXPECT_EQ(first.manifest().checksum, third.manifest().checksum);
  for (Split s : kAllSplits) {
    ASSERT_EQ(first.split(s).size(), second.split(s).size());
    for (size_t i = 0; i < first.split(s).size(); ++i) EXPECT_EQ(first.split(s)[i].text, second.split(s)[i].text);
  }
  // A different cap changes the contents and the checksum (the checksum is not a constant).
  CorpusOptions smaller = a.options;
  smaller.max_domain_bytes = 500;
  EXPECT_NE(build_corpus(smaller).manifest().checksum, first.manifest().checksum);
  EXPECT_NE(corpus_cache_dir(smaller), corpus_cache_dir(a.options));
}

TEST(Corpus, SplitIsDisjointAndAFunctionOfTheText) {
  FakeSetup setup("split");
  const Corpus big = build_corpus(setup.options);
  std::map<std::string, Split> where;
  for (Split s : kAllSplits)
    for (const Document& d : big.split(s)) {
      EXPECT_EQ(split_of_document(d.text, 0.2, 0.2), s);
      EXPECT_TRUE(where.emplace(d.text, s).second) << "a document appears twice: " << d.text;
    }
  // Capping the domains differently selects other documents, but none changes split.
  CorpusOptions capped = setup.options;
  capped.max_domain_bytes = 600;
  const Corpus small = build_corpus(capped);
  size_t shared = 0;
  for (Split s : kAllSplits)
    for (const Document& d : small.split(s)) {
      auto it = where.find(d.text);
      ASSERT_NE(it, where.end());
      EXPECT_EQ(it->second, s);
      ++shared;
    }
  EXPECT_GT(shared, 50u);
  // The split fractions are honoured roughly (hash-uniform): 40% held out of the whole tree.
  const double held_out = double(big.split(Split::kValidation).size() + big.split(Split::kTest).size()) /
                          double(where.size());
  EXPECT_GT(held_out, 0.3);
  EXPECT_LT(held_out, 0.5);
}

TEST(Corpus, CacheIsWrittenOnceAndReloadedIdentically) {
  FakeSetup setup("cache");
  bool cached = true;
  const Corpus built = load_or_build_corpus(setup.options, &cached);
  EXPECT_FALSE(cached);
  EXPECT_EQ(built.dir(), corpus_cache_dir(setup.options));
  EXPECT_EQ(entries_of(setup.cache), (std::vector<std::string>{fs::path(built.dir()).filename().string()}));
  const Corpus loaded = load_or_build_corpus(setup.options, &cached);
  EXPECT_TRUE(cached);
  EXPECT_EQ(loaded.manifest().checksum, built.manifest().checksum);
  for (Split s : kAllSplits) {
    ASSERT_EQ(loaded.split(s).size(), built.split(s).size());
    for (size_t i = 0; i < built.split(s).size(); ++i) {
      EXPECT_EQ(loaded.split(s)[i].text, built.split(s)[i].text);
      EXPECT_EQ(loaded.split(s)[i].domain, built.split(s)[i].domain);
    }
  }
  // A corrupted cache file is caught by its checksum, naming the file.
  const fs::path train = fs::path(built.dir()) / "train.jsonl";
  std::string text = moelab::io::read_file_bytes(train.string());
  text[text.find("\"text\":\"") + 9] ^= 1;
  moelab::io::write_file_atomic(train.string(), text);
  const std::string error = error_of([&] { load_corpus(built.dir()); });
  EXPECT_TRUE(contains(error, "train.jsonl")) << error;
  EXPECT_TRUE(contains(error, "does not match the manifest")) << error;
}

TEST(Corpus, MissingPackageIsNamedAndLeavesNoCache) {
  FakeSetup setup("missing");
  fs::remove_all(setup.sources / "usr/share/games/fortunes/de");
  const std::string error = error_of([&] { load_or_build_corpus(setup.options); });
  EXPECT_TRUE(contains(error, "corpus domain 'de'")) << error;
  EXPECT_TRUE(contains(error, "fortunes/de is missing")) << error;
  EXPECT_TRUE(contains(error, "apt-get install fortunes-de")) << error;
  EXPECT_TRUE(entries_of(setup.cache).empty());

  fs::remove_all(setup.sources / "usr/share/wordnet");
  setup.options.domains = {"dict"};
  const std::string wordnet = error_of([&] { load_or_build_corpus(setup.options); });
  EXPECT_TRUE(contains(wordnet, "wordnet-base")) << wordnet;
  EXPECT_TRUE(entries_of(setup.cache).empty());
}

TEST(Corpus, EmptySourceIsNamedAndLeavesNoCache) {
  FakeSetup setup("empty");
  const fs::path cs = setup.sources / "usr/share/games/fortunes/cs";
  fs::remove_all(cs);
  fs::create_directories(cs);
  moelab::io::write_file_atomic((cs / "prislovi.dat").string(), "only an index");
  moelab::io::write_file_atomic((cs / "prazdny").string(), "%\n\n%\n");  // entries without text
  const std::string error = error_of([&] { load_or_build_corpus(setup.options); });
  EXPECT_TRUE(contains(error, "holds no documents (1 files read)")) << error;
  EXPECT_TRUE(contains(error, "apt-get install fortunes-cs")) << error;
  EXPECT_TRUE(entries_of(setup.cache).empty());
}

TEST(Corpus, FailureWhilePublishingLeavesNothing) {
  const fs::path root = fresh("publish");
  const std::string target = (root / "corpus-x").string();
  EXPECT_THROW(publish_directory(target,
                                 [](const std::string& staging) {
                                   moelab::io::write_file_atomic(staging + "/train.jsonl", "partial");
                                   throw moelab::Error("disk full");
                                 }),
               moelab::Error);
  EXPECT_TRUE(entries_of(root).empty());
  EXPECT_TRUE(publish_directory(target, [](const std::string& staging) {
    moelab::io::write_file_atomic(staging + "/manifest.json", "{}");
  }));
  EXPECT_EQ(entries_of(target), (std::vector<std::string>{"manifest.json"}));
  // A second publisher of the same directory keeps the first one's files.
  EXPECT_FALSE(publish_directory(target, [](const std::string& staging) {
    moelab::io::write_file_atomic(staging + "/other.json", "{}");
  }));
  EXPECT_EQ(entries_of(target), (std::vector<std::string>{"manifest.json"}));
  EXPECT_EQ(entries_of(root), (std::vector<std::string>{"corpus-x"}));
}

TEST(Corpus, BadOptionsAreRejected) {
  FakeSetup setup("options");
  setup.options.domains = {"en", "pyhton"};
  const std::string error = error_of([&] { build_corpus(setup.options); });
  EXPECT_TRUE(contains(error, "unknown domain 'pyhton' (did you mean 'python'?)")) << error;
  CorpusOptions bad = setup.options;
  bad.domains = {};
  bad.validation_fraction = 0.6;
  bad.test_fraction = 0.5;
  EXPECT_TRUE(contains(error_of([&] { build_corpus(bad); }), "sum below 1"));
  bad = setup.options;
  bad.max_document_bytes = 10;
  EXPECT_TRUE(contains(error_of([&] { build_corpus(bad); }), "max_document_bytes"));
}

// The real Debian sources (installed by `make deps`), capped small.
TEST(Corpus, RealSourcesGiveEveryDomainInEverySplit) {
  CorpusOptions options;
  options.cache_dir = (temp_root() / "real").string();
  options.max_domain_bytes = 40000;
  const Corpus corpus = build_corpus(options);
  const CorpusManifest& m = corpus.manifest();
  ASSERT_EQ(m.domains.size(), 11u);
  for (const DomainManifest& d : m.domains) {
    uint64_t bytes = 0;
    for (const SplitStats& s : d.splits) bytes += s.bytes;
    EXPECT_GT(bytes, 30000u) << d.name;
    EXPECT_LE(bytes, 40000u) << d.name;
    EXPECT_GT(d.splits[0].documents, 0u) << d.name;
    EXPECT_GT(d.source_bytes, bytes) << d.name;
  }
  EXPECT_GT(m.totals[1].documents, 0u);
  EXPECT_GT(m.totals[2].documents, 0u);
  for (Split s : kAllSplits)
    for (const Document& d : corpus.split(s)) ASSERT_LE(d.text.size(), options.max_document_bytes);
}
