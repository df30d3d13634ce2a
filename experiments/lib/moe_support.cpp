// model.moe.* keys: declaration from the core's key table, validation at the key, placement.
#include "experiments/lib/moe_support.h"

#include "core/moe/moe_layer.h"

namespace moelab::experiments {

void declare_moe_config(Schema& s, int64_t default_every, const std::string& prefix) {
  s.add_section(prefix, "Mixture-of-Experts layers (docs/moe.md)");
  for (const auto& k : moe::moe_config_keys()) {
    const std::string key = prefix + "." + k.key;
    switch (k.type) {
      case moe::MoEKeyType::boolean: s.add_bool(key, k.default_text == "true", k.doc); break;
      case moe::MoEKeyType::integer: s.add_int(key, std::stoll(k.default_text), k.doc); break;
      case moe::MoEKeyType::floating: s.add_float(key, std::stod(k.default_text), k.doc); break;
      case moe::MoEKeyType::string: {
        std::string def = k.default_text;
        if (def.size() >= 2 && def.front() == '"' && def.back() == '"') def = def.substr(1, def.size() - 2);
        if (k.allowed.empty()) s.add_string(key, def, k.doc);
        else s.add_choice(key, def, k.allowed, k.doc);
        break;
      }
    }
  }
  s.add_int(prefix + ".every", default_every,
            "an MoE FFN in every N-th block (blocks N-1, 2N-1, ...; V-MoE: 2); 0: a dense model")
      .at_least(0);
  s.add_int_list(prefix + ".layers", {}, "explicit MoE block indices (overrides " + prefix + ".every)");
  s.add_check([prefix](const Config& c, io::ConfigReporter& r) {
    for (const auto& issue : moe_config_from(c, prefix).validate(prefix)) r.error(issue.key, issue.message);
  });
}

moe::MoEConfig moe_config_from(const Config& cfg, const std::string& prefix) {
  moe::MoEConfig mc;
  for (const auto& k : moe::moe_config_keys()) {
    const std::string key = prefix + "." + k.key;
    switch (k.type) {
      case moe::MoEKeyType::boolean: moe::set_moe_config_value(mc, k.key, cfg.get_bool(key)); break;
      case moe::MoEKeyType::integer: moe::set_moe_config_value(mc, k.key, cfg.get_int(key)); break;
      case moe::MoEKeyType::floating: moe::set_moe_config_value(mc, k.key, cfg.get_float(key)); break;
      case moe::MoEKeyType::string: moe::set_moe_config_value(mc, k.key, cfg.get_string(key)); break;
    }
  }
  return mc;
}

std::vector<int64_t> moe_blocks_from(const Config& cfg, int64_t depth, const std::string& prefix) {
  return moe::moe_block_indices(depth, cfg.get_int(prefix + ".every"), cfg.get_int_list(prefix + ".layers"));
}

void check_moe_layers_within(Schema& s, const std::string& depth_key, const std::string& prefix) {
  s.add_check([depth_key, prefix](const Config& c, io::ConfigReporter& r) {
    const int64_t depth = c.get_int(depth_key);
    std::vector<int64_t> seen;
    for (int64_t l : c.get_int_list(prefix + ".layers")) {
      if (l < 0 || l >= depth)
        r.error(prefix + ".layers", "MoE block index " + std::to_string(l) + " is outside [0, " + depth_key + " = " +
                                        std::to_string(depth) + ")");
      else if (std::find(seen.begin(), seen.end(), l) != seen.end())
        r.error(prefix + ".layers", "MoE block index " + std::to_string(l) + " is listed twice");
      seen.push_back(l);
    }
  });
}

}  // namespace moelab::experiments
