#include "text/data/corpus.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <unordered_set>

#include "core/io/atomic_file.h"
#include "core/io/text_util.h"
#include "core/util/check.h"
#include "text/data/cache_dir.h"
#include "text/data/sha256.h"
#include "text/data/sources.h"

namespace moelab::text {
namespace fs = std::filesystem;
namespace {

uint64_t read_u64_be(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// Bytes 0..7 of the SHA-256 choose which documents fit under the domain cap, bytes 8..15 the split: the two
// choices are independent, and both are the same on every machine.
struct DocumentHash {
  uint64_t selection = 0, split = 0;
};

DocumentHash hash_document(std::string_view text) {
  Sha256 h;
  h.update(text);
  const std::array<uint8_t, 32> d = h.digest();
  return {read_u64_be(d.data()), read_u64_be(d.data() + 8)};
}

Split split_from_hash(uint64_t split_hash, double validation_fraction, double test_fraction) {
  const double u = std::ldexp(static_cast<double>(split_hash >> 11), -53);  // uniform in [0, 1)
  if (u < test_fraction) return Split::kTest;
  if (u < test_fraction + validation_fraction) return Split::kValidation;
  return Split::kTrain;
}

class SplitHasher {
 public:
  void add(std::string_view text) {
    const std::string prefix = std::to_string(text.size()) + ":";
    sha_.update(prefix);
    sha_.update(text);
    ++stats_.documents;
    stats_.bytes += text.size();
  }
  SplitStats finish() {
    auto d = sha_.digest();
    stats_.sha256 = to_hex(d.data(), d.size());
    return stats_;
  }

 private:
  Sha256 sha_;
  SplitStats stats_;
};

std::string corpus_checksum(const std::vector<DomainManifest>& domains) {
  Sha256 h;
  for (const DomainManifest& d : domains)
    for (Split s : kAllSplits)
      h.update(d.name + ":" + split_name(s) + ":" + d.splits[static_cast<int>(s)].sha256 + "\n");
  auto digest = h.digest();
  return to_hex(digest.data(), digest.size());
}

void validate_options(const CorpusOptions& o) {
  MOELAB_CHECK(o.max_domain_bytes > 0, "corpus: max_domain_bytes must be positive");
  MOELAB_CHECK(o.max_document_bytes >= 64 && o.max_document_bytes <= (1u << 20),
               "corpus: max_document_bytes must be in [64, 1048576], got " << o.max_document_bytes);
  MOELAB_CHECK(o.validation_fraction >= 0 && o.test_fraction >= 0 &&
                   o.validation_fraction + o.test_fraction < 1,
               "corpus: validation_fraction and test_fraction must be >= 0 with a sum below 1, got "
                   << o.validation_fraction << " and " << o.test_fraction);
}

std::vector<DomainSpec> selected_domains(const CorpusOptions& o) {
  std::vector<DomainSpec> all = corpus_domains(o.source_root);
  if (o.domains.empty()) return all;
  const std::vector<std::string> names = corpus_domain_names();
  std::vector<DomainSpec> chosen;
  for (const DomainSpec& d : all)
    if (std::find(o.domains.begin(), o.domains.end(), d.name) != o.domains.end()) chosen.push_back(d);
  for (const std::string& want : o.domains) {
    if (std::find(names.begin(), names.end(), want) != names.end()) continue;
    std::string hint;
    if (auto near = io::nearest_match(want, names)) hint = " (did you mean '" + *near + "'?)";
    std::string all_names;
    for (const std::string& n : names) all_names += (all_names.empty() ? "" : ", ") + n;
    MOELAB_FAIL("corpus: unknown domain '" << want << "'" << hint << "; the domains are " << all_names);
  }
  return chosen;
}

nlohmann::json options_json(const CorpusOptions& o, const std::vector<DomainSpec>& domains) {
  nlohmann::json j;
  j["max_domain_bytes"] = o.max_domain_bytes;
  j["max_document_bytes"] = o.max_document_bytes;
  j["validation_fraction"] = o.validation_fraction;
  j["test_fraction"] = o.test_fraction;
  nlohmann::json list = nlohmann::json::array();
  for (const DomainSpec& d : domains) {
    nlohmann::json paths = nlohmann::json::array();
    for (const SourceSpec& s : d.sources) paths.push_back(s.path);
    list.push_back({{"name", d.name}, {"sources", paths}});
  }
  j["domains"] = list;
  return j;
}

std::string options_hash(const nlohmann::json& options, int format) {
  return sha256_hex("corpus format " + std::to_string(format) + "\n" + options.dump()).substr(0, 16);
}

nlohmann::json stats_to_json(const SplitStats& s) {
  return {{"documents", s.documents}, {"bytes", s.bytes}, {"sha256", s.sha256}};
}

SplitStats stats_from_json(const nlohmann::json& j) {
  return {j.at("documents").get<uint64_t>(), j.at("bytes").get<uint64_t>(), j.at("sha256").get<std::string>()};
}

}  // namespace

const char* split_name(Split split) {
  switch (split) {
    case Split::kTrain: return "train";
    case Split::kValidation: return "validation";
    case Split::kTest: return "test";
  }
  return "?";
}

Corpus::Corpus(CorpusManifest manifest, std::array<std::vector<Document>, 3> splits, std::string dir)
    : manifest_(std::move(manifest)), splits_(std::move(splits)), dir_(std::move(dir)) {}

std::vector<std::string> Corpus::domain_names() const {
  std::vector<std::string> names;
  for (const DomainManifest& d : manifest_.domains) names.push_back(d.name);
  return names;
}

Split split_of_document(std::string_view text, double validation_fraction, double test_fraction) {
  return split_from_hash(hash_document(text).split, validation_fraction, test_fraction);
}

Corpus build_corpus(const CorpusOptions& options) {
  validate_options(options);
  const std::vector<DomainSpec> specs = selected_domains(options);
  CorpusManifest manifest;
  manifest.options = options_json(options, specs);
  manifest.options_hash = options_hash(manifest.options, manifest.format);
  std::array<std::vector<Document>, 3> splits;
  std::array<SplitHasher, 3> total_hashers;
  for (size_t di = 0; di < specs.size(); ++di) {
    const DomainSpec& spec = specs[di];
    DomainManifest dm;
    dm.name = spec.name;
    dm.description = spec.description;
    std::vector<std::string> docs;
    for (const SourceSpec& source : spec.sources) {
      SourceText text;
      try {
        text = read_source(source, options.max_document_bytes);
      } catch (const Error& e) {
        throw Error("corpus domain '" + spec.name + "': " + e.message());
      }
      dm.packages += (dm.packages.empty() ? "" : " ") + source.package;
      dm.sources += (dm.sources.empty() ? "" : " ") + source.path;
      dm.files += text.files;
      dm.source_bytes += text.bytes;
      dm.utf8_repairs += text.utf8_repairs;
      dm.source_documents += text.documents.size();
      for (std::string& d : text.documents) docs.push_back(std::move(d));
    }
    // Drop repeats, then take documents in hash order while they fit under the cap: a uniform sample that
    // does not favour the first files or the start of the alphabet.
    std::unordered_set<std::string_view> seen;
    std::vector<std::pair<DocumentHash, size_t>> order;
    for (size_t i = 0; i < docs.size(); ++i) {
      if (!seen.insert(docs[i]).second) {
        ++dm.duplicate_documents;
        continue;
      }
      order.push_back({hash_document(docs[i]), i});
    }
    std::sort(order.begin(), order.end(), [&](const auto& a, const auto& b) {
      return a.first.selection != b.first.selection ? a.first.selection < b.first.selection
                                                    : docs[a.second] < docs[b.second];
    });
    std::array<SplitHasher, 3> hashers;
    uint64_t taken_bytes = 0;
    for (const auto& [hash, index] : order) {
      if (taken_bytes + docs[index].size() > options.max_domain_bytes) continue;
      taken_bytes += docs[index].size();
      const int s = static_cast<int>(split_from_hash(hash.split, options.validation_fraction, options.test_fraction));
      hashers[s].add(docs[index]);
      total_hashers[s].add(docs[index]);
      splits[s].push_back({static_cast<int>(di), std::move(docs[index])});
    }
    for (int s = 0; s < 3; ++s) dm.splits[s] = hashers[s].finish();
    manifest.domains.push_back(std::move(dm));
  }
  for (int s = 0; s < 3; ++s) manifest.totals[s] = total_hashers[s].finish();
  manifest.checksum = corpus_checksum(manifest.domains);
  return Corpus(std::move(manifest), std::move(splits), "");
}

std::string corpus_cache_dir(const CorpusOptions& options) {
  validate_options(options);
  const std::string root = options.cache_dir.empty() ? default_text_cache_root() : options.cache_dir;
  const nlohmann::json j = options_json(options, selected_domains(options));
  return (fs::path(root) / ("corpus-" + options_hash(j, CorpusManifest{}.format))).string();
}

nlohmann::json manifest_to_json(const CorpusManifest& m) {
  nlohmann::json j;
  j["format"] = m.format;
  j["options_hash"] = m.options_hash;
  j["options"] = m.options;
  j["checksum"] = m.checksum;
  nlohmann::json totals;
  for (Split s : kAllSplits) totals[split_name(s)] = stats_to_json(m.totals[static_cast<int>(s)]);
  j["totals"] = totals;
  nlohmann::json domains = nlohmann::json::array();
  for (const DomainManifest& d : m.domains) {
    nlohmann::json dj = {{"name", d.name},
                         {"description", d.description},
                         {"packages", d.packages},
                         {"sources", d.sources},
                         {"files", d.files},
                         {"source_bytes", d.source_bytes},
                         {"source_documents", d.source_documents},
                         {"duplicate_documents", d.duplicate_documents},
                         {"utf8_repairs", d.utf8_repairs}};
    for (Split s : kAllSplits) dj["splits"][split_name(s)] = stats_to_json(d.splits[static_cast<int>(s)]);
    domains.push_back(dj);
  }
  j["domains"] = domains;
  return j;
}

CorpusManifest manifest_from_json(const nlohmann::json& j, const std::string& path) {
  try {
    CorpusManifest m;
    m.format = j.at("format").get<int>();
    MOELAB_CHECK(m.format == 1, path << ": corpus format " << m.format << " is not supported (want 1)");
    m.options_hash = j.at("options_hash").get<std::string>();
    m.options = j.at("options");
    m.checksum = j.at("checksum").get<std::string>();
    for (Split s : kAllSplits) m.totals[static_cast<int>(s)] = stats_from_json(j.at("totals").at(split_name(s)));
    for (const nlohmann::json& dj : j.at("domains")) {
      DomainManifest d;
      d.name = dj.at("name").get<std::string>();
      d.description = dj.at("description").get<std::string>();
      d.packages = dj.at("packages").get<std::string>();
      d.sources = dj.at("sources").get<std::string>();
      d.files = dj.at("files").get<uint64_t>();
      d.source_bytes = dj.at("source_bytes").get<uint64_t>();
      d.source_documents = dj.at("source_documents").get<uint64_t>();
      d.duplicate_documents = dj.at("duplicate_documents").get<uint64_t>();
      d.utf8_repairs = dj.at("utf8_repairs").get<uint64_t>();
      for (Split s : kAllSplits) d.splits[static_cast<int>(s)] = stats_from_json(dj.at("splits").at(split_name(s)));
      m.domains.push_back(std::move(d));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    MOELAB_FAIL(path << ": malformed corpus manifest: " << e.what());
  }
}

void write_corpus_files(const Corpus& corpus, const std::string& dir) {
  const std::vector<std::string> names = corpus.domain_names();
  for (Split s : kAllSplits) {
    io::write_file_atomic((fs::path(dir) / (std::string(split_name(s)) + ".jsonl")).string(), [&](io::AtomicFileSink& sink) {
      for (const Document& d : corpus.split(s)) {
        const nlohmann::json line = {{"domain", names.at(d.domain)}, {"text", d.text}};
        sink.write(line.dump() + "\n");
      }
    });
  }
  // The manifest goes last: a directory with a manifest is complete.
  io::write_file_atomic((fs::path(dir) / "manifest.json").string(), manifest_to_json(corpus.manifest()).dump(2) + "\n");
}

Corpus load_corpus(const std::string& dir) {
  const std::string manifest_path = (fs::path(dir) / "manifest.json").string();
  nlohmann::json mj;
  try {
    mj = nlohmann::json::parse(io::read_file_bytes(manifest_path));
  } catch (const nlohmann::json::exception& e) {
    MOELAB_FAIL(manifest_path << ": not valid JSON: " << e.what());
  }
  CorpusManifest manifest = manifest_from_json(mj, manifest_path);
  std::vector<std::string> names;
  for (const DomainManifest& d : manifest.domains) names.push_back(d.name);
  std::array<std::vector<Document>, 3> splits;
  for (Split s : kAllSplits) {
    const int si = static_cast<int>(s);
    const std::string path = (fs::path(dir) / (std::string(split_name(s)) + ".jsonl")).string();
    std::ifstream in(path, std::ios::binary);
    MOELAB_CHECK(in, "cannot open " << path << " (delete " << dir << " to rebuild the corpus)");
    std::vector<SplitHasher> hashers(names.size());
    std::string line;
    for (size_t line_number = 1; std::getline(in, line); ++line_number) {
      Document doc;
      try {
        const nlohmann::json j = nlohmann::json::parse(line);
        const std::string domain = j.at("domain").get<std::string>();
        auto it = std::find(names.begin(), names.end(), domain);
        MOELAB_CHECK(it != names.end(), path << ":" << line_number << ": domain '" << domain << "' is not in the manifest");
        doc.domain = static_cast<int>(it - names.begin());
        doc.text = j.at("text").get<std::string>();
      } catch (const nlohmann::json::exception& e) {
        MOELAB_FAIL(path << ":" << line_number << ": malformed corpus line: " << e.what());
      }
      hashers[doc.domain].add(doc.text);
      splits[si].push_back(std::move(doc));
    }
    for (size_t d = 0; d < names.size(); ++d) {
      const SplitStats got = hashers[d].finish();
      const SplitStats& want = manifest.domains[d].splits[si];
      MOELAB_CHECK(got.documents == want.documents && got.bytes == want.bytes && got.sha256 == want.sha256,
                   path << ": domain " << names[d] << " does not match the manifest (" << got.documents
                        << " documents, " << got.bytes << " bytes, sha256 " << got.sha256 << "; manifest: "
                        << want.documents << ", " << want.bytes << ", " << want.sha256 << "); delete " << dir
                        << " to rebuild the corpus");
    }
  }
  return Corpus(std::move(manifest), std::move(splits), dir);
}

Corpus load_or_build_corpus(const CorpusOptions& options, bool* was_cached) {
  const std::string dir = corpus_cache_dir(options);
  if (was_cached) *was_cached = true;
  if (fs::exists(fs::path(dir) / "manifest.json")) return load_corpus(dir);
  if (was_cached) *was_cached = false;
  Corpus built = build_corpus(options);
  publish_directory(dir, [&](const std::string& staging) { write_corpus_files(built, staging); });
  built.set_dir(dir);
  return built;
}

}  // namespace moelab::text
