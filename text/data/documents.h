#pragma once
// Splitting source text into documents, the natural units of the corpus: one fortune, one dictionary entry or
// gloss, one Python top-level definition, or a run of whole paragraphs, each at most `max_bytes` long.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::text {

// Cuts `text` (valid UTF-8) into chunks of at most max_bytes: whole paragraphs (blank-line separated) are
// packed greedily; a paragraph longer than max_bytes is cut at line ends, a line longer than that at
// character boundaries. Leading blank lines and trailing whitespace of each chunk are dropped; the
// indentation of its first line is kept (it matters in code).
std::vector<std::string> chunk_paragraphs(std::string_view text, size_t max_bytes);

// A fortune file: entries separated by lines holding only "%". Each entry goes through chunk_paragraphs.
std::vector<std::string> split_fortunes(std::string_view file_text, size_t max_bytes);

// A Python module: a new unit starts at each top-level `def`, `async def`, `class` or decorator line (a
// decorator keeps the definition it decorates); module code between definitions is a unit of its own.
// Units longer than max_bytes go through chunk_paragraphs.
std::vector<std::string> split_python_units(std::string_view file_text, size_t max_bytes);

// A WordNet data.* line -> "dog, domestic dog, Canis familiaris (noun): a member of the genus Canis ...";
// nullopt for the licence header lines (they start with two spaces) and lines without a gloss.
std::optional<std::string> wordnet_gloss(std::string_view line, std::string_view part_of_speech);

// A dictd .index file: one "headword<TAB>offset<TAB>length" line per headword, numbers in dictd's base64
// digits. Returns the distinct (offset, length) entries in file order, skipping the "00-database-*" entries.
struct DictEntry {
  uint64_t offset = 0, length = 0;
};
std::vector<DictEntry> parse_dict_index(std::string_view index_text, const std::string& index_path);

// dictd's base64 number: digits A-Z a-z 0-9 + / are 0..63, most significant first ("Fz" -> 5 * 64 + 51);
// nullopt on any other character.
std::optional<uint64_t> decode_dict_number(std::string_view digits);

}  // namespace moelab::text
