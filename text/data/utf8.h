#pragma once
// UTF-8 validation and repair: source files are mostly UTF-8, but a few contain stray Latin-1 or binary
// bytes; those are replaced with U+FFFD so that every document the corpus holds is valid UTF-8.
#include <cstddef>
#include <string>
#include <string_view>

namespace moelab::text {

struct Utf8Repair {
  std::string text;         // valid UTF-8
  size_t replacements = 0;  // ill-formed subsequences replaced by U+FFFD
};

// Each maximal ill-formed subpart (Unicode 15, section 3.9, "U+FFFD substitution of maximal subparts") becomes
// one U+FFFD: overlong forms, surrogates, code points above U+10FFFF and truncated sequences are ill-formed.
Utf8Repair repair_utf8(std::string_view bytes);

// Length of the well-formed sequence starting at bytes[i], or 0 when it is ill-formed there.
size_t utf8_sequence_length(std::string_view bytes, size_t i);

bool is_valid_utf8(std::string_view bytes);

}  // namespace moelab::text
