// The router pipeline: perturbation, score, selection, combine weights (specs/moe.md §1).
#include "core/moe/router.h"

#include <cmath>

#include "core/autograd/autograd.h"
#include "core/moe/dispatch.h"
#include "core/moe/selectors.h"
#include "core/nn/init.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {

Tensor index_tensor(const std::vector<int64_t>& v, const Shape& shape, Device d) {
  return Tensor::from_vector(v, shape, d);
}

// Row-wise L2 normalization x / sqrt(sum x^2 + eps) (differentiable).
Tensor l2_normalize_rows(const Tensor& x) { return x * rsqrt(add(sum(square(x), {-1}, true), 1e-12)); }

}  // namespace

Router::Router(const MoEConfig& c, int64_t d, RngStream& rng, DType dtype, int64_t slots)
    : nn::Module("Router"), cfg(c), d_model(d), slots_per_expert(slots) {
  cfg.validate();
  int64_t E = cfg.num_experts;
  // Each router draws its own noise stream from the init stream, so layers do not share noise.
  noise_rng = RngStream::from_state(hash_stream_key(rng.key() ^ (rng.counter() * 0x9E3779B97F4A7C15ull), "routing_noise"), 0);
  rng.advance(1);
  nn::InitOptions init;
  if (cfg.router == RouterKind::soft_moe) {
    MOELAB_CHECK(slots >= 1, "Router: soft_moe needs slots_per_expert >= 1, got " << slots);
    weight = register_parameter("weight", nn::init_weight(Shape{E * slots, d}, d, init, rng, dtype));
    if (cfg.soft_normalize) scale = register_parameter("scale", Tensor::ones(Shape{}, dtype));
    return;
  }
  if (!cfg.has_router_probs()) return;  // hash / random: no learned router
  if (cfg.score == ScoreKind::cosine) {
    int64_t dc = cfg.cosine_dim > 0 ? cfg.cosine_dim : d;
    proj = register_parameter("proj", nn::init_weight(Shape{dc, d}, d, init, rng, dtype));
    weight = register_parameter("weight", nn::init_weight(Shape{E, dc}, dc, init, rng, dtype));
    logit_scale = register_parameter("logit_scale", Tensor::full(Shape{}, cfg.cosine_scale_init, dtype));
  } else {
    weight = register_parameter("weight", nn::init_weight(Shape{E, d}, d, init, rng, dtype));
  }
  if (cfg.noise == NoiseKind::learned) noise_weight = register_parameter("noise_weight", Tensor::zeros(Shape{E, d}, dtype));
  if (cfg.selection_bias) bias = register_buffer("bias", Tensor::zeros(Shape{E}, DType::f32));
}

double Router::temperature_at(int64_t step) const {
  if (cfg.temperature_anneal_steps <= 0) return cfg.temperature;
  double a = std::min(1.0, static_cast<double>(step) / static_cast<double>(cfg.temperature_anneal_steps));
  return cfg.temperature + (cfg.temperature_final - cfg.temperature) * a;
}

