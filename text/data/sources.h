#pragma once
// The corpus domains and where their text comes from: files of Debian packages that the Makefile installs.
// A missing package or an empty source is an error that names the package and the command that installs it.
#include <cstdint>
#include <string>
#include <vector>

namespace moelab::text {

enum class SourceFormat {
  kFortunes,       // fortune files: entries separated by "%" lines
  kCppHeaders,     // libstdc++ headers, cut into runs of paragraphs
  kPythonModules,  // *.py of the standard library, cut at top-level definitions
  kWordnetGlosses, // data.noun, data.verb, data.adj, data.adv
  kDictd,          // a dictd database: <name>.index and <name>.dict.dz
  kPlainText,      // licence texts, cut into runs of paragraphs
};

struct SourceSpec {
  SourceFormat format;
  std::string path;     // directory (or, for kDictd, the database path without .index / .dict.dz)
  std::string package;  // Debian package that provides it
  std::string install;  // command that installs it
  bool top_level_only = false;  // read only the files directly in `path`, not its subdirectories
};

struct DomainSpec {
  std::string name;         // "en", "ru", "cpp", ...
  std::string description;  // "English prose (fortunes)"
  std::vector<SourceSpec> sources;
};

// Every domain, with paths under `root` ("/" normally; tests point it at a small fake tree). The C++ and
// Python directories are the highest versions present (/usr/include/c++/12, /usr/lib/python3.11).
std::vector<DomainSpec> corpus_domains(const std::string& root);
std::vector<std::string> corpus_domain_names();

struct SourceText {
  std::vector<std::string> documents;  // valid UTF-8, each at most max_document_bytes
  uint64_t files = 0;                  // files read
  uint64_t bytes = 0;                  // bytes read (after decompression)
  uint64_t utf8_repairs = 0;           // ill-formed UTF-8 subsequences replaced by U+FFFD
};

// Reads one source into documents; throws moelab::Error naming the package and its install command when the
// path is missing or yields no documents.
SourceText read_source(const SourceSpec& source, size_t max_document_bytes);

}  // namespace moelab::text
