#pragma once
// The learned part of a router (docs/moe.md §1.1-1.2): input perturbation, logits and the score function,
// shared by the token-choice and expert-choice families. Parameters are registered on the router itself so
// their names stay `router.weight`, `router.proj`, `router.logit_scale`, `router.noise_weight`.
#include "core/moe/router.h"

namespace moelab::moe {

class LearnedScores {
 public:
  LearnedScores() = default;
  // Registers weight (E, d) (cosine: proj (dc, d), weight (E, dc), logit_scale ()) and, for learned noise,
  // noise_weight (E, d) on `router`, drawing from `rng` in that order.
  LearnedScores(Router& router, RngStream& rng, DType dtype);
  // x: (T, d) -> fills logits, clean_logits, noise_std, probs, scores and temperature of `out`; returns the
  // tempered logits z / tau (T, E).
  Tensor compute(const Tensor& x, const RouteInputs& in, const Router& router, Routing& out) const;

  Tensor weight, proj, logit_scale, noise_weight;
};

// Combine weights gathered from `source` (T, E) at each slot's (token, expert) (softmax_over_choices: a
// softmax over each token's k gathered values), renormalized over the k slots when asked, then scaled by
// cfg.weight_scale; fills slot_weight and slot_priority (the detached probability of each slot).
void gather_combine_weights(const Tensor& source, const MoEConfig& cfg, bool softmax_over_choices, bool renormalize,
                            Routing& r);

// Copies a replayed choice into `r` after checking it is for T tokens and E experts.
void apply_replay(const RoutingRecord& replay, int64_t T, int64_t E, Routing& r);

// Validation shared by families that lack a feature: issues for the balancing terms, score functions and
// logit noise that only some routers define.
struct RouterFeatures {
  bool logit_noise = true;        // noise = jitter/gaussian/learned
  bool score_functions = false;   // score = sigmoid/cosine
  bool per_token_terms = false;   // importance_loss, load_loss
};
void check_router_features(const MoEConfig& cfg, const std::string& prefix, const RouterFeatures& features,
                           std::vector<io::ConfigIssue>& out);

// Rows of x (T, d) scaled to unit L2 norm (differentiable).
Tensor l2_normalize_rows(const Tensor& x);

}  // namespace moelab::moe
