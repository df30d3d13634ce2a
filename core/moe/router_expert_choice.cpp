// Expert choice (Zhou et al. 2022; docs/moe.md §1.3): every expert takes its C highest-probability tokens,
// C = round(cf * T * k / E), so a token may get 0..E experts and loads are balanced by construction.
#include <algorithm>
#include <cmath>

#include "core/moe/router_scores.h"
#include "core/moe/selectors.h"

namespace moelab::moe {

namespace {

class ExpertChoiceRouter : public Router {
 public:
  ExpertChoiceRouter(const MoEConfig& c, const RouterBuild& b, RngStream& rng)
      : Router("ExpertChoiceRouter", c, b.d_model, rng), scores_(*this, rng, b.dtype) {}

  Routing route(const Tensor& x, const RouteInputs& in) override {
    MOELAB_CHECK(x.dim() == 2 && x.size(1) == d_model, "router: expects (T, " << d_model << "), got " << x.shape().str());
    const int64_t T = x.size(0), E = cfg.num_experts, k = cfg.top_k;
    Routing r;
    if (in.replay) apply_replay(*in.replay, T, E, r);
    scores_.compute(x, in, *this, r);
    if (!in.replay) {
      const double cf = in.training || cfg.eval_capacity_factor <= 0 ? cfg.capacity_factor : cfg.eval_capacity_factor;
      int64_t C = std::clamp<int64_t>(std::llround(cf * double(T) * double(k) / double(E)), 1, std::max<int64_t>(T, 1));
      if (T == 0) C = 0;
      select_expert_choice(r.probs.to_vector<double>(), T, E, C, r.slot_expert, r.token_offsets);
    }
    gather_combine_weights(r.scores, cfg, false, false, r);
    return r;
  }

 private:
  LearnedScores scores_;
};

void validate(const MoEConfig& cfg, const std::string& prefix, std::vector<io::ConfigIssue>& out) {
  const std::string p = prefix + ".";
  check_router_features(cfg, prefix, {.logit_noise = true}, out);
  if (cfg.renormalize)
    out.push_back({p + "renormalize", p + "renormalize is not defined for router = expert_choice (a token may get 0..E "
                                          "experts); set it to false"});
  if (cfg.capacity_mode != CapacityMode::dropless)
    out.push_back({p + "capacity_mode", "router = expert_choice sets its own capacity (C = round(cf*T*k/E)); set " + p +
                                            "capacity_mode = dropless"});
  if (cfg.capacity_factor <= 0)
    out.push_back({p + "capacity_factor", p + "capacity_factor must be > 0 for router = expert_choice"});
}

}  // namespace

RouterFamily expert_choice_family() {
  return {{"expert_choice"},
          "expert choice: each expert takes its C = round(cf*T*k/E) best tokens",
          {},
          validate,
          [](const MoEConfig& c, const RouterBuild& b, RngStream& rng) {
            return std::make_shared<ExpertChoiceRouter>(c, b, rng);
          }};
}

}  // namespace moelab::moe
