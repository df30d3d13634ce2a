#include "text/data/utf8.h"

namespace moelab::text {
namespace {

// Number of bytes after `lead`, and the allowed range of the byte that follows it (Unicode table 3-7).
struct LeadInfo {
  int continuation = -1;  // -1: not a valid lead byte
  unsigned char second_lo = 0x80, second_hi = 0xBF;
};

LeadInfo lead_info(unsigned char lead) {
  if (lead < 0x80) return {0};
  if (lead >= 0xC2 && lead <= 0xDF) return {1};
  if (lead == 0xE0) return {2, 0xA0, 0xBF};
  if (lead == 0xED) return {2, 0x80, 0x9F};  // no UTF-16 surrogates
  if (lead >= 0xE1 && lead <= 0xEF) return {2};
  if (lead == 0xF0) return {3, 0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {3};
  if (lead == 0xF4) return {3, 0x80, 0x8F};  // nothing above U+10FFFF
  return {};
}

// Bytes of the longest prefix at i that is a valid start of a sequence (the maximal subpart), and whether
// that prefix is a complete sequence.
size_t valid_prefix(std::string_view bytes, size_t i, bool* complete) {
  const LeadInfo info = lead_info(static_cast<unsigned char>(bytes[i]));
  *complete = false;
  if (info.continuation < 0) return 0;
  size_t n = 1;
  for (int k = 0; k < info.continuation; ++k, ++n) {
    if (i + n >= bytes.size()) return n;
    const unsigned char c = static_cast<unsigned char>(bytes[i + n]);
    const unsigned char lo = k == 0 ? info.second_lo : 0x80, hi = k == 0 ? info.second_hi : 0xBF;
    if (c < lo || c > hi) return n;
  }
  *complete = true;
  return n;
}

}  // namespace

size_t utf8_sequence_length(std::string_view bytes, size_t i) {
  bool complete = false;
  size_t n = valid_prefix(bytes, i, &complete);
  return complete ? n : 0;
}

bool is_valid_utf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    size_t n = utf8_sequence_length(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

Utf8Repair repair_utf8(std::string_view bytes) {
  Utf8Repair out;
  out.text.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    bool complete = false;
    const size_t n = valid_prefix(bytes, i, &complete);
    if (complete) {
      out.text.append(bytes.substr(i, n));
      i += n;
    } else {
      out.text.append("\xEF\xBF\xBD");
      ++out.replacements;
      i += n == 0 ? 1 : n;
    }
  }
  return out;
}

}  // namespace moelab::text
