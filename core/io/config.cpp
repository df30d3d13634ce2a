#include "core/io/config.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/io/atomic_file.h"
#include "core/io/text_util.h"

namespace moelab::io {
namespace {

std::vector<std::string> split_key(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join_key(const std::string& prefix, std::string_view key) {
  return prefix.empty() ? std::string(key) : prefix + "." + std::string(key);
}

bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  for (char c : k)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

bool valid_override_key(std::string_view key) {
  for (const auto& part : split_key(key))
    if (!is_bare_key(part)) return false;
  return true;
}

std::string toml_key(std::string_view k) { return is_bare_key(k) ? std::string(k) : quote_string(k); }

std::string toml_float(double v) {
  std::string s = format_double(v);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

// TOML text of a node: 3, 0.5, "x", [1, 2], { a = 1 }.
std::string node_text(const toml::node& n) {
  if (auto* i = n.as_integer()) return std::to_string(i->get());
  if (auto* f = n.as_floating_point()) return toml_float(f->get());
  if (auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  if (auto* s = n.as_string()) return quote_string(s->get());
  if (auto* a = n.as_array()) {
    std::string out = "[";
    for (size_t i = 0; i < a->size(); ++i) out += (i ? ", " : "") + node_text(*a->get(i));
    return out + "]";
  }
  if (auto* t = n.as_table()) {
    std::string out = "{ ";
    bool first = true;
    for (auto&& [k, v] : *t) {
      out += (first ? "" : ", ") + toml_key(k.str()) + " = " + node_text(v);
      first = false;
    }
    return out + (first ? "}" : " }");
  }
  std::ostringstream os;  // dates and times
  n.visit([&](const auto& x) { os << x; });
  return os.str();
}

// "integer 3", "string \"abc\"", "table"
std::string describe(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::integer: return "integer " + node_text(n);
    case toml::node_type::floating_point: return "float " + node_text(n);
    case toml::node_type::boolean: return "bool " + node_text(n);
    case toml::node_type::string: return "string " + node_text(n);
    case toml::node_type::array: return "array " + node_text(n);
    case toml::node_type::table: return "table";
    default: return "date/time " + node_text(n);
  }
}

std::string expected_text(const KeySpec& s) {
  switch (s.type) {
    case ConfigType::Int: return "an integer";
    case ConfigType::Float: return "a number";
    case ConfigType::Bool: return "true or false";
    case ConfigType::String: return "a string";
    case ConfigType::Choice: return "a string (" + s.constraint_text() + ")";
    case ConfigType::IntList: return "a list of integers";
    case ConfigType::FloatList: return "a list of numbers";
    case ConfigType::StringList: return "a list of strings";
  }
  return "?";
}

ConfigOrigin file_origin(const toml::source_region& r, const std::string& fallback_source) {
  ConfigOrigin o;
  o.kind = ConfigOrigin::Kind::File;
  o.source = r.path ? std::string(*r.path) : fallback_source;
  o.line = static_cast<int>(r.begin.line);
  o.column = static_cast<int>(r.begin.column);
  return o;
}

// Records the position of every key and value (list elements as "a.b[i]") below `t`.
void record_positions(const toml::table& t, const std::string& prefix, const std::string& source,
                      std::map<std::string, ConfigOrigin>& values, std::map<std::string, ConfigOrigin>& keys) {
  for (auto&& [k, v] : t) {
    const std::string path = join_key(prefix, k.str());
    keys[path] = file_origin(k.source(), source);
    values[path] = file_origin(v.source(), source);
    if (auto* sub = v.as_table()) record_positions(*sub, path, source, values, keys);
    if (auto* arr = v.as_array())
      for (size_t i = 0; i < arr->size(); ++i)
        values[path + "[" + std::to_string(i) + "]"] = file_origin(arr->get(i)->source(), source);
  }
}

void collect_leaves(const toml::table& t, const std::string& prefix, std::vector<std::string>& out) {
  for (auto&& [k, v] : t) {
    const std::string path = join_key(prefix, k.str());
    if (auto* sub = v.as_table()) collect_leaves(*sub, path, out);
    else out.push_back(path);
  }
}

// Parses an override value as TOML ("v = <raw>"); nullopt when it is not a single TOML value.
std::optional<toml::table> parse_override_value(const std::string& raw) {
#if TOML_EXCEPTIONS
  try {
    toml::table t = toml::parse(std::string_view("v = " + raw), std::string_view("<override>"));
    if (t.size() == 1 && t.contains("v")) return t;
  } catch (const toml::parse_error&) {
  }
  return std::nullopt;
#else
  toml::parse_result r = toml::parse(std::string_view("v = " + raw), std::string_view("<override>"));
  if (!r || r.table().size() != 1 || !r.table().contains("v")) return std::nullopt;
  return std::move(r).table();
#endif
}

// Converts the node `parent[key]` to the schema type in place (ints where floats are expected; for
// overrides, any value where a string is expected, taken as typed). Returns an error text or "".
std::string conform(toml::table& parent, const std::string& key, const KeySpec& spec, const std::string* raw) {
  toml::node& n = *parent.get(key);
  auto mismatch = [&] { return "expected " + expected_text(spec) + ", got " + describe(n); };
  switch (spec.type) {
    case ConfigType::Int:
      return n.is_integer() ? "" : mismatch();
    case ConfigType::Float:
      if (n.is_integer()) parent.insert_or_assign(key, static_cast<double>(n.as_integer()->get()));
      else if (!n.is_floating_point()) return mismatch();
      return "";
    case ConfigType::Bool:
      return n.is_boolean() ? "" : mismatch();
    case ConfigType::String:
    case ConfigType::Choice:
      if (n.is_string()) return "";
      if (raw) {
        parent.insert_or_assign(key, *raw);
        return "";
      }
      return mismatch();
    case ConfigType::IntList:
    case ConfigType::FloatList:
    case ConfigType::StringList: {
      auto* arr = n.as_array();
      if (!arr) return mismatch();
      toml::array converted;
      for (size_t i = 0; i < arr->size(); ++i) {
        const toml::node& e = *arr->get(i);
        const std::string at = "element " + std::to_string(i) + " is " + describe(e);
        if (spec.type == ConfigType::IntList) {
          if (!e.is_integer()) return "expected " + expected_text(spec) + ", but " + at;
          converted.push_back(e.as_integer()->get());
        } else if (spec.type == ConfigType::FloatList) {
          if (e.is_integer()) converted.push_back(static_cast<double>(e.as_integer()->get()));
          else if (e.is_floating_point()) converted.push_back(e.as_floating_point()->get());
          else return "expected " + expected_text(spec) + ", but " + at;
        } else {
          if (!e.is_string()) return "expected " + expected_text(spec) + ", but " + at;
          converted.push_back(e.as_string()->get());
        }
      }
      parent.insert_or_assign(key, std::move(converted));
      return "";
    }
  }
  return "";
}

toml::table* ensure_table(toml::table& root, const std::vector<std::string>& parts, size_t count, std::string* blocker) {
  toml::table* t = &root;
  std::string path;
  for (size_t i = 0; i < count; ++i) {
    path = join_key(path, parts[i]);
    toml::node* child = t->get(parts[i]);
    if (!child) child = &t->insert(parts[i], toml::table{}).first->second;
    if (!child->is_table()) {
      if (blocker) *blocker = "'" + path + "' is " + describe(*child) + ", not a table";
      return nullptr;
    }
    t = child->as_table();
  }
  return t;
}

void insert_value(toml::table& t, const std::string& key, const ConfigValue& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::string>) {
          t.insert_or_assign(key, x);
        } else {
          toml::array a;
          for (const auto& e : x) a.push_back(e);
          t.insert_or_assign(key, std::move(a));
        }
      },
      v);
}

}  // namespace

