#include "text/data/sources.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>

#include "core/io/atomic_file.h"
#include "core/util/check.h"
#include "text/data/documents.h"
#include "text/data/utf8.h"

namespace moelab::text {
namespace fs = std::filesystem;
namespace {

std::string install_command(const std::string& package) { return "apt-get install " + package; }

SourceSpec source(SourceFormat format, const fs::path& path, const std::string& package, bool top_level_only = false) {
  return {format, path.string(), package, install_command(package), top_level_only};
}

// The numerically highest "<prefix><number>" directory under `parent` that holds `marker`.
std::optional<fs::path> newest_version_dir(const fs::path& parent, const std::string& prefix, const std::string& marker) {
  std::error_code ec;
  if (!fs::is_directory(parent, ec)) return std::nullopt;
  std::optional<fs::path> best;
  long best_version = -1;
  for (const fs::directory_entry& entry : fs::directory_iterator(parent, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
    const std::string digits = name.substr(prefix.size());
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    const long version = std::stol(digits);
    if (version > best_version && fs::exists(entry.path() / marker, ec)) {
      best_version = version;
      best = entry.path();
    }
  }
  return best;
}

[[noreturn]] void fail_source(const SourceSpec& s, const std::string& problem) {
  MOELAB_FAIL(problem << ": it comes from the Debian package " << s.package << " (install it with `" << s.install
                      << "`, or `make deps`)");
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Regular files (symlinks are skipped: they alias files already read) under `dir`, sorted by path so that
// the document order never depends on the file system.
std::vector<fs::path> list_files(const fs::path& dir, bool recursive, const std::vector<std::string>& skip_dirs,
                                 const std::function<bool(const std::string&)>& keep) {
  std::vector<fs::path> files;
  std::vector<fs::path> pending{dir};
  while (!pending.empty()) {
    fs::path current = pending.back();
    pending.pop_back();
    for (const fs::directory_entry& entry : fs::directory_iterator(current)) {
      const std::string name = entry.path().filename().string();
      if (entry.is_symlink() || name.empty() || name[0] == '.') continue;
      if (entry.is_directory()) {
        if (recursive && std::find(skip_dirs.begin(), skip_dirs.end(), name) == skip_dirs.end())
          pending.push_back(entry.path());
      } else if (entry.is_regular_file() && keep(name)) {
        files.push_back(entry.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_gzip_file(const std::string& path) {
  gzFile in = gzopen(path.c_str(), "rb");
  MOELAB_CHECK(in != nullptr, "cannot open " << path);
  std::string out;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(in, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  int error = 0;
  const char* message = gzerror(in, &error);
  const std::string why = message ? message : "";
  gzclose(in);
  MOELAB_CHECK(n == 0 && error == Z_OK, "cannot decompress " << path << " (at byte " << out.size() << "): " << why);
  return out;
}

void add_documents(SourceText& out, std::vector<std::string>&& docs) {
  for (std::string& d : docs) out.documents.push_back(std::move(d));
}

// Reads a file, counts and repairs its ill-formed UTF-8.
std::string read_repaired(const fs::path& path, SourceText& out) {
  std::string raw = io::read_file_bytes(path.string());
  out.files += 1;
  out.bytes += raw.size();
  Utf8Repair repaired = repair_utf8(raw);
  out.utf8_repairs += repaired.replacements;
  return std::move(repaired.text);
}

void read_dictd(const SourceSpec& s, size_t max_document_bytes, SourceText& out) {
  const std::string index_path = s.path + ".index";
  std::string dict_path = s.path + ".dict.dz";
  std::error_code ec;
  if (!fs::exists(dict_path, ec)) dict_path = s.path + ".dict";
  if (!fs::exists(index_path, ec) || !fs::exists(dict_path, ec))
    fail_source(s, "dictionary database " + s.path + ".index / .dict.dz is missing");
  const std::vector<DictEntry> entries = parse_dict_index(io::read_file_bytes(index_path), index_path);
  const std::string dict = ends_with(dict_path, ".dz") ? read_gzip_file(dict_path) : io::read_file_bytes(dict_path);
  out.files += 2;
  out.bytes += dict.size();
  for (const DictEntry& e : entries) {
    MOELAB_CHECK(e.offset + e.length <= dict.size(), index_path << ": entry at byte " << e.offset << " (+" << e.length
                                                                << ") lies past the end of " << dict_path << " ("
                                                                << dict.size() << " bytes)");
    Utf8Repair repaired = repair_utf8(std::string_view(dict).substr(e.offset, e.length));
    out.utf8_repairs += repaired.replacements;
    add_documents(out, chunk_paragraphs(repaired.text, max_document_bytes));
  }
}

void read_wordnet(const SourceSpec& s, size_t max_document_bytes, SourceText& out) {
  static const std::pair<const char*, const char*> kParts[] = {
      {"data.noun", "noun"}, {"data.verb", "verb"}, {"data.adj", "adjective"}, {"data.adv", "adverb"}};
  for (const auto& [file, part] : kParts) {
    const fs::path path = fs::path(s.path) / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) fail_source(s, "WordNet file " + path.string() + " is missing");
    const std::string text = read_repaired(path, out);
    size_t begin = 0;
    while (begin < text.size()) {
      size_t end = text.find('\n', begin);
      if (end == std::string::npos) end = text.size();
      if (std::optional<std::string> doc = wordnet_gloss(std::string_view(text).substr(begin, end - begin), part))
        add_documents(out, chunk_paragraphs(*doc, max_document_bytes));
      begin = end + 1;
    }
  }
}

}  // namespace

std::vector<DomainSpec> corpus_domains(const std::string& root) {
  const fs::path r = root.empty() ? fs::path("/") : fs::path(root);
  const fs::path fortunes = r / "usr/share/games/fortunes";
  std::vector<DomainSpec> domains;
  domains.push_back({"en", "English prose (fortunes)", {source(SourceFormat::kFortunes, fortunes, "fortunes", true)}});
  const std::pair<const char*, const char*> languages[] = {{"de", "German"}, {"es", "Spanish"}, {"it", "Italian"},
                                                           {"ru", "Russian"}, {"pl", "Polish"}, {"cs", "Czech"}};
  for (const auto& [code, language] : languages)
    domains.push_back({code, std::string(language) + " prose (fortunes-" + code + ")",
                       {source(SourceFormat::kFortunes, fortunes / code, std::string("fortunes-") + code)}});
  const fs::path cxx = newest_version_dir(r / "usr/include/c++", "", "vector").value_or(r / "usr/include/c++");
  domains.push_back({"cpp", "C++ code (libstdc++ headers)", {source(SourceFormat::kCppHeaders, cxx, "g++")}});
  const fs::path python = newest_version_dir(r / "usr/lib", "python3.", "os.py").value_or(r / "usr/lib/python3");
  domains.push_back({"python", "Python code (standard library)", {source(SourceFormat::kPythonModules, python, "python3")}});
  domains.push_back({"dict", "Dictionary definitions (WordNet glosses, GCIDE)",
                     {source(SourceFormat::kWordnetGlosses, r / "usr/share/wordnet", "wordnet-base"),
                      source(SourceFormat::kDictd, r / "usr/share/dictd/gcide", "dict-gcide")}});
  domains.push_back({"licence", "Licence text (common-licenses)",
                     {source(SourceFormat::kPlainText, r / "usr/share/common-licenses", "base-files")}});
  return domains;
}

std::vector<std::string> corpus_domain_names() {
  std::vector<std::string> names;
  for (const DomainSpec& d : corpus_domains("/")) names.push_back(d.name);
  return names;
}

SourceText read_source(const SourceSpec& s, size_t max_document_bytes) {
  SourceText out;
  std::error_code ec;
  if (s.format != SourceFormat::kDictd && !fs::is_directory(s.path, ec))
    fail_source(s, "source directory " + s.path + " is missing");
  auto not_index = [](const std::string& name) { return !ends_with(name, ".dat") && !ends_with(name, ".u8"); };
  auto any = [](const std::string&) { return true; };
  switch (s.format) {
    case SourceFormat::kFortunes: {
      // The English fortunes lie at the top level, the other languages in subdirectories; "off/" holds the
      // offensive sets that `fortune` itself leaves out by default.
      for (const fs::path& f : list_files(s.path, !s.top_level_only, {"off"}, not_index))
        add_documents(out, split_fortunes(read_repaired(f, out), max_document_bytes));
      break;
    }
    case SourceFormat::kCppHeaders:
      for (const fs::path& f : list_files(s.path, true, {}, any))
        add_documents(out, chunk_paragraphs(read_repaired(f, out), max_document_bytes));
      break;
    case SourceFormat::kPythonModules: {
      // Only the library itself: not the test suite, third-party packages or byte code.
      const std::vector<std::string> skip{"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"};
      for (const fs::path& f : list_files(s.path, true, skip, [](const std::string& n) { return ends_with(n, ".py"); }))
        add_documents(out, split_python_units(read_repaired(f, out), max_document_bytes));
      break;
    }
    case SourceFormat::kWordnetGlosses:
      read_wordnet(s, max_document_bytes, out);
      break;
    case SourceFormat::kDictd:
      read_dictd(s, max_document_bytes, out);
      break;
    case SourceFormat::kPlainText:
      for (const fs::path& f : list_files(s.path, false, {}, any))
        add_documents(out, chunk_paragraphs(read_repaired(f, out), max_document_bytes));
      break;
  }
  if (out.documents.empty())
    fail_source(s, s.path + " holds no documents (" + std::to_string(out.files) + " files read)");
  return out;
}

}  // namespace moelab::text
