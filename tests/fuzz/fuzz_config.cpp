// libFuzzer target: TOML configs with `key=value` overrides, resolved against a schema that has every
// kind of key (ints with ranges, floats, bools, choices, lists, optional keys, a cross-field check).
// Input: TOML text, then optionally a line "%%" followed by one override per line.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "core/io/config.h"

namespace {

moelab::io::Schema make_schema() {
  using namespace moelab::io;
  Schema s("fuzz", "a schema with every kind of key");
  s.add_string("task", "fuzz", "task name");
  s.add_int("seed", 0, "seed").at_least(0);
  s.add_section("model.moe", "experts");
  s.add_int("model.d_model", 16, "width").range(1, 4096);
  s.add_int("model.moe.num_experts", 4, "experts").at_least(1);
  s.add_int("model.moe.top_k", 1, "experts per token").at_least(1);
  s.add_float("optim.lr", 1e-3, "learning rate").greater_than(0).at_most(10);
  s.add_bool("train.shuffle", true, "shuffle");
  s.add_choice("optim.name", "adamw", {"adamw", "sgd"}, "optimizer");
  s.add_int_list("model.conv", {8, 16}, "channels").at_least(1);
  s.add_float_list("data.mean", {0.5}, "means").range(0, 1);
  s.add_string_list("data.sets", {"a"}, "sets");
  s.add_string("data.path", "", "a path").no_default();
  s.add_open_section("notes", "free-form");
  s.add_check([](const Config& c, ConfigReporter& r) {
    if (c.get_int("model.moe.top_k") > c.get_int("model.moe.num_experts"))
      r.error("model.moe.top_k", "model.moe.top_k exceeds model.moe.num_experts");
  });
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moelab::io;
  static const Schema schema = make_schema();
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  if (size_t split = text.find("\n%%\n"); split != std::string::npos) {
    std::istringstream rest(text.substr(split + 4));
    text.resize(split);
    for (std::string line; std::getline(rest, line);) overrides.push_back(line);
  }
  try {
    Config cfg = Config::from_string(text, "fuzz.toml");
    cfg.resolve(schema, overrides);
    const std::string toml = cfg.to_toml(true);
    // The resolved config must read back (this is how config.toml of a run is reused by --resume).
    Config again = Config::from_string(cfg.to_toml(), "again.toml");
    again.resolve(schema);
    if (!config_differences(cfg, again).empty()) __builtin_trap();
    for (const auto& k : cfg.keys()) (void)cfg.value_text(k);
  } catch (const ConfigError&) {
  }
  return 0;
}
