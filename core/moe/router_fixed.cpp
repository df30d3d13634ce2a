// Routers without learned parameters, as controls (docs/moe.md §1.3): hash routing (each token id always
// goes to the same experts) and random routing (k distinct uniform experts per token).
#include "core/moe/dispatch.h"
#include "core/moe/router_scores.h"
#include "core/moe/selectors.h"

namespace moelab::moe {

namespace {

class FixedRouter : public Router {
 public:
  FixedRouter(const MoEConfig& c, const RouterBuild& b, RngStream& rng)
      : Router(c.router == "hash" ? "HashRouter" : "RandomRouter", c, b.d_model, rng) {}

  bool has_probs() const override { return false; }

  Routing route(const Tensor& x, const RouteInputs& in) override {
    MOELAB_CHECK(x.dim() == 2 && x.size(1) == d_model, "router: expects (T, " << d_model << "), got " << x.shape().str());
    const int64_t T = x.size(0), E = cfg.num_experts, k = cfg.top_k;
    Routing r;
    if (in.replay) {
      apply_replay(*in.replay, T, E, r);
    } else {
      r.token_offsets = uniform_token_offsets(T, k);
      if (cfg.router == "hash") {
        std::vector<int64_t> ids = in.token_ids;
        if (ids.empty()) {
          const int64_t n = in.seq_len > 0 ? in.seq_len : T;
          ids.resize(static_cast<size_t>(T));
          for (int64_t t = 0; t < T; ++t) ids[t] = t % n;
        }
        MOELAB_CHECK(static_cast<int64_t>(ids.size()) == T, "hash routing: " << ids.size() << " token ids for " << T << " tokens");
        r.slot_expert = select_hash(ids, E, k);
      } else {
        MOELAB_CHECK(in.rng, "router = random needs the forward's random stream");
        const uint64_t offset = in.rng->advance(static_cast<uint64_t>(T * k));
        r.slot_expert = select_random(T, E, k, in.rng->key(), offset);
      }
    }
    // Uniform combine weights over each token's choices.
    const int64_t S = static_cast<int64_t>(r.slot_expert.size());
    std::vector<double> w(static_cast<size_t>(S));
    for (int64_t t = 0; t < T; ++t) {
      const int64_t n = r.token_offsets[t + 1] - r.token_offsets[t];
      for (int64_t s = r.token_offsets[t]; s < r.token_offsets[t + 1]; ++s) w[s] = cfg.weight_scale / double(n);
    }
    r.slot_weight = Tensor::from_vector(w, Shape{S}, x.device()).to(x.dtype());
    return r;
  }
};

void validate(const MoEConfig& cfg, const std::string& prefix, std::vector<io::ConfigIssue>& out) {
  check_router_features(cfg, prefix, {.logit_noise = false}, out);
}

std::shared_ptr<Router> make(const MoEConfig& c, const RouterBuild& b, RngStream& rng) {
  return std::make_shared<FixedRouter>(c, b, rng);
}

}  // namespace

RouterFamily hash_family() {
  return {{"hash"}, "hash routing: token id (or position) -> fixed experts (a control)", {}, validate, make};
}
RouterFamily random_family() {
  return {{"random"}, "random routing: k uniform experts per token (a control)", {}, validate, make};
}

}  // namespace moelab::moe
