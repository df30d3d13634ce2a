#pragma once
// MoEConfig: the choices of docs/moe.md as a struct whose field names are the TOML keys under `model.moe.`.
// Router-specific keys live with their router family (router.h) and are stored in router_options.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/backend/backend.h"
#include "core/io/config_schema.h"

namespace moelab::moe {

// §1.2 score functions.
enum class ScoreKind : uint8_t { softmax, sigmoid, cosine };
// §1.1 input perturbation (training only).
enum class NoiseKind : uint8_t { none, jitter, gaussian, learned };
enum class CapacityMode : uint8_t { dropless, capacity };
enum class DropPolicy : uint8_t { position, probability };
enum class BalanceScope : uint8_t { micro_batch, sequence, global };

using MoEValue = std::variant<bool, int64_t, double, std::string>;

struct MoEConfig {
  // ---- experts ----
  int64_t num_experts = 8;
  int64_t top_k = 2;
  ExpertActivation activation = ExpertActivation::gelu;
  int64_t expert_d_ff = 0;  // expert hidden width; 0 = the dense FFN's width (smaller = fine-grained experts)
  bool expert_bias = true;  // b1/b2 per expert (like the dense MLP)
  int64_t shared_experts = 0;      // S always-on experts (DeepSeek, Qwen-MoE)
  int64_t shared_expert_d_ff = 0;  // 0 = expert_d_ff
  bool shared_expert_gate = false; // scale the shared output by sigmoid(x . w_gate)

  // ---- router pipeline (§1) ----
  std::string router = "top_k";       // a router family's name (router_table.cpp)
  ScoreKind score = ScoreKind::softmax;
  double temperature = 1.0;            // tau in softmax(z / tau) (and sigmoid(z / tau))
  double temperature_final = 1.0;      // annealed linearly to this over temperature_anneal_steps
  int64_t temperature_anneal_steps = 0;
  NoiseKind noise = NoiseKind::none;
  double jitter_eps = 1e-2;            // x <- x * U[1 - eps, 1 + eps]
  double noise_std = 1.0;              // sigma: z <- z + N(0, sigma / E)
  int64_t cosine_dim = 0;              // cosine router projection width; 0 = d_model
  double cosine_scale_init = 2.659260036932778;  // s0 = log(1 / 0.07); logits scaled by exp(min(s, log 100))
  bool renormalize = false;            // combine weights sum to 1 over the k choices
  double weight_scale = 1.0;           // multiplies the combine weights (DeepSeek's routed scaling factor)

  // ---- capacity (§1.5) ----
  CapacityMode capacity_mode = CapacityMode::dropless;
  double capacity_factor = 1.25;       // also sets expert_choice's C and soft_moe's slots
  double eval_capacity_factor = 0.0;   // in evaluation; 0 = capacity_factor
  int64_t min_capacity = 4;
  DropPolicy drop_policy = DropPolicy::position;

  // ---- balancing terms (§2): coefficients; 0 = off ----
  double switch_loss = 1e-2;
  BalanceScope switch_loss_scope = BalanceScope::micro_batch;
  double importance_loss = 0.0;
  double load_loss = 0.0;
  double z_loss = 0.0;
  double local_entropy_loss = 0.0;
  double global_entropy_loss = 0.0;
  double global_entropy_threshold = 0.0;  // > 0: global term = max(0, threshold - H(mean p))

  // Keys of the selected router family (router.h), e.g. "sinkhorn_iterations"; unset keys read their default.
  std::map<std::string, MoEValue> router_options;
  bool option_bool(const std::string& key) const;
  int64_t option_int(const std::string& key) const;
  double option_float(const std::string& key) const;
  std::string option_string(const std::string& key) const;

  // Every problem as (key, message), keys and messages naming `prefix`.<key> ("model.moe.top_k = 9 exceeds
  // model.moe.num_experts = 8"); the selected router family adds its own.
  std::vector<io::ConfigIssue> validate(const std::string& prefix = "moe") const;
  // Throws moelab::Error with every problem of validate().
  void check() const;
  // A one-line description ("top_k E=8 k=2 softmax dropless ...") for logs and reports.
  std::string describe() const;
};

// ---- names <-> enums (parse_* throw naming the key and listing the valid names) ----
const char* score_name(ScoreKind v);
const char* noise_name(NoiseKind v);
const char* capacity_mode_name(CapacityMode v);
const char* drop_policy_name(DropPolicy v);
const char* balance_scope_name(BalanceScope v);
const char* activation_name(ExpertActivation v);
ScoreKind parse_score(std::string_view s);
ExpertActivation parse_expert_activation(std::string_view s);

// ---- the key table ----
enum class MoEKeyType : uint8_t { boolean, integer, floating, string };

struct MoEConfigKey {
  std::string key;                   // TOML key under model.moe (e.g. "top_k")
  MoEKeyType type;
  std::string default_text;          // as TOML value text: 8, 0.01, true, "top_k"
  std::vector<std::string> allowed;  // valid names for string keys
  std::string doc;                   // one line, with the spec section
};

// The common keys, then every router family's keys.
const std::vector<MoEConfigKey>& moe_config_keys();
// Sets one key (integers are accepted for float keys). Throws naming the key for unknown keys, wrong
// types and names outside `allowed`.
void set_moe_config_value(MoEConfig& cfg, const std::string& key, const MoEValue& value);
MoEValue get_moe_config_value(const MoEConfig& cfg, const std::string& key);
// Parses "key=value" (value as text: 2, 0.5, true, top_k) and sets it; for command lines and tests.
void set_moe_config_text(MoEConfig& cfg, const std::string& key, const std::string& text);

}  // namespace moelab::moe
