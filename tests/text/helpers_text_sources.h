#pragma once
// A small stand-in for the corpus's Debian sources (fortunes in seven languages, libstdc++ headers, the
// Python library, WordNet, GCIDE, common-licenses), laid out as under "/" so that tests of the corpus
// builder run in milliseconds. Files that the builder must skip hold marker words that tests look for.
#include <filesystem>
#include <string>
#include <vector>

namespace moelab::testing {

// Writes the tree under `root` (which must exist).
void write_fake_text_sources(const std::filesystem::path& root);

// Words that appear only in files the corpus must not read (.dat indexes, symlinks, "off/", the Python test
// suite, older compiler and Python versions, the dictd information entries).
const std::vector<std::string>& fake_source_excluded_markers();

// The fake German fortunes hold exactly this many ill-formed UTF-8 subsequences.
inline constexpr int kFakeGermanUtf8Errors = 3;

}  // namespace moelab::testing
