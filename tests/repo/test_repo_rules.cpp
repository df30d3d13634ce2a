// Repository rules (docs/architecture.md §1, §5 and §6): every document path named in code, docs or the
// README exists, the include rules between the parts hold, and headers open with at most three lines.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace fs = std::filesystem;

namespace {

// One broken rule, printed as `file:line: message` (file relative to the repository root).
struct Finding {
  std::string file;
  int line = 0;
  std::string message;
};

std::string to_text(const std::vector<Finding>& findings) {
  std::string out;
  for (const Finding& f : findings) out += f.file + ":" + std::to_string(f.line) + ": " + f.message + "\n";
  return out;
}

bool has_suffix(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool has_prefix(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// ---- which files count: the tracked ones (plus new, not ignored ones), or a plain walk without git ----

std::vector<std::string> repo_files(const fs::path& root) {
  std::vector<std::string> files;
  const std::string cmd =
      "git -C '" + root.string() + "' ls-files -z --cached --others --exclude-standard 2>/dev/null";
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    std::string all;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) all.append(buf, n);
    const int rc = pclose(pipe);
    if (rc == 0 && !all.empty()) {
      for (size_t start = 0, end; (end = all.find('\0', start)) != std::string::npos; start = end + 1)
        if (fs::is_regular_file(root / all.substr(start, end - start)))
          files.push_back(all.substr(start, end - start));
      std::sort(files.begin(), files.end());
      files.erase(std::unique(files.begin(), files.end()), files.end());
      return files;
    }
  }
  // Not a git checkout (a source tarball): walk the tree, skipping build output and hidden folders.
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && (name[0] == '.' || has_prefix(name, "build") || name == "runs")) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), root).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

bool is_scanned_for_references(const std::string& file) {
  const std::string name = fs::path(file).filename().string();
  if (name == "CMakeLists.txt" || name == "Makefile") return true;
  for (const char* ext : {".h", ".cpp", ".cu", ".cuh", ".py", ".toml", ".md"})
    if (has_suffix(name, ext)) return true;
  return false;
}

bool is_source(const std::string& file) {
  for (const char* ext : {".h", ".cpp", ".cu", ".cuh"})
    if (has_suffix(file, ext)) return true;
  return false;
}

// ---- finding path references in one line ----

// A path named in a line: `target` as written (anchor removed), the sections cited right after it
// (`docs/moe.md §1.3`, `... §3-§4`), and whether it is a Markdown link (resolved against the file's folder).
struct PathRef {
  std::string target;
  std::vector<std::string> sections;
  bool is_link = false;
};

bool is_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/';
}

// "§" is two bytes in UTF-8; "–" (en dash) three.
constexpr std::string_view kSection = "\xC2\xA7";
constexpr std::string_view kEnDash = "\xE2\x80\x93";

// Reads `§1.3`, `§3-§4`, `§3 and §4` right after a path (skipping a closing backquote and an opening
// parenthesis).
std::vector<std::string> sections_after(std::string_view line, size_t pos) {
  std::vector<std::string> sections;
  auto skip = [&](std::string_view chars) {
    while (pos < line.size() && chars.find(line[pos]) != std::string_view::npos) ++pos;
  };
  skip("`");
  skip(" (");
  while (has_prefix(line.substr(pos), kSection)) {
    pos += kSection.size();
    skip(" ");
    const size_t start = pos;
    while (pos < line.size() && (std::isdigit(static_cast<unsigned char>(line[pos])) ||
                                 (line[pos] == '.' && pos + 1 < line.size() &&
                                  std::isdigit(static_cast<unsigned char>(line[pos + 1])))))
      ++pos;
    if (pos == start) break;
    sections.emplace_back(line.substr(start, pos - start));
    const size_t before = pos;
    skip(" ,");
    if (has_prefix(line.substr(pos), kEnDash))
      pos += kEnDash.size();
    else if (has_prefix(line.substr(pos), "-"))
      ++pos;
    else if (has_prefix(line.substr(pos), "and "))
      pos += 4;
    else if (!has_prefix(line.substr(pos), kSection))
      pos = before;
    skip(" ");
  }
  return sections;
}