std::string ConfigOrigin::str() const {
  switch (kind) {
    case Kind::File: return source + ":" + std::to_string(line) + ":" + std::to_string(column);
    case Kind::Override: return "<override " + std::to_string(override_index) + ": " + override_text + ">";
    case Kind::Default: return "<default>";
  }
  return "?";
}

// ---- loading ----

Config Config::from_string(std::string_view text, const std::string& source_name) {
  Config c;
  c.source_ = source_name;
#if TOML_EXCEPTIONS
  try {
    c.root_ = toml::parse(text, std::string_view(source_name));
  } catch (const toml::parse_error& e) {
    throw ConfigError({file_origin(e.source(), source_name).str() + ": " + std::string(e.description())});
  }
#else
  toml::parse_result r = toml::parse(text, std::string_view(source_name));
  if (!r) throw ConfigError({file_origin(r.error().source(), source_name).str() + ": " + std::string(r.error().description())});
  c.root_ = std::move(r).table();
#endif
  record_positions(c.root_, "", source_name, c.origins_, c.key_origins_);
  return c;
}

Config Config::from_file(const std::string& path) {
  std::string text;
  try {
    text = read_file_bytes(path);
  } catch (const Error&) {
    throw ConfigError({path + ": cannot read the config file (does it exist?)"});
  }
  return from_string(text, path);
}

