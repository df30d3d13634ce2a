#pragma once
// MoEConfig: every choice of specs/moe.md as a plain struct whose field names are the TOML keys under
// `model.moe.` (moelab run cfg.toml model.moe.top_k=1). validate() throws errors naming the key.
//
// Schema contract with the program (experiments/): moe_config_keys() lists every key with its type,
// default (TOML text), allowed values and documentation; a task turns each entry into a ConfigSpec key
// "model.moe.<key>", and builds the struct by calling set_moe_config_value(cfg, key, value) for each
// resolved value, then cfg.validate(). String-valued choices are parsed by that setter, so an unknown
// name (router = "foo") is reported with the list of valid names.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/backend/backend.h"

namespace moelab::moe {

// §1.3 selectors.
enum class RouterKind : uint8_t { top_k, expert_choice, soft_moe, hash, random, sinkhorn };
// §1.2 score functions.
enum class ScoreKind : uint8_t { softmax, sigmoid, cosine };
// Token-choice top-k: softmax over all experts before selecting, or over the k selected logits after.
enum class SoftmaxOrder : uint8_t { before, after };
// §1.1 input perturbation (training only).
enum class NoiseKind : uint8_t { none, jitter, gaussian, learned };
enum class CapacityMode : uint8_t { dropless, capacity };
enum class DropPolicy : uint8_t { position, probability };
enum class BalanceScope : uint8_t { micro_batch, sequence, global };

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
  RouterKind router = RouterKind::top_k;
  ScoreKind score = ScoreKind::softmax;
  SoftmaxOrder softmax_order = SoftmaxOrder::before;
  double temperature = 1.0;            // tau in softmax(z / tau) (and sigmoid(z / tau))
  double temperature_final = 1.0;      // annealed linearly to this over temperature_anneal_steps
  int64_t temperature_anneal_steps = 0;
  NoiseKind noise = NoiseKind::none;
  double jitter_eps = 1e-2;            // x <- x * U[1 - eps, 1 + eps]
  double noise_std = 1.0;              // sigma: z <- z + N(0, sigma / E)
  int64_t cosine_dim = 0;              // cosine router projection width; 0 = d_model
  double cosine_scale_init = 2.659260036932778;  // s0 = log(1 / 0.07); logits scaled by exp(min(s, log 100))
  int64_t sinkhorn_iterations = 20;
  bool renormalize = false;            // combine weights sum to 1 over the k choices
  double weight_scale = 1.0;           // multiplies the combine weights (DeepSeek's routed scaling factor)
  bool selection_bias = false;         // aux-loss-free balancing: select top-k of s + b
  double bias_update_rate = 1e-3;      // gamma
  bool bias_recenter = false;          // keep mean(b) = 0
  int64_t slots_per_expert = 0;        // soft_moe: S; 0 = max(1, round(capacity_factor * seq_len / E))
  bool soft_normalize = false;         // soft_moe: L2-normalize x and Phi, with a learnable scale

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

  // Throws moelab::Error naming the offending key, e.g. "moe.top_k = 9 exceeds moe.num_experts = 8".
  void validate() const;
  // Whether the router produces probabilities (hash and random routing do not; soft_moe has its own).
  bool has_router_probs() const;
  // A one-line description ("top_k k=2 softmax(before) dropless ...") for logs and reports.
  std::string describe() const;
};

// ---- names <-> enums (parse_* throw naming the key and listing the valid names) ----
const char* router_name(RouterKind v);
const char* score_name(ScoreKind v);
const char* softmax_order_name(SoftmaxOrder v);
const char* noise_name(NoiseKind v);
const char* capacity_mode_name(CapacityMode v);
const char* drop_policy_name(DropPolicy v);
const char* balance_scope_name(BalanceScope v);
const char* activation_name(ExpertActivation v);
RouterKind parse_router(std::string_view s);
ScoreKind parse_score(std::string_view s);
ExpertActivation parse_expert_activation(std::string_view s);

// ---- the key table ----
using MoEValue = std::variant<bool, int64_t, double, std::string>;
enum class MoEKeyType : uint8_t { boolean, integer, floating, string };

struct MoEConfigKey {
  std::string key;                   // TOML key under model.moe (e.g. "top_k")
  MoEKeyType type;
  std::string default_text;          // as TOML value text: 8, 0.01, true, "top_k"
  std::vector<std::string> allowed;  // valid names for string keys
  std::string doc;                   // one line, with the spec section
};

const std::vector<MoEConfigKey>& moe_config_keys();
// Sets one key (integers are accepted for float keys). Throws naming the key for unknown keys, wrong
// types and names outside `allowed`.
void set_moe_config_value(MoEConfig& cfg, const std::string& key, const MoEValue& value);
MoEValue get_moe_config_value(const MoEConfig& cfg, const std::string& key);
// Parses "key=value" (value as text: 2, 0.5, true, top_k) and sets it; for command lines and tests.
void set_moe_config_text(MoEConfig& cfg, const std::string& key, const std::string& text);

}  // namespace moelab::moe
