#include "core/io/config_schema.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "core/io/text_util.h"

namespace moelab::io {
namespace {

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

bool valid_key_path(std::string_view key) {
  if (key.empty() || key.front() == '.' || key.back() == '.') return false;
  char prev = 0;
  for (char c : key) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok || (c == '.' && prev == '.')) return false;
    prev = c;
  }
  return true;
}

std::string parent_of(const std::string& key) {
  size_t dot = key.rfind('.');
  return dot == std::string::npos ? "" : key.substr(0, dot);
}

bool has_prefix(std::string_view key, std::string_view prefix) {
  return key.size() > prefix.size() && key.substr(0, prefix.size()) == prefix && key[prefix.size()] == '.';
}

}  // namespace

ConfigError::ConfigError(std::vector<std::string> errors) : Error(join_lines(errors)), errors_(std::move(errors)) {}

std::string_view config_type_name(ConfigType t) {
  switch (t) {
    case ConfigType::Int: return "int";
    case ConfigType::Float: return "float";
    case ConfigType::Bool: return "bool";
    case ConfigType::String: return "string";
    case ConfigType::Choice: return "choice";
    case ConfigType::IntList: return "list[int]";
    case ConfigType::FloatList: return "list[float]";
    case ConfigType::StringList: return "list[string]";
  }
  return "?";
}

namespace {
std::string toml_float(double v) {
  std::string s = format_double(v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a TOML float ("3" -> "3.0")
  return s;
}
}  // namespace

std::string format_config_value(const ConfigValue& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else if constexpr (std::is_same_v<T, int64_t>) return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>) return toml_float(x);
        else if constexpr (std::is_same_v<T, std::string>) return quote_string(x);
        else {
          std::string out = "[";
          for (size_t i = 0; i < x.size(); ++i) {
            if (i) out += ", ";
            if constexpr (std::is_same_v<T, std::vector<int64_t>>) out += std::to_string(x[i]);
            else if constexpr (std::is_same_v<T, std::vector<double>>) out += toml_float(x[i]);
            else out += quote_string(x[i]);
          }
          return out + "]";
        }
      },
      v);
}

// ---- KeySpec ----

namespace {
void check_default_in_range(const KeySpec& s) {
  if (!s.default_value) return;
  std::vector<double> values;
  if (auto* i = std::get_if<int64_t>(&*s.default_value)) values.push_back(double(*i));
  if (auto* d = std::get_if<double>(&*s.default_value)) values.push_back(*d);
  if (auto* il = std::get_if<std::vector<int64_t>>(&*s.default_value))
    for (int64_t x : *il) values.push_back(double(x));
  if (auto* dl = std::get_if<std::vector<double>>(&*s.default_value)) values = *dl;
  for (double v : values) {
    std::string bad = s.range_violation(v);
    MOELAB_CHECK(bad.empty(), "schema key '" << s.key << "': default " << format_double(v) << " violates " << bad);
  }
}
}  // namespace

KeySpec& KeySpec::at_least(double v) {
  MOELAB_CHECK(is_number() || type == ConfigType::IntList || type == ConfigType::FloatList,
               "schema key '" << key << "': ranges apply to numbers only");
  min = v;
  min_exclusive = false;
  check_default_in_range(*this);
  return *this;
}
KeySpec& KeySpec::greater_than(double v) {
  at_least(v);
  min_exclusive = true;
  check_default_in_range(*this);
  return *this;
}
KeySpec& KeySpec::at_most(double v) {
  MOELAB_CHECK(is_number() || type == ConfigType::IntList || type == ConfigType::FloatList,
               "schema key '" << key << "': ranges apply to numbers only");
  max = v;
  max_exclusive = false;
  check_default_in_range(*this);
  return *this;
}
KeySpec& KeySpec::less_than(double v) {
  at_most(v);
  max_exclusive = true;
  check_default_in_range(*this);
  return *this;
}
KeySpec& KeySpec::no_default() {
  default_value.reset();
  return *this;
}
KeySpec& KeySpec::require() {
  default_value.reset();
  required = true;
  return *this;
}

