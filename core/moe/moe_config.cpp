// MoEConfig: names, validation and the key table the program's schema is built from.
#include "core/moe/moe_config.h"

#include "core/moe/router.h"

#include <algorithm>
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

const NameTable<ScoreKind> kScores{{{ScoreKind::softmax, "softmax"}, {ScoreKind::sigmoid, "sigmoid"},
                                    {ScoreKind::cosine, "cosine"}}};
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

Entry router_choice() {
  return {{"router", MoEKeyType::string, "", router_names(),
           "router family (spec 1.3): top_k, sinkhorn (BASE), expert_choice, soft_moe, hash or random"},
          [](MoEConfig& c, const MoEValue& v) {
            auto* s = std::get_if<std::string>(&v);
            if (!s) wrong_type("router", MoEKeyType::string, v);
            find_router_family(*s);  // throws listing the valid names
            c.router = *s;
          },
          [](const MoEConfig& c) { return MoEValue(c.router); }};
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> table = [] {
    using C = MoEConfig;
    std::vector<Entry> t = {
        integer("num_experts", &C::num_experts, "number of routed experts E"),
        integer("top_k", &C::top_k, "experts per token k (expert_choice: C = round(cf*T*k/E))"),
        router_choice(),
        choice("score", &C::score, kScores,
               "score function (spec 1.2): softmax(z/tau), sigmoid(z/tau) (DeepSeek-V3) or cosine (X-MoE)"),
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
        boolean("renormalize", &C::renormalize, "combine weights renormalized to sum 1 over the k choices"),
        floating("weight_scale", &C::weight_scale, "scaling factor on the combine weights"),
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

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

const Entry* find_common(const std::string& key) {
  for (const auto& e : entries())
    if (e.info.key == key) return &e;
  return nullptr;
}

// A router family's key (the first family that declares it).
const MoEConfigKey* find_router_key(const std::string& key) {
  for (const auto& f : router_families())
    for (const auto& k : f.keys)
      if (k.key == key) return &k;
  return nullptr;
}

[[noreturn]] void unknown_key(const std::string& key) {
  std::string best;
  for (const auto& k : moe_config_keys())
    if (best.empty() || edit_distance(key, k.key) < edit_distance(key, best)) best = k.key;
  MOELAB_FAIL("unknown key moe." << key << " (did you mean moe." << best << "?)");
}

// A router option's value checked against its declared type (integers are accepted for floats).
MoEValue typed_option(const MoEConfigKey& k, const MoEValue& v) {
  switch (k.type) {
    case MoEKeyType::boolean:
      if (std::holds_alternative<bool>(v)) return v;
      break;
    case MoEKeyType::integer:
      if (std::holds_alternative<int64_t>(v)) return v;
      break;
    case MoEKeyType::floating:
      if (auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
      if (std::holds_alternative<double>(v)) return v;
      break;
    case MoEKeyType::string:
      if (auto* s = std::get_if<std::string>(&v)) {
        if (!k.allowed.empty() && std::find(k.allowed.begin(), k.allowed.end(), *s) == k.allowed.end()) {
          std::string names;
          for (const auto& a : k.allowed) names += (names.empty() ? "" : ", ") + a;
          MOELAB_FAIL("moe." << k.key << " = '" << *s << "' is not one of: " << names);
        }
        return v;
      }
      break;
  }
  wrong_type(k.key, k.type, v);
}

MoEValue parse_default(const MoEConfigKey& k) {
  const std::string& t = k.default_text;
  switch (k.type) {
    case MoEKeyType::boolean: return t == "true";
    case MoEKeyType::integer: return static_cast<int64_t>(std::stoll(t));
    case MoEKeyType::floating: return std::stod(t);
    case MoEKeyType::string: return t.size() >= 2 && t.front() == '"' ? t.substr(1, t.size() - 2) : t;
  }
  return t;
}

MoEValue option_value(const MoEConfig& c, const std::string& key) {
  auto it = c.router_options.find(key);
  if (it != c.router_options.end()) return it->second;
  const MoEConfigKey* k = find_router_key(key);
  MOELAB_CHECK(k, "MoEConfig: no router family declares the key '" << key << "'");
  return parse_default(*k);
}

}  // namespace

const char* score_name(ScoreKind v) { return kScores.name(v); }
const char* noise_name(NoiseKind v) { return kNoises.name(v); }
const char* capacity_mode_name(CapacityMode v) { return kCapacity.name(v); }
const char* drop_policy_name(DropPolicy v) { return kDrop.name(v); }
const char* balance_scope_name(BalanceScope v) { return kScopes.name(v); }
const char* activation_name(ExpertActivation v) { return kActs.name(v); }
ScoreKind parse_score(std::string_view s) { return kScores.parse("score", s); }
ExpertActivation parse_expert_activation(std::string_view s) { return kActs.parse("activation", s); }

const std::vector<MoEConfigKey>& moe_config_keys() {
  static const std::vector<MoEConfigKey> keys = [] {
    std::vector<MoEConfigKey> k;
    for (const auto& e : entries()) k.push_back(e.info);
    for (const auto& f : router_families())
      for (const auto& rk : f.keys)
        if (std::none_of(k.begin(), k.end(), [&](const MoEConfigKey& x) { return x.key == rk.key; })) k.push_back(rk);
    return k;
  }();
  return keys;
}

void set_moe_config_value(MoEConfig& cfg, const std::string& key, const MoEValue& value) {
  if (const Entry* e = find_common(key)) return e->set(cfg, value);
  if (const MoEConfigKey* k = find_router_key(key)) {
    cfg.router_options[key] = typed_option(*k, value);
    return;
  }
  unknown_key(key);
}

MoEValue get_moe_config_value(const MoEConfig& cfg, const std::string& key) {
  if (const Entry* e = find_common(key)) return e->get(cfg);
  if (find_router_key(key)) return option_value(cfg, key);
  unknown_key(key);
}

void set_moe_config_text(MoEConfig& cfg, const std::string& key, const std::string& text) {
  const Entry* common = find_common(key);
  const MoEConfigKey* k = common ? &common->info : find_router_key(key);
  if (!k) unknown_key(key);
  auto bad = [&]() { MOELAB_FAIL("moe." << key << " must be " << type_word(k->type) << ", got '" << text << "'"); };
  switch (k->type) {
    case MoEKeyType::boolean:
      if (text != "true" && text != "false") bad();
      return set_moe_config_value(cfg, key, text == "true");
    case MoEKeyType::integer: {
      size_t used = 0;
      int64_t v = 0;
      try { v = std::stoll(text, &used); } catch (const std::exception&) { bad(); }
      if (used != text.size()) bad();
      return set_moe_config_value(cfg, key, v);
    }
    case MoEKeyType::floating: {
      size_t used = 0;
      double v = 0;
      try { v = std::stod(text, &used); } catch (const std::exception&) { bad(); }
      if (used != text.size()) bad();
      return set_moe_config_value(cfg, key, v);
    }
    case MoEKeyType::string: {
      std::string s = text;
      if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
      return set_moe_config_value(cfg, key, s);
    }
  }
}

bool MoEConfig::option_bool(const std::string& key) const { return std::get<bool>(option_value(*this, key)); }
int64_t MoEConfig::option_int(const std::string& key) const { return std::get<int64_t>(option_value(*this, key)); }
double MoEConfig::option_float(const std::string& key) const { return std::get<double>(option_value(*this, key)); }
std::string MoEConfig::option_string(const std::string& key) const {
  return std::get<std::string>(option_value(*this, key));
}

std::vector<io::ConfigIssue> MoEConfig::validate(const std::string& prefix) const {
  std::vector<io::ConfigIssue> out;
  const std::string p = prefix + ".";
  auto need = [&](bool ok, const std::string& key, const std::string& message) {
    if (!ok) out.push_back({p + key, message});
  };
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  need(num_experts >= 1, "num_experts", p + "num_experts = " + std::to_string(num_experts) + " must be at least 1");
  need(top_k >= 1, "top_k", p + "top_k = " + std::to_string(top_k) + " must be at least 1");
  need(top_k <= num_experts, "top_k",
       p + "top_k = " + std::to_string(top_k) + " exceeds " + p + "num_experts = " + std::to_string(num_experts));
  need(temperature > 0, "temperature", p + "temperature = " + num(temperature) + " must be positive");
  need(temperature_final > 0, "temperature_final", p + "temperature_final = " + num(temperature_final) + " must be positive");
  need(temperature_anneal_steps >= 0, "temperature_anneal_steps",
       p + "temperature_anneal_steps = " + std::to_string(temperature_anneal_steps) + " must be >= 0");
  need(jitter_eps >= 0 && jitter_eps < 1, "jitter_eps", p + "jitter_eps = " + num(jitter_eps) + " must be in [0, 1)");
  need(noise_std >= 0, "noise_std", p + "noise_std = " + num(noise_std) + " must be >= 0");
  need(cosine_dim >= 0, "cosine_dim", p + "cosine_dim = " + std::to_string(cosine_dim) + " must be >= 0 (0 = d_model)");
  need(std::isfinite(weight_scale) && weight_scale > 0, "weight_scale",
       p + "weight_scale = " + num(weight_scale) + " must be positive");
  need(expert_d_ff >= 0, "expert_d_ff", p + "expert_d_ff = " + std::to_string(expert_d_ff) + " must be >= 0 (0 = dense width)");
  need(shared_experts >= 0, "shared_experts", p + "shared_experts = " + std::to_string(shared_experts) + " must be >= 0");
  need(shared_expert_d_ff >= 0, "shared_expert_d_ff",
       p + "shared_expert_d_ff = " + std::to_string(shared_expert_d_ff) + " must be >= 0");
  need(min_capacity >= 0, "min_capacity", p + "min_capacity = " + std::to_string(min_capacity) + " must be >= 0");
  need(eval_capacity_factor >= 0, "eval_capacity_factor",
       p + "eval_capacity_factor = " + num(eval_capacity_factor) + " must be >= 0 (0 = capacity_factor)");
  if (capacity_mode == CapacityMode::capacity)
    need(capacity_factor > 0, "capacity_factor", p + "capacity_factor = " + num(capacity_factor) + " must be > 0 in capacity mode");
  for (auto [name, v] : {std::pair<const char*, double>{"switch_loss", switch_loss},
                         {"importance_loss", importance_loss}, {"load_loss", load_loss}, {"z_loss", z_loss},
                         {"local_entropy_loss", local_entropy_loss}, {"global_entropy_loss", global_entropy_loss},
                         {"global_entropy_threshold", global_entropy_threshold}})
    need(std::isfinite(v) && v >= 0, name, p + name + " = " + num(v) + " must be a finite number >= 0");
  if (load_loss > 0)
    need(noise == NoiseKind::gaussian || noise == NoiseKind::learned, "load_loss",
         p + "load_loss = " + num(load_loss) + " needs noisy logits: set " + p + "noise = gaussian or learned (is " +
             noise_name(noise) + ")");
  const RouterFamily* selected = nullptr;
  for (const auto& family : router_families())
    if (std::find(family.names.begin(), family.names.end(), router) != family.names.end()) selected = &family;
  if (!selected) {
    out.push_back({p + "router", p + "router = '" + router + "' is not a router family"});
    return out;
  }
  // A key of another family set away from its default would be silently ignored: say so instead.
  for (const auto& [key, value] : router_options) {
    const bool own = std::any_of(selected->keys.begin(), selected->keys.end(), [&](const auto& k) { return k.key == key; });
    const MoEConfigKey* k = find_router_key(key);
    if (!own && k && value != parse_default(*k)) {
      std::string readers;
      for (const auto& f : router_families())
        for (const auto& fk : f.keys)
          if (fk.key == key)
            for (const auto& n : f.names) readers += (readers.empty() ? "" : " or ") + n;
      out.push_back({p + key, p + key + " is read by router = " + readers + ", not " + router});
    }
  }
  if (selected->validate) selected->validate(*this, prefix, out);
  return out;
}

void MoEConfig::check() const {
  std::vector<io::ConfigIssue> issues = validate("moe");
  if (issues.empty()) return;
  std::string msg;
  for (const auto& i : issues) msg += (msg.empty() ? "" : "; ") + i.message;
  MOELAB_FAIL(msg);
}

std::string MoEConfig::describe() const {
  std::ostringstream os;
  os << router << " E=" << num_experts << " k=" << top_k << " " << score_name(score);
  for (const auto& [key, v] : router_options) {
    os << " " << key << "=";
    std::visit([&](const auto& x) { os << x; }, v);
  }
  if (noise != NoiseKind::none) os << " noise=" << noise_name(noise);
  if (renormalize) os << " renorm";
  os << " " << capacity_mode_name(capacity_mode);
  if (capacity_mode == CapacityMode::capacity)
    os << "(cf=" << capacity_factor << "," << drop_policy_name(drop_policy) << ")";
  os << " act=" << activation_name(activation);
  if (shared_experts > 0) os << " shared=" << shared_experts << (shared_expert_gate ? "(gated)" : "");
  return os.str();
}

}  // namespace moelab::moe
