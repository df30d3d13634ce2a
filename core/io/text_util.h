#pragma once
// Small text helpers shared by the io formats: typo suggestions, number formatting, quoting.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::io {

// Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo
// (distance <= max(2, |word| / 3)); ties go to the earlier candidate.
std::optional<std::string> nearest_match(std::string_view word, const std::vector<std::string>& candidates);

// Shortest text that parses back to the same double, %g style ("0.0003", "1e-07", "3"); "nan", "inf", "-inf".
std::string format_double(double value);
// Exact text of a double ("%a" hex float) and back, for state that must round-trip bit for bit.
std::string hex_double(double value);
double parse_hex_double(const std::string& text);
// "[2, 3]"
std::string format_int_list(const std::vector<int64_t>& values);
// Double-quoted with JSON/TOML basic-string escapes: "a\"b\n" -> "\"a\\\"b\\n\"".
std::string quote_string(std::string_view text);

}  // namespace moelab::io
