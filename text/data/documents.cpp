#include "text/data/documents.h"

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "core/util/check.h"

namespace moelab::text {
namespace {

struct Range {
  size_t begin = 0, end = 0;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n'; }

bool is_blank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return is_space(c); });
}

// Lines of `text` as [begin, end) without their '\n'.
std::vector<Range> line_ranges(std::string_view text) {
  std::vector<Range> lines;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t nl = text.find('\n', begin);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    lines.push_back({begin, end});
    begin = end + 1;
  }
  return lines;
}

void emit_trimmed(std::string_view chunk, std::vector<std::string>& out) {
  size_t end = chunk.size();
  while (end > 0 && is_space(chunk[end - 1])) --end;
  if (end > 0) out.emplace_back(chunk.substr(0, end));
}

// Cuts a single over-long line at UTF-8 character boundaries (never inside a multi-byte sequence).
void cut_line(std::string_view line, size_t max_bytes, std::vector<std::string>& out) {
  size_t begin = 0;
  while (begin < line.size()) {
    size_t end = std::min(line.size(), begin + max_bytes);
    while (end < line.size() && end > begin + 1 && (static_cast<unsigned char>(line[end]) & 0xC0) == 0x80) --end;
    emit_trimmed(line.substr(begin, end - begin), out);
    begin = end;
  }
}

// Greedy packing of consecutive ranges into chunks text[ranges[i].begin, ranges[j].end) of at most max_bytes;
// a single range that is too long goes to `too_long`.
void pack_ranges(std::string_view text, const std::vector<Range>& ranges, size_t max_bytes,
                 const std::function<void(std::string_view)>& too_long, std::vector<std::string>& out) {
  size_t i = 0;
  while (i < ranges.size()) {
    if (ranges[i].end - ranges[i].begin > max_bytes) {
      too_long(text.substr(ranges[i].begin, ranges[i].end - ranges[i].begin));
      ++i;
      continue;
    }
    size_t j = i;
    while (j + 1 < ranges.size() && ranges[j + 1].end - ranges[i].begin <= max_bytes) ++j;
    emit_trimmed(text.substr(ranges[i].begin, ranges[j].end - ranges[i].begin), out);
    i = j + 1;
  }
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

std::vector<std::string> chunk_paragraphs(std::string_view text, size_t max_bytes) {
  MOELAB_CHECK(max_bytes >= 16, "chunk_paragraphs: max_bytes must be at least 16, got " << max_bytes);
  const std::vector<Range> lines = line_ranges(text);
  std::vector<Range> paragraphs;
  for (const Range& line : lines) {
    if (is_blank(text.substr(line.begin, line.end - line.begin))) continue;
    const bool continues = !paragraphs.empty() && paragraphs.back().end + 1 == line.begin;
    if (continues) paragraphs.back().end = line.end;
    else paragraphs.push_back(line);
  }
  std::vector<std::string> out;
  auto split_lines = [&](std::string_view paragraph) {
    auto cut = [&](std::string_view line) { cut_line(line, max_bytes, out); };
    pack_ranges(paragraph, line_ranges(paragraph), max_bytes, cut, out);
  };
  pack_ranges(text, paragraphs, max_bytes, split_lines, out);
  return out;
}

std::vector<std::string> split_fortunes(std::string_view file_text, size_t max_bytes) {
  std::vector<std::string> out;
  size_t entry_begin = 0;
  auto flush = [&](size_t end) {
    for (std::string& chunk : chunk_paragraphs(file_text.substr(entry_begin, end - entry_begin), max_bytes))
      out.push_back(std::move(chunk));
  };
  for (const Range& line : line_ranges(file_text)) {
    std::string_view text = file_text.substr(line.begin, line.end - line.begin);
    if (text == "%" || text == "%\r") {
      flush(line.begin);
      entry_begin = std::min(file_text.size(), line.end + 1);
    }
  }
  flush(file_text.size());
  return out;
}

std::vector<std::string> split_python_units(std::string_view file_text, size_t max_bytes) {
  std::vector<size_t> cuts{0};
  bool after_decorator = false;  // the previous non-blank line is a top-level decorator
  for (const Range& line : line_ranges(file_text)) {
    std::string_view text = file_text.substr(line.begin, line.end - line.begin);
    if (is_blank(text)) continue;
    const bool decorator = starts_with(text, "@");
    const bool definition = decorator || starts_with(text, "def ") || starts_with(text, "async def ") ||
                            starts_with(text, "class ");
    if (definition && !after_decorator && line.begin > 0) cuts.push_back(line.begin);
    after_decorator = decorator;
  }
  cuts.push_back(file_text.size());
  std::vector<std::string> out;
  for (size_t k = 0; k + 1 < cuts.size(); ++k)
    for (std::string& chunk : chunk_paragraphs(file_text.substr(cuts[k], cuts[k + 1] - cuts[k]), max_bytes))
      out.push_back(std::move(chunk));
  return out;
}

std::optional<std::string> wordnet_gloss(std::string_view line, std::string_view part_of_speech) {
  if (line.empty() || line[0] == ' ') return std::nullopt;
  const size_t bar = line.find(" | ");
  if (bar == std::string_view::npos) return std::nullopt;
  // Fields before the gloss: offset lex_filenum ss_type w_cnt(hex) then w_cnt pairs of (word, lex_id).
  std::vector<std::string_view> fields;
  for (size_t pos = 0; pos < bar;) {
    size_t space = line.find(' ', pos);
    if (space == std::string_view::npos || space > bar) space = bar;
    if (space > pos) fields.push_back(line.substr(pos, space - pos));
    pos = space + 1;
  }
  if (fields.size() < 4) return std::nullopt;
  const size_t count = std::strtoul(std::string(fields[3]).c_str(), nullptr, 16);
  if (count == 0 || fields.size() < 4 + 2 * count) return std::nullopt;
  std::string doc;
  for (size_t w = 0; w < count; ++w) {
    std::string word(fields[4 + 2 * w]);
    if (size_t paren = word.find('('); paren != std::string::npos) word.resize(paren);  // "long(a)": syntax marker
    std::replace(word.begin(), word.end(), '_', ' ');
    doc += (w ? ", " : "") + word;
  }
  std::string_view gloss = line.substr(bar + 3);
  while (!gloss.empty() && is_space(gloss.back())) gloss.remove_suffix(1);
  if (gloss.empty()) return std::nullopt;
  doc += " (";
  doc += part_of_speech;
  doc += "): ";
  doc += gloss;
  return doc;
}

std::optional<uint64_t> decode_dict_number(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : digits) {
    int d;
    if (c >= 'A' && c <= 'Z') d = c - 'A';
    else if (c >= 'a' && c <= 'z') d = 26 + (c - 'a');
    else if (c >= '0' && c <= '9') d = 52 + (c - '0');
    else if (c == '+') d = 62;
    else if (c == '/') d = 63;
    else return std::nullopt;
    value = value * 64 + static_cast<uint64_t>(d);
  }
  return value;
}

