// MoEConfig: names, validation and the key table the program's schema is built from.
#include "core/moe/moe_config.h"

#include <cmath>
#include <functional>
#include <sstream>

namespace moelab::moe {

namespace {

template <typename E> struct NameTable {
  std::vector<std::pair<E, const char*>> entries;
  const char* name(E v) const {
    for (auto& [e, n] : entries)
      if (e == v) return n;
    return "?";
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& [e, n] : entries) out.push_back(n);
    return out;
  }
  E parse(std::string_view key, std::string_view s) const {
    for (auto& [e, n] : entries)
      if (s == n) return e;
    std::ostringstream os;
    for (size_t i = 0; i < entries.size(); ++i) os << (i ? ", " : "") << entries[i].second;
    MOELAB_FAIL("moe." << key << " = '" << s << "' is not one of: " << os.str());
  }
};

const NameTable<RouterKind> kRouters{{{RouterKind::top_k, "top_k"},
                                      {RouterKind::expert_choice, "expert_choice"},
                                      {RouterKind::soft_moe, "soft_moe"},
                                      {RouterKind::hash, "hash"},
                                      {RouterKind::random, "random"},
                                      {RouterKind::sinkhorn, "sinkhorn"}}};
const NameTable<ScoreKind> kScores{{{ScoreKind::softmax, "softmax"}, {ScoreKind::sigmoid, "sigmoid"},
                                    {ScoreKind::cosine, "cosine"}}};
const NameTable<SoftmaxOrder> kOrders{{{SoftmaxOrder::before, "before"}, {SoftmaxOrder::after, "after"}}};
const NameTable<NoiseKind> kNoises{{{NoiseKind::none, "none"}, {NoiseKind::jitter, "jitter"},
                                    {NoiseKind::gaussian, "gaussian"}, {NoiseKind::learned, "learned"}}};
const NameTable<CapacityMode> kCapacity{{{CapacityMode::dropless, "dropless"}, {CapacityMode::capacity, "capacity"}}};
const NameTable<DropPolicy> kDrop{{{DropPolicy::position, "position"}, {DropPolicy::probability, "probability"}}};
const NameTable<BalanceScope> kScopes{{{BalanceScope::micro_batch, "micro_batch"},
                                       {BalanceScope::sequence, "sequence"},
                                       {BalanceScope::global, "global"}}};
const NameTable<ExpertActivation> kActs{{{ExpertActivation::relu, "relu"}, {ExpertActivation::gelu, "gelu"},
                                         {ExpertActivation::swiglu, "swiglu"}}};

// One key: its description plus typed access to the struct field.
struct Entry {
  MoEConfigKey info;
  std::function<void(MoEConfig&, const MoEValue&)> set;
  std::function<MoEValue(const MoEConfig&)> get;
};

std::string value_text(const MoEValue& v) {
  std::ostringstream os;
  if (auto* b = std::get_if<bool>(&v)) os << (*b ? "true" : "false");
  else if (auto* i = std::get_if<int64_t>(&v)) os << *i;
  else if (auto* d = std::get_if<double>(&v)) {
    // The shortest text that reads back exactly, always with a '.' or an exponent (a TOML float).
    std::string t;
    for (int prec = 6; prec <= 17; ++prec) {
      std::ostringstream f;
      f.precision(prec);
      f << *d;
      t = f.str();
      if (std::stod(t) == *d) break;
    }
    if (t.find_first_of(".eEn") == std::string::npos) t += ".0";
    os << t;
  }
  else os << '"' << std::get<std::string>(v) << '"';
  return os.str();
}

const char* type_word(MoEKeyType t) {
  switch (t) {
    case MoEKeyType::boolean: return "a boolean";
    case MoEKeyType::integer: return "an integer";
    case MoEKeyType::floating: return "a number";
    case MoEKeyType::string: return "a string";
  }
  return "?";
}

[[noreturn]] void wrong_type(const std::string& key, MoEKeyType want, const MoEValue& v) {
  MOELAB_FAIL("moe." << key << " must be " << type_word(want) << ", got " << value_text(v));
}

Entry boolean(const char* key, bool MoEConfig::*field, const char* doc) {
  return {{key, MoEKeyType::boolean, "", {}, doc},
          [=](MoEConfig& c, const MoEValue& v) {
            if (auto* b = std::get_if<bool>(&v)) c.*field = *b;
            else wrong_type(key, MoEKeyType::boolean, v);
          },
          [=](const MoEConfig& c) { return MoEValue(c.*field); }};
}
Entry integer(const char* key, int64_t MoEConfig::*field, const char* doc) {
  return {{key, MoEKeyType::integer, "", {}, doc},
          [=](MoEConfig& c, const MoEValue& v) {
            if (auto* i = std::get_if<int64_t>(&v)) c.*field = *i;
            else wrong_type(key, MoEKeyType::integer, v);
          },
          [=](const MoEConfig& c) { return MoEValue(c.*field); }};
}
Entry floating(const char* key, double MoEConfig::*field, const char* doc) {
  return {{key, MoEKeyType::floating, "", {}, doc},
          [=](MoEConfig& c, const MoEValue& v) {
            if (auto* d = std::get_if<double>(&v)) c.*field = *d;
            else if (auto* i = std::get_if<int64_t>(&v)) c.*field = static_cast<double>(*i);
            else wrong_type(key, MoEKeyType::floating, v);
          },
          [=](const MoEConfig& c) { return MoEValue(c.*field); }};
}
template <typename E> Entry choice(const char* key, E MoEConfig::*field, const NameTable<E>& table, const char* doc) {
  return {{key, MoEKeyType::string, "", table.names(), doc},
          [=, &table](MoEConfig& c, const MoEValue& v) {
            if (auto* s = std::get_if<std::string>(&v)) c.*field = table.parse(key, *s);
            else wrong_type(key, MoEKeyType::string, v);
          },
          [=, &table](const MoEConfig& c) { return MoEValue(std::string(table.name(c.*field))); }};
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = [] {
    using C = MoEConfig;
    std::vector<Entry> t = {
        integer("num_experts", &C::num_experts, "number of routed experts E"),
        integer("top_k", &C::top_k, "experts per token k (expert_choice: C = round(cf*T*k/E))"),
        choice("router", &C::router, kRouters,
               "selector (spec 1.3): top_k, expert_choice, soft_moe, hash, random or sinkhorn (BASE)"),
        choice("score", &C::score, kScores,
               "score function (spec 1.2): softmax(z/tau), sigmoid(z/tau) (DeepSeek-V3) or cosine (X-MoE)"),
        choice("softmax_order", &C::softmax_order, kOrders,
               "top_k: softmax over all experts before top-k, or over the k selected logits after"),
        floating("temperature", &C::temperature, "router temperature tau (start value when annealed)"),
        floating("temperature_final", &C::temperature_final, "temperature reached after the anneal steps"),
        integer("temperature_anneal_steps", &C::temperature_anneal_steps,
                "optimizer steps of linear temperature annealing; 0 = constant"),
        choice("noise", &C::noise, kNoises,
               "input perturbation in training (spec 1.1): none, jitter (x*U[1-eps,1+eps]), gaussian "
               "(z+N(0,sigma/E)), learned (Shazeer: z+N(0,1)*(softplus(x W_noise)+0.01))"),
        floating("jitter_eps", &C::jitter_eps, "eps of multiplicative jitter"),
        floating("noise_std", &C::noise_std, "sigma of Gaussian logit noise N(0, sigma/E)"),
        integer("cosine_dim", &C::cosine_dim, "cosine score: projection width (0 = d_model)"),
        floating("cosine_scale_init", &C::cosine_scale_init,
                 "cosine score: initial learnable log-scale s (logits scaled by exp(min(s, log 100)))"),
        integer("sinkhorn_iterations", &C::sinkhorn_iterations, "sinkhorn router: Sinkhorn iterations"),
        boolean("renormalize", &C::renormalize, "combine weights renormalized to sum 1 over the k choices"),
        floating("weight_scale", &C::weight_scale, "scaling factor on the combine weights"),
        boolean("selection_bias", &C::selection_bias,
                "aux-loss-free balancing (DeepSeek-V3): select top-k of s + b, combine with s"),
        floating("bias_update_rate", &C::bias_update_rate, "gamma of the bias update b += gamma*sign(mean c - c)"),
        boolean("bias_recenter", &C::bias_recenter, "re-centre the selection bias to zero mean after each update"),
        integer("slots_per_expert", &C::slots_per_expert,
                "soft_moe: slots per expert S (0 = max(1, round(capacity_factor * seq_len / E)))"),
        boolean("soft_normalize", &C::soft_normalize, "soft_moe: L2-normalize x and Phi with a learnable scale"),
        choice("capacity_mode", &C::capacity_mode, kCapacity,
               "dropless, or capacity C = max(min_capacity, ceil(cf*T*k/E)) per expert (spec 1.5)"),
        floating("capacity_factor", &C::capacity_factor, "capacity factor cf (training)"),
        floating("eval_capacity_factor", &C::eval_capacity_factor, "capacity factor in evaluation (0 = same)"),
        integer("min_capacity", &C::min_capacity, "lower bound on the per-expert capacity"),
        choice("drop_policy", &C::drop_policy, kDrop,
               "over capacity: drop by position (first come first served) or keep the highest probabilities"),
        choice("activation", &C::activation, kActs, "expert FFN activation: relu, gelu (tanh form) or swiglu"),
        integer("expert_d_ff", &C::expert_d_ff, "expert hidden width (0 = the dense FFN's width)"),
        boolean("expert_bias", &C::expert_bias, "experts have biases b1, b2"),
        integer("shared_experts", &C::shared_experts, "always-on shared experts added to every token"),
        integer("shared_expert_d_ff", &C::shared_expert_d_ff, "shared expert hidden width (0 = expert_d_ff)"),
        boolean("shared_expert_gate", &C::shared_expert_gate, "scale the shared experts' output by a sigmoid gate"),
        floating("switch_loss", &C::switch_loss, "coefficient alpha of the Switch/GShard loss E*sum f_i P_i (spec 2)"),
        choice("switch_loss_scope", &C::switch_loss_scope, kScopes,
               "Switch loss scope: micro_batch, sequence (DeepSeek) or global (counts summed over ranks)"),
        floating("importance_loss", &C::importance_loss, "w_imp of CV^2(Importance) (Shazeer 2017)"),
        floating("load_loss", &C::load_loss, "w_load of CV^2(Load); needs noise = gaussian or learned"),
        floating("z_loss", &C::z_loss, "c_z of the router z-loss mean(logsumexp(z)^2) (ST-MoE)"),
        floating("local_entropy_loss", &C::local_entropy_loss, "LIMoE local entropy mean_t H(p_t), per group"),
        floating("global_entropy_loss", &C::global_entropy_loss, "LIMoE global entropy -H(mean_t p_t), per group"),
        floating("global_entropy_threshold", &C::global_entropy_threshold,
                 "> 0: the global term is max(0, threshold - H), inactive once H >= threshold"),
    };
    MoEConfig defaults;
    for (auto& e : t) e.info.default_text = value_text(e.get(defaults));
    return t;
  }();
  return table;
}

const Entry& find_entry(const std::string& key) {
  for (const auto& e : entries())
    if (e.info.key == key) return e;
  // Suggest the closest key by edit distance.
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  const Entry* best = &entries().front();
  for (const auto& e : entries())
    if (distance(key, e.info.key) < distance(key, best->info.key)) best = &e;
  MOELAB_FAIL("unknown key moe." << key << " (did you mean moe." << best->info.key << "?)");
}

}  // namespace