Config Config::from_files(const std::vector<std::string>& paths) {
  Config c;
  for (const auto& p : paths) c.merge(from_file(p));
  return c;
}

void Config::merge(const Config& other) {
  // Tables merge key by key; any other value replaces ours (with its positions).
  std::function<void(toml::table&, const toml::table&, const std::string&)> merge_into =
      [&](toml::table& dst, const toml::table& src, const std::string& prefix) {
        for (auto&& [k, v] : src) {
          const std::string path = join_key(prefix, k.str());
          toml::node* mine = dst.get(k.str());
          if (mine && mine->is_table() && v.is_table()) {
            merge_into(*mine->as_table(), *v.as_table(), path);
            continue;
          }
          const std::string name(k.str());  // lambdas may not capture structured bindings in clang 14
          v.visit([&](const auto& x) { dst.insert_or_assign(name, x); });
          auto under = [&](const std::string& key) {
            return key == path || key.rfind(path + ".", 0) == 0 || key.rfind(path + "[", 0) == 0;
          };
          for (auto* m : {&origins_, &key_origins_})
            std::erase_if(*m, [&](const auto& entry) { return under(entry.first); });
          for (const auto& [key, o] : other.origins_)
            if (under(key)) origins_[key] = o;
          for (const auto& [key, o] : other.key_origins_)
            if (under(key)) key_origins_[key] = o;
        }
      };
  merge_into(root_, other.root_, "");
  if (!other.source_.empty()) source_ = other.source_;
}

// ---- resolving ----

class ConfigResolver : public ConfigReporter {
 public:
  ConfigResolver(Config& c, const Schema& s) : c_(c), s_(s) {}