// Does a bare token name a repository document? Paths with a folder ending in .md, anything under docs/
// or specs/, and capitalised top-level documents (README.md). A bare lowercase `compare.md` is a file a
// program writes, not a reference; tokens starting with `/` are absolute paths or URLs.
bool is_document_token(std::string_view token) {
  if (token.empty() || token[0] == '/') return false;
  const size_t slash = token.find('/');
  if (slash == std::string_view::npos) {
    if (!has_suffix(token, ".md")) return false;
    const std::string_view stem = token.substr(0, token.size() - 3);
    return !stem.empty() && std::all_of(stem.begin(), stem.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
             c == '_';
    });
  }
  const std::string_view first = token.substr(0, slash);
  if (first != "." && first != ".." && first.find('.') != std::string_view::npos)
    return false;  // a host name
  if (has_suffix(token, ".md")) return true;
  std::string_view rest = token;
  while (has_prefix(rest, "../")) rest.remove_prefix(3);
  return (has_prefix(rest, "docs/") || has_prefix(rest, "specs/")) && rest.size() > 5 && rest.back() != '/';
}

std::vector<PathRef> find_path_refs(std::string_view line, bool markdown) {
  std::vector<PathRef> refs;
  std::vector<std::pair<size_t, size_t>> link_spans;  // [begin, end) of Markdown link targets
  if (markdown) {
    for (size_t pos = 0; (pos = line.find("](", pos)) != std::string_view::npos;) {
      const size_t begin = pos + 2;
      const size_t end = line.find(')', begin);
      if (end == std::string_view::npos) break;
      std::string target(line.substr(begin, end - begin));
      pos = end;
      if (target.empty() || target.find_first_of(" \t\"'") != std::string::npos)
        continue;  // not a link (code)
      if (target.find("://") != std::string::npos || has_prefix(target, "mailto:") || target[0] == '#')
        continue;
      link_spans.emplace_back(begin, end);
      if (const size_t hash = target.find('#'); hash != std::string::npos) target.resize(hash);
      refs.push_back({target, sections_after(line, end + 1), true});
    }
  }
  for (size_t pos = 0; pos < line.size();) {
    if (!is_path_char(line[pos])) {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < line.size() && is_path_char(line[end])) ++end;
    const bool inside_link = std::any_of(link_spans.begin(), link_spans.end(),
                                         [&](const auto& s) { return pos >= s.first && pos < s.second; });
    const bool after_scheme = pos > 0 && line[pos - 1] == ':';
    std::string_view token = line.substr(pos, end - pos);
    while (!token.empty() && token.back() == '.') token.remove_suffix(1);  // a sentence's full stop
    if (!inside_link && !after_scheme && is_document_token(token))
      refs.push_back({std::string(token), sections_after(line, pos + token.size()), false});
    pos = end;
  }
  return refs;
}

// Does a Markdown file have a heading numbered `section` (`## 2. ...`, `### 1.3 ...`, `## §4 ...`)?
bool has_section(const fs::path& doc, const std::string& section) {
  for (const std::string& line : read_lines(doc)) {
    if (line.empty() || line[0] != '#') continue;
    std::string_view text(line);
    while (!text.empty() && text[0] == '#') text.remove_prefix(1);
    while (!text.empty() && text[0] == ' ') text.remove_prefix(1);
    if (has_prefix(text, kSection)) text.remove_prefix(kSection.size());
    if (!has_prefix(text, section)) continue;
    text.remove_prefix(section.size());
    if (text.empty() || text[0] == ' ' || text[0] == '.' || text[0] == ':' || text[0] == ')') return true;
  }
  return false;
}

std::vector<Finding> check_references(const fs::path& root, const std::vector<std::string>& files) {
  std::vector<Finding> findings;
  const fs::path canonical_root = fs::weakly_canonical(root);
  for (const std::string& file : files) {
    if (!is_scanned_for_references(file)) continue;
    const bool markdown = has_suffix(file, ".md");
    const std::vector<std::string> lines = read_lines(root / file);
    for (size_t i = 0; i < lines.size(); ++i) {
      for (const PathRef& ref : find_path_refs(lines[i], markdown)) {
        if (ref.target.empty()) continue;
        const fs::path base = ref.is_link ? (root / file).parent_path() : root;
        const fs::path resolved = fs::weakly_canonical(base / ref.target);
        const std::string relative = resolved.lexically_relative(canonical_root).generic_string();
        auto report = [&](const std::string& message) { findings.push_back({file, int(i) + 1, message}); };
        if (relative.empty() || has_prefix(relative, "..")) {
          report("'" + ref.target + "' points outside the repository");
        } else if (!fs::exists(resolved)) {
          report("'" + ref.target + "' does not exist" +
                 (ref.is_link ? " (link, relative to this file)" : ""));
        } else if (has_suffix(ref.target, ".md")) {
          for (const std::string& section : ref.sections)
            if (!has_section(resolved, section))
              report("'" + ref.target + "' has no heading numbered " + std::string(kSection) + section);
        }
      }
    }
  }
  return findings;
}