const char* router_name(RouterKind v) { return kRouters.name(v); }
const char* score_name(ScoreKind v) { return kScores.name(v); }
const char* softmax_order_name(SoftmaxOrder v) { return kOrders.name(v); }
const char* noise_name(NoiseKind v) { return kNoises.name(v); }
const char* capacity_mode_name(CapacityMode v) { return kCapacity.name(v); }
const char* drop_policy_name(DropPolicy v) { return kDrop.name(v); }
const char* balance_scope_name(BalanceScope v) { return kScopes.name(v); }
const char* activation_name(ExpertActivation v) { return kActs.name(v); }
RouterKind parse_router(std::string_view s) { return kRouters.parse("router", s); }
ScoreKind parse_score(std::string_view s) { return kScores.parse("score", s); }
ExpertActivation parse_expert_activation(std::string_view s) { return kActs.parse("activation", s); }

const std::vector<MoEConfigKey>& moe_config_keys() {
  static const std::vector<MoEConfigKey> keys = [] {
    std::vector<MoEConfigKey> k;
    for (const auto& e : entries()) k.push_back(e.info);
    return k;
  }();
  return keys;
}

void set_moe_config_value(MoEConfig& cfg, const std::string& key, const MoEValue& value) {
  find_entry(key).set(cfg, value);
}

