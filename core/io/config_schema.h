#pragma once
// A task's config schema, declared in code: each key's type, default, documentation and allowed range,
// plus cross-field checks; Config (core/io/config.h) validates a TOML file against it. Example: docs/io.md.
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/util/check.h"

namespace moelab::io {

class Config;

// Every user-facing config problem. what() holds one error per line; the CLI maps it to exit code 2.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

enum class ConfigType { Int, Float, Bool, String, Choice, IntList, FloatList, StringList };
std::string_view config_type_name(ConfigType t);  // "int", "float", "bool", "string", "choice", "list[int]", ...

using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                                 std::vector<std::string>>;
// TOML text of a value: 3, 0.0003, true, "topk", [3, 5].
std::string format_config_value(const ConfigValue& v);

// One declared key. The chainable setters add constraints: numbers (and list elements) are
// range-checked, choices must be one of `choices`.
struct KeySpec {
  std::string key;
  ConfigType type = ConfigType::Int;
  std::string doc;
  std::optional<ConfigValue> default_value;  // nullopt: absent unless given (add with +key=value)
  bool required = false;                     // the file or an override must set it
  std::optional<double> min, max;
  bool min_exclusive = false, max_exclusive = false;
  std::vector<std::string> choices;

  KeySpec& at_least(double v);
  KeySpec& at_most(double v);
  KeySpec& greater_than(double v);
  KeySpec& less_than(double v);
  KeySpec& range(double lo, double hi) { return at_least(lo).at_most(hi); }
  KeySpec& no_default();  // optional key: no default, absent from the resolved config unless set
  KeySpec& require();     // no default and must be set

  bool is_number() const { return type == ConfigType::Int || type == ConfigType::Float; }
  bool is_list() const {
    return type == ConfigType::IntList || type == ConfigType::FloatList || type == ConfigType::StringList;
  }
  // "" when `v` is within range, else the violated bound as text: ">= 1", "> 0", "<= 8".
  std::string range_violation(double v) const;
  // The constraint in words for documentation: ">= 1", "in [0, 1]", "one of: topk, expert_choice".
  std::string constraint_text() const;
};

// A problem found by a validator: the key it belongs to (placed at that key's origin) and the message.
struct ConfigIssue {
  std::string key;
  std::string message;
};

// Reports an error from a cross-field check; `key` positions it at that key's origin (file:line:col,
// override or default).
class ConfigReporter {
 public:
  virtual ~ConfigReporter() = default;
  virtual void error(std::string_view key, const std::string& message) = 0;
  virtual void error(const std::string& message) = 0;
};

using ConfigCheck = std::function<void(const Config&, ConfigReporter&)>;

class Schema {
 public:
  explicit Schema(std::string name = "", std::string doc = "");

  KeySpec& add_int(const std::string& key, int64_t default_value, std::string doc);
  KeySpec& add_float(const std::string& key, double default_value, std::string doc);
  KeySpec& add_bool(const std::string& key, bool default_value, std::string doc);
  KeySpec& add_string(const std::string& key, std::string default_value, std::string doc);
  KeySpec& add_choice(const std::string& key, std::string default_value, std::vector<std::string> choices,
                      std::string doc);
  KeySpec& add_int_list(const std::string& key, std::vector<int64_t> default_value, std::string doc);
  KeySpec& add_float_list(const std::string& key, std::vector<double> default_value, std::string doc);
  KeySpec& add_string_list(const std::string& key, std::vector<std::string> default_value, std::string doc);
  // Documentation of a table ("model.moe").
  void add_section(const std::string& prefix, std::string doc);
  // A free-form table: any keys below `prefix` are accepted as they are (e.g. "notes" or "tags").
  void add_open_section(const std::string& prefix, std::string doc);
  void add_check(ConfigCheck check);

  const std::string& name() const { return name_; }
  const std::string& doc() const { return doc_; }
  const std::deque<KeySpec>& keys() const { return keys_; }
  const KeySpec* find(std::string_view key) const;
  std::vector<std::string> key_names() const;
  // Table paths that hold declared keys: "model", "model.moe", ...
  std::vector<std::string> table_names() const;
  bool is_table(std::string_view path) const;
  bool in_open_section(std::string_view key) const;
  std::string section_doc(std::string_view prefix) const;
  const std::vector<ConfigCheck>& checks() const { return checks_; }

  // Aligned plain text for --help: key, type, default, doc and constraint per line, grouped by table.
  std::string render_help() const;
  // A Markdown table (| key | type | default | description |) for README/docs.
  std::string render_markdown() const;

 private:
  KeySpec& add(const std::string& key, ConfigType type, std::optional<ConfigValue> def, std::string doc);

  std::string name_, doc_;
  std::deque<KeySpec> keys_;  // deque: references returned by add_* stay valid
  std::vector<std::pair<std::string, std::string>> sections_, open_sections_;
  std::vector<ConfigCheck> checks_;
};

}  // namespace moelab::io