// ---- include rules ----

// The top-level part a repository path belongs to (core, vision, text, rl, experiments, bench, tests, ...).
std::string part_of(const std::string& path) { return path.substr(0, path.find('/')); }

// Which parts may the files of `part` include? core only itself; vision, text and rl core and themselves;
// experiments, bench and tests anything.
bool may_include(const std::string& part, const std::string& included_part) {
  if (part == "experiments" || part == "bench" || part == "tests") return true;
  if (part == "core") return included_part == "core";
  if (part == "vision" || part == "text" || part == "rl")
    return included_part == "core" || included_part == part;
  return true;
}

// Libraries that belong to images, text or the command line and so never to core.
bool is_modality_library(std::string_view header) {
  for (const char* prefix : {"opencv2/", "sentencepiece", "CLI/"})
    if (has_prefix(header, prefix)) return true;
  return false;
}

struct Include {
  std::string header;
  bool quoted = false;
};

std::optional<Include> parse_include(std::string_view line) {
  size_t pos = line.find_first_not_of(" \t");
  if (pos == std::string_view::npos || line[pos] != '#') return std::nullopt;
  pos = line.find_first_not_of(" \t", pos + 1);
  if (pos == std::string_view::npos || line.substr(pos, 7) != "include") return std::nullopt;
  pos = line.find_first_not_of(" \t", pos + 7);
  if (pos == std::string_view::npos || (line[pos] != '"' && line[pos] != '<')) return std::nullopt;
  const char close = line[pos] == '"' ? '"' : '>';
  const size_t end = line.find(close, pos + 1);
  if (end == std::string_view::npos) return std::nullopt;
  return Include{std::string(line.substr(pos + 1, end - pos - 1)), close == '"'};
}

std::vector<Finding> check_includes(const fs::path& root, const std::vector<std::string>& files) {
  static const std::set<std::string> kParts = {"core",        "vision", "text", "rl",
                                               "experiments", "bench",  "tests"};
  std::vector<Finding> findings;
  for (const std::string& file : files) {
    if (!is_source(file)) continue;
    const std::string part = part_of(file);
    if (!kParts.count(part) || file.find('/') == std::string::npos) continue;
    const std::vector<std::string> lines = read_lines(root / file);
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::optional<Include> inc = parse_include(lines[i]);
      if (!inc) continue;
      auto report = [&](const std::string& message) { findings.push_back({file, int(i) + 1, message}); };
      if (part == "core" && is_modality_library(inc->header)) {
        report("core includes <" + inc->header + ">: core knows no images, text or command line");
        continue;
      }
      // A quoted include next to the file wins; otherwise it is relative to the repository root.
      std::string target = inc->header;
      if (inc->quoted) {
        const fs::path sibling = (fs::path(file).parent_path() / inc->header).lexically_normal();
        if (fs::exists(root / sibling)) target = sibling.generic_string();
      }
      const std::string included_part = part_of(target);
      if (!kParts.count(included_part) || target.find('/') == std::string::npos) continue;  // a system header
      if (!may_include(part, included_part))
        report(part + "/ may not include " + included_part + "/ (\"" + inc->header + "\")");
    }
  }
  return findings;
}

// ---- header openings ----

// A header opens with at most this many comment lines (after `#pragma once`); longer prose lives in docs/.
constexpr size_t kMaxOpeningCommentLines = 3;

bool is_header(const std::string& file) { return has_suffix(file, ".h") || has_suffix(file, ".cuh"); }

std::string_view trimmed_start(std::string_view line) {
  const size_t pos = line.find_first_not_of(" \t");
  return pos == std::string_view::npos ? std::string_view() : line.substr(pos);
}