  void apply_override(int index, const std::string& text) {
    ConfigOrigin origin;
    origin.kind = ConfigOrigin::Kind::Override;
    origin.override_index = index;
    origin.override_text = text;
    const std::string where = origin.str() + ": ";
    enum class Mode { Set, Add, AddOrSet } mode = Mode::Set;
    size_t start = 0;
    if (text.rfind("++", 0) == 0) mode = Mode::AddOrSet, start = 2;
    else if (text.rfind("+", 0) == 0) mode = Mode::Add, start = 1;
    const size_t eq = text.find('=');
    if (eq == std::string::npos) return fail(where + "expected key=value (or +key=value to add a key)");
    const std::string key = text.substr(start, eq - start), raw = text.substr(eq + 1);
    if (!valid_override_key(key))
      return fail(where + "'" + key + "' is not a valid key (dotted bare keys: letters, digits, _ and -)");
    const KeySpec* spec = s_.find(key);
    const toml::node* existing = c_.find_node(key);
    const bool exists = existing || (spec && spec->default_value);
    const bool known = spec || s_.in_open_section(key);
    if ((existing && existing->is_table()) || s_.is_table(key))
      return fail(where + "'" + key + "' is a table; set its keys one by one ('" + key + ".<name>=...')");
    if (!known) return fail(where + unknown_key_message(key, false));
    if (mode == Mode::Set && !exists)
      return fail(where + "'" + key + "' is not in the config or its defaults; use '+" + text + "' to add it");
    if (mode == Mode::Add && exists)
      return fail(where + "'" + key + "' already exists; override it with '" + text.substr(1) + "'");

    std::optional<toml::table> holder = parse_override_value(raw);
    if (!holder) {
      holder.emplace();
      holder->insert("v", raw);  // not TOML: a bare string
    }
    if (spec) {
      std::string bad = conform(*holder, "v", *spec, &raw);
      if (!bad.empty()) return fail(where + key + ": " + bad);
    } else if (existing) {
      std::string bad = conform_like(*holder, *existing, raw);
      if (!bad.empty()) return fail(where + key + ": " + bad);
    }
    const auto parts = split_key(key);
    std::string blocker;
    toml::table* parent = ensure_table(c_.root_, parts, parts.size() - 1, &blocker);
    if (!parent) return fail(where + "cannot set '" + key + "': " + blocker);
    holder->get("v")->visit([&](auto& x) { parent->insert_or_assign(parts.back(), std::move(x)); });
    for (auto it = c_.origins_.lower_bound(key); it != c_.origins_.end() && it->first.rfind(key, 0) == 0;)
      it = (it->first == key || it->first[key.size()] == '[') ? c_.origins_.erase(it) : std::next(it);
    c_.origins_[key] = origin;
  }

  void validate() {
    walk(c_.root_, "");
    for (const auto& spec : s_.keys()) {
      if (c_.find_node(spec.key) || invalid_.count(spec.key)) continue;
      if (spec.required) {
        fail((c_.source_.empty() ? std::string("<config>") : c_.source_) + ": missing required key '" + spec.key +
             "' (" + spec.doc + ")");
        continue;
      }
      if (!spec.default_value) continue;
      const auto parts = split_key(spec.key);
      toml::table* parent = ensure_table(c_.root_, parts, parts.size() - 1, nullptr);
      if (!parent) continue;  // a value sits where the table should be; already reported
      insert_value(*parent, parts.back(), *spec.default_value);
      c_.origins_[spec.key] = ConfigOrigin{};
    }
  }

  void run_checks() {
    for (const auto& check : s_.checks()) {
      std::set<std::string> read;
      pending_.clear();
      c_.read_log_ = &read;
      bool threw = false;
      try {
        check(c_, *this);
      } catch (const Error&) {
        threw = true;  // tolerated only when the check touched a key that is already reported
        c_.read_log_ = nullptr;
        if (!touches_invalid(read)) throw;
      }
      c_.read_log_ = nullptr;
      if (!threw && !touches_invalid(read))
        for (auto& e : pending_) errors_.push_back(std::move(e));
    }
  }

  // ConfigReporter
  void error(std::string_view key, const std::string& message) override {
    pending_.push_back(c_.origin(key).str() + ": " + message);
  }
  void error(const std::string& message) override {
    pending_.push_back((c_.source_.empty() ? std::string("<config>") : c_.source_) + ": " + message);
  }

  std::vector<std::string> errors_;

 private:
  void fail(std::string message) { errors_.push_back(std::move(message)); }

  bool touches_invalid(const std::set<std::string>& read) const {
    for (const auto& k : read)
      if (invalid_.count(k)) return true;
    return false;
  }

  // "unknown key 'a.b'; did you mean 'a.c'?" using the declared keys and tables.
  std::string unknown_key_message(const std::string& path, bool is_table) const {
    std::vector<std::string> candidates = is_table ? s_.table_names() : s_.key_names();
    std::string msg = std::string("unknown ") + (is_table ? "table" : "key") + " '" + path + "'";
    // The right name in the wrong table ("moe.top_k" for "model.moe.top_k") beats a near spelling.
    std::optional<std::string> near;
    const std::string leaf = split_key(path).back();
    for (const auto& c : candidates)
      if (split_key(c).back() == leaf) {
        near = c;
        break;
      }
    if (!near) near = nearest_match(path, candidates);
    if (near) msg += "; did you mean '" + *near + "'?";
    else if (!s_.name().empty()) msg += " (see the keys of '" + s_.name() + "' with --help)";
    return msg;
  }