MoEValue get_moe_config_value(const MoEConfig& cfg, const std::string& key) { return find_entry(key).get(cfg); }

void set_moe_config_text(MoEConfig& cfg, const std::string& key, const std::string& text) {
  const Entry& e = find_entry(key);
  auto bad = [&]() { MOELAB_FAIL("moe." << key << " must be " << type_word(e.info.type) << ", got '" << text << "'"); };
  switch (e.info.type) {
    case MoEKeyType::boolean:
      if (text == "true") e.set(cfg, true);
      else if (text == "false") e.set(cfg, false);
      else bad();
      return;
    case MoEKeyType::integer: {
      size_t used = 0;
      int64_t v = 0;
      try { v = std::stoll(text, &used); } catch (const std::exception&) { bad(); }
      if (used != text.size()) bad();
      e.set(cfg, v);
      return;
    }
    case MoEKeyType::floating: {
      size_t used = 0;
      double v = 0;
      try { v = std::stod(text, &used); } catch (const std::exception&) { bad(); }
      if (used != text.size()) bad();
      e.set(cfg, v);
      return;
    }
    case MoEKeyType::string: {
      std::string s = text;
      if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
      e.set(cfg, s);
      return;
    }
  }
}

bool MoEConfig::has_router_probs() const {
  return router == RouterKind::top_k || router == RouterKind::expert_choice || router == RouterKind::sinkhorn;
}