// Reports each header whose opening comment block (`//` lines, or one `/* ... */`) is longer than
// kMaxOpeningCommentLines, at the block's first line.
std::vector<Finding> check_header_openings(const fs::path& root, const std::vector<std::string>& files) {
  std::vector<Finding> findings;
  for (const std::string& file : files) {
    if (!is_header(file)) continue;
    const std::vector<std::string> lines = read_lines(root / file);
    size_t i = 0;
    while (i < lines.size() &&
           (trimmed_start(lines[i]).empty() || has_prefix(trimmed_start(lines[i]), "#pragma once")))
      ++i;
    const size_t first = i;
    if (i < lines.size() && has_prefix(trimmed_start(lines[i]), "/*")) {
      while (i < lines.size() && lines[i].find("*/") == std::string::npos) ++i;
      if (i < lines.size()) ++i;
    } else {
      while (i < lines.size() && has_prefix(trimmed_start(lines[i]), "//")) ++i;
    }
    const size_t count = i - first;
    if (count > kMaxOpeningCommentLines)
      findings.push_back({file, int(first) + 1,
                          "header opens with " + std::to_string(count) + " comment lines (at most " +
                              std::to_string(kMaxOpeningCommentLines) + "; longer prose belongs in docs/)"});
  }
  return findings;
}

// ---- tests on small planted trees, then on the repository itself ----

class PlantedTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() /
        ("moelab_repo_rules_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
    files_.push_back(rel);
  }
  fs::path root_;
  std::vector<std::string> files_;
};

// Texts naming paths are written with placeholders, so that the scan of this very file (and any rewrite of
// citations across the repository) does not see them: {D} docs/, {P} specs/, {M} the old design page,
// {R} the README, {S} the section sign, {N} an en dash.
std::string expand(std::string text) {
  static const std::pair<std::string, std::string> kPlaceholders[] = {{"{D}", "docs/"},
                                                                      {"{P}", "specs/"},
                                                                      {"{M}", std::string("DESIGN") + ".md"},
                                                                      {"{R}", "README.md"},
                                                                      {"{S}", std::string(kSection)},
                                                                      {"{N}", std::string(kEnDash)}};
  for (const auto& [from, to] : kPlaceholders)
    for (size_t pos; (pos = text.find(from)) != std::string::npos;) text.replace(pos, from.size(), to);
  return text;
}

TEST(PathRefs, FindsDocumentTokensSectionsAndLinks) {
  auto refs = find_path_refs(expand("// The router ({D}moe.md {S}1.3), see {M} {S}3-{S}4."), false);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].target, expand("{D}moe.md"));
  EXPECT_EQ(refs[0].sections, std::vector<std::string>{"1.3"});
  EXPECT_EQ(refs[1].target, expand("{M}"));
  EXPECT_EQ(refs[1].sections, (std::vector<std::string>{"3", "4"}));

  // Output names, URLs, absolute paths and ordinary code are not references.
  EXPECT_TRUE(find_path_refs(expand("write(out / \"compare.md\"); // https://host.org/a/{R} /x/y.md"), false)
                  .empty());
  EXPECT_TRUE(find_path_refs(expand("see github.com/owner/{R} and a.b.c"), false).empty());

  // Markdown links resolve against the file's folder; the bare token inside a link is not counted twice.
  refs = find_path_refs(
      expand("[rules](minatar.md#2-protocols) and [top](../{R}) and [web](https://x.org/y.md)"), true);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].target, "minatar.md");
  EXPECT_TRUE(refs[0].is_link);
  EXPECT_EQ(refs[1].target, expand("../{R}"));
  // `[a](b)` in C++ is a lambda, not a link.
  EXPECT_TRUE(find_path_refs("auto f = [](const Config& c) {};", true).empty());
  // Any file under docs/, not only .md; a bare folder is not a file reference.
  refs = find_path_refs(expand("![report]({D}runner_report.png) in docs/ and {P}formats.md ({S}1{N}{S}5)"),
                        false);
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].target, expand("{D}runner_report.png"));
  EXPECT_EQ(refs[1].sections, (std::vector<std::string>{"1", "5"}));
}