std::vector<DictEntry> parse_dict_index(std::string_view index_text, const std::string& index_path) {
  std::vector<DictEntry> entries;
  size_t line_number = 0;
  for (const Range& line : line_ranges(index_text)) {
    ++line_number;
    std::string_view text = index_text.substr(line.begin, line.end - line.begin);
    if (text.empty()) continue;
    const size_t tab1 = text.find('\t');
    const size_t tab2 = tab1 == std::string_view::npos ? tab1 : text.find('\t', tab1 + 1);
    MOELAB_CHECK(tab2 != std::string_view::npos,
                 index_path << ":" << line_number << ": malformed dictd index line (want word<TAB>offset<TAB>length)");
    std::optional<uint64_t> offset = decode_dict_number(text.substr(tab1 + 1, tab2 - tab1 - 1));
    std::optional<uint64_t> length = decode_dict_number(text.substr(tab2 + 1));
    MOELAB_CHECK(offset && length, index_path << ":" << line_number << ": bad base64 number in dictd index line");
    if (starts_with(text, "00-")) continue;  // the database's own information entries
    entries.push_back({*offset, *length});
  }
  std::sort(entries.begin(), entries.end(),
            [](const DictEntry& a, const DictEntry& b) { return a.offset != b.offset ? a.offset < b.offset : a.length < b.length; });
  entries.erase(std::unique(entries.begin(), entries.end(),
                            [](const DictEntry& a, const DictEntry& b) { return a.offset == b.offset && a.length == b.length; }),
                entries.end());
  return entries;
}

}  // namespace moelab::text
