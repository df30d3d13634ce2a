#pragma once
// CSV (RFC 4180) for routing matrices and per-token samples: fields with commas, quotes or line
// breaks are quoted, quotes doubled; numbers use the shortest text that reads back exactly.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moelab::io {

std::string csv_field(std::string_view text);
std::string csv_number(double v);  // "0.25", "1e-07", "nan"
std::string csv_row(const std::vector<std::string>& fields);  // joined with ',' and ended by '\n'

// A table built in memory and written atomically: header row, then rows of text or numbers.
class CsvTable {
 public:
  explicit CsvTable(std::vector<std::string> header);
  CsvTable& row(const std::vector<std::string>& fields);
  CsvTable& row(const std::vector<double>& values);
  // A label followed by numbers: "class 3", 0.1, 0.9.
  CsvTable& row(const std::string& label, const std::vector<double>& values);
  const std::string& text() const { return text_; }
  size_t rows() const { return rows_; }
  void write(const std::string& path) const;

 private:
  size_t columns_;
  size_t rows_ = 0;
  std::string text_;
};

// Parses CSV text back into rows of fields (quoted fields, doubled quotes, embedded line breaks).
std::vector<std::vector<std::string>> parse_csv(std::string_view text);

}  // namespace moelab::io
