#pragma once
// The router pipeline of specs/moe.md §1 (perturbation -> score -> selector -> combine weights; capacity
// is applied by the dispatch plan). The router is a Module (child "router" of the MoE layer), so its
// parameters are named `...moe.router.weight` etc.:
//   weight (E, d)             the router projection (cosine: (E, cosine_dim) expert embeddings)
//   proj (cosine_dim, d)      cosine score: the projection P
//   logit_scale ()            cosine score: the learnable log-scale s
//   noise_weight (E, d)       learned (Shazeer) noise: W_noise (zero-initialized)
//   bias (E)                  buffer: the aux-loss-free selection bias b (not trained; saved)
// Soft MoE: weight (E*S, d) holds the slot parameters Phi^T (slot e*S + s is row e*S + s) and
// scale () the learnable scale of soft_normalize; route() is not used (see soft_moe.h).
// Hash and random routing have no parameters.
#include <cstdint>
#include <vector>

#include "core/moe/moe_config.h"
#include "core/nn/module.h"
#include "core/util/rng.h"

namespace moelab::moe {

// A recorded routing decision (specs §5 record/replay): which experts each token was sent to and which
// assignments were kept. Replaying it in a later forward holds the expert choice fixed while the combine
// weights are recomputed from the current router (gradient checks, counterfactual analyses).
struct RoutingRecord {
  int64_t num_tokens = 0, num_experts = 0;
  std::vector<int64_t> token_offsets;  // (T+1)
  std::vector<int64_t> slot_expert;    // (S)
  std::vector<uint8_t> slot_kept;      // (S) 0 where capacity dropped the assignment
  std::vector<float> slot_weight;      // (S) combine weights when recorded
};

// What one routing step produced.
struct Routing {
  Tensor logits;        // (T, E) the logits after noise (differentiable); undefined for hash/random
  Tensor clean_logits;  // (T, E) before noise
  Tensor noise_std;     // (T, E) sigma of the logit noise (gaussian/learned), else undefined
  Tensor probs;         // (T, E) router probabilities p (softmax; sigmoid scores normalized over experts)
  Tensor scores;        // (T, E) the unbiased selection scores s (softmax or sigmoid), for statistics
  Tensor slot_weight;   // (S) combine weights (differentiable)
  Tensor slot_priority; // (S) detached router probability of each slot (drop-by-probability order)
  std::vector<int64_t> slot_expert, token_offsets;
  double temperature = 1.0;
};

struct RouteOptions {
  bool training = true;
  int64_t seq_len = 0;                 // tokens per sequence (hash routing uses the position in it)
  Tensor token_ids;                    // (T) i64 hash keys; undefined = position in the sequence
  const RoutingRecord* replay = nullptr;
  int64_t step = 0;                    // optimizer steps so far (temperature annealing)
};

class Router : public nn::Module {
 public:
  // slots_per_expert: Soft MoE's S (ignored by the other routers).
  Router(const MoEConfig& cfg, int64_t d_model, RngStream& init_rng, DType dtype = DType::f32,
         int64_t slots_per_expert = 0);
  // x: (T, d) -> routing for T tokens (no capacity applied yet).
  Routing route(const Tensor& x, const RouteOptions& opt);
  double temperature_at(int64_t step) const;

  MoEConfig cfg;
  int64_t d_model;
  int64_t slots_per_expert = 0;
  Tensor weight, proj, logit_scale, noise_weight, bias, scale;
  RngStream noise_rng;  // jitter, logit noise and random routing draws (counter-based)
};

}  // namespace moelab::moe