std::string KeySpec::range_violation(double v) const {
  if (min && (min_exclusive ? !(v > *min) : !(v >= *min))) return (min_exclusive ? "> " : ">= ") + format_double(*min);
  if (max && (max_exclusive ? !(v < *max) : !(v <= *max))) return (max_exclusive ? "< " : "<= ") + format_double(*max);
  return "";
}

std::string KeySpec::constraint_text() const {
  if (type == ConfigType::Choice) {
    std::string out = "one of: ";
    for (size_t i = 0; i < choices.size(); ++i) out += (i ? ", " : "") + choices[i];
    return out;
  }
  std::string lo = min ? (min_exclusive ? "> " : ">= ") + format_double(*min) : "";
  std::string hi = max ? (max_exclusive ? "< " : "<= ") + format_double(*max) : "";
  if (min && max && !min_exclusive && !max_exclusive)
    return "in [" + format_double(*min) + ", " + format_double(*max) + "]";
  if (!lo.empty() && !hi.empty()) return lo + ", " + hi;
  return lo + hi;
}

// ---- Schema ----

Schema::Schema(std::string name, std::string doc) : name_(std::move(name)), doc_(std::move(doc)) {}

KeySpec& Schema::add(const std::string& key, ConfigType type, std::optional<ConfigValue> def, std::string doc) {
  MOELAB_CHECK(valid_key_path(key), "schema key '" << key << "': use dotted bare keys (letters, digits, _ and -)");
  MOELAB_CHECK(!find(key), "schema key '" << key << "' is declared twice");
  MOELAB_CHECK(!is_table(key), "schema key '" << key << "' is already a table of other keys");
  for (std::string p = parent_of(key); !p.empty(); p = parent_of(p))
    MOELAB_CHECK(!find(p), "schema key '" << key << "' would make '" << p << "' a table, but it is a key");
  KeySpec& s = keys_.emplace_back();
  s.key = key;
  s.type = type;
  s.default_value = std::move(def);
  s.doc = std::move(doc);
  return s;
}

KeySpec& Schema::add_int(const std::string& key, int64_t def, std::string doc) {
  return add(key, ConfigType::Int, def, std::move(doc));
}
KeySpec& Schema::add_float(const std::string& key, double def, std::string doc) {
  return add(key, ConfigType::Float, def, std::move(doc));
}
KeySpec& Schema::add_bool(const std::string& key, bool def, std::string doc) {
  return add(key, ConfigType::Bool, def, std::move(doc));
}
KeySpec& Schema::add_string(const std::string& key, std::string def, std::string doc) {
  return add(key, ConfigType::String, std::move(def), std::move(doc));
}
KeySpec& Schema::add_choice(const std::string& key, std::string def, std::vector<std::string> choices, std::string doc) {
  MOELAB_CHECK(std::find(choices.begin(), choices.end(), def) != choices.end(),
               "schema key '" << key << "': default '" << def << "' is not one of its choices");
  KeySpec& s = add(key, ConfigType::Choice, std::move(def), std::move(doc));
  s.choices = std::move(choices);
  return s;
}
KeySpec& Schema::add_int_list(const std::string& key, std::vector<int64_t> def, std::string doc) {
  return add(key, ConfigType::IntList, std::move(def), std::move(doc));
}
KeySpec& Schema::add_float_list(const std::string& key, std::vector<double> def, std::string doc) {
  return add(key, ConfigType::FloatList, std::move(def), std::move(doc));
}
KeySpec& Schema::add_string_list(const std::string& key, std::vector<std::string> def, std::string doc) {
  return add(key, ConfigType::StringList, std::move(def), std::move(doc));
}

void Schema::add_section(const std::string& prefix, std::string doc) { sections_.emplace_back(prefix, std::move(doc)); }
void Schema::add_open_section(const std::string& prefix, std::string doc) {
  MOELAB_CHECK(valid_key_path(prefix), "schema section '" << prefix << "': use dotted bare keys");
  open_sections_.emplace_back(prefix, std::move(doc));
}
void Schema::add_check(ConfigCheck check) { checks_.push_back(std::move(check)); }