  // An open-section key that the file already has: typed like the existing value.
  static std::string conform_like(toml::table& holder, const toml::node& existing, const std::string& raw) {
    toml::node& n = *holder.get("v");
    if (existing.is_string() && !n.is_string()) holder.insert_or_assign("v", raw);
    else if (existing.is_floating_point() && n.is_integer())
      holder.insert_or_assign("v", static_cast<double>(n.as_integer()->get()));
    else if (existing.type() != n.type())
      return "expected " + describe(existing).substr(0, describe(existing).find(' ')) + " like the current value, got " +
             describe(n);
    return "";
  }

  ConfigOrigin value_origin(const std::string& path) const {
    auto it = c_.origins_.find(path);
    return it != c_.origins_.end() ? it->second : ConfigOrigin{};
  }
  ConfigOrigin key_origin(const std::string& path) const {
    auto it = c_.key_origins_.find(path);
    return it != c_.key_origins_.end() ? it->second : value_origin(path);
  }

  void walk(toml::table& t, const std::string& prefix) {
    std::vector<std::string> names;
    for (auto&& [k, v] : t) names.emplace_back(k.str());
    for (const auto& name : names) {
      const std::string path = join_key(prefix, name);
      toml::node& n = *t.get(name);
      if (const KeySpec* spec = s_.find(path)) {
        check_value(t, name, path, *spec);
      } else if (s_.in_open_section(path)) {
        continue;
      } else if (s_.is_table(path)) {
        if (auto* sub = n.as_table()) walk(*sub, path);
        else {
          fail(value_origin(path).str() + ": '" + path + "' must be a table of keys, got " + describe(n));
          for (const auto& spec : s_.keys())  // their defaults cannot be filled in either
            if (spec.key.rfind(path + ".", 0) == 0) invalid_.insert(spec.key);
        }
      } else {
        fail(key_origin(path).str() + ": " + unknown_key_message(path, n.is_table()));
      }
    }
  }

  void check_value(toml::table& parent, const std::string& name, const std::string& path, const KeySpec& spec) {
    const ConfigOrigin origin = value_origin(path);
    const bool from_override = origin.kind == ConfigOrigin::Kind::Override;
    std::string bad = conform(parent, name, spec, nullptr);
    if (!bad.empty()) {
      fail(origin.str() + ": " + path + ": " + bad);
      invalid_.insert(path);
      parent.erase(name);  // the default (if any) stands in, so that checks can still run
      return;
    }
    const toml::node& n = *parent.get(name);
    auto report_range = [&](const std::string& label, const ConfigOrigin& at, double v, const std::string& text) {
      std::string violated = spec.range_violation(v);
      if (violated.empty()) return true;
      fail(at.str() + ": " + label + " = " + text + " must be " + violated);
      return false;
    };
    bool ok = true;
    if (spec.type == ConfigType::Int) ok = report_range(path, origin, double(n.as_integer()->get()), node_text(n));
    if (spec.type == ConfigType::Float) ok = report_range(path, origin, n.as_floating_point()->get(), node_text(n));
    if (spec.type == ConfigType::IntList || spec.type == ConfigType::FloatList) {
      const toml::array& a = *n.as_array();
      for (size_t i = 0; i < a.size(); ++i) {
        const std::string elem = path + "[" + std::to_string(i) + "]";
        const ConfigOrigin at = from_override ? origin : value_origin(elem).kind == ConfigOrigin::Kind::File ? value_origin(elem) : origin;
        double v = a.get(i)->is_integer() ? double(a.get(i)->as_integer()->get()) : a.get(i)->as_floating_point()->get();
        ok &= report_range(elem, at, v, node_text(*a.get(i)));
      }
    }
    if (spec.type == ConfigType::Choice) {
      const std::string v = n.as_string()->get();
      if (std::find(spec.choices.begin(), spec.choices.end(), v) == spec.choices.end()) {
        std::string msg = origin.str() + ": " + path + " = " + quote_string(v) + " is not " + spec.constraint_text();
        if (auto near = nearest_match(v, spec.choices)) msg += "; did you mean '" + *near + "'?";
        fail(msg);
        ok = false;
      }
    }
    if (!ok) invalid_.insert(path);
  }