void MoEConfig::validate() const {
  MOELAB_CHECK(num_experts >= 1, "moe.num_experts = " << num_experts << " must be at least 1");
  MOELAB_CHECK(top_k >= 1, "moe.top_k = " << top_k << " must be at least 1");
  MOELAB_CHECK(top_k <= num_experts, "moe.top_k = " << top_k << " exceeds moe.num_experts = " << num_experts);
  MOELAB_CHECK(temperature > 0 && temperature_final > 0,
               "moe.temperature = " << temperature << " and moe.temperature_final = " << temperature_final
                                    << " must be positive");
  MOELAB_CHECK(temperature_anneal_steps >= 0,
               "moe.temperature_anneal_steps = " << temperature_anneal_steps << " must be >= 0");
  MOELAB_CHECK(jitter_eps >= 0 && jitter_eps < 1, "moe.jitter_eps = " << jitter_eps << " must be in [0, 1)");
  MOELAB_CHECK(noise_std >= 0, "moe.noise_std = " << noise_std << " must be >= 0");
  MOELAB_CHECK(cosine_dim >= 0, "moe.cosine_dim = " << cosine_dim << " must be >= 0 (0 = d_model)");
  MOELAB_CHECK(sinkhorn_iterations >= 1, "moe.sinkhorn_iterations = " << sinkhorn_iterations << " must be >= 1");
  MOELAB_CHECK(std::isfinite(weight_scale) && weight_scale > 0,
               "moe.weight_scale = " << weight_scale << " must be positive");
  MOELAB_CHECK(bias_update_rate >= 0, "moe.bias_update_rate = " << bias_update_rate << " must be >= 0");
  MOELAB_CHECK(slots_per_expert >= 0, "moe.slots_per_expert = " << slots_per_expert << " must be >= 0");
  MOELAB_CHECK(expert_d_ff >= 0, "moe.expert_d_ff = " << expert_d_ff << " must be >= 0 (0 = dense width)");
  MOELAB_CHECK(shared_experts >= 0, "moe.shared_experts = " << shared_experts << " must be >= 0");
  MOELAB_CHECK(shared_expert_d_ff >= 0, "moe.shared_expert_d_ff = " << shared_expert_d_ff << " must be >= 0");
  MOELAB_CHECK(min_capacity >= 0, "moe.min_capacity = " << min_capacity << " must be >= 0");
  MOELAB_CHECK(eval_capacity_factor >= 0,
               "moe.eval_capacity_factor = " << eval_capacity_factor << " must be >= 0 (0 = capacity_factor)");
  bool needs_cf = capacity_mode == CapacityMode::capacity || router == RouterKind::expert_choice ||
                  (router == RouterKind::soft_moe && slots_per_expert == 0);
  if (needs_cf) {
    const char* why = capacity_mode == CapacityMode::capacity ? "in capacity mode"
                      : router == RouterKind::expert_choice   ? "for router = expert_choice"
                                                              : "for router = soft_moe without slots_per_expert";
    MOELAB_CHECK(capacity_factor > 0, "moe.capacity_factor = " << capacity_factor << " must be > 0 " << why);
  }
  for (auto [name, v] : {std::pair<const char*, double>{"switch_loss", switch_loss},
                         {"importance_loss", importance_loss}, {"load_loss", load_loss}, {"z_loss", z_loss},
                         {"local_entropy_loss", local_entropy_loss}, {"global_entropy_loss", global_entropy_loss},
                         {"global_entropy_threshold", global_entropy_threshold}})
    MOELAB_CHECK(std::isfinite(v) && v >= 0, "moe." << name << " = " << v << " must be a finite number >= 0");
  if (load_loss > 0)
    MOELAB_CHECK(noise == NoiseKind::gaussian || noise == NoiseKind::learned,
                 "moe.load_loss = " << load_loss << " needs noisy logits: set moe.noise = gaussian or learned (is "
                                    << noise_name(noise) << ")");
  if (load_loss > 0 || importance_loss > 0)
    MOELAB_CHECK(router == RouterKind::top_k, "moe.importance_loss / moe.load_loss are defined for router = top_k, "
                                              "not " << router_name(router));
  if (selection_bias)
    MOELAB_CHECK(router == RouterKind::top_k,
                 "moe.selection_bias applies to router = top_k, not " << router_name(router));
  if (router == RouterKind::expert_choice) {
    MOELAB_CHECK(!renormalize, "moe.renormalize is not defined for router = expert_choice (a token may get 0..E "
                               "experts); set it to false");
    MOELAB_CHECK(capacity_mode == CapacityMode::dropless,
                 "router = expert_choice sets its own capacity (C = round(cf*T*k/E)); set moe.capacity_mode = "
                 "dropless");
  }
  if (router == RouterKind::soft_moe)
    MOELAB_CHECK(capacity_mode == CapacityMode::dropless,
                 "router = soft_moe never drops tokens; set moe.capacity_mode = dropless");
  if (score != ScoreKind::softmax)
    MOELAB_CHECK(router == RouterKind::top_k,
                 "moe.score = " << score_name(score) << " is supported with router = top_k, not "
                                << router_name(router));
  if (softmax_order == SoftmaxOrder::after)
    MOELAB_CHECK(router == RouterKind::top_k && score != ScoreKind::sigmoid,
                 "moe.softmax_order = after needs router = top_k with a softmax or cosine score");
  if (!has_router_probs())
    MOELAB_CHECK(noise == NoiseKind::none, "moe.noise = " << noise_name(noise) << " perturbs router logits: it applies to "
                                                          "router = top_k, expert_choice or sinkhorn, not "
                                                          << router_name(router));
}

std::string MoEConfig::describe() const {
  std::ostringstream os;
  os << router_name(router) << " E=" << num_experts << " k=" << top_k << " " << score_name(score);
  if (router == RouterKind::top_k) os << "(" << softmax_order_name(softmax_order) << ")";
  if (noise != NoiseKind::none) os << " noise=" << noise_name(noise);
  if (renormalize) os << " renorm";
  if (selection_bias) os << " bias";
  os << " " << capacity_mode_name(capacity_mode);
  if (capacity_mode == CapacityMode::capacity)
    os << "(cf=" << capacity_factor << "," << drop_policy_name(drop_policy) << ")";
  os << " act=" << activation_name(activation);
  if (shared_experts > 0) os << " shared=" << shared_experts << (shared_expert_gate ? "(gated)" : "");
  return os.str();
}

}  // namespace moelab::moe
