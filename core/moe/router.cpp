// The router base, the learned score pipeline (perturbation, logits, score) and combine-weight gathering.
#include "core/moe/router_scores.h"

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/nn/init.h"
#include "core/ops/ops.h"

namespace moelab::moe {

Router::Router(std::string type_name, const MoEConfig& c, int64_t d, RngStream& rng)
    : nn::Module(std::move(type_name)), cfg(c), d_model(d) {
  // One draw per router is reserved (it once seeded a per-router noise stream), so initial weights stay
  // the same as in earlier versions for the same seed.
  rng.advance(1);
}

MixedOutput Router::mix(const Tensor&, const Experts&) {
  MOELAB_FAIL("router '" << cfg.router << "' chooses experts per token; it does not mix tokens into slots");
}

double Router::temperature_at(int64_t step) const {
  if (cfg.temperature_anneal_steps <= 0) return cfg.temperature;
  double a = std::min(1.0, static_cast<double>(step) / static_cast<double>(cfg.temperature_anneal_steps));
  return cfg.temperature + (cfg.temperature_final - cfg.temperature) * a;
}

Tensor l2_normalize_rows(const Tensor& x) { return x * rsqrt(add(sum(square(x), {-1}, true), 1e-12)); }

LearnedScores::LearnedScores(Router& r, RngStream& rng, DType dtype) {
  const MoEConfig& cfg = r.cfg;
  const int64_t E = cfg.num_experts, d = r.d_model;
  nn::InitOptions init;
  if (cfg.score == ScoreKind::cosine) {
    const int64_t dc = cfg.cosine_dim > 0 ? cfg.cosine_dim : d;
    proj = r.register_parameter("proj", nn::init_weight(Shape{dc, d}, d, init, rng, dtype));
    weight = r.register_parameter("weight", nn::init_weight(Shape{E, dc}, dc, init, rng, dtype));
    logit_scale = r.register_parameter("logit_scale", Tensor::full(Shape{}, cfg.cosine_scale_init, dtype));
  } else {
    weight = r.register_parameter("weight", nn::init_weight(Shape{E, d}, d, init, rng, dtype));
  }
  if (cfg.noise == NoiseKind::learned) noise_weight = r.register_parameter("noise_weight", Tensor::zeros(Shape{E, d}, dtype));
}

Tensor LearnedScores::compute(const Tensor& x, const RouteInputs& in, const Router& router, Routing& r) const {
  const MoEConfig& cfg = router.cfg;
  const int64_t T = x.size(0), E = cfg.num_experts;
  const DType dt = x.dtype();
  r.temperature = router.temperature_at(in.step);
  const bool draws = in.training && cfg.noise != NoiseKind::none;
  MOELAB_CHECK(!draws || in.rng, "router: noise = " << noise_name(cfg.noise) << " needs the forward's random stream");
  Tensor xr = x;
  if (in.training && cfg.noise == NoiseKind::jitter && cfg.jitter_eps > 0)
    xr = x * rand_uniform(x.shape(), 1.0 - cfg.jitter_eps, 1.0 + cfg.jitter_eps, *in.rng, dt, x.device());
  Tensor z;
  if (cfg.score == ScoreKind::cosine) {
    Tensor h = l2_normalize_rows(linear(xr, proj));
    Tensor scale = exp(minimum(logit_scale, Tensor::scalar(std::log(100.0), dt, x.device())));
    z = linear(h, l2_normalize_rows(weight)) * scale;
  } else {
    z = linear(xr, weight);
  }
  r.clean_logits = z;
  if (cfg.noise == NoiseKind::gaussian) {
    const double sigma = cfg.noise_std / static_cast<double>(E);
    r.noise_std = Tensor::full(Shape{T, E}, sigma, dt, x.device());
    if (in.training) z = z + rand_normal(Shape{T, E}, 0.0, sigma, *in.rng, dt, x.device());
  } else if (cfg.noise == NoiseKind::learned) {
    r.noise_std = add(softplus(linear(x, noise_weight)), 1e-2);
    if (in.training) z = z + rand_normal(Shape{T, E}, 0.0, 1.0, *in.rng, dt, x.device()) * r.noise_std;
  }
  r.logits = z;
  Tensor zt = r.temperature == 1.0 ? z : mul(z, 1.0 / r.temperature);
  if (cfg.score == ScoreKind::sigmoid) {
    r.scores = sigmoid(zt);
    r.probs = r.scores / sum(r.scores, {-1}, true);
  } else {
    r.probs = softmax(zt, -1);
    r.scores = r.probs;
  }
  return zt;
}

void gather_combine_weights(const Tensor& source, const MoEConfig& cfg, bool softmax_over_choices, bool renormalize,
                            Routing& r) {
  const int64_t T = source.size(0), E = source.size(1), S = static_cast<int64_t>(r.slot_expert.size());
  std::vector<int64_t> flat(static_cast<size_t>(S));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) {
      MOELAB_CHECK(r.slot_expert[s] >= 0 && r.slot_expert[s] < E, "routing: slot " << s << " has expert " << r.slot_expert[s]);
      flat[s] = t * E + r.slot_expert[s];
    }
  Tensor flat_idx = Tensor::from_vector(flat, Shape{S}, source.device());
  const int64_t k = T > 0 ? S / T : 0;  // uniform k: the only case that softmaxes or renormalizes
  Tensor w = gather(source.reshape(Shape{T * E}), 0, flat_idx);
  if (softmax_over_choices) w = softmax(w.reshape(Shape{T, k}), -1).reshape(Shape{S});
  if (renormalize) {
    Tensor w2 = w.reshape(Shape{T, k});
    w = (w2 / sum(w2, {-1}, true)).reshape(Shape{S});
  }
  if (cfg.weight_scale != 1.0) w = mul(w, cfg.weight_scale);
  r.slot_weight = w;
  NoGradGuard ng;
  r.slot_priority = gather(r.probs.detach().reshape(Shape{T * E}), 0, flat_idx);
}

void apply_replay(const RoutingRecord& rep, int64_t T, int64_t E, Routing& r) {
  MOELAB_CHECK(rep.num_tokens == T && rep.num_experts == E,
               "routing replay: the record is for " << rep.num_tokens << " tokens and " << rep.num_experts
                                                    << " experts, this forward has " << T << " and " << E);
  r.token_offsets = rep.token_offsets;
  r.slot_expert = rep.slot_expert;
}

void check_router_features(const MoEConfig& cfg, const std::string& prefix, const RouterFeatures& f,
                           std::vector<io::ConfigIssue>& out) {
  const std::string p = prefix + ".";
  if (!f.logit_noise && cfg.noise != NoiseKind::none)
    out.push_back({p + "noise", p + "noise = " + noise_name(cfg.noise) + " perturbs router logits: it applies to router = "
                                    "top_k, expert_choice or sinkhorn, not " + cfg.router});
  if (!f.score_functions && cfg.score != ScoreKind::softmax)
    out.push_back({p + "score", p + "score = " + score_name(cfg.score) + " is supported with router = top_k, not " + cfg.router});
  if (!f.per_token_terms && (cfg.importance_loss > 0 || cfg.load_loss > 0))
    out.push_back({p + (cfg.importance_loss > 0 ? "importance_loss" : "load_loss"),
                   p + "importance_loss / " + p + "load_loss are defined for router = top_k, not " + cfg.router});
}

}  // namespace moelab::moe