  Config& c_;
  const Schema& s_;
  std::set<std::string> invalid_;
  std::vector<std::string> pending_;
};

void Config::resolve(const Schema& schema, const std::vector<std::string>& overrides) {
  schema_ = std::make_shared<const Schema>(schema);
  ConfigResolver r(*this, *schema_);
  for (size_t i = 0; i < overrides.size(); ++i) r.apply_override(static_cast<int>(i + 1), overrides[i]);
  overrides_ = overrides;
  r.validate();
  r.run_checks();
  if (!r.errors_.empty()) throw ConfigError(r.errors_);
}

Config load_config(const Schema& schema, const std::string& path, const std::vector<std::string>& overrides) {
  Config c = path.empty() ? Config() : Config::from_file(path);
  c.resolve(schema, overrides);
  return c;
}

// ---- access ----

const toml::node* Config::find_node(std::string_view key) const {
  const toml::node* n = &root_;
  for (const auto& part : split_key(key)) {
    const toml::table* t = n->as_table();
    if (!t) return nullptr;
    n = t->get(part);
    if (!n) return nullptr;
  }
  return n;
}

const toml::node& Config::typed_node(std::string_view key, ConfigType want) const {
  const KeySpec* spec = schema_ ? schema_->find(key) : nullptr;
  if (schema_ && !spec && !schema_->in_open_section(key)) {
    std::string msg = "config key '" + std::string(key) + "' is not declared in schema '" + schema_->name() + "'";
    if (auto near = nearest_match(key, schema_->key_names())) msg += "; did you mean '" + *near + "'?";
    MOELAB_FAIL(msg);
  }
  const bool compatible = !spec || spec->type == want || (want == ConfigType::String && spec->type == ConfigType::Choice);
  MOELAB_CHECK(compatible, "config key '" << key << "' is a " << config_type_name(spec->type) << ", not a "
                                          << config_type_name(want));
  if (read_log_) read_log_->insert(std::string(key));
  const toml::node* n = find_node(key);
  MOELAB_CHECK(n, "config key '" << key << "' is not set (it has no default; check has() first)");
  bool ok = false;
  switch (want) {
    case ConfigType::Int: ok = n->is_integer(); break;
    case ConfigType::Float: ok = n->is_floating_point() || n->is_integer(); break;
    case ConfigType::Bool: ok = n->is_boolean(); break;
    case ConfigType::String:
    case ConfigType::Choice: ok = n->is_string(); break;
    default: ok = n->is_array(); break;
  }
  MOELAB_CHECK(ok, "config key '" << key << "' holds " << describe(*n) << ", not a " << config_type_name(want));
  return *n;
}

int64_t Config::get_int(std::string_view key) const { return typed_node(key, ConfigType::Int).as_integer()->get(); }
double Config::get_float(std::string_view key) const {
  const toml::node& n = typed_node(key, ConfigType::Float);
  return n.is_integer() ? double(n.as_integer()->get()) : n.as_floating_point()->get();
}
bool Config::get_bool(std::string_view key) const { return typed_node(key, ConfigType::Bool).as_boolean()->get(); }
std::string Config::get_string(std::string_view key) const {
  return typed_node(key, ConfigType::String).as_string()->get();
}

