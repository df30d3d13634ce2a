// Token choice (docs/moe.md §1.3): every token picks its top-k experts by score (top_k), or by a
// Sinkhorn-balanced assignment (sinkhorn, BASE-style), optionally with the aux-loss-free selection bias.
#include "core/autograd/autograd.h"
#include "core/moe/balance.h"
#include "core/moe/dispatch.h"
#include "core/moe/router_scores.h"
#include "core/moe/selectors.h"
#include "core/ops/ops.h"

namespace moelab::moe {

namespace {

class TokenChoiceRouter : public Router {
 public:
  TokenChoiceRouter(const MoEConfig& c, const RouterBuild& b, RngStream& rng)
      : Router("TokenChoiceRouter", c, b.d_model, rng), scores_(*this, rng, b.dtype) {
    sinkhorn_ = cfg.router == "sinkhorn";
    softmax_after_ = cfg.option_string("softmax_order") == "after";
    if (cfg.option_bool("selection_bias")) bias_ = register_buffer("bias", Tensor::zeros(Shape{cfg.num_experts}, DType::f32));
  }

  Routing route(const Tensor& x, const RouteInputs& in) override {
    MOELAB_CHECK(x.dim() == 2 && x.size(1) == d_model, "router: expects (T, " << d_model << "), got " << x.shape().str());
    const int64_t T = x.size(0), E = cfg.num_experts, k = cfg.top_k;
    Routing r;
    if (in.replay) apply_replay(*in.replay, T, E, r);
    Tensor zt = scores_.compute(x, in, *this, r);
    if (!in.replay) {
      std::vector<double> sel;
      if (sinkhorn_) sel = sinkhorn_balance(zt.to_vector<double>(), T, E, cfg.option_int("sinkhorn_iterations"));
      else if (softmax_after_) sel = zt.to_vector<double>();
      else sel = r.scores.to_vector<double>();
      if (bias_.defined()) {
        std::vector<double> b = bias_.to_vector<double>();
        for (int64_t t = 0; t < T; ++t)
          for (int64_t e = 0; e < E; ++e) sel[t * E + e] += b[e];
      }
      r.slot_expert = select_top_k(sel, T, E, k);
      r.token_offsets = uniform_token_offsets(T, k);
    }
    // The weights come from the unbiased scores, so the gradient reaches the router.
    gather_combine_weights(softmax_after_ ? zt : r.scores, cfg, softmax_after_, cfg.renormalize, r);
    return r;
  }

  void after_step(const std::vector<double>& counts) override {
    if (!bias_.defined()) return;
    double total = 0;
    for (double c : counts) total += c;
    if (total <= 0) return;
    std::vector<double> b = bias_.to_vector<double>();
    aux_free_bias_update(b, counts, cfg.option_float("bias_update_rate"), cfg.option_bool("bias_recenter"));
    NoGradGuard ng;
    Tensor dst = bias_.detach();
    dst.copy_(Tensor::from_vector(b, Shape{cfg.num_experts}));
  }

  Tensor selection_bias() const override { return bias_; }

 private:
  LearnedScores scores_;
  Tensor bias_;
  bool sinkhorn_ = false, softmax_after_ = false;
};

void validate(const MoEConfig& cfg, const std::string& prefix, std::vector<io::ConfigIssue>& out) {
  const std::string p = prefix + ".";
  const bool top_k = cfg.router == "top_k";
  check_router_features(cfg, prefix, {.logit_noise = true, .score_functions = top_k, .per_token_terms = top_k}, out);
  if (cfg.option_string("softmax_order") == "after" && (!top_k || cfg.score == ScoreKind::sigmoid))
    out.push_back({p + "softmax_order", p + "softmax_order = after needs router = top_k with a softmax or cosine score"});
  if (cfg.option_bool("selection_bias") && !top_k)
    out.push_back({p + "selection_bias", p + "selection_bias applies to router = top_k, not " + cfg.router});
  if (cfg.option_int("sinkhorn_iterations") < 1)
    out.push_back({p + "sinkhorn_iterations",
                   p + "sinkhorn_iterations = " + std::to_string(cfg.option_int("sinkhorn_iterations")) + " must be >= 1"});
  if (cfg.option_float("bias_update_rate") < 0)
    out.push_back({p + "bias_update_rate", p + "bias_update_rate must be >= 0"});
}

}  // namespace

RouterFamily token_choice_family() {
  return {{"top_k", "sinkhorn"},
          "token choice: each token takes its k best experts (sinkhorn: from a Sinkhorn-balanced assignment)",
          {{"softmax_order", MoEKeyType::string, "\"before\"", {"before", "after"},
            "top_k: softmax over all experts before top-k, or over the k selected logits after"},
           {"sinkhorn_iterations", MoEKeyType::integer, "20", {}, "sinkhorn router: Sinkhorn iterations"},
           {"selection_bias", MoEKeyType::boolean, "false", {},
            "aux-loss-free balancing (DeepSeek-V3): select top-k of s + b, combine with s"},
           {"bias_update_rate", MoEKeyType::floating, "0.001", {}, "gamma of the bias update b += gamma*sign(mean c - c)"},
           {"bias_recenter", MoEKeyType::boolean, "false", {},
            "re-centre the selection bias to zero mean after each update"}},
          validate,
          [](const MoEConfig& c, const RouterBuild& b, RngStream& rng) {
            return std::make_shared<TokenChoiceRouter>(c, b, rng);
          }};
}

}  // namespace moelab::moe
