#include "experiments/lib/moe_support.h"

#include <cctype>
#include <cmath>

#include "core/moe/moe_layer.h"
#include "core/nn/layers.h"
#include "experiments/lib/interval_stats.h"

namespace moelab::experiments {

void declare_moe_config(Schema& s, const std::string& prefix) {
  s.add_section(prefix, "Mixture-of-Experts layers (specs/moe.md)");
  for (const auto& k : moe::moe_config_keys()) {
    std::string key = prefix + "." + k.key;
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
  s.add_check([prefix](const Config& c, io::ConfigReporter& r) {
    moe::MoEConfig mc;
    try {
      mc = moe_config_from(c, prefix);
      mc.validate();
    } catch (const io::ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      // Place the error at the first key the message names ("moe.top_k = 9 exceeds ...").
      std::string msg = e.what();
      size_t colon = msg.find(": ");
      if (colon != std::string::npos && msg.find(".cpp:") < colon) msg = msg.substr(colon + 2);
      // Name keys by their full path ("moe.top_k" -> "model.moe.top_k").
      std::string full;
      for (size_t i = 0; i < msg.size(); ++i) {
        bool word_start = i == 0 || !(std::isalnum(static_cast<unsigned char>(msg[i - 1])) || msg[i - 1] == '.' || msg[i - 1] == '_');
        if (word_start && msg.compare(i, 4, "moe.") == 0) {
          full += prefix + ".";
          i += 3;
        } else {
          full += msg[i];
        }
      }
      msg = full;
      std::string at;
      size_t best = std::string::npos;
      for (const auto& k : moe::moe_config_keys()) {
        size_t pos = msg.find(prefix + "." + k.key);
        if (pos != std::string::npos && (pos < best || (pos == best && k.key.size() > at.size()))) {
          best = pos;
          at = k.key;
        }
      }
      if (at.empty()) r.error(msg);
      else r.error(prefix + "." + at, msg);
    }
  });
}

moe::MoEConfig moe_config_from(const Config& cfg, const std::string& prefix) {
  moe::MoEConfig mc;
  for (const auto& k : moe::moe_config_keys()) {
    std::string key = prefix + "." + k.key;
    switch (k.type) {
      case moe::MoEKeyType::boolean: moe::set_moe_config_value(mc, k.key, cfg.get_bool(key)); break;
      case moe::MoEKeyType::integer: moe::set_moe_config_value(mc, k.key, cfg.get_int(key)); break;
      case moe::MoEKeyType::floating: moe::set_moe_config_value(mc, k.key, cfg.get_float(key)); break;
      case moe::MoEKeyType::string: moe::set_moe_config_value(mc, k.key, cfg.get_string(key)); break;
    }
  }
  return mc;
}

void begin_routing_window(nn::Module& model) {
  for (auto& [path, layer] : moe::find_moe_layers(model)) {
    layer->stats_accumulator().reset();
    layer->monitor().reset();
  }
}

void set_moe_labels(nn::Module& model, const Tensor& labels) {
  for (auto& [path, layer] : moe::find_moe_layers(model)) {
    moe::MoEForwardContext ctx = layer->context();
    ctx.labels = labels;
    layer->set_context(ctx);
  }
}

std::vector<LayerRouting> end_routing_window(nn::Module& model, int64_t num_labels) {
  std::vector<LayerRouting> out;
  auto layers = moe::find_moe_layers(model);
  for (auto& [path, layer] : layers) {
    LayerRouting r;
    int idx = split_layer_name(path).first;
    r.layer = idx >= 0 ? idx : 0;
    moe::MoEStats st = layer->stats_accumulator().summary();
    const int64_t E = layer->cfg.num_experts;
    r.expert_counts.assign(static_cast<size_t>(E), 0.0);
    for (int64_t e = 0; e < E && e < static_cast<int64_t>(st.load.size()); ++e)
      r.expert_counts[e] = st.load[e] * static_cast<double>(st.assignments);
    r.stats["dropped_fraction"] = st.dropped_fraction;
    r.stats["router_entropy"] = st.router_entropy;
    r.stats["router_confidence"] = st.router_confidence;
    if (layer->router->bias.defined()) r.stats["bias_range"] = st.bias_max - st.bias_min;
    if (num_labels > 0) {
      r.label_expert_counts.assign(static_cast<size_t>(num_labels * E), 0.0);
      const auto& counts = layer->monitor().counts();
      for (int64_t l = 0; l < num_labels && l < static_cast<int64_t>(counts.size()); ++l)
        for (int64_t e = 0; e < E && e < static_cast<int64_t>(counts[l].size()); ++e)
          r.label_expert_counts[l * E + e] = counts[l][e];
    }
    out.push_back(std::move(r));
  }
  return out;
}

void save_model_state(nn::Module& model, TaskState& state) {
  for (const auto& [name, t] : model.named_buffers()) state.put_tensor("buffers." + name, t);
  for (auto& [path, layer] : moe::find_moe_layers(model)) {
    state.put_rng(path + ".noise_rng", layer->router->noise_rng);
    state.put_int(path + ".step", layer->step());
  }
}

void load_model_state(nn::Module& model, const TaskState& state) {
  for (auto& [name, t] : model.named_buffers()) state.load_tensor_into("buffers." + name, t);
  for (auto& [path, layer] : moe::find_moe_layers(model)) {
    layer->router->noise_rng = state.get_rng(path + ".noise_rng");
    layer->set_step(state.get_int(path + ".step"));
  }
}

namespace {
// The replica's MoE layers paired with the master's (same architecture, so the same paths in order).
std::vector<std::pair<moe::MoELayer*, moe::MoELayer*>> moe_pairs(nn::Module& replica, nn::Module& master) {
  auto r = moe::find_moe_layers(replica), m = moe::find_moe_layers(master);
  MOELAB_CHECK(r.size() == m.size(), "replica has " << r.size() << " MoE layers, the model " << m.size());
  std::vector<std::pair<moe::MoELayer*, moe::MoELayer*>> out;
  for (size_t i = 0; i < r.size(); ++i) {
    MOELAB_CHECK(r[i].first == m[i].first, "replica MoE layer " << r[i].first << " vs the model's " << m[i].first);
    out.emplace_back(r[i].second, m[i].second);
  }
  return out;
}
}  // namespace

void prepare_replica(nn::Module& replica, nn::Module& master, int64_t step, int micro) {
  const std::string draw = "step " + std::to_string(step) + " micro " + std::to_string(micro);
  replica.train(master.is_training());
  for (auto& [r, m] : moe_pairs(replica, master)) {
    r->set_step(m->step());
    r->router->noise_rng = m->router->noise_rng.fork(draw);
  }
  auto rm = replica.named_modules(), mm = master.named_modules();
  MOELAB_CHECK(rm.size() == mm.size(), "replica has " << rm.size() << " modules, the model " << mm.size());
  for (size_t i = 0; i < rm.size(); ++i)
    if (auto* d = dynamic_cast<nn::Dropout*>(rm[i].second))
      d->rng() = dynamic_cast<nn::Dropout&>(*mm[i].second).rng().fork(draw);
}

void merge_replica_counts(nn::Module& master, nn::Module& replica) {
  for (auto& [r, m] : moe_pairs(replica, master)) m->take_pending_counts(*r);
}

RoutingNoiseGuard::RoutingNoiseGuard(nn::Module& model) {
  for (auto& [path, layer] : moe::find_moe_layers(model)) saved_.emplace_back(&layer->router->noise_rng, layer->router->noise_rng);
}

RoutingNoiseGuard::~RoutingNoiseGuard() {
  for (auto& [ptr, value] : saved_) *ptr = value;
}

}  // namespace moelab::experiments