Routing Router::route(const Tensor& x, const RouteOptions& opt) {
  MOELAB_CHECK(x.dim() == 2 && x.size(1) == d_model, "Router: expects (T, " << d_model << "), got " << x.shape().str());
  int64_t T = x.size(0), E = cfg.num_experts, k = cfg.top_k;
  DType dt = x.dtype();
  Routing r;
  r.temperature = temperature_at(opt.step);
  const RoutingRecord* rep = opt.replay;
  if (rep) {
    MOELAB_CHECK(rep->num_tokens == T && rep->num_experts == E,
                 "routing replay: the record is for " << rep->num_tokens << " tokens and " << rep->num_experts
                                                      << " experts, this forward has " << T << " and " << E);
    r.token_offsets = rep->token_offsets;
    r.slot_expert = rep->slot_expert;
  }

  // ---- controls without a learned router ----
  if (!cfg.has_router_probs()) {
    if (!rep) {
      r.token_offsets = uniform_token_offsets(T, k);
      if (cfg.router == RouterKind::hash) {
        std::vector<int64_t> ids(static_cast<size_t>(T));
        if (opt.token_ids.defined()) {
          MOELAB_CHECK(opt.token_ids.numel() == T, "hash routing: token_ids has " << opt.token_ids.numel()
                                                                                  << " entries for " << T << " tokens");
          ids = opt.token_ids.to_vector<int64_t>();
        } else {
          int64_t n = opt.seq_len > 0 ? opt.seq_len : T;
          for (int64_t t = 0; t < T; ++t) ids[t] = t % n;
        }
        r.slot_expert = select_hash(ids, E, k);
      } else {
        uint64_t offset = noise_rng.advance(static_cast<uint64_t>(T * k));
        r.slot_expert = select_random(T, E, k, noise_rng.key(), offset);
      }
    }
    int64_t S = static_cast<int64_t>(r.slot_expert.size());
    std::vector<double> w(static_cast<size_t>(S));
    for (int64_t t = 0; t < T; ++t) {
      int64_t n = r.token_offsets[t + 1] - r.token_offsets[t];
      for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) w[s] = cfg.weight_scale / double(n);
    }
    r.slot_weight = Tensor::from_vector(w, Shape{S}, x.device()).to(dt);
    return r;
  }

  // ---- logits: perturbation and score input ----
  Tensor xr = x;
  if (opt.training && cfg.noise == NoiseKind::jitter && cfg.jitter_eps > 0)
    xr = x * rand_uniform(x.shape(), 1.0 - cfg.jitter_eps, 1.0 + cfg.jitter_eps, noise_rng, dt, x.device());
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
    double sigma = cfg.noise_std / static_cast<double>(E);
    r.noise_std = Tensor::full(Shape{T, E}, sigma, dt, x.device());
    if (opt.training) z = z + rand_normal(Shape{T, E}, 0.0, sigma, noise_rng, dt, x.device());
  } else if (cfg.noise == NoiseKind::learned) {
    r.noise_std = add(softplus(linear(x, noise_weight)), 1e-2);
    if (opt.training) z = z + rand_normal(Shape{T, E}, 0.0, 1.0, noise_rng, dt, x.device()) * r.noise_std;
  }
  r.logits = z;
  Tensor zt = r.temperature == 1.0 ? z : mul(z, 1.0 / r.temperature);

  // ---- scores ----
  if (cfg.score == ScoreKind::sigmoid) {
    r.scores = sigmoid(zt);
    r.probs = r.scores / sum(r.scores, {-1}, true);
  } else {
    r.probs = softmax(zt, -1);
    r.scores = r.probs;
  }

  // ---- selection (host, on detached values) ----
  if (!rep) {
    if (cfg.router == RouterKind::expert_choice) {
      double cf = opt.training || cfg.eval_capacity_factor <= 0 ? cfg.capacity_factor : cfg.eval_capacity_factor;
      int64_t C = std::clamp<int64_t>(std::llround(cf * double(T) * double(k) / double(E)), 1, std::max<int64_t>(T, 1));
      if (T == 0) C = 0;
      select_expert_choice(r.probs.to_vector<double>(), T, E, C, r.slot_expert, r.token_offsets);
    } else {
      std::vector<double> sel;
      if (cfg.router == RouterKind::sinkhorn)
        sel = sinkhorn_balance(zt.to_vector<double>(), T, E, cfg.sinkhorn_iterations);
      else if (cfg.softmax_order == SoftmaxOrder::after)
        sel = zt.to_vector<double>();
      else
        sel = r.scores.to_vector<double>();
      if (cfg.selection_bias) {
        std::vector<double> b = bias.to_vector<double>();
        for (int64_t t = 0; t < T; ++t)
          for (int64_t e = 0; e < E; ++e) sel[t * E + e] += b[e];
      }
      r.slot_expert = select_top_k(sel, T, E, k);
      r.token_offsets = uniform_token_offsets(T, k);
    }
  }

  // ---- combine weights: gathered from the (unbiased) scores, so the gradient reaches the router ----
  int64_t S = static_cast<int64_t>(r.slot_expert.size());
  std::vector<int64_t> flat(static_cast<size_t>(S));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) {
      MOELAB_CHECK(r.slot_expert[s] >= 0 && r.slot_expert[s] < E, "routing: slot " << s << " has expert "
                                                                                    << r.slot_expert[s]);
      flat[s] = t * E + r.slot_expert[s];
    }
  Tensor flat_idx = index_tensor(flat, Shape{S}, x.device());
  bool uniform_k = cfg.router != RouterKind::expert_choice;
  Tensor w;
  if (cfg.softmax_order == SoftmaxOrder::after && cfg.router == RouterKind::top_k) {
    w = softmax(gather(zt.reshape(Shape{T * E}), 0, flat_idx).reshape(Shape{T, k}), -1).reshape(Shape{S});
  } else {
    w = gather(r.scores.reshape(Shape{T * E}), 0, flat_idx);
  }
  if (cfg.renormalize && uniform_k) {
    Tensor w2 = w.reshape(Shape{T, k});
    w = (w2 / sum(w2, {-1}, true)).reshape(Shape{S});
  }
  if (cfg.weight_scale != 1.0) w = mul(w, cfg.weight_scale);
  r.slot_weight = w;
  {
    NoGradGuard ng;
    r.slot_priority = gather(r.probs.detach().reshape(Shape{T * E}), 0, flat_idx);
  }
  return r;
}

}  // namespace moelab::moe
