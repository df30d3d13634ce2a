#pragma once
// Routers (docs/moe.md §1) as small classes, one file per family (router_*.cpp), registered in
// router_table.cpp with their config keys, validation and constructor. The MoE layer does the rest.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/io/config_schema.h"
#include "core/moe/experts.h"
#include "core/moe/moe_config.h"
#include "core/moe/routing_stats.h"
#include "core/nn/module.h"
#include "core/util/rng.h"

namespace moelab::moe {

// What one routing step produced for T tokens. Slots are token-major: token t owns slots
// [token_offsets[t], token_offsets[t+1]) (k per token for token choice; 0..E for expert choice).
struct Routing {
  Tensor logits;        // (T, E) the logits after noise (differentiable); undefined without a learned router
  Tensor clean_logits;  // (T, E) before noise
  Tensor noise_std;     // (T, E) sigma of the logit noise (gaussian/learned), else undefined
  Tensor probs;         // (T, E) router probabilities p (sigmoid scores normalized over experts)
  Tensor scores;        // (T, E) the unbiased selection scores s (softmax or sigmoid), for statistics
  Tensor slot_weight;   // (S) combine weights (differentiable)
  Tensor slot_priority; // (S) detached router probability of each slot (drop-by-probability order)
  std::vector<int64_t> slot_expert, token_offsets;
  double temperature = 1.0;
};

// Everything a routing step reads besides x.
struct RouteInputs {
  bool training = true;
  int64_t seq_len = 0;                         // tokens per sequence (hash routing: the position in it)
  std::vector<int64_t> token_ids;              // (T) hash keys; empty = the position in the sequence
  const RoutingRecord* replay = nullptr;       // hold this choice fixed
  int64_t step = 0;                            // optimizer steps so far (temperature annealing)
  RngStream* rng = nullptr;                    // this layer's draws in this forward (noise, random routing)
};

// A router that runs the experts itself (Soft MoE): the output and each token's mass per expert.
struct MixedOutput {
  Tensor y;                          // (B, N, d)
  std::vector<double> expert_mass;   // (B*N, E) each token's combine weight summed over an expert's slots
};

class Router : public nn::Module {
 public:
  // init_rng: the initialization stream (the router reserves one draw, then its parameters draw).
  Router(std::string type_name, const MoEConfig& cfg, int64_t d_model, RngStream& init_rng);

  // Learned routers give probabilities (balancing terms and entropy statistics need them).
  virtual bool has_probs() const { return true; }
  // x: (T, d) -> the discrete choice and its combine weights (no capacity applied yet).
  virtual Routing route(const Tensor& x, const RouteInputs& in) = 0;
  // Soft MoE mixes tokens into slots and runs the experts itself: then mix() replaces route().
  virtual bool mixes_tokens() const { return false; }
  // x: (B, N, d) -> MixedOutput (only when mixes_tokens()).
  virtual MixedOutput mix(const Tensor& x, const Experts& experts);
  // After an optimizer step, with the step's per-expert choice counts (aux-loss-free bias update).
  virtual void after_step(const std::vector<double>& counts) {}
  // The selection bias (E), when the router keeps one (statistics).
  virtual Tensor selection_bias() const { return Tensor(); }

  double temperature_at(int64_t step) const;

  MoEConfig cfg;
  int64_t d_model;
};

// A router family: the names that select it (model.moe.router = ...), the keys only it reads, their
// validation and its constructor.
struct RouterBuild {
  int64_t d_model = 0;
  int64_t seq_len = 0;  // tokens per sequence (Soft MoE sizes its slots from it)
  DType dtype = DType::f32;
};
struct RouterFamily {
  std::vector<std::string> names;
  std::string doc;                    // one line for the key table
  std::vector<MoEConfigKey> keys;     // router-specific keys (under model.moe), defaults as TOML text
  // Appends problems as (key under the prefix, message); `prefix` is "model.moe" in configs.
  std::function<void(const MoEConfig&, const std::string& prefix, std::vector<io::ConfigIssue>&)> validate;
  std::function<std::shared_ptr<Router>(const MoEConfig&, const RouterBuild&, RngStream& init_rng)> make;
};

// Every family (router_table.cpp). find_router_family throws listing the valid names.
const std::vector<RouterFamily>& router_families();
const RouterFamily& find_router_family(const std::string& router_name);
std::vector<std::string> router_names();

}  // namespace moelab::moe