TEST_F(PlantedTree, BadReferencesAreReportedWithFileAndLine) {
  write(expand("{D}good.md"),
        expand("# Good\n\n## 1. One\n\n### 1.3 Selector\n\n[other](other.md), [up](../{R}).\n"));
  write(expand("{D}other.md"), "# Other\n");
  write(expand("{R}"), expand("Start at [{D}good.md]({D}good.md).\nThe spec: {P}gone.md\n"));
  write("core/x.h",
        expand("// {D}good.md {S}1.3 is fine\n// but {D}good.md {S}2 is not\n// ../shared/{M}\n"));
  write("core/y.cpp", expand("// a comment\n// see {D}missing.md\n"));
  write(expand("{D}bad.md"), "A [broken link](nowhere.md).\n");
  write("out.txt", expand("{D}ignored.md (not a scanned kind of file)\n"));

  const std::vector<Finding> findings = check_references(root_, files_);
  EXPECT_EQ(to_text(findings),
            expand("{R}:2: '{P}gone.md' does not exist\n"
                   "core/x.h:2: '{D}good.md' has no heading numbered {S}2\n"
                   "core/x.h:3: '../shared/{M}' points outside the repository\n"
                   "core/y.cpp:2: '{D}missing.md' does not exist\n"
                   "{D}bad.md:1: 'nowhere.md' does not exist (link, relative to this file)\n"));
}

TEST_F(PlantedTree, IncludeViolationsAreReportedWithFileAndLine) {
  write("core/a.h", "#pragma once\n#include \"core/b.h\"\n#include <vector>\n#include \"vision/v.h\"\n");
  write("core/b.h", "#pragma once\n#  include <opencv2/core.hpp>\n");
  write("vision/v.h", "#include \"core/a.h\"\n#include \"vision/w.h\"\n#include \"rl/r.h\"\n");
  write("vision/w.h", "#include \"v.h\"\n");
  write("rl/r.h", "#include <string>\n#include \"text/t.h\"\n");
  write("text/t.h", "#include \"core/a.h\"\n");
  write("experiments/e.cpp", "#include \"vision/v.h\"\n#include \"rl/r.h\"\n#include \"text/t.h\"\n");
  write("bench/b.cpp", "#include \"experiments/e.h\"\n");
  write("tests/t.cpp", "#include \"bench/b.h\"\n#include \"vision/v.h\"\n");

  EXPECT_EQ(to_text(check_includes(root_, files_)),
            "core/a.h:4: core/ may not include vision/ (\"vision/v.h\")\n"
            "core/b.h:2: core includes <opencv2/core.hpp>: core knows no images, text or command line\n"
            "vision/v.h:3: vision/ may not include rl/ (\"rl/r.h\")\n"
            "rl/r.h:2: rl/ may not include text/ (\"text/t.h\")\n");
}

TEST_F(PlantedTree, LongHeaderOpeningsAreReportedWithFileAndLine) {
  write("core/short.h",
        "#pragma once\n// One.\n// Two.\n// Three.\n#include <vector>\n// a\n// b\n// c\n// d\n");
  write("core/long.h", "#pragma once\n\n// 1\n// 2\n//\n// 4\nint f();\n");
  write("core/block.cuh", "/* one\n   two\n   three\n   four */\n#pragma once\n");
  write("core/bare.h", "#pragma once\nint g();\n");
  write("core/long.cpp", "// 1\n// 2\n// 3\n// 4\n// 5\n");

  EXPECT_EQ(
      to_text(check_header_openings(root_, files_)),
      "core/long.h:3: header opens with 4 comment lines (at most 3; longer prose belongs in docs/)\n"
      "core/block.cuh:1: header opens with 4 comment lines (at most 3; longer prose belongs in docs/)\n");
}

TEST(Repository, EveryNamedDocumentExists) {
  const fs::path root = MOELAB_SOURCE_DIR;
  const std::vector<std::string> files = repo_files(root);
  ASSERT_TRUE(std::find(files.begin(), files.end(), "README.md") != files.end())
      << "no README.md under " << root;
  const std::vector<Finding> findings = check_references(root, files);
  EXPECT_TRUE(findings.empty()) << findings.size() << " missing path(s) named in code, docs or README:\n"
                                << to_text(findings);
}

TEST(Repository, IncludeRulesHold) {
  const fs::path root = MOELAB_SOURCE_DIR;
  const std::vector<Finding> findings = check_includes(root, repo_files(root));
  EXPECT_TRUE(findings.empty()) << findings.size() << " include(s) break the rules of docs/architecture.md:\n"
                                << to_text(findings);
}

TEST(Repository, HeadersOpenWithAtMostThreeLines) {
  const fs::path root = MOELAB_SOURCE_DIR;
  const std::vector<Finding> findings = check_header_openings(root, repo_files(root));
  EXPECT_TRUE(findings.empty()) << findings.size() << " header(s) open with more than "
                                << kMaxOpeningCommentLines << " comment lines (docs/architecture.md §6):\n"
                                << to_text(findings);
}

}  // namespace
