#pragma once
// Experiment configs: a TOML file plus `key=value` overrides, validated against a task's Schema; every
// error names the file:line:col or override it came from. Grammar and examples: docs/io.md.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "core/io/config_schema.h"

namespace moelab::io {

// Where a value came from.
struct ConfigOrigin {
  enum class Kind { File, Override, Default } kind = Kind::Default;
  std::string source;  // file path (File)
  int line = 0, column = 0;
  int override_index = 0;     // 1-based (Override)
  std::string override_text;  // as given (Override)

  // "configs/x.toml:12:5", "<override 2: a.b=3>", "<default>"
  std::string str() const;
};

class Config {
 public:
  Config() = default;
  // Throws ConfigError "path:line:col: ..." for unreadable files and TOML syntax errors.
  static Config from_file(const std::string& path);
  static Config from_string(std::string_view toml_text, const std::string& source_name = "<string>");
  // Later files override earlier ones key by key (tables merge).
  static Config from_files(const std::vector<std::string>& paths);
  void merge(const Config& other);

  // Applies `overrides`, then validates against `schema` and fills defaults. Collects every error
  // (overrides, unknown keys, wrong types, ranges, missing keys, cross-field checks) and throws one
  // ConfigError with one error per line.
  void resolve(const Schema& schema, const std::vector<std::string>& overrides = {});
  bool resolved() const { return schema_ != nullptr; }

  // Typed getters. Asking for a key the schema does not declare, or with the wrong type, is a
  // programming error (moelab::Error with the nearest declared key).
  int64_t get_int(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;  // also for choices
  std::vector<int64_t> get_int_list(std::string_view key) const;
  std::vector<double> get_float_list(std::string_view key) const;
  std::vector<std::string> get_string_list(std::string_view key) const;
  bool has(std::string_view key) const;  // set in the resolved config (optional keys may be absent)
  ConfigOrigin origin(std::string_view key) const;

  // Keys under a table, e.g. section("model.moe").get_int("top_k").
  class Section {
   public:
    Section(const Config& c, std::string prefix) : config_(c), prefix_(std::move(prefix)) {}
    int64_t get_int(std::string_view k) const { return config_.get_int(key(k)); }
    double get_float(std::string_view k) const { return config_.get_float(key(k)); }
    bool get_bool(std::string_view k) const { return config_.get_bool(key(k)); }
    std::string get_string(std::string_view k) const { return config_.get_string(key(k)); }
    std::vector<int64_t> get_int_list(std::string_view k) const { return config_.get_int_list(key(k)); }
    std::vector<double> get_float_list(std::string_view k) const { return config_.get_float_list(key(k)); }
    std::vector<std::string> get_string_list(std::string_view k) const { return config_.get_string_list(key(k)); }
    bool has(std::string_view k) const { return config_.has(key(k)); }
    std::string key(std::string_view k) const { return prefix_ + "." + std::string(k); }

   private:
    const Config& config_;
    std::string prefix_;
  };
  Section section(std::string prefix) const { return Section(*this, std::move(prefix)); }

  // Every leaf key that is set, dotted ("model.moe.top_k"), in schema order then the rest sorted.
  std::vector<std::string> keys() const;
  // TOML text of the value at `key` ("2", "0.0003", "\"topk\"", "[3, 5]").
  std::string value_text(std::string_view key) const;
  // The config as TOML, tables in schema order. `with_comments` adds each key's documentation and
  // marks values that come from defaults or overrides.
  std::string to_toml(bool with_comments = false) const;
  // The overrides applied by resolve(), as given (for overrides.txt).
  const std::vector<std::string>& overrides() const { return overrides_; }
  const toml::table& table() const { return root_; }

 private:
  friend class ConfigResolver;
  const toml::node* find_node(std::string_view key) const;
  const toml::node& typed_node(std::string_view key, ConfigType want) const;

  toml::table root_;
  std::string source_;                         // the (last) file it was read from
  // Positions are kept here rather than in the TOML nodes, whose copies drop them.
  std::map<std::string, ConfigOrigin> origins_;      // each value ("a.b", list elements "a.b[2]")
  std::map<std::string, ConfigOrigin> key_origins_;  // each key as written in a file
  std::vector<std::string> overrides_;
  std::shared_ptr<const Schema> schema_;
  mutable std::set<std::string>* read_log_ = nullptr;  // keys read by a running cross-field check
};

// from_file(path) (or an empty config when path is ""), then resolve(schema, overrides).
Config load_config(const Schema& schema, const std::string& path, const std::vector<std::string>& overrides = {});

// Keys whose values differ between two resolved configs, sorted (e.g. to refuse changed shapes on resume).
std::vector<std::string> config_differences(const Config& a, const Config& b);

}  // namespace moelab::io