std::vector<int64_t> Config::get_int_list(std::string_view key) const {
  std::vector<int64_t> out;
  for (const auto& e : *typed_node(key, ConfigType::IntList).as_array()) {
    MOELAB_CHECK(e.is_integer(), "config key '" << key << "' holds " << describe(e) << ", not an integer");
    out.push_back(e.as_integer()->get());
  }
  return out;
}
std::vector<double> Config::get_float_list(std::string_view key) const {
  std::vector<double> out;
  for (const auto& e : *typed_node(key, ConfigType::FloatList).as_array()) {
    MOELAB_CHECK(e.is_number(), "config key '" << key << "' holds " << describe(e) << ", not a number");
    out.push_back(e.is_integer() ? double(e.as_integer()->get()) : e.as_floating_point()->get());
  }
  return out;
}
std::vector<std::string> Config::get_string_list(std::string_view key) const {
  std::vector<std::string> out;
  for (const auto& e : *typed_node(key, ConfigType::StringList).as_array()) {
    MOELAB_CHECK(e.is_string(), "config key '" << key << "' holds " << describe(e) << ", not a string");
    out.push_back(e.as_string()->get());
  }
  return out;
}

bool Config::has(std::string_view key) const { return find_node(key) != nullptr; }

ConfigOrigin Config::origin(std::string_view key) const {
  auto it = origins_.find(std::string(key));
  return it != origins_.end() ? it->second : ConfigOrigin{};
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> leaves;
  collect_leaves(root_, "", leaves);
  std::vector<std::string> out;
  if (schema_)
    for (const auto& s : schema_->keys())
      if (std::find(leaves.begin(), leaves.end(), s.key) != leaves.end()) out.push_back(s.key);
  std::vector<std::string> rest;
  for (const auto& l : leaves)
    if (std::find(out.begin(), out.end(), l) == out.end()) rest.push_back(l);
  std::sort(rest.begin(), rest.end());
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

std::string Config::value_text(std::string_view key) const {
  const toml::node* n = find_node(key);
  MOELAB_CHECK(n, "config key '" << key << "' is not set");
  return node_text(*n);
}

std::string Config::to_toml(bool with_comments) const {
  // Group leaves by table, tables in order of first appearance; root keys must come first in TOML.
  std::vector<std::string> tables;
  std::map<std::string, std::vector<std::string>> by_table;
  for (const auto& key : keys()) {
    size_t dot = key.rfind('.');
    std::string table = dot == std::string::npos ? "" : key.substr(0, dot);
    if (!by_table.count(table)) tables.push_back(table);
    by_table[table].push_back(key);
  }
  std::stable_partition(tables.begin(), tables.end(), [](const std::string& t) { return t.empty(); });
  std::ostringstream os;
  bool first = true;
  for (const auto& table : tables) {
    if (!table.empty()) {
      os << (first ? "" : "\n");
      if (with_comments && schema_ && !schema_->section_doc(table).empty())
        os << "# " << schema_->section_doc(table) << "\n";
      std::string header;
      for (const auto& part : split_key(table)) header += (header.empty() ? "" : ".") + toml_key(part);
      os << "[" << header << "]\n";
    }
    first = false;
    for (const auto& key : by_table[table]) {
      const KeySpec* spec = schema_ ? schema_->find(key) : nullptr;
      if (with_comments && spec) {
        std::string c = spec->constraint_text();
        os << "# " << spec->doc << (c.empty() ? "" : " (" + c + ")") << "\n";
      }
      os << toml_key(split_key(key).back()) << " = " << value_text(key);
      if (with_comments) {
        ConfigOrigin o = origin(key);
        if (o.kind == ConfigOrigin::Kind::Default) os << "  # default";
        if (o.kind == ConfigOrigin::Kind::Override) os << "  # override " << o.override_index;
      }
      os << "\n";
    }
  }
  return os.str();
}

std::vector<std::string> config_differences(const Config& a, const Config& b) {
  std::set<std::string> keys;
  for (const auto& k : a.keys()) keys.insert(k);
  for (const auto& k : b.keys()) keys.insert(k);
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (!a.has(k) || !b.has(k) || a.value_text(k) != b.value_text(k)) out.push_back(k);
  }
  return out;
}

}  // namespace moelab::io