const KeySpec* Schema::find(std::string_view key) const {
  for (const auto& s : keys_)
    if (s.key == key) return &s;
  return nullptr;
}

std::vector<std::string> Schema::key_names() const {
  std::vector<std::string> out;
  for (const auto& s : keys_) out.push_back(s.key);
  return out;
}

std::vector<std::string> Schema::table_names() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add_parents = [&](const std::string& key) {
    std::vector<std::string> chain;
    for (std::string p = parent_of(key); !p.empty(); p = parent_of(p)) chain.push_back(p);
    for (auto it = chain.rbegin(); it != chain.rend(); ++it)
      if (seen.insert(*it).second) out.push_back(*it);
  };
  for (const auto& s : keys_) add_parents(s.key);
  for (const auto& [prefix, doc] : open_sections_) {
    add_parents(prefix + ".x");
  }
  return out;
}

bool Schema::is_table(std::string_view path) const {
  for (const auto& s : keys_)
    if (has_prefix(s.key, path)) return true;
  for (const auto& [prefix, doc] : open_sections_)
    if (prefix == path || has_prefix(prefix, path)) return true;
  return false;
}

bool Schema::in_open_section(std::string_view key) const {
  for (const auto& [prefix, doc] : open_sections_)
    if (has_prefix(key, prefix)) return true;
  return false;
}

std::string Schema::section_doc(std::string_view prefix) const {
  for (const auto& [p, doc] : sections_)
    if (p == prefix) return doc;
  for (const auto& [p, doc] : open_sections_)
    if (p == prefix) return doc;
  return "";
}

std::string Schema::render_help() const {
  size_t key_w = 3, type_w = 4, def_w = 7;
  auto default_text = [](const KeySpec& s) {
    return s.default_value ? format_config_value(*s.default_value) : (s.required ? "(required)" : "(unset)");
  };
  for (const auto& s : keys_) {
    key_w = std::max(key_w, s.key.size());
    type_w = std::max(type_w, config_type_name(s.type).size());
    def_w = std::max(def_w, default_text(s).size());
  }
  auto pad = [](std::string s, size_t w) { return s.append(w > s.size() ? w - s.size() : 0, ' '); };
  std::ostringstream os;
  if (!name_.empty()) os << name_ << (doc_.empty() ? "" : ": " + doc_) << "\n\n";
  os << pad("key", key_w) << "  " << pad("type", type_w) << "  " << pad("default", def_w) << "  description\n";
  std::string last_table = "\x01";
  for (const auto& s : keys_) {
    std::string table = parent_of(s.key);
    if (table != last_table) {
      std::string doc = section_doc(table);
      if (!doc.empty()) os << "[" << table << "] " << doc << "\n";
      last_table = table;
    }
    std::string doc = s.doc;
    std::string c = s.constraint_text();
    if (!c.empty()) doc += " (" + c + ")";
    os << pad(s.key, key_w) << "  " << pad(std::string(config_type_name(s.type)), type_w) << "  "
       << pad(default_text(s), def_w) << "  " << doc << "\n";
  }
  for (const auto& [prefix, doc] : open_sections_)
    os << pad(prefix + ".*", key_w) << "  " << pad("any", type_w) << "  " << pad("", def_w) << "  " << doc << "\n";
  return os.str();
}

std::string Schema::render_markdown() const {
  auto cell = [](std::string s) {
    std::string out;
    for (char c : s) out += (c == '|') ? std::string("\\|") : std::string(1, c);
    return out;
  };
  std::ostringstream os;
  os << "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& s : keys_) {
    std::string def = s.default_value ? "`" + format_config_value(*s.default_value) + "`" : (s.required ? "required" : "unset");
    std::string doc = s.doc;
    std::string c = s.constraint_text();
    if (!c.empty()) doc += " (" + c + ")";
    os << "| `" << s.key << "` | " << config_type_name(s.type) << " | " << cell(def) << " | " << cell(doc) << " |\n";
  }
  for (const auto& [prefix, doc] : open_sections_) os << "| `" << prefix << ".*` | any | | " << cell(doc) << " |\n";
  return os.str();
}

}  // namespace moelab::io
