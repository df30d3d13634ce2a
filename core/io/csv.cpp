#include "core/io/csv.h"

#include "core/io/atomic_file.h"
#include "core/io/text_util.h"
#include "core/util/check.h"

namespace moelab::io {

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double v) { return format_double(v); }

std::string csv_row(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + csv_field(fields[i]);
  return out + "\n";
}

CsvTable::CsvTable(std::vector<std::string> header) : columns_(header.size()), text_(csv_row(header)) {}

CsvTable& CsvTable::row(const std::vector<std::string>& fields) {
  MOELAB_CHECK(fields.size() == columns_, "CSV row " << rows_ << " has " << fields.size() << " fields, the header has "
                                                     << columns_);
  text_ += csv_row(fields);
  ++rows_;
  return *this;
}

CsvTable& CsvTable::row(const std::vector<double>& values) {
  std::vector<std::string> fields;
  for (double v : values) fields.push_back(csv_number(v));
  return row(fields);
}

CsvTable& CsvTable::row(const std::string& label, const std::vector<double>& values) {
  std::vector<std::string> fields{label};
  for (double v : values) fields.push_back(csv_number(v));
  return row(fields);
}

void CsvTable::write(const std::string& path) const { write_file_atomic(path, text_); }

std::vector<std::vector<std::string>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    any = true;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
      any = false;
    } else {
      field += c;
    }
  }
  if (any) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace moelab::io
