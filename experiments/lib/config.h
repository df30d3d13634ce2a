#pragma once
// Experiment configs: a schema declared in code (ConfigSpec: keys, types, defaults, documentation,
// ranges, choices, cross-key checks) and the resolved, validated values a task reads (Config).
//
// Resolution (DESIGN.md §3): schema defaults <- the TOML file <- command-line overrides. Overrides are
// `key.sub=value` (the key must exist; the value is parsed as TOML and typed like the key, an integer
// is accepted where a float is expected, anything that is not TOML is taken as a bare string) and
// `+key.sub=value` (adds a key inside an open table, see ConfigSpec::open_table). Every error is a
// ConfigError whose message starts with where the value came from: "configs/x.toml:12:5", the override
// "<cmdline> model.moe.top_k=9", or "<default>"; unknown keys come with the nearest valid key.
//
//   void ToyTask::declare_config(ConfigSpec& spec) const {
//     spec.add_int("model.d_model", 64, "model width").range(1, 4096);
//     spec.add_string("data.kind", "clusters", "input distribution").choices({"clusters", "grid"});
//     spec.add_check([](const Config& c) {
//       if (c.get_int("model.moe.top_k") > c.get_int("model.moe.num_experts"))
//         c.fail("model.moe.top_k", "top_k = " + ... + " exceeds model.moe.num_experts = " + ...);
//     });
//   }
//   int64_t d = cfg.get_int("model.d_model");
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/util/check.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace moelab::exp {

// Bad configs and bad overrides (the program exits with status 2).
class ConfigError : public Error {
 public:
  using Error::Error;
};

enum class ConfigType { boolean, integer, floating, string, int_list, float_list, string_list };
const char* config_type_name(ConfigType t);  // "an integer", "a list of floats", ...

class Config;

// One declared key. Builder methods return *this so they chain.
struct ConfigKey {
  std::string key;  // dotted path, e.g. "model.moe.top_k"
  ConfigType type = ConfigType::integer;
  std::string doc;
  // The default, as TOML value text ("64", "3e-4", "\"topk\"", "[1, 2]").
  std::string default_text;
  std::optional<double> min, max;          // inclusive bounds for numbers (each list element too)
  bool min_exclusive = false, max_exclusive = false;
  std::vector<std::string> allowed;        // for strings (each element of a string list): the valid choices

  ConfigKey& range(double lo, double hi) { min = lo; max = hi; return *this; }
  ConfigKey& at_least(double lo) { min = lo; return *this; }
  ConfigKey& greater_than(double lo) { min = lo; min_exclusive = true; return *this; }
  ConfigKey& at_most(double hi) { max = hi; return *this; }
  ConfigKey& choices(std::vector<std::string> values) { allowed = std::move(values); return *this; }
};

// The schema of one task's config. The trainer declares the keys every task shares (task, seed, name,
// train.*, optim.*); the task adds its own in Task::declare_config.
class ConfigSpec {
 public:
  ConfigKey& add_bool(const std::string& key, bool def, const std::string& doc);
  ConfigKey& add_int(const std::string& key, int64_t def, const std::string& doc);
  ConfigKey& add_float(const std::string& key, double def, const std::string& doc);
  ConfigKey& add_string(const std::string& key, const std::string& def, const std::string& doc);
  ConfigKey& add_int_list(const std::string& key, std::vector<int64_t> def, const std::string& doc);
  ConfigKey& add_float_list(const std::string& key, std::vector<double> def, const std::string& doc);
  ConfigKey& add_string_list(const std::string& key, std::vector<std::string> def, const std::string& doc);
  // A table whose contents are free-form (e.g. "notes"): any key may be added with `+notes.x=...`.
  void open_table(const std::string& prefix, const std::string& doc);
  // A cross-key check run after every key has been typed and range-checked; throw via Config::fail.
  void add_check(std::function<void(const Config&)> check);
  // Documentation for a table (shown by --print-config as a comment above it).
  void document_table(const std::string& prefix, const std::string& doc);

  const std::vector<ConfigKey>& keys() const { return keys_; }
  const ConfigKey* find(const std::string& key) const;
  bool is_open(const std::string& key) const;  // inside an open table
  const std::vector<std::string>& open_tables() const { return open_tables_; }
  const std::vector<std::function<void(const Config&)>>& checks() const { return checks_; }
  const std::map<std::string, std::string>& table_docs() const { return table_docs_; }

 private:
  ConfigKey& add(ConfigKey key);
  std::vector<ConfigKey> keys_;
  std::vector<std::string> open_tables_;
  std::vector<std::function<void(const Config&)>> checks_;
  std::map<std::string, std::string> table_docs_;
};

// Resolved values. Getters throw ConfigError for undeclared keys or wrong types (a programming error).
class Config {
 public:
  Config();
  ~Config();
  Config(const Config&);
  Config& operator=(const Config&);
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  bool get_bool(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::vector<int64_t> get_int_list(const std::string& key) const;
  std::vector<double> get_float_list(const std::string& key) const;
  std::vector<std::string> get_string_list(const std::string& key) const;
  bool has(const std::string& key) const;

  // Where the key's value came from: "configs/x.toml:12:5", "<cmdline> key=value" or "<default>".
  std::string where(const std::string& key) const;
  // Throws ConfigError "<where>: <key>: <message>".
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // The resolved config as TOML text (what config.toml holds); with_docs adds the schema's
  // documentation strings as comments (for --print-config).
  std::string to_toml(bool with_docs = false) const;
  const toml::table& table() const;
  const ConfigSpec* spec() const { return spec_.get(); }

  // Used by the resolver (config_resolve.cpp).
  toml::table& mutable_table();
  void set_spec(std::shared_ptr<const ConfigSpec> spec) { spec_ = std::move(spec); }
  void set_origin(const std::string& key, std::string origin) { origins_[key] = std::move(origin); }
  const std::map<std::string, std::string>& origins() const { return origins_; }

 private:
  std::unique_ptr<toml::table> table_;
  std::shared_ptr<const ConfigSpec> spec_;
  std::map<std::string, std::string> origins_;  // explicit origins (overrides); file nodes carry their own
};

}  // namespace moelab::exp
